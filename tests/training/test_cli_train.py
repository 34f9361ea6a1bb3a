"""``mmrphys train``: bad input ends in one line (exit 2) before any work; --status; --background runs
detached from the shell that started it, and a SIGKILLed background run resumes to the same weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mmrphys.cli.main import main

TINY = """name: tiny
seed: 1
threads: 1
model: {{name: mmrphys_sef, tasks: [bvp, rsp], attention: tsfm}}
data:
  size: 9
  chunk: 32
  workers: 1
  cache: {cache}
  train:
    - name: synth
      options: {{n_clips: 2, duration_s: 4.5, seed: 5, render_size: 48}}
train: {{epochs: 3, batch_size: 2, checkpoint_every: 2, log_every: 1, engine: reference, precision: fp32}}
"""


def _one_error_line(capsys, code, expect):
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("mmrphys train: error: "), err
    assert expect in err[0], err[0]


def test_binary_config_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "weird.yaml"
    cfg.write_bytes(bytes(range(256)))
    code = main(["train", str(cfg), "--out", str(tmp_path / "run")])
    _one_error_line(capsys, code, "weird.yaml: not a text (UTF-8) YAML file")
    assert not (tmp_path / "run").exists()


def test_out_taken_by_a_file_fails_before_any_data(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.format(cache=tmp_path / "cache"))
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    code = main(["train", str(cfg), "--out", str(taken)])
    _one_error_line(capsys, code, f"--out {taken}: exists and is not a folder")
    assert taken.read_text() == "keep me" and not (tmp_path / "cache").exists()  # nothing rendered


def test_resume_of_a_missing_run_and_a_run_without_resume(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.format(cache=tmp_path / "cache"))
    code = main(["train", str(cfg), "--out", str(tmp_path / "nope"), "--resume"])
    _one_error_line(capsys, code, "does not exist")
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"precious")
    code = main(["train", str(cfg), "--out", str(tmp_path / "run")])
    _one_error_line(capsys, code, "holds a run already")
    code = main(["train", str(cfg), "--out", str(tmp_path / "run"), "--resume"])
    _one_error_line(capsys, code, "unreadable checkpoint")
    assert ckpt.read_bytes() == b"precious" and not (tmp_path / "cache").exists()


def test_status_reports_running_stopped_and_done(tmp_path, capsys):
    # a live process whose command line names mmrphys stands in for a training run
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "mmrphys"])
    rec = {
        "state": "running",
        "pid": sleeper.pid,
        "epoch": 2,
        "epochs": 6,
        "step": 24,
        "steps": 96,
        "loss": 0.5,
        "s_per_step": 2.0,
        "eta_s": 144.0,
        "wall_s": 60.0,
        "cpu_user_s": 50.0,
        "cpu_sys_s": 5.0,
        "max_rss_mb": 900.0,
        "minor_faults": 1_500_000,
        "precision": "bf16",
        "engine": "fast",
        "threads": 1,
        "updated": time.time(),
    }
    (tmp_path / "progress.json").write_text(json.dumps(rec))
    try:
        assert main(["train", "--status", str(tmp_path)]) == 0
    finally:
        sleeper.kill()
        sleeper.wait()
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(f": running (pid {sleeper.pid})")
    assert "step 24/96" in out and "2.00 s/step" in out and "ETA 2m24s" in out and "1.50 M minor" in out
    rec["pid"] = 2**22 + 4321  # above Linux's pid_max: no such process
    (tmp_path / "progress.json").write_text(json.dumps(rec))
    (tmp_path / "train.log").write_text("[train] step 3\nmmrphys train: error: disk full\n")
    main(["train", "--status", str(tmp_path)])
    assert "stopped (mmrphys train: error: disk full)" in capsys.readouterr().out
    rec["state"] = "done"
    (tmp_path / "progress.json").write_text(json.dumps(rec))
    main(["train", "--status", str(tmp_path)])
    assert capsys.readouterr().out.splitlines()[0].endswith(": done")


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))


def _wait(pred, timeout_s, what):
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        got = pred()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _progress(run: Path) -> dict:
    try:
        return json.loads((run / "progress.json").read_text())
    except (OSError, ValueError):
        return {}


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=False)["state_dict"]


@pytest.mark.slow
def test_background_run_outlives_its_shell_and_resumes_after_sigkill(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.format(cache=tmp_path / "cache"))
    exe = sys.executable
    # reference: the same run in the foreground, uninterrupted
    subprocess.run(
        [exe, "-m", "mmrphys", "train", str(cfg), "--out", str(tmp_path / "full")],
        check=True,
        env=_env(),
        timeout=600,
        capture_output=True,
    )
    # start in the background from a shell that then exits; the run must not belong to its session
    run = tmp_path / "bg"
    shell = subprocess.run(
        ["bash", "-c", f"{exe} -m mmrphys train {cfg} --out {run} --background"],
        env=_env(),
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert shell.returncode == 0, shell.stderr
    assert f"mmrphys train --status {run}" in shell.stdout
    pid = json.loads((run / "progress.json").read_text())["pid"]
    assert os.getsid(pid) == pid != os.getsid(0)  # its own session: no SIGHUP from the shell's terminal
    # SIGKILL it once it has checkpointed mid-run (checkpoint_every 2; 4 steps per epoch)
    _wait(lambda: _progress(run).get("step", 0) >= 3, 300, "step 3 of the background run")
    os.kill(pid, signal.SIGKILL)
    _wait(
        lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
        30,
        "the killed run to exit",
    )
    status = subprocess.run(
        [exe, "-m", "mmrphys", "train", "--status", str(run)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "stopped" in status.stdout, status.stdout
    # resume in the background again; it must finish and equal the uninterrupted run bit for bit
    subprocess.run(
        [exe, "-m", "mmrphys", "train", str(cfg), "--out", str(run), "--resume", "--background"],
        check=True,
        env=_env(),
        timeout=120,
        capture_output=True,
    )
    _wait(lambda: _progress(run).get("state") == "done", 600, "the resumed run to finish")
    full, resumed = _weights(tmp_path / "full" / "weights.pt"), _weights(run / "weights.pt")
    assert full.keys() == resumed.keys() and all(torch.equal(full[k], resumed[k]) for k in full)
    log = (run / "train.log").read_text()
    assert "[train] step 12/12" in log and "resume" in (run / "metrics.jsonl").read_text()
