"""Heat maps: the frames chosen, the maps (mask head or Grad-CAM), the region's box in frame
pixels, the pictures, and ``vidfake score --heatmaps`` end to end on a real face video."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.tiny_models import write_tiny_checkpoint
from vidfake.cli import main
from vidfake.extract.crop import CropConfig, square_region
from vidfake.scoring.heatmap_png import SIDE, render_heatmap
from vidfake.scoring.heatmaps import (
    HeatmapOptions,
    cells_in_frame,
    cells_to_fractions,
    fractions_to_frame,
    frame_maps,
    heatmap_name,
    hot_region,
    options_for,
    pick_frames,
)
from vidfake.testing import media


def _tiny(path, mask_head: bool):
    return write_tiny_checkpoint(path, "uniform:6", sync=False, mask_head=mask_head)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("heatmap-ckpt")
    return {"mask_head": _tiny(folder / "mask.safetensors", True), "grad_cam": _tiny(folder / "plain.safetensors", False)}


# -- choosing frames and regions ---------------------------------------------------------


def test_the_k_highest_scoring_frames_are_chosen_best_first():
    probs = {0: 0.2, 4: 0.9, 8: 0.5, 12: 0.9, 16: 0.1}
    assert pick_frames(probs, 3) == [4, 12, 8]  # a tie goes to the earlier frame
    assert pick_frames(probs, 10) == [4, 12, 8, 0, 16]
    assert heatmap_name("clip", 2, 37) == "clip_t2_f000037.png" and heatmap_name("", 0, 5) == "t0_f000005.png"
    with pytest.raises(ValueError, match="at least 1"):
        HeatmapOptions(folder=media.Path("x"), k=0)


def test_the_region_is_the_connected_hot_part_around_the_peak():
    heat = np.array([[0.0, 0.1, 0.0, 0.9],
                     [0.1, 0.8, 0.7, 0.0],
                     [0.0, 0.6, 0.0, 0.0],
                     [1.0, 0.0, 0.0, 0.0]])
    valid = np.ones_like(heat, bool)
    assert hot_region(heat, valid) == (1.0, (3, 0, 4, 1))  # the peak stands alone
    valid[3, 0] = False  # e.g. in the black padding outside the frame
    peak, cells = hot_region(heat, valid)
    # threshold 0.45: the 0.9 corner is not connected to the 0.8/0.7/0.6 group, which is
    assert peak == 0.9 and cells == (0, 3, 1, 4)
    heat[0, 3] = 0.0
    assert hot_region(heat, valid) == (0.8, (1, 1, 3, 3))
    assert cells_to_fractions((1, 1, 3, 3), (4, 4)) == (0.25, 0.25, 0.75, 0.75)


def test_crop_fractions_map_back_through_the_crop_square_and_stay_in_the_frame():
    box = np.array([100.0, 50.0, 180.0, 150.0])  # a face box; its crop square with margin 0.2
    region = square_region(box, 0.2)
    assert region.tolist() == [70, 30, 210, 170]  # side 100 * 1.4 around (140, 100)
    assert fractions_to_frame((0.25, 0.5, 0.75, 1.0), region, (320, 240)) == [105.0, 100.0, 175.0, 170.0]
    # a square past the frame's edge: cells there are not valid, and boxes are clipped
    edge = np.array([-40, 100, 80, 220])
    valid = cells_in_frame((4, 4), edge, (320, 200))
    assert valid[:, 0].sum() == 0 and valid[3].sum() == 0 and valid[:3, 1:].all()
    assert fractions_to_frame((0.0, 0.0, 1.0, 1.0), edge, (320, 200)) == [0.0, 100.0, 80.0, 200.0]


def test_file_stems_are_unique_and_safe():
    paths = [media.Path("a/clip one.mp4"), media.Path("b/clip one.mp4"), media.Path("c/x.jpg")]
    options = options_for(paths, media.Path("maps"), k=2)
    assert [options[p].stem for p in paths] == ["clip_one", "clip_one-2", "x"]
    assert all(o.k == 2 and o.folder == media.Path("maps") for o in options.values())


# -- the maps ------------------------------------------------------------------------------


def _encoder(mask_head: bool):
    from vidfake.temporal import ModelConfig, create_model

    torch.manual_seed(0)
    config = ModelConfig(backbone="resnet10t", input_size=96, embed_dim=16, temporal_layers=1, temporal_heads=2,
                         sync=False, mask_head=mask_head)
    return create_model(config, pretrained=False).eval().encoder


def _face_crops(n: int = 2) -> torch.Tensor:
    frames, boxes, _ = media.moving_face_frames(n_frames=n)
    from vidfake.extract.crop import crop_face
    from vidfake.scoring.batching import to_tensor

    crops = np.stack([crop_face(f, b, CropConfig(size=96)) for f, b in zip(frames, boxes)])
    return to_tensor(crops, 96)


def test_mask_head_maps_are_the_heads_probabilities():
    encoder, frames = _encoder(True), _face_crops()
    maps, method, shifted, logits = frame_maps(encoder, frames.clone())
    with torch.no_grad():
        _, frame_logits, mask_logits = encoder(frames)
    assert method == "mask_head" and shifted == [False, False]
    np.testing.assert_allclose(maps, torch.sigmoid(mask_logits).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, frame_logits.numpy(), rtol=1e-5, atol=1e-6)


def test_grad_cam_without_a_mask_head_is_a_real_non_constant_map():
    encoder, frames = _encoder(False), _face_crops()
    maps, method, shifted, _ = frame_maps(encoder, frames.clone())
    assert method == "grad_cam" and maps.shape == (2, 3, 3)  # stride 32 of a 96 px crop
    assert all(m.max() > m.min() for m in maps) and (maps >= 0).all()
    # Grad-CAM by hand: channels weighted by the mean gradient of the frame logit
    fmap = encoder.forward_features(frames).detach().requires_grad_(True)
    _, logits, _ = encoder.forward_head(fmap)
    logits.sum().backward()
    cam = (fmap.grad.mean(dim=(2, 3), keepdim=True) * fmap).sum(1).detach().numpy()
    for got, want, was_shifted in zip(maps, cam, shifted):
        np.testing.assert_allclose(got, want - want.min() if was_shifted else np.maximum(want, 0), rtol=1e-4, atol=1e-6)


def test_the_picture_shows_the_face_under_the_map_with_its_caption(tmp_path):
    crop = np.full((64, 64, 3), 128, np.uint8)
    heat = np.array([[0.0, 0.0], [0.0, 1.0]])
    out = render_heatmap(crop, heat, (0.0, 1.0), (0.5, 0.5, 1.0, 1.0), ["frame 3  t=0.12 s  score 0.900", "blend"],
                         tmp_path / "sub" / "m.png")
    picture = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert picture.shape[1] == SIDE and picture.shape[0] > SIDE
    hot, cold = picture[SIDE * 7 // 8, SIDE * 7 // 8 - 10], picture[SIDE // 8, SIDE // 8]
    assert hot[0] > hot[2] and cold[2] > cold[0]  # red where the map is hot, blue where cold
    assert picture[SIDE // 2, SIDE * 3 // 4].tolist() == [255, 255, 255]  # the region's box outline
    assert (picture[SIDE + 2 : SIDE + 16] < 100).any()  # caption text


# -- end to end ----------------------------------------------------------------------------


def test_recut_crops_are_the_pixels_scoring_cut(face_video):
    from vidfake.extract.pipeline import ExtractConfig, FaceExtractor
    from vidfake.extract.recut import read_frames, recut_faces

    config = ExtractConfig(plan="uniform:6", crop=CropConfig(size=96))
    faces = FaceExtractor(config).extract_video(face_video.path)
    face = faces.faces[0]
    chosen = face.track.frame_indices[[0, 3, 5]].tolist()
    frames = read_frames(face_video.path, "video", chosen)
    crops = recut_faces(frames, {f: face.track.boxes[list(face.track.frame_indices).index(f)] for f in chosen},
                        config.crop)
    for f in chosen:
        np.testing.assert_array_equal(crops[f], face.crops[list(face.track.frame_indices).index(f)])


@pytest.mark.parametrize("method", ["mask_head", "grad_cam"])
def test_score_heatmaps_writes_the_pictures_the_json_names(tmp_path, face_video, checkpoints, capsys, method):
    maps_dir = tmp_path / "maps"
    code = main(["score", str(face_video.path), "--checkpoint", str(checkpoints[method]), "--json", "--no-progress",
                 "--heatmaps", str(maps_dir), "--heatmap-frames", "2"])
    assert code == 0
    verdict = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert verdict["status"] == "ok" and verdict["tracks"]
    named = []
    scores = {p["frame"]: p["score"] for p in verdict["timeline"]}
    for track in verdict["tracks"]:
        record = track["heatmaps"]
        assert record["method"] == method and record["label"].startswith("Grad-CAM" if method == "grad_cam" else "blend")
        assert len(record["frames"]) == 2
        chosen = [f["frame"] for f in record["frames"]]
        assert chosen == pick_frames({f: scores[f] for f in track["frame_indices"]}, 2)
        for entry in record["frames"]:
            x1, y1, x2, y2 = entry["box"]
            assert 0 <= x1 < x2 <= face_video.width and 0 <= y1 < y2 <= face_video.height
            assert entry["score"] == pytest.approx(scores[entry["frame"]], abs=1e-6)
            assert 0 < entry["peak"] and (entry["peak"] <= 1 or method == "grad_cam")
            assert abs(entry["time"] - face_video.timestamps[entry["frame"]]) < 1e-3
            # the region lies on or next to the face the video was drawn with
            fx1, fy1, fx2, fy2 = face_video.face_boxes[entry["frame"]]
            assert x1 < fx2 + 20 and fx1 - 20 < x2 and y1 < fy2 + 20 and fy1 - 20 < y2
            named.append(media.Path(entry["file"]))
    assert sorted(p.name for p in maps_dir.iterdir()) == sorted(p.name for p in named)
    for path in named:
        with Image.open(path) as picture:
            assert picture.format == "PNG" and picture.width == SIDE
        assert path.name.startswith(face_video.path.stem + "_t")


def test_image_heatmap_other_pixels_and_ensemble_refusal(tmp_path, checkpoints, capsys, monkeypatch):
    from vidfake.extract import recut
    from vidfake.scoring import Scorer, heatmaps

    image = media.face_image(tmp_path / "still.png")
    scorer = Scorer(checkpoints["grad_cam"])
    verdict = scorer.score_image(image.path, HeatmapOptions(tmp_path / "maps", k=3))
    assert verdict.status == "ok"
    entry, = verdict.tracks[0]["heatmaps"]["frames"]  # an image has one frame
    assert entry["frame"] == 0 and entry["time"] == 0.0 and media.Path(entry["file"]).is_file()
    assert "note" not in entry and "rescored" not in entry  # the pixels read again are the scored ones
    x1, y1, x2, y2 = entry["box"]
    assert 0 <= x1 < x2 <= image.width and 0 <= y1 < y2 <= image.height

    # a decoder that returns other pixels the second time: the picture says so, and the verdict
    def other_pixels(*args, **kwargs):
        return {i: 255 - frame for i, frame in recut.read_frames(*args, **kwargs).items()}

    monkeypatch.setattr(heatmaps, "read_frames", other_pixels)
    again = scorer.score_image(image.path, HeatmapOptions(tmp_path / "other", k=3))
    entry, = again.tracks[0]["heatmaps"]["frames"]
    assert again.score == verdict.score and entry["rescored"] != entry["score"]
    assert "decoded differently" in entry["note"]
    assert any("decoded differently when read again" in w for w in again.warnings)
    monkeypatch.undo()

    code = main(["score", str(image.path), "--checkpoint", str(checkpoints["grad_cam"]), "--checkpoint",
                 str(checkpoints["mask_head"]), "--heatmaps", str(tmp_path / "ens"), "--no-progress"])
    assert code == 2 and "single --checkpoint" in capsys.readouterr().err
