"""The trainer: learning, checkpoints, exact resume after a kill, DDP equivalence (2 gloo ranks)."""

from __future__ import annotations

import json
import os
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
            "train": {"epochs": 3, "batch_size": 4, "lr": 1e-2, "progress": False, "log_every": 1} | train,
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
    for k, v in full.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k], atol=1e-6), k
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in full.history], abs=1e-6)


def test_resume_refuses_a_different_config(tmp_path):
    _run(tmp_path, cfg=_cfg(epochs=1))
    from mmrphys.errors import ConfigError

    with pytest.raises(ConfigError, match="different config"):
        _run(tmp_path, resume=True, cfg=_cfg(epochs=1, lr=5e-3))


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
            "--master_port",
            "29517",
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
