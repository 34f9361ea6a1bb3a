"""``mmrphys train``: train a model from a YAML config (single process, or DDP under torchrun).

examples:
  mmrphys train configs/default/mmrphys_lef_default.yaml --data ubfc-rppg=../shared/data/ubfc-rppg-mini
  mmrphys train CONFIG --data ... --out runs/x --background    detach; progress in runs/x/train.log
  mmrphys train --status runs/x                       step, loss, s/step, ETA and cost of a run
  mmrphys train CONFIG --data ... --out runs/x --resume        continue an interrupted run
  mmrphys train CONFIG --set train.precision=fp32     force fp32 (default auto: bf16 where native)
  torchrun --nproc_per_node 2 -m mmrphys train CONFIG --data pure=/data/PURE     the same, on 2 GPUs
  mmrphys train CONFIG --data ubfc-rppg=DIR --weights scamps-lef     start from named weights (model.init)

A run checkpoints every train.checkpoint_every steps (default 10) and at the end of every epoch;
--resume continues from the last checkpoint to the same weights as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

LOG_FILE = "train.log"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a YAML config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", help="YAML config (see configs/ and docs/training.md)")
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="root folder of a dataset named in the config (repeatable)",
    )
    p.add_argument("--out", default=None, help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=2 (repeatable)",
    )
    p.add_argument("--no-test", action="store_true", help="skip the test protocol after training")
    p.add_argument("--weights", default=None, metavar="PATH_OR_NAME",
                   help="initial weights: a file or named weights ('mmrphys weights list'; a remote one is "
                        "downloaded once); the same as --set model.init=...")
    p.add_argument(
        "--background",
        action="store_true",
        help=f"check the config and the run folder, then train in a detached process (log: RUN/{LOG_FILE})",
    )
    p.add_argument("--status", metavar="RUN_DIR", default=None, help="show the progress and cost of a run")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from mmrphys.errors import ConfigError

    if args.status:
        return show_status(Path(args.status))
    if not args.config:
        raise ConfigError("a CONFIG file is required (or --status RUN_DIR)")
    if args.weights:  # a JSON string is a YAML string: any path or name passes --set unchanged
        args.set = [*args.set, f"model.init={json.dumps(args.weights)}"]
    if args.background:
        return start_background(args)
    from mmrphys.training.config import load_config
    from mmrphys.training.runner import train_main

    cfg = load_config(args.config, args.set)
    apply_process_settings(cfg["threads"])
    return train_main(args)


# --------------------------------------------------------------------------- process settings
def apply_process_settings(threads: int | None, retain_freed_memory: bool = True) -> dict:
    """This process's settings for training: torch threads and glibc's handling of freed memory.

    Only the CLI calls this (it owns its process). ``retain_freed_memory``: glibc serves every block
    over its mmap threshold with a fresh ``mmap`` and unmaps it on ``free``, so each large activation
    of every step faults its pages in again (the default training run spent a third of its CPU time
    in the kernel, 88 million minor page faults); with ``M_MMAP_MAX = 0`` and a 1 GiB
    ``M_TRIM_THRESHOLD`` freed blocks stay in the heap and are reused (one arena, so that OpenMP
    threads share them). The process then keeps its peak memory until it exits.
    """
    import torch

    done = {}
    if threads:
        torch.set_num_threads(int(threads))
        done["threads"] = int(threads)
    if retain_freed_memory:
        done["malloc"] = glibc_retain_freed_memory()
    return done


def glibc_retain_freed_memory() -> bool:
    """``mallopt`` as above; False where glibc is not the allocator (nothing changed then)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # <malloc.h>
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 1 << 30)) and bool(
        mallopt(m_arena_max, 1)
    )


# --------------------------------------------------------------------------------- background
def child_argv(args, out: Path) -> list[str]:
    """The same ``mmrphys train`` command without ``--background`` (the run folder spelled out)."""
    argv = ["train", str(args.config), "--out", str(out)]
    for d in args.data:
        argv += ["--data", d]
    for s in args.set:
        argv += ["--set", s]
    if args.resume:
        argv.append("--resume")
    if args.no_test:
        argv.append("--no-test")
    return argv


def start_background(args) -> int:
    """Check everything that can be checked here, then train in a detached process and return.

    The child runs in a new session (``setsid``): it has no controlling terminal, so closing the
    shell (SIGHUP) or Ctrl-C in it does not reach it. Its stdout and stderr go to ``RUN/train.log``.
    """
    from mmrphys.training.config import load_config, parse_data_args, resolve_paths
    from mmrphys.training.runner import check_run, run_dir
    from mmrphys.training.trainer import PROGRESS, write_json_atomic

    cfg = resolve_paths(load_config(args.config, args.set), parse_data_args(args.data))
    out = run_dir(cfg, args.out)
    check_run(cfg, out, args.resume)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / LOG_FILE
    cmd = [sys.executable, "-m", "mmrphys", *child_argv(args, out)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    write_json_atomic(
        {"state": "starting", "pid": proc.pid, "command": cmd, "cwd": os.getcwd(), "started": time.time()},
        out / PROGRESS,
    )
    print(f"training in the background: pid {proc.pid}")
    print(f"  log:    {log_path}")
    print(f"  status: mmrphys train --status {out}")
    print(f"  stop:   kill {proc.pid}   (then add --resume to the same command to continue)")
    return 0


# ------------------------------------------------------------------------------------- status
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.is_file():  # a reused pid is not our run
        try:
            return b"mmrphys" in cmdline.read_bytes()
        except OSError:
            return True
    return True


def _last_line(path: Path, needle: str = "") -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip() and needle in ln]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def show_status(run: Path) -> int:
    """Print where a run stands (running, finished, stopped) with its progress and cost."""
    from mmrphys.errors import InputError
    from mmrphys.training.trainer import PROGRESS, format_duration

    path = run / PROGRESS
    if not path.is_file():
        raise InputError(f"{run}: not a run folder (no {PROGRESS})")
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        raise InputError(f"{path}: unreadable progress file") from None
    state, pid = rec.get("state", "?"), rec.get("pid")
    live_states = ("starting", "running", "trained")
    stopped = state == "failed" or (state in live_states and bool(pid) and not _alive(int(pid)))
    if stopped:
        failed = _last_line(run / LOG_FILE, "error:")
        state = f"stopped ({failed})" if failed else "stopped (killed or crashed; continue with --resume)"
    elif state in live_states:
        state = f"{'testing' if state == 'trained' else state} (pid {pid})"
    print(f"{run}: {state}")
    if "step" in rec:
        parts = [f"epoch {rec['epoch']}/{rec['epochs']}", f"step {rec['step']}/{rec['steps']}"]
        if "loss" in rec:
            parts.append(f"loss {rec['loss']:.4f}")
        if "s_per_step" in rec:
            parts.append(f"{rec['s_per_step']:.2f} s/step")
        if rec.get("eta_s") and rec["step"] < rec["steps"]:
            parts.append(f"ETA {format_duration(rec['eta_s'])}")
        print("  " + ", ".join(parts))
        wall = format_duration(rec.get("wall_s", 0))
        print(
            f"  cost: {wall} wall, CPU {rec.get('cpu_user_s', 0):.0f} s user + "
            f"{rec.get('cpu_sys_s', 0):.0f} s system, peak RSS {rec.get('max_rss_mb', 0):.0f} MB, "
            f"{rec.get('minor_faults', 0) / 1e6:.2f} M minor page faults "
            f"({rec.get('precision')}, {rec.get('engine')} engine, {rec.get('threads')} thread(s))"
        )
        ago = time.time() - rec.get("updated", time.time())
        print(f"  updated {format_duration(ago)} ago")
    if (run / LOG_FILE).is_file():
        print(f"  log: {run / LOG_FILE}")
    cmd = rec.get("command")
    if stopped and isinstance(cmd, list) and "train" in cmd:
        again = ["mmrphys", *cmd[cmd.index("train") :]]
        if "--resume" not in again:
            again.append("--resume")
        print(f"  resume: {' '.join(again)} --background")
    return 0
