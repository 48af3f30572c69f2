"""Lip-sync pretext: train the detector's sync head alone on real talking faces.

For each clip of consecutive mouth crops with its own audio, every visual window's
in-sync audio window is the positive of an InfoNCE loss whose negatives are the same
clip's audio moved by every other searched offset (``-K..K`` frames) and another clip's
audio of the batch at every offset (:func:`vidfake.temporal.sync.sync_contrastive_loss`).
The head's decision (its sync logit, positive = out of sync = fake) learns from clips
whose audio the data module moved by several frames and from the other clip's audio
(binary cross-entropy), so the pretext checkpoint already flags lip-sync mismatches.

Validation: AUC and log loss of the sync logit for in-sync vs. moved clips (each val
clip both ways, fixed seed), and ``val_sync_offset_acc``, the share of clips whose best offset is the
true one within a frame. Only the sync head trains; the rest of the model is frozen and
never run, so the pretext checkpoint can start ``vidfake train`` fine-tuning through
``init.checkpoint`` with ``init.modules: [sync]``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vidfake.temporal import ModelConfig
from vidfake.temporal.sync import SyncOutput, sync_contrastive_loss
from vidfake.train.config import OptimConfig
from vidfake.train.module import VidfakeModule, zero_touch


def other_clip(media_ids: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(partner (B,), usable (B,) bool)``: each row's partner is the next row (the last
    takes the first), usable when it comes from another video, so its audio is not the
    row's own sound at some other time."""
    b = len(media_ids)
    partner = torch.roll(torch.arange(b), -1)
    usable = torch.tensor([media_ids[i] != media_ids[int(partner[i])] for i in range(b)], dtype=torch.bool)
    return partner, usable


class SyncPretextModule(VidfakeModule):
    """The lip-sync pretext (see the module docstring): only ``model.sync`` trains.

    Loss: ``sync_loss_weight * InfoNCE + sync_logit_loss_weight * BCE(sync logit)``."""

    part_prefix = "train_sync_"  # train_sync_contrastive_loss, train_sync_logit_loss

    def __init__(
        self,
        model_config: ModelConfig,
        *,
        lr: float = OptimConfig.lr,
        weight_decay: float = OptimConfig.weight_decay,
        warmup_steps: int = OptimConfig.warmup_steps,
        sync_loss_weight: float = OptimConfig.sync_loss_weight,
        sync_logit_loss_weight: float = OptimConfig.sync_logit_loss_weight,
        sync_temperature: float = OptimConfig.sync_temperature,
        pretrained: bool = True,
    ) -> None:
        """Args:
            model_config: a detector with a sync head (``sync: true``).
            lr, weight_decay, warmup_steps: see :class:`VidfakeModule`.
            sync_loss_weight, sync_logit_loss_weight: weights of the InfoNCE and the sync
                logit's BCE; defaults: :class:`OptimConfig`.
            sync_temperature: the InfoNCE temperature.
            pretrained: see :class:`VidfakeModule`.
        """
        if not model_config.sync:
            raise ValueError("the sync pretext needs a model with a sync head (model.sync: true)")
        super().__init__(model_config, lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps,
                         pretrained=pretrained)
        self.sync_loss_weight = sync_loss_weight
        self.sync_logit_loss_weight = sync_logit_loss_weight
        self.sync_temperature = sync_temperature
        self.train_parts(["sync"])

    def forward(self, batch: dict, audio: torch.Tensor | None = None, audio_mask: torch.Tensor | None = None) -> SyncOutput:
        """The sync head on the batch's mouths against ``audio`` (default: the batch's own)."""
        return self.model.sync(
            batch["mouths"], batch["audio"] if audio is None else audio, batch["fps"], mask=batch["mask"],
            audio_mask=batch["audio_mask"] if audio_mask is None else audio_mask,
        )

    def losses(self, batch: dict) -> tuple[torch.Tensor, SyncOutput, dict[str, torch.Tensor]]:
        """``(total loss, the sync head's output on the batch's own audio, {part: unweighted
        loss})`` with parts ``contrastive`` and ``logit``."""
        own = self(batch)
        partner, usable = other_clip(batch["media_id"])
        partner, usable = partner.to(self.device), usable.to(self.device)
        other = self(batch, batch["audio"][partner], batch["audio_mask"] & batch["audio_mask"][partner] & usable)
        in_sync = batch["sync_known"] & (batch["sync_shift"] == 0)
        parts = {"contrastive": sync_contrastive_loss(own, 0, sample_mask=in_sync, temperature=self.sync_temperature,
                                                      negatives=other)}
        logits = torch.cat([own.logit[own.available], other.logit[other.available]]).float()
        targets = torch.cat([(batch["sync_shift"] != 0)[own.available], torch.ones_like(other.available)[other.available]])
        if len(logits):
            parts["logit"] = F.binary_cross_entropy_with_logits(logits, targets.float())
        else:
            parts["logit"] = logits.sum() * 0.0
        loss = self.sync_loss_weight * parts["contrastive"] + self.sync_logit_loss_weight * parts["logit"]
        loss = loss + zero_touch(self.model.sync.parameters()).to(loss.device)
        return loss, own, parts

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Log the loss; keep each clip's P(out of sync), its label and whether its offset was found."""
        loss, own, _ = self.losses(batch)
        self.log("val_loss", loss, batch_size=len(batch["label"]), sync_dist=True)
        shift = batch["sync_shift"]
        offset_ok = ((own.offset + shift).abs() <= 1).float()  # the true offset of a clip moved by s is -s
        self.collect_val(batch, keep=own.available, prob=torch.sigmoid(own.logit.float()),
                         label=(shift != 0).float(), offset_ok=offset_ok)

    def log_val_extras(self, values: dict[str, np.ndarray]) -> None:
        """``val_sync_offset_acc``: the share of val clips whose best offset is the true one
        (within a frame)."""
        self.log("val_sync_offset_acc", float(values["offset_ok"].mean()), sync_dist=True)
