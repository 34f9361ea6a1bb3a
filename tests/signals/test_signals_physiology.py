"""HRV, signal quality and respiration-from-BVP on synthetic signals with known truth."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from signals_synth import breathing, pulse

from mmrphys.errors import InputError
from mmrphys.signals import hrv_from_bvp, respiration_from_bvp, respiratory_rate, signal_quality
from mmrphys.signals.hrv import hrv_from_ibis
from mmrphys.signals.respiration import respiration_from_rsp

FS = 30.0


def modulated_bvp(duration_s=60.0, hr=72.0, rr=15.0, hr_swing=4.0, seed=0, fs=FS, am=0.2, bm=0.3, noise=0.1):
    """BVP whose rate swings ±hr_swing bpm, amplitude ±20 % and baseline with breathing at ``rr``/min."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * fs)) / fs
    resp = np.sin(2 * np.pi * rr / 60 * t)
    inst_hz = (hr + hr_swing * resp) / 60
    phase = 2 * np.pi * np.cumsum(inst_hz) / fs
    beat = np.sin(phase) + 0.4 * np.sin(2 * phase + 0.8)
    bvp = (1 + am * np.sin(2 * np.pi * rr / 60 * t + 0.5)) * beat + bm * resp
    return bvp + noise * rng.standard_normal(t.size), phase


def test_hrv_time_domain_matches_the_true_beats():
    # amplitude/baseline modulation moves the waveform's peaks off the beat phase, so test timing alone
    bvp, phase = modulated_bvp(60.0, am=0.0, bm=0.0, noise=0.05)
    # true beat times: where the fundamental's phase crosses pi/2 + 2πk (the sine peaks), interpolated
    k = np.arange(1, int(phase[-1] / (2 * np.pi)))
    true_t = np.interp(np.pi / 2 + 2 * np.pi * k, phase, np.arange(phase.size) / FS)
    true_ibi = np.diff(true_t) * 1000
    out = hrv_from_bvp(bvp, FS)
    assert out["hr_bpm"] == pytest.approx(72.0, abs=0.5)
    assert out["mean_ibi_ms"] == pytest.approx(true_ibi.mean(), abs=3)
    assert out["sdnn_ms"] == pytest.approx(true_ibi.std(ddof=1), rel=0.15)
    true_rmssd = np.sqrt(np.mean(np.diff(true_ibi) ** 2))
    assert out["rmssd_ms"] == pytest.approx(true_rmssd, rel=0.2)
    assert 0 <= out["pnn50_pct"] <= 100
    assert math.isnan(out["lf_hf"]) and "120 s" in out["reason"]  # 60 s is too short for LF/HF


def test_hrv_lf_hf_on_long_recording():
    # rate modulated at 0.1 Hz (LF) strongly and by breathing at 0.25 Hz (HF) weakly: LF/HF > 1
    t = np.arange(int(180 * FS)) / FS
    inst = (70 + 5 * np.sin(2 * np.pi * 0.1 * t) + 1.5 * np.sin(2 * np.pi * 0.25 * t)) / 60
    phase = 2 * np.pi * np.cumsum(inst) / FS
    out = hrv_from_bvp(np.sin(phase) + 0.3 * np.sin(2 * phase), FS)
    assert out["reason"] == "" and out["lf_hf"] > 2
    t2 = np.arange(int(180 * FS)) / FS
    inst2 = (70 + 1.0 * np.sin(2 * np.pi * 0.1 * t2) + 5 * np.sin(2 * np.pi * 0.25 * t2)) / 60
    phase2 = 2 * np.pi * np.cumsum(inst2) / FS
    assert hrv_from_bvp(np.sin(phase2), FS)["lf_hf"] < 0.5


def test_hrv_from_ibis_hand_computed():
    ibi = np.array([0.8, 0.85, 0.8, 0.9, 0.8])
    out = hrv_from_ibis(ibi)
    ms = ibi * 1000
    # float64 sums of 5 intervals: <= ~10 u relative apart; rel=1e-12 is exact for practical purposes
    assert out["mean_ibi_ms"] == pytest.approx(830.0, rel=1e-12)
    assert out["sdnn_ms"] == pytest.approx(np.std(ms, ddof=1), rel=1e-12)
    assert out["rmssd_ms"] == pytest.approx(math.sqrt((50**2 + 50**2 + 100**2 + 100**2) / 4), rel=1e-12)
    assert out["pnn50_pct"] == pytest.approx(50.0, rel=1e-12)  # |diffs| 50, 50, 100, 100: "> 50" counts two


def test_hrv_defined_values_for_bad_signals():
    out = hrv_from_bvp(np.ones(300), FS)
    assert math.isnan(out["rmssd_ms"]) and "constant" in out["reason"]
    with pytest.raises(InputError):
        hrv_from_bvp(np.r_[np.nan, np.ones(299)], FS)


def test_quality_scale_clean_vs_noise_and_monotone():
    rng = np.random.default_rng(0)
    clean = pulse(72.0, FS, 10.0, noise=0.0)
    assert signal_quality(clean, FS) >= 0.85
    noise = [signal_quality(rng.standard_normal(300), FS) for _ in range(10)]
    assert max(noise) <= 0.35 and np.mean(noise) <= 0.25
    levels = [0.2, 1.0, 3.0, 10.0]
    q = [np.mean([signal_quality(pulse(72.0, FS, 10.0, noise=s, seed=k), FS) for k in range(8)])
         for s in levels]
    assert all(a > b for a, b in zip(q, q[1:]))
    assert signal_quality(np.zeros(300), FS) == 0.0
    assert signal_quality(breathing(15.0, FS, 60.0, noise=0.05), FS, kind="rr") >= 0.8


@settings(max_examples=50, deadline=None)
@given(x=arrays(np.float64, st.integers(16, 600), elements=st.floats(-1e3, 1e3)))
def test_quality_always_in_unit_interval(x):
    assert 0.0 <= signal_quality(x, FS) <= 1.0


@pytest.mark.parametrize("method", ["am", "fm", "bm", "fused"])
@pytest.mark.parametrize("rr", [12.0, 15.0, 20.0])
def test_respiration_from_bvp_recovers_rr(method, rr):
    bvp, _ = modulated_bvp(60.0, rr=rr, seed=int(rr))
    resp = respiration_from_bvp(bvp, FS, method=method)
    assert resp.shape == bvp.shape
    assert abs(respiratory_rate(resp, FS) - rr) <= 1.0


def test_respiration_from_rsp_and_errors():
    r = breathing(15.0, FS, 60.0)
    y = respiration_from_rsp(r * 100 + 5, FS)
    assert y.std() == pytest.approx(1.0) and abs(respiratory_rate(y, FS) - 15) < 0.5
    with pytest.raises(InputError, match="constant"):
        respiration_from_bvp(np.ones(600), FS)
    with pytest.raises(InputError, match="beats"):
        respiration_from_bvp(pulse(72.0, FS, 2.0), FS)
    with pytest.raises(InputError, match="method"):
        respiration_from_bvp(pulse(72.0, FS, 20.0), FS, method="xx")
