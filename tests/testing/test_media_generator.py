"""Sanity checks for the synthetic media in ``vidfake/testing/media.py``.

Other tests trust these files' ground truth (frame counts, timestamps, face
boxes, rotation flags), so it is checked here against two independent readers
(PyAV and decord) and against the real face detector (MTCNN).
"""

from __future__ import annotations

from pathlib import Path

import av
import decord
import numpy as np
import pytest
from PIL import Image

from vidfake.testing import media

# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def decode_pyav(path: Path) -> tuple[list[float], list[int], list[np.ndarray]]:
    """All video frames as PyAV gives them: times (s), rotation flags, stored RGB."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return (
        [f.time for f in frames],
        [f.rotation for f in frames],
        [f.to_ndarray(format="rgb24") for f in frames],
    )


def upright(stored: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the display flag the way media.py documents it."""
    return np.ascontiguousarray(np.rot90(stored, k=rotation // 90))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


# --------------------------------------------------------------------------- #
# Fixtures: each file is generated once per module
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def face_video(media_dir: Path) -> media.GeneratedVideo:
    return media.moving_face_video(media_dir / "face.mp4")


@pytest.fixture(scope="module")
def two_video(media_dir: Path) -> media.GeneratedVideo:
    return media.two_faces_video(media_dir / "two.mp4")


@pytest.fixture(scope="module")
def vfr(media_dir: Path) -> media.GeneratedVideo:
    return media.vfr_video(media_dir / "vfr.mp4")


@pytest.fixture(scope="module")
def mtcnn():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu")


# --------------------------------------------------------------------------- #
# Container properties
# --------------------------------------------------------------------------- #


def test_moving_face_video_reads_back_with_pyav(face_video: media.GeneratedVideo) -> None:
    times, rotations, frames = decode_pyav(face_video.path)
    assert len(frames) == face_video.n_frames == 50
    assert frames[0].shape == (face_video.height, face_video.width, 3) == (240, 320, 3)
    np.testing.assert_allclose(times, face_video.timestamps, atol=1e-6)
    assert set(rotations) == {0}
    assert [media.read_frame_index(f) for f in frames] == list(range(face_video.n_frames))
    with av.open(str(face_video.path)) as container:
        video, audio = container.streams.video[0], container.streams.audio
        assert video.codec_context.name == "h264"
        assert video.average_rate == face_video.fps == 25
        assert float(video.duration * video.time_base) == pytest.approx(face_video.duration)
        assert len(audio) == 1 and audio[0].codec_context.name == "aac"
        assert audio[0].rate == media.SAMPLE_RATE


def test_moving_face_video_reads_back_with_decord(face_video: media.GeneratedVideo) -> None:
    reader = decord.VideoReader(str(face_video.path))
    assert len(reader) == face_video.n_frames
    assert reader.get_avg_fps() == pytest.approx(face_video.fps)
    np.testing.assert_allclose(
        reader.get_frame_timestamp(range(len(reader)))[:, 0], face_video.timestamps, atol=1e-6
    )
    order = [37, 3, 20, 0, 49, 11]  # random access: seeks back and forth
    batch = reader.get_batch(order).asnumpy()
    assert [media.read_frame_index(f) for f in batch] == order


def test_audio_is_the_tone_from_time_zero(face_video: media.GeneratedVideo) -> None:
    with av.open(str(face_video.path)) as container:
        chunks = list(container.decode(audio=0))
    samples = np.concatenate([c.to_ndarray()[0] for c in chunks])
    assert chunks[0].pts == 0  # the AAC priming samples are trimmed by the decoder
    expected = media.sine_tone(face_video.duration)
    # AAC pads the end up to a whole 1024-sample frame, so allow a little extra.
    assert len(expected) <= len(samples) < len(expected) + 1024
    assert np.abs(samples[: len(expected)] - expected).max() < 0.2  # aligned, not shifted
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * media.SAMPLE_RATE / len(samples) == pytest.approx(440, abs=2)


def test_write_video_keeps_pixels_close(media_dir: Path) -> None:
    # Natural content: crf 12 keeps it close. (Per-pixel colour noise would not
    # survive: yuv420p shares one chroma sample between 2x2 pixels.)
    patch, _ = media.head_patch(60)
    frames = np.repeat(media.background(96, 128)[None], 6, axis=0)
    for i, frame in enumerate(frames):
        frame[:, 8 * i : 8 * i + patch.shape[1]] = patch[:96]
    path = media.write_video(media_dir / "pixels.mp4", frames, fps=10)
    _, _, decoded = decode_pyav(path)
    assert len(decoded) == 6
    error = np.abs(np.stack(decoded).astype(int) - frames)
    assert error.mean() < 2 and np.percentile(error, 99) < 12


def test_write_video_rejects_odd_sizes(media_dir: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        media.write_video(media_dir / "odd.mp4", np.zeros((2, 63, 64, 3), np.uint8))


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_flag(media_dir: Path, rotation: int) -> None:
    gen = media.rotated_face_video(media_dir / f"rot{rotation}.mp4", rotation=rotation, n_frames=12)
    _, rotations, stored = decode_pyav(gen.path)
    assert gen.rotation == {90: 90, -90: -90, 180: -180}[rotation]
    assert set(rotations) == {gen.rotation}
    sideways = abs(rotation) == 90
    expected_stored = (gen.width, gen.height) if sideways else (gen.height, gen.width)
    assert stored[0].shape[:2] == expected_stored
    shown = [upright(f, r) for f, r in zip(stored, rotations)]
    assert [media.read_frame_index(f) for f in shown] == list(range(12))
    # decord 0.6.0 applies the flag itself and hands out the upright picture.
    reader = decord.VideoReader(str(gen.path))
    np.testing.assert_array_equal(reader[5].asnumpy(), shown[5])


def test_vfr_timestamps_and_content(vfr: media.GeneratedVideo) -> None:
    gaps = np.diff(vfr.timestamps)
    assert set(np.round(gaps, 3)) == {0.02, 0.06}
    times, _, frames = decode_pyav(vfr.path)
    np.testing.assert_allclose(times, vfr.timestamps, atol=1e-6)
    assert [media.read_frame_index(f) for f in frames] == list(range(vfr.n_frames))
    levels = [np.median(f[:100]) for f in frames]
    np.testing.assert_allclose(levels, [media.vfr_level(i) for i in range(vfr.n_frames)], atol=3)
    with av.open(str(vfr.path)) as container:
        stream = container.streams.video[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(vfr.duration)
    reader = decord.VideoReader(str(vfr.path))
    assert len(reader) == vfr.n_frames
    np.testing.assert_allclose(
        reader.get_frame_timestamp(range(len(reader)))[:, 0], vfr.timestamps, atol=1e-6
    )


# --------------------------------------------------------------------------- #
# Ground truth against the real face detector
# --------------------------------------------------------------------------- #


def test_ground_truth_boxes_are_consistent(
    face_video: media.GeneratedVideo, two_video: media.GeneratedVideo
) -> None:
    boxes = face_video.face_boxes
    assert boxes.shape == (50, 4)
    assert np.all(np.diff(boxes[:, 0]) >= 0) and boxes[-1, 0] - boxes[0, 0] > 100  # moves right
    assert 80 <= boxes[0, 3] - boxes[0, 1] <= 100  # face height
    assert np.all(face_video.patch_boxes[:, 3] <= 240 - media.FRAME_CODE_HEIGHT)
    two = two_video.face_boxes
    assert two.shape == (50, 2, 4)
    assert two[-1, 0, 1] > two[0, 0, 1] and two[-1, 1, 1] < two[0, 1, 1]  # down / up
    patches = two_video.patch_boxes
    assert np.all(patches[:, 0, 2] <= patches[:, 1, 0])  # never overlap


def test_mtcnn_finds_the_moving_face(face_video: media.GeneratedVideo, mtcnn) -> None:
    _, _, frames = decode_pyav(face_video.path)
    for i in (0, 17, 33, 49):
        boxes, probs, landmarks = mtcnn.detect(frames[i], landmarks=True)
        assert boxes is not None and len(boxes) == 1, f"frame {i}"
        assert probs[0] > 0.95 and landmarks.shape == (1, 5, 2)
        assert iou(boxes[0], face_video.face_boxes[i]) > 0.5, f"frame {i}"


def test_mtcnn_finds_both_faces(two_video: media.GeneratedVideo, mtcnn) -> None:
    _, _, frames = decode_pyav(two_video.path)
    for i in (0, 25, 49):
        boxes, _ = mtcnn.detect(frames[i])
        assert boxes is not None and len(boxes) == 2, f"frame {i}"
        for truth in two_video.face_boxes[i]:
            assert max(iou(b, truth) for b in boxes) > 0.5, f"frame {i}"


def test_mtcnn_finds_the_rotated_face_once_upright(media_dir: Path, mtcnn) -> None:
    gen = media.rotated_face_video(media_dir / "rot_det.mp4", rotation=-90, n_frames=20)
    _, rotations, stored = decode_pyav(gen.path)
    for i in (0, 19):
        boxes, _ = mtcnn.detect(upright(stored[i], rotations[i]))
        assert boxes is not None and len(boxes) == 1
        assert iou(boxes[0], gen.face_boxes[i]) > 0.5


def test_no_face_video_has_no_face(media_dir: Path, mtcnn) -> None:
    gen = media.no_face_video(media_dir / "noface.mp4")
    assert gen.face_boxes.shape == (50, 0, 4) and gen.has_audio
    _, _, frames = decode_pyav(gen.path)
    assert len(frames) == 50
    with av.open(str(gen.path)) as container:
        assert len(container.streams.audio) == 1
    for i in (0, 25, 49):
        boxes, _ = mtcnn.detect(frames[i])
        assert boxes is None, f"frame {i}"


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_face_image(media_dir: Path, mtcnn, suffix: str) -> None:
    gen = media.face_image(media_dir / f"face{suffix}")
    image = Image.open(gen.path)
    assert image.format == {".jpg": "JPEG", ".png": "PNG"}[suffix]
    assert image.size == (gen.width, gen.height)
    boxes, _ = mtcnn.detect(image.convert("RGB"))
    assert boxes is not None and len(boxes) == 1
    assert iou(boxes[0], gen.face_box) > 0.5


# --------------------------------------------------------------------------- #
# Broken inputs
# --------------------------------------------------------------------------- #


def test_broken_files_fail_to_open(media_dir: Path, face_video: media.GeneratedVideo) -> None:
    broken = [
        media.zero_byte_file(media_dir / "empty.mp4"),
        media.not_a_video(media_dir / "text.mp4"),
        media.truncated_copy(face_video.path, media_dir / "cut.mp4", 0.5),  # moov lost
    ]
    assert broken[0].stat().st_size == 0
    assert broken[2].stat().st_size == face_video.path.stat().st_size // 2
    for path in broken:
        with pytest.raises(av.error.InvalidDataError):
            av.open(str(path))
        with pytest.raises((RuntimeError, decord.DECORDError)):  # decord raises either
            decord.VideoReader(str(path))


def test_truncated_faststart_copy_decodes_partially(media_dir: Path) -> None:
    frames, _, _ = media.moving_face_frames()
    full = media.write_video(media_dir / "fast.mp4", frames, faststart=True)
    cut = media.truncated_copy(full, media_dir / "fast_cut.mp4", 0.5)
    decoded = []
    with av.open(str(cut)) as container:
        for packet in container.demux(video=0):  # ends with an empty packet that flushes
            try:
                decoded += [f.to_ndarray(format="rgb24") for f in packet.decode()]
            except av.error.InvalidDataError:
                pass  # the packet cut in half, if FFmpeg notices
    assert 0 < len(decoded) < 50
    assert [media.read_frame_index(f) for f in decoded] == list(range(len(decoded)))
