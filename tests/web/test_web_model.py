"""Which model the page gets: located/exported at start-up, probed for the window lengths it runs."""

from __future__ import annotations

import pytest
import torch

from mmrphys.errors import WeightsError
from mmrphys.web.model import DEFAULT_FRAMES, FIRST_FRAMES, describe_onnx, resolve_model


@pytest.fixture(scope="module")
def our_onnx(tmp_path_factory):
    from mmrphys import models
    from mmrphys.models.export import export_onnx

    torch.manual_seed(0)
    net = models.create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3).eval()
    return export_onnx(net, tmp_path_factory.mktemp("onnx") / "lef.onnx", check=False)


def test_our_export_runs_a_shorter_first_window(our_onnx):
    info = describe_onnx(our_onnx, "lef", "test")
    assert info.available and (info.size, info.channels) == (72, 3)
    assert (info.frames, info.first_frames) == (DEFAULT_FRAMES, FIRST_FRAMES)
    assert set(info.outputs) == {"rPPG", "rRSP"}
    d = info.to_dict()
    assert d["url"] == "/model.onnx" and "path" not in d


@pytest.mark.reference
def test_official_onnx_is_fixed_to_181_frames(official_dir):
    info = describe_onnx(official_dir / "SCAMPS_MultiTask_72x72_FP.onnx", "official", "authors")
    assert (info.frames, info.first_frames) == (181, None)


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # the loader notes the TSFM tensors it drops
def test_weights_file_is_exported_once_and_cached(official_dir, tmp_path):
    pth = official_dir / "SCAMPS_MMRPhysLEF_BVP_RSP_RGBx180x72_SFSAM_Label_Epoch0.pth"
    first = resolve_model(str(pth), cache=tmp_path)
    cached = list(tmp_path.glob("*.onnx"))
    assert len(cached) == 1 and first.path == str(cached[0]) and first.first_frames == FIRST_FRAMES
    mtime = cached[0].stat().st_mtime_ns
    again = resolve_model(str(pth), cache=tmp_path)
    assert again.path == first.path and cached[0].stat().st_mtime_ns == mtime


def test_bad_model_argument(tmp_path):
    with pytest.raises(WeightsError, match="no such model file"):
        resolve_model(str(tmp_path / "missing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a graph")
    with pytest.raises(WeightsError, match="junk.onnx"):
        resolve_model(str(junk))


def test_missing_default_weights_fall_back_to_pos(monkeypatch, tmp_path):
    from mmrphys.models import weights

    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    info = resolve_model(None, cache=tmp_path)
    assert not info.available and "--model" in info.reason and info.to_dict()["url"] is None


def test_the_default_model_is_served_without_torch():
    """The shipped runtime twin is served as it is: resolving and probing it imports no torch (the
    probe's onnxruntime session came from ``models.export``, which imports torch, until 2026-12-06)."""
    import subprocess
    import sys

    code = ("import sys; from mmrphys.web.model import resolve_model; m = resolve_model(); "
            "print(m.available, m.frames, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    available, frames, torch_loaded = out.split()
    assert (available, torch_loaded) == ("True", "False") and int(frames) > 0
