"""The main job: video in -> heart rate, breathing rate, waveforms, HRV, quality, report out."""

from mmrphys.vitals.estimate import DEFAULT_METHOD, MIN_DURATION_S, estimate
from mmrphys.vitals.result import Result

__all__ = ["DEFAULT_METHOD", "MIN_DURATION_S", "Result", "estimate"]
