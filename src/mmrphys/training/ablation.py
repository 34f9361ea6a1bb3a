"""Small-scale TSFM ablation: Base vs FSAM vs TSFM, several seeds, one table of HR MAE ± SE.

    python -m mmrphys.training.ablation --data ubfc-rppg=../shared/data/ubfc-rppg-mini \
        [--seeds 0 1 2] [--out runs/ablation] [--configs configs/ablation/*.yaml]

Each (config, seed) is trained with ``mmrphys train`` into ``<out>/<name>_s<seed>`` (finished runs
are skipped, interrupted ones resumed), then ``<out>/table.md`` gathers per-seed HR MAE ± SE and
the mean over seeds (± the SE of the seed means).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

DEFAULT_CONFIGS = [f"configs/ablation/tsfm_synth_to_ubfc_{a}.yaml" for a in ("none", "fsam", "tsfm")]
LABEL = {"none": "Base", "fsam": "FSAM", "tsfm": "TSFM", "grbf": "GRBF"}


def run_all(configs: list[str], seeds: list[int], data: list[str], out: Path) -> None:
    from mmrphys.training.config import load_config
    from mmrphys.training.runner import train_main

    for cfg_path in configs:
        name = load_config(cfg_path)["name"]
        for seed in seeds:
            run = out / f"{name}_s{seed}"
            if (run / "test").is_dir() and any((run / "test").glob("*/metrics.json")):
                continue
            args = argparse.Namespace(  # an interrupted run (its folder exists) is resumed
                config=cfg_path,
                data=data,
                out=str(run),
                resume=run.is_dir(),
                set=[f"seed={seed}"],
                no_test=False,
            )
            train_main(args)


def collect(configs: list[str], seeds: list[int], out: Path, sub: str = "test") -> str:
    """The markdown table from finished runs (missing runs shown as '–')."""
    from mmrphys.training.config import load_config

    lines = [
        "| Attention | "
        + " | ".join(f"seed {s} HR MAE ± SE" for s in seeds)
        + " | mean over seeds ± SE | RMSE | Pearson | SNR dB | MACC | n |",
        "|---" * (len(seeds) + 7) + "|",
    ]
    for cfg_path in configs:
        cfg = load_config(cfg_path)
        cells, maes, rmses, rs, snrs, maccs, ns = [], [], [], [], [], [], []
        for seed in seeds:
            files = sorted((out / f"{cfg['name']}_s{seed}" / sub).glob("*/metrics.json"))
            if not files:
                cells.append("–")
                continue
            m = json.loads(files[0].read_text())["metrics"]["bvp"]
            cells.append(f"{m['MAE'][0]:.2f} ± {m['MAE'][1]:.2f}")
            maes.append(m["MAE"][0])
            rmses.append(m["RMSE"][0])
            rs.append(m["Pearson"][0])
            snrs.append(m["SNR"][0])
            maccs.append(m["MACC"][0])
            ns.append(m["n"])
        if maes:
            se = np.std(maes, ddof=1) / math.sqrt(len(maes)) if len(maes) > 1 else float("nan")
            mean = f"{np.mean(maes):.2f} ± {se:.2f}"
            extra = [
                f"{np.mean(rmses):.2f}",
                f"{np.nanmean(rs):.3f}",
                f"{np.mean(snrs):.2f}",
                f"{np.mean(maccs):.3f}",
                str(ns[0]),
            ]
        else:
            mean, extra = "–", ["–"] * 5
        lines.append(
            f"| {LABEL.get(cfg['model']['attention'], cfg['model']['attention'])} | "
            + " | ".join(cells + [mean] + extra)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--table-only", action="store_true", help="only gather the table from finished runs")
    p.add_argument("--sub", default="test", help="folder of each run holding <set>/metrics.json (e.g. eval)")
    a = p.parse_args(argv)
    out = Path(a.out)
    if not a.table_only:
        from mmrphys.cli.train import apply_process_settings
        from mmrphys.training.config import load_config

        # a command of its own: it owns its process, like `mmrphys train` (threads of the first config)
        apply_process_settings(load_config(a.configs[0])["threads"])
        run_all(a.configs, a.seeds, a.data, out)
    table = collect(a.configs, a.seeds, out, a.sub)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"table_{a.sub}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
