"""LightningModule around :class:`vidfake.temporal.DeepfakeDetector`, and a callback
that saves vidfake checkpoints (the format ``vidfake score`` / :class:`Scorer` read)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from vidfake.checkpoint import save_checkpoint
from vidfake.eval.metrics import MetricError, log_loss, roc_auc
from vidfake.extract.pipeline import ExtractConfig
from vidfake.init_checkpoint import checkpoint_config
from vidfake.temporal import ModelConfig, create_model
from vidfake.temporal.aggregate import AggregationConfig


def warmup_cosine(step: int, warmup_steps: int, max_steps: int, min_factor: float = 0.0) -> float:
    """LR factor: linear warm-up from ~0 to 1 over ``warmup_steps``, then cosine to ``min_factor``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay = max(1, max_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class DetectorModule(pl.LightningModule):
    def __init__(
        self,
        model_config: ModelConfig,
        lr: float = 3e-4,
        weight_decay: float = 0.05,
        warmup_steps: int = 100,
        frame_loss_weight: float = 0.5,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.model_config = model_config
        self.model = create_model(model_config, pretrained=pretrained)
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.frame_loss_weight = frame_loss_weight
        self.last_val_auc: float | None = None
        self.last_val_log_loss: float | None = None
        self._val_probs: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []

    def forward(self, batch: dict):
        return self.model(batch["frames"], batch["times"], batch["mask"])

    def _loss(self, batch: dict) -> tuple[torch.Tensor, object]:
        out = self(batch)
        labels = batch["label"].float()
        clip_loss = F.binary_cross_entropy_with_logits(out.clip_logit.float(), labels)
        loss = clip_loss
        if self.frame_loss_weight:
            mask = batch["mask"]
            frame_labels = labels[:, None].expand_as(out.frame_logits)[mask]
            frame_loss = F.binary_cross_entropy_with_logits(out.frame_logits[mask].float(), frame_labels)
            loss = loss + self.frame_loss_weight * frame_loss
        return loss, out

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["label"]))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_probs, self._val_labels = [], []

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, out = self._loss(batch)
        self.log("val_loss", loss, batch_size=len(batch["label"]))
        self._val_probs.append(torch.sigmoid(out.clip_logit.float()).detach().cpu())
        self._val_labels.append(batch["label"].detach().cpu())

    def on_validation_epoch_end(self) -> None:
        if not self._val_probs:
            return
        probs = torch.cat(self._val_probs).numpy().astype(np.float64)
        labels = torch.cat(self._val_labels).numpy().astype(np.int64)
        self._val_probs, self._val_labels = [], []
        try:
            self.last_val_auc = float(roc_auc(labels, probs))
        except MetricError:  # a single class in val: AUC undefined
            self.last_val_auc = None
        self.last_val_log_loss = float(log_loss(labels, probs))
        if self.last_val_auc is not None:
            self.log("val_auc", self.last_val_auc, prog_bar=True)
        self.log("val_log_loss", self.last_val_log_loss)

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.lr,
        )
        max_steps = int(self.trainer.estimated_stepping_batches) if self.trainer is not None else 1
        warmup = min(self.warmup_steps, max(0, max_steps - 1))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup, max_steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class SaveVidfakeCheckpoint(pl.Callback):
    """After each validation: ``last_path`` always, ``best_path`` when ``val_auc`` improves
    (the first validation with a defined AUC counts as an improvement). The saved state
    dict is the DeepfakeDetector's own, so :class:`vidfake.scoring.Scorer` loads it."""

    def __init__(
        self,
        best_path: str | Path,
        extract_config: ExtractConfig,
        aggregation: AggregationConfig | None = None,
        last_path: str | Path | None = None,
        data_dir: str | Path | None = None,
        name: str = "vidfake",
        version: str = "",
    ) -> None:
        super().__init__()
        self.best_path = Path(best_path)
        self.last_path = Path(last_path) if last_path is not None else self.best_path.with_name("last.vidfake.safetensors")
        self.extract_config = extract_config
        self.aggregation = aggregation or AggregationConfig()
        self.data_dir = None if data_dir is None else str(data_dir)
        self.name = name
        self.version = version
        self.best_auc: float | None = None
        self.best_step: int | None = None
        self.last_saved_step: int | None = None

    def _save(self, path: Path, module: DetectorModule, step: int, auc: float | None, ll: float | None) -> None:
        config = checkpoint_config(
            module.model_config, self.extract_config, self.aggregation,
            name=self.name, version=self.version,
            training={
                "steps": int(step),
                "val_auc": auc,
                "val_log_loss": ll,
                "data_dir": self.data_dir,
                "best_step": self.best_step,
                "best_val_auc": self.best_auc,
            },
        )
        save_checkpoint(path, module.model.state_dict(), config)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: DetectorModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        step = trainer.global_step
        auc, ll = pl_module.last_val_auc, pl_module.last_val_log_loss
        if auc is not None and (self.best_auc is None or auc > self.best_auc):
            self.best_auc, self.best_step = auc, step
            self._save(self.best_path, pl_module, step, auc, ll)
        self._save(self.last_path, pl_module, step, auc, ll)
        self.last_saved_step = step
