"""``mmrphys estimate``: heart rate, breathing rate, waveforms and a report from a face video.

examples:
  mmrphys estimate video.mp4                          print HR/RR (default: the shipped MMRPhys-SEF model)
  mmrphys estimate video.mp4 --out results/           + result JSON, waveform CSV, PNG report
  mmrphys estimate video.mp4 --method chrom --json hr.json
  mmrphys estimate video.mp4 --method pos            a classic method, no model (also chrom, green, ica...)
  mmrphys estimate video.mp4 --method mmrphys --weights PATH.pth   your weights or the authors' checkpoints
                                                     (MMRPhys, FactorizePhys, PhysNet, EfficientPhys)
  mmrphys estimate video.mp4 --method mmrphys --backend compiled   compiled once, cached, faster after
  mmrphys estimate stream.h264 --fps 30              a raw stream without timestamps: give its rate
  mmrphys estimate frames/ --fps 30                  a folder of image frames (png, jpg, ...) in natural
                                                     name order is one recording: give its rate
  mmrphys estimate group.mp4 --out results/           every face: JSON "faces", CSV bvp_<id>, PNG rows
  mmrphys estimate group.mp4 --max-faces 1            the main face only (present longest, then largest)

many files (several inputs or a folder; --out required):
  mmrphys estimate a.mp4 b.avi recordings/ --out results/ --workers 2
        one result set per input in results/ (named after it; clip, a_clip, b_clip when names clash),
        results/summary.csv (one row per input: HR, RR, confidence, method, duration, status, error),
        inputs already done are skipped (--force redoes them); exit 1 when any input failed

thermal (RGB + thermal, or thermal alone; breathing from the model's RSP branch on the thermal channel):
  mmrphys estimate face.mp4 --thermal face_thermal.npy --weights bp4d-lef-rgbt
  mmrphys estimate face.mp4 --thermal frames_t/ --thermal-fps 30      iBVP-style folder of .raw frames
  mmrphys estimate --thermal stack.tiff --thermal-unit cK --weights bp4d-lef-thermal   thermal alone

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
    from mmrphys.video.thermal import UNITS as THERMAL_UNITS
    from mmrphys.vitals.estimate import DEFAULT_METHOD, UNSUPERVISED_METHODS

    p = sub.add_parser("estimate", help="HR, RR, waveforms and a report from a face video",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="*", metavar="VIDEO",
                   help="video file (mp4, avi, mkv, y4m, ... anything FFmpeg decodes), or a folder of image "
                        "frames (png, jpg, bmp, tiff: one recording, with --fps); several files or "
                        "folders (searched recursively for videos) run as a batch into --out")
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
                   help="threads for model inference (default 1: decoding uses the other core)")
    p.add_argument("--backend", choices=("auto", "eager", "compiled"), default="auto",
                   help="model inference: auto (default: the default weights' pulse branch through "
                        "onnxruntime, no torch; other weights eager), eager (torch), or compiled ahead of "
                        "time (torch; needs a C++ compiler; the first run compiles for 20-100 s and caches "
                        "the result in $MMRPHYS_CACHE)")
    p.add_argument("--max-faces", type=int, default=None, metavar="N",
                   help="follow and report at most N faces at a time (default: all; the top-level results "
                        "are the main face's: present longest, then largest)")
    p.add_argument("--rr-from", default=None, choices=("pulse", "model"),
                   help="an RGB model's breathing rate from the pulse modulation of its face crops (pulse, "
                        "the default: the more accurate on real video) or from its RSP output (model)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary line")
    p.add_argument("--workers", type=int, default=1,
                   help="batch: processes working on different inputs at once (default 1; each uses "
                        "--threads torch threads)")
    p.add_argument("--force", action="store_true",
                   help="batch: redo inputs whose results are already complete in --out")
    th = p.add_argument_group("thermal", "a thermal recording of the same scene (RGB + thermal weights), "
                              "or thermal alone (thermal weights): see docs/main_job.md")
    th.add_argument("--thermal", default=None, metavar="T",
                    help=".npy/.npz array (frames, H, W), 16-bit TIFF stack, folder of iBVP .raw frames or "
                         "of one-channel image frames (16-bit png/tiff), or grey video; with no VIDEO, "
                         "thermal alone")
    th.add_argument("--thermal-unit", default=None, choices=THERMAL_UNITS,
                    help="unit of the stored values (default: float degC, 8-bit relative, other integers "
                         "cdegC; .raw folders raw-ibvp)")
    th.add_argument("--thermal-fps", type=float, default=None,
                    help="frame rate of a thermal recording that stores no timestamps")
    th.add_argument("--thermal-delay-s", type=float, default=0.0,
                    help="seconds the thermal recording started after the RGB video (default 0)")
    p.set_defaults(func=run)


def _is_batch(args) -> bool:
    """Several inputs, or a folder of videos: the batch. One file or one folder of image frames (with or
    without --thermal), or --thermal alone, keeps the single-input behaviour."""
    from mmrphys.errors import ConfigError
    from mmrphys.video import is_image_folder
    from mmrphys.vitals.batch import VIDEO_SUFFIXES

    thermal = getattr(args, "thermal", None) is not None
    if not args.video and not thermal:
        raise ConfigError("no video given: mmrphys estimate VIDEO [VIDEO|FOLDER ...] (see --help)")
    batch = len(args.video) > 1 or (len(args.video) == 1 and Path(args.video[0]).is_dir()
                                    and not is_image_folder(args.video[0], VIDEO_SUFFIXES))
    if batch and thermal:
        raise ConfigError("--thermal pairs one RGB video with its thermal recording; it cannot be used with "
                          "several inputs or a folder")
    return batch


def _check_thermal_args(args) -> None:
    import math

    from mmrphys.errors import ConfigError
    from mmrphys.video.rate import check_fps

    if args.thermal is None:
        if args.thermal_unit is not None or args.thermal_fps is not None or args.thermal_delay_s:
            raise ConfigError("--thermal-unit, --thermal-fps and --thermal-delay-s describe a --thermal "
                              "recording")
        return
    if args.thermal == "":
        raise ConfigError("--thermal: empty path")
    if args.thermal_fps is not None:
        check_fps(args.thermal_fps, "--thermal-fps")
    if not math.isfinite(args.thermal_delay_s) or abs(args.thermal_delay_s) > 3600:
        raise ConfigError(f"--thermal-delay-s must be a number of seconds within an hour, got "
                          f"{args.thermal_delay_s}")


def _stem(args) -> str:
    """Result files are named after the video (or, alone, the thermal recording)."""
    return Path(args.video if args.video is not None else args.thermal).stem


def check_options(args) -> None:
    """The options one input and a batch share, before any work; one-line :class:`ConfigError`
    naming the option else."""
    from mmrphys.errors import ConfigError
    from mmrphys.video.rate import check_fps

    if args.fps is not None:
        check_fps(args.fps, "--fps")
    if not 1 <= args.threads <= MAX_THREADS:
        raise ConfigError(f"--threads must be between 1 and {MAX_THREADS}, got {args.threads}")
    if args.max_faces is not None and args.max_faces < 1:
        raise ConfigError(f"--max-faces must be at least 1, got {args.max_faces}")
    if args.method is not None and not args.method.strip():
        raise ConfigError("--method is empty: name a method (e.g. pos, chrom, mmrphys)")
    _check_thermal_args(args)


def check_args(args) -> dict:
    """Validate one input's options before any work (:func:`check_options` first); one-line
    :class:`MmrphysError` naming the option else.

    Returns the output paths: ``{"out": {kind: path}}`` and/or ``{"json": path}``.
    """
    from mmrphys.errors import ConfigError
    from mmrphys.vitals.result import check_output_dir, check_output_file

    check_options(args)
    paths: dict = {}
    if args.out is not None:
        paths["out"] = check_output_dir(args.out, _stem(args), "--out")
    if args.json is not None and args.json != "-":
        paths["json"] = check_output_file(args.json, "--json")
        if "out" in paths and Path(args.json).resolve() in {p.resolve() for p in paths["out"].values()}:
            raise ConfigError(f"--json {args.json} is also one of the --out files: pick another name")
    return paths


def run(args) -> int:
    from mmrphys.vitals.estimate import estimate

    if _is_batch(args):
        from mmrphys.cli._batch import run_batch

        check_options(args)
        return run_batch(args)
    args.video = args.video[0] if args.video else None
    paths = check_args(args)
    from mmrphys.cli.process import configure_estimate, runs_torch

    configure_estimate(args.threads, runs_torch(args))
    common = {"method": args.method, "weights": args.weights, "fps": args.fps, "backend": args.backend,
              "progress": False if args.quiet else None, "max_faces": args.max_faces}
    if args.rr_from is not None and args.thermal is None:  # thermal models use their RSP output
        common["rr_from"] = args.rr_from
    if args.thermal is not None:
        from mmrphys.vitals.thermal import estimate_thermal

        result = estimate_thermal(args.video, args.thermal, thermal_unit=args.thermal_unit,
                                  thermal_fps=args.thermal_fps, thermal_delay_s=args.thermal_delay_s,
                                  **common)
    else:
        result = estimate(args.video, threads=args.threads, **common)
    stem = _stem(args)
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
