"""Fuzzing: seeded mutants of generated media (always) and of the shared fixtures (when
present) through probe, decode and scoring; none may crash. Below them, one regression
test per crash the fuzzer found, each on the smallest file that shows it."""
from __future__ import annotations

import io
import json
import random
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidfake.cli import main
from vidfake.extract.pipeline import MediaError, load_image
from vidfake.extract.video import DecodeError, NoAudioError, open_video, probe, read_audio
from vidfake.testing import fuzz, media

SEED = 0
FIXTURE_SOURCES = ("videos/ffpp_004.mp4", "videos/grid_bbaf2n.mpg", "images/photo_paul_rudd.jpg",
                   "face_crops/real/abarnvbtwb-000-00.png")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[Path]:
    """Generated sources: six containers and codecs with a face moving across, two
    stills, and the test suite's own H.264 clips (rotated, variable frame rate)."""
    folder = tmp_path_factory.mktemp("fuzz_seeds")
    face, _ = media.head_patch(60)
    paths = fuzz.synthetic_seeds(folder, face=face)
    paths.append(media.moving_face_video(folder / "face.mp4", n_frames=20).path)
    paths.append(media.rotated_face_video(folder / "rotated.mp4", rotation=90, n_frames=12).path)
    paths.append(media.vfr_video(folder / "vfr.mp4").path)
    paths.append(media.face_image(folder / "face.png").path)
    return paths


@pytest.fixture(scope="module")
def checkpoint(sync_checkpoint) -> Path:
    return sync_checkpoint


@pytest.fixture(scope="module")
def scorer(checkpoint):
    from vidfake.scoring import Scorer

    return Scorer(checkpoint, plan="uniform:4")


def crashes(outcomes) -> list[str]:
    return [f"{o.path}: {o.detail}\n{o.traceback}" for o in outcomes if o.result == "crash"]


# -- the harness itself -----------------------------------------------------------------


def test_a_mutant_is_rebuilt_exactly_from_seed_source_and_index(seeds):
    source = seeds[0]
    first, again = fuzz.make_mutant(source, 3, seed=7), fuzz.make_mutant(source, 3, seed=7)
    assert first.data == again.data and first.operations == again.operations and first.operations
    assert first.name == f"{source.stem}-0003{source.suffix}"
    assert fuzz.make_mutant(source, 4, seed=7).data != first.data
    assert fuzz.make_mutant(source, 3, seed=8).data != first.data
    listed = list(fuzz.mutants(seeds[:2], 4, seed=7))
    assert [m.source for m in listed] == [seeds[0], seeds[1], seeds[0], seeds[1]]
    assert listed[2].index == 1 and listed[2].data == fuzz.make_mutant(seeds[0], 1, seed=7).data


def test_every_mutation_changes_the_bytes_and_says_how(seeds):
    data = seeds[0].read_bytes()
    for name, mutation in fuzz.MUTATIONS.items():
        results = [mutation(data, random.Random(i)) for i in range(5)]
        assert any(out != data for out, _ in results), name
        assert all(step.startswith(name + "(") for _, step in results)
    truncated, _ = fuzz.truncate(data, random.Random(1))
    assert len(truncated) < len(data) and data.startswith(truncated)
    lied, step = fuzz.lying_size(data, random.Random(2))
    assert len(lied) == len(data) and sum(a != b for a, b in zip(lied, data)) <= 4, step


def test_lying_size_targets_mp4_box_sizes_and_table_counts():
    stsz = struct.pack(">I", 20) + b"stsz" + bytes(4) + struct.pack(">II", 0, 2)
    data = struct.pack(">I", 8) + b"ftyp" + stsz
    seen = {fuzz.lying_size(data, random.Random(i))[1].split(" ")[0] for i in range(40)}
    assert seen == {"lying_size(ftyp.size", "lying_size(stsz.size", "lying_size(stsz.count"}


def test_minimize_keeps_only_what_the_failure_needs():
    original = bytes(range(256)) * 8
    mutated = bytearray(original)
    for i in (10, 300, 1500, 1800):
        mutated[i] ^= 0xFF

    def needs(data: bytes) -> bool:
        return len(data) > 300 and data[300] == original[300] ^ 0xFF

    small = fuzz.minimize(bytes(mutated), needs, original=original)
    assert needs(small) and len(small) == 301
    assert [i for i in range(len(small)) if small[i] != original[i]] == [300]


# -- mutants through the code -------------------------------------------------------------


def test_160_decode_level_mutants_of_generated_media_are_answered_cleanly(seeds, tmp_path):
    paths = fuzz.write_mutants(seeds, tmp_path, 160, seed=SEED)
    outcomes = [fuzz.check_decode(path) for path in paths]
    assert not crashes(outcomes), "\n".join(crashes(outcomes))
    results = Counter(o.result for o in outcomes)
    assert results["ok"] >= 20 and results["rejected"] >= 20, results  # both paths are exercised


def test_decode_level_mutants_of_the_real_fixtures_are_answered_cleanly(fixtures_dir, tmp_path):
    sources = [fixtures_dir / name for name in FIXTURE_SOURCES if (fixtures_dir / name).exists()]
    paths = fuzz.write_mutants(sources, tmp_path, 80, seed=SEED)
    outcomes = [fuzz.check_decode(path) for path in paths]
    assert not crashes(outcomes), "\n".join(crashes(outcomes))


def test_scoring_level_mutants_are_verdicts_never_caught_crashes(seeds, scorer, tmp_path):
    paths = fuzz.write_mutants(seeds, tmp_path, 36, seed=SEED + 1)
    outcomes = [fuzz.check_score(path, scorer) for path in paths]
    assert not crashes(outcomes), "\n".join(crashes(outcomes))
    statuses = Counter(o.extra["status"] for o in outcomes)
    assert statuses["ok"] >= 3 and statuses["unreadable"] + statuses["unsupported"] >= 3, statuses


def test_check_score_reports_an_error_the_safety_net_caught_as_a_crash(seeds, scorer, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(scorer.extractor, "extract_video", broken)
    outcome = fuzz.check_score(seeds[0], scorer)
    assert outcome.result == "crash" and outcome.error_type == "ZeroDivisionError"
    assert "planted" in outcome.traceback and "Traceback" in outcome.traceback


def test_40_damaged_copies_of_a_fixture_video_give_40_records(fixtures_dir, checkpoint, tmp_path, capsys):
    """The issue's finish line: one `vidfake score DIR --json` over 40 seeded mutants."""
    folder = tmp_path / "damaged"
    fuzz.write_mutants([fixtures_dir / "videos" / "ffpp_004.mp4"], folder, 40, seed=SEED)
    code = main(["score", str(folder), "--checkpoint", str(checkpoint), "--frames", "4", "--json", "--no-progress"])
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(records) == 40 and "Traceback" not in out + err
    assert sorted(Path(r["path"]).name for r in records) == sorted(p.name for p in folder.iterdir())
    statuses = Counter(r["status"] for r in records)
    assert set(statuses) <= {"ok", "no_face", "unreadable", "unsupported"}, statuses
    assert all(r["error"] for r in records if r["status"] in ("unreadable", "unsupported"))
    assert all("unexpected" not in (r["error"] or "") for r in records)
    assert code == (1 if statuses["unreadable"] + statuses["unsupported"] else 0)


# -- regressions: one per crash the fuzzer found, on the smallest file that shows it ----------


def _tiny_video(path: Path, audio: bool = False) -> bytes:
    frames = np.full((2, 32, 32, 3), 128, np.uint8)
    media.write_video(path, frames, fps=25, audio=media.sine_tone(0.1) if audio else None)
    return path.read_bytes()


def test_a_video_stream_whose_codec_ffmpeg_does_not_know_is_unreadable_with_a_reason(tmp_path, scorer):
    """Found as an AttributeError ('NoneType' has no 'width') in the probe: a flipped bit
    in the sample description's codec tag leaves PyAV without a codec context."""
    path = tmp_path / "unknown_codec.mp4"
    data = _tiny_video(path)
    tag = data.index(b"avc1", data.index(b"stsd"))  # the sample entry (ftyp lists avc1 as a brand too)
    path.write_bytes(data[:tag] + b"xvc1" + data[tag + 4 :])
    with pytest.raises(DecodeError, match="codec is unknown"):
        probe(path)
    verdict = scorer.score_video(path)
    assert verdict.status == "unreadable" and "codec is unknown" in verdict.error


def test_an_audio_stream_whose_codec_ffmpeg_does_not_know_counts_as_no_audio(tmp_path):
    """The same damage in the audio track's sample entry (its tag, and the object type in
    its esds, which FFmpeg falls back on) crashed the probe on the audio sample rate."""
    path = tmp_path / "unknown_audio.mp4"
    data = bytearray(_tiny_video(path, audio=True))
    assert probe(path).has_audio
    tag = data.index(b"mp4a", data.index(b"stsd", data.index(b"soun")))
    data[tag : tag + 4] = b"xp4a"
    data[data.index(b"\x04\x80\x80\x80", data.index(b"esds")) + 5] = 0xFE  # "no object type"
    path.write_bytes(bytes(data))
    info = probe(path)
    assert not info.has_audio and info.num_frames == 2
    with pytest.raises(NoAudioError, match="FFmpeg can decode"):
        read_audio(path)


def test_a_png_whose_image_data_chunk_lies_about_its_size_is_refused_cleanly(tmp_path):
    """Found as a SyntaxError from Pillow: the minimizer shrank the mutant to the header,
    an IDAT chunk claiming 7 bytes and the data behind it (56 bytes in all)."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue()[:56])
    assert data[37:41] == b"IDAT"
    data[33:37] = struct.pack(">I", 7)
    path = tmp_path / "lying.png"
    path.write_bytes(bytes(data))
    with pytest.raises(MediaError, match="SyntaxError"):
        load_image(path)


def test_a_stream_that_changes_frame_size_midway_decodes_at_one_size(tmp_path):
    """Two MPEG-TS segments of different sizes back to back (a legal H.264 stream, and
    what a spliced or damaged file looks like): every frame comes back at the probed size."""
    import av

    def segment(width: int, height: int, first: int) -> bytes:
        path = tmp_path / f"{width}.ts"
        with av.open(str(path), "w", format="mpegts") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for i in range(4):
                frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 40 * i, np.uint8), format="rgb24")
                frame.pts = first + i
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return path.read_bytes()

    path = tmp_path / "spliced.ts"
    path.write_bytes(segment(64, 48, 0) + segment(32, 16, 4))
    with av.open(str(path)) as container:
        sizes = {(frame.width, frame.height) for frame in container.decode(video=0)}
    assert sizes == {(64, 48), (32, 16)}
    with open_video(path) as reader:
        n = reader.info.num_frames
        assert (reader.info.width, reader.info.height) == (64, 48) and n >= 6
        chunks = list(reader.iter_chunks(range(n)))
    assert np.concatenate([i for i, _ in chunks]).tolist() == list(range(n))
    assert all(frames.shape[1:] == (48, 64, 3) for _, frames in chunks)
