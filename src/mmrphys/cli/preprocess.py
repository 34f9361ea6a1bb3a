"""``mmrphys preprocess``: face-crop, resize and chunk a dataset into a resumable training cache.

Exits 1 when any recording failed (each is named, and recorded in the cache's manifest.json) unless
--allow-failures; 2 on bad arguments or a cache that cannot be written. Rerunning the same command
resumes: finished recordings are verified (sizes and SHA-256 of every file) and skipped, damaged
ones redone. SIGTERM or Ctrl-C stops the workers and keeps every finished recording.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

_EPILOG = """examples:
  mmrphys preprocess --dataset ubfc-rppg --root /data/UBFC-rPPG --out cache/
  mmrphys preprocess ubfc-rppg /data/UBFC-rPPG --out cache/          (the same)
  mmrphys preprocess --dataset ibvp --root /data/iBVP --out cache/ --option modality=rgbt --chunk 180
  mmrphys preprocess --dataset generic --root my_recordings/ --out cache/ --size 36
  mmrphys synth dataset --out synth/ --n 20 && mmrphys preprocess --dataset generic --root synth/ --out cache/
      (synthetic sets carry their face boxes: cropped with them, like detected faces, no detector)"""


def _parse_option(text: str):
    from mmrphys.errors import ConfigError

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--option expects KEY=VALUE, got {text!r}")
    low = value.lower()
    if low in ("true", "false"):
        return key, low == "true"
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, value


def add_parser(sub) -> None:
    import argparse

    from mmrphys.data.cache import Settings

    d = Settings()
    p = sub.add_parser(
        "preprocess",
        help="build a training cache from a dataset",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset_pos", nargs="?", metavar="DATASET", help="same as --dataset")
    p.add_argument("root_pos", nargs="?", metavar="ROOT", help="same as --root")
    p.add_argument(
        "--dataset",
        help="ubfc-rppg, pure, ibvp, scamps, bp4d, cohface, mmpd, "
        "ubfc-phys or generic (see docs/datasets.md)",
    )
    p.add_argument("--root", help="folder holding the dataset as distributed")
    p.add_argument(
        "--out", required=True, help="cache root; the cache goes to OUT/<dataset>_<settings>_<hash>/"
    )
    p.add_argument(
        "--size", type=int, default=d.size, help="output side in pixels (72, 36, 9; default %(default)s)"
    )
    p.add_argument("--chunk", type=int, default=d.chunk, help="frames per chunk T (default %(default)s)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: one per core, max 8; 0: in this process)",
    )
    p.add_argument(
        "--verify",
        choices=("full", "labels", "sizes"),
        default="full",
        help="check of finished recordings before they are skipped: full = size and SHA-256 of "
        "every file (default), labels = sizes + SHA-256 of the label files, sizes = sizes only",
    )
    p.add_argument(
        "--detect-every",
        type=int,
        default=d.detect_every,
        help="face re-detection (or given-box lookup) interval, frames (default %(default)s)",
    )
    p.add_argument("--box-scale", type=float, default=d.box_scale, help="face box enlargement (default 1.5)")
    p.add_argument(
        "--crop",
        choices=("given", "detect", "none"),
        default=None,
        help="face crop (square box x --box-scale): 'given' = the dataset's own face boxes (generic "
        "NAME.boxes.csv, written by 'mmrphys synth dataset'), 'detect' = Haar detection every "
        "--detect-every frames, 'none' = whole frames (default: given when every recording has "
        "boxes, else detect)",
    )
    p.add_argument("--no-crop", action="store_true", help="same as --crop none")
    p.add_argument(
        "--align",
        choices=("index", "time"),
        default=None,
        help="label alignment (default: the dataset's; index = rPPG-Toolbox resampling)",
    )
    p.add_argument("--raw-labels", action="store_true", help="store labels as read (default: z-scored)")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="loader option, e.g. modality=rgbt, drop_low_quality=false (repeatable)",
    )
    p.add_argument("--allow-failures", action="store_true", help="exit 0 even if some recordings failed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _pick(args, name: str) -> str:
    from mmrphys.errors import ConfigError

    flag, pos = getattr(args, name), getattr(args, f"{name}_pos")
    if flag and pos and flag != pos:
        raise ConfigError(f"--{name} {flag} contradicts the positional {name.upper()} {pos}")
    if not (flag or pos):
        raise ConfigError(f"give the {name} (--{name} or positional {name.upper()}); see --help")
    return flag or pos


@contextlib.contextmanager
def _sigterm_stops_the_run():
    """SIGTERM becomes SystemExit(143) so that the workers are stopped and finished work is kept (the
    CLI owns its process; the previous handler comes back afterwards)."""

    def stop(signum, frame):
        print(
            "mmrphys preprocess: terminated; finished recordings are kept, rerun to resume", file=sys.stderr
        )
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run(args) -> int:
    with _sigterm_stops_the_run():
        return _run(args)


def _run(args) -> int:
    from mmrphys.data import load_dataset
    from mmrphys.data.cache import Settings, preprocess, resolve_crop
    from mmrphys.data.registry import canonical_name
    from mmrphys.errors import ConfigError

    dataset, root = _pick(args, "dataset"), _pick(args, "root")
    if args.no_crop and args.crop not in (None, "none"):
        raise ConfigError(f"--no-crop contradicts --crop {args.crop}")
    if args.workers is not None and args.workers < 0:
        raise ConfigError(f"--workers must be >= 0 (0: in this process), got {args.workers}")
    settings = Settings(
        size=args.size,
        chunk=args.chunk,
        crop="none" if args.no_crop else (args.crop or "auto"),
        box_scale=args.box_scale,
        detect_every=args.detect_every,
        label_norm="raw" if args.raw_labels else "standardized",
        align=args.align,
    ).validate()
    options = dict(_parse_option(o) for o in args.option)
    recs = load_dataset(dataset, root, **options)
    settings = resolve_crop(settings, recs)
    if settings.crop == "given" and args.crop is None:
        print(f"crop: the dataset's own face boxes (square x{settings.box_scale:g}); --crop detect to detect")
    report = preprocess(
        recs,
        args.out,
        settings,
        workers=args.workers,
        progress=not args.quiet,
        dataset=canonical_name(dataset),
        root=root,
        verify=args.verify,
    )
    print(f"cache: {report.cache_dir}")
    if report.manifest_rebuilt:
        print(f"rebuilt manifest.json from the recordings' folders ({report.manifest_rebuilt})")
    for rid, why in sorted(report.redone.items()):
        print(f"redone {rid}: its cached copy was damaged ({why})")
    if report.unverified:
        print(
            f"{len(report.unverified)} recording(s) cached by an older mmrphys without checksums were "
            f"checked for structure only (first: {report.unverified[0]}); delete their folders to rebuild"
        )
    print(
        f"recordings: {len(recs)} ({len(report.processed)} processed, {len(report.skipped)} already done, "
        f"{len(report.failed)} failed); chunks: {report.n_chunks}; frames: {report.n_frames}; "
        f"{report.elapsed_s:.1f} s"
    )
    if not report.failed:
        return 0
    manifest = report.cache_dir / "manifest.json"
    print(f"FAILED ({len(report.failed)}), recorded in {manifest}:")
    for rid, err in sorted(report.failed.items()):
        print(f"  {rid}: {err}")
    if args.allow_failures:
        return 0
    shown = sorted(report.failed.items())[:3]
    more = f"; and {len(report.failed) - 3} more" if len(report.failed) > 3 else ""
    print(
        f"mmrphys preprocess: error: {len(report.failed)} of {len(recs)} recording(s) failed "
        f"(recorded in {manifest}; rerun to retry, --allow-failures to exit 0): "
        + "; ".join(f"{rid}: {err}" for rid, err in shown)
        + more,
        file=sys.stderr,
    )
    return 1
