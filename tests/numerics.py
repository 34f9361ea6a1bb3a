"""Tolerances for comparing two float32 implementations of one network, derived, not tuned.

Derivation. Two implementations of a network (the module and its NDHWC / compiled form; or the
same code on two CPUs, whose oneDNN/MKL kernels sum in another order) differ only by rounding.
Each weight layer computes dot products of ``K`` terms (a conv: in_channels x kernel volume) and
each instance norm sums ``N`` terms (frames x height x width). With rounding errors behaving as a
random walk, a dot product carries a relative error of about sqrt(K)·u and a blocked or pairwise
sum about log2(N)·u, where u = 2^-24 ≈ 6.0e-8 is float32's unit roundoff (machine eps / 2). Tanh
is 1-Lipschitz and every instance (or batch) norm rescales to unit variance, so the relative
errors of successive layers add up over the depth L instead of growing geometrically:
eps_1 ≈ L·(sqrt(K_max) + log2(N_max))·u for one implementation. Two implementations: x2.
The worst of ~10^4 output samples sits ~4 sigma out, and neighbouring errors are correlated: x4.

    bound_raw = 8 · L · (sqrt(K_max) + log2(N_max)) · u · max|y_ref|

with L counted as the number of weight layers (an upper bound on the depth) and N_max the
input's T·H·W (no activation is larger). MMRPhys-LEF at 181x72x72: L = 20 (both branches),
K_max = 432, N_max = 938,304: 8·20·(20.8 + 19.8)·6.0e-8 = 3.9e-4 of the output's peak. Measured
differences are 1e-6 to 1e-5 of the peak (see each test), so a 2x (or 10x) change between CPUs
stays inside.

Z-scored outputs z = (y - mean)/std move by about |Δy|/std (the shifts of mean and std are
averages of Δy, of the same order): bound_z = 2 · bound_raw / std(y_ref), per window. Where a
network's output is nearly constant (untrained weights), std is small and the z-scored
comparison is ill-conditioned; the raw comparison is the one that says "same outputs".
"""

from __future__ import annotations

import math

import torch
from torch import nn

U = 2.0**-24  # float32 unit roundoff
_WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose3d, nn.Linear)


def relative_bound(model: nn.Module, x: torch.Tensor) -> float:
    """``bound_raw / max|y_ref|`` of the module docstring for ``model`` on input ``x``."""
    layers = [m for m in model.modules() if isinstance(m, _WEIGHT_LAYERS)]
    k_max = max(m.weight[0].numel() for m in layers)
    n_max = x[0, 0].numel()
    return 8 * len(layers) * (math.sqrt(k_max) + math.log2(n_max)) * U


def _z(v: torch.Tensor) -> torch.Tensor:
    v = v.double()
    return (v - v.mean(-1, keepdim=True)) / v.std(-1, keepdim=True)


def compare(out: dict, ref: dict, model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Check ``out`` against ``ref`` on raw and z-scored outputs; returns the measured fraction of
    each bound used (``raw``, ``z``: 1.0 = at the bound) so that tests can report the margin."""
    assert set(out) == set(ref)
    rel = relative_bound(model, x)
    used = {"raw": 0.0, "z": 0.0}
    for task in ref:
        a, b = out[task].double(), ref[task].double()
        assert a.shape == b.shape and torch.isfinite(a).all()
        bound_raw = rel * float(b.abs().max())
        used["raw"] = max(used["raw"], float((a - b).abs().max()) / bound_raw)
        bound_z = 2 * bound_raw / b.std(-1)  # per window
        used["z"] = max(used["z"], float(((_z(a) - _z(b)).abs().amax(-1) / bound_z).max()))
    assert used["raw"] <= 1.0, f"raw outputs differ by {used['raw']:.2f} of the float32 bound ({rel:.1e})"
    assert used["z"] <= 1.0, f"z-scored outputs differ by {used['z']:.2f} of the float32 bound"
    return used
