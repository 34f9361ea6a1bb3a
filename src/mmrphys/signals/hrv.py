"""Heart-rate variability from pulse peaks of a BVP waveform.

Beats are the prominence-filtered, sub-sample (parabolic) peaks of the band-passed BVP
(:func:`mmrphys.signals.rates.detect_peaks`). Inter-beat intervals (IBIs) outside the preset's HR band or
more than 30 % away from the median IBI are rejected as artefacts; successive differences use adjacent
accepted IBIs only. Time-domain measures need ≥ 3 accepted IBIs; LF/HF needs ≥ 120 s of beats
(the Task Force 1996 minimum for LF). Camera frame rates limit beat timing: at 30 fps with parabolic
interpolation the jitter is a few ms, which inflates RMSSD and pNN50 slightly for very regular rhythms.
Undefined values are NaN and ``reason`` says why.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, interpolate
from scipy import signal as sps

from mmrphys.signals._checks import as_signal, check_fs, is_constant
from mmrphys.signals.presets import Preset, get_preset
from mmrphys.signals.rates import detect_peaks, preprocess

__all__ = ["hrv_from_bvp", "hrv_from_ibis"]

LF_BAND = (0.04, 0.15)
HF_BAND = (0.15, 0.4)
MIN_LFHF_S = 120.0
_KEYS = ("mean_ibi_ms", "hr_bpm", "sdnn_ms", "rmssd_ms", "pnn50_pct", "lf_ms2", "hf_ms2", "lf_hf")


def _empty(reason: str, n_beats: int = 0) -> dict:
    out = {k: float("nan") for k in _KEYS}
    out.update(n_beats=n_beats, n_ibi=0, n_rejected=0, reason=reason)
    return out


def hrv_from_ibis(ibi_s, beat_times_s=None, valid=None) -> dict:
    """HRV measures from inter-beat intervals in seconds (``valid`` marks accepted IBIs; default all)."""
    ibi = np.asarray(ibi_s, dtype=np.float64).reshape(-1)
    valid = np.ones(ibi.size, bool) if valid is None else np.asarray(valid, bool)
    times = np.cumsum(ibi) if beat_times_s is None else np.asarray(beat_times_s, dtype=np.float64)
    good = ibi[valid] * 1000.0
    out = _empty("", n_beats=ibi.size + 1)
    out.update(n_ibi=int(good.size), n_rejected=int(ibi.size - good.size))
    if good.size < 3:
        out["reason"] = f"only {good.size} accepted inter-beat intervals, need 3"
        return out
    pair = valid[1:] & valid[:-1]
    succ = np.diff(ibi * 1000.0)[pair]
    out.update(
        mean_ibi_ms=float(good.mean()),
        hr_bpm=float(60000.0 / good.mean()),
        sdnn_ms=float(good.std(ddof=1)),
        rmssd_ms=float(np.sqrt(np.mean(succ**2))) if succ.size else float("nan"),
        pnn50_pct=float(100.0 * np.mean(np.abs(succ) > 50.0)) if succ.size else float("nan"),
    )
    span = float(times[valid][-1] - times[valid][0])
    if span < MIN_LFHF_S or good.size < 8:
        out["reason"] = f"LF/HF needs >= {MIN_LFHF_S:.0f} s of beats, got {span:.1f} s"
        return out
    # IBI tachogram resampled evenly at 4 Hz (cubic), linear trend removed, Welch PSD
    fs_t = 4.0
    grid = np.arange(times[valid][0], times[valid][-1], 1.0 / fs_t)
    tach = interpolate.CubicSpline(times[valid], good)(grid)
    tach = sps.detrend(tach, type="linear")
    f, pxx = sps.welch(tach, fs=fs_t, nperseg=min(256, tach.size))
    lf_mask = (f >= LF_BAND[0]) & (f < LF_BAND[1])
    hf_mask = (f >= HF_BAND[0]) & (f < HF_BAND[1])
    lf = float(integrate.trapezoid(pxx[lf_mask], f[lf_mask]))
    hf = float(integrate.trapezoid(pxx[hf_mask], f[hf_mask]))
    out.update(lf_ms2=lf, hf_ms2=hf, lf_hf=float(lf / hf) if hf > 0 else float("nan"))
    return out


def hrv_from_bvp(bvp, fs: float, preset: str | Preset = "mmrphys") -> dict:
    """HRV from a BVP waveform.

    Returns a dict with ``mean_ibi_ms``, ``hr_bpm``, ``sdnn_ms``, ``rmssd_ms``, ``pnn50_pct``, ``lf_ms2``,
    ``hf_ms2``, ``lf_hf`` (floats, NaN when undefined), ``n_beats``, ``n_ibi`` (accepted), ``n_rejected``,
    ``peaks_s`` (beat times) and ``reason`` ("" when everything was computed).
    """
    p = get_preset(preset)
    fs = check_fs(fs)
    arr = as_signal(bvp, "bvp")
    if is_constant(arr):
        out = _empty("bvp is constant: no beats")
        out["peaks_s"] = np.empty(0)
        return out
    filtered = preprocess(arr, fs, p, "hr")
    lo, hi = p.hr_band
    peaks = detect_peaks(filtered, fs, max_hz=hi, refine=True) / fs
    if peaks.size < 4:
        out = _empty(f"only {peaks.size} beats found, need 4", n_beats=int(peaks.size))
        out["peaks_s"] = peaks
        return out
    ibi = np.diff(peaks)
    med = np.median(ibi)
    valid = (ibi >= 1.0 / hi) & (ibi <= 1.0 / lo) & (np.abs(ibi - med) <= 0.3 * med)
    out = hrv_from_ibis(ibi, beat_times_s=peaks[1:], valid=valid)
    out["peaks_s"] = peaks
    return out
