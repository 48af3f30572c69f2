"""Lip-sync training: aligned audio windows, sync items, the pretext, and fine-tuning with it."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.paths import REPO as ROOT
from tests.train.folders import SR, SynthClip, synthetic_face, talking, write_extraction, write_wav
from vidfake.testing import media
from vidfake.train.audio import SyncAudio, clip_audio, read_wav_span
from vidfake.train.data import ClipDataset, load_extracted
from vidfake.train.datamodule import FaceClipDataModule, collate_clips

FPS = 25.0
M = 32  # mouth crop side in the synthetic folders
TINY_SYNC = [  # a tiny model with a small sync head (the backbone is never trained here)
    "model.backbone=test_resnet", "model.input_size=32", "model.embed_dim=16", "model.temporal_layers=1",
    "model.temporal_heads=2", "model.sync=true", f"model.mouth_size={M}", "model.sync_dim=16",
    "model.sync_window=5", "model.sync_max_offset=4", "model.n_mels=40",
]


def _talking_clips(n: int, frames: int, seed: int = 0, audio_start: float = 0.0) -> list[SynthClip]:
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        mouths, audio = talking(rng, frames, FPS, M)
        face, landmarks = synthetic_face(rng, 32)
        pad = np.zeros(int(round(-audio_start * SR)), np.float32) if audio_start < 0 else np.zeros(0, np.float32)
        clips.append(SynthClip(f"talk{i:03d}", 0, np.repeat(face[None], frames, 0), np.repeat(landmarks[None], frames, 0),
                               fps=FPS, mouths=mouths, audio=np.concatenate([pad, audio]), audio_start=audio_start))
    return clips


def _talking_folder(out: Path, n: int, frames: int, seed: int = 0, audio_start: float = 0.0) -> Path:
    return write_extraction(out, _talking_clips(n, frames, seed, audio_start), 32, mouth_size=M)


# ---------------------------------------------------------------- audio windows
def test_read_wav_span_follows_the_frames_clock(tmp_path):
    audio = np.zeros(SR, np.float32)  # 1 s of silence with one click
    audio[4000] = 0.5
    entry = write_wav(tmp_path, "v", audio, start_time=0.3)  # first sample plays at 0.3 s
    path = tmp_path / "audio" / entry["file"]
    click_time = 0.3 + 4000 / SR
    span = read_wav_span(path, 0.3, click_time - 0.01, click_time + 0.01)
    assert span.dtype == np.float32 and len(span) == 320
    assert int(np.argmax(span)) == 160 and span[160] == pytest.approx(0.5, abs=1e-4)
    # before the audio starts and after it ends: zeros, same length
    early = read_wav_span(path, 0.3, 0.2, 0.35)
    assert len(early) == 2400 and not early[:1600].any()
    late = read_wav_span(path, 0.3, 1.25, 1.5)
    assert len(late) == 4000 and not late.any()


def test_sync_audio_shift_draws():
    rng = np.random.default_rng(0)
    assert {SyncAudio(shift_prob=0.0).draw_shift(rng) for _ in range(50)} == {0}
    shifts = [SyncAudio(shift_prob=1.0, min_shift=3, max_shift=5).draw_shift(rng) for _ in range(400)]
    assert set(shifts) == {-5, -4, -3, 3, 4, 5}
    half = [SyncAudio(shift_prob=0.5).draw_shift(rng) for _ in range(400)]
    assert 0.4 < np.mean(np.array(half) == 0) < 0.6
    with pytest.raises(ValueError):
        SyncAudio(min_shift=4, max_shift=3)


def test_clip_audio_window_and_shift(tmp_path):
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, SR).astype(np.float32)
    entry = write_wav(tmp_path, "v", audio, start_time=-0.2)  # audio starts 0.2 s before frame 0
    entry["file"] = tmp_path / "audio" / entry["file"]
    frame_time = 10 / FPS  # a clip of 8 frames starting at frame 10
    window = clip_audio(entry, frame_time, 8, FPS, SyncAudio())
    first = int(round((frame_time + 0.2) * SR))
    assert len(window) == 8 * SR / FPS
    np.testing.assert_allclose(window, audio[first : first + len(window)], atol=1e-4)
    # shifted by -3 frames with 2 frames of context: starts 3 frames earlier, 2 frames longer
    moved = clip_audio(entry, frame_time, 8, FPS, SyncAudio(context_frames=2), shift=-3)
    start = first - int(3 * SR / FPS)
    assert len(moved) == 10 * SR / FPS
    np.testing.assert_allclose(moved, audio[start : start + len(moved)], atol=1e-4)


# ---------------------------------------------------------------- items
def test_consecutive_windows_do_not_straddle_gaps(tmp_path):
    rng = np.random.default_rng(0)
    face, landmarks = synthetic_face(rng, 32)
    mouths, audio = talking(rng, 14, FPS, M)
    indices = [0, 1, 2, 3, 4, 5, 20, 21, 22, 23, 24, 25, 26, 40]  # three plan clips
    clip = SynthClip("v", 0, np.repeat(face[None], 14, 0), np.repeat(landmarks[None], 14, 0), mouths=mouths,
                     audio=audio, frame_indices=indices)
    out = write_extraction(tmp_path, [clip], 32, mouth_size=M)
    plain = load_extracted(out, clip_len=4)
    assert [item.frame_indices for item in plain][1] == (4, 5, 20, 21)  # straddles: unusable for sync
    assert not plain[1].consecutive and not plain[1].sync_ready
    runs = load_extracted(out, clip_len=4, consecutive=True)
    assert [item.frame_indices for item in runs] == [(0, 1, 2, 3), (20, 21, 22, 23)]
    assert all(item.sync_ready and item.fps == FPS for item in runs)


def test_sync_samples_and_batches(tmp_path):
    out = _talking_folder(tmp_path / "talk", n=2, frames=8, audio_start=-0.2)
    items = load_extracted(out, clip_len=8, consecutive=True)
    dataset = ClipDataset(items, sync_audio=SyncAudio(context_frames=2, shift_prob=1.0, min_shift=3, max_shift=3), seed=0)
    sample = dataset[0]
    assert sample["mouths"].shape == (8, 3, M, M) and sample["mouths"].dtype == torch.uint8
    assert sample["audio"].dtype == torch.float32 and sample["audio"].shape == (int(10 * SR / FPS),)
    assert abs(sample["sync_shift"]) == 3 and sample["has_audio"] and sample["sync_known"] and sample["fps"] == FPS
    # the window is the WAV from frame `shift`'s time (the audio starts 0.2 s before frame 0)
    expected = clip_audio(items[0].audio, 0.0, 8, FPS, SyncAudio(context_frames=2), shift=sample["sync_shift"])
    np.testing.assert_allclose(sample["audio"].numpy(), expected, atol=1e-6)

    batch = collate_clips([dataset[0], dataset[1]])
    assert batch["mouths"].shape == (2, 8, 3, M, M) and batch["audio"].shape == (2, int(10 * SR / FPS))
    assert batch["fps"].tolist() == [FPS, FPS] and batch["audio_mask"].tolist() == [True, True]
    assert batch["sync_shift"].dtype == torch.long and batch["sync_known"].all()

    no_mouths = [item for item in load_extracted(out, clip_len=8)][:1]
    object.__setattr__(no_mouths[0], "mouth_files", [])
    with pytest.raises(ValueError, match="no-mouths"):
        ClipDataset(no_mouths, sync_audio=SyncAudio())


def test_pretext_data_module_keeps_real_clips_with_audio(tmp_path):
    out = _talking_folder(tmp_path / "talk", n=6, frames=16)
    dm = FaceClipDataModule(out, clip_len=8, batch_size=4, val_fraction=0.34, task="sync_pretext",
                            sync_shift_prob=0.5, sync_max_shift=4)
    dm.setup("fit")
    assert len(dm.train_items) + len(dm.val_items) == 12 and dm.val_items
    val = [s for b in dm.val_dataloader() for s in b["sync_shift"].tolist()]
    n = len(dm.val_items)  # every val clip in sync and moved, the same way each time
    assert len(val) == 2 * n and val[:n] == [0] * n and all(3 <= abs(s) <= 4 for s in val[n:])
    assert val == [s for b in dm.val_dataloader() for s in b["sync_shift"].tolist()]
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape[1] == int((8 + 4) * SR / FPS)  # the pretext reads K frames of context
    silent = tmp_path / "silent"
    rng = np.random.default_rng(1)
    face, landmarks = synthetic_face(rng, 32)
    write_extraction(silent, [SynthClip("a", 0, np.repeat(face[None], 8, 0), np.repeat(landmarks[None], 8, 0))], 32)
    with pytest.raises(ValueError, match="--audio"):
        FaceClipDataModule(silent, clip_len=8, task="sync_pretext").setup("fit")


def test_detection_validation_judges_lip_sync_fakes_when_training_makes_them(tmp_path):
    """Validation of a detector trained with moved-audio fakes holds one moved copy of
    each real val clip (label 1, ``av_shift``, pixels untouched), besides the real clips
    and their SBI copies; without moved audio in training there is no such copy."""
    out = _talking_folder(tmp_path / "talk", n=6, frames=16)

    def val_samples(shift_prob: float) -> list[tuple[float, str, int, bool]]:
        dm = FaceClipDataModule(out, clip_len=8, batch_size=4, val_fraction=0.34, sync=True, blend_masks=True,
                                sync_shift_prob=shift_prob, sync_max_shift=4)
        dm.setup("fit")
        rows = []
        for batch in dm.val_dataloader():
            for i in range(len(batch["label"])):
                rows.append((float(batch["label"][i]), batch["method"][i], int(batch["sync_shift"][i]),
                             bool(batch["blend_mask"][i].any())))
        return rows, len(dm.val_items)

    rows, n = val_samples(0.5)
    assert len(rows) == 3 * n
    assert all(label == 0 and shift == 0 for label, _, shift, _ in rows[:n])
    assert all(label == 1 and method == "sbi" and shift == 0 for label, method, shift, _ in rows[n:2 * n])
    moved = rows[2 * n:]
    assert all(label == 1 and method == "av_shift" and 3 <= abs(shift) <= 4 and not masked
               for label, method, shift, masked in moved)
    assert moved == val_samples(0.5)[0][2 * n:]  # fixed seed: the same copies every epoch
    rows, n = val_samples(0.0)
    assert len(rows) == 2 * n and not any(method == "av_shift" for _, method, _, _ in rows)


def test_sync_only_detection_splits_like_the_pretext(tmp_path):
    """``sync_only`` drops clips the sync head cannot use (here silent videos), so a
    detector fitted after the pretext on the same folder validates on the pretext's
    held-out videos, none of which the sync head trained on."""
    rng = np.random.default_rng(3)
    face, landmarks = synthetic_face(rng, 32)
    silent = [SynthClip(f"silent{i}", 0, np.repeat(face[None], 16, 0), np.repeat(landmarks[None], 16, 0),
                        fps=FPS, mouths=np.zeros((16, M, M, 3), np.uint8)) for i in range(4)]  # no audio
    out = write_extraction(tmp_path / "mixed", _talking_clips(8, frames=16) + silent, 32, mouth_size=M)

    def split(**kwargs) -> tuple[list[str], list[str]]:
        dm = FaceClipDataModule(out, clip_len=8, val_fraction=0.3, sync_max_shift=4, **kwargs)
        dm.setup("fit")
        return sorted(i.media_id for i in dm.train_items), sorted(i.media_id for i in dm.val_items)

    pretext = split(task="sync_pretext")
    assert split(sync=True, sync_only=True) == pretext
    everything = split(sync=True)
    assert everything != pretext and any(m.startswith("silent") for m in everything[0] + everything[1])


# ---------------------------------------------------------------- pretext and fine-tuning
def _metrics(out: Path) -> list[dict]:
    files = sorted((out / "logs").glob("version_*/metrics.csv"))
    assert files, f"no metrics.csv under {out}"
    with open(files[-1]) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def pretext_run(tmp_path_factory):
    """A real pretext run on a learnable task: mouths open exactly when there is sound."""
    from vidfake.train import run

    root = tmp_path_factory.mktemp("pretext")
    data = _talking_folder(root / "talk", n=24, frames=16, seed=0)
    config = run.load_config(ROOT / "configs" / "sync_pretext.yaml", TINY_SYNC + [
        "data.clip_len=8", "data.batch_size=8", "data.val_fraction=0.3", "data.num_workers=0",
        "trainer.max_steps=30", "trainer.val_check_interval=30", "trainer.accelerator=cpu", "trainer.precision=32-true",
        "trainer.progress_bar=none", "trainer.log_every_n_steps=1", "optim.lr=0.003", "optim.warmup_steps=3",
    ])
    config["data"]["dir"], config["out"] = str(data), str(root / "run")
    training = run.build(config)
    training.datamodule.train_set.seed = 0  # the same moved clips every run, so the test cannot flake
    run.fit(training)
    return training, root / "run", data


def test_sync_pretext_learns_to_tell_in_sync_from_moved_audio(pretext_run):
    training, out, _ = pretext_run
    rows = _metrics(out)
    losses = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses
    assert training.module.last_val_auc > 0.9  # sync logit: in-sync vs audio moved 3-4 frames
    final = [r for r in rows if r.get("val_sync_offset_acc")][-1]
    assert float(final["val_sync_offset_acc"]) >= 0.7  # the best offset is the true one (+-1 frame)
    # only the sync head trains
    frozen = [n for n, p in training.module.model.named_parameters() if not p.requires_grad]
    assert frozen and all(not n.startswith("sync.") for n in frozen)
    assert all(p.requires_grad for n, p in training.module.model.named_parameters() if n.startswith("sync."))
    from vidfake.checkpoints.format import load_checkpoint

    ckpt = load_checkpoint(out / "best.safetensors")
    assert ckpt.config["training"]["task"] == "sync_pretext" and ckpt.config["model"]["sync"]


def _fine_tune(pretext_out: Path, data: Path, out: Path, steps: int, overrides: list[str]) -> int:
    """``vidfake train`` with configs/temporal.yaml from the pretext's checkpoint (tiny model)."""
    from vidfake.train import run

    sets = TINY_SYNC + ["data.clip_len=8", "data.batch_size=4", "data.num_workers=0", "data.sync_shift_prob=0.5",
                        f"trainer.val_check_interval={steps}", "trainer.accelerator=cpu", "trainer.progress_bar=none",
                        *overrides]
    return run.main(["--config", str(ROOT / "configs" / "temporal.yaml"), "--data", str(data), "--out", str(out),
                     "--init-from", str(pretext_out / "best.safetensors"), "--max-steps", str(steps),
                     *[a for o in sets for a in ("--set", o)]])


def test_fine_tuning_starts_from_the_pretext_sync_head(pretext_run, tmp_path):
    """Detection with every loss (clip, per-frame, sync), the sync head copied from the pretext."""
    from vidfake.checkpoints.format import load_checkpoint

    _, pretext_out, data = pretext_run
    out = tmp_path / "finetune"
    assert _fine_tune(pretext_out, data, out, 2, ["data.augment=false", "trainer.log_every_n_steps=1"]) == 0
    rows = _metrics(out)
    columns = set().union(*[{k for k, v in r.items() if v} for r in rows])
    assert {"train_clip_loss", "train_frame_loss", "train_sync_loss", "val_auc"} <= columns
    pretext = load_checkpoint(pretext_out / "best.safetensors").state_dict
    tuned = load_checkpoint(out / "last.safetensors").state_dict
    # the sync head started from the pretext's and moved a little; the encoder did not come from it
    name = next(k for k in pretext if k.startswith("sync.") and k.endswith("weight") and pretext[k].ndim > 1)
    assert torch.allclose(pretext[name], tuned[name], atol=0.05)
    assert not torch.equal(pretext[name], tuned[name])


def test_init_copies_only_the_named_parts(tmp_path):
    from vidfake.checkpoints.format import save_checkpoint
    from vidfake.temporal import ModelConfig, create_model
    from vidfake.train.init_weights import load_parts

    config = ModelConfig(backbone="test_resnet", input_size=32, embed_dim=16, temporal_layers=1, temporal_heads=2,
                         mouth_size=M, sync_dim=16, sync_max_offset=4, n_mels=40)
    torch.manual_seed(0)
    source = create_model(config)
    save_checkpoint(tmp_path / "a.safetensors", source.state_dict(), {"model": config.to_dict()})
    torch.manual_seed(1)
    target = create_model(config)
    copied = load_parts(target, tmp_path / "a.safetensors", ["sync"])
    assert copied and all(k.startswith("sync.") for k in copied)
    after, before = target.state_dict(), source.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in after if k.startswith("sync."))
    assert not any(torch.equal(after[k], before[k]) for k in after if k.startswith("encoder.") and after[k].ndim == 4)
    with pytest.raises(ValueError, match="no weights under 'nothing'"):
        load_parts(target, tmp_path / "a.safetensors", ["nothing"])
    other = create_model(ModelConfig(backbone="test_resnet", input_size=32, embed_dim=16, temporal_layers=1,
                                     temporal_heads=2, mouth_size=M, sync_dim=32, sync_max_offset=4, n_mels=40))
    with pytest.raises(ValueError, match="does not fit"):
        load_parts(other, tmp_path / "a.safetensors", ["sync"])


# ---------------------------------------------------------------- real extraction
def test_extract_audio_feeds_sync_training(tmp_path):
    """`vidfake extract --audio` with a clips plan -> sync items with aligned audio -> a pretext step."""
    from vidfake.cli import main
    from vidfake.train import run

    videos = tmp_path / "videos"
    videos.mkdir()
    media.moving_face_video(videos / "talk.mp4", n_frames=30, face_height=88)
    (videos / "labels.csv").write_text("path,label\ntalk.mp4,REAL\n")
    data = tmp_path / "faces"
    assert main(["extract", str(videos), "--out", str(data), "--labels", str(videos / "labels.csv"), "--audio",
                 "--plan", "clips:2x8", "--size", "32", "--no-progress"]) == 0
    items = load_extracted(data, clip_len=8, consecutive=True)
    assert len(items) == 2 and all(item.sync_ready for item in items)
    dataset = ClipDataset(items, sync_audio=SyncAudio())
    sample = dataset[0]
    assert sample["mouths"].shape[0] == 8 and sample["has_audio"]
    assert len(sample["audio"]) == round(8 / items[0].fps * SR)
    # the extracted track is one 440 Hz tone: the window holds it
    spectrum = np.abs(np.fft.rfft(sample["audio"].numpy()))
    assert abs(np.argmax(spectrum) * SR / len(sample["audio"]) - media.TONE_HZ) < 10

    out = tmp_path / "pretext"
    overrides = [o for o in TINY_SYNC if not o.startswith("model.mouth_size")] + [
        "data.clip_len=8", "data.batch_size=2", "data.num_workers=0", "data.val_fraction=0.0", "trainer.accelerator=cpu",
        "trainer.progress_bar=none", "trainer.val_check_interval=1"]
    code = run.main(["--config", str(ROOT / "configs" / "sync_pretext.yaml"), "--data", str(data), "--out", str(out),
                     "--max-steps", "1", *[a for o in overrides for a in ("--set", o)]])
    assert code == 0 and (out / "last.safetensors").is_file()


def test_fitting_only_the_sync_parts_leaves_the_frame_model_untouched(pretext_run, tmp_path):
    """``optim.trainable: [sync, sync_weight]``: a finished model gains the pretext's head
    while its encoder and transformer, BatchNorm statistics included, stay bit-identical."""
    from vidfake.checkpoints.format import load_checkpoint

    _, pretext_out, data = pretext_run
    out = tmp_path / "fit_sync"
    assert _fine_tune(pretext_out, data, out, 3, ["init.modules=[all]", "optim.trainable=[sync, sync_weight]",
                                                  "optim.lr=0.01"]) == 0
    before = load_checkpoint(pretext_out / "best.safetensors").state_dict
    after = load_checkpoint(out / "last.safetensors").state_dict
    frozen = [k for k in before if k.split(".")[0] in ("encoder", "temporal")]
    assert any("running_mean" in k for k in frozen)
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["sync_weight"], after["sync_weight"])
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("sync."))


def test_trainable_parts_are_checked(tmp_path):
    from vidfake.temporal import ModelConfig
    from vidfake.train.module import DetectorModule

    config = ModelConfig(backbone="test_resnet", input_size=32, embed_dim=16, temporal_layers=1, temporal_heads=2,
                         mouth_size=M, sync_dim=16, sync_max_offset=4, n_mels=40)
    module = DetectorModule(config, pretrained=False, use_sync=True)
    with pytest.raises(ValueError, match=r"unknown model parts \['head'\].*'encoder'"):
        module.train_parts(["head"])
    module.train_parts(["sync_weight"])
    assert [n for n, p in module.model.named_parameters() if p.requires_grad] == ["sync_weight"]
    module.train()  # as Lightning does after each validation: the frozen parts stay in eval mode
    assert not module.model.encoder.training and not module.model.sync.training and module.training


def test_trainable_is_refused_for_the_pretext(tmp_path):
    from vidfake.train import run

    data = _talking_folder(tmp_path / "talk", n=4, frames=8)
    config = run.load_config(ROOT / "configs" / "sync_pretext.yaml", TINY_SYNC + ["optim.trainable=[sync]", "data.clip_len=8"])
    config["data"]["dir"], config["out"] = str(data), str(tmp_path / "run")
    with pytest.raises(run.ConfigError, match="sync head alone"):
        run.build(config)
    config = run.load_config(ROOT / "configs" / "temporal.yaml", TINY_SYNC + ["optim.trainable=[sync, decoder]", "data.clip_len=8"])
    config["data"]["dir"], config["out"] = str(data), str(tmp_path / "run2")
    with pytest.raises(run.ConfigError, match=r"optim.trainable: unknown model parts \['decoder'\]"):
        run.build(config)
