"""Input checks shared by the signal functions: one clear InputError instead of a crash."""

from __future__ import annotations

import numpy as np

from mmrphys.errors import InputError


def as_signal(x, name: str = "signal", min_len: int = 1) -> np.ndarray:
    """Return ``x`` as a finite 1-D float64 array or raise InputError naming the problem."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: not a numeric array ({exc})") from None
    if arr.ndim == 2 and 1 in arr.shape:  # (1, N) / (N, 1) as the toolbox passes them
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D signal, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{name}: {int(bad.sum())} NaN/inf sample(s), first at index {first}; "
            "interpolate or cut the gaps first"
        )
    if arr.size < min_len:
        raise InputError(f"{name}: {arr.size} samples, need at least {min_len}")
    return arr


def check_fs(fs) -> float:
    """Return fs as a positive finite float or raise InputError."""
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise InputError(f"fs: not a number ({fs!r})") from None
    if not np.isfinite(fs) or fs <= 0:
        raise InputError(f"fs: sampling rate must be positive, got {fs}")
    return fs


def check_band(low_hz: float, high_hz: float, fs: float, name: str = "band") -> tuple[float, float]:
    """Return a valid (low, high) band below Nyquist or raise InputError."""
    low_hz, high_hz = float(low_hz), float(high_hz)
    nyq = fs / 2.0
    if not (0 < low_hz < high_hz < nyq):
        raise InputError(
            f"{name}: need 0 < low < high < fs/2 = {nyq:g} Hz, got {low_hz:g}–{high_hz:g} Hz"
        )
    return low_hz, high_hz


def is_constant(x: np.ndarray, rtol: float = 1e-12) -> bool:
    """True when x carries no variation (up to rounding relative to its magnitude)."""
    if x.size < 2:
        return True
    scale = max(float(np.max(np.abs(x))), 1e-300)
    return float(np.ptp(x)) <= rtol * scale
