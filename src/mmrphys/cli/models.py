"""``mmrphys models``: list registered model variants with parameter counts."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list model variants", description=__doc__)
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'mmrphys_*'")
    p.set_defaults(func=run)


def run(args) -> int:
    from mmrphys import models

    for name in models.list_models(args.pattern):
        net = models.create(name)
        print(f"{name:32s} {models.count_parameters(net):>12,d} params")
    return 0
