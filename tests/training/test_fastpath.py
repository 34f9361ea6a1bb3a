"""The fast training engine computes the reference network's loss and gradients; safe precision choice."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import numeric_margins
from mmrphys import models
from mmrphys.errors import ConfigError
from mmrphys.models.layers import ConvBlock3D
from mmrphys.training import fastpath
from mmrphys.training.losses import smooth_l1, zscore

CL = torch.channels_last_3d


@pytest.fixture
def eager_kernels(monkeypatch):
    """The fused functions without torch.compile (the same math; compiling is tested separately)."""
    k = fastpath._Kernels()
    k.fwd, k.bwd, k.compiled = fastpath.tanh_instance_norm_fwd, fastpath.tanh_instance_norm_bwd, False
    monkeypatch.setattr(fastpath, "KERNELS", k)
    return k


def _reference_block(c):
    return F.instance_norm(torch.tanh(c), eps=1e-5)


def test_fused_tanh_instance_norm_equals_autograd_in_float64(eager_kernels):
    g = torch.Generator().manual_seed(0)
    c = (2 * torch.randn(2, 5, 6, 7, 8, generator=g, dtype=torch.float64)).contiguous(memory_format=CL)
    w = torch.randn(c.shape, generator=g, dtype=torch.float64)  # a generic downstream gradient
    c1 = c.clone().requires_grad_(True)
    c2 = c.clone().requires_grad_(True)
    z1 = _reference_block(c1)
    z2 = fastpath.tanh_instance_norm(c2)
    (z1 * w).sum().backward()
    (z2 * w).sum().backward()
    # float64 throughout: both are the same function of c; only rounding of ~1e-16 per op remains
    # (a few hundred ops deep, values O(1), reductions over 336 voxels): 1e-12 leaves a wide margin
    assert z2.dtype == torch.float64 and z2.is_contiguous(memory_format=CL)
    numeric_margins.record("fused vs autograd output, abs", (z1 - z2).detach().abs().max(), 1e-12)
    numeric_margins.record("fused vs autograd gradient, abs", (c1.grad - c2.grad).abs().max(), 1e-12)
    assert torch.allclose(z1, z2, rtol=0, atol=1e-12)
    assert torch.allclose(c1.grad, c2.grad, rtol=0, atol=1e-12)


def _lossgrad(model, x, labels, forward):
    model.zero_grad(set_to_none=True)
    pred = forward(x, labels)
    loss = sum(smooth_l1(pred[t].float(), labels[t]) for t in labels)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return float(loss.detach()), grads


def _sef_case(dtype=torch.float32):
    torch.manual_seed(3)
    model = models.create("mmrphys_sef", tasks=("bvp", "rsp"), attention="tsfm", dropout=0.0).to(dtype)
    model.train()
    g = torch.Generator().manual_seed(4)
    x = (100 + 10 * torch.rand(2, 3, 33, 9, 9, generator=g)).to(dtype)
    t = torch.arange(32, dtype=dtype) / 30
    labels = {"bvp": zscore(torch.sin(2 * torch.pi * 1.3 * t).repeat(2, 1)),
              "rsp": zscore(torch.sin(2 * torch.pi * 0.3 * t).repeat(2, 1))}
    return model, x, labels


def _fast_vs_reference(dtype):
    model, x, labels = _sef_case(dtype)
    fast = copy.deepcopy(model)
    swapped = fastpath.swap_conv_blocks(fast)
    assert len(swapped) == sum(isinstance(m, ConvBlock3D) for m in model.modules()) == 16
    # TSFM draws its factor init from the global RNG: the same draws on both sides
    torch.manual_seed(5)
    l_ref, g_ref = _lossgrad(model, x, labels, lambda a, b: model(a, labels=b))
    torch.manual_seed(5)
    l_fast, g_fast = _lossgrad(fast, x, labels, lambda a, b: fast(a, labels=b))
    return model, fast, swapped, (l_ref, g_ref), (l_fast, g_fast)


def test_fast_engine_gives_the_reference_gradients_float64(eager_kernels):
    model, fast, swapped, (l_ref, g_ref), (l_fast, g_fast) = _fast_vs_reference(torch.float64)
    assert g_ref.keys() == g_fast.keys() and len(g_ref) == 26
    # float64: the two graphs differ only in operation order; ~1e-16 per op, network depth ~20 convs
    # with 27-432-term sums and O(1) activations, so 1e-9 relative is far above rounding and far below
    # any real difference
    numeric_margins.record("loss, abs", l_ref - l_fast, 1e-9 * abs(l_ref))
    assert abs(l_ref - l_fast) < 1e-9 * abs(l_ref)
    for k in g_ref:
        scale = g_ref[k].abs().max()
        assert numeric_margins.within(f"grad {k}, abs", (g_ref[k] - g_fast[k]).abs().max(), 1e-9 * scale), k
    fastpath.restore_conv_blocks(swapped)
    assert [type(m) for m in fast.modules()] == [type(m) for m in model.modules()]
    assert fast.state_dict().keys() == model.state_dict().keys()


def test_fast_engine_gradients_float32_within_rounding(eager_kernels):
    _, _, _, (l_ref, g_ref), (l_fast, g_fast) = _fast_vs_reference(torch.float32)
    # float32 (eps 1.2e-7): each conv output sums 27·C_in ≤ 432 products, instance norm sums ~600
    # voxels, ~20 layers forward and back; errors grow ~sqrt(n) per sum and add per layer, giving a
    # few 1e-5 relative in the worst case. The bound 2e-3 of each tensor's largest gradient leaves
    # 100x margin (measured 2e-5 here) against a CPU that sums in another order.
    numeric_margins.record("loss, abs", l_ref - l_fast, 1e-4 * abs(l_ref))
    assert abs(l_ref - l_fast) < 1e-4 * abs(l_ref)
    for k in g_ref:
        scale = g_ref[k].abs().max()
        assert numeric_margins.within(f"grad {k}, abs", (g_ref[k] - g_fast[k]).abs().max(), 2e-3 * scale), k


def test_bf16_split_keeps_heads_fp32_and_the_loss_close(eager_kernels):
    model, x, labels = _sef_case()
    ours = copy.deepcopy(model)
    fastpath.swap_conv_blocks(ours)
    step = fastpath.TrainForward(ours, "bf16", torch.device("cpu"))
    dtypes = {}

    def record(name):
        def hook(mod, inp, out):
            dtypes.setdefault(name, out.dtype)

        return hook

    for name, m in ours.named_modules():
        if isinstance(m, torch.nn.Conv3d):
            m.register_forward_hook(record(name))
    torch.manual_seed(5)
    l_ref, g_ref = _lossgrad(model, x, labels, lambda a, b: model(a, labels=b))
    torch.manual_seed(5)
    l_bf, g_bf = _lossgrad(ours, x, labels, step)
    assert dtypes["bvp_extractors.0.0.conv"] == torch.bfloat16
    assert dtypes["rsp_head.convs.0.0.conv"] == torch.bfloat16
    assert dtypes["bvp_head.final.2"] == torch.float32 and dtypes["rsp_head.attention.pre"] == torch.float32
    assert all(g.dtype == torch.float32 for g in g_bf.values())
    # bf16 keeps 8 significant bits (relative rounding 2^-9 = 2e-3 per value); the z-scored SmoothL1
    # loss averages that over 2x32 samples per task. Measured: 1e-3 relative loss difference and a
    # gradient cosine of 0.9999; the bounds (2 % and 0.99) leave 20x and 80x margins
    numeric_margins.record("bf16 loss, abs", l_ref - l_bf, 0.02 * abs(l_ref))
    assert abs(l_ref - l_bf) < 0.02 * abs(l_ref)
    a = torch.cat([g_ref[k].flatten() for k in g_ref])
    b = torch.cat([g_bf[k].flatten() for k in g_ref])
    cosine = float(F.cosine_similarity(a, b, dim=0))
    numeric_margins.record("bf16 gradient 1 - cosine", 1 - cosine, 0.01)
    assert cosine > 0.99


@pytest.mark.slow
def test_compiled_kernels_match_float64():
    k = fastpath._Kernels()
    fwd, bwd = k.get()
    if not k.compiled:
        pytest.skip("torch.compile is not available here")
    g = torch.Generator().manual_seed(1)
    c = (2 * torch.randn(2, 16, 20, 17, 17, generator=g)).contiguous(memory_format=CL)
    gz = torch.randn(c.shape, generator=g).contiguous(memory_format=CL)
    z, mean, rstd = fwd(c, 1e-5)
    gc = bwd(gz, z, mean, rstd)
    z64, m64, r64 = fastpath.tanh_instance_norm_fwd(c.double(), 1e-5)
    gc64 = fastpath.tanh_instance_norm_bwd(gz.double(), z64, m64, r64)
    # float32 vs float64 of the same formula: z is O(1) with sums over 5780 voxels (error ~1e-6);
    # the gradient subtracts two means of that size; 1e-4 absolute is ~50x the expected error
    numeric_margins.record("compiled output vs float64, abs", (z.double() - z64).abs().max(), 1e-4)
    numeric_margins.record("compiled gradient vs float64, abs", (gc.double() - gc64).abs().max(),
                           1e-4 * gc64.abs().max())
    assert (z.double() - z64).abs().max() < 1e-4
    assert (gc.double() - gc64).abs().max() < 1e-4 * gc64.abs().max()


def test_native_bf16_comes_from_the_cpu_flags(tmp_path, monkeypatch):
    flags = tmp_path / "cpuinfo"
    flags.write_text("processor: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n")
    assert fastpath.cpu_has_native_bf16(flags) is torch.backends.mkldnn.is_available()
    flags.write_text("processor: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert fastpath.cpu_has_native_bf16(flags) is False
    assert fastpath.cpu_has_native_bf16(tmp_path / "missing") is False


def test_precision_resolution(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    assert fastpath.resolve_precision({"precision": "auto"}, cpu) == "bf16"
    assert fastpath.resolve_precision({"precision": "auto"}, cuda) == "fp32"
    assert fastpath.resolve_precision({"precision": "fp32"}, cpu) == "fp32"
    assert fastpath.resolve_precision({"precision": "auto", "amp": True}, cuda) == "fp16"
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: False)
    assert fastpath.resolve_precision({"precision": "auto"}, cpu) == "fp32"
    assert fastpath.resolve_precision({"precision": "bf16"}, cpu) == "bf16"  # explicit: as asked
    with pytest.raises(ConfigError, match="train.amp"):
        fastpath.resolve_precision({"precision": "fp32", "amp": True}, cpu)
