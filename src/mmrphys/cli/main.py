"""Entry point of the ``mmrphys`` command.

Every module in :mod:`mmrphys.cli` other than this one is a verb: it defines
``add_parser(subparsers)`` which adds its sub-parser and sets ``func=run`` on it. Adding a verb
therefore never touches this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback

import mmrphys
from mmrphys.errors import MmrphysError

_EPILOG = """examples:
  mmrphys demo                        run the whole pipeline on a generated clip with known truth
  mmrphys estimate video.mp4 --out results/
  mmrphys estimate video.mp4 --method chrom --json hr.json
  mmrphys models                      list model variants
run 'mmrphys VERB --help' for the options of each verb."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmrphys",
        description="Heart rate and breathing from face video (MMRPhys and classic rPPG methods).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mmrphys {mmrphys.__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    import mmrphys.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name in ("main",) or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"mmrphys.cli.{info.name}")
        if hasattr(module, "add_parser"):
            module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    from mmrphys.cli.process import single_thread_blas

    single_thread_blas()  # before any verb module imports NumPy
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MmrphysError as err:
        if args.debug:
            traceback.print_exc()
        print(f"mmrphys {args.verb}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
