"""``mmrphys estimate`` with several inputs or a folder: the batch (``vitals.batch.estimate_many``).

Not a verb (no ``add_parser``): :mod:`mmrphys.cli.estimate` hands its arguments here when it is given
more than one input or a folder.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

#: Most worker processes --workers accepts.
MAX_WORKERS = 64


def check_batch_args(args) -> None:
    """Options that make no sense for a batch, before any work (one-line :class:`ConfigError`); the
    options a batch shares with one input are checked by ``cli.estimate.check_options``."""
    from mmrphys.errors import ConfigError

    if args.out is None:
        what = "a folder" if len(args.video) == 1 else f"{len(args.video)} inputs"
        first = args.video[0]
        hint = f"{first} is a directory: " if len(args.video) == 1 else ""
        raise ConfigError(f"{hint}{what} run as a batch: give --out DIR for the result sets and summary.csv")
    if args.json is not None:
        raise ConfigError("--json is for one video; a batch writes one JSON per input into --out "
                          "(and summary.csv)")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise ConfigError(f"--workers must be between 1 and {MAX_WORKERS}, got {args.workers}")


def run_batch(args) -> int:
    """Run the batch; exit status 0 when every input is ok or skipped, 1 when any failed."""
    from mmrphys.cli.process import configure_estimate, runs_torch
    from mmrphys.vitals.batch import SUMMARY_NAME, estimate_many

    check_batch_args(args)
    # OpenCV and torch threads of the process that runs the inputs: this one with one worker, else
    # each worker process (this one then only hands out the inputs: it does not even import torch)
    init = functools.partial(configure_estimate, args.threads, runs_torch(args))
    if args.workers == 1:
        init()
    quiet = args.quiet
    bar = False if quiet else None

    def on_item(item) -> None:
        from tqdm import tqdm

        if item.status == "failed":
            msg = item.error or "failed"
            named = msg if str(item.path) in msg else f"{item.path}: {msg}"
            tqdm.write(f"mmrphys estimate: error: {named}", file=sys.stderr)
        elif not quiet and not sys.stderr.isatty():  # no bar: a line per input instead
            hr, rr = item.row.get("heart_rate_bpm") or "n/a", item.row.get("respiratory_rate_bpm") or "n/a"
            print(f"{item.stem}: {item.status}, HR {hr} bpm, RR {rr} /min", flush=True)

    items = estimate_many(args.video, out_dir=args.out, workers=args.workers, method=args.method,
                          weights=args.weights, force=args.force, progress=bar, fps=args.fps,
                          backend=args.backend, max_faces=args.max_faces, threads=args.threads,
                          worker_init=init,
                          on_item=on_item)
    counts = {s: sum(i.status == s for i in items) for s in ("ok", "skipped", "failed")}
    summary = Path(args.out) / SUMMARY_NAME
    if not quiet:
        print(f"{len(items)} inputs: {counts['ok']} done, {counts['skipped']} already done (skipped), "
              f"{counts['failed']} failed; summary: {summary}")
    if counts["failed"]:
        print(f"{counts['failed']} of {len(items)} inputs failed; see {summary}", file=sys.stderr)
        return 1
    return 0
