import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from signals_synth import pulse

from mmrphys.errors import InputError
from mmrphys.signals import metrics
from mmrphys.signals.bland_altman import bland_altman, plot_bland_altman
from mmrphys.signals.rates import SignalWarning, preprocess

FS = 30.0
PRED = [70.0, 82.0, 95.0, 60.0, 101.0]
GT = [72.0, 80.0, 90.0, 66.0, 100.0]


def test_standard_errors_against_hand_computed_values():
    # errors e = pred - gt = [-2, 2, 5, -6, 1]; |e| = [2, 2, 5, 6, 1], n = 5
    n = 5
    abs_e = [2, 2, 5, 6, 1]
    mean_abs = 16 / 5  # 3.2
    std_abs = math.sqrt(sum((v - mean_abs) ** 2 for v in abs_e) / n)  # population std, as np.std
    assert metrics.mae(PRED, GT) == pytest.approx((3.2, std_abs / math.sqrt(n)))
    sq = [4, 4, 25, 36, 1]  # mean 14
    std_sq = math.sqrt(sum((v - 14) ** 2 for v in sq) / n)
    assert metrics.rmse(PRED, GT) == pytest.approx((math.sqrt(14), math.sqrt(std_sq / math.sqrt(n))))
    rel = [2 / 72, 2 / 80, 5 / 90, 6 / 66, 1 / 100]
    m_rel = sum(rel) / n
    std_rel = math.sqrt(sum((v - m_rel) ** 2 for v in rel) / n)
    assert metrics.mape(PRED, GT) == pytest.approx((m_rel * 100, std_rel / math.sqrt(n) * 100))
    mp, mg = sum(PRED) / n, sum(GT) / n
    cov = sum((p - mp) * (g - mg) for p, g in zip(PRED, GT))
    r = cov / math.sqrt(sum((p - mp) ** 2 for p in PRED) * sum((g - mg) ** 2 for g in GT))
    assert metrics.pearson(PRED, GT) == pytest.approx((r, math.sqrt((1 - r * r) / (n - 2))))
    snrs = [3.0, 5.0, -1.0, 9.0]
    assert metrics.mean_se(snrs) == pytest.approx((4.0, math.sqrt((1 + 1 + 25 + 25) / 4) / 2))


def test_summarize_and_nan_policy():
    out = metrics.summarize(PRED, GT, snrs=[1, 2], maccs=[0.5, 0.7])
    assert set(out) == {"MAE", "RMSE", "MAPE", "Pearson", "SNR", "MACC"}
    assert out["MAE"].value == pytest.approx(3.2)
    with pytest.raises(InputError, match="index 1"):
        metrics.mae([70, np.nan], [70, 71])
    assert metrics.mae([70, np.nan, 80], [71, 71, 78], nan_policy="omit").value == pytest.approx(1.5)
    with pytest.raises(InputError, match="3 values"):
        metrics.mae([1, 2, 3], [1, 2])
    with pytest.raises(InputError, match="0"):
        metrics.mape([1.0], [0.0])
    assert math.isnan(metrics.pearson([1, 2], [3, 4]).se)  # n - 2 = 0
    assert math.isnan(metrics.pearson([1, 1, 1], [3, 4, 5]).value)


@pytest.mark.parametrize("variant", ["toolbox", "mmrphys"])
def test_snr_of_signal_against_its_own_rate_and_against_noise(variant):
    clean = preprocess(pulse(72.0, FS, 20.0, noise=0.0), FS, "toolbox")
    noise = preprocess(np.random.default_rng(0).standard_normal(600), FS, "toolbox")
    snr_self = metrics.snr(clean, 72.0, FS, variant=variant)
    snr_noise = metrics.snr(noise, 72.0, FS, variant=variant)
    snr_wrong = metrics.snr(clean, 110.0, FS, variant=variant)  # harmonics windows miss the pulse
    # noise: only the harmonic windows' share of the (filter-shaped) noise spectrum, a few dB at most
    assert snr_self > 20 and snr_noise < 3 and snr_wrong < 0
    assert snr_self > snr_noise + 20


def test_snr_definitions_and_defined_values():
    x = preprocess(pulse(72.0, FS, 20.0, noise=0.5), FS, "toolbox")
    tb, mm = metrics.snr(x, 72.0, FS, variant="toolbox"), metrics.snr(x, 72.0, FS, variant="mmrphys")
    assert tb != pytest.approx(mm)
    with pytest.warns(SignalWarning):
        assert math.isnan(metrics.snr(np.zeros(300), 72.0, FS))
    with pytest.raises(InputError):
        metrics.snr(x, float("nan"), FS)
    # RR band: a 15 /min breath against its own rate
    t = np.arange(1800) / FS
    r = np.sin(2 * np.pi * 0.25 * t)
    assert metrics.snr(r, 15.0, FS, kind="rr") > 10
    assert metrics.snr(r, 15.0, FS, kind="rr", preset="mmrphys") > 10


def test_macc_self_shift_and_noise():
    x = pulse(72.0, FS, 20.0, noise=0.2)
    assert metrics.macc(x, x) == pytest.approx(1.0)
    assert metrics.macc(x, np.roll(x, 37)) == pytest.approx(1.0)
    assert metrics.macc(x, -x) == pytest.approx(1.0)  # |r|
    rng = np.random.default_rng(0)
    assert metrics.macc(rng.standard_normal(600), rng.standard_normal(600)) < 0.25
    assert math.isnan(metrics.macc(np.ones(100), x[:100]))
    assert metrics.macc(x[:500], x) == pytest.approx(1.0)  # truncated to the shorter


@settings(max_examples=50, deadline=None)
@given(n=st.integers(3, 120), seed=st.integers(0, 1000), lag=st.integers(0, 200))
def test_macc_equals_definition(n, seed, lag):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    b = 0.5 * b + np.roll(a, lag % n)
    ref = max(abs(np.corrcoef(a, np.roll(b, k))[0, 1]) for k in range(n - 1))
    assert metrics.macc(a, b) == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_bland_altman_numbers_and_plot(tmp_path):
    ba = bland_altman(PRED, GT)
    diffs = np.array(GT) - np.array(PRED)  # gt - pred, as the toolbox
    sd = diffs.std(ddof=1)
    assert ba["bias"] == pytest.approx(diffs.mean())
    loa = (diffs.mean() - 1.96 * sd, diffs.mean() + 1.96 * sd)
    assert (ba["loa_low"], ba["loa_high"]) == pytest.approx(loa)
    bav = bland_altman(PRED, GT, averaged=True)
    assert bav["sd"] == pytest.approx(math.sqrt(2) * sd)
    assert bav["loa_high"] - bav["bias"] == pytest.approx(1.96 * math.sqrt(2) * sd)
    fig = plot_bland_altman(PRED, GT, tmp_path / "ba.png", averaged=True, title="test")
    assert (tmp_path / "ba.png").stat().st_size > 5000 and len(fig.axes) == 2
    with pytest.raises(InputError):
        bland_altman([1.0], [2.0])
