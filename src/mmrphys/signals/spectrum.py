"""Power spectra as the references compute them, and a zoomed spectrum for sub-bin peak refinement."""

from __future__ import annotations

import numpy as np
from scipy import signal

from mmrphys.errors import InputError
from mmrphys.signals._checks import as_signal, check_fs


def next_pow2(n: int) -> int:
    """Smallest power of two >= n (1 for n = 0), as the toolbox's ``_next_power_of_2``."""
    n = int(n)
    return 1 if n <= 0 else 2 ** (n - 1).bit_length()


def psd_kind(n: int, fs: float, method: str = "periodogram", welch_after_s: float = 30.0) -> str:
    """Resolve ``method`` ("periodogram" | "welch" | "auto") to the estimator used for n samples."""
    if method == "auto":
        return "periodogram" if n <= welch_after_s * fs else "welch"
    if method not in ("periodogram", "welch"):
        raise InputError(f"spectrum: method must be 'periodogram', 'welch' or 'auto', got {method!r}")
    return method


def spectrum(x, fs: float, method: str = "periodogram", nfft: int | None = None,
             nperseg: int | None = None, welch_after_s: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """One-sided PSD ``(freqs_hz, pxx)`` with the references' settings.

    ``periodogram``: ``scipy.signal.periodogram(nfft=next_pow2(N), detrend=False)`` (boxcar window).
    ``welch``: ``scipy.signal.welch(nperseg=N//2, detrend=False)`` (Hann, 50 % overlap).
    ``auto``: periodogram when N <= welch_after_s·fs, else Welch (the MMRPhys rule).
    """
    fs = check_fs(fs)
    arr = as_signal(x, "spectrum input", min_len=2)
    kind = psd_kind(arr.size, fs, method, welch_after_s)
    if kind == "periodogram":
        n_fft = next_pow2(arr.size) if nfft is None else int(nfft)
        if n_fft < arr.size:
            raise InputError(f"spectrum: nfft={n_fft} is shorter than the signal ({arr.size})")
        return signal.periodogram(arr, fs=fs, nfft=n_fft, detrend=False)
    seg = arr.size // 2 if nperseg is None else int(nperseg)
    seg = max(2, min(seg, arr.size))
    return signal.welch(arr, fs=fs, nperseg=seg, detrend=False)


def zoom_power(x: np.ndarray, fs: float, f_lo: float, f_hi: float, m: int, kind: str = "periodogram",
               nperseg: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unscaled power of the same estimator on ``m`` frequencies in [f_lo, f_hi] (chirp-z zoom).

    Evaluates the DTFT directly, so the result is the continuous spectrum the FFT bins sample,
    free of the bin grid (the periodogram's own rectangular window, or Welch's averaged Hann segments).
    """
    freqs = np.linspace(f_lo, f_hi, m)
    if kind == "periodogram":
        segments = [x]
        window = np.ones(x.size)
    else:
        seg = max(2, min(x.size // 2 if nperseg is None else int(nperseg), x.size))
        step = seg - seg // 2
        starts = range(0, x.size - seg + 1, step)
        window = signal.get_window("hann", seg)
        segments = [x[s:s + seg] for s in starts]
    power = np.zeros(m)
    for seg_x in segments:
        spec = signal.zoom_fft(seg_x * window, [f_lo, f_hi], m=m, fs=fs, endpoint=True)
        power += np.abs(spec) ** 2
    return freqs, power / len(segments)


def peak_frequency(x, fs: float, band: tuple[float, float], method: str = "periodogram",
                   refine: bool = True, welch_after_s: float = 30.0, nfft: int | None = None) -> float:
    """Frequency (Hz) of the PSD maximum within ``band`` (inclusive edges, as the references mask it).

    ``refine=False`` returns the FFT-bin frequency exactly as the references do. ``refine=True`` zooms the
    same estimator's spectrum to 1/100 of a bin around that maximum and interpolates the top parabolically,
    so rates are not quantised to bins (6–7 bpm steps on 10 s windows). Returns NaN when no bin falls in
    the band.
    """
    arr = as_signal(x, "spectrum input", min_len=2)
    fs = check_fs(fs)
    lo, hi = float(band[0]), float(band[1])
    kind = psd_kind(arr.size, fs, method, welch_after_s)
    freqs, pxx = spectrum(arr, fs, method=kind, nfft=nfft)
    mask = (freqs >= lo) & (freqs <= hi)
    if not mask.any():
        return float("nan")
    idx = np.flatnonzero(mask)
    k = idx[int(np.argmax(pxx[idx]))]
    f_peak = float(freqs[k])
    if not refine:
        return f_peak
    df = float(freqs[1] - freqs[0])
    f_lo, f_hi = max(lo, f_peak - df), min(hi, f_peak + df)
    if f_hi <= f_lo:
        return f_peak
    zf, zp = zoom_power(arr, fs, f_lo, f_hi, 201, kind=kind)
    j = int(np.argmax(zp))
    if 0 < j < zp.size - 1:
        y0, y1, y2 = zp[j - 1], zp[j], zp[j + 1]
        denom = y0 - 2 * y1 + y2
        shift = 0.5 * (y0 - y2) / denom if denom < 0 else 0.0
        return float(zf[j] + shift * (zf[1] - zf[0]))
    return float(zf[j])
