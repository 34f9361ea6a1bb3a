"""Smoothness-priors detrend (λ = 100): our O(N) banded solve vs the toolbox's dense N×N inverse.

Usage: python benchmarks/detrend.py [--threads 1] [--dense-max 2400]

The dense reference builds ``(I - inv(I + λ² DᵀD)) @ x`` with NumPy exactly as the rPPG-Toolbox does. It is
timed up to ``--dense-max`` samples and extrapolated to larger N with a fitted power law; at N = 54,000 it
is infeasible here (each N×N float64 matrix is 23.3 GB and the formula holds several). BLAS threads are set
before NumPy loads (default 1, the fair comparison on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (set before NumPy loads)")
    ap.add_argument("--dense-max", type=int, default=2400, help="largest N to time the dense reference at")
    ap.add_argument("--repeats", type=int, default=3)
    return ap.parse_args()


ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
from scipy.sparse import spdiags  # noqa: E402

from mmrphys.signals.filters import detrend  # noqa: E402


def dense_detrend(x: np.ndarray, lam: float = 100.0) -> np.ndarray:
    """The toolbox's formula, dense."""
    n = x.shape[0]
    eye = np.identity(n)
    data = np.array([np.ones(n), -2 * np.ones(n), np.ones(n)])
    d = spdiags(data, np.array([0, 1, 2]), n - 2, n).toarray()
    return (eye - np.linalg.inv(eye + lam**2 * d.T @ d)) @ x


def best_time(fn, x, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    args = ARGS or _args()
    rng = np.random.default_rng(0)
    print(f"threads: BLAS/OpenMP = {os.environ.get('OPENBLAS_NUM_THREADS')}, CPUs visible = {os.cpu_count()}")
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}")
    x = rng.standard_normal(1800).cumsum()
    err = np.abs(detrend(x) - dense_detrend(x)).max()
    print(f"max |ours - dense| at N=1800: {err:.2e} (signal std {x.std():.1f})")

    dense_n = [n for n in (300, 600, 1200, 1800, 2400, 3600) if n <= args.dense_max]
    dense_t = []
    print("\n      N   dense (s)   ours (s)")
    for n in dense_n:
        x = rng.standard_normal(n)
        td = best_time(dense_detrend, x, 1 if n > 1200 else args.repeats)
        to = best_time(detrend, x, args.repeats)
        dense_t.append(td)
        print(f"{n:7d} {td:11.4f} {to:10.5f}")
    # extrapolate with the inverse's O(N³) from the largest measured N (the local fit exponent, which
    # cache effects and machine load push above 3, is printed too)
    b_fit = np.polyfit(np.log(dense_n[-3:]), np.log(dense_t[-3:]), 1)[0]
    n_ref, t_ref = dense_n[-1], dense_t[-1]
    print(f"(fitted exponent over N = {dense_n[-3:]}: {b_fit:.2f}; extrapolating with N^3 from N = {n_ref})")
    for n in (54_000, 108_000, 216_000):
        x = rng.standard_normal(n)
        to = best_time(detrend, x, args.repeats)
        td = t_ref * (n / n_ref) ** 3
        mem_gb = n * n * 8 / 1e9
        label = {54_000: "30 min @ 30 fps", 108_000: "30 min @ 60 fps", 216_000: "2 h @ 30 fps"}[n]
        print(f"{n:7d}  dense ≈ {td:9.0f} s = {td / 3600:.0f} h (one N×N matrix = {mem_gb:.0f} GB)"
              f"   ours {to:.4f} s   [{label}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
