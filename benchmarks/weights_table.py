"""Every named RGB weights through the main job on ubfc-rppg-mini: HR error per subject, MAE, speed.

Rows: POS (the package default), our shipped weights (``ours``: trained on subjects 3, 4, 8, 10, so
those four are not unseen; its MAE on the other four is given apart) and every RGB entry of the
weights catalogue not trained on UBFC-rPPG (thermal / RGB+thermal entries and the UBFC-rPPG-trained
ones are listed as skipped, with the reason). Each runs ``mmrphys.estimate(video, method="mmrphys",
weights=FILE)`` on the whole clip of each subject; ground truth is ``benchmarks/ubfc_table.py``'s
(periodogram peak of the contact PPG over the whole clip). Weights that the main job refuses (the
authors' ONNX exports) are listed with its one-line reason.

Speed: the model call alone on one window of the model's own shape (1, 3, T+1, S, S), after one
warm-up call, median of ``--repeat`` calls, CPU time and wall time, one torch thread.

Files come from ``--reference`` (the authors' release folder, default ../shared/reference/
mmrphys-official) or the weights cache; nothing is downloaded. Each (weights, subject) result is
kept in OUT/results.json as soon as it is measured (atomic write), so an interrupted run resumes;
``--fresh`` measures again. OUT/table.md gets the Markdown table; ``--write-catalogue`` fills the
catalogue's ``measured`` field of each official entry measured on all subjects.

    python benchmarks/weights_table.py --out artifacts/weights_table
    python benchmarks/weights_table.py --out artifacts/weights_table --only pure-mmrphys scamps-lef
    python benchmarks/weights_table.py --out artifacts/weights_table --write-catalogue
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from ubfc_table import DEFAULT_DATA, ground_truth_hr, subject_dirs

DEFAULT_REFERENCE = DEFAULT_DATA.parents[1] / "reference" / "mmrphys-official"
#: Catalogue ``measured`` fields name the dataset by its catalogue key (a test checks it is not one
#: the weights were trained on) and the part of it used.
DATASET, SUBSET = "UBFC-rPPG", "ubfc-rppg-mini (8 subjects)"
WITHIN_BPM = 5.0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rows_to_run(reference: Path, only: list[str] | None) -> tuple[list[dict], list[dict]]:
    """(rows to measure, rows skipped with a reason). A row: name, label, method, weights, entry."""
    from mmrphys.models.weights import catalogue, is_cached

    run = [{"name": "pos", "label": "POS (default method)", "method": "pos", "weights": None,
            "model": "-", "trained_on": "-"}]
    skipped = []
    for w in catalogue().values():
        row = {"name": w.name, "label": (w.aliases or (w.name,))[0], "method": "mmrphys", "model": w.model,
               "trained_on": "+".join(w.trained_on.get("datasets", [])), "kind": w.kind}
        if w.kind == "ours":
            run.append(row | {"weights": w.name, "held_out": list(w.card.get("held_out", []))})
            continue
        channels = w.input.get("channels")
        if channels != "RGB":
            kind = {"T": "thermal", "RGBT": "RGB + thermal"}.get(channels, channels)
            skipped.append(row | {"reason": f"{kind} input; the videos are RGB only"})
            continue
        if DATASET in w.trained_on.get("datasets", []):
            skipped.append(row | {"reason": "trained on UBFC-rPPG"})
            continue
        local = reference / w.file
        path = local if local.is_file() else w.path if is_cached(w) else None
        if path is None:
            skipped.append(row | {"reason": f"file absent from {reference} and the cache "
                                            f"(mmrphys weights download {row['label']})"})
            continue
        run.append(row | {"weights": str(path)})
    if only:
        from mmrphys.models.weights import get_entry

        wanted = {"pos"} & {n.lower() for n in only} | {get_entry(n).name for n in only if n.lower() != "pos"}
        run = [r for r in run if r["name"] in wanted]
    return run, skipped


def time_window(weights, repeat: int) -> dict:
    """CPU and wall seconds (medians) of the model call on one window of the model's own shape."""
    import torch

    from mmrphys.vitals.estimators import make_estimator

    est = make_estimator("mmrphys", weights)
    spec = est.predictor.spec
    x = torch.rand(1, spec.in_channels, est.win, spec.size, spec.size) * spec.pixel_scale
    est.predictor(x)  # warm-up
    cpu, wall = [], []
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        est.predictor(x)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return {"cpu_s": statistics.median(cpu), "wall_s": statistics.median(wall),
            "shape": list(x.shape), "load": os.getloadavg()[0]}


def measure(row: dict, subj: Path, gt_bpm: float) -> dict:
    import mmrphys

    c, t = time.process_time(), time.perf_counter()
    res = mmrphys.estimate(subj / "vid.mp4", method=row["method"], weights=row["weights"], progress=False)
    hr = float(res.heart_rate_bpm)
    return {"gt_bpm": gt_bpm, "hr_bpm": hr, "error_bpm": hr - gt_bpm,
            "cpu_s": time.process_time() - c, "wall_s": time.perf_counter() - t,
            "windows": (res.model or {}).get("windows"), "load": os.getloadavg()[0]}


def stats(errors: list[float]) -> dict:
    e = np.asarray(errors, dtype=float)
    return {"mae": float(np.mean(np.abs(e))), "rmse": float(math.sqrt(np.mean(e ** 2))),
            "within": int(np.sum(np.abs(e) <= WITHIN_BPM)), "n": int(e.size)}


class Results:
    """``{key: record}`` in a JSON file, rewritten atomically after each new record."""

    def __init__(self, path: Path, fresh: bool):
        self.path = path
        self.data = {} if fresh or not path.is_file() else json.loads(path.read_text())

    def get(self, key: str, compute):
        if key not in self.data:
            from mmrphys.training.trainer import write_json_atomic

            self.data[key] = compute()
            write_json_atomic(self.data, self.path)
        return self.data[key]


def run_row(row: dict, subjects: list[Path], gts: dict, results: Results, repeat: int) -> None:
    from mmrphys.errors import WeightsError

    name = row["name"]
    for subj in subjects:
        key = f"{name}::{subj.name}"
        if key not in results.data:
            print(f"  {name} {subj.name} ...", flush=True)
        try:
            rec = results.get(key, lambda s=subj: measure(row, s, gts[s.name]))
        except WeightsError as err:  # the main job refuses these weights: one reason for the row
            row["reason"] = str(err)
            return
        row.setdefault("errors", {})[subj.name] = rec["error_bpm"]
        row.setdefault("records", {})[subj.name] = rec
    if row["weights"] is not None:
        row["speed"] = results.get(f"{name}::speed", lambda: time_window(row["weights"], repeat))


def fmt_err(e: float) -> str:
    text = f"{e:+.1f}"
    return "0.0" if float(text) == 0 else text.replace("-", "−")


def markdown(rows: list[dict], skipped: list[dict], subjects: list[Path], gts: dict) -> str:
    head = ["weights", "architecture", "trained on", *(s.name.replace("subject", "s") for s in subjects),
            "MAE", "RMSE", f"≤{WITHIN_BPM:g} bpm", "model ms/window (CPU)", "estimate s/video"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines.append("| ground truth HR (contact PPG) | | | "
                 + " | ".join(f"{gts[s.name]:.1f}" for s in subjects) + " | | | | | |")
    notes = []
    for r in rows:
        if "errors" not in r:
            continue
        s = stats(list(r["errors"].values()))
        seen = r.get("held_out")
        cells = []
        for subj in subjects:
            e = r["errors"].get(subj.name)
            cell = "" if e is None else fmt_err(e)
            cells.append(f"({cell})" if seen is not None and subj.name not in seen and cell else cell)
        speed = r.get("speed")
        ms = f"{1000 * speed['cpu_s']:.0f}" if speed else "-"
        wall = statistics.median(rec["wall_s"] for rec in r["records"].values())
        lines.append(f"| `{r['label']}` | {r['model']} | {r['trained_on']} | " + " | ".join(cells)
                     + f" | {s['mae']:.2f} | {s['rmse']:.2f} | {s['within']}/{s['n']} | {ms} | {wall:.0f} |")
        if seen is not None:
            h = stats([e for k, e in r["errors"].items() if k in seen])
            notes.append(f"`{r['label']}` on its {h['n']} held-out subjects ({', '.join(seen)}) only: "
                         f"MAE {h['mae']:.2f}, RMSE {h['rmse']:.2f}, within {WITHIN_BPM:g} bpm "
                         f"{h['within']}/{h['n']}; errors in parentheses are on its training subjects.")
    out = "\n".join(lines)
    if notes:
        out += "\n\n" + "\n".join(notes)
    refused = [r for r in rows if "reason" in r] + skipped
    if refused:
        out += "\n\nNot in the table:\n\n" + "\n".join(f"- `{r['label']}` ({r['name']}): {r['reason']}"
                                                         for r in refused)
    return out


def write_catalogue(rows: list[dict], n_subjects: int, date: str) -> list[str]:
    """Fill ``measured`` of each official entry measured on every subject; returns their names."""
    from mmrphys.models.weights import CATALOGUE_FILE, WEIGHTS_DIR
    from mmrphys.training.trainer import write_json_atomic

    path = Path(WEIGHTS_DIR) / CATALOGUE_FILE
    data = json.loads(path.read_text())
    done = {r["name"]: r for r in rows if len(r.get("errors", {})) == n_subjects and "speed" in r}
    filled = []
    for entry in data["weights"]:
        r = done.get(entry["name"])
        if r is None or entry["kind"] == "ours" or DATASET in entry["trained_on"]["datasets"]:
            continue
        s = stats(list(r["errors"].values()))
        entry["measured"] = {"dataset": DATASET, "subset": SUBSET, "hr_mae_bpm": round(s["mae"], 2),
                             "hr_rmse_bpm": round(s["rmse"], 2), "within_5_bpm": f"{s['within']}/{s['n']}",
                             "cpu_ms_per_window": round(1000 * r["speed"]["cpu_s"]), "date": date,
                             "by": "benchmarks/weights_table.py (docs/weights.md)"}
        filled.append(entry["name"])
    write_json_atomic(data, path)
    return filled


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[-3:]))
    ap.add_argument("--out", type=Path, required=True, help="folder for results.json and table.md")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="these weights only (names, aliases or 'pos')")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="the authors' release files")
    ap.add_argument("--repeat", type=int, default=5, help="timed model calls per weights (median)")
    ap.add_argument("--fresh", action="store_true", help="ignore the results kept in OUT/results.json")
    ap.add_argument("--write-catalogue", action="store_true", help="fill the catalogue's 'measured' fields")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if not args.data.is_dir():
        print(f"data folder absent: {args.data}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    subjects = subject_dirs(args.data)
    from mmrphys.errors import WeightsError

    try:
        rows, skipped = rows_to_run(args.reference, args.only)
    except WeightsError as err:  # an unknown --only name
        print(f"weights_table.py: error: {err}", file=sys.stderr)
        return 2
    results = Results(args.out / "results.json", args.fresh)
    gts = {s.name: results.get(f"gt::{s.name}", lambda s=s: ground_truth_hr(s / "ground_truth.txt"))
           for s in subjects}
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    print(f"{len(rows)} rows x {len(subjects)} subjects; CPU {cpu_model()}, {os.cpu_count()} cores, "
          f"1 torch thread, load {load0[0]:.1f}", flush=True)
    for row in rows:
        print(f"{row['name']}:", flush=True)
        run_row(row, subjects, gts, results, args.repeat)
    date = datetime.date.today().isoformat()
    loads = [rec["load"] for k, rec in results.data.items() if isinstance(rec, dict) and "load" in rec]
    text = (f"{date}; CPU {cpu_model()} ({os.cpu_count()} cores), 1 torch thread; load average "
            f"{min(loads, default=load0[0]):.1f}-{max(loads, default=load0[0]):.1f} while measuring; "
            f"this invocation {time.perf_counter() - t0:.0f} s\n\n"
            + markdown(rows, skipped, subjects, gts) + "\n")
    (args.out / "table.md").write_text(text)
    print(text)
    if args.write_catalogue:
        filled = write_catalogue(rows, len(subjects), date)
        print(f"catalogue: 'measured' filled for {len(filled)} entries: {', '.join(filled)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
