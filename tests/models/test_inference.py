"""models.prepare: eager and compiled backends give the module's raw outputs within the float32 bound
of tests/models/numerics.py (and z-scored ones), with random, shipped and the authors' weights.

The bound (``float32_relative_bound``: λ·u·Σ(√K + √n) over the network's reductions) is that of one
float32 forward against float64; two float32 implementations are within twice of each other. Measured:
<= 0.1 % of it everywhere (e.g. MMRPhys-LEF at 1x3x181x72x72: eager 1e-6 of the output's peak against a
bound of 3.2e-3; the authors' PURE FactorizePhys 2.5e-6 against 2.4e-3), so kernels that sum in another
order (another CPU, 2x or 10x the error) stay far inside.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from numerics import errors, float32_relative_bound, float64_outputs

from mmrphys.errors import ConfigError, InputError
from mmrphys.models import create, inference, prepare
from mmrphys.models.inference import InputSpec, input_spec, instance_norm_
from numeric_margins import record, within

CL = torch.channels_last_3d


def compare(out: dict, ref: dict, model, x) -> dict[str, float]:
    """Raw and z-scored outputs of two float32 implementations within twice the bound; returns the
    fraction of the bound each used (1.0 = at the bound)."""
    assert set(out) == set(ref)
    bound = 2 * float32_relative_bound(model, x)
    used = {"raw": 0.0, "z": 0.0}
    for task in ref:
        assert out[task].shape == ref[task].shape
        raw, z, z_factor = errors(out[task].numpy(), ref[task].numpy())
        record(f"{task} raw", raw, bound)
        record(f"{task} z-scored", z, z_factor * bound)
        used = {"raw": max(used["raw"], raw / bound), "z": max(used["z"], z / (z_factor * bound))}
    assert used["raw"] <= 1.0 and used["z"] <= 1.0, used
    return used


def _check(model, x, backend="eager", **kw) -> dict:
    model = model.eval()
    with torch.no_grad():
        ref = model(x)
    pred = prepare(model, backend=backend, **kw)
    return compare(pred(x), ref, model, x)


@pytest.mark.parametrize(
    "name, kw, size, frames",
    [
        ("mmrphys_lef", dict(tasks=("bvp", "rsp"), in_channels=3), 72, 21),
        ("mmrphys_lef", dict(tasks=("bvp",), in_channels=3), 72, 18),
        ("mmrphys_mef", dict(tasks=("bvp", "rsp"), in_channels=3), 36, 17),
        ("mmrphys_sef", dict(tasks=("bvp", "rsp"), in_channels=3), 9, 41),
        ("mmrphys_llf", dict(), 72, 13),
        ("mmrphys_snf", dict(), 9, 21),
        ("factorizephys", dict(attention="fsam"), 72, 17),
        ("factorizephys", dict(attention="fsam", attention_at_inference=True), 72, 17),
        ("physnet", dict(), 72, 17),
        ("efficientphys", dict(attention="fsam"), 72, 21),
    ],
)
@pytest.mark.parametrize("batch", [1, 2])  # PyTorch picks other conv kernels for batch 1
def test_eager_equals_module_with_random_weights(name, kw, size, frames, batch):
    torch.manual_seed(0)
    model = create(name, **kw)
    x = torch.rand(batch, model.in_channels, frames, size, size) * 255
    used = _check(model, x)
    record("raw error / (2x bound), asserted < 0.1", used["raw"], 0.1)
    assert used["raw"] < 0.1  # measured: <= 0.001 of the bound on a Xeon (AVX-512)


def test_eager_at_two_threads(monkeypatch):
    """At 2+ threads the statistics take whole-tensor calls instead of cache blocks: same outputs."""
    torch.manual_seed(1)
    model = create("mmrphys_mef", tasks=("bvp", "rsp"), in_channels=3)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    _check(model, torch.rand(1, 3, 41, 36, 36))


def test_lef_full_window_and_both_paths_near_float64():
    """The benchmarked case, batch 1, 181 frames: eager and the module are each within the bound of
    the float64 computation (so the float32 module itself is no better reference)."""
    torch.manual_seed(2)
    model = create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3).eval()
    x = torch.rand(1, 3, 181, 72, 72)
    with torch.no_grad():
        ref32 = model(x)
    ref64 = float64_outputs(model, x)
    out = prepare(model)(x)
    assert out["bvp"].shape == out["rsp"].shape == (1, 180)
    bound = float32_relative_bound(model, x)
    for task in ref64:
        for y in (out[task], ref32[task]):
            raw, z, z_factor = errors(y.numpy(), ref64[task])
            # measured: < 0.01 of the bound
            assert within(f"{task} raw (0.1x bound)", raw, 0.1 * bound) and within(
                f"{task} z-scored (0.1x bound)", z, 0.1 * z_factor * bound)


def test_the_model_is_left_untouched_and_the_predictor_keeps_its_contract():
    model = create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3)
    model.train()
    pred = prepare(model)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(p.is_contiguous() for p in model.parameters())  # the copy went channels-last, not it
    assert pred.backend == "eager" and pred.tasks == ("bvp", "rsp")
    assert pred.spec == InputSpec(size=72, frames=181, frame_multiple=4, in_channels=3)
    assert not any(p.requires_grad for p in pred.module.parameters())
    out = pred(torch.rand(1, 3, 9, 72, 72))
    assert not out["bvp"].requires_grad and out["bvp"].is_inference()


def test_input_checks_are_the_models():
    pred = prepare(create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3))
    with pytest.raises(InputError, match="multiple of 4"):
        pred(torch.rand(1, 3, 20, 72, 72))
    with pytest.raises(InputError, match="channels"):
        pred(torch.rand(1, 2, 21, 72, 72))
    x = torch.rand(1, 4, 9, 72, 72)  # an RGBT clip: an RGB model reads its first three channels
    assert torch.equal(pred(x)["bvp"], pred(x[:, :3].clone())["bvp"])
    with pytest.raises(ConfigError, match="backend"):
        prepare(create("physnet"), backend="onnx")
    with pytest.raises(ConfigError, match="example_shape"):
        prepare(create("physnet"), backend="compiled")


@pytest.mark.parametrize(
    "name, spec",
    [
        ("mmrphys_sef", InputSpec(9, 181, 4, 3, 1.0)),
        ("factorizephys", InputSpec(72, 161, 1, 3, 1.0)),
        ("physnet", InputSpec(72, 161, 4, 3, 255.0)),
        ("efficientphys", InputSpec(72, 161, 20, 3, 255.0)),
    ],
)
def test_each_architecture_states_its_input(name, spec):
    assert input_spec(create(name)) == spec


def test_instance_norm_matches_float64_with_a_cancelling_channel():
    torch.manual_seed(3)
    y = torch.tanh(torch.randn(2, 16, 20, 11, 11)).contiguous(memory_format=CL)
    y[:, 5] = 0.9 + 1e-3 * torch.randn(20, 11, 11)  # mean >> std: the one-pass variance would cancel
    ref = torch.nn.functional.instance_norm(y.double(), eps=1e-5)
    out = instance_norm_(y.clone(), eps=1e-5)
    # z = (y − m)/s. The float32 statistics of N = T·H·W = 2420 terms carry errors |Δm| <= (1 + log2 N)·u·|m|
    # and |Δs|/s <= (1 + log2 N)·u (a summation's worst case, u = 2⁻²⁴); so per element
    # |Δz| <= (1 + log2 N)·u·(|m|/s + |z|). In the cancelling channel |m|/s ≈ 900 dominates: the mean's
    # own rounding, divided by a tiny s (≈ 6.6e-4 here; measured 2.5e-5). The one-pass variance this
    # guards against would be off by ~(m/s)²·u ≈ 5 % of s, i.e. |Δz| ~ 0.2, far outside the bound.
    n = y.shape[2] * y.shape[3] * y.shape[4]
    y64 = y.double().flatten(2)
    ratio = float((y64.mean(-1).abs() / y64.std(-1, unbiased=False)).max())
    bound = (1 + math.log2(n)) * 2.0**-24 * (ratio + float(ref.abs().max()))
    assert out.is_contiguous(memory_format=CL)
    assert within("instance norm vs float64, abs", float((out.double() - ref).abs().max()), bound)


def test_cache_key_tracks_weights_shape_and_threads(monkeypatch):
    torch.manual_seed(4)
    model = create("mmrphys_sef", tasks=("bvp",), in_channels=3).eval()
    key = inference.cache_key(model, (1, 3, 181, 9, 9))
    assert key == inference.cache_key(model, (1, 3, 181, 9, 9))
    assert key != inference.cache_key(model, (1, 3, 161, 9, 9))
    other = create("mmrphys_sef", tasks=("bvp",), in_channels=3).eval()
    assert key != inference.cache_key(other, (1, 3, 181, 9, 9))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    assert key != inference.cache_key(model, (1, 3, 181, 9, 9))


def test_compiled_without_a_compiler_warns_once_and_runs_eager(monkeypatch, tmp_path):
    monkeypatch.setattr(inference, "_have_compiler", lambda: False)
    model = create("mmrphys_sef", tasks=("bvp",), in_channels=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pred = prepare(model, backend="compiled", example_shape=(1, 3, 9, 9, 9), cache_dir=tmp_path)
    assert [str(w.message) for w in caught] == [
        "backend 'compiled' needs a C++ compiler (g++ or $CXX), none found: running the eager backend"
    ]
    assert pred.backend == "eager" and list(tmp_path.iterdir()) == []
    _check(model, torch.rand(1, 3, 9, 9, 9))


@pytest.mark.slow
def test_compiled_is_cached_on_disk_and_equals_the_module(monkeypatch, tmp_path):
    """Compiles MMRPhys-SEF once (~30-240 s), then a second prepare() loads the package without
    compiling; other shapes and batches run too (eagerly), all within the float32 bound."""
    torch.manual_seed(5)
    model = create("mmrphys_sef", tasks=("bvp", "rsp"), in_channels=3).eval()
    shape = (1, 3, 41, 9, 9)
    pred = prepare(model, backend="compiled", example_shape=shape, cache_dir=tmp_path)
    assert pred.backend == "compiled" and pred.compiled_shape == shape
    assert len(list(tmp_path.glob("*.pt2"))) == 1 and not list(tmp_path.glob(".*tmp*"))
    x = torch.rand(1, 3, 41, 9, 9) * 255
    assert _check(model, x, "compiled", example_shape=shape, cache_dir=tmp_path)["raw"] < 0.1

    def no_compiling(*a, **k):
        raise AssertionError("compiled again despite the cache")

    monkeypatch.setattr("torch._inductor.aoti_compile_and_package", no_compiling)
    again = prepare(model, backend="compiled", example_shape=shape, cache_dir=tmp_path)
    assert again.backend == "compiled"
    for other in ((2, 3, 41, 9, 9), (1, 3, 21, 9, 9)):  # not the compiled shape: the eager module
        _check(model, torch.rand(other), "compiled", example_shape=shape, cache_dir=tmp_path)


def _synthetic_face_clip(size: int, frames: int, scale: float = 1.0) -> torch.Tensor:
    """A rendered face (HR 72) as a (1, 3, frames, size, size) float clip in [0, scale]."""
    from mmrphys.synth import draw_face, physiology, render_frames

    scene = draw_face(size, size, seed=1)
    phys = physiology(72, 12, frames / 30.0, 30.0, seed=1)
    rgb = np.stack([f for f, _ in render_frames(scene, phys, seed=1)])[:frames]
    return torch.from_numpy(rgb).permute(3, 0, 1, 2)[None].float() * (scale / 255.0)


def test_shipped_weights():
    from mmrphys.models.checkpoints import load_model

    model = load_model("default")
    spec = input_spec(model)
    x = _synthetic_face_clip(spec.size, spec.frames, spec.pixel_scale)
    assert _check(model, x)["raw"] < 0.1


@pytest.mark.reference
@pytest.mark.parametrize(
    "file",
    [
        "SCAMPS_MMRPhysLEF_BVP_RSP_RGBx180x72_SFSAM_Label_Epoch0.pth",
        "SCAMPS_MMRPhysSEF_BVP_RSP_RGBx180x9_SFSAM_Label_Epoch0.pth",
        "PURE_MMRPhys_SFSAM_Label_Epoch9.pth",
        "PURE_FactorizePhys_SFSAM_Label_Epoch9.pth",
        "PURE_PhysNet.pth",
        "PURE_EfficientPhys_FSAM.pth",
    ],
)
def test_authors_checkpoints(official_dir, file):
    from mmrphys.models.checkpoints import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(official_dir / file)
    spec = input_spec(model)
    x = _synthetic_face_clip(spec.size, spec.frames, spec.pixel_scale)
    assert _check(model, x)["raw"] < 0.1
