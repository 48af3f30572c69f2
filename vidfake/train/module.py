"""LightningModules around :class:`vidfake.temporal.DeepfakeDetector`.

:class:`VidfakeModule` holds what every training task shares: the model, AdamW with
warm-up and cosine decay over the parameters that train, and validation metrics (AUC and
log loss from :mod:`vidfake.eval.metrics`) over the whole validation set, gathered from
every process. :class:`DetectorModule` trains the detector (clip, per-frame and lip-sync
losses); :class:`vidfake.train.pretext.SyncPretextModule` trains the lip-sync head alone.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from vidfake.eval.metrics import MetricError, log_loss, roc_auc
from vidfake.temporal import DetectorOutput, ModelConfig, create_model
from vidfake.temporal.sync import sync_contrastive_loss
from vidfake.train.config import OptimConfig


def warmup_cosine(step: int, warmup_steps: int, max_steps: int, min_factor: float = 0.0) -> float:
    """LR factor: linear warm-up from ~0 to 1 over ``warmup_steps``, then cosine to ``min_factor``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay = max(1, max_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def zero_touch(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """0 with a graph through ``params``: added to a loss, every one of them gets a (zero)
    gradient even in a step that did not use it, which DDP's gradient reduction needs."""
    return sum((p.sum() for p in params if p.requires_grad), torch.zeros(())) * 0.0


def blend_mask_loss(mask_logits: torch.Tensor, blend_mask: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
    """Per-pixel BCE between the mask head's ``(B,T,h,w)`` logits and the blend masks
    ``(B,T,H,W)`` (uint8, 255 = fully blended) area-averaged down to ``(h,w)``, over the
    frames where ``use (B,T)`` is True. With no such frame it is a zero that still reaches
    the head's parameters (DDP needs every parameter in every step's graph)."""
    if not bool(use.any()):
        return mask_logits.sum() * 0.0
    target = blend_mask[use].unsqueeze(1).float().div_(255.0)
    target = F.interpolate(target, size=mask_logits.shape[-2:], mode="area").squeeze(1)
    return F.binary_cross_entropy_with_logits(mask_logits[use].float(), target)


def weak_mask_loss(mask_logits: torch.Tensor, targets: torch.Tensor, use: torch.Tensor,
                   top_fraction: float = 0.05) -> torch.Tensor:
    """The mask map judged by one number per frame (multiple-instance learning), which is
    all a dataset's fake without a mask of its edit can teach: BCE between the mean of each
    ``(B,T,h,w)`` map's top ``top_fraction`` of logits (at least one) and ``targets (B,T)``
    in [0,1] (see :func:`peak_targets`: 1 for a fake, somewhere was blended, so the map's
    peak should be high; 0 for a real face, low everywhere), over the frames where
    ``use (B,T)`` is True. With no such frame it is a zero connected to the logits, as
    :func:`blend_mask_loss`."""
    if not bool(use.any()):
        return mask_logits.sum() * 0.0
    flat = mask_logits[use].float().flatten(1)
    k = max(1, math.ceil(top_fraction * flat.shape[1]))
    peaks = flat.topk(k, dim=1).values.mean(dim=1)
    return F.binary_cross_entropy_with_logits(peaks, targets[use].float())


def peak_targets(blend_mask: torch.Tensor, known: torch.Tensor, labels: torch.Tensor,
                 size: tuple[int, int]) -> torch.Tensor:
    """``(B,T)`` targets of :func:`weak_mask_loss`: where the blend mask ``(B,T,H,W)`` is
    ``known (B,T)``, its largest value at the map's ``size`` (area-averaged as in
    :func:`blend_mask_loss`; 0 for a real face, whatever its label says, as a lip-sync
    fake's pixels are real); elsewhere the frame's label ``labels (B,T)``."""
    b, t = labels.shape
    cells = F.interpolate(blend_mask.flatten(0, 1)[:, None].float().div_(255.0), size=size, mode="area")
    return torch.where(known, cells.flatten(1).amax(1).view(b, t).to(labels.device), labels.float())


def in_parts(name: str, parts: Iterable[str]) -> str | None:
    """The longest of ``parts`` that the parameter or module ``name`` lies in (``name`` is
    the part or starts with ``part + "."``), or None."""
    found = [p for p in parts if name == p or name.startswith(p + ".")]
    return max(found, key=len) if found else None


def check_parts(model: torch.nn.Module, parts: Iterable[str]) -> None:
    """Refuse names that are not parts of ``model`` with a ``ValueError``: a part is a
    top-level child (``encoder``), a direct parameter (``sync_weight``) or a dotted path to
    a submodule (``encoder.mask_decoder``)."""
    available = {name for name, _ in model.named_children()}
    available |= {name for name, _ in model.named_parameters(recurse=False)}
    submodules = {name for name, _ in model.named_modules() if name}
    unknown = set(parts) - available - submodules
    if unknown:
        raise ValueError(f"unknown model parts {sorted(unknown)}; this model has {sorted(available)} "
                         "(or a dotted path to a submodule, e.g. encoder.mask_head)")


def set_trainable(model: torch.nn.Module, parts: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Gradients for the parameters in ``parts`` only (:func:`check_parts` names); returns
    the top-level parts that are not wholly trained (kept in eval mode) and the dotted
    parts that train inside them."""
    check_parts(model, parts)
    for name, p in model.named_parameters():
        p.requires_grad_(in_parts(name, parts) is not None)
    frozen = tuple(sorted(name for name, _ in model.named_children() if name not in parts))
    return frozen, tuple(sorted(p for p in parts if "." in p))


def adamw_groups(model: torch.nn.Module, lr: float, weight_decay: float, scales: dict[str, float]) -> list[dict]:
    """AdamW parameter groups of ``model``'s trainable parameters: weight decay on matrices
    only, each part at ``lr`` times its ``scales`` entry (the innermost named part; default 1)."""
    groups: dict[tuple[bool, float], list[torch.Tensor]] = defaultdict(list)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decays = not (p.ndim <= 1 or name.endswith(".bias"))
        part = in_parts(name, scales)
        groups[(decays, 1.0 if part is None else scales[part])].append(p)
    return [{"params": params, "weight_decay": weight_decay if decays else 0.0, "lr": lr * scale}
            for (decays, scale), params in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1]))]


class VidfakeModule(pl.LightningModule):
    """Shared base. Subclasses implement :meth:`losses` and ``validation_step``, which
    calls :meth:`collect_val` with per-sample ``prob`` (P(fake)) and ``label`` (plus any
    extra per-sample values they log in :meth:`log_val_extras`).

    ``vidfake train`` records the run's merged config with ``save_hyperparameters``, so
    ``self.hparams`` is the config (empty for a module built in code)."""

    part_prefix = "train_"  # each loss part is logged as f"{part_prefix}{name}_loss"

    def __init__(self, model_config: ModelConfig, *, lr: float = OptimConfig.lr,
                 weight_decay: float = OptimConfig.weight_decay, warmup_steps: int = OptimConfig.warmup_steps,
                 pretrained: bool = True) -> None:
        """Args:
            model_config: the detector to build (:func:`vidfake.temporal.create_model`).
            lr, weight_decay, warmup_steps: AdamW and its warm-up (defaults: :class:`OptimConfig`).
            pretrained: load ``model_config.pretrained_path`` into the backbone; False when
                every weight will be replaced anyway (a checkpoint, a resumed run).
        """
        super().__init__()
        self.frozen_parts: tuple[str, ...] = ()
        self.trainable_modules: tuple[str, ...] = ()  # dotted parts that train inside a frozen part
        self.lr_scale: dict[str, float] = {}  # per-part learning-rate multipliers (set_lr_scale)
        self.model_config = model_config
        self.model = create_model(model_config, pretrained=pretrained)
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.last_val_auc: float | None = None
        self.last_val_log_loss: float | None = None
        self._val: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._val_seen = 0

    def train_parts(self, parts: Sequence[str]) -> None:
        """Train only the model's ``parts``: top-level ones (``encoder``, ``temporal``,
        ``sync``, ``sync_weight``) or dotted submodules (``encoder.mask_decoder``). The rest
        gets no gradients and stays in eval mode, so a frozen encoder's BatchNorm statistics
        are not moved by the new data either. Used to fit a new head onto a finished model
        without disturbing it."""
        self.frozen_parts, self.trainable_modules = set_trainable(self.model, parts)
        self.train(self.training)

    def train(self, mode: bool = True):
        """Lightning's train/eval switch; the frozen parts stay in eval mode (but the
        dotted parts that train inside them)."""
        super().train(mode)
        for name in self.frozen_parts:
            getattr(self.model, name).eval()
        for name in self.trainable_modules:
            self.model.get_submodule(name).train(mode)
        return self

    def losses(self, batch: dict) -> tuple[torch.Tensor, object, dict[str, torch.Tensor]]:
        """``(total loss, model output, {part name: unweighted loss})``."""
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        """The batch's loss, logged with its parts (None: nothing that trains ran)."""
        loss, _, parts = self.losses(batch)
        if not loss.requires_grad:  # only frozen parts ran (say, a batch without audio for a sync-only fit)
            return None  # Lightning skips the optimiser step
        n = len(batch["label"])
        self.log("train_loss", loss, prog_bar=True, batch_size=n)
        for name, value in parts.items():
            self.log(f"{self.part_prefix}{name}_loss", value, batch_size=n)
        return loss

    # ---------------------------------------------------------------- validation metrics
    def on_validation_epoch_start(self) -> None:
        """Start the epoch's per-sample values afresh."""
        self._val = defaultdict(list)
        self._val_seen = 0

    def collect_val(self, batch: dict, keep: torch.Tensor | None = None, **values: torch.Tensor) -> None:
        """Store per-sample values of this batch (rows where ``keep``) for the epoch's metrics."""
        n = len(batch["label"])
        index = batch.get("index")
        if index is None:  # a loader without indices: positions in this process's order
            index = torch.arange(self._val_seen, self._val_seen + n)
        self._val_seen += n
        keep = torch.ones(n, dtype=torch.bool) if keep is None else keep.detach().cpu().bool()
        self._val["index"].append(index.detach().cpu().long()[keep])
        for key, value in values.items():
            self._val[key].append(value.detach().cpu().double()[keep])

    def _gathered(self) -> dict[str, np.ndarray]:
        """This epoch's values from every process, each sample once (samplers pad with repeats)."""
        local = {k: torch.cat(v) for k, v in self._val.items()}
        world = self.trainer.world_size if self._trainer is not None else 1
        if world > 1:
            n = len(local["index"])
            sizes = self.all_gather(torch.tensor(n, device=self.device)).view(-1).tolist()
            longest = max(sizes)
            for key, value in local.items():
                padded = torch.zeros(longest, dtype=value.dtype, device=self.device)
                padded[:n] = value.to(self.device)
                everyone = self.all_gather(padded).view(world, longest)
                local[key] = torch.cat([everyone[r, : sizes[r]] for r in range(world)]).cpu()
        out = {k: v.numpy() for k, v in local.items()}
        _, first = np.unique(out["index"], return_index=True)
        return {k: v[first] for k, v in out.items()}

    def on_validation_epoch_end(self) -> None:
        """AUC and log loss over the whole validation set (all processes), logged and kept
        in ``last_val_auc`` / ``last_val_log_loss`` for the checkpoint callback."""
        if not self._val.get("index"):
            return
        values = self._gathered()
        self._val = defaultdict(list)
        if len(values["index"]) == 0:
            return
        probs, labels = values["prob"], values["label"].astype(np.int64)
        try:
            self.last_val_auc = float(roc_auc(labels, probs))
        except MetricError:  # a single class in val: AUC undefined
            self.last_val_auc = None
        self.last_val_log_loss = float(log_loss(labels, probs))
        # the values are already global (gathered above); sync_dist only quiets Lightning's
        # warning about epoch-level values logged without it
        if self.last_val_auc is not None:
            self.log("val_auc", self.last_val_auc, prog_bar=True, sync_dist=True)
        self.log("val_log_loss", self.last_val_log_loss, sync_dist=True)
        self.log_val_extras(values)

    def log_val_extras(self, values: dict[str, np.ndarray]) -> None:
        """Hook for task-specific validation numbers (same on every process)."""

    # ---------------------------------------------------------------- optimisation
    def set_lr_scale(self, scales: dict[str, float]) -> None:
        """Per-part learning-rate multipliers (top-level part names, as in
        :meth:`train_parts`). A single scalar such as ``sync_weight`` needs a far larger step
        than a network's weights to travel in a short run."""
        check_parts(self.model, scales)
        if any(float(v) <= 0 for v in scales.values()):
            raise ValueError(f"learning-rate scales must be positive, got {scales}")
        self.lr_scale = {k: float(v) for k, v in scales.items()}

    def param_groups(self) -> list[dict]:
        """The optimiser's parameter groups (see :func:`adamw_groups`)."""
        return adamw_groups(self.model, self.lr, self.weight_decay, self.lr_scale)

    def configure_optimizers(self):
        """AdamW over :meth:`param_groups`, warm-up then cosine decay per step (:func:`warmup_cosine`)."""
        optimizer = torch.optim.AdamW(self.param_groups(), lr=self.lr)
        max_steps = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 1
        warmup = min(self.warmup_steps, max(0, max_steps - 1))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup, max_steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class DetectorModule(VidfakeModule):
    """The detector on face clips. Loss::

        clip_loss_weight * BCE(clip logit) + frame_loss_weight * BCE(per-frame logits)
        + mask_loss_weight * BCE(blend-mask logits, SBI masks)      (model.mask_head)
        + mask_weak_loss_weight * BCE(peak of the map, label)       (model.mask_head)
        + sync_loss_weight * InfoNCE(sync head, in-sync clips)      (with use_sync)

    The mask term (see :func:`blend_mask_loss`) needs batches with ``blend_mask`` (the data
    module's ``blend_masks``): SBI fakes are judged on their blend masks, real faces on an
    empty mask, dataset fakes (where the edit is not known) not at all. The weak term
    (:func:`weak_mask_loss`) teaches those too, from the label alone: the map's peak should
    be high on a fake and low on a real face (every frame; targets from :func:`peak_targets`).

    ``use_sync``: batches carry mouths and audio (the data module's ``sync``); the clip
    logit then includes the sync head's, as in scoring. The InfoNCE term (see
    :func:`vidfake.temporal.sync.sync_contrastive_loss`) keeps the head aligned on clips
    whose audio is their own and unmoved. Without ``use_sync`` the sync head (if the model
    has one) sees no input and is frozen."""

    def __init__(
        self,
        model_config: ModelConfig,
        *,
        lr: float = OptimConfig.lr,
        weight_decay: float = OptimConfig.weight_decay,
        warmup_steps: int = OptimConfig.warmup_steps,
        clip_loss_weight: float = OptimConfig.clip_loss_weight,
        frame_loss_weight: float = OptimConfig.frame_loss_weight,
        mask_loss_weight: float = OptimConfig.mask_loss_weight,
        mask_weak_loss_weight: float = OptimConfig.mask_weak_loss_weight,
        sync_loss_weight: float = OptimConfig.sync_loss_weight,
        sync_temperature: float = OptimConfig.sync_temperature,
        use_sync: bool = False,
        pretrained: bool = True,
    ) -> None:
        """Args:
            model_config: the detector to train.
            lr, weight_decay, warmup_steps: see :class:`VidfakeModule`.
            clip_loss_weight, frame_loss_weight, mask_loss_weight, mask_weak_loss_weight,
                sync_loss_weight: the loss terms' weights (the mask terms count only with
                ``model_config.mask_head``,
                the sync term only with ``use_sync``); defaults: :class:`OptimConfig`.
            sync_temperature: the InfoNCE temperature.
            use_sync: batches carry mouths and audio (needs ``model_config.sync``).
            pretrained: see :class:`VidfakeModule`.
        """
        if use_sync and not model_config.sync:
            raise ValueError("lip-sync data (data.sync) needs a model with a sync head (model.sync: true)")
        super().__init__(model_config, lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps,
                         pretrained=pretrained)
        self.frame_loss_weight = frame_loss_weight
        self.clip_loss_weight = clip_loss_weight
        self.sync_loss_weight = sync_loss_weight
        self.sync_temperature = sync_temperature
        self.use_sync = use_sync
        self.mask_loss_weight = mask_loss_weight if model_config.mask_head else 0.0
        self.mask_weak_loss_weight = mask_weak_loss_weight if model_config.mask_head else 0.0
        if self.model.sync is not None and not use_sync:
            self.model.sync.requires_grad_(False)
            self.model.sync_weight.requires_grad_(False)

    def forward(self, batch: dict) -> DetectorOutput:
        """The model on a :func:`~vidfake.train.datamodule.collate_clips` batch (with ``use_sync``,
        its mouths and audio too)."""
        extra = {}
        if self.use_sync:
            extra = {k: batch[k] for k in ("mouths", "audio", "fps", "audio_mask")}
        return self.model(batch["frames"], batch["times"], batch["mask"], **extra)

    def losses(self, batch: dict) -> tuple[torch.Tensor, object, dict[str, torch.Tensor]]:
        """``(total loss, model output, {part name: unweighted loss})``."""
        out = self(batch)
        labels = batch["label"].float()
        parts = {"clip": F.binary_cross_entropy_with_logits(out.clip_logit.float(), labels)}
        loss = self.clip_loss_weight * parts["clip"]
        # a temporal pseudo-fake blends only some of its frames: those carry their own labels
        per_frame = batch.get("frame_labels")
        frame_labels = (labels[:, None].expand_as(out.frame_logits) if per_frame is None
                        else per_frame.to(out.frame_logits.device).float())
        if self.frame_loss_weight:
            mask = batch["mask"]
            parts["frame"] = F.binary_cross_entropy_with_logits(out.frame_logits[mask].float(), frame_labels[mask])
            loss = loss + self.frame_loss_weight * parts["frame"]
        if self.mask_loss_weight or self.mask_weak_loss_weight:
            if "blend_mask" not in batch:
                raise ValueError("the model has a mask head but the batch has no blend masks: build the data module "
                                 "with blend_masks=True (vidfake train does when model.mask_head is true)")
            known = batch["mask"] & batch["blend_mask_known"][:, None]
            if self.mask_loss_weight:
                parts["mask"] = blend_mask_loss(out.mask_logits, batch["blend_mask"], known)
                loss = loss + self.mask_loss_weight * parts["mask"]
            if self.mask_weak_loss_weight:
                targets = peak_targets(batch["blend_mask"], known, frame_labels, out.mask_logits.shape[-2:])
                parts["mask_weak"] = weak_mask_loss(out.mask_logits, targets, batch["mask"] & ~torch.isnan(targets))
                loss = loss + self.mask_weak_loss_weight * parts["mask_weak"]
        if self.use_sync:
            if self.sync_loss_weight and out.sync is not None:
                in_sync = batch["sync_known"] & (batch["sync_shift"] == 0)
                parts["sync"] = sync_contrastive_loss(out.sync, 0, sample_mask=in_sync,
                                                      temperature=self.sync_temperature)
                loss = loss + self.sync_loss_weight * parts["sync"]
            loss = loss + zero_touch([*self.model.sync.parameters(), self.model.sync_weight]).to(loss.device)
        return loss, out, parts

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Log the loss; keep P(fake) of each clip for the epoch's metrics."""
        loss, out, _ = self.losses(batch)
        self.log("val_loss", loss, batch_size=len(batch["label"]), sync_dist=True)
        self.collect_val(batch, prob=torch.sigmoid(out.clip_logit.float()), label=batch["label"])
