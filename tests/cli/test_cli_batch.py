"""``mmrphys estimate`` with several inputs: exit codes, one stderr line per broken input, resume,
--force, name collisions, option errors, and Ctrl-C leaving a consistent summary."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmrphys.cli.main import main
from mmrphys.synth import make_clip
from mmrphys.vitals.batch import SUMMARY_COLUMNS, read_summary

ROOT = Path(__file__).resolve().parents[2]
HRS = (64.0, 80.0, 96.0)
HR_TOL_BPM = 3.0  # 8 s synthetic clips with POS: within ~1 bpm


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """a/clip.mp4, b/clip.mp4 (same name), c.mp4 and a broken b/zz_broken.avi."""
    root = tmp_path_factory.mktemp("cli_batch")
    for (rel, hr), seed in zip(zip(("a/clip.mp4", "b/clip.mp4", "c.mp4"), HRS), (1, 2, 3)):
        make_clip(root / rel, hr_bpm=hr, rr_bpm=14, duration_s=8, size=(160, 120), seed=seed)
    (root / "b" / "zz_broken.avi").write_bytes(b"\x00\x01garbage" * 100)
    return root


def _errors(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if "error" in ln.lower()]


def test_batch_exit_1_one_line_per_broken_input_then_resume_and_force(folder, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["estimate", str(folder), "--out", str(out), "--workers", "2"]) == 1
    cap = capsys.readouterr()
    errors = _errors(cap.err)
    assert len(errors) == 1 and "zz_broken.avi" in errors[0] and "Traceback" not in cap.err
    assert errors[0].startswith("mmrphys estimate: error: ")
    assert "1 of 4 inputs failed" in cap.err
    rows = read_summary(out / "summary.csv")
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    by = {r["stem"]: r for r in rows}
    assert set(by) == {"a_clip", "b_clip", "c", "zz_broken"}  # the two clip.mp4 get path-derived names
    assert by["zz_broken"]["status"] == "failed" and by["zz_broken"]["error"]
    for stem, hr in zip(("a_clip", "b_clip", "c"), HRS):
        assert by[stem]["status"] == "ok" and abs(float(by[stem]["heart_rate_bpm"]) - hr) <= HR_TOL_BPM
        assert (out / f"{stem}.json").is_file() and (out / f"{stem}_report.png").is_file()

    good = [str(folder / "a" / "clip.mp4"), str(folder / "b" / "clip.mp4"), str(folder / "c.mp4")]
    assert main(["estimate", *good, "--out", str(out)]) == 0  # all done before: skipped, exit 0
    cap = capsys.readouterr()
    assert "0 done, 3 already done (skipped), 0 failed" in cap.out and _errors(cap.err) == []
    assert [r["status"] for r in read_summary(out / "summary.csv")] == ["skipped"] * 3
    assert main(["estimate", *good[:2], "--out", str(out), "--force", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert [r["status"] for r in read_summary(out / "summary.csv")] == ["ok"] * 2


@pytest.mark.parametrize("argv, message", [
    (["{folder}"], "is a directory: a folder run as a batch: give --out DIR"),
    (["{folder}/c.mp4", "{folder}/a/clip.mp4"], "2 inputs run as a batch: give --out DIR"),
    (["{folder}", "--out", "{tmp}/r", "--json", "x.json"], "--json is for one video"),
    (["{folder}", "--out", "{tmp}/r", "--workers", "0"], "--workers must be between 1 and 64"),
    (["{folder}", "--out", "{tmp}/r", "--method", "nope"], "unknown method"),
    (["{folder}", "{tmp}/empty", "--out", "{tmp}/r"], "empty: no video files"),
    ([], "no video given"),
])
def test_batch_option_errors_stop_before_any_work(folder, tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    argv = [a.replace("{folder}", str(folder)).replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["estimate", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_one_file_keeps_the_single_input_behaviour(folder, tmp_path, capsys):
    out = tmp_path / "one"
    assert main(["estimate", str(folder / "c.mp4"), "--out", str(out), "--workers", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["c.json", "c_report.png", "c_waveforms.csv"]
    assert capsys.readouterr().out.startswith("c: HR ")


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow  # spawns the CLI and its workers, waits for a first result: ~15 s idle
def test_ctrl_c_leaves_a_consistent_summary_and_no_process(folder, tmp_path):
    inputs = tmp_path / "in"
    for k in range(6):  # enough work that Ctrl-C lands while some inputs are still running
        (inputs / f"v{k}").mkdir(parents=True)
        shutil.copy(folder / "c.mp4", inputs / f"v{k}" / "clip.mp4")  # copies: links are one input
    out = tmp_path / "res"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "mmrphys", "estimate", str(inputs), "--out", str(out),
                             "--workers", "2", "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            summary = out / "summary.csv"
            if summary.is_file() and any(r["status"] == "ok" for r in read_summary(summary)):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the batch ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in err and "interrupted" in err, err
    rows = read_summary(out / "summary.csv")
    assert len(rows) == 6 and {r["status"] for r in rows} <= {"ok", "interrupted"}
    assert {r["status"] for r in rows} == {"ok", "interrupted"}
    for r in rows:  # a row that says ok has its complete result set; an interrupted one has no file
        files = [out / f"{r['stem']}{s}" for s in (".json", "_waveforms.csv", "_report.png")]
        assert all(f.is_file() for f in files) if r["status"] == "ok" else not any(f.exists() for f in files)
    assert not [f.name for f in out.iterdir() if f.name.startswith(".")]  # no temporary file
    deadline = time.monotonic() + 10
    while _alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(proc.pid), "a worker process outlived the interrupted batch"
    # the rerun finishes the interrupted inputs only
    done = sum(r["status"] == "ok" for r in rows)
    again = subprocess.run([sys.executable, "-m", "mmrphys", "estimate", str(inputs), "--out", str(out),
                            "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    statuses = [r["status"] for r in read_summary(out / "summary.csv")]
    assert statuses.count("skipped") == done and statuses.count("ok") == 6 - done
