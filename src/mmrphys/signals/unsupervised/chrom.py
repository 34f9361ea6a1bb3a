"""CHROM (de Haan & Jeanne, 2013) with the rPPG-Toolbox's parameters.

Windows of 1.6 s (rounded up to an even number of frames) with 50 % overlap; in each window RGB is divided
by its window mean, X = 3R − 2G and Y = 1.5R + G − 1.5B are band-passed (3rd-order Butterworth
0.7–2.5 Hz, filtfilt, per window), S = X − (σX/σY)·Y is Hann-weighted and overlap-added.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from mmrphys.errors import InputError
from mmrphys.signals._checks import check_fs
from mmrphys.signals.unsupervised._common import as_rgb, check_positive_means

WINDOW_S = 1.6
BAND_HZ = (0.7, 2.5)
ORDER = 3


def chrom(rgb, fs: float) -> np.ndarray:
    """BVP (T,) by CHROM from a (T, 3) mean-RGB trace; samples after the last full half-window are 0."""
    fs = check_fs(fs)
    x = as_rgb(rgb)
    check_positive_means(x)
    win = math.ceil(WINDOW_S * fs)
    win += win % 2
    half = win // 2
    if x.shape[0] < win:
        raise InputError(f"chrom: {x.shape[0]} frames, need at least one {WINDOW_S} s window ({win} frames)")
    nyq = fs / 2
    if BAND_HZ[1] >= nyq:
        raise InputError(f"chrom: fs = {fs:g} Hz is too low for the {BAND_HZ} Hz band")
    b, a = signal.butter(ORDER, [BAND_HZ[0] / nyq, BAND_HZ[1] / nyq], btype="bandpass")
    # the toolbox filters each 1.6 s window; below ~14 fps a window is shorter than filtfilt's default pad,
    # where the toolbox would fail, so the pad is capped to the window
    padlen = min(3 * max(len(a), len(b)), win - 1)
    hann = signal.windows.hann(win)
    n_win = (x.shape[0] - half) // half
    out = np.zeros(x.shape[0])
    for i in range(n_win):
        s = i * half
        seg = x[s:s + win]
        means = seg.mean(axis=0)
        if np.any(means <= 0):
            raise InputError(f"chrom: window at frame {s} has a zero channel mean")
        norm = seg / means
        xs = 3 * norm[:, 0] - 2 * norm[:, 1]
        ys = 1.5 * norm[:, 0] + norm[:, 1] - 1.5 * norm[:, 2]
        xf = signal.filtfilt(b, a, xs, padlen=padlen)
        yf = signal.filtfilt(b, a, ys, padlen=padlen)
        sy = np.std(yf)
        alpha = np.std(xf) / sy if sy > 0 else 0.0
        out[s:s + win] += (xf - alpha * yf) * hann
    return out
