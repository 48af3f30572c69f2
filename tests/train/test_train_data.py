"""vidfake.train.data: loading an extraction folder, leak-free split, dataset, sampler weights."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, WeightedRandomSampler

from vidfake.train.data import (
    ClipDataset,
    balanced_sampler_weights,
    connected_groups,
    landmarks_to_crop,
    load_extracted,
    split_by_group,
)

SIZE, MOUTH, MARGIN = 16, 8, 0.2
BOX = [100.0, 100.0, 200.0, 200.0]  # crop square [80, 80, 220, 220]
LANDMARKS = [[130.0, 130.0], [170.0, 130.0], [150.0, 150.0], [135.0, 175.0], [165.0, 175.0]]

# (media_id, label, method, group, frames, mouths)
RECORDS = [
    ("original_sequences/youtube/c23/videos/000", 0, "real", "ffpp:000", 7, True),
    ("manipulated_sequences/Deepfakes/c23/videos/000_003", 1, "Deepfakes", "ffpp:000", 5, False),
    ("original_sequences/youtube/c23/videos/003", 0, "real", "ffpp:003", 4, False),
    ("original_sequences/youtube/c23/videos/001", 0, "real", "ffpp:001", 4, False),
    ("manipulated_sequences/NeuralTextures/c23/videos/001_002", 1, "NeuralTextures", "ffpp:001", 4, False),
    ("original_sequences/youtube/c23/videos/002", 0, "real", "ffpp:002", 4, False),
    ("dfdc/b", 0, "real", "dfdc:b.mp4", 4, False),
    ("dfdc/a", 1, None, "dfdc:b.mp4", 4, False),
    ("dfdc/d", 0, "real", "dfdc:d.mp4", 4, False),
    ("dfdc/c", 1, None, "dfdc:d.mp4", 4, False),
    ("dfdc/unknown", None, None, None, 4, False),  # unlabelled: skipped
]


def _write_image(path: Path, size: int, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path, format="JPEG")


def _record(out: Path, media_id: str, label, method, group, frames: int, mouths: bool) -> dict:
    indices = list(range(0, 3 * frames, 3))
    names = [f"{media_id}/t00_f{i:06d}.jpg" for i in indices]
    for t, name in enumerate(names):
        _write_image(out / "images" / name, SIZE, 10 * t)
        if mouths:
            _write_image(out / "mouths" / name, MOUTH, 10 * t)
    track = {
        "track_id": 0,
        "frame_indices": indices,
        "timestamps": [1.0 + i / 30 for i in indices],
        "boxes": [BOX] * frames,
        "landmarks": [LANDMARKS] * frames,
        "scores": [0.99] * frames,
        "detected": [True] * frames,
        "size": 100.0,
        "crops": names,
    }
    if mouths:
        track["mouths"] = names
    return {
        "media_id": media_id, "path": f"/data/{media_id}.mp4", "kind": "video", "label": label,
        "method": method, "group": group, "status": "ok",
        "info": {"fps": 30.0, "num_frames": 300, "width": 320, "height": 320},
        "plan": {}, "frame_indices": indices, "timestamps": track["timestamps"], "tracks": [track],
        "audio": {"file": f"{media_id}.wav", "sample_rate": 16000, "start_time": 0.0, "duration": 10.0} if mouths else None,
    }


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("extracted")
    (out / "config.json").write_text(json.dumps({"extract": {"crop": {"size": SIZE, "margin": MARGIN, "mouth_size": MOUTH}}}))
    with (out / "tracks.jsonl").open("w") as handle:
        for spec in RECORDS:
            handle.write(json.dumps(_record(out, *spec)) + "\n")
        handle.write('{"torn line')  # a killed writer's last line is ignored
    return out


def test_landmarks_to_crop_hand_case():
    points = np.array([[[150, 150], [80, 80], [220, 220], [80, 220], [115, 185]]], np.float32)
    mapped = landmarks_to_crop(points, np.array([BOX]), 0.2, 140)
    assert mapped.shape == (1, 5, 2) and mapped.dtype == np.float32
    np.testing.assert_allclose(mapped[0], [[70, 70], [0, 0], [140, 140], [0, 140], [35, 105]], atol=1e-5)
    # scaled to another crop size, and a non-square box (the square follows the long side)
    np.testing.assert_allclose(landmarks_to_crop(points[:, :1], np.array([BOX]), 0.2, 14)[0, 0], [7, 7], atol=1e-5)
    tall = landmarks_to_crop(np.array([[[150, 150]] * 5]), np.array([[120, 100, 180, 200]]), 0.0, 50)
    np.testing.assert_allclose(tall[0, 0], [25, 25], atol=1e-5)


def test_load_extracted_one_item_per_track(extracted):
    items = load_extracted(extracted)
    assert len(items) == len(RECORDS) - 1  # unlabelled record skipped
    first = items[0]
    assert first.media_id.endswith("000") and first.label == 0 and first.group == "ffpp:000"
    assert len(first.crop_files) == 7 and all(p.is_absolute() and p.exists() for p in first.crop_files)
    assert len(first.mouth_files) == 7 and all(p.exists() for p in first.mouth_files)
    assert first.audio["file"] == extracted / "audio" / f"{first.media_id}.wav"
    assert first.landmarks_in_crop.shape == (7, 5, 2)
    # (150, 150) in a [80,80,220,220] square, crop side 16 -> 70 * 16 / 140 = 8
    np.testing.assert_allclose(first.landmarks_in_crop[:, 2], 8.0, atol=1e-5)
    assert items[1].mouth_files == [] and items[1].audio is None


def test_load_extracted_windows(extracted):
    items = load_extracted(extracted, clip_len=3)
    by_media = {}
    for item in items:
        by_media.setdefault(item.media_id, []).append(item)
    real = by_media["original_sequences/youtube/c23/videos/000"]
    assert len(real) == 2  # 7 crops -> 2 windows of 3, tail of 1 dropped
    assert [p.name for p in real[1].crop_files] == ["t00_f000009.jpg", "t00_f000012.jpg", "t00_f000015.jpg"]
    assert [p.name for p in real[1].mouth_files] == [p.name for p in real[1].crop_files]
    assert real[1].timestamps == pytest.approx([1.3, 1.4, 1.5])
    assert all(len(item) == 3 and item.landmarks_in_crop.shape == (3, 5, 2) for item in items)
    assert len(by_media["dfdc/a"]) == 1  # 4 crops -> 1 window
    # stride subsamples positions first: 7 crops -> 0,2,4,6 -> 2 windows of 2
    strided = [i for i in load_extracted(extracted, clip_len=2, stride=2) if i.media_id.endswith("videos/000")]
    assert [[p.name for p in i.crop_files] for i in strided] == [
        ["t00_f000000.jpg", "t00_f000006.jpg"], ["t00_f000012.jpg", "t00_f000018.jpg"]]
    assert load_extracted(extracted, clip_len=8) == []


def _side(train, val, media_id):
    sides = {"train" for i in train if i.media_id == media_id} | {"val" for i in val if i.media_id == media_id}
    assert len(sides) == 1, f"{media_id} split across sides"
    return sides.pop()


@pytest.mark.parametrize("clip_len", [None, 2])
def test_split_keeps_sources_and_swap_pairs_together(extracted, clip_len):
    items = load_extracted(extracted, clip_len=clip_len)
    ffpp = "original_sequences/youtube/c23/videos/"
    for seed in range(12):
        train, val = split_by_group(items, val_fraction=0.3, seed=seed)
        assert len(train) + len(val) == len(items) and train and val
        side = _side(train, val, ffpp + "000")
        assert _side(train, val, "manipulated_sequences/Deepfakes/c23/videos/000_003") == side
        assert _side(train, val, ffpp + "003") == side  # swap pair rule: the face is 003's
        assert _side(train, val, "dfdc/a") == _side(train, val, "dfdc/b")
        assert _side(train, val, "dfdc/c") == _side(train, val, "dfdc/d")
        for part in (train, val):
            assert {i.label for i in part} == {0, 1}
        groups_train = {i.group for i in train}
        assert not groups_train & {i.group for i in val}
        assert split_by_group(items, val_fraction=0.3, seed=seed) == (train, val)  # deterministic


def test_reenactment_is_not_joined_to_its_driver(extracted):
    items = load_extracted(extracted)
    component = dict(zip((i.media_id for i in items), connected_groups(items)))
    videos = "original_sequences/youtube/c23/videos/"
    assert component["manipulated_sequences/NeuralTextures/c23/videos/001_002"] == component[videos + "001"]
    assert component[videos + "002"] != component[videos + "001"]
    assert component[videos + "003"] == component[videos + "000"]
    assert len(set(component.values())) == 5


def test_clip_dataset_shapes(extracted):
    items = load_extracted(extracted, clip_len=3)
    seen = []

    def transform(sample, rng):
        assert sample["frames"].shape == (3, SIZE, SIZE, 3) and isinstance(rng, np.random.Generator)
        seen.append(rng.integers(1 << 30))
        sample["frames"] = sample["frames"][:, :, ::-1]  # a flip, as numpy
        return sample

    dataset = ClipDataset(items, transform=transform, seed=1)
    sample = dataset[0]
    assert sample["frames"].shape == (3, 3, SIZE, SIZE) and sample["frames"].dtype == torch.uint8
    assert sample["mouths"].shape == (3, 3, MOUTH, MOUTH) and sample["mouths"].dtype == torch.uint8
    assert sample["label"].dtype == torch.float32 and sample["label"].shape == () and sample["label"].item() == 0.0
    assert sample["times"].dtype == torch.float32 and sample["times"].tolist() == pytest.approx([0.0, 0.1, 0.2], abs=1e-5)
    assert sample["landmarks"].shape == (3, 5, 2) and sample["landmarks"].dtype == torch.float32
    assert sample["method"] == "real" and sample["media_id"] == items[0].media_id
    assert abs(int(sample["frames"][1].float().mean()) - 10) <= 2  # second crop, JPEG of value 10
    dataset[0]
    assert seen[0] == seen[1]  # same seed, epoch and index -> same draws
    dataset.set_epoch(1)
    dataset[0]
    assert seen[2] != seen[0]

    # without a seed (training) the draws follow torch's generator: seeded runs repeat
    unseeded = ClipDataset(items, transform=transform)
    torch.manual_seed(5)
    unseeded[0], unseeded[0]
    torch.manual_seed(5)
    unseeded[0]
    assert seen[-1] == seen[-3] != seen[-2]

    plain = ClipDataset([i for i in items if not i.mouth_files])
    batch = next(iter(DataLoader(plain, batch_size=4)))
    assert batch["frames"].shape == (4, 3, 3, SIZE, SIZE) and "mouths" not in batch
    assert batch["label"].shape == (4,)


def test_balanced_sampler_weights(extracted):
    items = load_extracted(extracted, clip_len=2)
    weights = balanced_sampler_weights(items)
    labels = torch.tensor([i.label for i in items])
    assert weights.shape == (len(items),) and (weights > 0).all()
    assert weights[labels == 0].sum().item() == pytest.approx(weights[labels == 1].sum().item())
    fakes = [i for i in items if i.label == 1]
    per_method = {}
    for item, w in zip(items, weights.tolist()):
        if item.label == 1:
            per_method[item.method] = per_method.get(item.method, 0.0) + w
    assert len(per_method) == 3 and len(fakes) > 3  # Deepfakes, NeuralTextures, None (DFDC)
    assert max(per_method.values()) == pytest.approx(min(per_method.values()))

    plain = balanced_sampler_weights(items, by="label")
    assert len(set(plain[labels == 1].tolist())) == 1
    assert plain[labels == 0].sum().item() == pytest.approx(plain[labels == 1].sum().item())
    sampler = WeightedRandomSampler(weights, num_samples=4000, replacement=True, generator=torch.Generator().manual_seed(0))
    drawn = labels[list(sampler)].float().mean().item()
    assert 0.45 < drawn < 0.55


def test_source_balanced_weights_give_every_source_an_equal_share_of_its_class():
    """Two real sources (one of 6 clips, one of 2) and three fake ones (1, 3, 4 clips)."""
    from vidfake.train.data import ClipItem

    def item(label: int, origin: str | None) -> ClipItem:
        return ClipItem("m", 0, label, None, None, [], [], [], np.zeros((0, 5, 2), np.float32), None, origin=origin)

    items = [item(0, "big/real")] * 6 + [item(0, "small/real")] * 2 + [item(1, "a")] + [item(1, "b")] * 3
    items += [item(1, None)] * 4 + [item(None, "x")]
    weights = balanced_sampler_weights(items, by="source").tolist()
    assert weights[0] == pytest.approx(1 / 2 / 2 / 6) and weights[6] == pytest.approx(1 / 2 / 2 / 2)
    assert weights[8] == pytest.approx(1 / 2 / 3 / 1) and weights[9] == pytest.approx(1 / 2 / 3 / 3)
    assert weights[12] == pytest.approx(1 / 2 / 3 / 4)  # no origin: one "unknown" source
    assert weights[-1] == 0 and sum(weights) == pytest.approx(1.0)


def test_load_extracted_carries_where_each_file_came_from(tmp_path):
    from tests.train.folders import SynthClip, write_extraction

    frames = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    landmarks = np.full((2, 5, 2), SIZE / 2, np.float32)
    write_extraction(tmp_path, [SynthClip("a", 0, frames, landmarks, origin="repo/a"),
                                SynthClip("b", 1, frames, landmarks)], size=SIZE)
    assert [(i.media_id, i.origin) for i in load_extracted(tmp_path)] == [("a", "repo/a"), ("b", None)]


def test_fake_source_pairs_match_each_fake_to_its_groups_real_nearest_in_time():
    from vidfake.train.data import ClipItem, fake_source_pairs

    def item(label, group, start: float) -> ClipItem:
        return ClipItem("m", 0, label, None, group, [Path("x")], [], [start], np.zeros((1, 5, 2), np.float32), None)

    items = [item(0, "ff:000", 0.0), item(0, "ff:000", 2.0), item(1, "ff:000", 1.9), item(1, "ff:000", 0.1),
             item(1, "ff:001", 0.0), item(0, None, 0.0), item(1, None, 0.0)]
    assert fake_source_pairs(items) == [(2, 1), (3, 0)]  # no real in ff:001; no group pairs nothing


def test_a_pair_shares_its_augmentations_and_its_real_half_is_never_self_blended():
    from vidfake.train.augment import AugmentConfig
    from vidfake.train.datamodule import TrainTransform

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (1, SIZE, SIZE, 3), dtype=np.uint8)
    landmarks = np.tile(np.array([[10, 12], [22, 12], [16, 18], [11, 24], [21, 24]], np.float32), (1, 1, 1))

    def sample(label: float, **extra) -> dict:
        return {"frames": frames.copy(), "label": label, "times": np.zeros(1, np.float32), "landmarks": landmarks,
                "method": "", "media_id": "m", **extra}

    config = AugmentConfig(p_color=1.0, p_noise=1.0, p_flip=0.5, p_video_codec=1.0, codecs=("mpeg2",),
                           codec_on_images=True)
    transform = TrainTransform(sbi_prob=1.0, augment=True, augment_config=config)
    outs = [transform(sample(0.0, pair_seed=77), np.random.default_rng(seed)) for seed in (1, 2)]
    assert all(out["label"] == 0.0 and "pair_seed" not in out for out in outs)  # sbi_prob 1, yet still real
    np.testing.assert_array_equal(outs[0]["frames"], outs[1]["frames"])  # the seed, not the sample's rng, decides
    assert not np.array_equal(outs[0]["frames"], frames)
    unpaired = transform(sample(0.0), np.random.default_rng(1))
    assert unpaired["label"] == 1.0 and unpaired["method"] == "sbi"


def test_datamodule_with_pair_share_puts_fakes_beside_their_sources(extracted, tmp_path):
    from vidfake.train.datamodule import FaceClipDataModule
    from vidfake.train.sampling import PairedBalancedSampler

    dm = FaceClipDataModule(extracted, clip_len=1, batch_size=4, val_fraction=0.0, pair_share=1.0, sbi_prob=1.0,
                            codec_prob=1.0, codecs=("mpeg4",), codec_on_images=True)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, PairedBalancedSampler)
    groups = {item.media_id: item.group for item in dm.train_items}
    for batch in list(loader)[:3]:
        assert batch["label"].tolist() == [1.0, 0.0, 1.0, 0.0]  # every real half kept real (sbi_prob is 1)
        ids = batch["media_id"]
        assert groups[ids[0]] == groups[ids[1]] and groups[ids[2]] == groups[ids[3]]
    plain = FaceClipDataModule(extracted, clip_len=1, batch_size=4, val_fraction=0.0)
    plain.setup("fit")
    assert not isinstance(plain.train_dataloader().sampler, PairedBalancedSampler)
