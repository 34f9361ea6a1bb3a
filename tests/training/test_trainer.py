"""The trainer: learning, checkpoints, exact resume after a kill, DDP equivalence (2 gloo ranks)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from training_stubs import PulseChunks, TinyNet

from mmrphys.training.config import validate
from mmrphys.training.trainer import Trainer, append_last_frame, seed_everything

HERE = Path(__file__).parent


def _cfg(**train):
    return validate(
        {
            "seed": 1,
            "device": "cpu",
            "data": {"chunk": 32, "size": 8},
            "train": {"epochs": 3, "batch_size": 4, "lr": 1e-2, "progress": False, "log_every": 1,
                      "precision": "fp32"} | train,
        }
    )


def _run(out, hooks=None, resume=False, cfg=None):
    cfg = cfg or _cfg()
    seed_everything(cfg["seed"])
    model = TinyNet()
    tr = Trainer(cfg, model, PulseChunks(n=12, T=32), out, hooks=hooks)
    tr.fit(resume=resume)
    return tr


def test_append_last_frame():
    x = torch.arange(2 * 3 * 5 * 2 * 2, dtype=torch.float32).reshape(2, 3, 5, 2, 2)
    y = append_last_frame(x)
    assert y.shape == (2, 3, 6, 2, 2) and torch.equal(y[:, :, -1], x[:, :, -1])


def test_training_lowers_loss_and_writes_run_files(tmp_path):
    tr = _run(tmp_path, cfg=_cfg(epochs=6))
    h = tr.history
    assert len(h) == 6 and h[-1]["loss_bvp"] < 0.5 * h[0]["loss_bvp"]
    assert tr.model.seen_labels > 0  # labels reach the model in training (TSFM contract)
    for name in (
        "metrics.csv",
        "metrics.jsonl",
        "curves.png",
        "config.yaml",
        "checkpoints/last.pt",
        "checkpoints/epoch006.pt",
    ):
        assert (tmp_path / name).is_file(), name
    lrs = [
        json.loads(x)["lr"]
        for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if json.loads(x)["kind"] == "step"
    ]
    assert max(lrs) == pytest.approx(1e-2, rel=0.05) and lrs[0] < 1e-3  # OneCycle warm-up to max_lr


class Killed(Exception):
    pass


def test_resume_after_kill_mid_epoch_gives_identical_weights(tmp_path):
    full = _run(tmp_path / "full")

    def kill(tr, epoch, step):
        if epoch == 1 and step == 1:  # second epoch, mid-way (3 steps per epoch)
            raise Killed

    with pytest.raises(Killed):
        _run(tmp_path / "cut", hooks={"after_step": kill})
    resumed = _run(tmp_path / "cut", resume=True)
    assert resumed.global_step == full.global_step == 9
    assert _same_state(full, resumed)  # bit for bit: same batches, same RNG draws, same arithmetic
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]


def _same_state(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_from_a_mid_epoch_checkpoint_is_bit_identical(tmp_path):
    """checkpoint_every=2 with 3 steps per epoch: a kill after step 5 resumes from step 4 (epoch 2, 1 in)."""
    cfg = _cfg(checkpoint_every=2)
    full = _run(tmp_path / "full", cfg=cfg)

    def kill(tr, epoch, step):
        if tr.global_step == 5:
            raise Killed

    with pytest.raises(Killed):
        _run(tmp_path / "cut", hooks={"after_step": kill}, cfg=cfg)
    state = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=False)
    assert (state["global_step"], state["epoch"], state["step_in_epoch"]) == (4, 1, 1)
    assert json.loads((tmp_path / "cut" / "progress.json").read_text())["state"] == "failed"
    resumed = _run(tmp_path / "cut", resume=True, cfg=cfg)
    assert resumed.global_step == full.global_step == 9
    # dropout masks and TSFM draws come from the restored RNG, the batches from the epoch's order:
    # the resumed run is the uninterrupted one, bit for bit
    assert _same_state(full, resumed)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]


KILL_SNIPPET = """
import os, signal, sys
sys.path.insert(0, {here!r})
from training_stubs import PulseChunks, TinyNet
from mmrphys.training.config import validate
from mmrphys.training.trainer import Trainer, seed_everything

cfg = validate({cfg!r})
seed_everything(cfg["seed"])

def kill(tr, epoch, step):
    if tr.global_step == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception handler runs

Trainer(cfg, TinyNet(), PulseChunks(n=12, T=32), {out!r}, hooks={{"after_step": kill}}).fit()
"""


def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path):
    """A real SIGKILL (injected through the trainer's hook, in a child process) at global step 7."""
    cfg = _cfg(checkpoint_every=2)
    full = _run(tmp_path / "full", cfg=cfg)
    code = KILL_SNIPPET.format(here=str(HERE), cfg=cfg, kill_at=7, out=str(tmp_path / "cut"))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=120, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-500:]
    state = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=False)
    assert state["global_step"] == 6 and not list((tmp_path / "cut" / "checkpoints").glob("*.tmp"))
    resumed = _run(tmp_path / "cut", resume=True, cfg=cfg)
    assert resumed.global_step == 9 and _same_state(full, resumed)


def test_progress_file_reports_steps_timing_and_cost(tmp_path):
    tr = _run(tmp_path, cfg=_cfg(epochs=2))
    rec = json.loads((tmp_path / "progress.json").read_text())
    assert rec["state"] == "trained" and rec["step"] == rec["steps"] == 6 and rec["epochs"] == 2
    assert rec["pid"] == os.getpid() and rec["precision"] == "fp32" and rec["engine"] == "fast"
    assert 0 < rec["s_per_step"] < 60 and rec["eta_s"] == 0
    assert rec["cpu_user_s"] > 0 and rec["max_rss_mb"] > 50 and rec["minor_faults"] > 0
    steps = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in steps if r["kind"] == "step"]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6] and all("eta_s" in r for r in steps)
    assert tr.history[-1]["epoch"] == 2


def test_resume_refuses_a_different_config(tmp_path):
    _run(tmp_path, cfg=_cfg(epochs=1))
    from mmrphys.errors import ConfigError

    with pytest.raises(ConfigError, match="different config"):
        _run(tmp_path, resume=True, cfg=_cfg(epochs=1, lr=5e-3))


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it: bind to port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_gloo_ranks_match_single_process(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    subprocess.run(
        [sys.executable, str(HERE / "ddp_worker.py"), str(single)], check=True, env=env, timeout=120
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            str(HERE / "ddp_worker.py"),
            str(ddp),
        ],
        check=True,
        env=env,
        timeout=120,
    )
    r0 = json.loads((ddp / "seen_rank0.json").read_text())
    r1 = json.loads((ddp / "seen_rank1.json").read_text())
    one = json.loads((single / "seen_rank0.json").read_text())
    assert len(r0) == len(r1) == len(one) == 8  # 16 chunks / global batch 4 x 2 epochs
    for a, b, s in zip(r0, r1, one):
        assert len(a) == len(b) == 2 and not set(a) & set(b)  # disjoint halves of each global batch
        assert sorted(a + b) == sorted(s)  # ... that together are the single-process batch
    w1 = torch.load(single / "final_state.pt")
    w2 = torch.load(ddp / "final_state.pt")
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=1e-5), k


def test_batches_without_any_label_of_a_task_still_train(tmp_path):
    ds = PulseChunks(n=8, T=32)
    for it in ds.items:
        it.pop("rsp")  # e.g. UBFC only: a BVP+RSP model sees no RSP label at all
    cfg = _cfg(epochs=1)
    seed_everything(1)
    tr = Trainer(cfg, TinyNet(), ds, tmp_path)
    hist = tr.fit()
    assert hist[0]["loss_rsp"] == 0.0 and hist[0]["loss_bvp"] > 0
