import numpy as np
import pytest
from scipy import signal
from scipy.sparse import spdiags

from mmrphys.errors import InputError
from mmrphys.signals.filters import bandpass, detrend


def dense_detrend(x, lam):
    """The toolbox's formula: (I - inv(I + lam² DᵀD)) x with a dense inverse."""
    n = x.shape[0]
    eye = np.identity(n)
    data = np.array([np.ones(n), -2 * np.ones(n), np.ones(n)])
    d = spdiags(data, np.array([0, 1, 2]), n - 2, n).toarray()
    return (eye - np.linalg.inv(eye + lam**2 * d.T @ d)) @ x


@pytest.mark.parametrize("n", [3, 4, 5, 17, 300])
@pytest.mark.parametrize("lam", [1.0, 100.0])
def test_detrend_equals_dense_reference(n, lam):
    x = np.random.default_rng(n).standard_normal(n).cumsum()
    np.testing.assert_allclose(detrend(x, lam), dense_detrend(x, lam), atol=1e-8 * max(1, np.abs(x).max()))


def test_detrend_2d_columns_match_1d():
    x = np.random.default_rng(1).standard_normal((200, 3)).cumsum(axis=0)
    out = detrend(x)
    assert out.shape == (200, 3)
    for c in range(3):
        np.testing.assert_allclose(out[:, c], detrend(x[:, c]), atol=1e-10)


def test_detrend_removes_linear_trend_exactly_and_keeps_pulse():
    fs = 30.0
    t = np.arange(1800) / fs
    pulse = np.sin(2 * np.pi * 1.2 * t)
    out = detrend(pulse + 5 + 0.3 * t)
    # second differences of a line are zero, so a line is all trend; the 1.2 Hz pulse passes (~0.6 dB loss)
    np.testing.assert_allclose(out[300:-300], pulse[300:-300], atol=0.1)


def test_detrend_long_signal_is_linear_time():
    x = np.random.default_rng(0).standard_normal(54_000)
    out = detrend(x)  # a dense N×N inverse would need 23 GB here
    assert out.shape == x.shape and np.isfinite(out).all()


def test_bandpass_matches_scipy_and_is_zero_phase():
    fs = 30.0
    t = np.arange(600) / fs
    x = np.sin(2 * np.pi * 1.5 * t)
    b, a = signal.butter(2, [0.6 / fs * 2, 3.3 / fs * 2], btype="bandpass")
    np.testing.assert_allclose(bandpass(x, fs, 0.6, 3.3, 2), signal.filtfilt(b, a, x))
    y = bandpass(x, fs, 0.6, 3.3, 2)
    lag = np.argmax(signal.correlate(y[100:-100], x[100:-100], mode="full")) - (x.size - 201)
    assert lag == 0


@pytest.mark.parametrize("order", [1, 2, 3])
def test_bandpass_too_short_raises_clear_error(order):
    padlen = 3 * (2 * order + 1)
    with pytest.raises(InputError, match="need at least"):
        bandpass(np.ones(padlen), 30.0, 0.6, 3.3, order)
    assert bandpass(np.random.default_rng(0).standard_normal(padlen + 1), 30.0, 0.6, 3.3, order).shape == (
        padlen + 1,)


@pytest.mark.parametrize("bad", [np.array([1.0, np.nan] * 20), np.ones((5, 8)), "abc"])
def test_bad_inputs_raise_input_error(bad):
    with pytest.raises(InputError):
        bandpass(bad, 30.0, 0.6, 3.3)
    with pytest.raises(InputError):
        detrend(bad if not isinstance(bad, np.ndarray) or bad.ndim == 1 else np.ones((2, 3, 4)))


@pytest.mark.parametrize("band", [(0.0, 3.3), (3.3, 0.6), (0.6, 15.0), (0.6, 20.0)])
def test_bad_band_raises(band):
    with pytest.raises(InputError, match="fs/2"):
        bandpass(np.ones(100), 30.0, *band)
