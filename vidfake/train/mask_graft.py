"""Give a finished checkpoint the finer blend-mask map, without changing any of its scores.

``python -m vidfake.train.mask_graft BASE TRAINED --out OUT``

``configs/default_mask_decoder.yaml`` trains only the mask head and the new decoder
(:mod:`vidfake.temporal.mask_decoder`) on top of ``BASE`` with everything else frozen. The
run's own checkpoint has the weights but not what ``BASE`` carried besides them (its
calibration, name, version, sampling plan and card), so it would not score like ``BASE``.
This copies ``BASE`` whole, sets ``model.mask_decoder``, and takes only the mask parts
(``encoder.mask_head.*``, ``encoder.mask_decoder.*``) from ``TRAINED``, after checking that
every other tensor of ``TRAINED`` is bit-identical to ``BASE``'s (so the run really was
frozen and the scores cannot move).
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

from vidfake.checkpoints.format import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["graft_mask_decoder", "MASK_PARTS"]

MASK_PARTS = ("encoder.mask_head.", "encoder.mask_decoder.")  # what the graft takes from the trained run


def _is_mask(key: str) -> bool:
    return key.startswith(MASK_PARTS)


def graft_mask_decoder(base: str | Path, trained: str | Path, out: str | Path) -> Path:
    """Write ``out``: checkpoint ``base`` (config, calibration, card and every weight) with
    ``trained``'s mask head and decoder and ``model.mask_decoder: true``.

    Raises:
        ValueError: ``trained`` has no decoder, its architecture differs from ``base``'s
            (other than the decoder), or it changed any weight outside the mask parts.
    """
    source, fitted = load_checkpoint(base), load_checkpoint(trained)
    # through ModelConfig: a key an older checkpoint lacks means its default
    base_model = source.settings.model.to_dict()
    fitted_model = fitted.settings.model.to_dict()
    if not fitted_model["mask_decoder"]:
        raise ValueError(f"{trained}: the model has no mask decoder (model.mask_decoder) to graft")
    if not base_model["mask_head"]:
        raise ValueError(f"{base}: the model has no mask head; the decoder refines one (train with mask_head: true)")
    differ = sorted(k for k in base_model if k != "mask_decoder" and base_model[k] != fitted_model[k])
    if differ:
        raise ValueError(f"{trained} is another architecture than {base} (model keys {differ} differ)")
    missing = sorted(k for k in source.state_dict if k not in fitted.state_dict)
    changed = sorted(k for k in source.state_dict if not _is_mask(k) and k in fitted.state_dict
                     and not torch.equal(source.state_dict[k], fitted.state_dict[k]))
    if missing or changed:
        raise ValueError(f"{trained} changed {len(changed)} and lacks {len(missing)} of {base}'s weights outside the "
                         f"mask parts (e.g. {(changed + missing)[:3]}): was it trained with optim.trainable "
                         "[encoder.mask_head, encoder.mask_decoder] from --init-from BASE?")
    state = {k: v for k, v in source.state_dict.items() if not _is_mask(k)}
    state.update({k: v for k, v in fitted.state_dict.items() if _is_mask(k)})
    config = copy.deepcopy(source.config)
    config["model"] = {**source.config["model"], "mask_decoder": True}
    steps = fitted.settings.training.get("steps")
    config.setdefault("card", {})["mask_decoder"] = (
        f"finer blend-mask map (1/4 of the crop) from a decoder trained {steps} steps on SBI masks with the "
        "rest of the model frozen; not part of the score")
    config.setdefault("training", {})["mask_decoder"] = {"source_sha256": fitted.sha256, "base_sha256": source.sha256,
                                                        "steps": steps}
    path = save_checkpoint(out, state, config)
    load_checkpoint(path)  # the written file must load back
    return path


def main(argv: list[str] | None = None) -> int:
    """The command line; exit code 2 when the two checkpoints do not fit together."""
    p = argparse.ArgumentParser(prog="python -m vidfake.train.mask_graft", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", type=Path, help="the finished checkpoint (e.g. vidfake/checkpoints/default.safetensors)")
    p.add_argument("trained", type=Path, help="the decoder run's checkpoint (OUT/last.safetensors)")
    p.add_argument("--out", type=Path, required=True, help="where to write the grafted checkpoint")
    args = p.parse_args(argv)
    try:
        path = graft_mask_decoder(args.base, args.trained, args.out)
    except (CheckpointError, OSError, ValueError) as error:
        print(f"mask_graft: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {args.base} with the mask decoder of {args.trained}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
