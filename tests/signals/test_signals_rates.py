import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from signals_synth import breathing, pulse

from mmrphys.errors import ConfigError, InputError
from mmrphys.signals import get_preset, heart_rate, respiratory_rate, rolling_rates
from mmrphys.signals.rates import SignalWarning, min_samples, peak_rate, preprocess
from mmrphys.signals.spectrum import next_pow2, spectrum

FS = 30.0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("preset", ["toolbox", "toolbox-2023", "mmrphys"])
@pytest.mark.parametrize("duration_s", [10.0, 30.0, 60.0])
def test_72_bpm_pulse_refined_within_half_bpm(seed, preset, duration_s):
    x = pulse(72.0, FS, duration_s, noise=0.5, seed=seed, phase=seed)
    assert abs(heart_rate(x, FS, preset=preset) - 72.0) <= 0.5


def test_unrefined_rate_is_on_the_fft_bin_grid_and_coarser():
    x = pulse(72.0, FS, 10.0, noise=0.3)
    coarse = heart_rate(x, FS, preset="toolbox", refine=False)
    bin_bpm = 60 * FS / next_pow2(x.size)  # 3.52 bpm bins for 300 samples
    # k·(1/(nfft/fs))·60 / (60·fs/nfft) with k <= 256: a few roundings of a number <= 256, <= 1e-13 off an
    # integer (measured: exact)
    assert coarse / bin_bpm == pytest.approx(round(coarse / bin_bpm), abs=1e-12)
    assert abs(heart_rate(x, FS, preset="toolbox") - 72) < abs(coarse - 72)


@pytest.mark.parametrize("hr", [45.0, 61.3, 88.8, 130.0, 170.0])
def test_refined_rate_across_the_band(hr):
    assert abs(heart_rate(pulse(hr, FS, 20.0, noise=0.3), FS) - hr) <= 0.5


def test_peak_method_refined_and_toolbox_exact():
    x = pulse(72.0, FS, 30.0, noise=0.3)
    assert abs(heart_rate(x, FS, method="peak") - 72.0) <= 1.0
    # the toolbox's unconstrained find_peaks counts the harmonic bumps too
    assert heart_rate(x, FS, preset="toolbox", method="peak", refine=False) > 80


@pytest.mark.parametrize("preset", ["toolbox", "mmrphys"])
def test_rr_from_15_per_min_trace(preset):
    r = breathing(15.0, FS, 60.0, noise=0.3)
    assert abs(respiratory_rate(r, FS, preset=preset) - 15.0) <= 0.5
    coarse = respiratory_rate(r, FS, preset=preset, refine=False)
    bin_bpm = 60 * FS / (next_pow2(r.size) if preset == "toolbox" else r.size // 2)  # Welch above 30 s
    assert abs(coarse - 15.0) <= bin_bpm


def test_mmrphys_preset_uses_welch_above_30_s():
    r = breathing(15.0, FS, 90.0)
    assert abs(respiratory_rate(r, FS, preset="mmrphys", refine=False) - 15.0) < 60 * FS / (r.size // 2)
    # bin spacings: 1/(n·(1/fs)) vs fs/n, two roundings apart at most (measured: equal).
    # Welch with nperseg N//2, not the periodogram grid:
    f_w, _ = spectrum(r, FS, method="auto")
    assert f_w[1] == pytest.approx(FS / (r.size // 2), rel=1e-15)
    f_p, _ = spectrum(r[: int(30 * FS)], FS, method="auto")
    assert f_p[1] == pytest.approx(FS / next_pow2(int(30 * FS)), rel=1e-15)


def test_rolling_rates_times_and_values():
    hr = np.r_[np.full(900, 60.0), np.full(900, 90.0)]  # 60 bpm for 30 s, then 90 bpm
    phase = 2 * np.pi * np.cumsum(hr / 60.0) / FS
    x = np.sin(phase) + 0.3 * np.sin(2 * phase)
    times, rates = rolling_rates(x, FS, window_s=10.0, step_s=2.0)
    # (start + win/2)/fs: integers divided once, exact to u·t <= 1e-14 s (measured: exact)
    assert times[0] == pytest.approx(5.0, abs=1e-12) and np.allclose(np.diff(times), 2.0, rtol=0, atol=1e-12)
    assert times.size == rates.size == (1800 - 300) // 60 + 1
    assert np.all(np.abs(rates[times <= 24] - 60) < 1.0)
    assert np.all(np.abs(rates[times >= 36] - 90) < 1.0)
    t_rr, rr = rolling_rates(breathing(15.0, FS, 90.0), FS, window_s=30.0, step_s=5.0, kind="rr")
    assert rr.size == 13 and np.all(np.abs(rr - 15.0) < 1.0)


def test_rolling_rates_short_signal_gives_empty_arrays():
    times, rates = rolling_rates(pulse(72, FS, 5.0), FS, window_s=10.0)
    assert times.size == 0 and rates.size == 0


def test_constant_signal_gives_nan_with_reason():
    with pytest.warns(SignalWarning, match="constant"):
        assert np.isnan(heart_rate(np.full(300, 3.0), FS))
    with pytest.warns(SignalWarning, match="constant"):
        assert np.isnan(respiratory_rate(np.zeros(900), FS))
    assert np.isnan(peak_rate(np.ones(50), FS))


def test_too_short_and_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="need at least 16"):
        heart_rate(np.random.default_rng(0).standard_normal(15), FS, preset="mmrphys")
    assert min_samples("toolbox") == 10 and min_samples("mmrphys") == 16
    with pytest.raises(InputError, match="NaN"):
        heart_rate(np.r_[pulse(72, FS, 10.0)[:-1], np.nan], FS)
    with pytest.raises(InputError, match="1-D"):
        heart_rate(np.ones((3, 300)), FS)
    with pytest.raises(InputError, match="fs"):
        heart_rate(pulse(72, FS, 10.0), fs=0)
    with pytest.raises(InputError, match="fs/2"):
        heart_rate(pulse(72, FS, 10.0), fs=5.0)  # 3.3 Hz band edge above Nyquist
    with pytest.raises(ConfigError):
        heart_rate(pulse(72, FS, 10.0), FS, preset="nope")


def test_custom_preset_band_and_order():
    p = get_preset("mmrphys", hr_band=(1.0, 1.5), order=3)
    assert p.order == 3 and p.hr_band == (1.0, 1.5)
    # 72 bpm (1.2 Hz) inside the custom band; a 150 bpm pulse is outside, so the rate stays within the band
    assert abs(heart_rate(pulse(72.0, FS, 20.0), FS, preset=p) - 72.0) < 0.5
    assert 60 <= heart_rate(pulse(150.0, FS, 20.0), FS, preset=p) <= 90
    with pytest.raises(ConfigError):
        get_preset("toolbox", colour="red")


def test_preprocess_rr_is_zscored_for_mmrphys():
    y = preprocess(breathing(15.0, FS, 60.0) * 40 + 7, FS, "mmrphys", kind="rr")
    # z-scored in float64: mean and std of 1800 values of |z| <= 4 round to <= 1800·u·4 ≈ 8e-13
    # (measured 4e-18 and 1.1e-16)
    assert y.mean() == pytest.approx(0, abs=1e-12) and y.std() == pytest.approx(1, abs=1e-12)


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
maybe_nan = st.one_of(finite, st.just(float("nan")), st.just(float("inf")))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=arrays(np.float64, st.integers(0, 400), elements=maybe_nan),
       preset=st.sampled_from(["toolbox", "toolbox-2023", "mmrphys"]),
       refine=st.booleans(), method=st.sampled_from(["fft", "peak"]))
def test_heart_rate_never_crashes_or_leaves_the_band(x, preset, refine, method):
    lo, hi = get_preset(preset).hr_band
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SignalWarning)
            hr = heart_rate(x, FS, preset=preset, refine=refine, method=method)
    except InputError:
        assert x.size < min_samples(preset) or not np.isfinite(x).all()
        return
    assert x.size >= min_samples(preset) and np.isfinite(x).all()
    if method == "fft":
        assert np.isnan(hr) or 60 * lo - 1e-9 <= hr <= 60 * hi + 1e-9
    else:
        assert np.isnan(hr) or hr > 0


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 200), value=finite, kind=st.sampled_from(["hr", "rr"]))
def test_constant_signals_of_any_length_give_nan_or_input_error(n, value, kind):
    fn = heart_rate if kind == "hr" else respiratory_rate
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SignalWarning)
            assert np.isnan(fn(np.full(n, value), FS))
    except InputError:
        assert n < min_samples("mmrphys")


@settings(max_examples=50, deadline=None)
# below ~50 bpm on short windows the 1st-order filter and the detrend attenuate the fundamental until
# its harmonic wins, in the toolbox as here
@given(hr=st.floats(50.0, 180.0), seed=st.integers(0, 10_000), duration=st.floats(8.0, 40.0))
def test_refined_rate_property(hr, seed, duration):
    x = pulse(hr, FS, duration, noise=0.2, seed=seed)
    assert abs(heart_rate(x, FS, preset="toolbox") - hr) <= 0.75
