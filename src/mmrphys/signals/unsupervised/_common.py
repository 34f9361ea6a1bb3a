"""Shared input check and helpers for the unsupervised rPPG methods."""

from __future__ import annotations

import numpy as np
from scipy import signal

from mmrphys.errors import InputError
from mmrphys.signals._checks import check_fs


def as_rgb(rgb, min_len: int = 2, name: str = "rgb") -> np.ndarray:
    """Return a finite float64 (T, 3) trace or raise InputError."""
    try:
        arr = np.asarray(rgb, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: not a numeric array ({exc})") from None
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"{name}: expected a (T, 3) mean-RGB trace, got shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputError(f"{name}: {int(bad.sum())} frame(s) with NaN/inf, first at frame "
                         f"{int(np.flatnonzero(bad)[0])}; interpolate or cut the gaps first")
    if arr.shape[0] < min_len:
        raise InputError(f"{name}: {arr.shape[0]} frames, need at least {min_len}")
    return arr


def check_positive_means(rgb: np.ndarray, name: str = "rgb") -> None:
    """Colour-normalising methods divide by channel means; all must be positive."""
    means = rgb.mean(axis=0)
    if np.any(means <= 0):
        raise InputError(f"{name}: channel means {np.round(means, 3).tolist()} must be > 0 "
                         "(pass raw intensities, not zero-mean signals)")


def butter_filtfilt(x: np.ndarray, fs: float, low_hz: float, high_hz: float, order: int,
                    name: str) -> np.ndarray:
    """Butterworth band-pass with filtfilt, as the toolbox's methods use; clear error if too short."""
    fs = check_fs(fs)
    nyq = fs / 2
    if high_hz >= nyq:
        raise InputError(f"{name}: fs = {fs:g} Hz is too low for the {low_hz}–{high_hz} Hz band")
    b, a = signal.butter(order, [low_hz / nyq, high_hz / nyq], btype="bandpass")
    padlen = 3 * max(len(a), len(b))
    if x.shape[-1] <= padlen:
        raise InputError(f"{name}: {x.shape[-1]} frames, need more than {padlen} for the band-pass")
    return signal.filtfilt(b, a, x)
