"""An example clip that ships inside the package, so ``vidfake score --example`` (the
README's first command) works on any machine, with nothing downloaded and no data folder
beside the project.

The clip is a real talking face with speech (GRID corpus, CC BY 4.0), so it runs every
part of scoring: face detection and tracking, the frame model, the temporal model and the
audio-visual lip-sync head. Its licence and attribution are in ``ATTRIBUTION.md`` next to
it; ``python -m vidfake.examples.package`` is how it was made.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["EXAMPLE_FILE", "ExampleMissingError", "example_path"]

EXAMPLE_FILE = "grid_s1_bbaf3s.mp4"


class ExampleMissingError(FileNotFoundError):
    """The packaged example clip is not installed (a damaged or partial install)."""


def example_path() -> Path:
    """Path of the example clip that ships with vidfake (a 3 s real talking face with
    audio), e.g. ``vidfake.score_video(vidfake.example_path())``."""
    path = Path(str(resources.files(__name__))) / EXAMPLE_FILE
    if not path.is_file():
        raise ExampleMissingError(
            f"the example clip {path} is missing from this install; reinstall vidfake "
            "(pip install --force-reinstall vidfake, or pip install -e . from a clone)"
        )
    return path
