"""The two submission formats the field uses, written in one place."""
from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path


def write_dfdc_submission(path: Path, rows: Iterable[tuple[str, float]]) -> Path:
    """DFDC's ``submission.csv``: ``filename,label`` with the probability of fake."""
    return _write(path, ("filename", "label"), rows)


def write_image_predictions(path: Path, rows: Iterable[tuple[str, float]]) -> Path:
    """``prediction.txt`` of the multi-face forgery detection challenge: ``img_name,y_pred``."""
    return _write(path, ("img_name", "y_pred"), rows)


def _write(path: Path, header: tuple[str, str], rows: Iterable[tuple[str, float]]) -> Path:
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows((name, f"{score:.6f}") for name, score in rows)
    return Path(path)
