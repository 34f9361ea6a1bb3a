"""``mmrphys estimate``: heart rate, breathing rate, waveforms and a report from a face video.

examples:
  mmrphys estimate video.mp4                          print HR/RR (default method: POS)
  mmrphys estimate video.mp4 --out results/           + result JSON, waveform CSV, PNG report
  mmrphys estimate video.mp4 --method chrom --json hr.json
  mmrphys estimate video.mp4 --method mmrphys        our shipped MMRPhys-LEF weights (see MODEL_CARD.md)
  mmrphys estimate video.mp4 --method mmrphys --weights PATH.pth   your weights or the authors' checkpoints
                                                     (MMRPhys, FactorizePhys, PhysNet, EfficientPhys)
  mmrphys estimate video.mp4 --method mmrphys --backend compiled   compiled once, cached, faster after
  mmrphys estimate stream.h264 --fps 30              a raw stream without timestamps: give its rate
  mmrphys estimate group.mp4 --out results/           every face: JSON "faces", CSV bvp_<id>, PNG rows
  mmrphys estimate group.mp4 --max-faces 1            the main face only (present longest, then largest)

Options are checked before the video is decoded: a bad --fps, --threads, --method, or an --out/--json
that cannot be written stops at once with one line naming it (exit 2). Results are written atomically:
an error never leaves a half-written file, nor a JSON and CSV without the PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: Most torch threads --threads accepts.
MAX_THREADS = 256


def add_parser(sub) -> None:
    from mmrphys.vitals.estimate import DEFAULT_METHOD, UNSUPERVISED_METHODS

    p = sub.add_parser("estimate", help="HR, RR, waveforms and a report from a face video",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", help="video file (mp4, avi, mkv, y4m, ... anything FFmpeg decodes)")
    p.add_argument("--method", default=None,
                   help=f"mmrphys (shipped weights unless --weights) or {', '.join(UNSUPERVISED_METHODS)} "
                        f"(default: {DEFAULT_METHOD})")
    p.add_argument("--weights", default=None, help="weights file (ours or the authors' .pth) or shipped name")
    p.add_argument("--out", default=None,
                   help="folder for <video>.json, <video>_waveforms.csv, <video>_report.png")
    p.add_argument("--json", default=None, metavar="FILE", help="write the result JSON here ('-' = stdout)")
    p.add_argument("--fps", type=float, default=None,
                   help="override the file's frame rate (1-1000; for streams without timestamps)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for model inference (default 1: decoding uses the other core)")
    p.add_argument("--backend", choices=("eager", "compiled"), default="eager",
                   help="model inference: eager (default) or compiled ahead of time (needs a C++ compiler; "
                        "the first run compiles for 20-100 s and caches the result in $MMRPHYS_CACHE)")
    p.add_argument("--max-faces", type=int, default=None, metavar="N",
                   help="follow and report at most N faces at a time (default: all; the top-level results "
                        "are the main face's: present longest, then largest)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary line")
    p.set_defaults(func=run)


def check_args(args) -> dict:
    """Validate the options before any work; one-line :class:`MmrphysError` naming the option else.

    Returns the output paths: ``{"out": {kind: path}}`` and/or ``{"json": path}``.
    """
    from mmrphys.errors import ConfigError
    from mmrphys.video.reader import check_fps
    from mmrphys.vitals.result import check_output_dir, check_output_file

    if args.fps is not None:
        check_fps(args.fps, "--fps")
    if not 1 <= args.threads <= MAX_THREADS:
        raise ConfigError(f"--threads must be between 1 and {MAX_THREADS}, got {args.threads}")
    if args.max_faces is not None and args.max_faces < 1:
        raise ConfigError(f"--max-faces must be at least 1, got {args.max_faces}")
    if args.method is not None and not args.method.strip():
        raise ConfigError("--method is empty: name a method (e.g. pos, chrom, mmrphys)")
    paths: dict = {}
    if args.out is not None:
        paths["out"] = check_output_dir(args.out, Path(args.video).stem, "--out")
    if args.json is not None and args.json != "-":
        paths["json"] = check_output_file(args.json, "--json")
        if "out" in paths and Path(args.json).resolve() in {p.resolve() for p in paths["out"].values()}:
            raise ConfigError(f"--json {args.json} is also one of the --out files: pick another name")
    return paths


def run(args) -> int:
    from mmrphys.vitals.estimate import UNSUPERVISED_METHODS, estimate

    paths = check_args(args)
    if args.method and args.method.lower() not in UNSUPERVISED_METHODS:
        from mmrphys.cli.process import configure_inference

        configure_inference(args.threads)
    result = estimate(args.video, method=args.method, weights=args.weights, fps=args.fps,
                      progress=False if args.quiet else None, backend=args.backend, max_faces=args.max_faces)
    stem = Path(args.video).stem
    written = {}
    if "out" in paths:
        written = result.save(args.out, stem=stem)
    if args.json == "-":
        json.dump(result.to_dict(), sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
    elif "json" in paths:
        written["json"] = result.write_json(paths["json"])
    if not args.quiet and args.json != "-":
        print(f"{stem}: {result.summary()}")
        if len(result.faces) > 1:
            for face in result.faces:
                print(f"  face {face.face_id}{' (main)' if face.main_face else ''}: {face.summary()}")
        for w in result.warnings:
            print(f"  warning: {w}")
        for kind, path in written.items():
            print(f"  {kind}: {path}")
    return 0
