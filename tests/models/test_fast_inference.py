"""The fast inference path gives the PyTorch model's outputs (≤ 1e-4 after z-scoring)."""

from __future__ import annotations

import warnings

import pytest
import torch

from mmrphys.errors import InputError
from mmrphys.models import create
from mmrphys.models import fast_inference as fi
from mmrphys.models.fast_inference import FastConvBlock3D, FoldedModel, channel_stats, optimize

CL = torch.channels_last_3d


def _z(v: torch.Tensor) -> torch.Tensor:
    return (v - v.mean(-1, keepdim=True)) / v.std(-1, keepdim=True)


def _max_dz(out: dict, ref: dict) -> float:
    assert set(out) == set(ref)
    for task in ref:
        assert out[task].shape == ref[task].shape
    return max(float((_z(out[t]) - _z(ref[t])).abs().max()) for t in ref)


@pytest.mark.parametrize(
    "name, kw, size, frames, folded",
    [
        ("mmrphys_lef", dict(tasks=("bvp", "rsp"), in_channels=3), 72, 21, True),
        ("mmrphys_lef", dict(tasks=("bvp",), in_channels=3), 72, 18, True),
        ("mmrphys_mef", dict(tasks=("bvp", "rsp"), in_channels=3), 36, 17, True),
        ("mmrphys_mef", dict(tasks=("bvp",), in_channels=3), 36, 17, True),
        ("mmrphys_sef", dict(tasks=("bvp", "rsp"), in_channels=3), 9, 41, True),
        ("mmrphys_sef", dict(tasks=("bvp",), in_channels=3), 9, 30, True),
        ("mmrphys_llf", dict(), 72, 13, True),
        ("mmrphys_snf", dict(), 9, 21, True),
        ("factorizephys", dict(attention="fsam"), 72, 17, True),
        ("factorizephys", dict(attention="fsam", attention_at_inference=True), 72, 17, False),
    ],
)
def test_fast_path_equals_model(name, kw, size, frames, folded):
    torch.manual_seed(0)
    model = create(name, **kw)
    model.train()  # the fast copy must be an eval-mode copy whatever the original's mode
    fast = optimize(model)
    assert isinstance(fast.model, FoldedModel) is folded
    assert model.training  # the original is untouched
    x = torch.rand(2, model.in_channels, frames, size, size) * 255
    with torch.no_grad():
        ref = model.eval()(x)
    assert _max_dz(fast(x), ref) <= 1e-4


def test_unfolded_and_fused_block_paths_equal_model():
    torch.manual_seed(1)
    model = create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3).eval()
    fast = optimize(model, fold=False)
    assert any(isinstance(m, FastConvBlock3D) for m in fast.modules())
    x = torch.rand(1, 3, 25, 72, 72) * 255
    with torch.no_grad():
        ref = model(x)
    assert _max_dz(fast(x), ref) <= 1e-4


def test_lef_full_clip_181x72x72():
    """The benchmarked case: batch 1, 181 frames, BVP + RSP, large instance norms folded."""
    torch.manual_seed(2)
    model = create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3).eval()
    fast = optimize(model)
    x = torch.rand(1, 3, 181, 72, 72) * 255
    materialized = []
    original = fi._Pending.materialize

    def spy(self):
        if self.mean is not None and self.y.numel() >= fi._FOLD_MIN_NUMEL:
            materialized.append(tuple(self.y.shape))
        return original(self)

    fi._Pending.materialize = spy
    try:
        out = fast(x)
    finally:
        fi._Pending.materialize = original
    # L has no spatial padding: no normalisation pass over any large activation
    assert materialized == []
    with torch.no_grad():
        ref = model(x)
    assert out["bvp"].shape == out["rsp"].shape == (1, 180)
    assert _max_dz(out, ref) <= 1e-4


def test_official_weights_on_a_real_clip(official_dir, ubfc_mini):
    from mmrphys.models.checkpoints import load_official

    av = pytest.importorskip("av")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_official(official_dir / "SCAMPS_MMRPhysLEF_BVP_RSP_RGBx180x72_SFSAM_Label_Epoch0.pth")
    video = next(iter(sorted(ubfc_mini.glob("*/vid.mp4"))))
    frames = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")).float())
            if len(frames) == 41:
                break
    clip = torch.stack(frames).permute(3, 0, 1, 2)  # (3, T+1, H, W)
    side = min(clip.shape[-2:])
    clip = torch.nn.functional.interpolate(clip[..., :side, :side], size=(72, 72), mode="area")[None]
    with torch.no_grad():
        ref = model(clip)
    assert _max_dz(optimize(model)(clip), ref) <= 1e-4


def test_channel_stats_match_instance_norm_statistics():
    torch.manual_seed(3)
    y = torch.tanh(torch.randn(1, 16, 20, 11, 11)).contiguous(memory_format=CL)
    y[:, 5] = 0.9 + 1e-3 * torch.randn(20, 11, 11)  # mean ≫ std: the one-pass variance would cancel
    mean, rstd = channel_stats(y)
    var, ref_mean = torch.var_mean(y.double(), dim=(0, 2, 3, 4), correction=0)
    assert torch.allclose(mean.double(), ref_mean, atol=1e-6)
    assert torch.allclose(rstd.double(), (var + 1e-5).rsqrt(), rtol=1e-5)


def test_fast_path_checks_inputs_like_the_model():
    fast = optimize(create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3))
    with pytest.raises(InputError, match="multiple of 4"):
        fast(torch.rand(1, 3, 20, 72, 72))
    with pytest.raises(InputError, match="channels"):
        fast(torch.rand(1, 2, 21, 72, 72))
    # an RGBT clip is accepted by an RGB model, which uses its first three channels
    x = torch.rand(1, 4, 9, 72, 72)
    assert _max_dz(fast(x), fast(x[:, :3].clone())) == 0.0


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
    assert fi.retain_freed_memory() in (True, False)  # idempotent; True under glibc


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_with_timeout(fn, timeout=60):
    """Run ``fn`` on a helper thread: a deadlock fails the test instead of hanging it."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as ex:
        return ex.submit(lambda: (torch.set_num_threads(2), fn())[1]).result(timeout=timeout)


@pytest.mark.parametrize(
    "name, kw, size, frames",
    [
        ("mmrphys_lef", dict(tasks=("bvp", "rsp"), in_channels=3), 72, 21),  # RSP conv1 split
        ("mmrphys_lef", dict(tasks=("bvp", "rsp"), in_channels=4), 72, 13),
        ("mmrphys_mef", dict(tasks=("bvp", "rsp"), in_channels=3), 36, 17),  # split, norm applied
        ("mmrphys_sef", dict(tasks=("bvp", "rsp"), in_channels=3), 9, 41),
        ("mmrphys_llf", dict(), 72, 13),  # two streams per branch: no split
        ("mmrphys_snf", dict(), 9, 21),
    ],
)
def test_side_by_side_branches_equal_model(two_threads, monkeypatch, name, kw, size, frames):
    """At 2+ threads the branches run on two threads (the heavy block split in time) and still
    give the model's outputs; ``concurrent=False`` gives them with intra-op threading."""
    monkeypatch.setattr(fi, "_SPLIT_NUMEL", 0)  # split even these small clips' first RSP block
    torch.manual_seed(4)
    model = create(name, **kw).eval()
    x = torch.rand(2, model.in_channels, frames, size, size) * 255
    with torch.no_grad():
        ref = model(x)
    calls = {"side_by_side": 0, "split": 0}
    side_by_side, block_part = fi._run_side_by_side, fi._block_part

    def counting_side_by_side(*a):
        calls["side_by_side"] += 1
        return side_by_side(*a)

    def counting_block_part(*a, **k):
        calls["split"] += 1
        return block_part(*a, **k)

    monkeypatch.setattr(fi, "_run_side_by_side", counting_side_by_side)
    monkeypatch.setattr(fi, "_block_part", counting_block_part)
    assert _max_dz(_run_with_timeout(lambda: optimize(model)(x)), ref) <= 1e-4
    assert calls["side_by_side"] == 2  # once per sample
    # the RSP branch's first block is split (two halves per sample) unless it has two streams
    assert calls["split"] == (0 if name in ("mmrphys_llf", "mmrphys_snf") else 4)
    assert _max_dz(optimize(model, concurrent=False)(x), ref) <= 1e-4
    assert calls["side_by_side"] == 2


def test_split_halves_never_normalise_the_shared_input(two_threads, monkeypatch):
    """The shared input difference is folded as a whole or normalised before the fork: a half
    too small to fold on its own must not normalise (in place) frames the other thread reads."""
    monkeypatch.setattr(fi, "_SPLIT_NUMEL", 0)
    monkeypatch.setattr(fi, "_FOLD_MIN_NUMEL", 1 << 19)  # the 3x40x72x72 input folds, its halves would not
    torch.manual_seed(5)
    model = create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3).eval()
    x = torch.rand(1, 3, 41, 72, 72) * 255
    with torch.no_grad():
        ref = model(x)
    assert _max_dz(_run_with_timeout(lambda: optimize(model)(x)), ref) <= 1e-4


def test_lef_full_clip_two_threads():
    """The benchmarked case at 2 threads: branches side by side, RSP conv1 split in time."""
    torch.manual_seed(6)
    model = create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3).eval()
    x = torch.rand(1, 3, 181, 72, 72)
    with torch.no_grad():
        ref = model(x)
    assert _max_dz(_run_with_timeout(lambda: optimize(model)(x)), ref) <= 1e-4


def test_split_plan_of_the_lef_rsp_branch():
    model = create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3)
    z = fi._Pending(torch.empty((1, 3, 180, 72, 72), memory_format=CL))
    plan = fi._split_plan(model.rsp_extractors[0], z)
    assert plan is not None and plan.block is model.rsp_extractors[0][0]
    # RSP conv2 (stride 2, pad 1 in time): outputs [0, cut) read frames [0, a_end), the rest
    # frames [b_start, 180); one frame is computed by both threads
    assert (plan.t1, plan.a_end - plan.b_start) == (180, 1)
    assert plan.a_end == 2 * plan.cut and 0.25 < 1 - plan.cut / 90 < 0.4
    assert fi._split_plan(model.bvp_extractors[0], z) is None  # strided conv1: small, not split


@pytest.mark.parametrize("where", ["worker_before_split", "worker_branch", "caller"])
def test_side_by_side_errors_propagate_without_hanging(two_threads, monkeypatch, where):
    monkeypatch.setattr(fi, "_SPLIT_NUMEL", 0)
    model = create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3).eval()
    fast = optimize(model)
    x = torch.rand(1, 3, 21, 72, 72)

    def boom(*a, **k):
        raise RuntimeError("boom")

    if where == "worker_before_split":
        original = fi._block_part
        monkeypatch.setattr(
            fi, "_block_part", lambda z, plan, later: boom() if later else original(z, plan, later)
        )
    elif where == "worker_branch":
        monkeypatch.setattr(fi, "_run_branch", boom)
    else:
        monkeypatch.setattr(fi, "_split_plan", boom)
    with pytest.raises(RuntimeError, match="boom"):
        _run_with_timeout(lambda: fast(x))
    monkeypatch.undo()
    monkeypatch.setattr(fi, "_SPLIT_NUMEL", 0)
    with torch.no_grad():
        ref = model(x)
    assert _max_dz(_run_with_timeout(lambda: fast(x)), ref) <= 1e-4  # the worker is still usable


@pytest.mark.parametrize(
    "kernel, stride, padding, tanh",
    [
        ((3, 3, 3), (1, 1, 1), (1, 0, 0), True),  # every ConvBlock3D: frames 0 and T-1 are borders
        ((3, 3, 3), (2, 2, 2), (1, 0, 0), True),  # MMRPhys-L RSP conv2: only frame 0
        ((3, 4, 4), (1, 1, 1), (1, 0, 0), False),  # the RSP head's last plain Conv3d (bias, no Tanh)
        ((5, 1, 1), (1, 1, 1), (3, 0, 0), True),  # two padding taps on each side
        ((1, 3, 3), (1, 1, 1), (1, 0, 0), True),  # windows wholly in the padding: constant frames
    ],
)
def test_folded_conv_borders_equal_the_normalised_conv(kernel, stride, padding, tanh):
    """The fold's border frames (the padding's constant moved into the bias of a conv over the clip
    frames the window reaches) give the conv of the normalised input with zero padding."""
    torch.manual_seed(7)
    y = (torch.rand(1, 5, 9, 8, 8) * 3 + 1).contiguous(memory_format=CL)  # mean well off zero
    mean, rstd = channel_stats(y)
    weight = torch.randn(6, 5, *kernel) * 0.3
    bias = None if tanh else torch.randn(6)
    out = fi._conv_pending(fi._Pending(y, mean, rstd), weight, bias, stride, padding, tanh, fold=True)
    z = (y.double() - mean.double().view(1, -1, 1, 1, 1)) * rstd.double().view(1, -1, 1, 1, 1)
    b64 = None if bias is None else bias.double()
    ref = torch.nn.functional.conv3d(z, weight.double(), b64, stride, padding)
    ref = torch.tanh(ref) if tanh else ref
    assert out.shape == ref.shape
    assert float((out.double() - ref).abs().max()) <= 1e-4
