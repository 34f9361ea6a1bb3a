"""Per-subject HR error of the main job on ubfc-rppg-mini (8 real UBFC-rPPG subjects).

Ground truth: the FFT peak of the contact PPG (row 1 of ground_truth.txt, resampled to a uniform
grid with its own timestamps, row 3) over the whole clip. Estimate: ``mmrphys.estimate`` on the
whole clip with the chosen method (default: the package default, POS).

    python benchmarks/ubfc_table.py [--data ../shared/data/ubfc-rppg-mini] [--method pos] [--weights W]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MMRPHYS_SHARED", ROOT.parent / "shared")) / "data" / "ubfc-rppg-mini"


def ground_truth_hr(gt_file: Path) -> float:
    """HR (bpm) at the periodogram peak of the contact PPG over the whole clip."""
    from mmrphys.signals import heart_rate

    rows = np.loadtxt(gt_file)
    ppg, t = rows[0], rows[2]
    fs = (len(t) - 1) / (t[-1] - t[0])
    grid = t[0] + np.arange(int((t[-1] - t[0]) * fs) + 1) / fs
    return heart_rate(np.interp(grid, t, ppg), fs, preset="mmrphys", harmonic_check=False)


def subject_dirs(data: Path) -> list[Path]:
    """The subject folders of ``data`` that hold a ``vid.mp4``, in subject-number order."""
    return sorted((p for p in data.iterdir() if (p / "vid.mp4").is_file()),
                  key=lambda p: int("".join(c for c in p.name if c.isdigit()) or 0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--method", default=None, help="estimation method (default: the package default)")
    ap.add_argument("--weights", default=None)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    import mmrphys
    from mmrphys.vitals import DEFAULT_METHOD

    if not args.data.is_dir():
        print(f"data folder absent: {args.data}", file=sys.stderr)
        return 1
    subjects = subject_dirs(args.data)
    method = args.method or DEFAULT_METHOD
    print(f"method: {method}   data: {args.data}")
    print(f"{'subject':<10} {'GT HR':>7} {'est HR':>7} {'error':>7} {'quality':>7} {'time s':>7}")
    errors = []
    for subj in subjects:
        gt = ground_truth_hr(subj / "ground_truth.txt")
        t0 = time.perf_counter()
        res = mmrphys.estimate(subj / "vid.mp4", method=method, weights=args.weights, progress=False)
        dt = time.perf_counter() - t0
        err = res.heart_rate_bpm - gt
        errors.append(err)
        print(f"{subj.name:<10} {gt:7.1f} {res.heart_rate_bpm:7.1f} {err:+7.1f} "
              f"{res.quality['signal_quality']:7.2f} {dt:7.1f}")
    e = np.asarray(errors)
    print(f"MAE {np.mean(np.abs(e)):.2f} bpm   RMSE {math.sqrt(np.mean(e ** 2)):.2f} bpm   "
          f"within 5 bpm: {np.sum(np.abs(e) <= 5)}/{e.size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
