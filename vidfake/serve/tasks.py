"""What runs inside the service's child processes (see ``process``).

``ProbeTask`` identifies an upload from its header. ``ScoreTask`` loads the model once
(one ``Scorer`` per worker) and scores files exactly as ``vidfake score`` does, then
saves face thumbnails. Both are constructed in the child, so the server process never
imports torch and a crash here only takes down the child.
"""
from __future__ import annotations

from pathlib import Path

from vidfake.serve.heatmap_files import heatmap_folder, name_only
from vidfake.serve.media_check import inspect_media


class ProbeTask:
    """``{"path": ...}`` -> ``MediaFacts.to_dict()``."""

    def __init__(self) -> None:
        self.info: dict = {}

    def __call__(self, request: dict) -> dict:
        return inspect_media(Path(request["path"])).to_dict()


class ScoreTask:
    """``{"path", "kind", "faces_dir", "display_name"}`` -> ``{"verdict", "faces"}``."""

    def __init__(self, checkpoint: str | list[str], device: str = "cpu", thumbnail_size: int = 112,
                 threads: int | None = None, heatmap_frames: int = 0, keyframe_interval: int | None = None):
        """``checkpoint``: one checkpoint or ensemble file, or a list of members (an ensemble);
        ``heatmap_frames``: heat maps per face track (0: none; an ensemble draws none yet);
        ``keyframe_interval``: overrides the model's face search (None: the model's)."""
        import torch

        from vidfake.scoring import build_scorer

        if threads:
            torch.set_num_threads(threads)
        # loaded before the first job, not during it
        self.scorer = build_scorer(checkpoint, device=device, keyframe_interval=keyframe_interval).load()
        self.thumbnail_size = thumbnail_size
        self.heatmap_frames = heatmap_frames if self.scorer.draws_heatmaps else 0
        files = [checkpoint] if isinstance(checkpoint, str) else checkpoint
        self.info = {**model_summary(self.scorer), "checkpoint": " + ".join(Path(f).name for f in files),
                     "device": device}

    def __call__(self, request: dict) -> dict:
        from vidfake.extract.video import DecodeError
        from vidfake.serve.thumbnails import save_face_thumbnails

        path, name = Path(request["path"]), request["display_name"]
        kind = request["kind"]
        heatmaps = None
        if self.heatmap_frames:
            from vidfake.scoring.heatmaps import HeatmapOptions

            heatmaps = HeatmapOptions(heatmap_folder(Path(request["faces_dir"])), self.heatmap_frames)
        verdict = self.scorer.score(path, kind, heatmaps)
        record = name_only(_without_server_path(verdict.to_dict(), str(path), name))
        faces = []
        if verdict.status == "ok":
            margin = self.scorer.extract_config.crop.margin
            try:
                faces = save_face_thumbnails(path, kind, record["tracks"], Path(request["faces_dir"]),
                                             self.thumbnail_size, margin, turn=record.get("rotation_retry", 0))
            except (DecodeError, OSError):  # a frame that decoded for scoring fails now: keep the verdict
                faces = []
        return {"verdict": record, "faces": faces}


def model_summary(scorer) -> dict:
    """What ``/v1/model`` says about a scorer; an ensemble lists its members, and its
    architecture fields join theirs."""
    members = getattr(scorer, "members", None)
    scorers = members if members is not None else [scorer]
    sizes = {m.model_config.input_size for m in scorers}
    intervals = {m.extract_config.face_detector.keyframe_interval for m in scorers}
    info = {
        "name": scorer.model_info["name"], "version": scorer.model_info["version"],
        "sha256": scorer.model_info["sha256"],
        "backbone": " + ".join(m.model_config.backbone for m in scorers),
        "input_size": sizes.pop() if len(sizes) == 1 else None,
        "lip_sync_head": any(m.model_config.sync for m in scorers),
        "mouth_motion_head": any(m.model_config.mouth_motion for m in scorers),
        "plan": " + ".join(dict.fromkeys(m.extract_config.plan for m in scorers)),
        "keyframe_interval": intervals.pop() if len(intervals) == 1 else None,
        "threshold": scorer.aggregation.threshold,
        "untrained": scorer.untrained,
    }
    if members is not None:
        info["members"] = [{**m.model_info, "weight": w, "backbone": m.model_config.backbone,
                            "input_size": m.model_config.input_size, "plan": m.extract_config.plan}
                           for m, w in zip(members, scorer.weights)]
    return info


def _without_server_path(record: dict, server_path: str, display_name: str) -> dict:
    """The verdict names the file as the client did: the server's storage path is
    replaced by the uploaded file's name, in ``path`` and in any message."""
    record["path"] = display_name
    if record.get("error"):
        record["error"] = record["error"].replace(server_path, display_name)
    record["warnings"] = [w.replace(server_path, display_name) for w in record.get("warnings", [])]
    return record
