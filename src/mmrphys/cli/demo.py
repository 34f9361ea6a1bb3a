"""``mmrphys demo``: the main job end to end on a generated clip with known truth.

Generates a 30 s synthetic face video (HR 84 bpm, RR 14 /min) with :mod:`mmrphys.synth`, runs
``mmrphys estimate`` on it, prints the estimates beside the truth and writes the report.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the main job on a generated clip and compare with its truth",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--method", default=None, help="estimation method (default: the package default)")
    p.add_argument("--weights", default=None)
    p.add_argument("--hr", type=float, default=84.0)
    p.add_argument("--rr", type=float, default=14.0)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from mmrphys.synth import make_clip
    from mmrphys.vitals.estimate import estimate
    from mmrphys.vitals.result import check_output_dir

    out = Path(args.out)
    check_output_dir(out, "demo", "--out")  # before generating: an unusable folder stops at once
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    truth = make_clip(out / "demo_clip.mp4", hr_bpm=args.hr, rr_bpm=args.rr, duration_s=args.duration,
                      fps=30.0, size=(320, 240), seed=args.seed)
    t1 = time.perf_counter()
    result = estimate(truth["video"], method=args.method, weights=args.weights,
                      progress=False if args.quiet else None)
    t2 = time.perf_counter()
    files = result.save(out, stem="demo")

    def fmt(x):
        return "n/a" if not math.isfinite(x) else f"{x:6.1f}"

    print(f"clip: {truth['video']} ({truth['duration_s']:.0f} s, generated in {t1 - t0:.1f} s); "
          f"method {result.method}, estimated in {t2 - t1:.1f} s")
    print("                 truth  estimate")
    print(f"heart rate bpm  {truth['hr_bpm']:6.1f}    {fmt(result.heart_rate_bpm)}"
          f"{result.trust_note('heart_rate')}")
    print(f"breaths / min   {truth['rr_bpm']:6.1f}    {fmt(result.respiratory_rate_bpm)}"
          f"{result.trust_note('respiratory_rate')}")
    print(f"signal quality {result.quality['signal_quality']:.2f}")
    for w in result.warnings:
        print(f"warning: {w}")
    for kind, path in files.items():
        print(f"{kind}: {path}")
    return 0
