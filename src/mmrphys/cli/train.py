"""``mmrphys train``: train a model from a YAML config (single process, or DDP under torchrun).

examples:
  mmrphys train configs/default/mmrphys_lef_default.yaml --data ubfc-rppg=../shared/data/ubfc-rppg-mini
  mmrphys train CONFIG --out runs/x --resume          continue an interrupted run
  torchrun --nproc_per_node 2 -m mmrphys train CONFIG --data pure=/data/PURE     the same, on 2 GPUs
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a YAML config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="YAML config (see configs/ and docs/training.md)")
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="root folder of a dataset named in the config (repeatable)",
    )
    p.add_argument("--out", default=None, help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=2 (repeatable)",
    )
    p.add_argument("--no-test", action="store_true", help="skip the test protocol after training")
    p.set_defaults(func=run)


def run(args) -> int:
    from mmrphys.training.runner import train_main

    return train_main(args)
