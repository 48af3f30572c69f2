"""Build one detector from the parts of several trained checkpoints.

``python -m vidfake.checkpoints.compose BASE --part sync=OTHER --part mouth_motion=MOUTH [--mouth-weight W]
[--mouth-threshold T] --out OUT``

Stages train different parts on top of frozen ones, and some parts read nothing the
others produce: the lip-sync head reads its own mouth crops and the audio, the
mouth-motion head the face crops' mouth region. Such a part can move from one detector
to another whose frame encoder was retrained, instead of being trained again. This
copies ``BASE`` whole (config, calibration, card, every weight) and, for each ``--part
NAME=DONOR``, takes the part's weights (:data:`PARTS`) and the model-config fields it is
built from (``sync`` and its sizes, ``mouth_motion`` and its sizes) from ``DONOR``. The
result is loaded and built strictly, so a part that does not fit is an error, not a
silently half-copied model. ``--mouth-weight`` sets the mouth-motion head's weight in the
clip logit (fitted on development videos, see :mod:`vidfake.train.combine`), and
``--mouth-threshold`` the head's logit from which a verdict says a mouth "looks
re-generated" (``benchmarks/mouth_motion.py`` reports both). What was taken from where,
the weight and the threshold are recorded in the card.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from vidfake.checkpoints.format import CheckpointError, build_model, load_checkpoint, save_checkpoint

__all__ = ["PARTS", "compose"]

# part -> (weight prefixes, ModelConfig fields it is built from)
PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sync": (("sync.", "sync_weight"), ("sync", "mouth_size", "sync_dim", "sync_window", "sync_max_offset",
                                         "audio_sample_rate", "n_mels")),
    "mouth_motion": (("mouth_motion.", "mouth_weight"), ("mouth_motion", "mouth_motion_size", "mouth_motion_dim",
                                                         "audio_sample_rate", "n_mels")),
}
_SHARED = ("audio_sample_rate", "n_mels")  # fields more than one part reads


def _is_part(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p) for p in prefixes)


def compose(base: str | Path, parts: dict[str, str | Path], out: str | Path, mouth_weight: float | None = None,
            mouth_threshold: float | None = None) -> Path:
    """Write ``out``: ``base`` with each named part (a key of :data:`PARTS`) from its donor,
    the mouth-motion head's weight set to ``mouth_weight`` and the verdict's mouth threshold
    (the aggregation's ``mouth_threshold``, a logit) to ``mouth_threshold`` when given.

    Raises:
        ValueError: an unknown part, a donor without the part, or config fields the part
            shares with another part (``n_mels``) that disagree.
        CheckpointError: the composed weights do not build the composed config.
    """
    checkpoint = load_checkpoint(base)
    config = dict(checkpoint.config)
    model = dict(config["model"])
    state = dict(checkpoint.state_dict)
    sources: list[str] = []
    for name, donor_path in parts.items():
        if name not in PARTS:
            raise ValueError(f"unknown part {name!r}; one of {sorted(PARTS)}")
        prefixes, fields = PARTS[name]
        donor = load_checkpoint(donor_path)
        taken = {k: v for k, v in donor.state_dict.items() if _is_part(k, prefixes)}
        if not taken:
            raise ValueError(f"{donor_path} has no {name} weights")
        others_in_use = any(model.get(other) for other in PARTS if other != name)  # a part's flag is its name
        for field_name in fields:
            theirs = donor.config["model"].get(field_name)
            if field_name in _SHARED and others_in_use and model.get(field_name) != theirs:
                raise ValueError(f"{name} from {donor_path} needs {field_name}={theirs}, another part has "
                                 f"{model.get(field_name)}")
            model[field_name] = theirs
        state = {k: v for k, v in state.items() if not _is_part(k, prefixes)}
        state.update(taken)
        sources.append(f"{name} from {Path(donor_path).name} ({donor.sha256[:12]})")
    config["model"] = model
    if mouth_weight is not None:
        if "mouth_weight" not in state:
            raise ValueError("--mouth-weight: the model has no mouth-motion head (add one with --part mouth_motion=...)")
        state["mouth_weight"] = torch.tensor(float(mouth_weight))
        sources.append(f"mouth weight {mouth_weight:.4g}")
    if mouth_threshold is not None:
        if not model.get("mouth_motion"):
            raise ValueError("--mouth-threshold: the model has no mouth-motion head (add one with --part mouth_motion=...)")
        config["aggregation"] = {**config.get("aggregation", {}), "mouth_threshold": float(mouth_threshold)}
        sources.append(f"mouth threshold {mouth_threshold:.4g}")
    card = dict(config.get("card") or {})
    card["composed"] = "; ".join([f"base {Path(base).name} ({checkpoint.sha256[:12]})", *sources])
    config["card"] = card
    path = save_checkpoint(out, state, config)
    try:
        build_model(load_checkpoint(path))
    except CheckpointError:
        Path(path).unlink(missing_ok=True)
        raise
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    """Command line: compose and write the checkpoint; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m vidfake.checkpoints.compose", description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path, help="the checkpoint everything else comes from")
    parser.add_argument("--part", action="append", default=[], metavar="NAME=DONOR",
                        help=f"take part NAME ({', '.join(PARTS)}) from checkpoint DONOR (repeatable)")
    parser.add_argument("--mouth-weight", type=float, help="the mouth-motion head's weight in the clip logit")
    parser.add_argument("--mouth-threshold", type=float,
                        help="the mouth-motion logit from which a verdict says the mouth looks re-generated")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    parts = {}
    for spec in args.part:
        name, sep, donor = spec.partition("=")
        if not sep or not donor:
            parser.error(f"--part takes NAME=DONOR, got {spec!r}")
        parts[name] = donor
    try:
        path = compose(args.base, parts, args.out, args.mouth_weight, args.mouth_threshold)
    except (ValueError, CheckpointError) as error:
        print(f"vidfake compose: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
