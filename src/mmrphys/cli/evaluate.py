"""``mmrphys evaluate``: the test protocol for a run folder or a weights file (ours or the authors').

examples:
  mmrphys evaluate runs/default --data ubfc-rppg=../shared/data/ubfc-rppg-mini
  mmrphys evaluate model.pt --data ubfc-rppg=DIR --subjects subject3 subject4 --out eval/
  mmrphys evaluate SCAMPS_MMRPhysLEF_BVP_RSP_RGBx180x72_SFSAM_Label_Epoch0.pth --data ubfc-rppg=DIR
  mmrphys evaluate pure-mmrphys --data ubfc-rppg=DIR     named weights ('mmrphys weights list'), fetched once
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a run or weights on a dataset (metrics, tables, plots)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "target", metavar="RUN_OR_WEIGHTS",
        help="run folder (from 'mmrphys train'), weights file or named weights ('mmrphys weights list')",
    )
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="test dataset root (repeatable); for a run folder, paths of its config's test sets",
    )
    p.add_argument("--subjects", nargs="+", default=None, help="only these subjects (weights-file mode)")
    p.add_argument("--out", default=None, help="output folder (default: <run>/eval or ./eval_<weights>)")
    p.add_argument(
        "--preset",
        default=None,
        choices=("mmrphys", "toolbox", "toolbox-2023"),
        help="rate/metrics preset (default: the run's, else mmrphys)",
    )
    p.add_argument("--window-s", type=float, default=None, help="evaluation windows (default: whole video)")
    p.add_argument(
        "--chunk", type=int, default=None, help="frames per chunk T (default: the run's, else 180)"
    )
    p.add_argument("--size", type=int, default=None, help="input size (default: the model's)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from mmrphys.training.runner import evaluate_main

    if not Path(args.target).exists():
        from mmrphys.models.weights import find, resolve_weights

        if find(args.target) is not None:  # a named weights (other missing paths: evaluate_main says)
            args.target = str(resolve_weights(args.target, download=True))
    return evaluate_main(args)
