"""decode -> detect -> track -> crop on generated videos with known face positions."""
import numpy as np
import pytest

from vidfake.extract.crop import CropConfig, crop_face, square_region
from vidfake.extract.detect import FaceDetector, FaceDetectorConfig
from vidfake.extract.pipeline import ExtractConfig, FaceExtractor, MediaError
from vidfake.extract.track import box_iou
from vidfake.extract.video import DecodeError, open_video
from vidfake.testing import media


def truth_at(video, frame_indices, face=None):
    boxes = video.face_boxes if face is None else video.face_boxes[:, face]
    return boxes[np.asarray(frame_indices)]


def test_detector_finds_the_face_where_it_was_drawn(face_video):
    detector = FaceDetector(FaceDetectorConfig())
    frames = open_video(face_video.path).read([0, 25, 49])
    found = detector.detect(frames, 1.0)
    for f, truth in zip(found, truth_at(face_video, [0, 25, 49])):
        assert len(f) == 1
        assert box_iou(f.boxes, truth[None])[0, 0] > 0.6
        left_eye, right_eye, nose, mouth_l, mouth_r = f.landmarks[0]
        assert left_eye[1] < nose[1] < mouth_l[1]  # upright: eyes above nose above mouth


def test_refine_corrects_a_shifted_box_and_rejects_background(face_video):
    detector = FaceDetector(FaceDetectorConfig())
    frame = open_video(face_video.path).read([10])
    truth = truth_at(face_video, [10])[0]
    shifted = truth + np.array([8, -6, 8, -6], np.float32)
    background = np.array([0, 0, 40, 40], np.float32)
    (refined,) = detector.refine(frame, 1.0, [np.stack([shifted, background])])
    assert len(refined) == 1
    assert box_iou(refined.boxes, truth[None])[0, 0] > box_iou(shifted[None], truth[None])[0, 0]


def test_extract_video_tracks_the_moving_face_with_crops_of_the_requested_size(face_video, extractor):
    result = extractor.extract_video(face_video.path)
    assert result.kind == "video" and len(result.frame_indices) == 16
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.crops.shape == (len(face.track), 224, 224, 3) and face.crops.dtype == np.uint8
    assert face.mouths.shape == (len(face.track), 96, 96, 3)
    assert len(face.track) == 16
    ious = [box_iou(b[None], t[None])[0, 0] for b, t in zip(face.track.boxes, truth_at(face_video, face.track.frame_indices))]
    assert min(ious) > 0.5
    np.testing.assert_allclose(face.track.timestamps, face.track.frame_indices / face_video.fps, atol=1e-3)


def test_two_moving_faces_are_kept_apart_for_the_whole_clip(two_face_video, extractor):
    result = extractor.extract_video(two_face_video.path)
    assert len(result.faces) == 2
    for face in result.faces:
        assert len(face.track) == 16
        idx = face.track.frame_indices
        iou_with = [
            np.mean([box_iou(b[None], t[None])[0, 0] for b, t in zip(face.track.boxes, truth_at(two_face_video, idx, k))])
            for k in range(2)
        ]
        assert max(iou_with) > 0.5 and min(iou_with) == 0  # always the same person, never the other


def test_rotated_video_gives_upright_faces(rotated_video, extractor):
    result = extractor.extract_video(rotated_video.path)
    assert len(result.faces) == 1
    marks = result.faces[0].track.landmarks
    assert np.all(marks[:, 0, 1] < marks[:, 3, 1]) and np.all(marks[:, 1, 1] < marks[:, 4, 1])
    assert (result.info.width, result.info.height) == (rotated_video.width, rotated_video.height)


def test_video_without_a_face_gives_no_tracks(empty_scene_video, extractor):
    assert extractor.extract_video(empty_scene_video.path).faces == []


def test_detecting_every_frame_and_keyframes_only_agree(face_video):
    full = FaceExtractor(ExtractConfig(plan="uniform:12", face_detector=FaceDetectorConfig(keyframe_interval=1)))
    fast = FaceExtractor(ExtractConfig(plan="uniform:12", face_detector=FaceDetectorConfig(keyframe_interval=4)))
    a, b = full.extract_video(face_video.path).faces[0].track, fast.extract_video(face_video.path).faces[0].track
    assert a.frame_indices.tolist() == b.frame_indices.tolist()
    assert np.all(np.diag(box_iou(a.boxes, b.boxes)) > 0.8)


def test_small_buffer_processes_the_plan_in_segments_with_the_same_result(face_video):
    config = ExtractConfig(plan="uniform:16")
    whole = FaceExtractor(config).extract_video(face_video.path)
    frame_mb = face_video.width * face_video.height * 3 / 2**20
    tiny = ExtractConfig(plan="uniform:16", max_buffer_mb=max(1, int(frame_mb * 5)))
    parts = FaceExtractor(tiny).extract_video(face_video.path)
    assert len(parts.faces) == len(whole.faces) == 1
    assert parts.faces[0].track.frame_indices.tolist() == whole.faces[0].track.frame_indices.tolist()


def test_image_input_is_a_one_frame_track(media_dir, extractor):
    image = media.face_image(media_dir / "face.jpg")
    result = extractor.extract_image(image.path)
    assert result.kind == "image" and len(result.faces) == 1
    assert result.faces[0].crops.shape == (1, 224, 224, 3)
    assert box_iou(result.faces[0].track.boxes, image.face_box[None])[0, 0] > 0.6


def test_bad_inputs_raise_clear_errors(media_dir, extractor):
    with pytest.raises(DecodeError, match="empty"):
        extractor.extract_video(media.zero_byte_file(media_dir / "zero.mp4"))
    with pytest.raises(MediaError, match="not a readable image"):
        extractor.extract_image(media.not_a_video(media_dir / "fake.jpg"))
    huge = FaceExtractor(ExtractConfig(max_pixels=100 * 100))
    with pytest.raises(MediaError, match="exceeds"):
        huge.extract_video(media.moving_face_video(media_dir / "small.mp4", n_frames=5).path)


def test_crop_near_the_edge_is_padded_not_shifted():
    frame = np.full((100, 100, 3), 200, np.uint8)
    box = np.array([-20, 10, 30, 60], np.float32)  # face half out of the left edge
    crop = crop_face(frame, box, CropConfig(size=64, margin=0.0))
    assert crop.shape == (64, 64, 3)
    assert crop[:, :20].max() < 10 and crop[:, 40:].min() > 190  # left part black, right part the frame
    assert square_region(box, 0.5).tolist() == [-45, -15, 55, 85]
