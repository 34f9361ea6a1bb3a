"""What ``mmrphys train`` and ``mmrphys evaluate`` do, as functions of parsed arguments."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import torch

from mmrphys.errors import ConfigError, InputError
from mmrphys.training import distributed
from mmrphys.training.config import load_config, parse_data_args, resolve_paths

WEIGHTS_FILE = "weights.pt"


def build_model(cfg: dict):
    """The config's model (seeded beforehand by the caller), optionally initialised from weights."""
    from mmrphys import models

    m = cfg["model"]
    kw = {"tasks": tuple(m["tasks"]), "in_channels": m["in_channels"], "attention": m["attention"]}
    if m["attention"] == "none" and not m["name"].startswith(("mmrphys", "factorizephys")):
        kw.pop("attention")  # baselines (PhysNet, EfficientPhys, ...) have no attention option
    try:
        model = models.create(m["name"], **(kw | m["options"]))
    except TypeError as err:  # an option the model does not take
        raise ConfigError(f"model.options: {err}") from None
    if m["init"]:
        from mmrphys.models.checkpoints import load_model

        model.load_state_dict(load_model(m["init"]).state_dict(), strict=False)
    return model


def run_dir(cfg: dict, out: str | None) -> Path:
    """The run folder: ``--out`` or ``runs/<config name>``."""
    return Path(out or Path("runs") / cfg["name"])


def _writable(path: Path, what: str) -> None:
    """Raise :class:`ConfigError` unless ``path`` (or the folder it would be made in) takes new files."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what} {path}: {probe} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".mmrphys-write-test-", dir=probe)
    except OSError as err:
        raise ConfigError(f"{what} {path}: cannot write in {probe} ({err.strerror})") from None
    os.close(fd)
    os.unlink(tmp)


def check_run(cfg: dict, out: Path, resume: bool) -> None:
    """Everything about the run folder and the cache that can fail, checked before any data work.

    ``out`` must be a folder (or creatable) we can write in; without ``resume`` it must not hold a
    checkpoint (it would be overwritten); with ``resume`` it must exist. The cache must be writable
    (preprocessing takes a lock file even when every recording is cached).
    """
    from mmrphys.training.data import default_cache
    from mmrphys.training.trainer import CHECKPOINT, read_checkpoint

    if not cfg["data"]["train"]:
        raise ConfigError("data.train: no dataset to train on (list at least one entry)")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    if resume and not out.is_dir():
        raise ConfigError(f"--resume: run folder {out} does not exist (start the run without --resume)")
    ckpt = out / "checkpoints" / CHECKPOINT
    if not resume and ckpt.is_file():
        raise ConfigError(
            f"--out {out}: holds a run already (checkpoints/{CHECKPOINT}); add --resume to continue it "
            "or choose another --out"
        )
    if resume and ckpt.is_file():
        read_checkpoint(ckpt, cfg)
    _writable(out, "--out")
    cache = Path(cfg["data"]["cache"] or default_cache())
    _writable(cache, "data.cache")


def train_main(args) -> int:
    """Train (single process or DDP), save ``weights.pt``, then run the test protocol on rank 0.

    Process settings (threads, allocator) are the caller's: ``mmrphys train`` applies them
    (:mod:`mmrphys.cli.train`).
    """
    from mmrphys.training.data import build_test_sets, build_train_set
    from mmrphys.training.trainer import Trainer, seed_everything

    cfg = load_config(args.config, getattr(args, "set", None))
    cfg = resolve_paths(cfg, parse_data_args(args.data))
    out = run_dir(cfg, args.out)
    dist = distributed.setup(cfg["device"])
    if dist.is_main:
        check_run(cfg, out, args.resume)
    log = print if dist.is_main else (lambda *a, **k: None)
    t0 = time.time()
    seed_everything(cfg["seed"])
    model = build_model(cfg)  # before the data: a bad model name or init file fails in a second
    try:
        want_test = cfg["data"]["test"] and not getattr(args, "no_test", False)
        # rank 0 preprocesses into the cache (one writer per cache folder); the others read it after
        if dist.is_main:
            train_set = _data(build_train_set, cfg, log)
            tests = _data(build_test_sets, cfg, log) if want_test else {}
        dist.barrier()
        if not dist.is_main:
            train_set = _data(build_train_set, cfg, log, prepare=False)
            tests = _data(build_test_sets, cfg, log, prepare=False) if want_test else {}
        trainer = Trainer(cfg, model, train_set, out, dist=dist)
        log(
            f"[train] {len(train_set)} chunks of {cfg['data']['chunk']} frames; out={out}; "
            f"world_size={dist.world_size}; device={dist.device}; precision={trainer.precision}; "
            f"engine={trainer.engine}; threads={torch.get_num_threads()}; data {time.time() - t0:.0f} s"
        )
        trainer.fit(resume=args.resume, evaluate_fn=_epoch_eval(tests, cfg, dist) if tests else None)
        if dist.is_main:
            from mmrphys.models.checkpoints import save_weights

            meta = {
                "config": cfg,
                "manifest_hash": trainer.manifest,
                "epochs": cfg["train"]["epochs"],
                "train_chunks": len(train_set),
                "history": trainer.history,
                "train_subjects": train_set.subjects,
                "precision": trainer.precision,
                "engine": trainer.engine,
            }
            tmp = out / f".{WEIGHTS_FILE}.tmp"
            save_weights(model, tmp, meta=meta)
            os.replace(tmp, out / WEIGHTS_FILE)
            log(f"[train] weights: {out / WEIGHTS_FILE} ({time.time() - t0:.0f} s so far)")
        if tests:
            results = test_model(model, tests, cfg, out / "test", dist)
            if dist.is_main:
                for name in results:
                    log(f"[test] {name}:\n" + (out / "test" / name / "table.md").read_text())
        if dist.is_main:
            trainer.write_progress(state="done")
        log(f"[train] done in {time.time() - t0:.0f} s")
    finally:
        dist.close()
    return 0


def _data(build, cfg: dict, log, prepare: bool = True):
    """``build(cfg, ...)`` with file-system errors turned into one line naming the file."""
    try:
        return build(cfg, log, prepare=prepare)
    except OSError as err:
        where = err.filename or cfg["data"]["cache"] or "data"
        raise InputError(f"{where}: {err.strerror or err}") from None


def _epoch_eval(tests: dict, cfg: dict, dist):
    """``eval.every_epoch``: HR MAE per test set after each epoch (logged only; the last epoch is tested)."""
    from mmrphys.training.evaluate import aggregate, predict_video, score_video

    def run(model, epoch):
        out = {}
        for name, videos in tests.items():
            rows = []
            for v in videos[dist.rank :: dist.world_size]:
                p = predict_video(model, v.frames, cfg["data"]["chunk"], device=dist.device)
                rows += score_video(v.id, p, v.labels, v.fs, cfg["data"]["chunk"], cfg["eval"]["preset"])
            rows = [r for part in dist.gather(rows) for r in part]
            for task, m in aggregate(rows).items():
                out[f"{name}_{task}_mae"] = m["MAE"][0]
        model.train()
        return out

    return run


def test_model(model, tests: dict, cfg: dict, out_dir: Path, dist=None) -> dict:
    """Run the test protocol for every test set (the last epoch's model, as the paper does)."""
    from mmrphys.training.evaluate import run_protocol

    results = {}
    device = dist.device if dist is not None else torch.device("cpu")
    model = model.to(device)
    for name, videos in tests.items():
        results[name] = run_protocol(
            model,
            videos,
            out_dir / name,
            cfg["data"]["chunk"],
            cfg["eval"]["preset"],
            cfg["eval"]["window_s"],
            device=device,
            dist=dist,
            title=f"{cfg['name']} → {name}",
            plots=cfg["eval"]["plots"],
        )
    return results


def evaluate_main(args) -> int:
    """Evaluate a run folder (its config's test sets) or a weights file (on ``--data`` entries)."""
    from mmrphys.models.checkpoints import load_model
    from mmrphys.training.config import validate
    from mmrphys.training.data import build_test_sets

    target = Path(args.target)
    data_paths = parse_data_args(args.data)
    if target.is_dir():
        cfg_path = target / "config.yaml"
        if not cfg_path.is_file():
            raise InputError(f"{target}: not a run folder (no config.yaml)")
        cfg = load_config(cfg_path)
        weights = target / WEIGHTS_FILE
        if not weights.is_file():
            raise InputError(f"{target}: no {WEIGHTS_FILE} (training not finished? try --resume)")
        if not cfg["data"]["test"]:
            cfg["data"]["test"] = [{"name": n, "path": p} for n, p in data_paths.items()]
            cfg = validate(cfg)
        out = Path(args.out or target / "eval")
    else:
        if not data_paths:
            raise ConfigError("--data NAME=PATH is required when evaluating a weights file")
        weights = target
        cfg = validate(
            {
                "name": target.stem,
                "data": {
                    "test": [{"name": n, "path": p, "subjects": args.subjects} for n, p in data_paths.items()]
                },
            }
        )
        out = Path(args.out or f"eval_{target.stem}")
    model = load_model(str(weights))
    cfg["data"]["size"] = args.size or getattr(model, "input_size", None) or cfg["data"]["size"]
    if args.chunk:
        cfg["data"]["chunk"] = args.chunk
    if args.preset:
        cfg["eval"]["preset"] = args.preset
    if args.window_s:
        cfg["eval"]["window_s"] = args.window_s
    cfg = resolve_paths(cfg, data_paths)
    results = test_model(model, build_test_sets(cfg), cfg, out)
    for name in results:
        print(f"{name}:\n" + (out / name / "table.md").read_text())
    (out / "summary.json").write_text(json.dumps({k: v["metrics"] for k, v in results.items()}, indent=2))
    return 0
