"""``vidfake extract`` end to end: generated media always, the shared fixtures when present."""
import csv
import json
import shutil

import pytest

from vidfake.cli import main
from vidfake.testing import media


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def input_dir(tmp_path_factory, face_video, two_face_video, empty_scene_video):
    root = tmp_path_factory.mktemp("inputs")
    shutil.copy(face_video.path, root / "real_one.mp4")
    shutil.copy(two_face_video.path, root / "fake_two.mp4")
    shutil.copy(empty_scene_video.path, root / "empty.mp4")
    media.truncated_copy(face_video.path, root / "broken.mp4", fraction=0.3)
    media.face_image(root / "still.png")
    (root / "labels.csv").write_text(
        "path,label,kind,source\nreal_one.mp4,REAL,real,studio/a\nfake_two.mp4,fake,faceswap,web/b\nempty.mp4,0,real,\n"
        "broken.mp4,1,faceswap,web/b\nstill.png,Real,real,studio/a\n"
    )
    return root


def test_extract_writes_crops_labels_tracks_and_errors(input_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["extract", str(input_dir), "--out", str(out), "--labels", str(input_dir / "labels.csv"),
                 "--frames", "8", "--size", "112", "--no-progress", "--json"])
    assert code == 1  # the broken file failed; the rest went on
    summary = json.loads(capsys.readouterr().out)
    assert (summary["total"], summary["ok"], summary["no_face"], summary["failed"]) == (5, 3, 1, 1)

    records = {r["media_id"]: r for r in read_jsonl(out / "tracks.jsonl")}
    assert set(records) == {"real_one", "fake_two", "still"}
    assert len(records["fake_two"]["tracks"]) == 2 and records["fake_two"]["method"] == "faceswap"
    assert {k: r["origin"] for k, r in records.items()} == {"real_one": "studio/a", "fake_two": "web/b", "still": "studio/a"}
    track = records["real_one"]["tracks"][0]
    assert len(track["frame_indices"]) == len(track["boxes"]) == len(track["crops"]) == len(track["landmarks"]) == 8
    assert records["real_one"]["info"]["num_frames"] == 50 and records["real_one"]["plan"] == "uniform:8"

    errors = {r["media_id"]: r for r in read_jsonl(out / "errors.jsonl")}
    assert errors["empty"]["status"] == "no_face" and errors["broken"]["status"] == "unreadable"
    assert "broken.mp4" in errors["broken"]["reason"]

    rows = read_csv(out / "labels.csv")
    targets = {r["img_name"].split("/")[0]: r["target"] for r in rows}
    assert targets == {"real_one": "0", "fake_two": "1", "still": "0"}
    assert len(rows) == summary["crops"] == 8 + 16 + 1
    from PIL import Image

    for row in rows:
        with Image.open(out / "images" / row["img_name"]) as image:
            assert image.size == (112, 112)


def test_resume_skips_finished_files(input_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["extract", str(input_dir / "real_one.mp4"), "--out", str(out), "--frames", "4", "--no-progress", "--json"]
    assert main(args) == 0
    capsys.readouterr()
    first = (out / "tracks.jsonl").read_text()
    stamp = (out / "images" / "real_one").stat().st_mtime_ns

    assert main(args[:2] + [str(input_dir / "empty.mp4")] + args[2:] + ["--resume"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["skipped"], summary["ok"], summary["no_face"]) == (1, 0, 1)
    assert (out / "tracks.jsonl").read_text() == first
    assert (out / "images" / "real_one").stat().st_mtime_ns == stamp

    assert main(args + ["--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 1
    assert main(args) == 2  # without --resume an existing output is not overwritten
    assert main(args + ["--resume", "--size", "64"]) == 2  # other settings are refused


def test_audio_is_written_on_the_frames_clock(input_dir, tmp_path, capsys):
    import wave

    import numpy as np

    out = tmp_path / "out"
    assert main(["extract", str(input_dir / "real_one.mp4"), "--out", str(out), "--frames", "4", "--audio",
                 "--no-progress", "--json"]) == 0
    (record,) = read_jsonl(out / "tracks.jsonl")
    audio = record["audio"]
    assert audio["sample_rate"] == 16000 and audio["start_time"] == pytest.approx(0.0, abs=0.05)
    with wave.open(str(out / "audio" / audio["file"])) as handle:
        assert (handle.getframerate(), handle.getnchannels()) == (16000, 1)
        samples = np.frombuffer(handle.readframes(handle.getnframes()), "<i2") / 32767
    assert len(samples) / 16000 == pytest.approx(record["info"]["duration"], abs=0.1)
    peak = np.fft.rfftfreq(16000, 1 / 16000)[np.abs(np.fft.rfft(samples[:16000])).argmax()]
    assert peak == pytest.approx(media.TONE_HZ, abs=2)


def test_output_folder_inside_the_input_is_not_read_back(tmp_path):
    from vidfake.extract.dataset import collect_media

    media.face_image(tmp_path / "a.png")
    crop_dir = tmp_path / "out" / "images" / "a"
    crop_dir.mkdir(parents=True)
    media.face_image(crop_dir / "t00_f000000.png")
    assert [i.media_id for i in collect_media([tmp_path], exclude=tmp_path / "out")] == ["a"]
    assert len(collect_media([tmp_path])) == 2


def test_bad_plan_and_missing_input_exit_2(tmp_path, capsys):
    assert main(["extract", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert main(["extract", str(tmp_path), "--out", str(tmp_path / "o"), "--plan", "sometimes"]) == 2
    assert "plan" in capsys.readouterr().err


@pytest.mark.slow
def test_extract_shared_fixtures(fixtures_dir, tmp_path, capsys):
    out = tmp_path / "fixtures"
    code = main(["extract", str(fixtures_dir / "videos"), "--out", str(out), "--labels",
                 str(fixtures_dir / "labels.csv"), "--frames", "16", "--workers", "2", "--no-progress", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["failed"] == 0 and summary["no_face"] == 0
    records = {r["media_id"]: r for r in read_jsonl(out / "tracks.jsonl")}
    assert len(records["street_multiface"]["tracks"]) >= 2
    for name in ["dfdc_lynaeydofd", "dfdc_yhffcuhhjy", "ffpp_004", "ffpp_004_982_neuraltextures"]:
        main_track = records[name]["tracks"][0]
        assert len(main_track["frame_indices"]) >= 14, name
        marks = main_track["landmarks"]
        assert all(m[0][1] < m[3][1] and m[1][1] < m[4][1] for m in marks), f"{name}: face not upright"
    expected = {r["path"].split("/")[-1].rsplit(".", 1)[0]: r["label"] for r in read_csv(fixtures_dir / "labels.csv")}
    for row in read_csv(out / "labels.csv"):
        video = row["img_name"].split("/")[0]
        assert row["target"] == ("1" if expected[video] == "FAKE" else "0")
    assert records["dfdc_yhffcuhhjy"]["info"]["height"] == 1280  # portrait stays portrait
