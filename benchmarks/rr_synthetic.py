"""Breathing rate (and HR) of the main job on synthetic clips, per motion and lighting condition.

Clips: ``mmrphys.synth.make_clip`` (30 s, 30 fps, 320x240 H.264, the default ``FaceLook``), RR 8,
12, 18, 24 /min paired with HR 62, 78, 95, 118 bpm, under five conditions (``Effects`` overrides):

- ``still``: no sway, no illumination drift, no lighting step (breathing motion and noise as default);
- ``default``: ``Effects()`` as is;
- ``motion``: head sway 0.04 and breathing head motion 0.02 of the face height;
- ``light``: illumination drift 0.1 and a lighting step of 0.25;
- ``noisy``: sensor noise std 6 levels.

Each clip has its own seed, ``SEED_BASE + 10 * condition index + rate index`` (3000-3043): the
default weights' synthetic training clips came from ``mmrphys.synth.dataset`` with seed 0 (clip
seeds 0-11), so none of these was seen in training. Clips are rendered once into ``--workdir`` and
reused. Methods: the package default (``mmrphys.estimate(video)``; its model and weights are recorded
per row), the same model with its breathing rate from its RSP output (``rr_from="model"``), and
``method="pos"``; truth from each clip's JSON. Each (condition, rate, method) row is kept
in ``OUT/results.json`` as soon as it is measured (atomic write), so an interrupted run resumes
(``--fresh`` measures again); ``OUT/table.md`` gets the summary table. One torch thread.

    python benchmarks/rr_synthetic.py [--workdir /tmp/mmrphys_rr_synth] [--out artifacts/rr_synthetic]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from weights_table import Results, cpu_model, fmt_err

ROOT = Path(__file__).resolve().parents[1]
RATES = [(8.0, 62.0), (12.0, 78.0), (18.0, 95.0), (24.0, 118.0)]  # (RR /min, HR bpm)
CONDITIONS = {
    "still": {"sway": 0.0, "drift": 0.0, "light_change": 0.0},
    "default": {},
    "motion": {"sway": 0.04, "breath_motion": 0.02},
    "light": {"drift": 0.1, "light_change": 0.25},
    "noisy": {"noise": 6.0},
}
SEED_BASE = 3000
RR_WITHIN = 3.0  # /min


def clip(workdir: Path, cond_index: int, cond: str, rate_index: int) -> dict:
    """The truth dict of one clip, rendering it into ``workdir`` unless it is already there."""
    from mmrphys.synth import Effects, make_clip

    rr, hr = RATES[rate_index]
    path = workdir / f"{cond}_rr{rr:g}.mp4"
    truth_json = path.with_suffix(".json")
    if path.is_file() and truth_json.is_file():
        return json.loads(truth_json.read_text())
    workdir.mkdir(parents=True, exist_ok=True)
    return make_clip(path, hr_bpm=hr, rr_bpm=rr, duration_s=30, fps=30, size=(320, 240),
                     seed=SEED_BASE + 10 * cond_index + rate_index, effects=Effects(**CONDITIONS[cond]))


def measure(truth: dict, kw: dict) -> dict:
    import mmrphys

    t0 = time.perf_counter()
    rec = {"video": Path(truth["video"]).name, "seed": truth["seed"], "truth_hr_bpm": truth["hr_bpm"],
           "truth_rr_bpm": truth["rr_bpm"]}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = mmrphys.estimate(truth["video"], progress=False, **kw)
    except mmrphys.MmrphysError as err:
        rec["error"] = str(err)
        return rec
    conf = res.confidence or {}
    rec.update(method=res.method, hr_bpm=res.heart_rate_bpm, rr_bpm=res.respiratory_rate_bpm,
               hr_err=res.heart_rate_bpm - truth["hr_bpm"], rr_err=res.respiratory_rate_bpm - truth["rr_bpm"],
               hr_conf=conf.get("heart_rate"), rr_conf=conf.get("respiratory_rate"),
               rsp_source=res.rsp_source, model=res.model, elapsed_s=round(time.perf_counter() - t0, 2))
    return rec


def summary(rows: list[dict]) -> str:
    """Markdown: per condition and method, RR MAE, RR within 3 /min, HR MAE."""
    lines = ["| condition | method | RR MAE /min | RR within 3 /min | HR MAE bpm | RR errors (8/12/18/24) |",
             "|---|---|---|---|---|---|"]
    for cond in CONDITIONS:
        for label in dict.fromkeys(r["label"] for r in rows):
            sel = [r for r in rows if r["condition"] == cond and r["label"] == label]
            ok = [r for r in sel if "error" not in r]
            if not sel:
                continue
            rr = np.abs([r["rr_err"] for r in ok]) if ok else np.array([np.nan])
            hr = np.abs([r["hr_err"] for r in ok]) if ok else np.array([np.nan])
            errs = " / ".join("fail" if "error" in r else fmt_err(r["rr_err"]) for r in sel)
            within = int(np.sum(rr <= RR_WITHIN))
            lines.append(f"| {cond} | {label} | {np.mean(rr):.2f} | {within} of {len(sel)} "
                         f"| {np.mean(hr):.2f} | {errs} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mmrphys_rr_synth"), help="rendered clips")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "rr_synthetic")
    ap.add_argument("--fresh", action="store_true", help="ignore the results kept in OUT/results.json")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from mmrphys.vitals import DEFAULT_METHOD

    # {label: (results key, estimate keywords)}; keys as earlier runs stored them
    methods = {f"default ({DEFAULT_METHOD})": ("default", {}),
               f"{DEFAULT_METHOD}, RR from its RSP output": ("rsp", {"rr_from": "model"}),
               "pos": ("pos", {"method": "pos"})}
    args.out.mkdir(parents=True, exist_ok=True)
    results = Results(args.out / "results.json", args.fresh)
    load0, t0 = os.getloadavg(), time.perf_counter()
    print(f"CPU {cpu_model()}, 1 torch thread, load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, "
          f"{datetime.date.today()}")
    rows = []
    for ci, cond in enumerate(CONDITIONS):
        for ri in range(len(RATES)):
            truth = None
            for label, (tag, kw) in methods.items():
                key = f"{cond}::rr{RATES[ri][0]:g}::{tag}"
                if key not in results.data:
                    truth = truth or clip(args.workdir, ci, cond, ri)
                rec = results.get(key, lambda t=truth, k=kw: measure(t, k))
                rows.append({**rec, "condition": cond, "label": label})
                if "error" in rec:
                    print(f"{cond:8s} {label:18s} {rec['video']}: {rec['error']}", flush=True)
                    continue
                rc = "-" if rec["rr_conf"] is None else f"{rec['rr_conf']:.2f}"
                print(f"{cond:8s} {label:18s} RR {rec['truth_rr_bpm']:5.1f} -> {rec['rr_bpm']:5.1f} ({rc})  "
                      f"HR {rec['truth_hr_bpm']:5.1f} -> {rec['hr_bpm']:5.1f} ({rec['hr_conf']:.2f})  "
                      f"{rec['elapsed_s']:5.1f} s", flush=True)
    table = summary(rows)
    load1 = os.getloadavg()
    print(table)
    print(f"{time.perf_counter() - t0:.0f} s wall this run; load average at the end {load1[0]:.2f}")
    (args.out / "table.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
