"""Heart and respiratory rate from waveforms: spectral peak (refined or bin-exact), peaks, rolling windows.

Bad input (NaN/inf, wrong dims, shorter than the filter's pad length, bad fs/band) raises
``mmrphys.errors.InputError``. A signal without variation (constant) has no rate: the functions return
``nan`` and emit a :class:`SignalWarning` saying so, never a made-up number.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import signal

from mmrphys.errors import InputError
from mmrphys.signals._checks import as_signal, check_band, check_fs, is_constant
from mmrphys.signals.filters import bandpass, detrend, filtfilt_padlen
from mmrphys.signals.presets import Preset, _kind, get_preset
from mmrphys.signals.spectrum import SUBHARMONIC_RATIO, peak_frequency, spectrum

__all__ = ["SignalWarning", "preprocess", "spectral_rate", "peak_rate", "heart_rate", "respiratory_rate",
           "rolling_rates", "spectrum", "min_samples", "detect_peaks"]


#: ``detect_peaks(refine=True)``: peaks at least this fraction of the shortest period allowed by
#: ``max_hz`` apart, with a prominence of at least ``PEAK_MIN_PROMINENCE`` of the
#: ``PEAK_PROMINENCE_PERCENTILE``-th percentile prominence (also sent to the web page).
PEAK_MIN_SPACING = 0.7
PEAK_MIN_PROMINENCE = 0.3
PEAK_PROMINENCE_PERCENTILE = 90


class SignalWarning(UserWarning):
    """A value could not be computed (e.g. a constant signal) and was set to NaN."""


def min_samples(preset: str | Preset = "mmrphys") -> int:
    """Fewest samples a rate can be computed from with this preset (filtfilt's pad length + 1)."""
    return filtfilt_padlen(get_preset(preset).order) + 1


def preprocess(x, fs: float, preset: str | Preset = "mmrphys", kind: str = "hr") -> np.ndarray:
    """The preset's post-processing: optional detrend (λ), then zero-phase Butterworth band-pass.

    For ``kind="rr"`` with a preset that z-scores respiration (``mmrphys``) the output is z-scored.
    Returns zeros of the input's length for a constant input (nothing to filter).
    """
    p = get_preset(preset)
    fs = check_fs(fs)
    lo, hi = check_band(*p.band(_kind(kind)), fs, f"{p.name} {kind} band")
    arr = as_signal(x, f"{kind} signal", min_len=filtfilt_padlen(p.order) + 1)
    if is_constant(arr):
        return np.zeros_like(arr)
    if p.detrend:
        arr = detrend(arr, p.detrend_lambda)
    out = bandpass(arr, fs, lo, hi, p.order)
    if kind == "rr" and p.rr_zscore:
        sd = out.std()
        out = (out - out.mean()) / sd if sd > 0 else out
    return out


def spectral_rate(x, fs: float, band: tuple[float, float], method: str = "periodogram",
                  refine: bool = True, welch_after_s: float = 30.0, subharmonic_ratio: float = 0.0) -> float:
    """Rate (per minute) at the PSD peak within ``band`` Hz of an already filtered signal; NaN if constant.

    ``subharmonic_ratio > 0`` enables the harmonic check of :func:`mmrphys.signals.spectrum.subharmonic_bin`.
    """
    fs = check_fs(fs)
    arr = as_signal(x, "signal", min_len=2)
    if is_constant(arr):
        return float("nan")
    return 60.0 * peak_frequency(arr, fs, band, method=method, refine=refine, welch_after_s=welch_after_s,
                                 subharmonic_ratio=subharmonic_ratio)


def _subharmonic_ratio(kind: str, refine: bool, harmonic_check: bool | None) -> float:
    # the check is for pulse waves (HR); by default it follows ``refine``: on for end-user rates,
    # off for the references' bin-exact numbers
    on = refine if harmonic_check is None else bool(harmonic_check)
    return SUBHARMONIC_RATIO if on and kind == "hr" else 0.0


def detect_peaks(x, fs: float, max_hz: float | None = None, refine: bool = True) -> np.ndarray:
    """Peak positions (in samples, float) of a filtered waveform.

    ``refine=False``: ``find_peaks`` with no constraints, as the references do. ``refine=True``: peaks must
    be at least 70 % of the shortest period allowed by ``max_hz`` apart and have a prominence of at least
    30 % of the 90th-percentile prominence (rejects dicrotic notches and noise ripple), and positions are
    interpolated parabolically to a fraction of a sample.
    """
    fs = check_fs(fs)
    arr = as_signal(x, "signal", min_len=3)
    if not refine:
        return signal.find_peaks(arr)[0].astype(float)
    distance = max(1, int(PEAK_MIN_SPACING * fs / max_hz)) if max_hz else None
    peaks, props = signal.find_peaks(arr, distance=distance, prominence=0)
    if peaks.size == 0:
        return peaks.astype(float)
    prom = props["prominences"]
    peaks = peaks[prom >= PEAK_MIN_PROMINENCE * np.percentile(prom, PEAK_PROMINENCE_PERCENTILE)]
    pos = peaks.astype(float)
    inner = (peaks > 0) & (peaks < arr.size - 1)
    p = peaks[inner]
    y0, y1, y2 = arr[p - 1], arr[p], arr[p + 1]
    denom = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(denom < 0, 0.5 * (y0 - y2) / denom, 0.0)
    pos[inner] += np.clip(shift, -0.5, 0.5)
    return pos


def peak_rate(x, fs: float, band: tuple[float, float] | None = None, refine: bool = True) -> float:
    """Rate (per minute) from the mean interval between waveform peaks; NaN with fewer than 2 peaks.

    ``refine=False`` is the references' ``60 / (mean(diff(find_peaks(x))) / fs)``; ``refine=True`` adds a
    minimum peak distance from ``band`` and sub-sample (parabolic) peak positions.
    """
    fs = check_fs(fs)
    arr = as_signal(x, "signal", min_len=3)
    if is_constant(arr):
        return float("nan")
    pos = detect_peaks(arr, fs, band[1] if band else None, refine)
    if pos.size < 2:
        return float("nan")
    return float(60.0 / (np.mean(np.diff(pos)) / fs))


def _rate(x, fs, preset, kind, refine, method, name, harmonic_check=None) -> float:
    p = get_preset(preset)
    fs = check_fs(fs)
    arr = as_signal(x, name, min_len=filtfilt_padlen(p.order) + 1)
    if is_constant(arr):
        warnings.warn(f"{name} is constant: no {kind.upper()} can be estimated, returning NaN",
                      SignalWarning, stacklevel=3)
        return float("nan")
    filtered = preprocess(arr, fs, p, kind)
    if method == "fft":
        return spectral_rate(filtered, fs, p.band(kind), method=p.psd, refine=refine,
                             welch_after_s=p.welch_after_s,
                             subharmonic_ratio=_subharmonic_ratio(kind, refine, harmonic_check))
    if method == "peak":
        return peak_rate(filtered, fs, p.band(kind), refine=refine)
    raise InputError(f"method must be 'fft' or 'peak', got {method!r}")


def heart_rate(bvp, fs: float, preset: str | Preset = "mmrphys", refine: bool = True,
               method: str = "fft", harmonic_check: bool | None = None) -> float:
    """Heart rate (bpm) of a BVP/PPG waveform.

    Steps: the preset's detrend/band-pass, then the PSD peak in the preset's HR band (``method="fft"``) or
    the mean peak interval (``method="peak"``). ``refine=True`` (default) gives a sub-bin value;
    ``refine=False`` with ``preset="toolbox"`` reproduces the rPPG-Toolbox number exactly.
    ``harmonic_check`` (fft only; default: the value of ``refine``): when the top peak may be the pulse's
    2nd harmonic (a peak at half its frequency holds >= 30 % of its power), report the fundamental.
    """
    return _rate(bvp, fs, preset, "hr", refine, method, "bvp", harmonic_check)


def respiratory_rate(rsp, fs: float, preset: str | Preset = "mmrphys", refine: bool = True,
                     method: str = "fft") -> float:
    """Respiratory rate (breaths/min) of a respiration waveform; the preset's RR band (0.13–0.5 Hz)."""
    return _rate(rsp, fs, preset, "rr", refine, method, "rsp")


def rolling_rates(x, fs: float, window_s: float = 10.0, step_s: float = 1.0, kind: str = "hr",
                  preset: str | Preset = "mmrphys", refine: bool = True,
                  method: str = "fft", harmonic_check: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sliding-window rates: ``(times_s, rates)``, times at window centres, rates per minute.

    The whole signal is filtered once with the preset (fewer edge effects than filtering each window),
    then each window of ``window_s`` seconds, every ``step_s`` seconds, gets a rate. Windows without
    variation give NaN. A signal shorter than one window gives two empty arrays. ``harmonic_check`` as
    in :func:`heart_rate` (HR only; default: the value of ``refine``).
    """
    fs = check_fs(fs)
    p = get_preset(preset)
    _kind(kind)
    if not (np.isfinite(window_s) and np.isfinite(step_s) and window_s > 0 and step_s > 0):
        raise InputError(f"rolling_rates: window_s and step_s must be positive, got {window_s}, {step_s}")
    arr = as_signal(x, f"{kind} signal", min_len=1)
    win = int(round(window_s * fs))
    step = max(1, int(round(step_s * fs)))
    if win < 3:
        raise InputError(f"rolling_rates: window of {window_s} s is {win} samples at {fs} Hz, need >= 3")
    if arr.size < win:
        return np.empty(0), np.empty(0)
    if arr.size <= filtfilt_padlen(p.order):
        raise InputError(f"{kind} signal: {arr.size} samples, need at least {filtfilt_padlen(p.order) + 1}")
    filtered = preprocess(arr, fs, p, kind)
    sub_ratio = _subharmonic_ratio(kind, refine, harmonic_check)
    starts = np.arange(0, arr.size - win + 1, step)
    rates = np.empty(starts.size)
    for i, s in enumerate(starts):
        seg = filtered[s:s + win]
        if method == "fft":
            rates[i] = spectral_rate(seg, fs, p.band(kind), method=p.psd, refine=refine,
                                     welch_after_s=p.welch_after_s, subharmonic_ratio=sub_ratio)
        elif method == "peak":
            rates[i] = peak_rate(seg, fs, p.band(kind), refine=refine)
        else:
            raise InputError(f"method must be 'fft' or 'peak', got {method!r}")
    times = (starts + win / 2.0) / fs
    return times, rates
