"""One file carries a model's weights and its whole config.

``score --checkpoint X`` must need nothing else, and opening a checkpoint someone sent
you must never run code. So the format is safetensors: the weights are its tensors and
its header metadata (str -> str) holds::

    {"format": "vidfake-checkpoint", "format_version": "1", "config": "<JSON>"}

Loading goes through ``safetensors`` only, which parses a JSON header and raw bytes and
executes nothing. ``.pt``/``.pth`` files are also read, but only through
``torch.load(weights_only=True)``, whose restricted unpickler refuses any pickle that
would call code; they hold ``{"format", "format_version", "config": dict,
"state_dict": {name: tensor}}``. Saving always writes safetensors.

torch is imported only where tensors are handled: reading a safetensors checkpoint's
config (``read_header``) needs neither torch nor the weights.

``checkpoint_config`` defines what every checkpoint's config holds (training's callback
and ``init_checkpoint`` both build it), and ``init_checkpoint`` writes an untrained one.
The configs they take are imported inside them, so this module stays on top of
``extract``/``temporal`` and never imports ``train`` or ``eval``.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import safe_open

if TYPE_CHECKING:
    import torch

    from vidfake.checkpoints.config import CheckpointConfig
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.temporal import ModelConfig
    from vidfake.temporal.aggregate import AggregationConfig

FORMAT = "vidfake-checkpoint"
FORMAT_VERSION = "1"
ENSEMBLE_FORMAT = "vidfake-ensemble"  # several checkpoints in one file: see vidfake.checkpoints.ensemble_file
_PICKLE_SUFFIXES = (".pt", ".pth")


class CheckpointError(ValueError):
    """A file that is not a vidfake checkpoint this version can read (or cannot be written as one)."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: its config and weights, and which file (by hash) they came from."""
    config: dict  # {"model": {...}, "extract": {...}, "aggregation": {...}, "name", "version", "training": {...}}
    state_dict: dict[str, torch.Tensor]
    path: str
    sha256: str  # of the file's bytes: names exactly which weights scored a video

    @property
    def settings(self) -> CheckpointConfig:
        """The config as ``CheckpointConfig`` (typed; how every reader should see it)."""
        return _settings(self.config, self.path)


@dataclass(frozen=True)
class CheckpointHeader:
    """A checkpoint without its weights: what scoring needs to answer for files that
    never reach the model (their verdicts name the model), and to build it later."""

    config: dict
    path: str
    sha256: str

    @property
    def settings(self) -> CheckpointConfig:
        """The config as ``CheckpointConfig`` (typed; how every reader should see it)."""
        return _settings(self.config, self.path)


def _settings(config: dict, path: str) -> CheckpointConfig:
    from vidfake.checkpoints.config import CheckpointConfig

    try:
        return CheckpointConfig.from_dict(config)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: checkpoint config cannot be read: {error}") from error


def build_model(checkpoint: Checkpoint, device: str = "cpu"):
    """The checkpoint's model with its weights, in eval mode on ``device``: the one
    "build, then load every weight" (``CheckpointError`` when the weights do not fit)."""
    from vidfake.temporal import create_model  # imports torch and timm: only when a model is built

    try:
        model = create_model(checkpoint.settings.model, pretrained=False)  # the checkpoint holds every weight
        model.load_state_dict(checkpoint.state_dict, strict=True)
    except (RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{checkpoint.path}: the model cannot be built from it: {error}") from error
    return model.eval().to(device)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks so large checkpoints fit in memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def config_json(config: dict) -> str:
    """Strict JSON that loads back equal, so the saved config is exactly the one used
    (a tuple would come back a list, an int key a str key: refused here, not later)."""
    if not isinstance(config, dict):
        raise CheckpointError(f"config must be a dict, got {type(config).__name__}")
    try:
        text = json.dumps(config, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"config is not strict JSON: {e}") from e
    if json.loads(text) != config:
        raise CheckpointError("config does not survive JSON unchanged (tuples? non-str keys?)")
    return text


def _savable(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, dense, contiguous tensors each owning its storage: safetensors refuses
    tensors that share memory (tied weights, views of one buffer), so those are cloned."""
    import torch

    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, t in state_dict.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor):
            raise CheckpointError(f"state_dict must map str to tensor, got {name!r}: {type(t).__name__}")
        if t.layout != torch.strided:
            raise CheckpointError(f"tensor {name!r} is sparse ({t.layout}); save it dense")
        t = t.detach().cpu()
        storage = t.untyped_storage()
        whole = t.data_ptr() == storage.data_ptr() and t.nelement() * t.element_size() == storage.nbytes()
        if storage.data_ptr() in seen or not whole or not t.is_contiguous():
            t = t.clone(memory_format=torch.contiguous_format)
        if t.nelement():
            seen.add(storage.data_ptr())
        out[name] = t
    return out


def save_checkpoint(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor], config: dict) -> Path:
    """Write weights + config as one safetensors file; returns the path.

    Atomic (temporary file in the same folder, then rename) so a crash mid-save never
    leaves a half checkpoint under the real name.
    """
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config_json(config)}
    return save_tensors(path, state_dict, metadata)


def save_tensors(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write tensors and a str -> str header as one safetensors file, atomically (a
    temporary file in the same folder, then rename): the one writer of checkpoints and
    ensembles (``vidfake.checkpoints.ensemble_file``)."""
    path = Path(path)
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise CheckpointError(f"{path}: checkpoints are written as safetensors; name it *.safetensors")
    tensors = _savable(state_dict)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        from safetensors.torch import save_file

        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a checkpoint is shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"  # torch.save zip / raw pickle


def _check_header(fmt: object, version: object, path: Path) -> None:
    if fmt == ENSEMBLE_FORMAT:
        raise CheckpointError(
            f"{path}: this is a vidfake ensemble (several models in one file), not a single model: "
            "score, eval, serve, calibrate and models take it as --checkpoint; it cannot be a member of another ensemble"
        )
    if fmt != FORMAT:
        raise CheckpointError(f"{path}: not a vidfake checkpoint (format={fmt!r}, expected {FORMAT!r})")
    if str(version) != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r}, this vidfake reads {FORMAT_VERSION!r}"
        )


def read_safetensors(path: Path, weights: bool = True) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """A safetensors file's header metadata and (``weights``) its tensors, for single
    checkpoints and ensemble files alike; ``CheckpointError`` when it is not one. Without
    the weights only the header is read, through numpy, so a config costs no torch import."""
    try:
        with safe_open(str(path), framework="pt" if weights else "numpy", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()} if weights else {}
    except Exception as e:  # safetensors' own error type; nothing here executes file contents
        hint = (
            " (it looks like a pickle / torch.save file: only *.pt / *.pth are read that way, and never"
            " unpickled beyond torch.load(weights_only=True))"
            if _looks_like_pickle(path)
            else ""
        )
        raise CheckpointError(f"{path}: not a readable safetensors file{hint}: {e}") from e
    return meta, tensors


def _load_safetensors(path: Path, weights: bool = True) -> tuple[dict, dict[str, torch.Tensor]]:
    """The config and (``weights``) the tensors; without them only the header is read."""
    meta, tensors = read_safetensors(path, weights)
    _check_header(meta.get("format"), meta.get("format_version"), path)
    try:
        config = json.loads(meta["config"])
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: checkpoint config is missing or not valid JSON: {e}") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: checkpoint config is a {type(config).__name__}, not a JSON object")
    return config, tensors


def _load_pt(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)  # never a full unpickle
    except pickle.UnpicklingError as e:
        # torch's message suggests weights_only=False; vidfake never does that, so keep only the reason
        reason = str(e).partition("WeightsUnpickler error:")[2].strip().split("\n")[0] or str(e)
        raise CheckpointError(
            f"{path}: refused: the pickle asks for more than tensors, dicts, lists, numbers and strings "
            f"(vidfake never fully unpickles a file): {reason}"
        ) from e
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable torch checkpoint: {e}") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a vidfake checkpoint (holds a {type(obj).__name__})")
    _check_header(obj.get("format"), obj.get("format_version"), path)
    config, tensors = obj.get("config"), obj.get("state_dict")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: checkpoint config is missing or not a dict")
    if not isinstance(tensors, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()
    ):
        raise CheckpointError(f"{path}: state_dict is missing or not a dict of tensors")
    return config, tensors


def load_checkpoint(path: str | os.PathLike, sha256: str | None = None) -> Checkpoint:
    """Read a checkpoint without executing anything in it; CheckpointError if it is
    missing, not a vidfake checkpoint, another format version, or has a broken config.

    ``sha256``: the file's digest when the caller has just computed it (``read_header``),
    so a model load hashes its file once."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    sha = sha256 or file_sha256(path)
    load = _load_pt if path.suffix.lower() in _PICKLE_SUFFIXES else _load_safetensors
    config, tensors = load(path)
    return Checkpoint(config=config, state_dict=tensors, path=str(path), sha256=sha)


def read_header(path: str | os.PathLike) -> CheckpointHeader:
    """A checkpoint's config and SHA-256 without its tensors (safetensors files; a
    ``.pt`` file has no separate header and is read whole). Same errors as ``load_checkpoint``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    sha = file_sha256(path)
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        config, _ = _load_pt(path)
    else:
        config, _ = _load_safetensors(path, weights=False)
    return CheckpointHeader(config=config, path=str(path), sha256=sha)


def is_ensemble(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a safetensors file whose header says it is an ensemble (its
    header only; any other file, readable or not, is left to ``read_header`` to judge)."""
    path = Path(path)
    if path.suffix.lower() in _PICKLE_SUFFIXES or not path.is_file():
        return False
    try:
        meta, _ = read_safetensors(path, weights=False)
    except CheckpointError:  # not a safetensors file: read_header gives the error that says why
        return False
    return meta.get("format") == ENSEMBLE_FORMAT


def checkpoint_config(model: ModelConfig, extract: ExtractConfig, aggregation: AggregationConfig, **extra) -> dict:
    """The whole config a checkpoint carries. Crops are cut at the model's input size.

    Args:
        model, extract, aggregation: the settings scoring rebuilds from the file.
        extra: further top-level entries (``name``, ``version``, ``training``, ...).
    Returns:
        A strict-JSON dict for :func:`save_checkpoint`.
    """
    from vidfake import __version__

    extract = replace(extract, crop=replace(extract.crop, size=model.input_size, mouth_size=model.mouth_size))
    return {
        "model": model.to_dict(),
        "extract": extract.to_dict(),
        "aggregation": aggregation.to_dict(),
        "vidfake_version": __version__,
        **extra,
    }


def init_checkpoint(path: str | os.PathLike, model: ModelConfig, extract: ExtractConfig | None = None,
                    seed: int = 0) -> Path:
    """Write a randomly initialised checkpoint, so users and tests can run the whole
    scoring path before a trained model exists. Its config says it is untrained
    (``version="untrained"``), and every verdict made with it carries a warning.

    Args:
        path: the ``.safetensors`` file to write.
        model: the architecture; ``extract``: extraction settings (defaults if None).
        seed: torch's seed for the random weights, so the same call writes the same file.
    Returns:
        ``path`` as a Path.
    """
    import torch

    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.temporal import create_model
    from vidfake.temporal.aggregate import AggregationConfig

    torch.manual_seed(seed)
    network = create_model(model)
    config = checkpoint_config(
        model, extract or ExtractConfig(), AggregationConfig(),
        name=Path(path).stem, version="untrained", training={"untrained": True, "seed": seed},
    )
    return save_checkpoint(path, network.state_dict(), config)
