"""ONNX export with a dynamic frame axis, checked against PyTorch in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from mmrphys import models
from mmrphys.cli.main import main
from mmrphys.errors import InputError
from mmrphys.models.export import compare_onnx, export_onnx, onnx_session, run_onnx


def _z(a):
    return (a - a.mean(-1, keepdims=True)) / a.std(-1, keepdims=True)


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
    for frames in (181, 165):
        assert compare_onnx(sess, net, frames) <= 1e-4
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
        assert compare_onnx(sess, net, f) <= 1e-4
    names = [o.name for o in onnx.load(path).graph.output]
    assert names == [{"bvp": "rPPG", "rsp": "rRSP"}[t] for t in net.tasks]


def test_cli_export(tmp_path, capsys):
    out = tmp_path / "sef.onnx"
    assert main(["export-onnx", "--model", "mmrphys_sef", "--out", str(out), "--frames", "41"]) == 0
    assert out.is_file() and "max |z(onnx) - z(torch)|" in capsys.readouterr().out
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
    assert compare_onnx(sess, net, 2 * step + 1) <= 1e-4
    with pytest.raises(InputError, match=f"multiple of {step}"):
        run_onnx(sess, np.zeros((1, 3, step + 2, 144, 144), np.float32))
