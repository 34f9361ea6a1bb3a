"""Signal processing: filters, presets, rates, HRV, quality, respiration, metrics, unsupervised methods.

NumPy arrays in and out, explicit ``fs=``, rates in per-minute units (bpm, breaths/min).

Submodules and names are imported on first use (PEP 562): SciPy's signal package takes about a
second to import, and ``mmrphys estimate`` overlaps that with decoding the video.
"""

from __future__ import annotations

import importlib

_SUBMODULES = ("bland_altman", "filters", "hrv", "metrics", "presets", "quality", "rates", "respiration",
               "spectrum", "unsupervised")
_NAMES = {
    "bandpass": "filters", "detrend": "filters", "hrv_from_bvp": "hrv", "PRESETS": "presets",
    "Preset": "presets", "get_preset": "presets", "signal_quality": "quality", "SignalWarning": "rates",
    "heart_rate": "rates", "respiratory_rate": "rates", "rolling_rates": "rates",
    "respiration_from_bvp": "respiration", "respiration_from_rsp": "respiration",
}

__all__ = [*_SUBMODULES, *_NAMES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
