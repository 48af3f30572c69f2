"""Start a model from parts of another vidfake checkpoint (e.g. the sync head of a
lip-sync pretext run before fine-tuning the whole detector).

Only the named parts are copied: the pretext trains the sync head alone, so its frame
encoder is whatever it was initialised with and must not replace a fine-tuning run's
(ImageNet) backbone."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from vidfake.checkpoints.format import load_checkpoint

ALL = "all"


def load_parts(model: nn.Module, path: str | Path, modules: Sequence[str]) -> list[str]:
    """Copy the weights of ``modules`` (top-level names in the model's state dict, such as
    ``sync``, ``encoder``, ``temporal``; or ``all``) from the vidfake checkpoint at ``path``
    into ``model``. Returns the names copied. Raises ``ValueError`` when a part is missing
    from the checkpoint or a tensor's shape differs (the configs do not match)."""
    modules = list(modules)
    if not modules:
        raise ValueError("init.modules is empty: name the parts to copy (e.g. [sync]) or [all]")
    checkpoint = load_checkpoint(path)
    own = model.state_dict()
    if ALL in modules:
        wanted = dict(checkpoint.state_dict)
    else:
        wanted = {}
        for part in modules:
            found = {k: v for k, v in checkpoint.state_dict.items() if k == part or k.startswith(part + ".")}
            if not found:
                raise ValueError(f"{path}: no weights under {part!r} (it has: "
                                 f"{sorted({k.split('.')[0] for k in checkpoint.state_dict})})")
            wanted.update(found)
    unknown = sorted(k for k in wanted if k not in own)
    mismatched = sorted(k for k in wanted if k in own and own[k].shape != wanted[k].shape)
    if unknown or mismatched:
        problems = [f"{k}: {tuple(wanted[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched[:5]] + unknown[:5]
        raise ValueError(f"{path} does not fit this model ({len(mismatched)} shape mismatches, {len(unknown)} unknown "
                         f"tensors, e.g. {problems}); its model config differs from this run's")
    model.load_state_dict(wanted, strict=False)
    return sorted(wanted)
