"""Benchmark metrics as the rPPG-Toolbox and MMRPhys report them, each with the toolbox's standard error.

Aggregate metrics over n windows/videos (``std`` is NumPy's population std, as in the toolbox):

=======  ==========================  =========================
metric   value                       standard error
=======  ==========================  =========================
MAE      mean|ŷ−y|                   std(|e|)/√n
RMSE     √mean(e²)                   √(std(e²)/√n)
MAPE     mean|e/y|·100               std(|e/y|)/√n·100
Pearson  corrcoef(ŷ, y)              √((1−r²)/(n−2))
SNR      mean SNR (dB)               std/√n
MACC     mean MACC                   std/√n
=======  ==========================  =========================

Per-window signal metrics: :func:`snr` (toolbox or MMRPhys variant, HR or RR band) and :func:`macc`.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from mmrphys.errors import InputError
from mmrphys.signals._checks import as_signal, check_fs, is_constant
from mmrphys.signals.presets import Preset, _kind, get_preset
from mmrphys.signals.rates import SignalWarning, peak_rate, preprocess, spectral_rate
from mmrphys.signals.spectrum import next_pow2

__all__ = ["Stat", "mae", "rmse", "mape", "pearson", "mean_se", "snr", "macc", "evaluate_window",
           "summarize"]


class Stat(NamedTuple):
    """A metric value and its standard error (NaN where undefined, e.g. Pearson with n <= 2)."""

    value: float
    se: float


def _pair(pred, gt, nan_policy: str) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    g = np.asarray(gt, dtype=np.float64).reshape(-1)
    if p.shape != g.shape:
        raise InputError(f"metrics: pred has {p.size} values but gt has {g.size}")
    bad = ~(np.isfinite(p) & np.isfinite(g))
    if bad.any():
        if nan_policy == "omit":
            p, g = p[~bad], g[~bad]
        elif nan_policy == "raise":
            raise InputError(f"metrics: {int(bad.sum())} NaN/inf pair(s), first at index "
                             f"{int(np.flatnonzero(bad)[0])}; pass nan_policy='omit' to drop them")
        else:
            raise InputError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    if p.size == 0:
        raise InputError("metrics: no (finite) values")
    return p, g


def mae(pred, gt, nan_policy: str = "raise") -> Stat:
    """Mean absolute error, SE = std(|e|)/√n."""
    p, g = _pair(pred, gt, nan_policy)
    e = np.abs(p - g)
    return Stat(float(e.mean()), float(e.std() / np.sqrt(e.size)))


def rmse(pred, gt, nan_policy: str = "raise") -> Stat:
    """Root mean squared error, SE = √(std(e²)/√n) (the toolbox's formula since its PR #304)."""
    p, g = _pair(pred, gt, nan_policy)
    e2 = (p - g) ** 2
    return Stat(float(np.sqrt(e2.mean())), float(np.sqrt(e2.std() / np.sqrt(e2.size))))


def mape(pred, gt, nan_policy: str = "raise") -> Stat:
    """Mean absolute percentage error (%), SE = std(|e/y|)/√n·100. Raises if any gt is 0."""
    p, g = _pair(pred, gt, nan_policy)
    if np.any(g == 0):
        raise InputError("mape: ground truth contains 0, the percentage error is undefined")
    r = np.abs((p - g) / g)
    return Stat(float(r.mean() * 100), float(r.std() / np.sqrt(r.size) * 100))


def pearson(pred, gt, nan_policy: str = "raise") -> Stat:
    """Pearson r, SE = √((1−r²)/(n−2)); r is NaN when either side is constant, SE NaN for n <= 2."""
    p, g = _pair(pred, gt, nan_policy)
    if p.size < 2 or is_constant(p) or is_constant(g):
        return Stat(float("nan"), float("nan"))
    r = float(np.corrcoef(p, g)[0, 1])
    se = float(np.sqrt((1 - r**2) / (p.size - 2))) if p.size > 2 else float("nan")
    return Stat(r, se)


def mean_se(values, nan_policy: str = "raise") -> Stat:
    """Mean and std/√n of per-window values (the toolbox's aggregate for SNR and MACC)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v, _ = _pair(v, np.zeros_like(v), nan_policy)
    return Stat(float(v.mean()), float(v.std() / np.sqrt(v.size)))


def _psd_for_snr(x: np.ndarray, fs: float, variant: str):
    from scipy import signal

    if variant == "toolbox" or x.size < 256:
        return signal.periodogram(x, fs=fs, nfft=next_pow2(x.size), detrend=False)
    return signal.welch(x, fs=fs, nperseg=x.size // 2, detrend=False)


def snr(pred, gt_rate_bpm: float, fs: float, kind: str = "hr", preset: str | Preset = "toolbox",
        variant: str | None = None, band: tuple[float, float] | None = None) -> float:
    """SNR (dB) of a (filtered) predicted waveform around the ground-truth rate.

    Power within ±0.1 Hz (±6 per minute) of f₀ = gt/60 and 2·f₀, over the power in the rest of the band,
    in dB as 10·log10 of that ratio (the references' ``power2db``). ``variant="toolbox"``: periodogram
    (nfft = next pow 2), plain PSD sums (the rPPG-Toolbox since its PR #288/#344; before #288 it used
    20·log10, ``mag2db``, which doubles every value). ``variant="mmrphys"``: z-scored input, periodogram
    below 256 samples else Welch (N//2), squared PSD values. The band defaults to the preset's (HR:
    0.6–3.3 Hz; RR: 0.13–0.5, or 0.1–0.54 Hz for the MMRPhys variant). Defined values: 0 dB when the
    remainder has no power (as the references do), NaN with a SignalWarning for a constant prediction,
    −inf if the harmonics carry none.
    """
    p = get_preset(preset)
    kind = _kind(kind)
    variant = variant or p.snr_variant
    if variant not in ("toolbox", "mmrphys"):
        raise InputError(f"snr: variant must be 'toolbox' or 'mmrphys', got {variant!r}")
    fs = check_fs(fs)
    x = as_signal(pred, "snr prediction", min_len=2)
    if not np.isfinite(gt_rate_bpm) or gt_rate_bpm <= 0:
        raise InputError(f"snr: ground-truth rate must be a positive number, got {gt_rate_bpm}")
    if band is None:
        band = p.snr_rr_band if (kind == "rr" and variant == "mmrphys" and p.snr_rr_band) else p.band(kind)
    lo, hi = band
    if is_constant(x):
        warnings.warn("snr: the prediction is constant, SNR is undefined (NaN)", SignalWarning, stacklevel=2)
        return float("nan")
    if variant == "mmrphys":
        x = (x - x.mean()) / x.std()
    f, pxx = _psd_for_snr(x, fs, variant)
    f1, f2, dev = gt_rate_bpm / 60.0, 2 * gt_rate_bpm / 60.0, 6.0 / 60.0
    h1 = (f >= f1 - dev) & (f <= f1 + dev)
    h2 = (f >= f2 - dev) & (f <= f2 + dev)
    rem = (f >= lo) & (f <= hi) & ~h1 & ~h2
    if variant == "mmrphys":
        pxx = pxx**2
    sig_power = pxx[h1].sum() + pxx[h2].sum()
    rem_power = pxx[rem].sum()
    if rem_power == 0:
        return 0.0
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(sig_power / rem_power))


def macc(pred, gt) -> float:
    """Maximum |Pearson r| between ``pred`` and circularly shifted ``gt`` over lags 0…L−2.

    Same definition as the references (``np.roll`` of gt, signals truncated to the shorter length),
    computed for all lags at once with an FFT. NaN when either signal is constant or L < 3.
    """
    p = as_signal(pred, "macc prediction", min_len=1)
    g = as_signal(gt, "macc ground truth", min_len=1)
    n = min(p.size, g.size)
    p, g = p[:n], g[:n]
    if n < 3 or is_constant(p) or is_constant(g):
        return float("nan")
    p = p - p.mean()
    g = g - g.mean()
    # corr[k] = sum_n p[n] * g[(n - k) mod N], i.e. corrcoef(p, np.roll(g, k)) up to normalisation
    corr = np.fft.irfft(np.fft.rfft(p) * np.conj(np.fft.rfft(g)), n=n)
    r = np.abs(corr[: n - 1]) / np.sqrt(np.dot(p, p) * np.dot(g, g))
    return float(min(1.0, r.max()))


def evaluate_window(pred, gt, fs: float, kind: str = "hr", preset: str | Preset = "toolbox",
                    method: str = "fft", refine: bool = False, diff: bool = False) -> dict:
    """Per-window evaluation as the references' ``calculate_metric_per_video``.

    Optionally integrates first (``diff=True`` for first-difference outputs), applies the preset's
    post-processing to both signals, then returns ``{"gt_rate", "pred_rate", "snr", "macc"}``. The
    ground-truth rate is derived from the ground-truth waveform the same way as the prediction's.
    ``refine=False`` (default here) keeps rates on the FFT bins as the papers report them.
    """
    p = get_preset(preset)
    kind = _kind(kind)
    fs = check_fs(fs)
    x = as_signal(pred, "prediction")
    y = as_signal(gt, "ground truth")
    if diff:
        x, y = np.cumsum(x), np.cumsum(y)
    x = preprocess(x, fs, p, kind)
    y = preprocess(y, fs, p, kind)
    if method == "fft":
        def rate(s):
            return spectral_rate(s, fs, p.band(kind), method=p.psd, refine=refine,
                                 welch_after_s=p.welch_after_s)
    elif method == "peak":
        def rate(s):
            return peak_rate(s, fs, p.band(kind), refine=refine)
    else:
        raise InputError(f"method must be 'fft' or 'peak', got {method!r}")
    gt_rate, pred_rate = rate(y), rate(x)
    snr_db = snr(x, gt_rate, fs, kind, p) if np.isfinite(gt_rate) else float("nan")
    return {"gt_rate": gt_rate, "pred_rate": pred_rate, "snr": snr_db, "macc": macc(x, y)}


def summarize(pred_rates, gt_rates, snrs=None, maccs=None, nan_policy: str = "raise") -> dict[str, Stat]:
    """All aggregate metrics at once: ``{"MAE", "RMSE", "MAPE", "Pearson", "SNR"?, "MACC"?}`` of Stat."""
    out = {
        "MAE": mae(pred_rates, gt_rates, nan_policy),
        "RMSE": rmse(pred_rates, gt_rates, nan_policy),
        "MAPE": mape(pred_rates, gt_rates, nan_policy),
        "Pearson": pearson(pred_rates, gt_rates, nan_policy),
    }
    if snrs is not None:
        out["SNR"] = mean_se(snrs, nan_policy)
    if maccs is not None:
        out["MACC"] = mean_se(maccs, nan_policy)
    return out
