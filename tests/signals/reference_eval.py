"""Independent float64 re-derivation of the references' per-window evaluation (test helper).

Written from a reading of the rPPG-Toolbox's and the MMRPhys authors' ``evaluation/post_process.py``
(``calculate_metric_per_video``; ECOSYSTEM.md §1.8, MMRPHYS_REFERENCE.md §4.2), deliberately by other
means than ``mmrphys.signals`` so that a shared mistake is unlikely:

- detrend: the smoothness-priors trend solved with a sparse LU factorisation (SuperLU via
  ``scipy.sparse.linalg.spsolve``), where ours uses a banded Cholesky and the toolbox a dense inverse;
- periodogram and Welch PSDs from their definitions (NumPy FFT, explicit windows and one-sided
  scaling), not ``scipy.signal.periodogram`` / ``welch``;
- MACC from direct sums over the circularly shifted label (``np.correlate``), not an FFT;
- only the Butterworth design and ``filtfilt`` are SciPy's, because the references call exactly those.

Frequencies are formed as NumPy/SciPy's ``rfftfreq`` forms them, ``k * (1 / (nfft * (1 / fs)))``: the
references compare those values with the band edges and harmonic windows, and a bin that sits exactly
on an edge must fall on the same side as in the references.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.signal
from scipy import sparse
from scipy.sparse.linalg import spsolve

LAMBDA = 100.0
HARMONIC_HALF_WIDTH_HZ = 6 / 60  # ±6 per minute around f0 and 2·f0


def detrend(x: np.ndarray, lam: float = LAMBDA) -> np.ndarray:
    """x − z with (I + λ² DᵀD) z = x, D the (N−2)×N second-difference matrix, by sparse LU."""
    n = x.size
    d = sparse.diags([np.ones(n - 2), -2 * np.ones(n - 2), np.ones(n - 2)], [0, 1, 2], shape=(n - 2, n))
    a = (sparse.identity(n) + lam**2 * (d.T @ d)).tocsc()
    return x - spsolve(a, x)


def next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


def freqs(nfft: int, fs: float) -> np.ndarray:
    return np.arange(nfft // 2 + 1) * (1.0 / (nfft * (1.0 / fs)))


def _one_sided_density(segments: list[np.ndarray], window: np.ndarray, nfft: int, fs: float) -> np.ndarray:
    """Mean over segments of |DFT(w·s)|² / (fs·Σw²), bins 1…(nfft−1)//2 doubled (the negative side)."""
    power = np.zeros(nfft // 2 + 1)
    for seg in segments:
        power += np.abs(np.fft.rfft(seg * window, n=nfft)) ** 2
    power /= len(segments) * fs * np.sum(window**2)
    last = nfft // 2 if nfft % 2 == 0 else nfft // 2 + 1  # an even nfft has an unpaired Nyquist bin
    power[1:last] *= 2
    return power


def periodogram(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxcar periodogram zero-padded to the next power of two (the references' rate and SNR PSD)."""
    nfft = next_pow2(x.size)
    return freqs(nfft, fs), _one_sided_density([x], np.ones(x.size), nfft, fs)


def welch(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch with nperseg = N//2, 50 % overlap (noverlap = nperseg//2), periodic Hann, no detrend."""
    seg = x.size // 2
    step = seg - seg // 2
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(seg) / seg)
    segments = [x[s:s + seg] for s in range(0, x.size - seg + 1, step)]
    return freqs(seg, fs), _one_sided_density(segments, window, seg, fs)


def peak_rate(f: np.ndarray, p: np.ndarray, lo: float, hi: float) -> float:
    """60 × the frequency of the first maximum of p among bins with lo <= f <= hi."""
    best = None
    for k in range(f.size):
        if lo <= f[k] <= hi and (best is None or p[k] > p[best]):
            best = k
    return float(f[best] * 60)


def snr_masks(f: np.ndarray, rate_bpm: float, lo: float, hi: float):
    f1, f2 = rate_bpm / 60, 2 * rate_bpm / 60
    h1 = (f >= f1 - HARMONIC_HALF_WIDTH_HZ) & (f <= f1 + HARMONIC_HALF_WIDTH_HZ)
    h2 = (f >= f2 - HARMONIC_HALF_WIDTH_HZ) & (f <= f2 + HARMONIC_HALF_WIDTH_HZ)
    rest = (f >= lo) & (f <= hi) & ~h1 & ~h2
    return h1, h2, rest


def snr_from_psd(f, p, rate_bpm, lo, hi, squared: bool) -> float:
    """10·log10(Σ harmonics / Σ remainder) of p (or of p², the MMRPhys variant); 0 if the remainder is 0."""
    h1, h2, rest = snr_masks(f, rate_bpm, lo, hi)
    q = p**2 if squared else p
    num, den = q[h1].sum() + q[h2].sum(), q[rest].sum()
    if den == 0:
        return 0.0
    with np.errstate(divide="ignore"):
        return float(10 * np.log10(num / den))


def macc(a: np.ndarray, b: np.ndarray) -> float:
    """max over lags 0…L−2 of |Pearson r(a, roll(b, lag))|, by direct summation over the shifted label.

    ``np.roll(b, lag)[i] == b[(i - lag) % L] == bb[i - lag + L]`` with ``bb = [b, b]``, so the sliding
    dot products of ``a`` along ``bb`` (``np.correlate``, a direct O(L²) sum, no FFT) give every lag:
    lag ↔ offset L − lag. A circular shift keeps the mean and the norm, so both are taken once.
    """
    n = min(a.size, b.size)
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    sliding = np.correlate(np.concatenate([b, b]), a, mode="valid")  # sliding[k] = Σ_i a_i·bb[i + k]
    per_lag = sliding[n - np.arange(n - 1)]
    return float(np.max(np.abs(per_lag)) / np.sqrt(float(a @ a) * float(b @ b)))


@functools.lru_cache(maxsize=64)
def _butter(order, lo, hi, fs):
    return scipy.signal.butter(order, [lo / fs * 2, hi / fs * 2], btype="bandpass")


def _bandpass(x, fs, lo, hi, order):
    return scipy.signal.filtfilt(*_butter(order, lo, hi, fs), x)


def toolbox_window(pred, gt, fs, band=(0.6, 3.3), diff=False, detrend_fn=detrend) -> dict:
    """rPPG-Toolbox ``calculate_metric_per_video`` (FFT): detrend λ=100 (after cumsum for diff outputs),
    1st-order Butterworth filtfilt, periodogram peak of both, SNR of the prediction, MACC."""
    lo, hi = band
    if diff:
        pred, gt = np.cumsum(pred), np.cumsum(gt)
    p = _bandpass(detrend_fn(np.asarray(pred, float)), fs, lo, hi, 1)
    g = _bandpass(detrend_fn(np.asarray(gt, float)), fs, lo, hi, 1)
    gt_rate = peak_rate(*periodogram(g, fs), lo, hi)
    return {"gt_rate": gt_rate, "pred_rate": peak_rate(*periodogram(p, fs), lo, hi),
            "snr": snr_from_psd(*periodogram(p, fs), gt_rate, lo, hi, squared=False),
            "macc": macc(p, g), "pred_filtered": p, "gt_filtered": g}


def mmrphys_psd(x, fs, welch_above: float):
    return welch(x, fs) if x.size > welch_above else periodogram(x, fs)


def mmrphys_window(pred, gt, fs, band=(0.6, 3.3), diff=False) -> dict:
    """MMRPhys ``calculate_metric_per_video`` (FFT): cumsum for diff outputs, no detrend, 2nd-order
    Butterworth filtfilt; rate from the periodogram up to 30·fs samples, else Welch; SNR of the z-scored
    prediction (periodogram below 256 samples, else Welch) with squared PSD values; MACC."""
    lo, hi = band
    if diff:
        pred, gt = np.cumsum(pred), np.cumsum(gt)
    p = _bandpass(np.asarray(pred, float), fs, lo, hi, 2)
    g = _bandpass(np.asarray(gt, float), fs, lo, hi, 2)
    gt_rate = peak_rate(*mmrphys_psd(g, fs, 30 * fs), lo, hi)
    z = (p - p.mean()) / p.std()
    return {"gt_rate": gt_rate, "pred_rate": peak_rate(*mmrphys_psd(p, fs, 30 * fs), lo, hi),
            "snr": snr_from_psd(*mmrphys_psd(z, fs, 255), gt_rate, lo, hi, squared=True),
            "macc": macc(p, g), "pred_filtered": p, "gt_filtered": g}
