"""``mmrphys estimate`` on bad options and outputs: refused before the run with one line naming the
option or path (exit 2), nothing written; weights that cannot be used; the trust note in the summary."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from mmrphys.cli.main import main
from mmrphys.synth import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "c.mp4"
    make_clip(path, hr_bpm=72, duration_s=8, size=(160, 120), seed=1)
    return path


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("opts, message", [
    (["--fps", "1e9"], "--fps must be between 1 and 1000 frames per second, got 1e+09"),
    (["--fps", "0"], "--fps must be between 1 and 1000"),
    (["--fps", "nan"], "--fps must be between 1 and 1000"),
    (["--fps", "-1"], "--fps must be between 1 and 1000"),
    (["--threads", "0"], "--threads must be between 1 and 256, got 0"),
    (["--threads", "-1"], "--threads must be between 1 and 256"),
    (["--method", ""], "--method is empty"),
])
def test_bad_options_stop_before_decoding(clip, tmp_path, capsys, opts, message):
    t0 = time.perf_counter()
    assert main(["estimate", str(clip), "--out", str(tmp_path / "out"), "--quiet", *opts]) == 2
    assert message in _one_error_line(capsys)
    assert time.perf_counter() - t0 < 5  # no decoding happened
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_or_under_a_file(clip, tmp_path, capsys):
    (tmp_path / "results").write_text("keep")
    assert main(["estimate", str(clip), "--out", str(tmp_path / "results"), "--quiet"]) == 2
    assert "--out" in (line := _one_error_line(capsys)) and "results is a file, not a folder" in line
    assert main(["estimate", str(clip), "--out", str(tmp_path / "results" / "sub"), "--quiet"]) == 2
    assert "results is a file" in _one_error_line(capsys)
    assert _files(tmp_path) == ["results"] and (tmp_path / "results").read_text() == "keep"


@pytest.mark.parametrize("taken", ["c.json", "c_waveforms.csv", "c_report.png"])
def test_output_name_taken_by_a_folder(clip, tmp_path, capsys, taken):
    (tmp_path / taken).mkdir()
    assert main(["estimate", str(clip), "--out", str(tmp_path), "--quiet"]) == 2
    assert f"{taken} is taken by a folder" in _one_error_line(capsys)
    assert _files(tmp_path) == []  # no JSON + CSV without the PNG


def test_json_to_a_folder_or_a_device(clip, tmp_path, capsys):
    assert main(["estimate", str(clip), "--json", str(tmp_path), "--quiet"]) == 2
    assert "is a folder, not a file name" in _one_error_line(capsys)
    assert main(["estimate", str(clip), "--json", "/dev/null", "--quiet"]) == 2
    assert "/dev/null is not a regular file" in _one_error_line(capsys)
    assert _files(tmp_path) == []


def test_successful_run_leaves_exactly_its_files(clip, tmp_path, capsys):
    (tmp_path / "c.json").write_text("old result")
    assert main(["estimate", str(clip), "--out", str(tmp_path), "--json", str(tmp_path / "hr.json")]) == 0
    assert _files(tmp_path) == ["c.json", "c_report.png", "c_waveforms.csv", "hr.json"]
    assert (tmp_path / "c.json").read_text().startswith("{")
    out = capsys.readouterr().out
    assert out.startswith("c: HR 7") and "json:" in out


def _save(obj, path):
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()) and p,
     "cannot read weights (UnpicklingError"),
    (lambda p: p.write_text("not weights\n" * 20) and p, "cannot read weights"),
    (lambda p: _save({"conv.weight": torch.zeros(2)}, p), "keys match no known architecture"),
])
def test_unusable_weights_are_one_line(clip, tmp_path, capsys, make, message):
    path = make(tmp_path / "w.pth")
    assert main(["estimate", str(clip), "--method", "mmrphys", "--weights", str(path), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert message in line and "w.pth" in line


def test_weights_holding_nan_are_refused(clip, tmp_path, capsys):
    from mmrphys import models
    from mmrphys.models.checkpoints import save_weights

    net = models.create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3)
    with torch.no_grad():
        next(net.parameters()).fill_(float("nan"))
    path = save_weights(net, tmp_path / "nan.pth")
    assert main(["estimate", str(clip), "--method", "mmrphys", "--weights", str(path), "--quiet"]) == 2
    assert "hold NaN or infinite values" in _one_error_line(capsys)


def test_summary_line_shows_low_confidence(clip, tmp_path, capsys, monkeypatch):
    import importlib

    from mmrphys.vitals.result import Result

    estimate_mod = importlib.import_module("mmrphys.vitals.estimate")  # the package re-exports the function

    def low_confidence(*args, **kwargs):  # a result as the estimator reports an untrustworthy one
        t = np.arange(300) / 30.0
        res = Result(heart_rate_bpm=67.7, respiratory_rate_bpm=19.8, fps=30.0, duration_s=10.0,
                     timestamps_s=t, bvp=np.sin(t), rsp=None, rolling=[], hrv={}, method="green", model=None,
                     quality={"signal_quality": 0.01, "face_detected_fraction": 1.0,
                              "warnings": ["heart rate confidence 0.12 is below 0.5"]})
        res.confidence = {"heart_rate": 0.12, "respiratory_rate": 0.05}
        return res

    monkeypatch.setattr(estimate_mod, "estimate", low_confidence)
    assert main(["estimate", str(clip)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(
        "c: HR 67.7 bpm (LOW CONFIDENCE 0.12), RR 19.8 /min (LOW CONFIDENCE 0.05)")
    assert "  warning: heart rate confidence 0.12 is below 0.5" in out
