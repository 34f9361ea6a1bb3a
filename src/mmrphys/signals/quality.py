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

import numpy as np
from scipy import signal as sps

from mmrphys.signals._checks import as_signal, check_fs, is_constant
from mmrphys.signals.presets import Preset, _kind, get_preset
from mmrphys.signals.rates import preprocess
from mmrphys.signals.spectrum import next_pow2, subharmonic_bin

__all__ = ["signal_quality", "spectral_concentration"]

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
