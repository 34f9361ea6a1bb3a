"""Face detection, tracking and the training crop (square box enlarged ×1.5, INTER_AREA resize)."""

from mmrphys.faces.crop import crop_resize, square_box
from mmrphys.faces.detect import Box, FaceDetector
from mmrphys.faces.track import FaceTracker

__all__ = ["Box", "FaceDetector", "FaceTracker", "square_box", "crop_resize"]
