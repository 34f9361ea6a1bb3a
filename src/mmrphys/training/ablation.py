"""Small-scale TSFM ablation: Base vs FSAM vs TSFM, several seeds, one table of HR MAE ± SE.

    python -m mmrphys.training.ablation --data ubfc-rppg=../shared/data/ubfc-rppg-mini \
        [--seeds 0 1 2] [--out runs/ablation] [--configs configs/ablation/*.yaml]

Each (config, seed) is trained by a ``mmrphys train`` process into ``<out>/<name>_s<seed>``
(finished runs are skipped, interrupted ones resumed), then ``<out>/table.md`` gathers per-seed HR
MAE ± SE and the mean over seeds (± the SE of the seed means).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

DEFAULT_CONFIGS = [f"configs/ablation/tsfm_synth_to_ubfc_{a}.yaml" for a in ("none", "fsam", "tsfm")]
LABEL = {"none": "Base", "fsam": "FSAM", "tsfm": "TSFM", "grbf": "GRBF"}


def run_all(configs: list[str], seeds: list[int], data: list[str], out: Path) -> None:
    """Train every (config, seed) with ``mmrphys train`` in a process of its own (the CLI sets it up)."""
    from mmrphys.errors import ConfigError
    from mmrphys.training.config import load_config

    for cfg_path in configs:
        name = load_config(cfg_path)["name"]
        for seed in seeds:
            run = out / f"{name}_s{seed}"
            if (run / "test").is_dir() and any((run / "test").glob("*/metrics.json")):
                continue
            cmd = [sys.executable, "-m", "mmrphys", "train", str(cfg_path), "--out", str(run)]
            cmd += ["--set", f"seed={seed}"] + [a for d in data for a in ("--data", d)]
            if (run / "checkpoints").is_dir():  # interrupted: continue it
                cmd.append("--resume")
            if subprocess.call(cmd) != 0:
                raise ConfigError(f"{run}: training failed (the error is above; rerun to resume)")


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
        run_all(a.configs, a.seeds, a.data, out)
    table = collect(a.configs, a.seeds, out, a.sub)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"table_{a.sub}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
