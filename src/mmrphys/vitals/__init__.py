"""The main job: video in -> heart rate, breathing rate, waveforms, HRV, quality, report out."""

from mmrphys.vitals.estimate import DEFAULT_METHOD, MIN_DURATION_S, estimate
from mmrphys.vitals.pipeline import FaceReading, Pipeline, Reading
from mmrphys.vitals.result import Result
from mmrphys.vitals.stream import Stream

__all__ = ["DEFAULT_METHOD", "MIN_DURATION_S", "FaceReading", "Pipeline", "Reading", "Result", "Stream",
           "estimate"]
