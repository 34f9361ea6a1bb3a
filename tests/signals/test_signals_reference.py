"""The presets reproduce the published formulas (ECOSYSTEM.md §1.8, MMRPHYS_REFERENCE.md §4.2).

Each reference below is a small independent re-derivation written from the published description, with a
dense detrend matrix and explicit loops, not our implementation.
"""

import numpy as np
import pytest
import scipy.signal
from scipy.sparse import spdiags
from signals_synth import pulse

from mmrphys.signals.metrics import evaluate_window

FS = 30.0


def ref_detrend(x, lam=100):
    n = len(x)
    h = np.identity(n)
    d = spdiags(np.array([np.ones(n), -2 * np.ones(n), np.ones(n)]), np.array([0, 1, 2]), n - 2, n).toarray()
    return (h - np.linalg.inv(h + lam**2 * d.T @ d)) @ x


def ref_next_pow2(n):
    p = 1
    while p < n:
        p *= 2
    return p


def ref_psd(x, fs, welch):
    if welch:
        return scipy.signal.welch(x, fs=fs, nperseg=len(x) // 2, detrend=False)
    return scipy.signal.periodogram(x, fs=fs, nfft=ref_next_pow2(len(x)), detrend=False)


def ref_rate(x, fs, lo, hi, welch=False):
    f, p = ref_psd(x, fs, welch)
    sel = [i for i in range(len(f)) if lo <= f[i] <= hi]
    best = max(sel, key=lambda i: p[i])
    return f[best] * 60


def ref_snr(x, hr, fs, lo, hi, squared, welch):
    if squared:
        x = (x - np.mean(x)) / np.std(x)
    f, p = ref_psd(x, fs, welch)
    f1, f2, dev = hr / 60, 2 * hr / 60, 0.1
    in1 = (f >= f1 - dev) & (f <= f1 + dev)
    in2 = (f >= f2 - dev) & (f <= f2 + dev)
    rest = (f >= lo) & (f <= hi) & ~in1 & ~in2
    q = p**2 if squared else p
    num, den = q[in1].sum() + q[in2].sum(), q[rest].sum()
    if den == 0:
        return 0.0
    return 10 * np.log10(num / den) if squared else 20 * np.log10(num / den)


def ref_macc(a, b):
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    return max(abs(np.corrcoef(a, np.roll(b, lag))[0, 1]) for lag in range(n - 1))


def ref_toolbox(pred, gt, fs, lo, hi):
    b, a = scipy.signal.butter(1, [lo / fs * 2, hi / fs * 2], btype="bandpass")
    p = scipy.signal.filtfilt(b, a, ref_detrend(pred))
    g = scipy.signal.filtfilt(b, a, ref_detrend(gt))
    hr_gt = ref_rate(g, fs, lo, hi)
    return {"gt_rate": hr_gt, "pred_rate": ref_rate(p, fs, lo, hi),
            "snr": ref_snr(p, hr_gt, fs, lo, hi, squared=False, welch=False), "macc": ref_macc(p, g)}


def ref_mmrphys(pred, gt, fs, lo=0.6, hi=3.3):
    b, a = scipy.signal.butter(2, [lo / fs * 2, hi / fs * 2], btype="bandpass")
    p = scipy.signal.filtfilt(b, a, pred)
    g = scipy.signal.filtfilt(b, a, gt)
    welch = len(p) > 30 * fs
    hr_gt = ref_rate(g, fs, lo, hi, welch)
    return {"gt_rate": hr_gt, "pred_rate": ref_rate(p, fs, lo, hi, welch),
            "snr": ref_snr(p, hr_gt, fs, lo, hi, squared=True, welch=len(p) >= 256), "macc": ref_macc(p, g)}


CASES = [  # (pred hr, gt hr, duration s, pred noise, seed)
    (72.0, 72.0, 10.0, 0.5, 0), (80.0, 77.0, 10.0, 1.0, 1), (65.0, 65.0, 20.0, 2.0, 2),
    (110.0, 108.0, 30.0, 0.8, 3), (55.0, 95.0, 12.0, 1.5, 4), (140.0, 140.0, 45.0, 1.0, 5),
]


# the dense O(N³) reference detrend is slow on 2 shared cores: toolbox cases stay at <= 20 s
@pytest.mark.parametrize("case", [c for c in CASES if c[2] <= 20])
@pytest.mark.parametrize("preset,band", [("toolbox", (0.6, 3.3)), ("toolbox-2023", (0.75, 2.5))])
def test_toolbox_presets_match_reference(case, preset, band):
    hr_p, hr_g, dur, noise, seed = case
    pred = pulse(hr_p, FS, dur, noise=noise, seed=seed)
    gt = pulse(hr_g, FS, dur, noise=0.05, seed=100 + seed, phase=0.7)
    ours = evaluate_window(pred, gt, FS, preset=preset, refine=False)
    ref = ref_toolbox(pred, gt, FS, *band)
    for key in ("gt_rate", "pred_rate"):
        assert ours[key] == ref[key]  # bin-exact
    assert ours["snr"] == pytest.approx(ref["snr"], rel=1e-6, abs=1e-6)
    assert ours["macc"] == pytest.approx(ref["macc"], rel=1e-9)


@pytest.mark.parametrize("case", CASES)
def test_mmrphys_preset_matches_reference(case):
    hr_p, hr_g, dur, noise, seed = case
    pred = pulse(hr_p, FS, dur, noise=noise, seed=seed)
    gt = pulse(hr_g, FS, dur, noise=0.05, seed=100 + seed, phase=0.7)
    ours = evaluate_window(pred, gt, FS, preset="mmrphys", refine=False)
    ref = ref_mmrphys(pred, gt, FS)
    for key in ("gt_rate", "pred_rate"):
        assert ours[key] == ref[key]
    assert ours["snr"] == pytest.approx(ref["snr"], rel=1e-6, abs=1e-6)
    assert ours["macc"] == pytest.approx(ref["macc"], rel=1e-9)


def test_diff_outputs_are_integrated_first():
    gt = pulse(72.0, FS, 10.0, noise=0.05)
    pred = pulse(75.0, FS, 10.0, noise=0.5, seed=3)
    ours = evaluate_window(np.diff(pred, prepend=0), np.diff(gt, prepend=0), FS, preset="toolbox", diff=True)
    ref = ref_toolbox(pred, gt, FS, 0.6, 3.3)
    assert ours["gt_rate"] == ref["gt_rate"] and ours["pred_rate"] == ref["pred_rate"]
