"""Training-step time: the authors' way of training MMRPhys-LEF vs our trainer, alternately in one process.

Batch 4 × 161 × 72 × 72 frames (T = 160), MMRPhys-LEF, RGB, BVP + RSP, TSFM in training, Adam +
OneCycle, SmoothL1 on z-scored signals summed over the two tasks.

- ``reference``: our reference module (``mmrphys.models.create("mmrphys_lef")``, numerically the
  authors' network) used exactly the way the authors' trainer uses theirs: eager, fp32, NCDHW
  contiguous input, ``model(x, labels)``, their loss, ``torch.optim.Adam`` with its defaults.
  (The authors' repository cannot run here; the issue's filer measured this reference within 4 % of
  the authors' own step on the same machine.)
- ``ours``: :class:`mmrphys.training.trainer.Trainer.train_step` as ``mmrphys train`` runs it, with
  ``train.engine`` and ``train.precision`` from the options (default: ``fast`` and ``auto``, i.e.
  bf16 where the CPU has native bf16).

Both start from the same weights and see the same batch. Each round times ``--steps`` steps of
one, then of the other (the order alternates between rounds, so both see the same load); the table
gives the median step time of each, their ratio per round and overall, process CPU time and minor
page faults per step (``resource.getrusage``), and the load average at each round. Peak RSS comes
from one short child process per side (a process's peak cannot be split between two models).

    python benchmarks/train_step.py                          # 6 rounds of 2 steps, 1 thread
    python benchmarks/train_step.py --precision fp32         # ours without bf16
    python benchmarks/train_step.py --malloc retain          # both sides with glibc keeping freed memory
    python benchmarks/train_step.py --json artifacts/train_step.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def load_avg() -> float:
    return os.getloadavg()[0]


def make_batch(batch: int, frames: int, size: int, seed: int = 0) -> dict:
    """A collated batch like the trainer's: frames (B, 3, T, H, W) in 0-255 with a pulse, labels (B, T)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames - 1) / 30.0
    hr = 1.0 + torch.rand(batch, 1, generator=g)
    rr = 0.2 + 0.2 * torch.rand(batch, 1, generator=g)
    bvp = torch.sin(2 * torch.pi * hr * t)
    rsp = torch.sin(2 * torch.pi * rr * t)
    x = 120 + 20 * torch.rand(batch, 3, frames - 1, size, size, generator=g)
    x[:, 1] += 0.5 * bvp[:, :, None, None] + 0.3 * rsp[:, :, None, None]
    return {"frames": x, "bvp": bvp, "rsp": rsp, "id": [str(i) for i in range(batch)]}


def build(args):
    """(reference step, ours step, models) from one seed: identical initial weights."""
    from mmrphys import models
    from mmrphys.training.config import validate
    from mmrphys.training.losses import smooth_l1, zscore
    from mmrphys.training.trainer import Trainer, append_last_frame

    torch.manual_seed(0)
    ref = models.create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3, attention="tsfm")
    ours = copy.deepcopy(ref)
    batch = make_batch(args.batch, args.frames, args.size)
    steps_total = 4 * (args.rounds + 2) * args.steps

    # the authors' way
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps_total)
    ref.train()

    def ref_step() -> float:
        x = append_last_frame(batch["frames"])
        labels = {t: zscore(batch[t]) for t in ("bvp", "rsp")}
        pred = ref(x, labels=labels)
        loss = sum(smooth_l1(pred[t], labels[t]) for t in ("bvp", "rsp"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return float(loss.detach())

    # ours: the trainer's own step (a one-item dataset only to construct it; batches are passed in)
    cfg = validate(
        {
            "device": "cpu",
            "data": {"chunk": args.frames - 1, "size": args.size},
            "train": {
                "epochs": 1,
                "batch_size": args.batch,
                "lr": 1e-3,
                "engine": args.engine,
                "precision": args.precision,
                "progress": False,
            },
        }
    )
    item = {k: v[0] for k, v in batch.items()}  # (C, T, H, W) frames, (T,) labels, id
    trainer = Trainer(cfg, ours, [item] * steps_total, Path(tempfile.gettempdir()) / "mmrphys-bench-unused")
    trainer.scheduler = torch.optim.lr_scheduler.OneCycleLR(
        trainer.optimizer, max_lr=1e-3, total_steps=steps_total
    )
    ours.train()
    from mmrphys.training import fastpath

    swapped = fastpath.swap_conv_blocks(ours) if trainer.engine == "fast" else []
    t0 = time.perf_counter()
    if swapped:
        fastpath.warm_up(trainer.precision)
    warm_s = time.perf_counter() - t0

    def ours_step() -> float:
        return trainer.train_step(batch)["loss"]

    return ref_step, ours_step, trainer, warm_s


def measure(fn, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        c0 = time.process_time()
        loss = fn()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        rows.append(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "sys_s": r1.ru_stime - r0.ru_stime,
                "minflt": r1.ru_minflt - r0.ru_minflt,
                "loss": loss,
            }
        )
    return rows


def peak_rss_child(side: str, args) -> dict:
    """Peak RSS (MB) and minor faults of a child process that runs 3 steps of one side only.

    Run before this process grows: Linux carries a process's peak RSS across ``fork`` + ``exec`` into
    the child's ``ru_maxrss``, so a child started from a 2 GB parent would report at least 2 GB.
    """
    cmd = [
        sys.executable,
        __file__,
        "--only",
        side,
        "--threads",
        str(args.threads),
        "--precision",
        args.precision,
        "--engine",
        args.engine,
        "--malloc",
        args.malloc,
        "--batch",
        str(args.batch),
        "--frames",
        str(args.frames),
        "--size",
        str(args.size),
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=2, help="steps of each side per round")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--frames", type=int, default=161, help="input frames T+1 (T a multiple of 4)")
    ap.add_argument("--size", type=int, default=72)
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    ap.add_argument("--engine", default="fast", choices=("fast", "reference"))
    ap.add_argument(
        "--malloc",
        default="default",
        choices=("default", "retain"),
        help="retain: glibc keeps freed memory (as mmrphys train sets its own process), for both sides",
    )
    ap.add_argument("--no-rss", action="store_true", help="skip the two peak-RSS child processes")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--only", choices=("reference", "ours"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.malloc == "retain":
        from mmrphys.cli.train import glibc_retain_freed_memory

        glibc_retain_freed_memory()
    rss = {}
    if not (args.only or args.no_rss):
        rss = {side: peak_rss_child(side, args) for side in ("reference", "ours")}
    ref_step, ours_step, trainer, warm_s = build(args)

    if args.only:  # child: peak RSS of one side
        fn = ref_step if args.only == "reference" else ours_step
        rows = measure(fn, 3)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        print(json.dumps({"max_rss_mb": ru.ru_maxrss / 1024, "minflt_per_step": rows[-1]["minflt"]}))
        return 0

    info = {
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": trainer.precision,
        "engine": trainer.engine,
        "malloc": args.malloc,
        "batch": [args.batch, 3, args.frames, args.size, args.size],
        "warm_up_s": round(warm_s, 1),
    }
    print(json.dumps(info))
    # one untimed step each (lazy initialisation, oneDNN primitive creation)
    measure(ref_step, 1)
    measure(ours_step, 1)
    res = {"reference": [], "ours": []}
    rounds = []
    for r in range(args.rounds):
        load0 = load_avg()
        order = ("reference", "ours") if r % 2 == 0 else ("ours", "reference")
        got = {}
        for side in order:
            got[side] = measure(ref_step if side == "reference" else ours_step, args.steps)
            res[side] += got[side]
        med = {k: statistics.median(x["wall_s"] for x in v) for k, v in got.items()}
        rounds.append(
            {
                "round": r + 1,
                "load": round(load0, 2),
                "reference_s": round(med["reference"], 3),
                "ours_s": round(med["ours"], 3),
                "ratio": round(med["reference"] / med["ours"], 2),
            }
        )
        print(json.dumps(rounds[-1]), flush=True)

    def summary(rows):
        return {
            "median_s": round(statistics.median(x["wall_s"] for x in rows), 3),
            "cpu_s": round(statistics.median(x["cpu_s"] for x in rows), 3),
            "sys_s": round(statistics.median(x["sys_s"] for x in rows), 3),
            "minflt": int(statistics.median(x["minflt"] for x in rows)),
            "last_loss": round(rows[-1]["loss"], 4),
        }

    table = {side: summary(rows) | rss.get(side, {}) for side, rows in res.items()}
    ratios = [x["ratio"] for x in rounds]
    result = info | {
        "rounds": rounds,
        "sides": table,
        "ratio_of_medians": round(table["reference"]["median_s"] / table["ours"]["median_s"], 2),
        "ratio_per_round": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
        "load_end": round(load_avg(), 2),
    }
    print()
    print(
        f"| side | median s/step | CPU s/step | system CPU s/step | minor faults/step | peak RSS MB | "
        f"loss after {len(res['ours']) + 1} steps |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for side, v in table.items():
        rss = f"{v['max_rss_mb']:.0f}" if "max_rss_mb" in v else "–"
        print(
            f"| {side} | {v['median_s']:.2f} | {v['cpu_s']:.2f} | {v['sys_s']:.2f} | {v['minflt']:,} "
            f"| {rss} | {v['last_loss']:.4f} |"
        )
    rr = result["ratio_per_round"]
    print(
        f"\nreference / ours: {result['ratio_of_medians']:.2f}x (per round: median {rr['median']:.2f}, "
        f"min {rr['min']:.2f}, max {rr['max']:.2f}); threads {info['threads']}; ours {info['precision']}, "
        f"{info['engine']} engine; malloc {args.malloc}; "
        f"load {rounds[0]['load']:.1f} -> {result['load_end']:.1f}"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
