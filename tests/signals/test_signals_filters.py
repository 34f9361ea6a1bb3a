import numpy as np
import pytest
from scipy import linalg, signal, sparse
from scipy.sparse import spdiags

from mmrphys.errors import InputError
from mmrphys.signals.filters import _second_difference_normal_bands, bandpass, detrend
from numeric_margins import within


def dense_detrend(x, lam):
    """The toolbox's formula: (I - inv(I + lam² DᵀD)) x with a dense inverse."""
    n = x.shape[0]
    eye = np.identity(n)
    data = np.array([np.ones(n), -2 * np.ones(n), np.ones(n)])
    d = spdiags(data, np.array([0, 1, 2]), n - 2, n).toarray()
    return (eye - np.linalg.inv(eye + lam**2 * d.T @ d)) @ x


U = np.finfo(np.float64).eps / 2  # unit roundoff


def solve_error_bound(x, lam):
    """Two float64 solves of (I + λ²DᵀD) z = x differ by <= 2·c·κ·u·‖x‖₂: κ <= 1 + λ²‖D‖² <= 1 + 16λ²
    (‖D‖₂ <= 4), c = 9 for a backward-stable factorisation of a half-bandwidth-2 matrix (γ_{3(b+1)}),
    ‖z‖ <= ‖x‖ as I + λ²DᵀD ⪰ I. The dense inverse is no worse here (measured <= 0.2·κ·u·‖x‖₂)."""
    return 2 * 9 * (1 + 16 * lam**2) * U * np.linalg.norm(x)


@pytest.mark.parametrize("n", [3, 4, 5, 17, 300])
@pytest.mark.parametrize("lam", [1.0, 100.0])
def test_detrend_equals_dense_reference(n, lam):
    x = np.random.default_rng(n).standard_normal(n).cumsum()
    # measured <= 0.2·κ·u·‖x‖₂ (8.7e-12 for n = 300, λ = 100): >= 90x inside
    err = np.abs(detrend(x, lam) - dense_detrend(x, lam)).max()
    assert within("banded vs dense detrend, abs", err, solve_error_bound(x, lam))


def test_detrend_2d_columns_match_1d():
    x = np.random.default_rng(1).standard_normal((200, 3)).cumsum(axis=0)
    out = detrend(x)
    assert out.shape == (200, 3)
    for c in range(3):
        # one banded solve with 3 right-hand sides vs three with one (bit-equal here; a BLAS may block
        # the columns differently, so the bound of two solves)
        err = np.abs(out[:, c] - detrend(x[:, c])).max()
        assert within(f"column {c}: 2-D vs 1-D detrend, abs", err, solve_error_bound(x[:, c], 100.0))


def test_detrend_removes_linear_trend_exactly_and_keeps_pulse():
    fs, lam = 30.0, 100.0
    t = np.arange(1800) / fs
    pulse = np.sin(2 * np.pi * 1.2 * t)
    out = detrend(pulse + 5 + 0.3 * t)
    # Second differences of a line are zero, so the line is all trend. A sine of angular step ω passes
    # with the gain H = q/(1 + q), q = λ²(2 − 2cos ω)², 0.9753 at 1.2 Hz (−0.22 dB); away from the ends.
    # The smoother's homogeneous solutions decay as |r|ⁿ with |r| ≈ 1 − 1/√(2λ) (r + 1/r = 2 ± i/λ), so
    # 300 samples in, an edge misfit of order 1 is down to exp(−300/√(2λ)) = 6e-10; measured 2.8e-10
    w = 2 * np.pi * 1.2 / fs
    q = lam**2 * (2 - 2 * np.cos(w)) ** 2
    gain = q / (1 + q)
    assert gain == pytest.approx(0.9753, abs=1e-4)
    assert np.abs(out[300:-300] - gain * pulse[300:-300]).max() <= 10 * np.exp(-300 / np.sqrt(2 * lam))


def test_detrend_long_signal_is_linear_time():
    lam = 100.0
    x = np.random.default_rng(0).standard_normal(54_000)
    out = detrend(x, lam)  # a dense N×N inverse would need 23 GB here
    # The trend z = x − out solves A z = x, A = I + λ²DᵀD. Banded Cholesky (half-bandwidth p = 2) is
    # backward stable: (A + ΔA) ẑ = x with |ΔA| <= γ_{3(p+1)+1}·|Rᵀ||R| (Higham, Thm 10.4), and here
    # ‖|Rᵀ||R|‖∞ = ‖A‖∞ = 1 + 16λ² (checked below); the check's own sparse product rounds by
    # <= γ_5·‖A‖∞·‖z‖∞. So ‖A ẑ − x‖∞ <= (10 + 5)·u·‖A‖∞·‖z‖∞ = 2.7e-10·‖z‖∞; measured 2.4·u·‖A‖∞·‖z‖∞
    n = x.size
    d = sparse.diags([np.ones(n - 2), -2 * np.ones(n - 2), np.ones(n - 2)], [0, 1, 2], shape=(n - 2, n))
    a = (sparse.identity(n) + lam**2 * (d.T @ d)).tocsr()
    norm_a = 1 + 16 * lam**2
    assert abs(a).sum(axis=1).max() == pytest.approx(norm_a, rel=1e-12)
    r = linalg.cholesky_banded(_second_difference_normal_bands(n, lam), lower=False)
    r = abs(sparse.diags([r[2], r[1, 1:], r[0, 2:]], [0, 1, 2], shape=(n, n)).tocsr())
    assert (r.T @ r).sum(axis=1).max() <= norm_a * (1 + 1e-9)
    trend = x - out
    assert np.abs(a @ trend - x).max() <= 15 * U * norm_a * np.abs(trend).max() + U * np.abs(x).max()
    # the trend is white noise through 1/(1 + q(ω)): std = √(∫₀^π (1 + q)⁻² dω/π) for unit
    # noise (0.163); 54,000 samples estimate it to ~2 % (effective N ≈ 54,000·0.03); measured 0.1655
    w = np.linspace(0, np.pi, 200_001)
    expected = np.sqrt(np.mean((1 / (1 + lam**2 * (2 - 2 * np.cos(w)) ** 2)) ** 2))  # the mean over [0, π]
    assert np.std(trend) == pytest.approx(expected, rel=0.1)


def test_bandpass_matches_scipy_and_is_zero_phase():
    fs = 30.0
    t = np.arange(600) / fs
    x = np.sin(2 * np.pi * 1.5 * t)
    b, a = signal.butter(2, [0.6 / fs * 2, 3.3 / fs * 2], btype="bandpass")
    # the same SciPy design and filtfilt on the same array: bit-equal on any machine
    np.testing.assert_array_equal(bandpass(x, fs, 0.6, 3.3, 2), signal.filtfilt(b, a, x))
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
