"""The example clip that ships inside the package: it is there, it is what its
attribution says, an install carries it, and the README's first command scores it with
the default model on a machine without ``../shared``."""
from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import av
import numpy as np
import pytest

from tests.paths import REPO
from vidfake.examples import EXAMPLE_FILE, example_path
from vidfake.examples.package import AUDIO_RATE, MAX_EXAMPLE_KB, ExampleEncodeError, reencode_example
from vidfake.extract.video import probe, read_audio
from vidfake.testing import media


def readme_first_command() -> str:
    """The first command of the README's first ```bash block."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no bash block"
    return block.group(1).strip().splitlines()[0]


def test_example_clip_is_the_small_talking_face_its_attribution_describes():
    path = example_path()
    assert path.name == EXAMPLE_FILE and path.is_file()
    assert path.stat().st_size <= MAX_EXAMPLE_KB * 1024
    info = probe(path)
    assert (info.width, info.height, info.num_frames, info.codec) == (360, 288, 75, "h264")
    assert info.fps == pytest.approx(25.0) and info.duration == pytest.approx(3.0, abs=0.05)
    assert info.has_audio and info.audio_sample_rate == AUDIO_RATE
    audio = read_audio(path)
    assert audio.duration == pytest.approx(3.0, abs=0.05) and np.abs(audio.samples).max() > 0.05  # speech, not silence

    attribution = (path.parent / "ATTRIBUTION.md").read_text()
    for needed in (EXAMPLE_FILE, "bbaf3s.mpg", "CC BY 4.0", "Cooke", "Barker", "Cunningham", "Shao",
                   "creativecommons.org/licenses/by/4.0", "re-encoded"):
        assert needed in attribution, needed


def test_an_install_carries_the_clip_and_its_attribution():
    """A non-editable install copies only the package data pyproject lists."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["vidfake.examples"]
    for name in (EXAMPLE_FILE, "ATTRIBUTION.md"):
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name
    shipped = {p.name for p in example_path().parent.iterdir() if not p.name.endswith((".py", ".pyc")) and p.is_file()}
    assert shipped == {EXAMPLE_FILE, "ATTRIBUTION.md"}  # no other media in the package


def test_example_path_from_the_top_level_without_importing_torch():
    code = "import sys, vidfake; p = vidfake.example_path(); print(p); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert Path(out[0]) == example_path() and out[1] == "False"


def test_readme_first_command_scores_the_example_without_shared(tmp_path):
    """The README's first command, run the way a new user runs it from a fresh clone: its
    scoring part, in a folder with no ../shared beside it, with the default model."""
    command = readme_first_command()
    assert "../shared" not in command
    scoring = command.rsplit("&&", 1)[-1].split()
    assert scoring[:3] == [".venv/bin/vidfake", "score", "--example"], command
    clone = tmp_path / "clone"
    clone.mkdir()
    assert not (clone.parent / "shared").exists()
    result = subprocess.run([sys.executable, "-m", "vidfake", *scoring[1:], "--json", "--no-progress"],
                            cwd=clone, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    (verdict,) = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert Path(verdict["path"]) == example_path()
    assert verdict["status"] == "ok" and 0 <= verdict["score"] <= 1 and verdict["label"] in ("REAL", "FAKE")
    assert verdict["model"]["name"] == "vidfake-default"
    assert len(verdict["tracks"]) == 1  # one speaker, tracked through the clip
    audio = verdict["audio"]
    assert audio["present"] is True and audio["used"] is True, audio  # the lip-sync head ran
    assert 0 <= audio["sync_confidence"] <= 1 and isinstance(audio["offset_frames"], int)
    if "--plots" in scoring:
        plots = clone / scoring[scoring.index("--plots") + 1]
        assert [p.name for p in plots.iterdir()] == [f"{Path(EXAMPLE_FILE).stem}_timeline.png"]


def test_readme_shows_how_to_score_your_own_file():
    text = (REPO / "README.md").read_text()
    assert re.search(r"\.venv/bin/vidfake score \S+\.mp4", text)
    assert "CC BY 4.0" in text and "GRID" in text


# -- how the clip was made ---------------------------------------------------------------


def _source_with_click(path: Path, n_frames: int = 30, click_s: float = 0.6, rate: int = 44100) -> Path:
    """Frames with their index burnt in, and silence with one noise burst at ``click_s``."""
    frames, _, _ = media.moving_face_frames(n_frames, (320, 240))
    audio = np.zeros(int(rate * n_frames / 25), np.float32)
    start = int(click_s * rate)
    audio[start:start + rate // 20] = np.random.default_rng(0).uniform(-0.8, 0.8, rate // 20)
    return media.write_video(path, frames, fps=25, audio=audio, sample_rate=rate)


def test_reencode_keeps_every_frame_in_place_and_the_audio_in_sync(tmp_path):
    source = _source_with_click(tmp_path / "source.mp4")
    out = reencode_example(source, tmp_path / "example.mp4")
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.average_rate == 25
        decoded = [(frame.time, media.read_frame_index(frame.to_ndarray(format="rgb24")))
                   for frame in container.decode(stream)]
        audio_stream = container.streams.audio[0]
        assert audio_stream.codec_context.name == "aac" and audio_stream.rate == AUDIO_RATE
        assert audio_stream.codec_context.layout.name == "mono"
    assert [index for _, index in decoded] == list(range(30))  # none dropped, added or reordered
    assert [t for t, _ in decoded] == pytest.approx([i / 25 for i in range(30)])

    audio = read_audio(out)
    onset = audio.start_time + np.argmax(np.abs(audio.samples) > 0.2) / audio.sample_rate
    assert onset == pytest.approx(0.6, abs=0.003)  # the burst is where it was: lip sync kept


def test_reencode_refuses_a_clip_without_audio_or_too_large(tmp_path, monkeypatch):
    silent = media.moving_face_video(tmp_path / "silent.mp4", n_frames=10, with_audio=False)
    with pytest.raises(ExampleEncodeError, match="audio stream"):
        reencode_example(silent.path, tmp_path / "out.mp4")
    source = _source_with_click(tmp_path / "source.mp4", n_frames=10, click_s=0.1)
    monkeypatch.setattr("vidfake.examples.package.MAX_EXAMPLE_KB", 1)
    with pytest.raises(ExampleEncodeError, match="over 1 KB"):
        reencode_example(source, tmp_path / "big.mp4")
    assert not (tmp_path / "big.mp4").exists()
