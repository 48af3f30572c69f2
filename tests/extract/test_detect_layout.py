"""MTCNN fed channels-last tensors (the fast CPU layout) finds what the plain layout finds."""
import numpy as np
import torch

from vidfake.extract import detect
from vidfake.extract.detect import FaceDetector, FaceDetectorConfig
from vidfake.extract.video import open_video


def test_resampled_images_are_channels_last_with_unchanged_values():
    images = torch.rand(2, 3, 90, 160)
    fast = detect._resample_for_nets(images, (45, 80))
    assert fast.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(fast, detect._resample(images, (45, 80)))


def test_channels_last_search_gives_the_same_faces(face_video, monkeypatch):
    detector = FaceDetector(FaceDetectorConfig())
    frames = open_video(face_video.path).read([0, 13, 25, 49])
    fast = detector.detect(frames, 1.0)
    monkeypatch.setattr(detect, "_resample_for_nets", detect._resample)  # the plain layout
    plain = detector.detect(frames, 1.0)
    assert all(len(f) == 1 for f in plain)
    for a, b in zip(fast, plain):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
