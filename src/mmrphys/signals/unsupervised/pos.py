"""POS (Wang et al., 2017) with the rPPG-Toolbox's parameters.

Sliding windows of l = ceil(1.6·fs) frames, step 1: temporally normalised RGB C = RGB/mean is projected
with [[0, 1, −1], [−2, 1, 1]], h = S₁ + (σ₁/σ₂)·S₂ is zero-meaned and overlap-added; then the result is
detrended (λ = 100) and band-passed (1st-order Butterworth 0.75–3.0 Hz, filtfilt).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mmrphys.errors import InputError
from mmrphys.signals._checks import check_fs
from mmrphys.signals.filters import detrend
from mmrphys.signals.unsupervised._common import as_rgb, butter_filtfilt, check_positive_means

WINDOW_S = 1.6
BAND_HZ = (0.75, 3.0)
BAND_ORDER = 1
DETREND_LAMBDA = 100.0
PROJECTION = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])


def pos_raw(rgb, fs: float) -> np.ndarray:
    """The overlap-added POS signal before the toolbox's detrend and band-pass."""
    fs = check_fs(fs)
    x = as_rgb(rgb)
    check_positive_means(x)
    n = x.shape[0]
    win = math.ceil(WINDOW_S * fs)
    if n <= win:
        raise InputError(f"pos: {n} frames, need more than one {WINDOW_S} s window ({win} frames)")
    # windows [m, m+win) for m = 0 .. n-win-1, as the toolbox's loop over n = win .. N-1 produces
    views = sliding_window_view(x, win, axis=0)[: n - win]  # (W, 3, win)
    means = views.mean(axis=2, keepdims=True)
    if np.any(means <= 0):
        raise InputError("pos: a window has a zero channel mean")
    c = views / means
    s = np.einsum("kc,wct->wkt", PROJECTION, c)  # (W, 2, win)
    sd1 = s[:, 0].std(axis=1)
    sd2 = s[:, 1].std(axis=1)
    ratio = np.divide(sd1, sd2, out=np.zeros_like(sd1), where=sd2 > 0)
    h = s[:, 0] + ratio[:, None] * s[:, 1]
    h -= h.mean(axis=1, keepdims=True)
    out = np.zeros(n)
    for m in range(win):  # overlap-add, vectorised over windows: frame m+j gets h[m, j]
        out[m: m + h.shape[0]] += h[:, m]
    return out


def pos(rgb, fs: float) -> np.ndarray:
    """BVP (T,) by POS from a (T, 3) mean-RGB trace (toolbox post-steps included)."""
    raw = pos_raw(rgb, fs)
    return butter_filtfilt(detrend(raw, DETREND_LAMBDA), fs, *BAND_HZ, order=BAND_ORDER, name="pos")
