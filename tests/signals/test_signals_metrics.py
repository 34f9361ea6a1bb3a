import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from signals_synth import pulse

from mmrphys.errors import InputError
from mmrphys.signals import metrics
from mmrphys.signals.bland_altman import bland_altman, plot_bland_altman
from mmrphys.signals.presets import get_preset
from mmrphys.signals.rates import SignalWarning, preprocess

FS = 30.0
PRED = [70.0, 82.0, 95.0, 60.0, 101.0]
GT = [72.0, 80.0, 90.0, 66.0, 100.0]


# Hand-computed values in float64 from at most 5 numbers: both sides round a handful of times, <= ~10 u
# relative (u = 1.1e-16); rel=1e-12 leaves a wide margin and still catches any formula change.
EXACT = 1e-12


def test_standard_errors_against_hand_computed_values():
    # errors e = pred - gt = [-2, 2, 5, -6, 1]; |e| = [2, 2, 5, 6, 1], n = 5
    n = 5
    abs_e = [2, 2, 5, 6, 1]
    mean_abs = 16 / 5  # 3.2
    std_abs = math.sqrt(sum((v - mean_abs) ** 2 for v in abs_e) / n)  # population std, as np.std
    assert metrics.mae(PRED, GT) == pytest.approx((3.2, std_abs / math.sqrt(n)), rel=EXACT)
    sq = [4, 4, 25, 36, 1]  # mean 14
    std_sq = math.sqrt(sum((v - 14) ** 2 for v in sq) / n)
    expected = (math.sqrt(14), math.sqrt(std_sq / math.sqrt(n)))
    assert metrics.rmse(PRED, GT) == pytest.approx(expected, rel=EXACT)
    rel = [2 / 72, 2 / 80, 5 / 90, 6 / 66, 1 / 100]
    m_rel = sum(rel) / n
    std_rel = math.sqrt(sum((v - m_rel) ** 2 for v in rel) / n)
    assert metrics.mape(PRED, GT) == pytest.approx((m_rel * 100, std_rel / math.sqrt(n) * 100), rel=EXACT)
    mp, mg = sum(PRED) / n, sum(GT) / n
    cov = sum((p - mp) * (g - mg) for p, g in zip(PRED, GT))
    r = cov / math.sqrt(sum((p - mp) ** 2 for p in PRED) * sum((g - mg) ** 2 for g in GT))
    assert metrics.pearson(PRED, GT) == pytest.approx((r, math.sqrt((1 - r * r) / (n - 2))), rel=EXACT)
    snrs = [3.0, 5.0, -1.0, 9.0]
    assert metrics.mean_se(snrs) == pytest.approx((4.0, math.sqrt((1 + 1 + 25 + 25) / 4) / 2), rel=EXACT)


def test_summarize_and_nan_policy():
    out = metrics.summarize(PRED, GT, snrs=[1, 2], maccs=[0.5, 0.7])
    assert set(out) == {"MAE", "RMSE", "MAPE", "Pearson", "SNR", "MACC"}
    assert out["MAE"].value == pytest.approx(3.2, rel=EXACT)
    with pytest.raises(InputError, match="index 1"):
        metrics.mae([70, np.nan], [70, 71])
    omitted = metrics.mae([70, np.nan, 80], [71, 71, 78], nan_policy="omit")
    assert omitted.value == pytest.approx(1.5, rel=EXACT)
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
    # clean pulse: 13.4 dB (toolbox; the boxcar's sidelobes of the zero-padded 600-sample window reach the
    # remainder) and 130 dB (mmrphys, squared PSD); noise: only the harmonic windows' share of the
    # (filter-shaped) noise spectrum, between -8 and +1 dB over 5 seeds
    assert snr_self > 10 and snr_noise < 3 and snr_wrong < 0
    assert snr_self > snr_noise + 10


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


def _tones(n: int, fs: float, *freq_amp_phase) -> np.ndarray:
    t = np.arange(n) / fs
    return sum(a * np.cos(2 * np.pi * f * t + ph) for f, a, ph in freq_amp_phase)


# Hand-checkable SNRs. fs = 32 Hz and 75 bpm: f0 = 1.25 Hz, 2·f0 = 2.5 Hz. Every tone completes a whole
# number of cycles in the window (and in each Welch segment), so it lands on one FFT bin exactly.
# Periodogram (boxcar, N = nfft = 256, bins 0.125 Hz): a cosine of amplitude A puts P = A²·N/(2·fs) in its
# bin and nothing elsewhere, so every ratio is a ratio of A². The ±0.1 Hz harmonic windows hold one bin.
# Welch (MMRPhys, N >= 256: segments of L = 128, 50 % overlap, periodic Hann, bins 0.25 Hz): the Hann window
# is 1/2 − (e^{iθ} + e^{−iθ})/4, so an on-bin cosine has |X| ∝ A·{1/4 at k, 1/8 at k ± 1}: powers
# P ∝ A²·{1/16, 1/64, 1/64}, squared PSD ∝ A⁴·{1/256, 1/4096, 1/4096}; the neighbours (±0.25 Hz) lie
# outside the ±0.1 Hz window, in the remainder.
HAND_SNR = [
    # (preset, n, tones (Hz, amplitude, phase), expected dB)
    # toolbox: signal 1² at f0; remainder 0.1² (2.0 Hz) + 0.3² (3.0 Hz) → 10·log10(1 / 0.1) = 10 dB
    ("toolbox", 256, ((1.25, 1.0, 0.3), (2.0, 0.1, 1.0), (3.0, 0.3, 2.0)), 10.0),
    # toolbox-2023: the 3.0 Hz tone is outside 0.75–2.5 Hz → 10·log10(1 / 0.01) = 20 dB
    ("toolbox-2023", 256, ((1.25, 1.0, 0.3), (2.0, 0.1, 1.0), (3.0, 0.3, 2.0)), 20.0),
    # toolbox, both harmonics: (1² + 0.5²) / 0.5² = 5 → 10·log10(5) = 6.9897 dB
    ("toolbox", 256, ((1.25, 1.0, 0.3), (2.5, 0.5, 1.0), (2.0, 0.5, 2.0)), 10 * math.log10(5)),
    # mmrphys, N = 128 < 256 → periodogram, squared PSD: (1² / 0.5²)² = 16 → 12.0412 dB
    ("mmrphys", 128, ((1.25, 1.0, 0.3), (2.0, 0.5, 1.0)), 10 * math.log10(16)),
    # mmrphys, N = 256 → Welch; a pure sinusoid: S = 1/256, R = 2/4096 → 10·log10(8) = 9.0309 dB
    ("mmrphys", 256, ((1.25, 1.0, 0.3),), 10 * math.log10(8)),
    # ... plus an equal tone at 2.0 Hz: R = 2/4096 + 1/256 + 2/4096 = 10/2048 → 10·log10(0.8) = −0.9691 dB
    ("mmrphys", 256, ((1.25, 1.0, 0.3), (2.0, 1.0, 1.0)), 10 * math.log10(0.8)),
]


@pytest.mark.parametrize("preset,n,tones,expected_db", HAND_SNR)
def test_snr_pinned_to_hand_computed_values(preset, n, tones, expected_db):
    x = _tones(n, 32.0, *tones)
    # float64 FFT of 256 samples: relative error in each bin ~ log2(256)·u ≈ 1e-15; 1e-9 dB is wide
    assert metrics.snr(x, 75.0, 32.0, preset=preset) == pytest.approx(expected_db, abs=1e-9)


def test_toolbox_snr_is_ten_log10_not_twenty():
    # the toolbox's power2db since its PR #288/#344; 20·log10 (mag2db, earlier code and ours before) would
    # double every value: 20 dB here instead of 10
    x = _tones(256, 32.0, (1.25, 1.0, 0.3), (2.0, 0.1, 1.0), (3.0, 0.3, 2.0))
    assert metrics.snr(x, 75.0, 32.0, variant="toolbox") == pytest.approx(10.0, abs=1e-9)
    custom = get_preset("toolbox", hr_band=(0.6, 3.3))
    assert metrics.snr(x, 75.0, 32.0, preset=custom) == pytest.approx(10.0, abs=1e-9)


def test_macc_self_shift_and_noise():
    x = pulse(72.0, FS, 20.0, noise=0.2)
    # r = 1 exactly in exact arithmetic; the FFT correlation of 600 samples rounds by <= (5·log2 n + 2)·u
    # relative (~6e-15); 1e-12 is >= 100x that
    assert metrics.macc(x, x) == pytest.approx(1.0, abs=1e-12)
    assert metrics.macc(x, np.roll(x, 37)) == pytest.approx(1.0, abs=1e-12)
    assert metrics.macc(x, -x) == pytest.approx(1.0, abs=1e-12)  # |r|
    rng = np.random.default_rng(0)
    assert metrics.macc(rng.standard_normal(600), rng.standard_normal(600)) < 0.25
    assert math.isnan(metrics.macc(np.ones(100), x[:100]))
    assert metrics.macc(x[:500], x) == pytest.approx(1.0, abs=1e-12)  # truncated to the shorter


@settings(max_examples=50, deadline=None)
@given(n=st.integers(3, 120), seed=st.integers(0, 1000), lag=st.integers(0, 200))
def test_macc_equals_definition(n, seed, lag):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    b = 0.5 * b + np.roll(a, lag % n)
    ref = max(abs(np.corrcoef(a, np.roll(b, k))[0, 1]) for k in range(n - 1))
    # FFT vs direct sums of n <= 120 products: <= (n + 5·log2 n)·u ≈ 1.4e-14 apart (r <= 1); 1e-12 abs
    assert metrics.macc(a, b) == pytest.approx(ref, rel=0, abs=1e-12)


def test_bland_altman_numbers_and_plot(tmp_path):
    ba = bland_altman(PRED, GT)
    diffs = np.array(GT) - np.array(PRED)  # gt - pred, as the toolbox
    sd = diffs.std(ddof=1)
    assert ba["bias"] == pytest.approx(diffs.mean(), rel=EXACT)
    loa = (diffs.mean() - 1.96 * sd, diffs.mean() + 1.96 * sd)
    assert (ba["loa_low"], ba["loa_high"]) == pytest.approx(loa, rel=EXACT)
    bav = bland_altman(PRED, GT, averaged=True)
    assert bav["sd"] == pytest.approx(math.sqrt(2) * sd, rel=EXACT)
    assert bav["loa_high"] - bav["bias"] == pytest.approx(1.96 * math.sqrt(2) * sd, rel=EXACT)
    fig = plot_bland_altman(PRED, GT, tmp_path / "ba.png", averaged=True, title="test")
    assert (tmp_path / "ba.png").stat().st_size > 5000 and len(fig.axes) == 2
    with pytest.raises(InputError):
        bland_altman([1.0], [2.0])
