"""Respiration waveforms: from an RSP output, or derived from the BVP when no RSP output exists.

Breathing modulates the pulse three ways (Charlton et al., 2016): beat amplitude (AM), beat rate, i.e.
inter-beat interval (FM), and the pulse baseline (BM). Each is measured per beat, interpolated back onto
the sample grid, band-passed to the preset's RR band and z-scored. ``method="fused"`` combines the three,
sign-aligned to the most periodic one and weighted by their quality index.
"""

from __future__ import annotations

import numpy as np
from scipy import interpolate

from mmrphys.errors import InputError
from mmrphys.signals._checks import as_signal, check_fs, is_constant
from mmrphys.signals.filters import bandpass, filtfilt_padlen
from mmrphys.signals.presets import Preset, get_preset
from mmrphys.signals.quality import spectral_concentration
from mmrphys.signals.rates import detect_peaks, preprocess

__all__ = ["respiration_from_rsp", "respiration_from_bvp", "MODULATIONS"]

MODULATIONS = ("am", "fm", "bm")
#: Fewest beats (peaks paired with a trough before them) and troughs a BVP needs for respiration.
MIN_BEATS = 4
MIN_TROUGHS = 2
#: Half-width (Hz) of the spectral window scoring each modulation for the fusion.
FUSION_HALF_WIDTH_HZ = 0.05


def respiration_from_rsp(rsp, fs: float, preset: str | Preset = "mmrphys") -> np.ndarray:
    """A cleaned respiration waveform: the preset's RR post-processing (band-pass 0.13–0.5 Hz)."""
    return preprocess(rsp, fs, preset, "rr")


def _to_grid(t_beats: np.ndarray, values: np.ndarray, n: int, fs: float) -> np.ndarray:
    grid = np.arange(n) / fs
    kind = "cubic" if values.size >= 4 else "linear"
    f = interpolate.interp1d(t_beats, values, kind=kind, bounds_error=False,
                             fill_value=(values[0], values[-1]), assume_sorted=True)
    return f(grid)


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def bvp_modulations(bvp, fs: float, preset: str | Preset = "mmrphys") -> dict[str, np.ndarray]:
    """The AM, FM and BM respiration surrogates of a BVP, each (T,) band-passed and z-scored."""
    p = get_preset(preset)
    fs = check_fs(fs)
    raw = as_signal(bvp, "bvp", min_len=filtfilt_padlen(p.order) + 1)
    if is_constant(raw):
        raise InputError("bvp is constant: no beats to derive respiration from")
    pulse = preprocess(raw, fs, p, "hr")
    hi = p.hr_band[1]
    peaks = detect_peaks(pulse, fs, max_hz=hi, refine=True)
    troughs = detect_peaks(-pulse, fs, max_hz=hi, refine=True)
    if peaks.size < MIN_BEATS or troughs.size < MIN_TROUGHS:
        raise InputError(f"bvp: only {peaks.size} beats found, need at least {MIN_BEATS} to derive "
                         "respiration")
    # pair every peak with the last trough before it
    k = np.searchsorted(troughs, peaks) - 1
    keep = k >= 0
    pk, tr = peaks[keep], troughs[k[keep]]
    if pk.size < MIN_BEATS:
        raise InputError(f"bvp: only {pk.size} complete beats found, need at least {MIN_BEATS}")
    idx = np.arange(raw.size)
    pulse_at = np.interp(pk, idx, pulse), np.interp(tr, idx, pulse)
    raw_at = np.interp(pk, idx, raw), np.interp(tr, idx, raw)
    t_pk = pk / fs
    series = {
        "am": (t_pk, pulse_at[0] - pulse_at[1]),
        "fm": (t_pk[1:], np.diff(t_pk)),
        "bm": (t_pk, (raw_at[0] + raw_at[1]) / 2.0),
    }
    lo_rr, hi_rr = p.rr_band
    out = {}
    for name, (t, v) in series.items():
        grid_v = _to_grid(t, v, raw.size, fs)
        if is_constant(grid_v):
            out[name] = np.zeros(raw.size)
            continue
        out[name] = _zscore(bandpass(grid_v - grid_v.mean(), fs, lo_rr, hi_rr, p.order))
    return out


def respiration_from_bvp(bvp, fs: float, method: str = "fused",
                         preset: str | Preset = "mmrphys") -> np.ndarray:
    """A respiration waveform (T,) derived from a BVP by amplitude/frequency/baseline modulation.

    ``method`` is "am", "fm", "bm" or "fused" (default). Feed the result to
    :func:`mmrphys.signals.rates.respiratory_rate`. Raises InputError when fewer than 4 beats are found.
    """
    if method not in (*MODULATIONS, "fused"):
        raise InputError(f"respiration_from_bvp: method must be one of {(*MODULATIONS, 'fused')}, "
                         f"got {method!r}")
    p = get_preset(preset)
    mods = bvp_modulations(bvp, fs, p)
    if method != "fused":
        return mods[method]
    q = {m: spectral_concentration(s, fs, p.rr_band, FUSION_HALF_WIDTH_HZ, harmonic=False)
         for m, s in mods.items()}
    best = max(q, key=q.get)
    fused = np.zeros_like(mods[best])
    for m, s in mods.items():
        sign = 1.0 if np.dot(s, mods[best]) >= 0 else -1.0
        fused += q[m] * sign * s
    return _zscore(fused)
