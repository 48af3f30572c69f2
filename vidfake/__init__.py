"""vidfake: video deepfake detection with face tracking and temporal modeling."""
__version__ = "0.1.0"
