"""The runtime form (3-D convolutions as 2-D ones), the shipped runtime twin of the default weights, and
the torch-free path of the main job that runs it (backend "auto")."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from numerics import check_within, float32_relative_bound, float64_outputs, onnx_vs_float64

from mmrphys import models
from mmrphys.cli.main import main
from mmrphys.errors import ConfigError, WeightsError
from mmrphys.models import checkpoints
from mmrphys.models import weights as catalogue
from mmrphys.models.export import example_input, export_onnx, inference_copy, runtime_form
from mmrphys.models.runtime import SOURCE_SHA256_KEY, OnnxPredictor, run_onnx
from mmrphys.vitals.estimators import make_estimator, runs_torch
from numeric_margins import within


def _raw_error(got, ref64) -> float:
    got, ref64 = np.asarray(got, np.float64), np.asarray(ref64, np.float64)
    return float(np.abs(got - ref64).max() / np.abs(ref64).max())


@pytest.mark.parametrize("name,kw,frames", [("mmrphys_sef", {}, 49), ("mmrphys_mnf", {}, 25),
                                             ("factorizephys", {"attention": "fsam"}, 21)])
def test_runtime_form_is_the_same_network(name, kw, frames):
    """Conv3dAs2d sums the same products in another order: its float32 outputs are within the float32
    bound (tests/models/numerics.py) of the float64 network, like the network's own (both branches;
    MMRPhys' RSP branch has temporal stride 2; FactorizePhys is another architecture)."""
    torch.manual_seed(0)
    net = inference_copy(models.create(name, **kw))
    fast = runtime_form(net)
    assert any(type(m).__name__ == "Conv3dAs2d" for m in fast.modules())
    x = example_input(net, frames)
    bound = float32_relative_bound(net, x)
    ref64 = float64_outputs(net, x)
    with torch.no_grad():
        got = {k: v.numpy() for k, v in fast(x).items()}
    assert set(got) == set(ref64)
    for task in got:
        # measured <= 1e-6 of max|y| against bounds of 1.6e-4 to 5e-4
        err = _raw_error(got[task], ref64[task])
        assert within(f"{name} {task}: runtime form vs float64", err, bound / 20)


def test_runtime_export_runs_one_clip_at_any_length(tmp_path):
    torch.manual_seed(0)
    net = models.create("mmrphys_sef")
    net.keep_tasks("bvp")
    path = export_onnx(net, tmp_path / "twin.onnx", conv2d=True, check=False, metadata={"k": "v"})
    graph = onnx.load(path).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, "frames", 9, 9] and [o.name for o in graph.output] == ["rPPG"]
    assert "Conv" in {n.op_type for n in graph.node}
    pred = OnnxPredictor(path)
    assert pred.tasks == ("bvp",) and pred.spec.frames == 181 and pred.spec.frame_multiple == 4
    assert pred.metadata["k"] == "v" and pred.metadata["mmrphys.window_frames"] == "181"
    for frames in (181, 97, 13):
        x = example_input(net, frames)
        # against float64: bound ~1.7e-4 of max|y| (λ·u·Σ√K+√n); measured ~1e-6
        assert check_within(onnx_vs_float64(pred.session, net, x), float32_relative_bound(net, x),
                            required=20) >= 20
    # a batch of two runs clip by clip through the batch-1 graph, each as on its own
    xs = np.random.default_rng(0).random((2, 3, 41, 9, 9), dtype=np.float32)
    both = pred(xs)["bvp"]
    assert both.shape == (2, 40)
    assert np.array_equal(both[1], pred(xs[1:])["bvp"][0])


def test_shipped_twin_is_the_default_weights():
    entry = catalogue.get_entry("default")
    twin = entry.runtime_path
    assert twin is not None and twin.name == entry.runtime["file"]
    assert catalogue.file_sha256(twin) == entry.runtime["sha256"]
    assert twin.stat().st_size == entry.runtime["bytes"]
    pred = OnnxPredictor(twin)
    assert pred.metadata[SOURCE_SHA256_KEY] == entry.sha256 == catalogue.file_sha256(entry.path)
    net = checkpoints.load_model("default")
    assert pred.spec == models.input_spec(net) and pred.tasks == ("bvp",) == tuple(entry.runtime["tasks"])
    pulse = inference_copy(net).keep_tasks("bvp")
    for frames in (181, 121):
        x = example_input(pulse, frames)
        # the twin and the .pt through torch, both against float64 (bound ~1.7e-4 of max|y|; measured
        # ~1e-6): the same function of the input
        assert check_within(onnx_vs_float64(pred.session, pulse, x), float32_relative_bound(pulse, x),
                            required=20) >= 20


def test_auto_backend_runs_the_twin_and_only_where_it_may():
    est = make_estimator("mmrphys")
    assert est.describe()["backend"] == "onnx" and est.describe()["tasks"] == ["bvp"]
    assert est.name == "mmrphys_sef" and est.weights == "default" and est.crop_size == 9
    assert not runs_torch("mmrphys") and not runs_torch("mmrphys", "default") and not runs_torch("pos")
    # the model's RSP output, another backend, or other weights: torch
    for kw, backend in (({"rr_from": "model"}, "eager"), ({"backend": "eager"}, "eager")):
        est = make_estimator("mmrphys", **kw)
        assert est.describe()["backend"] == backend
        assert runs_torch("mmrphys", kw.get("weights"), kw.get("backend", "auto"), kw.get("rr_from", "pulse"))
    assert est.describe()["tasks"] == ["bvp"]  # eager with the pulse only: the RSP branch is not run
    assert runs_torch("mmrphys", str(catalogue.get_entry("default").path))  # a file by path runs as it is


def test_main_job_imports_no_torch_and_reads_what_torch_reads(tmp_path):
    """The default main job in a fresh process: no torch imported; its pulse equals the eager backend's
    on the same frames.

    Bound: each path's window output is within ``bound``·max|y| of the float64 network
    (tests/models/numerics.py), so the two within Δy <= 2·bound·max|y|; each window is z-scored before
    the Hann-weighted overlap-add (weights summing to 1), which scales a difference by at most
    (2 + max|z|)·max|y|/std(y) <= 6 x 4 for a pulse window (max|z| <= 4, max|y|/std <= 4): <= 48·bound,
    asserted against 100·bound. Measured 1.7e-6 against 3.2e-2. The whole-clip HR is the peak of that
    waveform's spectrum; a change of 1e-6 of its scale moves the peak by far less than 0.01 bpm."""
    from mmrphys.synth import make_clip

    clip = tmp_path / "c.mp4"
    make_clip(clip, hr_bpm=80, rr_bpm=15, duration_s=12, fps=30, size=(160, 120), seed=2)
    code = ("import sys, json, mmrphys; r = mmrphys.estimate(sys.argv[1], progress=False); "
            "print(json.dumps({'torch': 'torch' in sys.modules, 'hr': r.heart_rate_bpm, "
            "'bvp': r.bvp.tolist(), 'backend': r.model['backend']}))")
    out = json.loads(subprocess.run([sys.executable, "-c", code, str(clip)], capture_output=True, text=True,
                                    check=True).stdout.strip().splitlines()[-1])
    assert out["torch"] is False and out["backend"] == "onnx"
    import mmrphys

    eager = mmrphys.estimate(clip, backend="eager", progress=False)
    assert abs(out["hr"] - eager.heart_rate_bpm) < 0.01 and abs(eager.heart_rate_bpm - 80) < 3
    net = inference_copy(checkpoints.load_model("default")).keep_tasks("bvp")
    bound = float32_relative_bound(net, example_input(net, 181))
    diff = float(np.nanmax(np.abs(np.asarray(out["bvp"], float) - eager.bvp)))
    assert within("main job pulse, onnx twin vs eager (z-scored stitched)", diff, 100 * bound)


def test_a_stale_twin_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "w"
    shutil.copytree(catalogue.WEIGHTS_DIR, folder)
    data = json.loads((folder / catalogue.CATALOGUE_FILE).read_text())
    entry = next(w for w in data["weights"] if w["name"] == data["default"])
    entry["sha256"] = "0" * 64  # as if the .pt had been retrained and the twin left as it was
    (folder / catalogue.CATALOGUE_FILE).write_text(json.dumps(data))
    monkeypatch.setattr(catalogue, "WEIGHTS_DIR", folder)
    with pytest.raises(WeightsError, match="runtime twin was not exported from"):
        make_estimator("mmrphys")
    assert make_estimator("mmrphys", backend="eager").describe()["backend"] == "eager"


def test_torch_free_modules_import_without_torch():
    code = ("import sys; import mmrphys.models.runtime, mmrphys.models.weights, mmrphys.models.spec, "
            "mmrphys.vitals.estimate; print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_cli_exports_the_runtime_twin(tmp_path, capsys):
    out = tmp_path / "twin.onnx"
    args = ["export-onnx", "--weights", "default", "--tasks", "bvp", "--runtime", "--out", str(out)]
    assert main(args) == 0
    assert "input 'input' (1, 3, T+1, 9, 9); tasks bvp" in capsys.readouterr().out
    pred = OnnxPredictor(out)
    assert pred.metadata[SOURCE_SHA256_KEY] == catalogue.get_entry("default").sha256
    x = np.random.default_rng(1).random((1, 3, 181, 9, 9), dtype=np.float32)
    shipped = OnnxPredictor(catalogue.get_entry("default").runtime_path)
    # the same weights exported again (another torch/onnx version may write another graph): both within
    # twice the float32 bound of the float64 network (tests/models/numerics.py)
    net = inference_copy(checkpoints.load_model("default")).keep_tasks("bvp")
    ref = shipped(x)["bvp"]
    bound = 2 * float32_relative_bound(net, torch.from_numpy(x))
    err = _raw_error(run_onnx(pred.session, x)["bvp"], ref)
    assert within("re-exported twin vs shipped twin", err, bound)


def test_prepare_pulse_only_is_the_pulse_of_the_whole_model():
    """``prepare(tasks=("bvp",))`` drops MMRPhys' RSP branch; the pulse branch runs the same kernels on the
    same input, so its output is the whole model's pulse to the last bit."""
    torch.manual_seed(0)
    net = models.create("mmrphys_sef")
    x = example_input(net, 181)
    whole, pulse = models.prepare(net), models.prepare(net, tasks=("bvp",))
    assert pulse.tasks == ("bvp",) and not hasattr(pulse.module, "rsp_head") and hasattr(net, "rsp_head")
    assert pulse.spec == whole.spec  # the window contract stays the whole model's (T multiple of 4)
    assert set(pulse(x)) == {"bvp"} and torch.equal(pulse(x)["bvp"], whole(x)["bvp"])
    with pytest.raises(ConfigError, match="subset"):
        models.prepare(net, tasks=("au",))


def test_weights_info_names_the_twin(capsys):
    assert main(["weights", "info", "default"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("runtime twin:"))
    assert line.split()[2] == str(catalogue.get_entry("default").runtime_path) and "bvp branch" in line
    assert main(["weights", "info", "default", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runtime"]["tasks"] == ["bvp"]
