"""Calibration of the confidence threshold (``mmrphys.signals.quality.CONFIDENCE_THRESHOLD``).

Runs the main job where the truth is known and prints, per run, the HR/RR error beside the
confidence the result reports:

1. synthetic faces (``mmrphys.synth``, 20 s, 160x120, 30 fps, HR 55-115, RR 10-20) at falling pulse
   amplitude and rising sensor noise, with POS and GREEN;
2. the 8 UBFC-rPPG subjects of ubfc-rppg-mini with POS, CHROM and GREEN (HR truth: the contact
   PPG's spectral peak, as in ``benchmarks/ubfc_table.py``).

A threshold is good when every HR off by more than 5 bpm (RR: 3 /min) falls below it and few right
ones do; the summary lines count both for the shipped threshold.

    python benchmarks/confidence.py [--data ../shared/data/ubfc-rppg-mini] [--skip-synthetic] [--skip-ubfc]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ubfc_table import DEFAULT_DATA, ground_truth_hr  # noqa: E402

LEVELS = [(0.012, 2.0), (0.004, 4.0), (0.002, 8.0), (0.001, 12.0), (0.0005, 16.0), (0.0, 2.0)]


def synthetic_runs(methods=("pos", "green"), seeds=(0, 1)) -> list[dict]:
    import mmrphys
    from mmrphys.synth import Effects, draw_face, physiology, render_frames

    rows = []
    for amplitude, noise in LEVELS:
        for seed in seeds:
            rng = np.random.default_rng(100 + seed)
            hr, rr = float(rng.uniform(55, 115)), float(rng.uniform(10, 20))
            fx = Effects(pulse_amplitude=amplitude, noise=noise)
            scene, phys = draw_face(160, 120, seed=seed), physiology(hr, rr, 20.0, 30.0, seed=seed)
            frames = np.stack([f for f, _ in render_frames(scene, phys, fx, seed=seed)])
            for method in methods:
                res = mmrphys.estimate(frames, fps=30, method=method, progress=False)
                rows.append(_row(f"synth a={amplitude} n={noise} s{seed}", method, res, hr, rr))
    return rows


def ubfc_runs(data: Path, methods=("pos", "chrom", "green")) -> list[dict]:
    import mmrphys

    rows = []
    for subj in sorted(p for p in data.iterdir() if (p / "vid.mp4").is_file()):
        gt = ground_truth_hr(subj / "ground_truth.txt")
        for method in methods:
            res = mmrphys.estimate(subj / "vid.mp4", method=method, progress=False)
            rows.append(_row(f"ubfc {subj.name}", method, res, gt, float("nan")))
    return rows


def _row(case, method, res, hr, rr) -> dict:
    c = res.confidence
    return {"case": case, "method": method, "hr_err": res.heart_rate_bpm - hr, "hr_conf": c["heart_rate"],
            "rr_err": res.respiratory_rate_bpm - rr, "rr_conf": c["respiratory_rate"],
            "quality": res.quality["signal_quality"], "warned": any("unreliable" in w for w in res.warnings)}


def report(rows: list[dict]) -> None:
    from mmrphys.signals.quality import CONFIDENCE_THRESHOLD as th

    print(f"{'case':<28} {'method':<6} {'HR err':>7} {'HR conf':>7} {'RR err':>7} {'RR conf':>7} {'SQI':>5}")
    for r in rows:
        rc = "" if r["rr_conf"] is None else f"{r['rr_conf']:.2f}"
        print(f"{r['case']:<28} {r['method']:<6} {r['hr_err']:+7.1f} {r['hr_conf']:7.2f} {r['rr_err']:+7.1f} "
              f"{rc:>7} {r['quality']:5.2f}")
    for vital, err_key, conf_key, tol in (("HR", "hr_err", "hr_conf", 5.0), ("RR", "rr_err", "rr_conf", 3.0)):
        known = [r for r in rows if np.isfinite(r[err_key]) and r[conf_key] is not None]
        wrong = [r for r in known if abs(r[err_key]) > tol]
        right = [r for r in known if abs(r[err_key]) <= tol]
        flagged_wrong = sum(r[conf_key] < th for r in wrong)
        flagged_right = sum(r[conf_key] < th for r in right)
        print(f"{vital} (threshold {th:.2f}): {flagged_wrong}/{len(wrong)} wrong ones (error > {tol:g}) "
              f"flagged; {flagged_right}/{len(right)} right ones flagged; highest confidence of a wrong one "
              f"{max((r[conf_key] for r in wrong), default=float('nan')):.2f}, lowest of a right one "
              f"{min((r[conf_key] for r in right), default=float('nan')):.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-ubfc", action="store_true")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = [] if args.skip_synthetic else synthetic_runs()
    if not args.skip_ubfc and args.data.is_dir():
        rows += ubfc_runs(args.data)
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
