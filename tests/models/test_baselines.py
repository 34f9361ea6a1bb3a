"""The paper's baselines: published parameter counts, shapes, official weights, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numerics import LAMBDA, U32

from mmrphys.errors import ConfigError, InputError
from mmrphys.models import count_parameters, create, list_models
from mmrphys.models.baselines_common import temporal_shift
from mmrphys.models.bigsmall import prepare_inputs
from mmrphys.models.physformer import CDCT
from numeric_margins import within

PUBLISHED = [
    ("physnet", {}, 768_583),
    ("efficientphys", {"attention": "sasn"}, 2_163_081),
    ("efficientphys", {"attention": "fsam"}, 140_655),
    ("physformer", {}, 7_380_871),
    ("bigsmall", {}, 2_142_478),  # counted from rPPG-Toolbox's BigSmall.py (AU + BVP + resp heads)
]

# Small inputs that each architecture accepts (few frames, small frames where the net allows it).
SMALL = {
    "physnet": ({}, (1, 3, 9, 32, 32), 8),
    "efficientphys": ({"attention": "sasn", "input_size": 36, "frame_depth": 4}, (2, 3, 9, 36, 36), 8),
    "efficientphys_fsam": ({"attention": "fsam", "frame_depth": 4}, (1, 3, 9, 72, 72), 8),
    "physformer": ({}, (1, 3, 9, 64, 64), 8),
    "bigsmall": ({"big_size": 36}, (2, 3, 7, 40, 40), 6),
}


def test_registered():
    assert {"physnet", "efficientphys", "physformer", "bigsmall"} <= set(list_models())


@pytest.mark.parametrize("name, kw, n", PUBLISHED)
def test_parameter_counts_equal_published(name, kw, n):
    assert count_parameters(create(name, **kw), inference=False) == n  # published: all trained weights


@pytest.mark.parametrize("key", sorted(SMALL))
def test_shapes_and_gradients_reach_every_parameter(key):
    torch.manual_seed(0)
    kw, shape, t = SMALL[key]
    net = create(key.split("_")[0], **kw).train()
    out = net(torch.rand(shape) * 255)
    b = shape[0]
    assert out["bvp"].shape == (b, t)
    if key == "bigsmall":
        assert out["rsp"].shape == (b, t) and out["au"].shape == (b, t, 12)
    sum(o.pow(2).mean() for o in out.values()).backward()
    dead = [
        n
        for n, p in net.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ]
    assert dead == []
    assert set(out) == set(net.tasks)


@pytest.mark.parametrize(
    "name, kw, shape",
    [
        ("physnet", {}, (1, 3, 8, 32, 32)),  # 7 frames after differencing: not a multiple of 4
        ("efficientphys", {"input_size": 36, "frame_depth": 4}, (1, 3, 8, 36, 36)),
        ("physformer", {}, (1, 3, 10, 64, 64)),
        ("physnet", {}, (1, 4, 9, 32, 32)),  # wrong channel count
        ("physnet", {}, (3, 9, 32, 32)),  # not 5-D
    ],
)
def test_bad_inputs_raise_input_error(name, kw, shape):
    with pytest.raises(InputError):
        create(name, **kw).eval()(torch.rand(shape))


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError):
        create("efficientphys", attention="tsfm")
    with pytest.raises(ConfigError):
        create("physnet", tasks=("bvp", "rsp"))
    with pytest.raises(ConfigError):
        create("physformer", colour=True)


def test_cdc_fold_equals_two_conv_definition():
    torch.manual_seed(0)
    cdc = CDCT(5, 6, theta=0.7)
    x = torch.randn(2, 5, 6, 7, 7)
    # the two-conv definition in float64 (the folded float32 kernel is the thing under test)
    w, x64 = cdc.conv.weight.detach().double(), x.double()
    diff_kernel = (w[:, :, 0].sum((2, 3)) + w[:, :, 2].sum((2, 3)))[:, :, None, None, None]
    ref = F.conv3d(x64, w, padding=1) - 0.7 * F.conv3d(x64, diff_kernel)
    # float32: folding the kernel (sums of 18 weights) and one conv of K = 5·27 = 135 products:
    # <= λ·(√135 + √18 + 2)·u·max Σ|w||x| (λ = 5, tests/models/numerics.py) = 3.7e-5; measured 1.0e-6
    magnitude = F.conv3d(x64.abs(), w.abs(), padding=1) + 0.7 * F.conv3d(x64.abs(), diff_kernel.abs())
    bound = LAMBDA * (math.sqrt(135) + math.sqrt(18) + 2) * U32 * float(magnitude.max())
    with torch.no_grad():
        err = float((cdc(x).double() - ref).abs().max())
    assert within("CDC folded kernel vs float64 two-conv, abs", err, bound)


@pytest.mark.parametrize("wrap", [False, True])
def test_temporal_shift_matches_definition(wrap):
    x = torch.randn(6, 9, 2, 2)
    v = x.view(2, 3, 9, 2, 2)
    ref = torch.zeros_like(v)
    ref[:, :-1, :3] = v[:, 1:, :3]
    ref[:, 1:, 3:6] = v[:, :-1, 3:6]
    ref[:, :, 6:] = v[:, :, 6:]
    if wrap:
        ref[:, -1, :3] = v[:, 0, :3]
        ref[:, 0, 3:6] = v[:, -1, 3:6]
    assert torch.equal(temporal_shift(x, 3, wrap=wrap), ref.view(6, 9, 2, 2))


def test_bigsmall_accepts_dict_tuple_and_raw_frames():
    torch.manual_seed(0)
    net = create("bigsmall", big_size=36, au=False).eval()
    raw = torch.rand(1, 3, 7, 50, 50) * 255
    streams = prepare_inputs(raw, big_size=36)
    assert streams["big"].shape == (1, 3, 6, 36, 36) and streams["small"].shape == (1, 3, 6, 9, 9)
    # the big stream is the clip standardised: against the same steps in float64 (the 50→36 "area" resize
    # averages <= 9 pixels), float32 rounds the resize and the mean and std over n = 23,328 values
    # (λ·√n·u each, relative to max|raw|/std): <= λ·(√n + 2)·u·(1 + max|raw|/std)·(1 + max|z|) ≈ 1.8e-3;
    # measured 1.1e-6 (mean 2.2e-7 from 0, std 1.5e-8 from 1)
    big64 = F.interpolate(raw[:, :, :-1].double().transpose(1, 2).reshape(6, 3, 50, 50), size=(36, 36),
                          mode="area").reshape(1, 6, 3, 36, 36).transpose(1, 2)
    z64 = (big64 - big64.mean()) / big64.std()
    n = z64.numel()
    bound = LAMBDA * (math.sqrt(n) + 2) * U32 * (1 + float(big64.abs().max() / big64.std())) * (
        1 + float(z64.abs().max()))
    err = float((streams["big"].double() - z64).abs().max())
    assert within("big stream vs float64 standardised", err, bound)
    assert within("big stream mean", abs(float(streams["big"].double().mean())), bound)
    assert within("big stream std - 1", abs(float(streams["big"].double().std()) - 1), bound)
    with torch.no_grad():
        a, b, c = net(streams), net((streams["big"], streams["small"])), net(raw)
    assert set(a) == {"bvp", "rsp"}
    # the same tensors through the same layers (a dict, a tuple, or the raw clip prepared inside by the same
    # function): identical operations on identical values, bit-equal on any CPU
    assert torch.equal(a["bvp"], b["bvp"]) and torch.equal(a["rsp"], b["rsp"])
    assert torch.equal(a["bvp"], c["bvp"]) and torch.equal(a["rsp"], c["rsp"])
    with pytest.raises(InputError):
        net({"big": streams["big"]})


def test_efficientphys_fsam_runs_only_in_training():
    torch.manual_seed(0)
    net = create("efficientphys", attention="fsam", frame_depth=4)
    x = torch.rand(1, 3, 9, 72, 72)
    with torch.no_grad():
        net.eval()
        y_eval = net(x)["bvp"]
        base = create("efficientphys", attention="none", frame_depth=4)
        base.load_state_dict(net.state_dict(), strict=False)
        # the inference graph has no FSAM: the same layers on the same input, bit-equal
        assert torch.equal(base.eval()(x)["bvp"], y_eval)
        net.train()
        net.dropout_1.p = net.dropout_2.p = net.dropout_3.p = net.dropout_4.p = 0.0
        # in training FSAM acts: the output moves by ~2.5x its scale (measured), far beyond rounding
        assert float((net(x)["bvp"] - y_eval).abs().max()) > 0.1 * float(y_eval.abs().max())


def _load_official(official_dir, file, name, **kw):
    state = torch.load(official_dir / file, map_location="cpu")
    net = create(name, **kw)
    net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    return net.eval()


def _synthetic_pulse_clip(hr_bpm: float, n_frames: int, fs: float = 30.0) -> torch.Tensor:
    """A smooth skin-coloured 72x72 clip whose colour pulses at ``hr_bpm`` (mostly green)."""
    t = np.arange(n_frames) / fs
    yy, xx = np.mgrid[0:72, 0:72] / 72.0
    base = np.stack([0.75 - 0.2 * (yy - 0.5) ** 2, 0.55 - 0.2 * (xx - 0.5) ** 2, 0.45 + 0 * xx])
    pulse = np.sin(2 * np.pi * hr_bpm / 60 * t)
    clip = base[:, None] * (
        1 + 0.01 * np.array([0.3, 1.0, 0.5])[:, None, None, None] * pulse[None, :, None, None]
    )
    clip = clip + 0.002 * np.random.default_rng(0).standard_normal(clip.shape)
    return torch.tensor(clip[None] * 255, dtype=torch.float32)


def _peak_bpm(y: np.ndarray, fs: float = 30.0) -> float:
    spec = np.abs(np.fft.rfft((y - y.mean()) * np.hanning(len(y)), n=8192))
    freqs = np.fft.rfftfreq(8192, 1 / fs)
    band = (freqs > 0.6) & (freqs < 3.3)
    return 60 * freqs[band][spec[band].argmax()]


@pytest.mark.reference
@pytest.mark.parametrize(
    "file, name, kw",
    [
        ("PURE_PhysNet.pth", "physnet", {}),
        ("PURE_EfficientPhys_FSAM.pth", "efficientphys", {"attention": "fsam"}),
    ],
)
def test_official_weights_load_strictly_and_find_the_pulse(official_dir, file, name, kw):
    net = _load_official(official_dir, file, name, **kw)
    for hr in (72.0, 96.0):
        with torch.no_grad():
            bvp = net(_synthetic_pulse_clip(hr, 121))["bvp"][0].numpy()
        assert bvp.shape == (120,) and np.isfinite(bvp).all()
        assert abs(_peak_bpm(bvp) - hr) < 3.0
