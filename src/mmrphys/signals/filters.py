"""Detrending and zero-phase band-pass filtering.

``detrend`` is the smoothness-priors detrend of Tarvainen et al. (2002) that the rPPG-Toolbox uses,
``x - (I + lam² DᵀD)⁻¹ x`` with D the second-difference matrix. The toolbox forms the dense N×N inverse
(O(N³) time, O(N²) memory); here the same linear system is solved as a symmetric positive-definite
pentadiagonal (banded) system in O(N), giving the same numbers up to rounding.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import linalg, signal, sparse

from mmrphys.errors import InputError
from mmrphys.signals._checks import as_signal, check_band, check_fs


def _second_difference_normal_bands(n: int, lam: float) -> np.ndarray:
    """Upper banded form (3, n) of ``I + lam² DᵀD`` for scipy.linalg.solveh_banded."""
    d = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n - 2, n), format="csr")
    dtd = (d.T @ d).tocsr()
    lam2 = float(lam) ** 2
    ab = np.zeros((3, n))
    ab[2] = 1.0 + lam2 * dtd.diagonal(0)
    ab[1, 1:] = lam2 * dtd.diagonal(1)
    ab[0, 2:] = lam2 * dtd.diagonal(2)
    return ab


def detrend(x, lam: float = 100.0) -> np.ndarray:
    """Smoothness-priors detrend (λ = 100 as in the rPPG-Toolbox); O(N) banded solve.

    ``x`` is 1-D (N,) or 2-D (N, C) with time along axis 0. Returns an array of the same shape.
    The cut-off is about ``fs / (2π·sqrt(lam))`` Hz (≈0.48 Hz at 30 fps for λ = 100).
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"detrend input: not a numeric array ({exc})") from None
    if arr.ndim == 2:
        cols = [as_signal(arr[:, c], f"detrend input column {c}", min_len=3) for c in range(arr.shape[1])]
        arr = np.stack(cols, axis=1) if cols else arr
    else:
        arr = as_signal(arr, "detrend input", min_len=3)
    if not np.isfinite(lam) or lam < 0:
        raise InputError(f"detrend: lam must be a finite number >= 0, got {lam}")
    if arr.shape[0] < 3:
        raise InputError(f"detrend input: {arr.shape[0]} samples, need at least 3")
    ab = _second_difference_normal_bands(arr.shape[0], lam)
    trend = linalg.solveh_banded(ab, arr, lower=False, check_finite=False)
    return arr - trend


@functools.lru_cache(maxsize=64)
def _butter(order: int, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    # SciPy's design takes ~1 ms (more on a busy machine) and evaluations repeat the same few bands
    b, a = signal.butter(order, [low, high], btype="bandpass")
    b.flags.writeable = a.flags.writeable = False
    return b, a


def butter_coefficients(fs: float, low_hz: float, high_hz: float, order: int = 2):
    """Butterworth band-pass coefficients (b, a), exactly as ``butter(order, [lo/fs*2, hi/fs*2])``
    (read-only arrays, cached per band)."""
    fs = check_fs(fs)
    low_hz, high_hz = check_band(low_hz, high_hz, fs, "bandpass")
    if int(order) != order or order < 1:
        raise InputError(f"bandpass: order must be a positive integer, got {order}")
    return _butter(int(order), low_hz / fs * 2, high_hz / fs * 2)


def filtfilt_padlen(order: int) -> int:
    """scipy.signal.filtfilt's default pad length for a band-pass of this order."""
    return 3 * (2 * int(order) + 1)


def bandpass(x, fs: float, low_hz: float, high_hz: float, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth band-pass (``filtfilt``) of a 1-D signal.

    Raises InputError for NaNs, bad bands, or a signal not longer than filtfilt's pad length
    (``3·(2·order+1)`` samples), the point at which scipy itself would fail.
    """
    b, a = butter_coefficients(fs, low_hz, high_hz, order)
    padlen = filtfilt_padlen(order)
    arr = as_signal(x, "bandpass input", min_len=padlen + 1)
    return signal.filtfilt(b, a, arr)


def notch(x, fs: float, freqs_hz, width_hz: float = 0.05) -> np.ndarray:
    """``x`` with a zero-phase notch (``iirnotch``, -3 dB width ``width_hz``) at each of ``freqs_hz``.

    Frequencies at or above Nyquist are skipped. Used to take a compression artefact of known
    frequency (:func:`keyframe_frequencies_hz`) out of a pulse before its rate is read.
    """
    fs = check_fs(fs)
    y = as_signal(x, "signal", min_len=2).astype(float)
    for f in freqs_hz:
        if not 0.0 < f < fs / 2:
            continue
        b, a = signal.iirnotch(f, Q=f / width_hz, fs=fs)
        # pad by the notch's ringing time (~1 / width) so its start-up transient stays in the padding
        y = signal.filtfilt(b, a, y, padlen=min(y.size - 1, int(np.ceil(fs / width_hz))))
    return y


def keyframe_frequencies_hz(keyframe_times_s, band_hz: tuple[float, float], harmonics: int = 3,
                            max_spread: float = 0.05) -> list[float]:
    """Frequencies (Hz) inside ``band_hz`` where periodic key frames put an artefact into face colour.

    A compressed video's key (intra) frames are coded afresh, so the skin colour steps at each one.
    When they recur at a fixed interval (a fixed GOP: MPEG-4 Part 2 at 12 frames, 20 fps -> 1.67 Hz,
    exactly a heart rate of 100 bpm) the steps form a periodic signal at 1/interval and its
    harmonics, which a pulse extractor passes on. Returns ``m / interval`` for ``m = 1..harmonics``
    inside the band, or nothing when there are fewer than 4 key frames or their intervals spread by
    more than ``max_spread`` of the median (key frames placed at scene cuts are not periodic).
    """
    t = np.sort(np.asarray(keyframe_times_s, dtype=float).ravel())
    if t.size < 4:
        return []
    d = np.diff(t)
    p = float(np.median(d))
    if p <= 0 or np.median(np.abs(d - p)) > max_spread * p:
        return []
    return [m / p for m in range(1, harmonics + 1) if band_hz[0] <= m / p <= band_hz[1]]
