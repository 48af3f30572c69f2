"""vidfake: video deepfake detection with face tracking and temporal modeling."""
__version__ = "0.1.0"

__all__ = ["Scorer", "Verdict", "example_path", "score_image", "score_video", "__version__"]


def __getattr__(name: str):
    # Imported on first use so that `import vidfake` (and the CLI's --help) stays fast.
    if name in ("Scorer", "Verdict", "score_image", "score_video"):
        from vidfake import scoring

        return getattr(scoring, name)
    if name == "example_path":
        from vidfake.examples import example_path

        return example_path
    raise AttributeError(f"module 'vidfake' has no attribute {name!r}")
