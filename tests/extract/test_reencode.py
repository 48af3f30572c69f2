"""Re-encoding a clip the six ways the codec benchmark uses: right codec, size, length, audio, pixels."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from vidfake.extract.reencode import ENCODINGS, reencode
from vidfake.extract.video import probe
from vidfake.testing import media


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 2 s 25 fps 320x240 clip with a tone, and its frames."""
    path = tmp_path_factory.mktemp("reencode") / "source.mp4"
    info = media.moving_face_video(path, n_frames=50, with_audio=True)
    with av.open(str(path)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return path, frames, info


CODECS = {"h264-crf18": "h264", "h264-crf36": "h264", "half-size": "h264", "mpeg1": "mpeg1video",
          "mpeg4-part2": "mpeg4", "vp9": "vp9"}


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_each_encoding_keeps_length_audio_and_picture(tmp_path, clip, name):
    source, frames, _ = clip
    out = reencode(source, tmp_path / name, name)
    assert out.suffix == ENCODINGS[name].suffix
    info = probe(out)
    assert info.codec == CODECS[name]
    assert info.has_audio
    scale = ENCODINGS[name].scale
    assert (info.width, info.height) == (int(320 * scale), int(240 * scale))
    assert info.num_frames == len(frames)
    with av.open(str(out)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    if scale == 1.0:  # the same pictures, up to the codec's loss
        error = np.abs(decoded.astype(int) - frames.astype(int)).mean()
        assert error < (12 if name == "h264-crf36" else 8), error


def test_low_quality_loses_more_than_high_quality(tmp_path, clip):
    source, frames, _ = clip
    errors = {}
    for name in ("h264-crf18", "h264-crf36"):
        with av.open(str(reencode(source, tmp_path / name, name))) as container:
            decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        errors[name] = np.abs(decoded.astype(int) - frames.astype(int)).mean()
    assert errors["h264-crf18"] < errors["h264-crf36"]


def test_mpeg1_takes_a_rate_it_allows_and_keeps_the_duration(tmp_path):
    path = tmp_path / "slow.mp4"
    media.write_video(path, media.moving_face_frames(12)[0], fps=4)
    out = reencode(path, tmp_path / "slow", "mpeg1")
    info = probe(out)
    assert Fraction(info.fps).limit_denominator(1001) == Fraction(24000, 1001)  # the allowed rate nearest to 4
    assert info.duration == pytest.approx(probe(path).duration, abs=0.3)
    assert not info.has_audio


def test_max_seconds_cuts_the_clip(tmp_path, clip):
    source, _, _ = clip
    info = probe(reencode(source, tmp_path / "cut", "h264-crf18", max_seconds=1.0))
    assert info.num_frames == 25


def test_every_encoding_of_one_clip_gets_its_own_file(tmp_path, clip):
    """The stem keeps its dots (``clip.h264-crf18``): no two encodings share a file name."""
    source, _, _ = clip
    written = {name: reencode(source, tmp_path / f"clip.{name}", name, max_seconds=0.5) for name in ENCODINGS}
    assert {p.name for p in written.values()} == {f"clip.{name}{ENCODINGS[name].suffix}" for name in ENCODINGS}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written.values())  # no partial left
