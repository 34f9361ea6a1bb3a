"""ICA (Poh et al., 2010/2011) with JADE (Cardoso & Souloumiac, 1993) and the rPPG-Toolbox's parameters.

Each channel is detrended (λ = 100) and z-scored, JADE separates 3 sources, the source whose normalised
power spectrum (DC excluded) has the highest peak is kept, and it is band-passed (3rd-order Butterworth
0.7–2.5 Hz, filtfilt).
"""

from __future__ import annotations

import numpy as np

from mmrphys.errors import InputError
from mmrphys.signals._checks import check_fs
from mmrphys.signals.filters import detrend
from mmrphys.signals.unsupervised._common import as_rgb, butter_filtfilt

BAND_HZ = (0.7, 2.5)
ORDER = 3


def jade(x: np.ndarray, n_sources: int | None = None, max_sweeps: int = 100) -> np.ndarray:
    """JADE for real signals: returns the separating matrix B (n_sources, m) so that sources = B @ x_c.

    ``x`` is (m, T); x_c is x with row means removed. Steps: PCA whitening, the n(n+1)/2 fourth-order
    cumulant matrices of the whitened data, then their joint diagonalisation by Givens rotations.
    """
    x = np.asarray(x, dtype=np.float64)
    m, t = x.shape
    n = m if n_sources is None else int(n_sources)
    xc = x - x.mean(axis=1, keepdims=True)
    evals, evecs = np.linalg.eigh(xc @ xc.T / t)
    order = np.argsort(evals)[::-1][:n]
    if np.any(evals[order] <= 1e-12 * max(evals.max(), 1e-300)):
        raise InputError("ica: the RGB channels are linearly dependent (or constant); cannot separate")
    whiten = (evecs[:, order] / np.sqrt(evals[order])).T  # (n, m)
    z = whiten @ xc  # (n, T), identity covariance
    eye = np.eye(n)
    mats = []
    for i in range(n):
        zi = z[i]
        mats.append((z * zi**2) @ z.T / t - eye - 2 * np.outer(eye[i], eye[i]))
        for j in range(i):
            q = (z * (zi * z[j])) @ z.T / t - np.outer(eye[i], eye[j]) - np.outer(eye[j], eye[i])
            mats.append(np.sqrt(2.0) * q)
    cm = np.concatenate(mats, axis=1)  # (n, n * n_mats)
    v = np.eye(n)
    threshold = 1e-6 / np.sqrt(t)
    for _ in range(max_sweeps):
        rotated = False
        for p in range(n - 1):
            for q in range(p + 1, n):
                ip, iq = slice(p, None, n), slice(q, None, n)
                g = np.vstack([cm[p, ip] - cm[q, iq], cm[p, iq] + cm[q, ip]])
                gg = g @ g.T
                ton, toff = gg[0, 0] - gg[1, 1], gg[0, 1] + gg[1, 0]
                theta = 0.5 * np.arctan2(toff, ton + np.hypot(ton, toff))
                if abs(theta) > threshold:
                    rotated = True
                    c, s = np.cos(theta), np.sin(theta)
                    rot = np.array([[c, -s], [s, c]])
                    v[:, [p, q]] = v[:, [p, q]] @ rot
                    cm[[p, q], :] = rot.T @ cm[[p, q], :]
                    col_p, col_q = cm[:, ip].copy(), cm[:, iq].copy()
                    cm[:, ip] = c * col_p + s * col_q
                    cm[:, iq] = -s * col_p + c * col_q
        if not rotated:
            break
    return v.T @ whiten


def _normalised_peak(s: np.ndarray) -> float:
    spec = np.abs(np.fft.fft(s)[1:]) ** 2  # DC excluded
    half = spec[: spec.size // 2]
    total = half.sum()
    return float(half.max() / total) if total > 0 else 0.0


def ica(rgb, fs: float) -> np.ndarray:
    """BVP (T,) by ICA/JADE from a (T, 3) mean-RGB trace."""
    fs = check_fs(fs)
    x = as_rgb(rgb, min_len=3)
    x = detrend(x, 100.0)
    sd = x.std(axis=0)
    if np.any(sd <= 0):
        raise InputError("ica: a detrended RGB channel is constant; cannot separate sources")
    x = (x - x.mean(axis=0)) / sd
    sources = jade(x.T) @ (x - x.mean(axis=0)).T  # (3, T)
    best = int(np.argmax([_normalised_peak(s) for s in sources]))
    return butter_filtfilt(sources[best], fs, *BAND_HZ, order=ORDER, name="ica")
