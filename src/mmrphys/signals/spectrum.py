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


#: Default share of the top peak's power a peak at half its frequency needs to be taken as the
#: fundamental (see :func:`subharmonic_bin`).
SUBHARMONIC_RATIO = 0.3
#: ... and it must also stand this many times above the median in-band power (the noise floor).
SUBHARMONIC_FLOOR = 10.0


def subharmonic_bin(freqs: np.ndarray, pxx: np.ndarray, idx: np.ndarray, k: int,
                    ratio: float = SUBHARMONIC_RATIO, floor: float = SUBHARMONIC_FLOOR) -> int:
    """The bin to take as the pulse's fundamental when the top bin ``k`` may be its 2nd harmonic.

    A pulse wave is periodic, so its spectrum has power at the heart rate f₀ and its multiples; a
    model (or a waveform with a strong dicrotic notch) can put more power at 2·f₀ than at f₀, and the
    plain maximum then reports twice the rate. Rule: among the in-band bins ``idx`` within one bin of
    f_k/2, take the strongest; if it is a local maximum of the spectrum, holds at least ``ratio`` of
    the top bin's power and at least ``floor`` times the median in-band power, it is the fundamental.
    A true fast pulse has no power at f/2 (nothing in a pulse's spectrum lies below its fundamental),
    so it is kept. Returns ``k`` when the rule does not apply.
    """
    if ratio <= 0 or idx.size < 3:
        return k
    df = float(freqs[1] - freqs[0])
    half = freqs[k] / 2.0
    cand = idx[np.abs(freqs[idx] - half) <= df * 1.000001]
    if cand.size == 0:
        return k
    j = int(cand[np.argmax(pxx[cand])])
    lo_n, hi_n = pxx[max(j - 1, 0)], pxx[min(j + 1, pxx.size - 1)]
    if pxx[j] < lo_n or pxx[j] < hi_n:
        return k  # the slope of something else, not a peak of its own
    if pxx[j] < ratio * pxx[k] or pxx[j] < floor * float(np.median(pxx[idx])):
        return k
    return j


def peak_frequency(x, fs: float, band: tuple[float, float], method: str = "periodogram",
                   refine: bool = True, welch_after_s: float = 30.0, nfft: int | None = None,
                   subharmonic_ratio: float = 0.0) -> float:
    """Frequency (Hz) of the PSD maximum within ``band`` (inclusive edges, as the references mask it).

    ``refine=False`` returns the FFT-bin frequency exactly as the references do. ``refine=True`` zooms the
    same estimator's spectrum to 1/100 of a bin around that maximum and interpolates the top parabolically,
    so rates are not quantised to bins (6–7 bpm steps on 10 s windows). ``subharmonic_ratio > 0`` turns
    on the harmonic check (:func:`subharmonic_bin`): a peak at half the top frequency holding at least
    that share of its power is taken instead (0, the default, is the references' plain maximum).
    Returns NaN when no bin falls in the band.
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
    if subharmonic_ratio > 0:
        k = subharmonic_bin(freqs, pxx, idx, k, ratio=subharmonic_ratio)
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
