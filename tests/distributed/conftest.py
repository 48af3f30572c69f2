"""Fixtures of the tests that run vidfake across processes."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import SHARED_FIXTURES
from vidfake.testing import media


@pytest.fixture(scope="module")
def media_set(tmp_path_factory) -> Path:
    """Six files of every outcome, in real/ and fake/ folders (the labels of an
    extraction or evaluation): faces (real fixture clips when present), two faces, no
    face, an unreadable file and a still image."""
    folder = tmp_path_factory.mktemp("dist_media")
    real, fake = folder / "real", folder / "fake"
    real.mkdir()
    fake.mkdir()
    fixtures = [SHARED_FIXTURES / "videos" / "ffpp_004.mp4", SHARED_FIXTURES / "images" / "photo_paul_rudd.jpg"]
    if all(path.is_file() for path in fixtures):
        for path in fixtures:
            (real / path.name).symlink_to(path)
    else:
        media.moving_face_video(real / "face.mp4")
        media.face_image(real / "face.jpg")
    media.moving_face_video(real / "quiet.mp4", n_frames=30, with_audio=False)
    media.two_faces_video(fake / "two_faces.mp4")
    media.no_face_video(fake / "no_face.mp4")
    media.not_a_video(fake / "broken.mp4")
    return folder
