"""Factorization attention: NMF / TSFM / GRBF maths, matrix layouts, the excitation, label effects."""

from __future__ import annotations

import pytest
import torch

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
    assert torch.allclose(v_hat, v, rtol=1e-4, atol=1e-5)


def test_tsfm_temporal_profile_is_the_scaled_label():
    torch.manual_seed(0)
    t = torch.arange(40, dtype=torch.float32)
    label = torch.stack([torch.sin(t / 3), torch.cos(t / 5) * 3 + 1])
    phi = label_constraint(label)
    assert phi.shape == (2, 40, 1) and torch.allclose(phi.amin(1), torch.ones(2, 1))
    assert torch.allclose(phi.amax(1), torch.full((2, 1), 2.0))
    v = torch.rand(2, 40, 64)
    for rank in (1, 4):  # the RSP head uses rank 4; with one label column it changes nothing
        v_hat = constrained_nmf(v, phi, rank=rank, steps=4)
        assert _off_profile(v_hat, phi) < 1e-5  # every column of V̂ ∝ 1 + minmax(label)


def test_grbf_bank_and_span():
    assert grbf_constraint(180).shape == (180, 661)
    assert grbf_constraint(160).shape == (160, 589)
    phi = grbf_constraint(40)
    assert torch.allclose(phi[:, -1], torch.ones(40)) and float(phi.max()) == 1.0
    torch.manual_seed(0)
    v_hat = constrained_nmf(torch.rand(1, 40, 16), phi.expand(1, -1, -1), rank=1, steps=4)[0]
    # V̂ = (Φ W) Hᵀ: its columns lie in the span of the RBF dictionary
    coef = torch.linalg.lstsq(phi.double(), v_hat.double()).solution
    assert float((phi.double() @ coef - v_hat.double()).abs().max()) < 1e-6 * float(v_hat.abs().max())


def test_excite_formula():
    e, a = torch.randn(2, 3, 4, 2, 2), torch.randn(2, 3, 4, 2, 2)
    prod = (e - e.min() + 1) * (a - a.min() + 1)
    normed = (prod - prod.mean((2, 3, 4), keepdim=True)) / torch.sqrt(
        prod.var((2, 3, 4), unbiased=False, keepdim=True) + 1e-5
    )
    assert torch.allclose(excite(e, a), e + normed, atol=1e-5)
    assert torch.allclose(excite(e, a, residual=False), normed, atol=1e-5)


def test_module_output_and_one_step_gradient():
    torch.manual_seed(0)
    att = FactorizationAttention(16, "fsam", rank=1, steps=4)
    e = torch.randn(2, 16, 12, 5, 5, requires_grad=True)
    a, v_hat, err = att(e)
    assert a.shape == e.shape and v_hat.shape == (2, 12, 8 * 25) and float(err) > 0
    a.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in att.parameters())
    assert e.grad.abs().sum() > 0


def _off_profile(v_hat: torch.Tensor, phi: torch.Tensor) -> float:
    """Largest part of V̂ (B, D, N) not proportional to the profile phi (B, D, 1), relative to max |V̂|."""
    proj = phi * (phi.transpose(1, 2) @ v_hat) / (phi.transpose(1, 2) @ phi)
    return float((v_hat - proj).abs().max() / v_hat.abs().max())


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
        assert float((a[k] - b[k]).abs().max()) > 1e-4
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
    assert _off_profile(aux["bvp"]["factorized"].detach(), label_constraint(labels["bvp"])) < 1e-5
    # RSP head: the label is avg-pooled (5, 4, 2) to T/4 = 5 steps before scaling
    pooled = torch.nn.functional.avg_pool1d(labels["rsp"].unsqueeze(1), 5, 4, 2).squeeze(1)
    assert _off_profile(aux["rsp"]["factorized"].detach(), label_constraint(pooled)) < 1e-5
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
        assert not torch.allclose(on(x)["bvp"], off(x)["bvp"])
    with pytest.raises(Exception, match="TSFM cannot run at inference"):
        models.create("mmrphys_sef", attention="tsfm", attention_at_inference=True)
