"""Several checkpoints in one file, so an ensemble ships (and is named) like one model.

The format is safetensors, like a single checkpoint, so opening one never runs code. Each
member's tensors are stored under its key (``m0/<name>``, ``m1/<name>``, ...) and the
header metadata (str -> str) holds::

    {"format": "vidfake-ensemble", "format_version": "1", "ensemble": "<JSON>"}

where the JSON is ``{"name", "version", "vidfake_version", "aggregation": {...},
"calibration": {...}, "members": [{"key", "name", "version", "sha256", "weight",
"config": {...}}]}``: each member's whole checkpoint config (so it scores exactly as its
own file would), its weight in the mean, and the SHA-256 of the file it was packed from
(the name verdicts give it). ``aggregation`` is the ensemble's own calibration: its
temperature and bias act on the weighted mean of the members' calibrated logits, and its
threshold labels the result (its track settings are unused: every member aggregates
its tracks with its own rule).

torch is imported only where tensors are handled; the header (``read_ensemble_header``)
needs neither torch nor the weights.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidfake.checkpoints.format import (
    ENSEMBLE_FORMAT,
    Checkpoint,
    CheckpointError,
    config_json,
    file_sha256,
    load_checkpoint,
    read_safetensors,
    save_tensors,
)
from vidfake.temporal.aggregate import AggregationConfig

ENSEMBLE_FORMAT_VERSION = "1"


@dataclass(frozen=True)
class Ensemble:
    """An ensemble read from one file: its members' checkpoints (weights included) and how
    their logits are combined and calibrated."""

    name: str
    version: str
    members: list[Checkpoint]  # each member's path is "<ensemble file>#<key>", its sha256 its source file's
    weights: list[float]
    aggregation: AggregationConfig
    path: str
    sha256: str  # of the ensemble file's bytes
    calibration: dict = field(default_factory=dict)


def check_weights(weights: Sequence[float] | None, n_members: int) -> list[float]:
    """The members' weights, checked: one per member, finite and positive (None: all 1)."""
    if n_members < 1:
        raise CheckpointError("an ensemble needs at least one member")
    if weights is None:
        return [1.0] * n_members
    weights = [float(w) for w in weights]
    if len(weights) != n_members:
        raise CheckpointError(f"{len(weights)} weights for {n_members} members: give one weight per member, in order")
    bad = [w for w in weights if not (math.isfinite(w) and w > 0)]
    if bad:
        raise CheckpointError(f"member weights must be finite and > 0, got {weights}")
    return weights


def ensemble_aggregation(aggregations: Sequence[AggregationConfig], weights: Sequence[float]) -> AggregationConfig:
    """An uncalibrated ensemble's rule: temperature 1 and bias 0 over the mean of calibrated
    logits, the members' weighted mean threshold (theirs when they agree) and their
    smallest probability clip; ``vidfake calibrate`` fits the temperature later."""
    total = float(sum(weights))
    threshold = sum(w * a.threshold for a, w in zip(aggregations, weights)) / total
    return AggregationConfig(threshold=threshold, prob_clip=min(a.prob_clip for a in aggregations))


def describe_identity(members: Sequence[dict], weights: Sequence[float], aggregation: AggregationConfig) -> str:
    """A SHA-256 naming an ensemble given as several files (members' digests, weights and
    calibration): the same members the same way always get the same name."""
    text = json.dumps({"members": [m["sha256"] for m in members], "weights": list(weights),
                       "aggregation": aggregation.to_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def save_ensemble(path: str | os.PathLike, members: Sequence[Checkpoint], weights: Sequence[float] | None = None, *,
                  name: str | None = None, version: str = "", aggregation: AggregationConfig | None = None,
                  calibration: dict | None = None) -> Path:
    """Pack ``members`` (single-model checkpoints) into one safetensors file.

    Args:
        path: the ``.safetensors`` file to write (atomically).
        members: the checkpoints, weights loaded.
        weights: one per member (None: equal).
        name, version: what verdicts call the ensemble (name default: the file's stem).
        aggregation: its calibration and threshold (None: ``ensemble_aggregation``).
        calibration: the record of how that calibration was fitted.
    Returns:
        ``path`` as a Path.
    """
    weights = check_weights(weights, len(members))
    if aggregation is None:
        aggregation = ensemble_aggregation([m.settings.aggregation for m in members],
                                           weights)
    from vidfake import __version__

    tensors, records = {}, []
    for i, (member, weight) in enumerate(zip(members, weights)):
        key = f"m{i}"
        tensors.update({f"{key}/{k}": t for k, t in member.state_dict.items()})
        records.append({"key": key, "name": member.settings.display_name(member.path),
                        "version": member.settings.version, "sha256": member.sha256, "weight": weight,
                        "config": member.config})
    header = {"name": name or Path(path).stem, "version": version, "vidfake_version": __version__,
              "aggregation": aggregation.to_dict(), "calibration": calibration or {}, "members": records}
    metadata = {"format": ENSEMBLE_FORMAT, "format_version": ENSEMBLE_FORMAT_VERSION, "ensemble": config_json(header)}
    return save_tensors(path, tensors, metadata)


def _read(path: Path, weights: bool) -> tuple[dict, dict]:
    """The ensemble header (checked) and, with ``weights``, the tensors by member key."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such ensemble file")
    meta, tensors = read_safetensors(path, weights)
    if meta.get("format") != ENSEMBLE_FORMAT:
        raise CheckpointError(f"{path}: not a vidfake ensemble (format={meta.get('format')!r})")
    if meta.get("format_version") != ENSEMBLE_FORMAT_VERSION:
        raise CheckpointError(f"{path}: ensemble format version {meta.get('format_version')!r}, "
                              f"this vidfake reads {ENSEMBLE_FORMAT_VERSION!r}")
    try:
        header = json.loads(meta["ensemble"])
        members = header["members"]
        keys = [m["key"] for m in members]
        if not members or not all(isinstance(m["config"], dict) and isinstance(m["sha256"], str) for m in members):
            raise ValueError("members must be a non-empty list of records with a config and a sha256")
        check_weights([m["weight"] for m in members], len(members))
        AggregationConfig.from_dict(header["aggregation"])
    except (KeyError, TypeError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{path}: broken ensemble header: {e}") from e
    by_key: dict[str, dict] = {key: {} for key in keys}
    for name, tensor in tensors.items():
        key, _, rest = name.partition("/")
        if key not in by_key or not rest:
            raise CheckpointError(f"{path}: tensor {name!r} belongs to no member")
        by_key[key][rest] = tensor
    if weights and not all(by_key.values()):
        raise CheckpointError(f"{path}: members without weights: {[k for k, v in by_key.items() if not v]}")
    return header, by_key


def read_ensemble_header(path: str | os.PathLike) -> dict:
    """An ensemble file's header (members' configs, weights, calibration) without its tensors."""
    return _read(Path(path), weights=False)[0]


def load_ensemble(path: str | os.PathLike) -> Ensemble:
    """Read an ensemble file without executing anything in it; ``CheckpointError`` when it
    is missing, not an ensemble, another format version, or broken."""
    path = Path(path)
    header, tensors = _read(path, weights=True)
    members = [Checkpoint(config=m["config"], state_dict=tensors[m["key"]], path=f"{path}#{m['key']}",
                          sha256=m["sha256"]) for m in header["members"]]
    return Ensemble(name=header.get("name", path.stem), version=header.get("version", ""), members=members,
                    weights=[float(m["weight"]) for m in header["members"]],
                    aggregation=AggregationConfig.from_dict(header["aggregation"]), path=str(path),
                    sha256=file_sha256(path), calibration=header.get("calibration", {}))


def load_members(paths: Sequence[str | os.PathLike]) -> tuple[list[Checkpoint], list[float] | None]:
    """The checkpoints to (re)pack: one ensemble file gives its members and weights;
    several single-model files give themselves (weights None: the caller's or equal)."""
    from vidfake.checkpoints.format import is_ensemble

    if len(paths) == 1 and is_ensemble(paths[0]):
        ensemble = load_ensemble(paths[0])
        return ensemble.members, ensemble.weights
    return [load_checkpoint(p) for p in paths], None


def describe_ensemble(path: str | os.PathLike) -> dict:
    """What an ensemble file is: its name, digest, calibration and every member's facts."""
    path = Path(path)
    header = read_ensemble_header(path)
    aggregation = header["aggregation"]
    members = []
    for m in header["members"]:
        model, extract = m["config"].get("model", {}), m["config"].get("extract", {})
        members.append({"name": m["name"], "version": m["version"], "sha256": m["sha256"], "weight": m["weight"],
                        "backbone": model.get("backbone"), "input_size": model.get("input_size"),
                        "plan": extract.get("plan"), "temperature": m["config"].get("aggregation", {}).get("temperature"),
                        "untrained": bool(m["config"].get("training", {}).get("untrained", False))})
    return {"kind": "ensemble", "name": header.get("name", path.stem), "version": header.get("version", ""),
            "default": False, "path": str(path), "sha256": file_sha256(path),
            "size_mb": round(path.stat().st_size / 2**20, 2), "temperature": aggregation["temperature"],
            "bias": aggregation.get("bias", 0.0), "threshold": aggregation["threshold"],
            "calibration": header.get("calibration", {}), "members": members}


def format_description(info: dict) -> str:
    """``describe_ensemble``'s facts as the lines ``vidfake models`` prints."""
    lines = [
        f"{info['name']} {info['version']}  (ensemble of {len(info['members'])})",
        f"  file         {info['path']} ({info['size_mb']} MB)",
        f"  sha256       {info['sha256']}",
        f"  calibration  temperature {info['temperature']}, bias {info['bias']}, threshold {info['threshold']} "
        "(over the weighted mean of the members' calibrated logits)",
    ]
    for m in info["members"]:
        lines.append(f"  member       {m['name']} {m['version']}: weight {m['weight']}, {m['backbone']} at "
                     f"{m['input_size']}px, plan {m['plan']}, temperature {m['temperature']}"
                     + (", UNTRAINED" if m["untrained"] else "") + f", sha256 {m['sha256'][:12]}")
    return "\n".join(lines)
