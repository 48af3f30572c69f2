"""What runs inside the service's child processes (see ``process``).

``ProbeTask`` identifies an upload from its header. ``ScoreTask`` loads the model once
(one ``Scorer`` per worker) and scores files exactly as ``vidfake score`` does, then
saves face thumbnails. Both are constructed in the child, so the server process never
imports torch and a crash here only takes down the child.
"""
from __future__ import annotations

from pathlib import Path

from vidfake.serve.media_check import inspect_media


class ProbeTask:
    """``{"path": ...}`` -> ``MediaFacts.to_dict()``."""

    def __init__(self) -> None:
        self.info: dict = {}

    def __call__(self, request: dict) -> dict:
        return inspect_media(Path(request["path"])).to_dict()


class ScoreTask:
    """``{"path", "kind", "faces_dir", "display_name"}`` -> ``{"verdict", "faces"}``."""

    def __init__(self, checkpoint: str, device: str = "cpu", thumbnail_size: int = 112, threads: int | None = None):
        import torch

        from vidfake.scoring import Scorer

        if threads:
            torch.set_num_threads(threads)
        self.scorer = Scorer(checkpoint, device=device)
        self.thumbnail_size = thumbnail_size
        scorer = self.scorer
        self.info = {
            **scorer.model_info,
            "checkpoint": Path(checkpoint).name,
            "device": device,
            "backbone": scorer.model_config.backbone,
            "input_size": scorer.model_config.input_size,
            "lip_sync_head": bool(scorer.model_config.sync),
            "plan": scorer.extract_config.plan,
            "threshold": scorer.aggregation.threshold,
            "untrained": scorer.untrained,
        }

    def __call__(self, request: dict) -> dict:
        from vidfake.extract.video import DecodeError
        from vidfake.serve.thumbnails import save_face_thumbnails

        path, name = Path(request["path"]), request["display_name"]
        kind = request["kind"]
        verdict = self.scorer.score_image(path) if kind == "image" else self.scorer.score_video(path)
        record = _without_server_path(verdict.to_dict(), str(path), name)
        faces = []
        if verdict.status == "ok":
            margin = self.scorer.extract_config.crop.margin
            try:
                faces = save_face_thumbnails(path, kind, record["tracks"], Path(request["faces_dir"]),
                                             self.thumbnail_size, margin, turn=record.get("rotation_retry", 0))
            except (DecodeError, OSError):  # a frame that decoded for scoring fails now: keep the verdict
                faces = []
        return {"verdict": record, "faces": faces}


def _without_server_path(record: dict, server_path: str, display_name: str) -> dict:
    """The verdict names the file as the client did: the server's storage path is
    replaced by the uploaded file's name, in ``path`` and in any message."""
    record["path"] = display_name
    if record.get("error"):
        record["error"] = record["error"].replace(server_path, display_name)
    record["warnings"] = [w.replace(server_path, display_name) for w in record.get("warnings", [])]
    return record
