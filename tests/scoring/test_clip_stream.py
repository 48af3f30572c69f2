"""Crops reach the model in bounded clips as extraction cuts them, so scoring memory does
not grow with a video's length (``every:K`` plans over long videos)."""
from __future__ import annotations

import json
import weakref

import numpy as np
import pytest

from vidfake.extract.sampling import parse_plan
from vidfake.scoring.clip_stream import ClipResult, ClipStream
from vidfake.testing import media


class Model:
    """Stands in for the model: records each clip and gives logit = first frame index."""

    def __init__(self):
        self.clips: list[np.ndarray] = []

    def __call__(self, clips) -> list[ClipResult]:
        self.clips += [c.frame_indices for c in clips]
        for c in clips:
            assert len(c.crops) == len(c.timestamps) == len(c.frame_indices)
            assert (c.crops[:, 0, 0, 0] == c.frame_indices % 256).all()  # the crops travel with their frames
        return [ClipResult(c.frame_indices, float(c.frame_indices[0]), c.frame_indices.astype(float)) for c in clips]


def feed(stream: ClipStream, track_id: int, frames: np.ndarray) -> None:
    crops = np.zeros((len(frames), 4, 4, 3), np.uint8)
    crops[:, 0, 0, 0] = frames % 256
    stream.add(track_id, frames, frames / 25.0, crops, None)


def test_a_long_track_goes_to_the_model_while_it_is_read_and_memory_stays_bounded():
    model = Model()
    stream = ClipStream(model, parse_plan("every:1"), 10_000, max_clip=32)
    for start in range(0, 3000, 9):  # segments of 9 sampled frames, a long video's worth
        feed(stream, 0, np.arange(start, min(start + 9, 3000)))
        assert len(model.clips) >= (start - 64) // 32  # clips leave as soon as they are complete
    assert stream.peak_held <= 9 + 2 * 32 - 1
    results = stream.finish(0)
    assert stream.held == 0
    lengths = [len(c) for c in model.clips]
    assert lengths[:-2] == [32] * (len(lengths) - 2) and sum(lengths) == 3000
    assert lengths[-2:] == [28, 28]  # the last 56 split evenly, not 32 + 24
    np.testing.assert_array_equal(np.concatenate(model.clips), np.arange(3000))
    assert [r.logit for r in results] == [float(c[0]) for c in model.clips]


def test_a_short_track_is_cut_as_if_seen_whole():
    for n, expected in ((1, [1]), (32, [32]), (40, [20, 20]), (63, [32, 31])):
        model = Model()
        stream = ClipStream(model, parse_plan("uniform:100"), 1000, max_clip=32)
        feed(stream, 0, np.arange(n))
        assert model.clips == []  # nothing is final before the end of the video
        stream.finish(0)
        assert [len(c) for c in model.clips] == expected
        np.testing.assert_array_equal(np.concatenate(model.clips), np.arange(n))


def test_clips_plans_send_each_plan_clip_once_it_is_complete():
    plan = parse_plan("clips:3x4")
    groups = plan.clip_groups(50)
    model = Model()
    stream = ClipStream(model, plan, 50, max_clip=32)
    track_frames = np.concatenate([groups[0][1:], groups[1], groups[2][:2]])  # enters late, leaves early
    feed(stream, 7, track_frames[:5])
    assert [c.tolist() for c in model.clips] == [groups[0][1:].tolist()]  # clip 1 has begun: clip 0 is done
    feed(stream, 7, track_frames[5:])
    stream.finish(7)
    assert [c.tolist() for c in model.clips] == [groups[0][1:].tolist(), groups[1].tolist(), groups[2][:2].tolist()]


def test_tracks_are_buffered_apart_and_unfinished_ones_are_dropped():
    model = Model()
    stream = ClipStream(model, parse_plan("every:1"), 1000, max_clip=32)
    feed(stream, 0, np.arange(0, 10))
    feed(stream, 1, np.arange(0, 10))
    feed(stream, 0, np.arange(10, 20))
    assert [r.frame_indices.tolist() for r in stream.finish(0)] == [list(range(20))]
    assert stream.finish(3) == []  # a track that never had crops
    assert stream.held == 10  # track 1 was never finished (a track dropped at the end): never scored
    assert len(model.clips) == 1


def test_clips_sent_together_share_one_copy_that_is_not_kept_after_the_model():
    """Taking clip after clip from a track's buffer copies its crops once (the clips are
    views of one joined array), and once the model has them nothing keeps that array."""
    bases: list[list[weakref.ref]] = []

    class Watching(Model):
        def __call__(self, clips) -> list[ClipResult]:
            assert len({id(c.crops.base) for c in clips}) == 1
            bases.append([weakref.ref(c.crops.base) for c in clips])
            return super().__call__(clips)

    model = Watching()
    stream = ClipStream(model, parse_plan("every:1"), 10_000, max_clip=32)
    for start in range(0, 1000, 100):  # segments of 100 sampled frames: 2 to 4 clips each
        feed(stream, 0, np.arange(start, start + 100))
        assert all(ref() is None for ref in bases[-1])  # the stream kept only the rest, copied out
    assert max(len(b) for b in bases) >= 3 and stream.peak_held <= 100 + 2 * 32 - 1
    stream.finish(0)
    np.testing.assert_array_equal(np.concatenate(model.clips), np.arange(1000))


@pytest.fixture(scope="module")
def long_face_video(tmp_path_factory):
    return media.moving_face_video(tmp_path_factory.mktemp("long") / "long.mp4", n_frames=120, size=(160, 120),
                                   face_height=60, with_audio=False)


def test_scoring_an_every_plan_streams_crops_in_bounded_chunks(long_face_video, tmp_path, monkeypatch, capsys):
    """120 sampled frames read in segments of 18 (``max_buffer_mb`` 1 at 160x120): the model
    sees clips while the video is read, the stream never holds the whole track, and the
    verdict is the one a single-segment read gives."""
    import vidfake.scoring
    from vidfake.checkpoints.format import init_checkpoint
    from vidfake.cli import main
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.temporal.config import ModelConfig

    peaks = []

    class Recording(ClipStream):
        def add(self, *args) -> None:
            super().add(*args)
            peaks.append(self.peak_held)

    monkeypatch.setattr(vidfake.scoring.scorer, "ClipStream", Recording)
    model = ModelConfig(backbone="resnet10t", input_size=64, embed_dim=32, temporal_layers=1, temporal_heads=2,
                        sync=False)
    records = {}
    for buffer_mb in (1, 512):
        peaks.clear()
        config = ExtractConfig(plan="every:1", max_buffer_mb=buffer_mb)
        checkpoint = init_checkpoint(tmp_path / f"every_{buffer_mb}.safetensors", model, config)
        assert main(["score", str(long_face_video.path), "--checkpoint", str(checkpoint), "--json", "--no-progress"]) == 0
        records[buffer_mb] = json.loads(capsys.readouterr().out)
        records[buffer_mb]["peak"] = max(peaks)
        records[buffer_mb]["adds"] = len(peaks)
    streamed, whole = records[1], records[512]
    segment = (1 << 20) // (160 * 120 * 3)  # 18 frames a segment
    assert streamed["adds"] > 1 and streamed["peak"] <= segment + 2 * 32 - 1 < 120
    assert whole["adds"] == 1 and whole["peak"] >= 100  # one segment: every crop at once
    for record in (streamed, whole):
        assert record["status"] == "ok"
        (track,) = record["tracks"]
        assert track["frames"] >= 110 and track["clips"] == 4  # 32 + 32 + the rest in two halves
    assert streamed["tracks"][0]["frames"] == whole["tracks"][0]["frames"]


class WatchedReader:
    """A video reader that keeps a weak reference to every frame it decodes, so a test can
    count the decoded frames still alive at any moment."""

    def __init__(self, reader):
        self.reader = reader
        self.segments: list[list[weakref.ref]] = []
        self.alive_at_decode: list[int] = []

    def __getattr__(self, name):
        return getattr(self.reader, name)

    def __enter__(self) -> WatchedReader:
        return self

    def __exit__(self, *exc) -> None:
        self.reader.close()

    def alive(self) -> int:
        return sum(ref() is not None for segment in self.segments for ref in segment)

    def read_frames(self, indices):
        self.alive_at_decode.append(self.alive())
        found, frames = self.reader.read_frames(indices)
        self.segments.append([weakref.ref(frame) for frame in frames])
        return found, frames


def test_extraction_holds_one_segment_of_frames_and_none_while_handing_over_crops(long_face_video, monkeypatch):
    """120 sampled frames read in segments of 18 (``max_buffer_mb`` 1 at 160x120): a segment's
    frames are gone before the next is decoded and before its crops reach the sink (where
    scoring runs the model), so neither the frames of a long video nor frames and model
    together pile up."""
    import vidfake.extract.pipeline as pipeline
    from vidfake.extract.pipeline import ExtractConfig, FaceExtractor

    readers: list[WatchedReader] = []
    open_video = pipeline.open_video

    def open_watched(*args, **kwargs) -> WatchedReader:
        readers.append(WatchedReader(open_video(*args, **kwargs)))
        return readers[-1]

    monkeypatch.setattr(pipeline, "open_video", open_watched)
    alive_at_sink: list[int] = []
    handed: list[int] = []

    def sink(track_id, frame_indices, timestamps, crops, mouths) -> None:
        alive_at_sink.append(readers[-1].alive())
        handed.extend(frame_indices.tolist())

    faces = FaceExtractor(ExtractConfig(plan="every:1", max_buffer_mb=1)).extract_video(
        long_face_video.path, sink_for=lambda turn: sink)
    (reader,) = readers
    assert len(reader.segments) == -(-120 // 18)  # 7 segments, each decoded once
    assert reader.alive_at_decode == [0] * 7 and reader.alive() == 0
    assert len(alive_at_sink) >= 6 and alive_at_sink == [0] * len(alive_at_sink)
    (face,) = faces.faces
    assert face.crops is None and sorted(handed) == face.track.frame_indices.tolist()
