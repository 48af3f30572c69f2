"""The default model that ships inside the package.

``vidfake score``, the Python API and the service all load the same file when no
checkpoint is given, so "the default model" means one thing everywhere. A SHA-256
recorded next to it guards against a truncated or swapped file: a mismatch is an error,
never a silent fallback to other weights.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from vidfake.checkpoints.format import CheckpointError, CheckpointHeader, file_sha256, read_header

__all__ = [
    "DEFAULT_MODEL_FILE",
    "DefaultModelError",
    "checkpoint_header",
    "default_checkpoint",
    "describe_checkpoint",
    "resolve_checkpoint",
]

DEFAULT_MODEL_FILE = "default.safetensors"
_CHECKSUM_FILE = "default.sha256"


class DefaultModelError(CheckpointError):
    """The packaged default model is missing or does not match its checksum."""


def _package_dir() -> Path:
    return Path(str(resources.files(__package__)))


def default_checkpoint(verify: bool = True) -> Path:
    """Path of the packaged default checkpoint, checked against its recorded SHA-256."""
    folder = _package_dir()
    path = folder / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise DefaultModelError(
            f"the default model is not installed ({path} is missing). Reinstall vidfake, or "
            "pass --checkpoint PATH with a vidfake checkpoint."
        )
    if verify:
        _check_default_digest(path, file_sha256(path))
    return path


def _check_default_digest(path: Path, actual: str) -> None:
    """Refuse the default model unless ``actual`` (its file's SHA-256) is the recorded one."""
    checksum_file = _package_dir() / _CHECKSUM_FILE
    if not checksum_file.is_file():
        raise DefaultModelError(f"{checksum_file} is missing: cannot verify the default model")
    expected = checksum_file.read_text().split()[0].strip().lower()
    if actual != expected:
        raise DefaultModelError(
            f"the default model {path} is damaged: SHA-256 {actual} does not match the "
            f"recorded {expected}. Reinstall vidfake."
        )


def resolve_checkpoint(path: str | Path | None) -> Path:
    """The checkpoint to load: the one given, else the packaged default model."""
    return Path(path) if path is not None else default_checkpoint()


def checkpoint_header(path: str | Path | None) -> CheckpointHeader:
    """Config and SHA-256 of the checkpoint to load (the default model when ``path`` is
    None), its file hashed once: that one digest also verifies the default model and
    names the weights in every verdict (pass it on to ``load_checkpoint``)."""
    if path is not None:
        return read_header(path)
    header = read_header(default_checkpoint(verify=False))
    _check_default_digest(Path(header.path), header.sha256)
    return header


def describe_checkpoint(path: str | Path | None = None) -> dict:
    """What a checkpoint is (the default model when ``path`` is None): the facts a user
    needs before trusting its scores, read from the config saved inside it (an ensemble
    file: ``vidfake.checkpoints.ensemble_file.describe_ensemble``, with ``"kind": "ensemble"``)."""
    from vidfake.checkpoints.format import is_ensemble, load_checkpoint

    if path is not None and is_ensemble(path):
        from vidfake.checkpoints.ensemble_file import describe_ensemble

        return describe_ensemble(path)
    header = checkpoint_header(path)
    resolved = Path(header.path)
    checkpoint = load_checkpoint(resolved, sha256=header.sha256)
    settings = checkpoint.settings
    model, aggregation = settings.model, settings.aggregation
    n_params = sum(t.numel() for t in checkpoint.state_dict.values())
    return {
        "name": settings.display_name(resolved),
        "version": settings.version,
        "default": path is None,
        "path": str(resolved),
        "sha256": checkpoint.sha256,
        "size_mb": round(resolved.stat().st_size / 2**20, 2),
        "parameters": int(n_params),
        "backbone": model.backbone,
        "input_size": model.input_size,
        "input_view": model.input_view,
        "temporal_layers": model.temporal_layers,
        "sync_head": model.sync,
        "mouth_motion_head": model.mouth_motion,
        "mouth_weight": float(checkpoint.state_dict["mouth_weight"]) if model.mouth_motion else None,
        "mask_head": model.mask_head,
        "plan": settings.extract.plan,
        "temperature": aggregation.temperature,
        "bias": aggregation.bias,
        "threshold": aggregation.threshold,
        "training": settings.training,
        "card": settings.card,
    }
