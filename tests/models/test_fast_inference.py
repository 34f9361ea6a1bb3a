"""The fast inference path gives the PyTorch model's outputs (≤ 1e-4 after z-scoring)."""

from __future__ import annotations

import pytest
import torch

from mmrphys.models import create
from mmrphys.models.fast_inference import FastConvBlock3D, optimize


def _z(v: torch.Tensor) -> torch.Tensor:
    return (v - v.mean(-1, keepdim=True)) / v.std(-1, keepdim=True)


@pytest.mark.parametrize(
    "name, kw, size, frames",
    [
        ("mmrphys_lef", dict(tasks=("bvp", "rsp"), in_channels=3), 72, 21),
        ("mmrphys_sef", dict(tasks=("bvp", "rsp"), in_channels=3), 9, 41),
        ("mmrphys_mef", dict(tasks=("bvp",), in_channels=3), 36, 17),
        ("factorizephys", dict(attention="fsam"), 72, 17),
        ("factorizephys", dict(attention="fsam", attention_at_inference=True), 72, 17),
    ],
)
def test_fast_path_equals_model(name, kw, size, frames):
    torch.manual_seed(0)
    model = create(name, **kw)
    model.train()  # the fast copy must be an eval-mode copy whatever the original's mode
    fast = optimize(model)
    assert any(isinstance(m, FastConvBlock3D) for m in fast.modules())
    assert model.training  # the original is untouched
    x = torch.rand(2, 3, frames, size, size) * 255
    with torch.no_grad():
        ref = model.eval()(x)
    out = fast(x)
    assert set(out) == set(ref) == set(model.tasks)
    for task in ref:
        assert out[task].shape == ref[task].shape
        assert float((_z(out[task]) - _z(ref[task])).abs().max()) <= 1e-4


def test_fast_path_keeps_the_model_contract():
    model = create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3)
    fast = optimize(model)
    assert (fast.tasks, fast.in_channels, fast.input_size, fast.frame_multiple) == (
        model.tasks,
        model.in_channels,
        model.input_size,
        model.frame_multiple,
    )
    assert not any(p.requires_grad for p in fast.parameters())
