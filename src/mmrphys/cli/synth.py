"""``mmrphys synth``: write a synthetic face clip with known pulse and breathing, plus its ground truth.

examples:
  mmrphys synth clip.mp4                              30 s, HR 84, RR 14, 320x240 at 30 fps
  mmrphys synth clip.y4m --duration 20 --size 640x480 (raw y4m, e.g. for Chromium's fake camera)
  mmrphys synth clip.mp4 --hr 62 --rr 9 --thermal --seed 3
"""

from __future__ import annotations

import argparse

from mmrphys.errors import ConfigError


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 320x240, got {text!r}") from None
    return w, h


def add_parser(sub) -> None:
    p = sub.add_parser("synth", help="write a synthetic face clip with known HR/RR (+ ground truth)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output clip: .mp4 (H.264), .y4m (raw), .avi (FFV1 lossless) or .npy")
    p.add_argument("--hr", type=float, default=84.0, help="mean heart rate, bpm (default 84)")
    p.add_argument("--rr", type=float, default=14.0, help="mean breathing rate, /min (default 14)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds (default 30)")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--size", type=_size, default=(320, 240), help="WxH (default 320x240)")
    p.add_argument("--thermal", action="store_true", help="also write <out>_thermal (nostril temperature)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    from mmrphys.synth import make_clip

    if args.duration > 3600:
        raise ConfigError("--duration above one hour is not supported")
    truth = make_clip(args.out, hr_bpm=args.hr, rr_bpm=args.rr, duration_s=args.duration, fps=args.fps,
                      size=args.size, thermal=args.thermal, seed=args.seed)
    print(f"wrote {truth['video']} ({truth['n_frames']} frames, HR {truth['hr_bpm']:.1f} bpm, "
          f"RR {truth['rr_bpm']:.1f} /min); truth: {truth['truth_json']}, {truth['truth_csv']}")
    return 0
