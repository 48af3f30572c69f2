"""Small `vidfake extract`-style folders written directly (no video, no face detector), for
training tests that need many clips or exact control: synthetic faces with known
landmarks, talking mouths whose opening follows a sound envelope, and their WAV audio."""
from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from vidfake.extract.folder import ExtractionFolder

SR = 16000


@dataclass
class SynthClip:
    """One video's worth of crops for :func:`write_extraction` (one face track)."""

    media_id: str
    label: int
    frames: np.ndarray  # (T,S,S,3) uint8 face crops
    landmarks: np.ndarray  # (T,5,2) in crop pixels
    fps: float = 25.0
    first_frame: int = 0
    method: str | None = None
    group: str | None = None
    mouths: np.ndarray | None = None  # (T,M,M,3) uint8
    audio: np.ndarray | None = None  # float32 mono at 16 kHz
    audio_start: float = 0.0  # time of the first audio sample on the frames' clock
    frame_indices: list[int] | None = field(default=None)  # default: consecutive from first_frame
    origin: str | None = None  # the source the file came from (for source-balanced batches)


def write_extraction(out: Path, clips: list[SynthClip], size: int, mouth_size: int = 96) -> Path:
    """Write ``images/``, ``mouths/``, ``audio/``, ``tracks.jsonl`` and ``config.json`` as
    ``vidfake extract`` would (crop margin 0 and boxes equal to the crop square, so the
    landmarks given in crop pixels are also the frame's)."""
    folder = ExtractionFolder(out)
    folder.write_settings({"extract": {"crop": {"size": size, "margin": 0.0, "mouth_size": mouth_size}}})
    folder.tracks_path.unlink(missing_ok=True)  # written afresh, as one extraction run writes it
    for clip in clips:
        t = len(clip.frames)
        indices = clip.frame_indices or list(range(clip.first_frame, clip.first_frame + t))
        names = [f"{clip.media_id}/t00_f{i:06d}.png" for i in indices]
        for k, name in enumerate(names):
            folder.image(name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(clip.frames[k]).save(folder.image(name))
            if clip.mouths is not None:
                folder.mouth(name).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(clip.mouths[k]).save(folder.mouth(name))
        track = {
            "track_id": 0, "frame_indices": indices,
            "timestamps": [round(i / clip.fps, 6) for i in indices],
            "boxes": [[0.0, 0.0, float(size), float(size)]] * t,
            "landmarks": np.asarray(clip.landmarks, float).tolist(),
            "scores": [0.99] * t, "detected": [True] * t, "size": float(size), "crops": names,
        }
        if clip.mouths is not None:
            track["mouths"] = names
        record = {
            "media_id": clip.media_id, "path": f"/data/{clip.media_id}.mp4", "kind": "video",
            "label": clip.label, "method": clip.method, "group": clip.group, "origin": clip.origin, "status": "ok",
            "info": {"fps": clip.fps, "num_frames": max(indices) + 1, "width": size, "height": size},
            "plan": {}, "frame_indices": indices, "timestamps": track["timestamps"], "tracks": [track],
            "audio": write_wav(out, clip.media_id, clip.audio, clip.audio_start) if clip.audio is not None else None,
        }
        folder.append(record)
    return out


def write_wav(out: Path, media_id: str, audio: np.ndarray, start_time: float) -> dict:
    path = out / "audio" / f"{media_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SR)
        handle.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return {"file": f"{media_id}.wav", "sample_rate": SR, "start_time": start_time, "duration": len(audio) / SR}


def synthetic_face(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A cartoon face (skin ellipse, eyes, nose, mouth, textured background) at a random
    place, scale and skin tone; returns ``(image (S,S,3) uint8, landmarks (5,2))`` with the
    landmarks in MTCNN order (eyes, nose, mouth corners)."""
    s = size
    bg = rng.integers(30, 220, 3)
    img = Image.fromarray(np.clip(bg + rng.normal(0, 3, (s, s, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    cx, cy = s / 2 + rng.uniform(-0.05, 0.05) * s, s / 2 + rng.uniform(-0.05, 0.05) * s
    rx, ry = s * rng.uniform(0.26, 0.32), s * rng.uniform(0.34, 0.40)
    skin = tuple(int(v) for v in rng.integers(90, 235, 3))
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=skin)
    eye_y, eye_dx = cy - 0.25 * ry, 0.42 * rx
    mouth_y, mouth_dx = cy + 0.5 * ry, 0.35 * rx
    r = max(1.0, 0.08 * s)
    for ex in (cx - eye_dx, cx + eye_dx):
        draw.ellipse([ex - r, eye_y - r / 2, ex + r, eye_y + r / 2], fill=(30, 30, 40))
    draw.line([cx, cy - 0.1 * ry, cx, cy + 0.2 * ry], fill=tuple(int(v * 0.7) for v in skin), width=max(1, s // 32))
    draw.line([cx - mouth_dx, mouth_y, cx + mouth_dx, mouth_y], fill=(150, 40, 50), width=max(1, s // 24))
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    array = np.asarray(img).astype(np.float32)
    array += rng.normal(0, 4, array.shape)  # skin texture, so blending leaves a trace
    landmarks = np.array([[cx - eye_dx, eye_y], [cx + eye_dx, eye_y], [cx, cy + 0.1 * ry],
                          [cx - mouth_dx, mouth_y], [cx + mouth_dx, mouth_y]], np.float32)
    return np.clip(array, 0, 255).astype(np.uint8), landmarks


def talking(rng: np.random.Generator, n_frames: int, fps: float, mouth_size: int,
            extra_frames: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """A learnable lip-sync task: a random on/off envelope per video frame; the mouth crop
    of frame ``i`` is a box open (tall) when ``env[i]`` is on, and the sound during frame
    ``i`` is a noise burst when it is on. Returns ``(mouths (T,M,M,3) uint8, audio)``,
    the audio starting at frame 0 and running ``extra_frames`` past the last frame."""
    total = n_frames + extra_frames
    env = rng.random(total) < 0.5
    m = mouth_size
    ys, xs = np.mgrid[:m, :m]
    mouths = np.empty((n_frames, m, m, 3), np.uint8)
    for i in range(n_frames):
        half_height = 1 + (0.3 * m if env[i] else 0.04 * m)
        box = (np.abs(ys - m // 2) <= half_height) & (np.abs(xs - m // 2) <= m // 4)
        mouths[i] = np.clip(box[..., None] * 220 + rng.normal(20, 8, (m, m, 3)), 0, 255).astype(np.uint8)
    n_samples = int(round(total / fps * SR))
    frame_of_sample = np.minimum((np.arange(n_samples) * fps / SR).astype(int), total - 1)
    audio = (env[frame_of_sample] * 0.5 * rng.standard_normal(n_samples) + 0.01 * rng.standard_normal(n_samples))
    return mouths, audio.astype(np.float32)


def blended_face(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A clean synthetic face and its blended fake: the inner face replaced, through a soft
    landmark mask (the one self-blended images use), by a copy with another colour cast
    and a coarser grain, the statistical mismatch a face swap leaves. Returns
    ``(real, fake, landmarks)``."""
    from vidfake.train.sbi import BlendParams, SBIConfig, face_mask

    target, landmarks = synthetic_face(rng, size)
    source = target.astype(np.float32) + rng.uniform(-40, 40, 3) + rng.normal(0, 45, target.shape)
    inner = SBIConfig(mask_dilate=0.0)
    mask = face_mask(landmarks, (size, size), BlendParams.identity(mask_blur=0.02), inner)[..., None]
    fake = mask * source + (1 - mask) * target.astype(np.float32)
    return target, np.clip(np.rint(fake), 0, 255).astype(np.uint8), landmarks


def write_blended_folder(out: Path, pairs: int, size: int = 32, seed: int = 0) -> Path:
    """``pairs`` clean faces (real) and their blended fakes (method ``"blend"``), one crop
    each, every pair in its own split group: a learnable real-vs-fake task."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(pairs):
        real, fake, landmarks = blended_face(rng, size)
        clips.append(SynthClip(f"real{i:03d}", 0, real[None], landmarks[None], group=f"id{i}"))
        clips.append(SynthClip(f"fake{i:03d}", 1, fake[None], landmarks[None], group=f"id{i}", method="blend"))
    return write_extraction(out, clips, size)


def write_face_videos(root: Path) -> Path:
    """Three short generated face videos of different face sizes, all labelled REAL in
    ``root/labels.csv``: the smallest input a `vidfake extract` + `vidfake train` run takes."""
    from vidfake.testing import media

    for i, height in enumerate((70, 88, 100)):
        media.moving_face_video(root / f"face{i}.mp4", n_frames=20, face_height=height)
    (root / "labels.csv").write_text("path,label\n" + "".join(f"face{i}.mp4,REAL\n" for i in range(3)))
    return root


def extract_small(videos: Path, out: Path) -> Path:
    """``vidfake extract`` of ``write_face_videos``' folder: 8 frames, 64 px crops."""
    from vidfake.cli import main

    code = main(["extract", str(videos), "--out", str(out), "--labels", str(videos / "labels.csv"),
                 "--frames", "8", "--size", "64", "--no-progress"])
    assert code == 0
    return out
