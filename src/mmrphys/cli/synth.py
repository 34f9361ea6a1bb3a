"""``mmrphys synth``: synthetic face video with known pulse and breathing, plus its ground truth.

Two modes:
  mmrphys synth CLIP              one clip with chosen HR/RR (demos, tests, a browser's fake camera)
  mmrphys synth dataset --out DIR a training set: many random identities, physiology, motion,
                                  light and camera settings, in the 'generic' dataset layout
                                  (video + signals CSV + face boxes [+ thermal] per recording)

Dataset kinds:
  procedural (default)            drawn cartoon faces (mmrphys.synth.dataset)
  reanimated                      real face stills from YOUR videos (--from-videos, only those
                                  subjects), given a pulse, breathing, motion, light and H.264
                                  (mmrphys.training.reanimate); also writes preview/contact_sheet.png
                                  and enlarged crop videos. Training renders these on the fly.

examples:
  mmrphys synth clip.mp4                              30 s, HR 84, RR 14, 320x240 at 30 fps
  mmrphys synth clip.y4m --duration 20 --size 640x480 (raw y4m, e.g. for Chromium's fake camera)
  mmrphys synth clip.mp4 --hr 62 --rr 9 --thermal --seed 3
  mmrphys synth group.mp4 --faces 3                   3 faces: HR 60/90/120, RR 10/16/22 (truth per face)
  mmrphys synth dataset --out synth/ --n 20           20 recordings x 20 s, 160x120, 2 per identity
  mmrphys synth dataset --out synth/ --n 200 --per-subject 4 --duration 30 --no-thermal --seed 7
  mmrphys synth dataset --kind reanimated --stills stills.npz --out reanim/ --n 8 --duration 10 \\
      --from-videos data/subject3/vid.mp4 data/subject4/vid.mp4
                                  (stills.npz: the stills found in the videos, reused when present)
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
    ds.add_argument("--kind", choices=("procedural", "reanimated"), default="procedural",
                    help="procedural cartoon faces (default) or re-animated real face stills")
    ds.add_argument("--from-videos", nargs="+", default=None, metavar="VIDEO",
                    help="reanimated: videos to take face stills from (their subjects only; the subject "
                         "is the folder of vid.mp4-style names, else the file stem)")
    ds.add_argument("--stills", default=None, metavar="FILE.npz",
                    help="reanimated: still bank file, loaded if it exists, else built from --from-videos "
                         "and saved there")
    ds.add_argument("--crop-size", type=int, default=72, metavar="S",
                    help="reanimated: training crop size of the previews and contact sheet (default 72)")
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
    if args.kind == "reanimated":
        return _run_reanimated(args)
    if args.from_videos or args.stills:
        raise ConfigError("--from-videos/--stills are for --kind reanimated")
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


def _run_reanimated(args) -> int:
    from pathlib import Path

    from mmrphys.training.reanimated_set import write_set
    from mmrphys.training.stills import StillBank

    if args.thermal or args.size is not None:
        raise ConfigError("--kind reanimated renders RGB at the face's native size: leave out --thermal "
                          "and --size (use --crop-size for the preview crops)")
    if args.hr is not None or args.rr is not None:
        raise ConfigError("--hr/--rr are for clips; a reanimated set draws HR 40-180 bpm and RR 6-30 /min")
    if args.crop_size < 2:
        raise ConfigError(f"--crop-size must be at least 2, got {args.crop_size}")
    stills = Path(args.stills) if args.stills else None
    if stills is not None and stills.is_file():
        bank = StillBank.load(stills)
        if args.from_videos:
            raise ConfigError(f"{stills} exists (used as is): leave out --from-videos or name a new file")
    elif args.from_videos:
        bank = StillBank.from_videos(args.from_videos, log=None if args.quiet else print)
        if stills is not None:
            bank.save(stills)
    else:
        raise ConfigError("--kind reanimated needs --from-videos VIDEO... (or an existing --stills FILE)")
    duration = 10.0 if args.duration is None else args.duration
    idx = write_set(args.out_dir, bank, n=args.n, duration_s=duration, fps=args.fps, size=args.crop_size,
                    seed=args.seed, progress=None if args.quiet else print)
    sheet = Path(args.out_dir) / "preview" / "contact_sheet.png"
    print(f"wrote {len(idx['recordings'])} re-animated recordings of {len(bank.subjects)} subjects to "
          f"{args.out_dir} (dataset 'generic'); look at {sheet}")
    return 0
