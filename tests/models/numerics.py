"""Float32 error bounds for network outputs, derived from the computation (test helper).

A float32 network output differs from the same network in float64 (the reference: exact up to ~1e-16)
by rounding in every reduction: each dot product of length K (a conv or linear layer: K = in_channels ×
kernel volume) and each normalisation over n elements (instance/layer norm: n = T·H·W or the feature
size). With unit roundoff u = 2⁻²⁴ ≈ 6e-8, the deterministic worst case of a length-n sum is n·u, far too
pessimistic for n ≈ 10⁶ (instance norms at 72×72); rounding errors are independent and zero-mean, and
then |error| <= λ·√n·u·(sum of magnitudes) with probability >= 1 − 2·exp(−λ²/2) (Higham & Mary, SIAM J.
Sci. Comput. 2019); λ = 5 gives >= 1 − 7.5e-6 per reduction. Each layer works on unit-scale activations
(Tanh then instance norm, or batch-normalised ones), so its relative error passes on with gain ~1 and
the errors of successive layers add:

    ‖y32 − y64‖∞ / ‖y64‖∞  <=  λ · u · Σ_layers (√K + √n)

summed over every reducing layer the forward pass runs (both branches: an overestimate for each
output). Two float32 implementations (ours, onnxruntime) are each within that of the float64 output,
so within twice of each other. A z-scored comparison divides by the output's std and shifts by its
mean: |Δz| <= (2 + max|z|) · ‖Δy‖∞ / std(y).

Reductions written as tensor ops rather than modules (EfficientPhys' mask sums, PhysNet's spatial
mean, BigSmall's clip standardisation) are added by :func:`_functional_reductions`.

Measured on the machine this was written on (x86-64, torch 2.13 CPU, onnxruntime, 1 thread): ours within
~1e-6 of float64 and the authors' 72×72 ONNX within ~8e-6 (its instance norms round more), against
bounds of 1.7e-4 to 1.6e-3: >= 35x margin everywhere, >= 190x for the MMRPhys/ONNX parity tests, so
kernels that sum in another order (another CPU, another ISA) stay far inside.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from numeric_margins import record

U32 = 2.0**-24
LAMBDA = 5.0


def float32_relative_bound(net: nn.Module, x: torch.Tensor, extra_sizes=()) -> float:
    """λ·u·Σ(√K + √n) over the reductions a forward pass of ``net`` on ``x`` performs (plus any
    ``extra_sizes``: reductions done outside modules, e.g. a per-clip standardisation)."""
    terms: list[float] = [math.sqrt(n) for n in extra_sizes]

    def hook(module, _inputs, output):
        out = output[0] if isinstance(output, (tuple, list)) else output
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            terms.append(math.sqrt(module.weight[0].numel()))
        elif isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            # each output sums at most in_channels × kernel volume products
            terms.append(math.sqrt(module.weight.shape[0] * math.prod(module.weight.shape[2:])))
        elif isinstance(module, (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)):
            terms.append(math.sqrt(math.prod(out.shape[2:])))
        elif isinstance(module, nn.LayerNorm):
            terms.append(math.sqrt(math.prod(module.normalized_shape)))
        elif type(module).__name__ == "DiffNormalize":  # functional instance norm over T·H·W
            terms.append(math.sqrt(math.prod(out.shape[2:])))

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    assert terms, "no reducing layer seen"
    terms += [math.sqrt(n) for n in _functional_reductions(net, x)]
    return LAMBDA * U32 * sum(terms)


def _functional_reductions(net: nn.Module, x) -> list[int]:
    """Lengths (upper bounds) of the reductions some networks write as tensor ops in ``forward``."""
    if not torch.is_tensor(x):
        return []
    c, t, hw = x.shape[1], x.shape[2] - 1, x.shape[-1] * x.shape[-2]
    name = type(net).__name__
    if name == "EfficientPhys":
        return [hw, hw]  # each attention mask is normalised by its sum over a frame
    if name == "PhysNet":
        return [hw]  # the final spatial mean
    if name == "BigSmall":  # prepare_inputs standardises each clip's big and small streams
        return [c * t * net.big_size**2, c * t * net.small_size**2]
    return []


def float64_outputs(net: nn.Module, x) -> dict[str, np.ndarray]:
    """The outputs of a float64 copy of ``net`` (eval mode) on ``x`` (a tensor or a dict of tensors)
    promoted to float64."""
    ref = copy.deepcopy(net).double().eval()
    x = {k: v.double() for k, v in x.items()} if isinstance(x, dict) else x.double()
    with torch.no_grad():
        return {k: v.numpy() for k, v in ref(x).items()}


def zscore(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return (a - a.mean(-1, keepdims=True)) / a.std(-1, keepdims=True)


def errors(got: np.ndarray, ref64: np.ndarray) -> tuple[float, float, float]:
    """(raw error relative to max|ref|, z-scored error, the z bound factor (2 + max|z|)·max|ref|/std)."""
    got, ref64 = np.asarray(got, np.float64), np.asarray(ref64, np.float64)
    scale = float(np.abs(ref64).max())
    raw = float(np.abs(got - ref64).max()) / scale
    z = float(np.abs(zscore(got) - zscore(ref64)).max())
    z_factor = float(((2 + np.abs(zscore(ref64)).max(-1)) * np.abs(ref64).max(-1) / ref64.std(-1)).max())
    return raw, z, z_factor


def onnx_vs_float64(session, net: nn.Module, x: torch.Tensor, ref64: dict | None = None,
                    float64: bool = True) -> dict:
    """Per output: errors of our float32 forward and of onnxruntime against the float64 forward, and of
    the two float32 paths against each other: ``{task: {"ours": (raw, z), "onnx": ..., "pair": ...,
    "z_factor": f}}`` (raw relative to max|y64|; see :func:`errors`). ``float64=False`` skips the float64
    forward (slow for 72×72 clips) and reports the pair only, scaled by our float32 output."""
    from mmrphys.models.export import inference_copy, run_onnx

    net = inference_copy(net)
    with torch.no_grad():
        ours = {k: v.numpy() for k, v in net(x).items()}
    onnx = run_onnx(session, x.numpy())
    if ref64 is None and float64:
        ref64 = float64_outputs(net, x)
    out = {}
    for k in ours:
        p_raw, p_z, z_factor = errors(onnx[k], ours[k])
        out[k] = {"pair": (p_raw, p_z), "z_factor": z_factor}
        if ref64 is not None:
            o_raw, o_z, z_factor = errors(ours[k], ref64[k])
            out[k].update(ours=(o_raw, o_z), onnx=errors(onnx[k], ref64[k])[:2], z_factor=z_factor)
    return out


def check_within(report: dict, bound: float, required: float = 1.0) -> float:
    """Assert every error of an :func:`onnx_vs_float64` report is inside ``bound`` (raw) or its z-scored
    counterpart (the pair within twice); return the smallest margin bound/error seen. ``required``: the
    margin the caller asserts on the result (only recorded, tests/numeric_margins.py)."""
    margins = []
    for k, r in report.items():
        zb = r["z_factor"] * bound
        for name, (raw, z) in ((n, r[n]) for n in ("ours", "onnx", "pair") if n in r):
            f = 2 if name == "pair" else 1
            record(f"{k} {name} raw", raw, f * bound, required)
            record(f"{k} {name} z-scored", z, f * zb, required)
            assert raw <= f * bound, f"{k} {name}: raw {raw:.3g} > {f * bound:.3g}"
            assert z <= f * zb, f"{k} {name}: z-scored {z:.3g} > {f * zb:.3g}"
            margins += [f * bound / max(raw, 1e-300), f * zb / max(z, 1e-300)]
    return min(margins)
