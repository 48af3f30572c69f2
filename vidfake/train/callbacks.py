"""Callbacks of ``vidfake train``: vidfake checkpoints, Lightning's resume checkpoint,
throughput, and plain progress lines where there is no terminal."""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

from vidfake.checkpoints.format import checkpoint_config, save_checkpoint
from vidfake.extract.pipeline import ExtractConfig
from vidfake.temporal.aggregate import AggregationConfig
from vidfake.train.module import VidfakeModule


class SaveVidfakeCheckpoint(pl.Callback):
    """After each validation: ``last_path`` always, ``best_path`` when ``val_auc`` improves
    (the first validation with a defined AUC counts as an improvement). The saved state
    dict is the DeepfakeDetector's own, so :class:`vidfake.scoring.Scorer` loads it; its
    ``training`` block has the run's merged config (``config``: lr, loss weights, ...) when
    the module recorded one (``save_hyperparameters``). Only the global-zero process
    writes. Its best-so-far travels in Lightning's checkpoint, so a resumed run keeps
    comparing against it."""

    def __init__(
        self,
        best_path: str | Path,
        extract_config: ExtractConfig,
        aggregation: AggregationConfig | None = None,
        last_path: str | Path | None = None,
        data_dir: str | Path | None = None,
        name: str = "vidfake",
        version: str = "",
        task: str = "detect",
    ) -> None:
        super().__init__()
        self.best_path = Path(best_path)
        self.last_path = Path(last_path) if last_path is not None else self.best_path.with_name("last.vidfake.safetensors")
        self.extract_config = extract_config
        self.aggregation = aggregation or AggregationConfig()
        self.data_dir = None if data_dir is None else str(data_dir)
        self.name = name
        self.version = version
        self.task = task
        self.best_auc: float | None = None
        self.best_step: int | None = None
        self.last_saved_step: int | None = None

    def state_dict(self) -> dict:
        """The best-so-far, saved in Lightning's (resume) checkpoint."""
        return {"best_auc": self.best_auc, "best_step": self.best_step, "last_saved_step": self.last_saved_step}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the best-so-far of a resumed run."""
        self.best_auc = state_dict.get("best_auc")
        self.best_step = state_dict.get("best_step")
        self.last_saved_step = state_dict.get("last_saved_step")

    def _save(self, path: Path, module: VidfakeModule, step: int, auc: float | None, ll: float | None) -> None:
        training = {
            "task": self.task,
            "steps": int(step),
            "val_auc": auc,
            "val_log_loss": ll,
            "data_dir": self.data_dir,
            "best_step": self.best_step,
            "best_val_auc": self.best_auc,
        }
        if module.hparams:  # the run's merged config (vidfake train records it): lr, loss weights, ...
            training["config"] = dict(module.hparams)
        config = checkpoint_config(
            module.model_config, self.extract_config, self.aggregation,
            name=self.name, version=self.version, training=training,
        )
        save_checkpoint(path, module.model.state_dict(), config)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: VidfakeModule) -> None:
        """Save ``last`` and, when ``val_auc`` improved, ``best``."""
        if trainer.sanity_checking:
            return
        step = trainer.global_step
        auc, ll = pl_module.last_val_auc, pl_module.last_val_log_loss
        if auc is not None and (self.best_auc is None or auc > self.best_auc):
            self.best_auc, self.best_step = auc, step
            if trainer.is_global_zero:
                self._save(self.best_path, pl_module, step, auc, ll)
        self.save_last(trainer, pl_module, auc, ll)

    def save_last(self, trainer: pl.Trainer, pl_module: VidfakeModule,
                  auc: float | None = None, ll: float | None = None) -> None:
        """Write ``last_path`` now (also used when there is no validation data)."""
        if trainer.is_global_zero:
            self._save(self.last_path, pl_module, trainer.global_step, auc, ll)
        self.last_saved_step = trainer.global_step


class ResumeCheckpoint(pl.Callback):
    """Lightning's own checkpoint (weights, optimizer, LR schedule, loop position, callback
    state) at ``path`` after every validation during fitting, written to a temporary file
    and renamed, so an interruption never leaves half a file; ``vidfake train --resume``
    continues from it. Every process must call :meth:`save` (the strategy gathers state);
    only the global-zero one writes. Put it after :class:`SaveVidfakeCheckpoint` in the
    callback list so the best-so-far it saves is current."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.saved_step: int | None = None

    def save(self, trainer: pl.Trainer) -> None:
        """Write the resume checkpoint now (every process calls it)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        trainer.save_checkpoint(tmp, weights_only=False)  # ends with a barrier: the file is complete on return
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
        self.saved_step = trainer.global_step

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Save after each validation of a fit."""
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        self.save(trainer)


class Throughput(pl.Callback):
    """Training clips per second (all processes together, data loading included), over
    the last ``window`` batches, shown in the progress bar and logged as ``clips_per_s``.
    The window restarts after each validation so its pause does not count."""

    def __init__(self, window: int = 20) -> None:
        super().__init__()
        self.window = window
        self._marks: deque[tuple[float, int]] = deque(maxlen=window + 1)
        self.last_rate: float | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        """Count the batch's clips and log the rate over the window."""
        n = len(batch["label"]) * trainer.world_size
        self._marks.append((time.perf_counter(), n))
        if len(self._marks) < 2:
            return
        elapsed = self._marks[-1][0] - self._marks[0][0]
        if elapsed > 0:
            self.last_rate = sum(count for _, count in list(self._marks)[1:]) / elapsed
            pl_module.log("clips_per_s", self.last_rate, prog_bar=True, on_step=True, on_epoch=False, batch_size=1)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Restart the window (validation's pause is not training time)."""
        self._marks.clear()


class PrintProgress(pl.Callback):
    """One line every ``every`` optimizer steps on standard error (for logs and batch jobs,
    where a progress bar is unreadable): step, loss, clips/s and the latest val AUC."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = max(1, int(every))
        self._last = -1

    @rank_zero_only
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        """Print a line when the step is a multiple of ``every``."""
        step = trainer.global_step
        if step == self._last or step % self.every:
            return
        self._last = step
        metrics = trainer.progress_bar_metrics
        parts = [f"step {step}/{trainer.max_steps}"]
        for key, fmt in (("train_loss", "loss {:.4f}"), ("clips_per_s", "{:.1f} clips/s"), ("val_auc", "val_auc {:.4f}")):
            if key in metrics:
                parts.append(fmt.format(float(metrics[key])))
        print("vidfake train: " + "  ".join(parts), file=sys.stderr, flush=True)
