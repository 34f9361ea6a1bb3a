"""CLI verbs of the main job: estimate, synth, demo; one-line errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mmrphys.cli.main import main


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "c.mp4"
    assert main(["synth", str(out), "--duration", "10", "--hr", "75", "--size", "160x120"]) == 0
    return out


def test_synth_writes_clip_and_truth(clip):
    truth = json.loads(clip.with_suffix(".json").read_text())
    assert truth["hr_bpm"] == pytest.approx(75) and truth["n_frames"] == 300


def test_estimate_writes_json_csv_report(clip, tmp_path, capsys):
    assert main(["estimate", str(clip), "--out", str(tmp_path), "--quiet"]) == 0
    data = json.loads((tmp_path / "c.json").read_text())
    assert abs(data["heart_rate_bpm"] - 75) <= 3
    assert (tmp_path / "c_waveforms.csv").is_file() and (tmp_path / "c_report.png").is_file()
    assert main(["estimate", str(clip), "--json", "-"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["method"] == "mmrphys"


@pytest.mark.parametrize("args, message", [
    (["estimate", "/nonexistent/video.mp4"], "no such file"),
    (["estimate", "."], "is a directory"),
    (["estimate", "{clip}", "--method", "nope"], "unknown method"),
    (["estimate", "{clip}", "--method", "mmrphys", "--weights", "/nonexistent/w.pth"],
     "no such weights file"),
])
def test_errors_are_one_line_with_exit_2(clip, capsys, args, message):
    args = [a.replace("{clip}", str(clip)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_non_video_and_short_clip(tmp_path, capsys):
    txt = tmp_path / "notes.mp4"
    txt.write_text("not a video " * 100)
    assert main(["estimate", str(txt)]) == 2
    assert "not a readable video" in capsys.readouterr().err
    short = tmp_path / "short.mp4"
    assert main(["synth", str(short), "--duration", "2", "--size", "96x96"]) == 0
    assert main(["estimate", str(short), "--quiet"]) == 2
    assert "minimum is 6 s" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_prints_truth_and_estimate(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--duration", "16", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "heart rate bpm" in out and (tmp_path / "demo_report.png").is_file()
    data = json.loads((tmp_path / "demo.json").read_text())
    assert abs(data["heart_rate_bpm"] - 84) <= 2


@pytest.mark.parametrize("preset,expected", [(None, "1"), ("2", "2")])
def test_cli_runs_numpy_blas_in_one_thread_unless_told(preset, expected):
    """The command sets OPENBLAS_NUM_THREADS=1 (a user's own value wins) before NumPy loads: importing
    the entry point loads no NumPy, so the setting reaches OpenBLAS."""
    code = ("import os, sys\nfrom mmrphys.cli.main import main\nloaded = 'numpy' in sys.modules\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(loaded, os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split()[-2:] == ["False", expected]
