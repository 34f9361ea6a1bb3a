"""Leave-subjects-out: train one model per fold, score every subject only by the model that never saw it.

    python -m mmrphys.training.loso configs/default/mmrphys_default.yaml \\
        --data ubfc-rppg=../shared/data/ubfc-rppg-mini --out runs/loso \\
        --reference ../shared/reference/mmrphys-official/PURE_MMRPhys_SFSAM_Label_Epoch9.pth ...

The subjects of the ``--data`` dataset (natural sort) are dealt round-robin into ``--folds`` folds
(8 subjects, 4 folds: {3, 12}, {4, 14}, {8, 17}, {10, 22}). For fold k the config's entries of that
dataset train on the other subjects (entries built from it, such as re-animated synthetic data,
likewise) and its test set is fold k. Each fold is an ordinary ``mmrphys train`` run in
``<out>/fold<k>`` (resumable: a finished fold is kept, an interrupted one continues with
``--resume``). Every held-out subject is then scored two ways:

1. the test protocol (:func:`mmrphys.training.compare.protocol`: the cached 72×72 crops, chunks of
   180 frames, HR from the whole clip), and
2. the main job, ``mmrphys.estimate(video, method="mmrphys", weights=<fold weights>)`` end to end,
   HR against the contact PPG's HR of the whole clip.

Reference rows on the same subjects: POS and each ``--reference`` weights file (weights not trained
on this dataset, so every subject is unseen by them). Writes ``<out>/table.md`` and ``<out>/loso.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mmrphys.errors import ConfigError


def natural_key(s: str):
    digits = "".join(c for c in str(s) if c.isdigit())
    return (int(digits) if digits else -1, str(s))


def make_folds(subjects: list[str], n_folds: int) -> list[list[str]]:
    """Round-robin over the naturally sorted subjects: fold k holds subjects k, k + n, k + 2n, ..."""
    subs = sorted({str(s) for s in subjects}, key=natural_key)
    if not 2 <= n_folds <= len(subs):
        raise ConfigError(f"--folds must be between 2 and the {len(subs)} subjects, got {n_folds}")
    return [subs[k::n_folds] for k in range(n_folds)]


def fold_config(raw: dict, dataset: str, train_subjects: list[str], test_subjects: list[str]) -> dict:
    """The config of one fold: ``dataset`` entries restricted to ``train_subjects``; test on the others.

    Restricted are the entries whose ``--data`` key or ``name`` is ``dataset`` (a re-encoded copy of it
    under another key, :mod:`mmrphys.training.recode`, holds the same subjects) and entries built from
    it (``options.source``, e.g. re-animated stills)."""
    cfg = copy.deepcopy(raw)
    cfg["name"] = f"{cfg.get('name', 'run')}_{'-'.join(test_subjects)}"
    data = cfg.setdefault("data", {})
    found = False
    for entry in data.get("train", []):
        if dataset in ((entry.get("key") or entry.get("name")), entry.get("name")):
            entry["subjects"] = list(train_subjects)
            entry.pop("exclude_subjects", None)
            found = True
        opts = entry.get("options") or {}
        if opts.get("source") == dataset:  # e.g. re-animated stills of the training subjects only
            opts["subjects"] = list(train_subjects)
    if not found:
        raise ConfigError(f"the config trains on no {dataset!r} entry; nothing to leave out")
    data["test"] = [{"name": dataset, "subjects": list(test_subjects)}]
    return cfg


def _run_fold(cfg_path: Path, out: Path, data_args: list[str], log_path: Path) -> None:
    done = out / "weights.pt"
    if done.is_file():
        return
    cmd = [sys.executable, "-m", "mmrphys", "train", str(cfg_path), "--out", str(out), "--no-test"]
    for d in data_args:
        cmd += ["--data", d]
    if (out / "checkpoints").is_dir():
        cmd.append("--resume")
    t0 = time.time()
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    if rc != 0 or not done.is_file():
        raise RuntimeError(f"fold training failed (exit {rc}); see {log_path}")
    (out / "cost.json").write_text(json.dumps({"wall_s": round(time.time() - t0, 1)}))


def _score(recs, videos, methods: dict, out: Path) -> tuple[dict, list[dict]]:
    """Protocol results and main-job rows; ``methods``: {name: (model or "pos", (method, weights))}."""
    from mmrphys.training.compare import protocol, via_estimate

    proto = protocol(videos, {n: m for n, (m, _) in methods.items()}, out / "protocol")
    rows = via_estimate(recs, {n: e for n, (_, e) in methods.items()}, save_dir=out / "results")
    return proto, rows


def summarise(per_subject: dict[str, dict[str, dict]]) -> list[dict]:
    """``{method: {subject: {"protocol": err, "estimate": err}}}`` -> one row per method with mean ± SE."""
    rows = []
    for name, subs in per_subject.items():
        row = {"method": name, "n": len(subs)}
        for view in ("protocol", "estimate", "rr_estimate"):
            e = np.array([s[view] for s in subs.values() if s.get(view) is not None], dtype=float)
            if e.size == 0:
                continue
            a = np.abs(e)
            row[f"{view}_mae"] = float(a.mean())
            row[f"{view}_mae_se"] = float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else float("nan")
            row[f"{view}_rmse"] = float(math.sqrt(np.mean(e**2)))
            row[f"{view}_within3"] = int(np.sum(a <= 3.0))
        row["errors"] = {
            s: v.get("estimate") for s, v in sorted(subs.items(), key=lambda kv: natural_key(kv[0]))
        }
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    subjects = list(rows[0]["errors"]) if rows else []
    head = (
        "| method | protocol HR MAE ± SE | RMSE | main job HR MAE ± SE | RMSE | ≤ 3 bpm "
        "| RR vs PPG-derived, MAE ± SE | "
        + " | ".join(subjects)
        + " |"
    )
    lines = [head, "|" + "---|" * (7 + len(subjects))]

    def cell(r, view):
        if f"{view}_mae" not in r:
            return "-", "-"
        return f"{r[f'{view}_mae']:.2f} ± {r[f'{view}_mae_se']:.2f}", f"{r[f'{view}_rmse']:.2f}"

    for r in rows:
        p, pr = cell(r, "protocol")
        e, er = cell(r, "estimate")
        rr, _ = cell(r, "rr_estimate")
        errs = " | ".join("-" if r["errors"].get(s) is None else f"{r['errors'][s]:+.1f}" for s in subjects)
        lines.append(
            f"| {r['method']} | {p} | {pr} | {e} | {er} | {r.get('estimate_within3', '-')}/{r['n']} | {rr} "
            f"| {errs} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import warnings

    import yaml

    from mmrphys.data import get_loader
    from mmrphys.models.checkpoints import load_model
    from mmrphys.training.config import load_config, parse_data_args
    from mmrphys.training.data import select_recordings, test_videos

    p = argparse.ArgumentParser(
        prog="python -m mmrphys.training.loso",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="training config (its entries of the --data dataset are split into folds)")
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="the dataset to leave subjects out of (first), and any other data the config needs",
    )
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--out", default="runs/loso")
    p.add_argument(
        "--reference",
        action="extend",
        nargs="+",
        default=[],
        metavar="WEIGHTS",
        help="weights (files or catalogue names) scored on every subject as reference rows (not trained on "
             "this dataset); several after one flag or the flag repeated",
    )
    p.add_argument("--no-pos", action="store_true")
    p.add_argument(
        "--only-folds", type=int, nargs="*", default=None, help="train/score only these folds (0-based)"
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data_paths = parse_data_args(a.data)
    dataset, path = next(iter(data_paths.items()))
    load_config(a.config, a.set)  # validate once, with a clear error
    raw = yaml.safe_load(Path(a.config).read_text()) or {}
    from mmrphys.training.config import apply_override

    for item in a.set:
        apply_override(raw, item)
    all_recs = get_loader(dataset).recordings(path)
    folds = make_folds([r.subject_id for r in all_recs], a.folds)
    subjects = [s for f in folds for s in f]
    per_subject: dict[str, dict[str, dict]] = {}

    def record(name, rows, proto_res):
        mine = per_subject.setdefault(name, {})
        for r in rows:
            subj = str(r["video"])
            mine.setdefault(subj, {})["estimate"] = None if r["hr"] is None else float(r["hr"] - r["gt_hr"])
            if r.get("rr") is not None and math.isfinite(r.get("gt_rr", float("nan"))):
                mine[subj]["rr_estimate"] = float(r["rr"] - r["gt_rr"])
        for row in proto_res["rows"]:
            if row["task"] == "bvp":
                mine.setdefault(str(row["video"]), {})["protocol"] = float(row["pred_rate"] - row["gt_rate"])

    ours = f"ours ({Path(a.config).stem}, LOSO)"
    for k, held in enumerate(folds):
        if a.only_folds is not None and k not in a.only_folds:
            continue
        train_subs = [s for s in subjects if s not in held]
        fdir = out / f"fold{k}"
        fdir.mkdir(parents=True, exist_ok=True)
        cfg_path = out / f"fold{k}.yaml"
        cfg_path.write_text(yaml.safe_dump(fold_config(raw, dataset, train_subs, held), sort_keys=False))
        print(f"[loso] fold {k}: train {train_subs}, test {held}", flush=True)
        _run_fold(cfg_path, fdir, a.data, out / f"fold{k}.log")
        spec = {"name": dataset, "path": path, "subjects": held}
        recs = select_recordings(all_recs, spec)
        videos = test_videos(spec, size=72, chunk=180, log=lambda *_: None)
        model = load_model(str(fdir / "weights.pt"))
        size = int(getattr(model, "input_size", 72))
        if size != 72:
            videos = test_videos(spec, size=size, chunk=180, log=lambda *_: None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto, rows = _score(
                recs, videos, {ours: (model, ("mmrphys", str(fdir / "weights.pt")))}, fdir / "score"
            )
        record(ours, rows, proto[ours])

    refs = {} if a.no_pos else {"POS": ("pos", ("pos", None))}
    for w in a.reference:
        refs[f"{Path(w).stem} (reference)"] = (load_model(w), ("mmrphys", w))
    if refs:
        held = [s for k, f in enumerate(folds) if a.only_folds is None or k in a.only_folds for s in f]
        spec = {"name": dataset, "path": path, "subjects": held}
        recs = select_recordings(all_recs, spec)
        for name, m in refs.items():
            size = 72 if isinstance(m[0], str) else int(getattr(m[0], "input_size", 72))
            videos = test_videos(spec, size=size, chunk=180, log=lambda *_: None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                proto, rows = _score(recs, videos, {name: m}, out / "references")
            record(name, rows, proto[name])

    rows = summarise(per_subject)
    table = markdown(rows)
    (out / "table.md").write_text(table)
    (out / "loso.json").write_text(
        json.dumps({"folds": folds, "rows": rows, "per_subject": per_subject}, indent=1)
    )
    print(table)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
