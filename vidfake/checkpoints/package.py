"""Turn a trained, calibrated checkpoint into the packaged default model.

``python -m vidfake.checkpoints.package runs/default/calibrated.safetensors --version 2026.11
--plan uniform:32 [--drop-sync] [--frame-only]`` writes ``vidfake/checkpoints/default.safetensors``
and its ``default.sha256``. The two surgery options exist because a model trained on
still images has parts that never learned anything, and shipping them would let untrained
weights move every score:

* ``--drop-sync`` removes the lip-sync head (config ``sync: false``), so no verdict
  reports a sync confidence the head was never trained to give;
* ``--frame-only`` zeroes the temporal transformer's output layer, so a clip's logit is
  the mean of its frame logits (the transformer's documented starting point) rather than
  a correction learned only from one-frame clips.

What was done is recorded in the checkpoint's ``card`` so ``vidfake models`` shows it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from vidfake.checkpoints.default import _CHECKSUM_FILE, DEFAULT_MODEL_FILE, _package_dir
from vidfake.checkpoints.format import file_sha256, load_checkpoint, save_checkpoint
from vidfake.extract.sampling import parse_plan

__all__ = ["package_default_model", "MAX_PACKAGE_MB"]

MAX_PACKAGE_MB = 30.0  # the wheel carries the model: keep installs small


def package_default_model(
    source: str | Path,
    version: str,
    plan: str,
    out_dir: str | Path | None = None,
    name: str = "vidfake-default",
    drop_sync: bool = False,
    frame_only: bool = False,
    card: dict | None = None,
) -> Path:
    """Write ``DEFAULT_MODEL_FILE`` and its checksum into ``out_dir`` (the package folder)."""
    parse_plan(plan)  # refuse a bad plan before writing anything
    checkpoint = load_checkpoint(source)
    config = dict(checkpoint.config)
    state = dict(checkpoint.state_dict)
    notes = dict(config.get("card", {}))
    if drop_sync and config["model"].get("sync"):
        state = {k: v for k, v in state.items() if not (k.startswith("sync.") or k == "sync_weight")}
        config["model"] = {**config["model"], "sync": False}
        notes["lip_sync"] = "removed: the head was not trained"
    if frame_only:
        for key in ("temporal.head.weight", "temporal.head.bias"):
            state[key] = torch.zeros_like(state[key])
        notes["temporal"] = "frame-only: clip logit = mean frame logit (trained on still images)"
    notes.update(card or {})
    config.update(name=name, version=version, card=notes)
    config["extract"] = {**config["extract"], "plan": plan}
    config.setdefault("training", {})["source_sha256"] = checkpoint.sha256

    folder = Path(out_dir) if out_dir is not None else _package_dir()
    path = save_checkpoint(folder / DEFAULT_MODEL_FILE, state, config)
    size_mb = path.stat().st_size / 2**20
    if size_mb > MAX_PACKAGE_MB:
        path.unlink()
        raise ValueError(f"the packaged model would be {size_mb:.1f} MB, over the {MAX_PACKAGE_MB} MB limit")
    digest = file_sha256(path)
    (folder / _CHECKSUM_FILE).write_text(f"{digest}  {DEFAULT_MODEL_FILE}\n")
    load_checkpoint(path)  # the written file must load back
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: package a trained checkpoint as the default model; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m vidfake.checkpoints.package", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, help="trained (and calibrated) vidfake checkpoint")
    p.add_argument("--version", required=True, help="model version, e.g. 2026.11")
    p.add_argument("--plan", required=True, help="sampling plan the default model scores with")
    p.add_argument("--name", default="vidfake-default")
    p.add_argument("--out-dir", type=Path, help="default: the installed vidfake/checkpoints folder")
    p.add_argument("--drop-sync", action="store_true", help="remove an untrained lip-sync head")
    p.add_argument("--frame-only", action="store_true", help="zero the temporal head (model trained on stills)")
    p.add_argument("--card", action="append", default=[], metavar="KEY=VALUE", help="fact shown by `vidfake models`")
    args = p.parse_args(argv)
    card = dict(item.split("=", 1) for item in args.card)
    try:
        path = package_default_model(args.source, args.version, args.plan, args.out_dir, args.name,
                                     args.drop_sync, args.frame_only, card)
    except (ValueError, OSError) as error:
        print(f"package: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB) and its checksum")
    return 0


if __name__ == "__main__":
    sys.exit(main())
