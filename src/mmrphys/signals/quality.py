"""A signal-quality index that needs no ground truth: spectral peak prominence on a 0–1 scale.

Definition (``kind="hr"``): after the preset's band-pass, take the periodogram (nfft = next pow 2) within
the rate band, find its peak f_p, and let r be the fraction of in-band power within ±0.1 Hz of f_p and of
2·f_p (the pulse's first harmonic, when in band); f_p is the fundamental chosen by the harmonic
check of ``spectrum.subharmonic_bin`` (a top peak at 2·f₀ is scored around f₀). r₀ is the same
fraction for a flat (white) spectrum, i.e. the share of in-band bins inside those windows. The index
is ``clip((r − r₀)/(1 − r₀), 0, 1)``:

* 1 — all in-band power sits at one rate and its harmonic (a clean periodic pulse);
* 0 — power no more concentrated than white noise (or a constant signal, defined as 0).

Measured on synthetic 10 s, 30 fps pulses (tests/signals/test_quality.py): a clean pulse scores ≥ 0.85,
white noise ≤ 0.25, and the index rises monotonically with SNR on average. For ``kind="rr"`` the window is
±0.05 Hz (±3 breaths/min) around the peak only. Windows of ≥ 10 s (HR) and ≥ 30 s (RR) are advised:
shorter windows widen the main lobe beyond the ±0.1 Hz window and lower the index of clean signals.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal as sps

from mmrphys.signals._checks import as_signal, check_fs, is_constant
from mmrphys.signals.presets import Preset, _kind, get_preset
from mmrphys.signals.rates import preprocess
from mmrphys.signals.spectrum import next_pow2, subharmonic_bin

__all__ = ["CONFIDENCE_THRESHOLD", "confidence", "confidence_warning", "rate_agreement", "signal_quality",
           "spectral_concentration"]

_HALF_WIDTH_HZ = {"hr": 0.1, "rr": 0.05}


def spectral_concentration(filtered, fs: float, band: tuple[float, float], half_width_hz: float,
                           harmonic: bool = True) -> float:
    """Quality index of an already filtered signal (see the module doc); 0 for a constant signal."""
    fs = check_fs(fs)
    x = as_signal(filtered, "quality input", min_len=2)
    if is_constant(x):
        return 0.0
    f, pxx = sps.periodogram(x, fs=fs, nfft=next_pow2(x.size), detrend=False)
    in_band = (f >= band[0]) & (f <= band[1])
    if in_band.sum() < 2 or pxx[in_band].sum() <= 0:
        return 0.0
    fb, pb = f[in_band], pxx[in_band]
    k = int(np.argmax(pb))
    if harmonic:  # a peak that is the pulse's 2nd harmonic is scored around its fundamental
        k = subharmonic_bin(fb, pb, np.arange(fb.size), k)
    f_peak = fb[k]
    near = np.abs(fb - f_peak) <= half_width_hz
    if harmonic:
        near |= np.abs(fb - 2 * f_peak) <= half_width_hz
    r = pb[near].sum() / pb.sum()
    r0 = near.mean()
    if r0 >= 1.0:
        return 0.0
    return float(np.clip((r - r0) / (1.0 - r0), 0.0, 1.0))


def signal_quality(x, fs: float, kind: str = "hr", preset: str | Preset = "mmrphys") -> float:
    """Quality index in [0, 1] of a BVP (``kind="hr"``) or respiration (``"rr"``) waveform; no ground truth.

    Raises InputError for NaNs, wrong dims or signals shorter than the filter's pad length.
    """
    p = get_preset(preset)
    kind = _kind(kind)
    filtered = preprocess(x, fs, p, kind)
    return spectral_concentration(filtered, fs, p.band(kind), _HALF_WIDTH_HZ[kind], harmonic=kind == "hr")


# ----------------------------------------------------------------------------- confidence of a vital
#: A vital whose confidence is below this carries a warning ("heart rate unreliable: ..."). Calibrated
#: on synthetic clips with added noise and on the 8 UBFC-rPPG subjects with POS and GREEN
#: (docs/main_job.md, "Trust"): every HR off by more than 5 bpm there scored below it.
CONFIDENCE_THRESHOLD = 0.3
#: Rolling windows (s) and the agreement a window's rate must have with the whole segment's rate.
_AGREEMENT = {"hr": (10.0, 2.0, 6.0), "rr": (20.0, 2.0, 3.0)}  # window_s, step_s, within (per minute)
_VITAL = {"hr": "heart rate", "rr": "respiratory rate"}


def rate_agreement(x, fs: float, rate: float, kind: str = "hr", preset: str | Preset = "mmrphys") -> float:
    """Fraction of rolling windows (HR 10 s, RR 20 s, every 2 s) whose rate is within 6 bpm (HR) or
    3 breaths/min (RR) of ``rate``; 1.0 where the signal is shorter than one window (nothing to
    compare), 0.0 for a NaN ``rate``."""
    from mmrphys.signals.rates import rolling_rates

    kind = _kind(kind)
    if not np.isfinite(rate):
        return 0.0
    window_s, step_s, within = _AGREEMENT[kind]
    _, rates = rolling_rates(x, fs, window_s, step_s, kind=kind, preset=preset)
    if rates.size == 0:
        return 1.0
    return float(np.mean(np.abs(rates - rate) <= within))  # NaN windows count as disagreeing


def confidence(x, fs: float, rate: float, kind: str = "hr", preset: str | Preset = "mmrphys") -> float:
    """Confidence (0-1) that ``rate`` (bpm or breaths/min, measured on ``x``) is right, from ``x`` alone.

    The geometric mean of two ways a rate goes wrong: the spectrum has no dominant peak
    (:func:`signal_quality`: noise, or two rival peaks) and the rate does not hold over the segment
    (:func:`rate_agreement`: the rolling rates wander away from it). A clean pulse scores ~0.9-1;
    white noise or a flat signal ~0-0.3. Below :data:`CONFIDENCE_THRESHOLD` the main job warns.
    """
    q = signal_quality(x, fs, kind=kind, preset=preset)
    return float(math.sqrt(q * rate_agreement(x, fs, rate, kind=kind, preset=preset)))


def confidence_warning(value: float, kind: str = "hr") -> str | None:
    """``"heart rate unreliable: confidence 0.12 < 0.30"`` below the threshold, else None."""
    if value >= CONFIDENCE_THRESHOLD:
        return None
    return f"{_VITAL[_kind(kind)]} unreliable: confidence {value:.2f} < {CONFIDENCE_THRESHOLD:.2f}"
