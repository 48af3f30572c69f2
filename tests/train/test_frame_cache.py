"""vidfake.train.frame_cache: a checkpoint's per-crop embeddings and frame logits, cached."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.tiny_models import tiny_model_config, write_tiny_checkpoint
from tests.train.folders import SynthClip, write_extraction
from vidfake.train.frame_cache import FrameCache, cache_frames, main, video_scores


@pytest.fixture(scope="module")
def folder_and_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("frame_cache")
    size = tiny_model_config().input_size
    rng = np.random.default_rng(0)
    landmarks = np.tile(np.array([[20, 24], [44, 24], [32, 34], [22, 46], [42, 46]], np.float32) * size / 64, (3, 1, 1))
    clips = [SynthClip(f"v{i}", label=i % 2, frames=rng.integers(0, 255, (3, size, size, 3), dtype=np.uint8),
                       landmarks=landmarks, origin=f"repo/{i % 3}") for i in range(6)]
    clips.append(SynthClip("unlabelled", label=None, frames=clips[0].frames, landmarks=landmarks))  # not read
    folder = write_extraction(root / "faces", clips, size)
    return folder, write_tiny_checkpoint(root / "tiny.safetensors", sync=False)


def test_cache_holds_what_the_encoder_gives_for_every_crop(folder_and_checkpoint, tmp_path):
    from PIL import Image

    from vidfake.checkpoints.format import build_model, load_checkpoint

    folder, checkpoint = folder_and_checkpoint
    cache = cache_frames(checkpoint, folder, batch_size=4, progress=False)
    assert len(cache.frame_logit) == 18 and cache.embedding.shape == (18, tiny_model_config().embed_dim)
    assert list(cache.media_id[:3]) == ["v0"] * 3 and list(cache.frame_index[:3]) == [0, 1, 2]
    assert "unlabelled" not in cache.media_id and list(cache.label[::3]) == [0, 1, 0, 1, 0, 1]
    assert cache.source[3] == "repo/1"
    model = build_model(load_checkpoint(checkpoint)).eval()
    crop = np.array(Image.open(folder / "images" / "v1" / "t00_f000001.png"))
    with torch.no_grad():
        emb, logit, _ = model.encoder(torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0)
    row = 4  # v1's second crop
    np.testing.assert_allclose(cache.frame_logit[row], logit.item(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cache.embedding[row], emb[0].numpy(), rtol=1e-5, atol=1e-5)

    cache.save(tmp_path / "c.npz")
    again = FrameCache.load(tmp_path / "c.npz")
    for name in FrameCache.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(again, name), getattr(cache, name))


def test_video_scores_average_each_files_crops():
    cache = FrameCache(media_id=np.array(["a", "a", "b", "c", "b"]), track_id=np.zeros(5, np.int32),
                       frame_index=np.arange(5), timestamp=np.zeros(5, np.float32),
                       label=np.array([1, 1, 0, 1, 0], np.int8), source=np.array(["x", "x", "y", "z", "y"]),
                       embedding=np.zeros((5, 2), np.float32), frame_logit=np.array([1.0, 3.0, -1.0, 9.0, 0.0]))
    videos = video_scores(cache)
    assert list(videos["media_id"]) == ["a", "b", "c"] and list(videos["label"]) == [1, 0, 1]
    assert list(videos["source"]) == ["x", "y", "z"]
    np.testing.assert_allclose(videos["score"], [2.0, -0.5, 9.0])
    np.testing.assert_allclose(video_scores(cache, np.arange(5.0))["score"], [0.5, 3.0, 3.0])


def test_cli_writes_the_cache_and_reports_the_video_auc(folder_and_checkpoint, tmp_path, capsys):
    folder, checkpoint = folder_and_checkpoint
    assert main([str(checkpoint), "--data", str(folder), "--out", str(tmp_path / "out.npz"), "--json",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["crops"] == 18 and summary["videos"] == 6 and summary["fake"] == 3
    assert 0.0 <= summary["auc"] <= 1.0 and summary["auc_95"][0] <= summary["auc"] <= summary["auc_95"][1]
    assert (tmp_path / "out.npz").exists()
