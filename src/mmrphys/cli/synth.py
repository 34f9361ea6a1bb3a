"""``mmrphys synth``: synthetic face video with known pulse and breathing, plus its ground truth.

Two modes:
  mmrphys synth CLIP              one clip with chosen HR/RR (demos, tests, a browser's fake camera)
  mmrphys synth dataset --out DIR a training set: many random identities, physiology, motion,
                                  light and camera settings, in the 'generic' dataset layout
                                  (video + signals CSV + face boxes [+ thermal] per recording)

examples:
  mmrphys synth clip.mp4                              30 s, HR 84, RR 14, 320x240 at 30 fps
  mmrphys synth clip.y4m --duration 20 --size 640x480 (raw y4m, e.g. for Chromium's fake camera)
  mmrphys synth clip.mp4 --hr 62 --rr 9 --thermal --seed 3
  mmrphys synth group.mp4 --faces 3                   3 faces: HR 60/90/120, RR 10/16/22 (truth per face)
  mmrphys synth dataset --out synth/ --n 20           20 recordings x 20 s, 160x120, 2 per identity
  mmrphys synth dataset --out synth/ --n 200 --per-subject 4 --duration 30 --no-thermal --seed 7
  mmrphys preprocess --dataset generic --root synth/ --out cache/
                                  (crops with the written face boxes, square x1.5 like detected faces)

See docs/datasets.md for what the generator models and what it does not.
"""

from __future__ import annotations

import argparse

from mmrphys.errors import ConfigError

DATASET_MODE = "dataset"


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 320x240, got {text!r}") from None
    return w, h


def add_parser(sub) -> None:
    p = sub.add_parser("synth", help="write a synthetic face clip with known HR/RR, or a training set",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       usage="mmrphys synth CLIP [clip options]\n"
                             "       mmrphys synth dataset --out DIR [dataset options]")
    p.add_argument("out", metavar="CLIP|dataset",
                   help="output clip: .mp4 (H.264), .y4m (raw), .avi (FFV1 lossless) or .npy; "
                        "or the word 'dataset' for a training set (with --out DIR)")
    clip = p.add_argument_group("clip options")
    clip.add_argument("--hr", type=float, default=None, help="mean heart rate, bpm (default 84)")
    clip.add_argument("--rr", type=float, default=None, help="mean breathing rate, /min (default 14)")
    clip.add_argument("--thermal", action="store_true", help="also write <out>_thermal (nostril temperature)")
    clip.add_argument("--faces", type=int, default=1, metavar="N",
                      help="faces in the clip, 1-4 (default 1); 2-4 get HR 60/90/120/75 and RR 10/16/22/13")
    both = p.add_argument_group("clip and dataset options")
    both.add_argument("--duration", type=float, default=None, metavar="S",
                      help="seconds per clip/recording (default: clip 30, dataset 20)")
    both.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    both.add_argument("--size", type=_size, default=None,
                      help="WxH (default: clip 320x240, dataset 160x120)")
    both.add_argument("--seed", type=int, default=0, help="random seed: same seed, same output")
    ds = p.add_argument_group("dataset options (mmrphys synth dataset --out DIR ...)")
    ds.add_argument("--out", dest="out_dir", metavar="DIR", default=None, help="dataset folder (required)")
    ds.add_argument("--n", type=int, default=20, help="recordings (default 20)")
    ds.add_argument("--per-subject", type=int, default=2, metavar="K",
                    help="recordings per synthetic identity (default 2; splits are by identity)")
    ds.add_argument("--no-thermal", action="store_true", help="no thermal channel (RGB only)")
    ds.add_argument("--quiet", action="store_true", help="no per-recording progress lines")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.out == DATASET_MODE:
        return _run_dataset(args)
    if args.out_dir is not None:
        raise ConfigError(f"--out is for 'mmrphys synth dataset --out DIR'; for a clip give its path only "
                          f"(got {args.out!r} and --out {args.out_dir!r})")
    from mmrphys.synth import make_clip

    duration = 30.0 if args.duration is None else args.duration
    if duration > 3600:
        raise ConfigError("--duration above one hour is not supported")
    if args.faces != 1:
        return _run_multi(args, duration)
    hr = 84.0 if args.hr is None else args.hr
    rr = 14.0 if args.rr is None else args.rr
    truth = make_clip(args.out, hr_bpm=hr, rr_bpm=rr, duration_s=duration, fps=args.fps,
                      size=args.size or (320, 240), thermal=args.thermal, seed=args.seed)
    print(f"wrote {truth['video']} ({truth['n_frames']} frames, HR {truth['hr_bpm']:.1f} bpm, "
          f"RR {truth['rr_bpm']:.1f} /min); truth: {truth['truth_json']}, {truth['truth_csv']}")
    return 0


def _run_dataset(args) -> int:
    from mmrphys.synth.dataset import make_dataset

    if args.out_dir is None:
        raise ConfigError("mmrphys synth dataset needs --out DIR (the folder to write the recordings to)")
    if args.thermal:
        raise ConfigError("--thermal is for clips; datasets have a thermal channel unless --no-thermal")
    if args.hr is not None or args.rr is not None:
        raise ConfigError("--hr/--rr are for clips; a dataset draws HR 48-132 bpm and RR 6-28 /min at random")
    size = args.size or (160, 120)
    if min(size) < 64:
        raise ConfigError(f"--size must be at least 64x64, got {size[0]}x{size[1]}")
    duration = 20.0 if args.duration is None else args.duration
    idx = make_dataset(args.out_dir, n=args.n, per_subject=args.per_subject, duration_s=duration,
                       fps=args.fps, size=size, thermal=not args.no_thermal, seed=args.seed,
                       progress=not args.quiet)
    n_subjects = len({r["subject"] for r in idx["recordings"].values()})
    print(f"wrote {len(idx['recordings'])} recordings of {n_subjects} synthetic subjects to {args.out_dir} "
          f"(dataset 'generic'); next: mmrphys preprocess --dataset generic --root {args.out_dir} "
          f"--out CACHE")
    return 0


def _run_multi(args, duration: float) -> int:
    from mmrphys.synth.multi import make_multi_clip

    if args.hr is not None or args.rr is not None or args.thermal:
        raise ConfigError("--hr/--rr/--thermal are for one face; --faces N gives each face its own rates")
    if not 2 <= args.faces <= 4:
        raise ConfigError(f"--faces must be between 1 and 4, got {args.faces}")
    truth = make_multi_clip(args.out, args.faces, duration_s=duration, fps=args.fps, size=args.size,
                            seed=args.seed)
    rates = ", ".join(f"face {f['face']}: HR {f['hr_bpm']:.0f} RR {f['rr_bpm']:.0f}" for f in truth["faces"])
    print(f"wrote {truth['video']} ({truth['n_frames']} frames; {rates}); truth: {truth['truth_json']}, "
          f"{truth['truth_csv']}")
    return 0
