"""Factorization attention: NMF / TSFM / GRBF maths, matrix layouts, the excitation, label effects."""

from __future__ import annotations

import math

import pytest
import torch
from numerics import LAMBDA, U32

from mmrphys import models
from mmrphys.models.attention import (
    FactorizationAttention,
    constrained_nmf,
    excite,
    from_matrix,
    grbf_constraint,
    label_constraint,
    nmf,
    to_matrix,
)
from numeric_margins import within


def test_reference_layout_is_a_view_without_permute():
    x = torch.arange(2 * 4, dtype=torch.float32).reshape(1, 2, 4, 1, 1)  # C=2, T=4
    ref = to_matrix(x, "reference")
    tm = to_matrix(x, "time_major")
    # reference row 0 = channel 0 at times 0-1 (a time block of one channel), not time step 0
    assert ref[0, 0].tolist() == [0.0, 1.0] and ref[0, 2].tolist() == [4.0, 5.0]
    assert tm[0, 0].tolist() == [0.0, 4.0]  # time-major row 0 = time step 0 of both channels
    for layout in ("reference", "time_major"):
        assert torch.equal(from_matrix(to_matrix(x, layout), x.shape, layout), x)


def test_nmf_recovers_a_rank_one_matrix():
    g = torch.Generator().manual_seed(0)
    v = (torch.rand(2, 30, 1, generator=g) + 0.1) @ (torch.rand(2, 1, 50, generator=g) + 0.1)
    v_hat = nmf(v, rank=1, steps=4)
    # For V = a·bᵀ one H update gives H ∝ b and one W update W ∝ a, so V̂ = V exactly after the first step;
    # what remains is rounding: V itself is a·bᵀ rounded once (u), and 5 H- and 4 W-updates each round
    # two matmuls of length <= 50 and a division: <= 9·(2·λ·√50 + 2)·u ≈ 3.9e-5 relative (λ = 5,
    # tests/models/numerics.py). Measured 6.1e-7 (64x inside); the float64 run differs from V only by
    # V's own rounding (6.9e-8)
    bound = 9 * (2 * LAMBDA * math.sqrt(50) + 2) * U32
    assert within("NMF rank 1 vs V, relative", float(((v_hat - v).abs() / v).max()), bound)
    v_hat64 = nmf(v.double(), rank=1, steps=4)
    err64 = float(((v_hat.double() - v_hat64).abs() / v_hat64).max())
    assert within("NMF rank 1 vs float64, relative", err64, bound)


def test_tsfm_temporal_profile_is_the_scaled_label():
    torch.manual_seed(0)
    t = torch.arange(40, dtype=torch.float32)
    label = torch.stack([torch.sin(t / 3), torch.cos(t / 5) * 3 + 1])
    phi = label_constraint(label)
    # exact: (y − lo)/(hi − lo) is 0/x at the minimum and x/x at the maximum (the same rounded x)
    assert phi.shape == (2, 40, 1) and torch.equal(phi.amin(1), torch.ones(2, 1))
    assert torch.equal(phi.amax(1), torch.full((2, 1), 2.0))
    v = torch.rand(2, 40, 64)
    for rank in (1, 4):  # the RSP head uses rank 4; with one label column it changes nothing
        v_hat = constrained_nmf(v, phi, rank=rank, steps=4)
        # every column of V̂ ∝ 1 + minmax(label), up to rounding (see _off_profile_bound); measured
        # 1.2 u (rank 1) and 1.7 u (rank 4) against 10 u and 25 u
        off = _off_profile(v_hat, phi)
        assert within(f"rank {rank} off the label profile", off, _off_profile_bound(rank))


def test_grbf_bank_and_span():
    assert grbf_constraint(180).shape == (180, 661)
    assert grbf_constraint(160).shape == (160, 589)
    phi = grbf_constraint(40)
    assert torch.equal(phi[:, -1], torch.ones(40)) and float(phi.max()) == 1.0  # exp(0) = 1 exactly
    torch.manual_seed(0)
    v_hat = constrained_nmf(torch.rand(1, 40, 16), phi.expand(1, -1, -1), rank=1, steps=4)[0].double()
    # V̂ = (Φ W) Hᵀ: its columns lie in the span of the RBF dictionary. Φ (40 × 149) has full rank 40 in
    # float64, so every vector is in its exact span; the test uses the numerically dominant part, the
    # left singular vectors with σ > 1e-6·σ_max (12 of 40): a combination Φ·w has at most 1e-6·‖w‖·σ_max
    # outside it, plus float32 rounding of Φ·W (149 terms) and of ·Hᵀ: λ·√149·u + u ≈ 3.7e-6, so
    # <= 5e-6 of max|V̂|. Measured 1.4e-7 (35x inside), while random positive data leave ~0.68 outside.
    left, sing, _ = torch.linalg.svd(phi.double(), full_matrices=False)
    top = left[:, sing > 1e-6 * sing[0]]
    assert 5 <= top.shape[1] <= 20

    def outside(m):
        return float((m - top @ (top.T @ m)).abs().max() / m.abs().max())

    assert within("V̂ outside the RBF span", outside(v_hat), 1e-6 + LAMBDA * math.sqrt(149) * U32 + U32)
    assert outside(torch.rand(40, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))) > 0.3


def test_excite_formula():
    g = torch.Generator().manual_seed(0)
    e, a = torch.randn(2, 3, 4, 2, 2, generator=g), torch.randn(2, 3, 4, 2, 2, generator=g)
    # the definition, in float64
    e64, a64 = e.double(), a.double()
    prod = (e64 - e64.min() + 1) * (a64 - a64.min() + 1)
    centred = prod - prod.mean((2, 3, 4), keepdim=True)
    sd = torch.sqrt(prod.var((2, 3, 4), unbiased=False, keepdim=True) + 1e-5)
    normed = centred / sd
    # float32 rounding: the product (3 roundings) and the instance norm's mean and variance over
    # n = 16 values (λ·√16·u each, relative to max|prod|) shift the normalised values by
    # <= λ·(√16 + 3)·u·max|prod|/sd·(1 + max|z|); the residual add rounds once more (u·max|out|)
    bound = LAMBDA * (4 + 3) * U32 * float((prod.abs().amax((2, 3, 4), keepdim=True) / sd).max()) * (
        1 + float(normed.abs().max())) + U32 * float((e64 + normed).abs().max())
    for residual, ref in ((True, e64 + normed), (False, normed)):
        err = float((excite(e, a, residual=residual).double() - ref).abs().max())
        assert within(f"excite residual={residual}", err, bound)  # measured 5.5e-7 against 4.0e-5 (74x)


def test_module_output_and_one_step_gradient():
    torch.manual_seed(0)
    att = FactorizationAttention(16, "fsam", rank=1, steps=4)
    e = torch.randn(2, 16, 12, 5, 5, requires_grad=True)
    a, v_hat, err = att(e)
    assert a.shape == e.shape and v_hat.shape == (2, 12, 8 * 25)
    # the logged error is ‖X − V̂‖ of the aligned embedding X = ReLU(pre(E − min E)): recomputed in float64
    # from the same float32 X and V̂ it differs only by the float32 norm's rounding over n = 4800 terms,
    # <= λ·√n·u ≈ 2.1e-5 relative (measured 7.7e-8); rank-1 NMF explains part of X (39 % left, measured)
    with torch.no_grad():
        x = torch.nn.functional.relu(att.pre(e - e.min()))
        ref = torch.linalg.vector_norm(x.double() - from_matrix(v_hat, x.shape, att.layout).double())
    assert abs(float(err) - float(ref)) <= LAMBDA * math.sqrt(x.numel()) * U32 * float(ref)
    assert 0.05 < float(ref) / float(torch.linalg.vector_norm(x)) < 0.9
    a.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in att.parameters())
    assert e.grad.abs().sum() > 0


def _off_profile(v_hat: torch.Tensor, phi: torch.Tensor) -> float:
    """Largest part of V̂ (B, D, N) not proportional to the profile phi (B, D, 1), relative to max |V̂|
    (the projection in float64, so that only V̂'s own rounding shows)."""
    v_hat, phi = v_hat.double(), phi.double()
    proj = phi * (phi.transpose(1, 2) @ v_hat) / (phi.transpose(1, 2) @ phi)
    return float((v_hat - proj).abs().max() / v_hat.abs().max())


def _off_profile_bound(rank: int) -> float:
    """V̂ = (Φ W) Hᵀ with Φ one column: each entry is Σ_r (φ_d·w_r)·h_nr, rank + 1 roundings, so
    |ΔV̂| <= (rank + 1)·u·|V̂| (positive terms). Removing the projection onto φ ∈ [1, 2]^D can grow a
    max-norm error by at most 1 + max φ·Σφ/Σφ² <= 1 + 2·2D/D = 5: <= 5·(rank + 1)·u of max|V̂|."""
    return 5 * (rank + 1) * U32


def _labels(seed, b=2, t=20):
    g = torch.Generator().manual_seed(seed)
    return {"bvp": torch.randn(b, t, generator=g), "rsp": torch.randn(b, t, generator=g)}


def test_tsfm_head_depends_on_label_only_in_training():
    torch.manual_seed(0)
    net = models.create("mmrphys_sef", attention="tsfm", dropout=0.0)
    x = torch.rand(2, 3, 21, 9, 9)
    net.train()
    with torch.no_grad():
        a, b = net(x, labels=_labels(1)), net(x, labels=_labels(2))
    for k in ("bvp", "rsp"):
        # another label changes the training output by 6–12 % of its scale (measured); rounding
        # alone moves it by < 3.3e-4 (the float32 bound of this 9×9 network, tests/models/numerics.py)
        assert float((a[k] - b[k]).abs().max()) > 0.01 * float(a[k].abs().max())
    net.eval()
    with torch.no_grad():
        c, d, e = net(x, labels=_labels(1)), net(x, labels=_labels(2)), net(x)
    for k in ("bvp", "rsp"):
        assert torch.equal(c[k], d[k]) and torch.equal(c[k], e[k])


def test_factorized_embedding_follows_label_in_the_model():
    torch.manual_seed(0)
    net = models.create("mmrphys_sef", attention="tsfm", layout="time_major").train()
    labels = _labels(3)
    _, aux = net(torch.rand(2, 3, 21, 9, 9), labels=labels, return_aux=True)
    # BVP head rank 1, RSP head rank 4 (measured 1.4 u and 1.1 u against 10 u and 25 u)
    bvp_off = _off_profile(aux["bvp"]["factorized"].detach(), label_constraint(labels["bvp"]))
    assert within("BVP head off the label profile", bvp_off, _off_profile_bound(1))
    # RSP head: the label is avg-pooled (5, 4, 2) to T/4 = 5 steps before scaling
    pooled = torch.nn.functional.avg_pool1d(labels["rsp"].unsqueeze(1), 5, 4, 2).squeeze(1)
    rsp_off = _off_profile(aux["rsp"]["factorized"].detach(), label_constraint(pooled))
    assert within("RSP head off the label profile", rsp_off, _off_profile_bound(4))
    # ... and not to a different label
    assert _off_profile(aux["bvp"]["factorized"].detach(), label_constraint(_labels(4)["bvp"])) > 1e-2


@pytest.mark.parametrize("kind", ["fsam", "grbf"])
def test_label_free_kinds_can_run_at_inference(kind):
    torch.manual_seed(0)
    on = models.create("mmrphys_sef", tasks=("bvp",), attention=kind, attention_at_inference=True).eval()
    off = models.create("mmrphys_sef", tasks=("bvp",), attention=kind).eval()
    off.load_state_dict(on.state_dict())
    x = torch.rand(1, 3, 21, 9, 9)
    with torch.no_grad():
        a, b = on(x)["bvp"], off(x)["bvp"]
    # attention at inference changes the output by 18–25 % of its scale (measured), rounding by < 3.3e-4
    assert float((a - b).abs().max()) > 0.05 * float(b.abs().max())
    with pytest.raises(Exception, match="TSFM cannot run at inference"):
        models.create("mmrphys_sef", attention="tsfm", attention_at_inference=True)
