"""Fault battery, ``mmrphys train``: bad configs, bad overrides, bad run folders, caches and checkpoints.

Every case fails before any data is prepared or any model trained (the checks run first), so each
takes a few seconds. Each states the name its one error line must carry and checks that nothing was
written: no run folder created, a checkpoint already there left byte for byte, no detached process.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from battery.case import Case, CaseRun, all_of, files_under

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# a folder nobody can create files in, root included (sysfs refuses mkdir); chmod where we are not root
UNWRITABLE_SYS = Path("/sys/mmrphys-battery")

GOOD = """name: battery
seed: 1
model: {name: mmrphys_sef, tasks: [bvp], attention: none}
data:
  size: 9
  chunk: 32
  cache: CACHE
  train:
    - name: ubfc-rppg
      path: DATA
train: {epochs: 1, batch_size: 2}
"""


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def absent(path: Path):
    """A check: ``path`` was not created by the run."""

    def check(run: CaseRun) -> str | None:
        return f"{path.name} was created" if path.exists() else None

    return check


def unchanged(path: Path):
    """A check: ``path`` still holds the bytes it had before the run (and no temp file beside it)."""
    before = _digest(path)

    def check(run: CaseRun) -> str | None:
        if not path.is_file():
            return f"{path.name} was removed"
        if _digest(path) != before:
            return f"{path.name} was rewritten"
        left = [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
        return f"temp file left: {left[0].name}" if left else None

    return check


def no_files(folder: Path):
    def check(run: CaseRun) -> str | None:
        left = files_under(folder)
        return f"left {len(left)} file(s) in {folder.name}/" if left else None

    return check


def _fake_checkpoint(path: Path, config_hash: str) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config_hash": config_hash, "epoch": 1, "global_step": 3}, path)
    return path


def cases(root: Path) -> list[Case]:
    root = Path(root)
    data = _write(root / "data" / "subject1" / "readme.txt", "not a video").parent.parent
    cache = root / "cache"
    good_text = GOOD.replace("CACHE", str(cache)).replace("DATA", str(data))
    good = _write(root / "good.yaml", good_text)
    out = root / "out"
    c: list[Case] = []

    def train(name, *argv, must=None, check=None, expect=2):
        c.append(
            Case(
                f"train/{name}",
                ["train", *map(str, argv)],
                expect_exit=expect,
                must_name=must,
                check=check,
                timeout_s=60,
            )
        )

    # --- the config file itself ------------------------------------------------------------------
    binary = _write(root / "binary.yaml", bytes(range(256)) * 8)
    train("binary-config", binary, "--out", out / "a", must="binary.yaml", check=absent(out / "a"))
    nul = _write(root / "nul.yaml", "name: x\n\x00\x00seed: 1\n")
    train("nul-bytes-config", nul, "--out", out / "b", must="nul.yaml", check=absent(out / "b"))
    as_list = _write(root / "list.yaml", "- name: x\n- seed: 1\n")
    train("config-is-a-list", as_list, "--out", out / "c", must="expected a mapping", check=absent(out / "c"))
    scalar = _write(root / "scalar.yaml", "just some words\n")
    train("config-is-a-scalar", scalar, "--out", out / "d", must="scalar.yaml", check=absent(out / "d"))
    bad_yaml = _write(root / "badyaml.yaml", "name: [unclosed\nseed: {\n")
    train("config-not-yaml", bad_yaml, "--out", out / "e", must="not valid YAML", check=absent(out / "e"))
    unknown = _write(root / "unknown.yaml", good_text + "colour: blue\n")
    train("unknown-top-key", unknown, "--out", out / "f", must="colour: unknown key", check=absent(out / "f"))
    nested = _write(root / "nested.yaml", good_text.replace("batch_size: 2}", "batch_size: 2, lrr: 0.1}"))
    train(
        "unknown-nested-key",
        nested,
        "--out",
        out / "g",
        must="train.lrr: unknown key",
        check=absent(out / "g"),
    )
    bad_value = _write(root / "badvalue.yaml", good_text.replace("epochs: 1", "epochs: -3"))
    train("negative-epochs", bad_value, "--out", out / "h", must="train.epochs", check=absent(out / "h"))
    bad_type = _write(root / "badtype.yaml", good_text.replace("epochs: 1", "epochs: ten"))
    train("epochs-not-a-number", bad_type, "--out", out / "i", must="train.epochs", check=absent(out / "i"))
    train("missing-config", root / "nope.yaml", "--out", out / "j", must="nope.yaml", check=absent(out / "j"))
    train(
        "config-is-a-folder", root / "data", "--out", out / "k", must="is a folder", check=absent(out / "k")
    )
    empty = _write(root / "empty.yaml", "")
    train("empty-config", empty, "--out", out / "l", must="data.train", check=absent(out / "l"))
    rsp_chunk = _write(
        root / "rspchunk.yaml",
        good_text.replace("tasks: [bvp]", "tasks: [bvp, rsp]").replace("chunk: 32", "chunk: 30"),
    )
    train(
        "rsp-chunk-not-multiple-of-4",
        rsp_chunk,
        "--out",
        out / "m",
        must="data.chunk",
        check=absent(out / "m"),
    )
    train("no-config-at-all", must="CONFIG")

    # --- overrides and --data ---------------------------------------------------------------------
    train(
        "set-unknown-key",
        good,
        "--set",
        "train.speed=3",
        "--out",
        out / "n",
        must="train.speed",
        check=absent(out / "n"),
    )
    train(
        "set-bad-yaml",
        good,
        "--set",
        "train.lr=[1,",
        "--out",
        out / "o",
        must="train.lr",
        check=absent(out / "o"),
    )
    train(
        "set-without-equals",
        good,
        "--set",
        "train.lr",
        "--out",
        out / "p",
        must="KEY=VALUE",
        check=absent(out / "p"),
    )
    train(
        "precision-unknown",
        good,
        "--set",
        "train.precision=fp8",
        "--out",
        out / "q",
        must="train.precision",
        check=absent(out / "q"),
    )
    train(
        "amp-conflicts-with-fp32",
        good,
        "--set",
        "train.amp=true",
        "--set",
        "train.precision=fp32",
        "--out",
        out / "r",
        must="train.amp",
        check=absent(out / "r"),
    )
    train(
        "threads-zero",
        good,
        "--set",
        "threads=0",
        "--out",
        out / "s",
        must="threads",
        check=absent(out / "s"),
    )
    train(
        "data-without-equals",
        good,
        "--data",
        "ubfc-rppg",
        "--out",
        out / "t",
        must="--data",
        check=absent(out / "t"),
    )
    nopath = _write(root / "nopath.yaml", good_text.replace(f"      path: {data}\n", ""))
    train(
        "dataset-path-not-given",
        nopath,
        "--out",
        out / "u",
        must="--data ubfc-rppg=PATH",
        check=absent(out / "u"),
    )
    train(
        "dataset-path-missing",
        good,
        "--data",
        f"ubfc-rppg={root / 'no-such-data'}",
        "--out",
        out / "v",
        must="no-such-data",
        check=absent(out / "v"),
    )
    train(
        "unknown-model",
        good,
        "--set",
        "model.name=mmrphys_xl",
        "--out",
        out / "w",
        must="mmrphys_xl",
        check=absent(out / "w"),
    )
    train(
        "bad-model-option",
        good,
        "--set",
        "model.options={wings: 2}",
        "--out",
        out / "x",
        must="model.options",
        check=absent(out / "x"),
    )
    train(
        "init-weights-missing",
        good,
        "--set",
        f"model.init={root / 'missing.pt'}",
        "--out",
        out / "y",
        must="missing.pt",
        check=absent(out / "y"),
    )

    # --- the run folder ---------------------------------------------------------------------------
    taken = _write(root / "taken-by-a-file", "hello")
    train("out-is-a-file", good, "--out", taken, must="taken-by-a-file", check=unchanged(taken))
    train("out-under-a-file", good, "--out", taken / "run", must="is a file", check=unchanged(taken))
    train("out-unwritable-sysfs", good, "--out", UNWRITABLE_SYS / "run", must="cannot write")
    if not IS_ROOT:
        locked = root / "locked"
        locked.mkdir()
        os.chmod(locked, 0o555)
        train(
            "out-in-read-only-folder",
            good,
            "--out",
            locked / "run",
            must="cannot write",
            check=no_files(locked),
        )
    train(
        "resume-missing-run-folder",
        good,
        "--resume",
        "--out",
        out / "never-made",
        must="does not exist",
        check=absent(out / "never-made"),
    )
    run_a = root / "runs" / "a"
    ckpt_a = _fake_checkpoint(run_a / "checkpoints" / "last.pt", "0" * 16)
    train("out-holds-a-run-without-resume", good, "--out", run_a, must="--resume", check=unchanged(ckpt_a))
    train(
        "resume-checkpoint-of-another-config",
        good,
        "--out",
        run_a,
        "--resume",
        must="different config",
        check=unchanged(ckpt_a),
    )
    run_b = root / "runs" / "b"
    ckpt_b = _write(run_b / "checkpoints" / "last.pt", os.urandom(2048))
    train(
        "resume-checkpoint-random-bytes",
        good,
        "--out",
        run_b,
        "--resume",
        must="last.pt",
        check=unchanged(ckpt_b),
    )
    run_c = root / "runs" / "c"
    ckpt_c = _write(run_c / "checkpoints" / "last.pt", b"")
    train(
        "resume-checkpoint-empty", good, "--out", run_c, "--resume", must="last.pt", check=unchanged(ckpt_c)
    )
    run_d = root / "runs" / "d"
    import torch

    ckpt_d = run_d / "checkpoints" / "last.pt"
    ckpt_d.parent.mkdir(parents=True)
    torch.save([1, 2, 3], ckpt_d)
    train(
        "resume-checkpoint-not-ours",
        good,
        "--out",
        run_d,
        "--resume",
        must="not an mmrphys",
        check=unchanged(ckpt_d),
    )

    # --- the cache --------------------------------------------------------------------------------
    train(
        "cache-unwritable-sysfs",
        good,
        "--set",
        f"data.cache={UNWRITABLE_SYS / 'cache'}",
        "--out",
        out / "z1",
        must="data.cache",
        check=absent(out / "z1"),
    )
    cache_file = _write(root / "cache-is-a-file", "x")
    train(
        "cache-is-a-file",
        good,
        "--set",
        f"data.cache={cache_file}",
        "--out",
        out / "z2",
        must="data.cache",
        check=all_of(absent(out / "z2"), unchanged(cache_file)),
    )
    if not IS_ROOT:
        ro_cache = root / "ro-cache"
        ro_cache.mkdir()
        os.chmod(ro_cache, 0o555)
        train(
            "cache-read-only",
            good,
            "--set",
            f"data.cache={ro_cache}",
            "--out",
            out / "z3",
            must="data.cache",
            check=absent(out / "z3"),
        )

    # --- background and status -------------------------------------------------------------------
    train(
        "background-bad-config",
        binary,
        "--background",
        "--out",
        out / "bg1",
        must="binary.yaml",
        check=absent(out / "bg1"),
    )
    train(
        "background-out-is-a-file",
        good,
        "--background",
        "--out",
        taken,
        must="taken-by-a-file",
        check=unchanged(taken),
    )
    train(
        "background-resume-missing",
        good,
        "--background",
        "--resume",
        "--out",
        out / "bg2",
        must="does not exist",
        check=absent(out / "bg2"),
    )
    train("status-of-a-folder-that-is-no-run", "--status", root / "data", must="not a run folder")
    train("status-of-a-missing-folder", "--status", root / "nowhere", must="nowhere")
    garbled = _write(root / "runs" / "garbled" / "progress.json", "{not json")
    train(
        "status-progress-file-garbled",
        "--status",
        garbled.parent,
        must="progress.json",
        check=unchanged(garbled),
    )
    stale = _write(
        root / "runs" / "stale" / "progress.json",
        json.dumps(
            {"state": "running", "pid": 2**22 + 12345, "epoch": 1, "epochs": 2, "step": 3, "steps": 8}
        ),
    )
    c.append(
        Case(
            "train/status-of-a-killed-run",
            ["train", "--status", str(stale.parent)],
            expect_exit=0,
            check=_says("stopped"),
        )
    )
    return c


def _says(word: str):
    def check(run: CaseRun) -> str | None:
        return None if word in run.stdout else f"status does not say {word!r}: {run.stdout.strip()[:120]}"

    return check
