"""The checkpoint's model on one device: built on first use, run on clips of face crops.

Clips go through a scoring copy of the model (``scoring_module``: the same scores, faster
on a CPU; ``vidfake.temporal.inference``); heat maps use the model itself (``module``).

Building it imports torch and timm and reads the weights, so it waits until a file
reaches the model; a run of unreadable files never pays for it.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from vidfake.checkpoints.format import Checkpoint, CheckpointHeader, build_model, load_checkpoint
from vidfake.extract.video import AudioTrack
from vidfake.scoring.batching import audio_batch, clip_batches, pad
from vidfake.scoring.clip_stream import ClipResult, StreamedClip
from vidfake.temporal import ModelConfig
from vidfake.utils.memory import release_freed_memory

if TYPE_CHECKING:
    import torch


class ClipModel:
    """The model of one checkpoint (``header``; ``checkpoint`` when its weights are read
    already) on ``device``, run on complete clips of one face track at a time."""

    def __init__(self, header: CheckpointHeader, config: ModelConfig, device: str, checkpoint: Checkpoint | None = None):
        self.header = header
        self.config = config
        self.device_name = device
        self._checkpoint = checkpoint
        self._module = None
        self._scoring_module = None

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint with its weights (read on first use; its file is not hashed again)."""
        if self._checkpoint is None:
            self._checkpoint = load_checkpoint(self.header.path, sha256=self.header.sha256)
        return self._checkpoint

    @property
    def device(self) -> torch.device:
        """The torch device the model runs on."""
        import torch

        return torch.device(self.device_name)

    @property
    def module(self):
        """The model with the checkpoint's weights, built on first use (``CheckpointError``
        when the weights do not fit the checkpoint's model config)."""
        if self._module is None:  # imports torch and timm: only when a file reaches the model
            self._module = build_model(self.checkpoint, self.device)
        return self._module

    @property
    def scoring_module(self):
        """The model as scoring runs it (``vidfake.temporal.inference.scoring_copy``: batch
        norms folded, channels-last, no mask maps): the same scores, faster; built on first
        use. Heat maps and anything that trains use ``module``. A copy that would not give
        the model's logits (``ScoringCopyError``) is not used: the model scores, slower, and
        a warning says so."""
        if self._scoring_module is None:
            from vidfake.temporal.inference import ScoringCopyError, scoring_copy

            try:
                self._scoring_module = scoring_copy(self.module)
            except ScoringCopyError as error:
                warnings.warn(f"{error}: scoring with the model itself, slower", RuntimeWarning, stacklevel=2)
                self._scoring_module = self.module
        return self._scoring_module

    def run(self, clips: list[StreamedClip], audio: AudioTrack | None, fps: float | None) -> list[ClipResult]:
        """One result per clip, in order, at most ``FRAMES_PER_BATCH`` frames through the
        model a call (``audio`` or ``fps`` None: no sound for the sync head)."""
        import torch

        device, model = self.device, self.scoring_module
        mouth_size = self.config.mouth_size if self.config.sync else None
        results: list[ClipResult] = []
        for k, part in enumerate(clip_batches(clips)):
            if k:  # the last batch's activations, freed, would stay resident under this one
                release_freed_memory()
            batch = pad(part, self.config.input_size, mouth_size)
            sound = audio_batch(batch, audio, fps)
            with torch.inference_mode():
                out = model(
                    batch.frames.to(device), batch.times.to(device), batch.mask.to(device),
                    mouths=None if batch.mouths is None else batch.mouths.to(device),
                    audio=None if sound is None else sound.samples.to(device),
                    fps=None if sound is None else sound.fps.to(device),
                    audio_mask=None if sound is None else sound.mask.to(device),
                )
            logits = out.frame_logits.float().cpu().numpy()
            clip_logits = out.clip_logit.float().cpu().tolist()
            for b, clip in enumerate(part):
                sync = None
                if out.sync is not None and bool(out.used_sync[b]):
                    sync = (float(out.sync.confidence[b]), int(out.sync.offset[b]))
                mouth = None
                if out.mouth is not None and bool(out.mouth.available[b]):
                    mouth = float(out.mouth.logit[b])
                results.append(ClipResult(clip.frame_indices, clip_logits[b], logits[b, : len(clip.frame_indices)], sync,
                                          mouth))
        return results
