"""Paper Fig. 6: HR MAE vs inference latency, marker size = parameter count, from evaluated runs.

    python benchmarks/fig6_mae_latency.py runs/default runs/ablation/ablation_tsfm_s0 ... \
        [--metrics test/ubfc-rppg/metrics.json] [--device cpu] [--repeats 5] [--out fig6.png]

Each argument is a run folder from ``mmrphys train`` (``weights.pt`` + ``test/<set>/metrics.json``) or
an ``mmrphys evaluate`` output folder given as ``WEIGHTS::EVAL_DIR``. Latency is measured here: one
clip of the model's default input (T+1 frames at its size), batch 1, median of ``--repeats`` timed
forwards after one warm-up, on ``--device``. Writes the figure and a CSV/markdown of the points; say
which machine the latencies come from when you quote them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def _point(arg: str, metrics_rel: str | None):
    if "::" in arg:
        weights, eval_dir = arg.split("::", 1)
        files = sorted(Path(eval_dir).rglob("metrics.json"))
    else:
        weights = str(Path(arg) / "weights.pt")
        files = (
            [Path(arg) / metrics_rel] if metrics_rel else sorted((Path(arg) / "test").glob("*/metrics.json"))
        )
    files = [f for f in files if f.is_file()]
    if not files:
        raise SystemExit(f"{arg}: no metrics.json found (evaluate the run first)")
    m = json.loads(files[0].read_text())["metrics"]["bvp"]
    return weights, m["MAE"][0], m["MAE"][1]


def latency_ms(model: torch.nn.Module, device: str, repeats: int, frames: int | None = None) -> float:
    size = getattr(model, "input_size", 72)
    t = frames or 181
    x = torch.rand(1, getattr(model, "in_channels", 3), t, size, size, device=device)
    model = model.to(device).eval()
    with torch.no_grad():
        model(x)
        times = []
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def main(argv=None) -> int:
    from mmrphys.models import count_parameters
    from mmrphys.models.checkpoints import load_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders, or WEIGHTS::EVAL_DIR")
    p.add_argument("--metrics", default=None, help="metrics.json path relative to each run folder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="fig6_mae_latency.png")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    for arg in a.runs:
        weights, mae, se = _point(arg, a.metrics)
        model = load_model(weights)
        n_params = count_parameters(model)  # at inference: the paper's count (attention left out)
        lat = latency_ms(model, a.device, a.repeats)
        name = Path(arg.split("::")[0]).name if "::" not in arg else Path(weights).stem
        rows.append({"name": name, "mae": mae, "se": se, "latency_ms": lat, "params": n_params})
        print(
            f"{name}: HR MAE {mae:.2f} ± {se:.2f} bpm, {lat:.1f} ms/clip on {a.device}, {n_params:,} params"
        )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    sizes = np.array([r["params"] for r in rows], float)
    ax.scatter(
        [r["latency_ms"] for r in rows], [r["mae"] for r in rows], s=40 + 400 * sizes / sizes.max(), alpha=0.6
    )
    for r in rows:
        ax.errorbar(r["latency_ms"], r["mae"], yerr=r["se"], fmt="none", ecolor="k", lw=0.8)
        ax.annotate(
            f"{r['name']}\n{r['params'] / 1e3:.0f}k",
            (r["latency_ms"], r["mae"]),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlabel(f"latency per 181-frame clip [ms] ({a.device}, {a.threads} thread(s))")
    ax.set_ylabel("HR MAE [bpm]")
    ax.set_title("HR MAE vs latency (marker size: parameters)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(a.out, dpi=130)
    out = Path(a.out)
    lines = ["| model | HR MAE ± SE | latency ms | params |", "|---|---|---|---|"]
    lines += [
        f"| {r['name']} | {r['mae']:.2f} ± {r['se']:.2f} | {r['latency_ms']:.1f} | {r['params']:,} |"
        for r in rows
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
