"""ONNX export with a dynamic frame axis, checked against PyTorch in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from numerics import check_within, float32_relative_bound, float64_outputs, onnx_vs_float64

from mmrphys import models
from mmrphys.cli.main import main
from mmrphys.errors import InputError
from mmrphys.models.bigsmall import prepare_inputs
from mmrphys.models.export import example_input, export_onnx, inference_copy, onnx_session, run_onnx
from numeric_margins import record


def _check(sess, net, frames: int, ref64=None, extra_sizes=(), float64=True) -> float:
    """ONNX and our float32 forward against float64, raw and z-scored, inside the bound derived in
    tests/models/numerics.py (λ·u·Σ(√K + √n) over the network's reductions); the two float32 paths
    within twice of each other. Returns the smallest margin (every caller asserts >= 20)."""
    x = example_input(net, frames)
    bound = float32_relative_bound(inference_copy(net), x, extra_sizes)
    return check_within(onnx_vs_float64(sess, net, x, ref64, float64), bound, required=20)


def test_lef_export_runs_at_any_valid_length(tmp_path):
    torch.manual_seed(0)
    net = models.create("mmrphys_lef", attention="tsfm")
    path = export_onnx(net, tmp_path / "lef.onnx", check=False)
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["rPPG", "rRSP"]
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "frames", 72, 72]
    # no trace of the (training-only) attention: no ReLU, MatMul or Softmax in the graph
    ops = {n.op_type for n in graph.node}
    assert not ops & {"Relu", "MatMul", "Softmax", "ReduceMin"}
    sess = onnx_session(path, threads=1)
    # the float64 forward of a 72×72 clip is slow on a shared CPU: against float64 on 41 frames (bound
    # 8.1e-4 of max|y|), the two float32 paths against each other at 181 and 165 (bounds 1.6e-3, 1.5e-3).
    # Measured: ours <= 9.6e-7, onnxruntime <= 1.3e-6 of float64; the pair <= 9.2e-6 z-scored (>= 600x)
    assert _check(sess, net, 41) >= 20
    for frames in (181, 165):
        assert _check(sess, net, frames, float64=False) >= 20
    out = run_onnx(sess, np.random.default_rng(0).random((2, 3, 41, 72, 72), dtype=np.float32))
    assert out["bvp"].shape == (2, 40) and out["rsp"].shape == (2, 40)
    with pytest.raises(InputError, match="multiple of 4"):
        run_onnx(sess, np.zeros((1, 3, 163, 72, 72), np.float32))


@pytest.mark.parametrize(
    "name,kw,frames",
    [
        ("mmrphys_sef", {"tasks": ("bvp",)}, (181, 161, 38)),
        ("mmrphys_snf", {}, (45, 21)),
        ("factorizephys", {"attention": "fsam"}, (41, 30)),
    ],
)
def test_other_variants_export(tmp_path, name, kw, frames):
    torch.manual_seed(0)
    net = models.create(name, **kw)
    path = export_onnx(net, tmp_path / f"{name}.onnx", frames=frames[0], check=False)
    sess = onnx_session(path, threads=1)
    for f in frames:
        assert _check(sess, net, f) >= 20  # bounds 1.7e-4 to 6.4e-4 of max|y|; errors <= 1.9e-6 (>= 190x)
    names = [o.name for o in onnx.load(path).graph.output]
    assert names == [{"bvp": "rPPG", "rsp": "rRSP"}[t] for t in net.tasks]


def test_cli_export(tmp_path, capsys):
    out = tmp_path / "sef.onnx"
    assert main(["export-onnx", "--model", "mmrphys_sef", "--out", str(out), "--frames", "41"]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "max |z(onnx) - z(torch)| = " in printed
    # the CLI's own check: z-scored ONNX vs torch (measured ~3e-6); a wrong export gives O(1). The derived
    # rounding bounds are asserted in the tests above; here any value under 1e-3 shows the same function
    value = float(printed.split("max |z(onnx) - z(torch)| = ")[1].split(")")[0])
    record("z-scored ONNX vs torch printed by the CLI (a sanity limit, not derived)", value, 1e-3)
    assert 0 <= value < 1e-3
    assert main(["export-onnx", "--weights", str(tmp_path / "none.pt"), "--out", str(out)]) == 2
    assert "no such weights file" in capsys.readouterr().err


def test_bigsmall_export_names_au_and_records_its_frame_multiple(tmp_path):
    torch.manual_seed(0)
    net = models.create("bigsmall")
    step = net.frame_multiple
    path = export_onnx(net, tmp_path / "bigsmall.onnx", frames=4 * step + 1, check=False)
    proto = onnx.load(path)
    assert [o.name for o in proto.graph.output] == ["rPPG", "rRSP", "AU"]
    assert {p.key: p.value for p in proto.metadata_props}["mmrphys.frame_multiple"] == str(step)
    sess = onnx_session(path, threads=1)
    out = run_onnx(sess, np.random.default_rng(0).random((1, 3, 2 * step + 1, 144, 144), dtype=np.float32))
    assert set(out) == {"bvp", "rsp", "au"} and out["bvp"].shape == (1, 2 * step)
    # prepare_inputs casts to float32 itself, so the float64 reference starts from its (float32) streams;
    # the per-clip standardisations it does (over 3·T·S² and 3·T·9² values) are in the bound once
    # (numerics._functional_reductions) and join it once more: onnxruntime rounds them its own way.
    # Bound 5.1e-4; measured <= 3e-7 raw, <= 1.1e-6 z-scored (>= 2000x)
    x = example_input(net, 2 * step + 1)
    streams = prepare_inputs(x)
    ref64 = float64_outputs(net, {k: v.double() for k, v in streams.items()})
    sizes = [v[0].numel() for v in streams.values()]
    assert _check(sess, net, 2 * step + 1, ref64, sizes) >= 20
    with pytest.raises(InputError, match=f"multiple of {step}"):
        run_onnx(sess, np.zeros((1, 3, step + 2, 144, 144), np.float32))
