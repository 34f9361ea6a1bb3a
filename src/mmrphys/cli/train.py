"""``mmrphys train``: train a model from a YAML config (single process, or DDP under torchrun).

examples:
  mmrphys train configs/default/mmrphys_lef_default.yaml --data ubfc-rppg=../shared/data/ubfc-rppg-mini
  mmrphys train CONFIG --out runs/x --resume          continue an interrupted run
  torchrun --nproc_per_node 2 -m mmrphys train CONFIG --data pure=/data/PURE     the same, on 2 GPUs
  mmrphys train CONFIG --data ubfc-rppg=DIR --weights scamps-lef     start from named weights (model.init)
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
    p.add_argument("--weights", default=None, metavar="PATH_OR_NAME",
                   help="initial weights: a file or named weights ('mmrphys weights list'; a remote one is "
                        "downloaded once); the same as --set model.init=...")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from mmrphys.training.runner import train_main

    if args.weights:  # a JSON string is a YAML string: any path or name passes --set unchanged
        args.set = [*args.set, f"model.init={json.dumps(args.weights)}"]

    return train_main(args)
