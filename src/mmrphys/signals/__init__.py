"""Signal processing: filters, presets, rates, HRV, quality, respiration, metrics, unsupervised methods.

NumPy arrays in and out, explicit ``fs=``, rates in per-minute units (bpm, breaths/min).
"""

from __future__ import annotations

from mmrphys.signals import (
    bland_altman,
    filters,
    hrv,
    metrics,
    presets,
    quality,
    rates,
    respiration,
    spectrum,
    unsupervised,
)
from mmrphys.signals.filters import bandpass, detrend
from mmrphys.signals.hrv import hrv_from_bvp
from mmrphys.signals.presets import PRESETS, Preset, get_preset
from mmrphys.signals.quality import signal_quality
from mmrphys.signals.rates import SignalWarning, heart_rate, respiratory_rate, rolling_rates
from mmrphys.signals.respiration import respiration_from_bvp, respiration_from_rsp

__all__ = [
    "bland_altman", "filters", "hrv", "metrics", "presets", "quality", "rates", "respiration", "spectrum",
    "unsupervised", "bandpass", "detrend", "hrv_from_bvp", "PRESETS", "Preset", "get_preset",
    "signal_quality", "SignalWarning", "heart_rate", "respiratory_rate", "rolling_rates",
    "respiration_from_bvp", "respiration_from_rsp",
]
