"""Fixtures of the evaluation tests."""
from __future__ import annotations

import shutil

import pytest

from vidfake.testing import media


@pytest.fixture(scope="module")
def labelled_set(tmp_path_factory, face_video, two_face_video, empty_scene_video):
    """A labels.csv over six files of every outcome: real and fake faces, two faces, no face,
    an unreadable file; two datasets and three methods, so every per-group table has rows."""
    root = tmp_path_factory.mktemp("evalset")
    media.moving_face_video(root / "real_b.mp4", n_frames=20, face_height=70)
    shutil.copy(face_video.path, root / "real_a.mp4")
    shutil.copy(two_face_video.path, root / "fake_a.mp4")
    media.moving_face_video(root / "fake_b.mp4", n_frames=24, size=(320, 200), with_audio=False)
    shutil.copy(empty_scene_video.path, root / "fake_noface.mp4")
    media.not_a_video(root / "real_broken.mp4")
    (root / "labels.csv").write_text(
        "path,label,method,dataset\n"
        "real_a.mp4,REAL,real,gen\nreal_b.mp4,0,real,gen\nfake_a.mp4,FAKE,swap,gen\n"
        "fake_b.mp4,1,reenact,other\nfake_noface.mp4,fake,swap,gen\nreal_broken.mp4,real,real,other\n"
    )
    return root / "labels.csv"
