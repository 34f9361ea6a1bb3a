"""The test protocol (rPPG-Toolbox / MMRPhys style) and its files.

For every test video: the model runs on non-overlapping chunks of T frames (+ a copy of the last
frame, as in training), each chunk's output and label are z-scored, and chunks are concatenated
(the remainder shorter than T is dropped, as the references do). Rates come from the chosen
preset (whole video, or windows of ``window_s``): HR from BVP, RR from RSP where a label exists.

Files written to the output folder:

- ``predictions.npz``: per video ``<id>/<task>_pred``, ``<id>/<task>_label`` and ``fs``
- ``per_video.csv``: one row per video (or window) and task: gt/pred rate, error, SNR, MACC
- ``metrics.json``: aggregate metrics with standard errors per task
- ``table.md`` / ``table.tex``: the paper's layout (MAE, RMSE, MAPE, Corr, SNR, MACC; Avg and SE)
- ``bland_altman_<task>.png``
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mmrphys.errors import InputError
from mmrphys.training.trainer import append_last_frame

RATE_NAME = {"bvp": "HR", "rsp": "RR"}
KIND = {"bvp": "hr", "rsp": "rr"}
COLUMNS = ("MAE", "RMSE", "MAPE", "Pearson", "SNR", "MACC")
HEADERS = {
    "MAE": "MAE ↓",
    "RMSE": "RMSE ↓",
    "MAPE": "MAPE ↓",
    "Pearson": "Corr ↑",
    "SNR": "SNR ↑",
    "MACC": "MACC ↑",
}


@dataclass
class TestVideo:
    """One test recording at model resolution: ``frames`` (N, H, W, C), labels per frame."""

    id: str
    frames: np.ndarray
    fs: float
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    subject: str = ""


def _zscore(x: np.ndarray) -> np.ndarray:
    s = x.std()
    return (x - x.mean()) / s if s > 1e-3 else x - x.mean()


@torch.no_grad()
def predict_video(
    model: torch.nn.Module, frames: np.ndarray, chunk: int, device="cpu", batch_size: int = 4
) -> dict[str, np.ndarray]:
    """Per-task waveforms (``n_chunks * chunk`` samples) for ``frames`` (N, H, W, C), chunk by chunk."""
    n = len(frames) // chunk
    if n == 0:
        raise InputError(f"video has {len(frames)} frames, fewer than one chunk of {chunk}")
    model.eval()
    outs: dict[str, list[np.ndarray]] = {}
    for start in range(0, n, batch_size):
        idx = range(start, min(n, start + batch_size))
        x = np.stack([frames[i * chunk : (i + 1) * chunk] for i in idx])  # (b, T, H, W, C)
        x = torch.as_tensor(x, dtype=torch.float32, device=device).permute(0, 4, 1, 2, 3)
        pred = model(append_last_frame(x))
        for task, y in pred.items():
            for row in y.float().cpu().numpy():
                outs.setdefault(task, []).append(_zscore(row))
    return {t: np.concatenate(v) for t, v in outs.items()}


def _windows(n: int, fs: float, window_s: float | None) -> list[slice]:
    if not window_s:
        return [slice(0, n)]
    w = int(round(window_s * fs))
    out = [slice(i, min(n, i + w)) for i in range(0, n, w)]
    return [s for s in out if s.stop - s.start >= 9]  # the toolbox skips windows under 9 samples


def score_video(
    vid: str,
    preds: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    fs: float,
    chunk: int,
    preset: str = "mmrphys",
    window_s: float | None = None,
) -> list[dict]:
    """Rows ``{video, task, window, gt_rate, pred_rate, abs_err, snr, macc}`` for each task with a label."""
    from mmrphys.signals.metrics import evaluate_window

    rows = []
    for task, pred in preds.items():
        label = labels.get(task)
        if label is None or not np.isfinite(label).all() or np.std(label) == 0:
            continue
        n = len(pred)
        lab = np.concatenate([_zscore(label[i : i + chunk]) for i in range(0, n, chunk)])
        for w, sl in enumerate(_windows(n, fs, window_s)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = evaluate_window(pred[sl], lab[sl], fs, kind=KIND[task], preset=preset)
            rows.append(
                {
                    "video": vid,
                    "task": task,
                    "window": w,
                    "gt_rate": r["gt_rate"],
                    "pred_rate": r["pred_rate"],
                    "abs_err": abs(r["pred_rate"] - r["gt_rate"]),
                    "snr": r["snr"],
                    "macc": r["macc"],
                }
            )
    return rows


def aggregate(rows: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per task: ``{"MAE": (avg, se), ...}`` over the rows (NaN rows dropped, counted in ``n``)."""
    from mmrphys.signals.metrics import summarize

    out = {}
    for task in sorted({r["task"] for r in rows}):
        rs = [
            r for r in rows if r["task"] == task and np.isfinite(r["gt_rate"]) and np.isfinite(r["pred_rate"])
        ]
        if not rs:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = summarize(
                [r["pred_rate"] for r in rs],
                [r["gt_rate"] for r in rs],
                snrs=[r["snr"] for r in rs],
                maccs=[r["macc"] for r in rs],
                nan_policy="omit",
            )
        out[task] = {k: (float(v.value), float(v.se)) for k, v in s.items()} | {"n": len(rs)}
    return out


def run_protocol(
    model: torch.nn.Module,
    videos: Iterable[TestVideo],
    out_dir,
    chunk: int,
    preset: str = "mmrphys",
    window_s: float | None = None,
    device="cpu",
    dist=None,
    title: str = "",
    plots: bool = True,
) -> dict:
    """Predict, score and write every file of the protocol; returns ``metrics.json``'s content.

    Under DDP each rank takes every ``world_size``-th video; predictions and rows are gathered on
    rank 0, which alone writes files.
    """
    rank, world = (dist.rank, dist.world_size) if dist is not None else (0, 1)
    preds, rows = {}, []
    for i, v in enumerate(videos):
        if i % world != rank:
            continue
        p = predict_video(model, v.frames, chunk, device=device)
        preds[v.id] = (
            {"fs": v.fs, "subject": v.subject}
            | {f"{t}_pred": x for t, x in p.items()}
            | {
                f"{t}_label": np.asarray(v.labels[t][: len(x)], dtype=np.float32)
                for t, x in p.items()
                if v.labels.get(t) is not None
            }
        )
        rows += score_video(v.id, p, v.labels, v.fs, chunk, preset, window_s)
    if dist is not None and dist.enabled:
        gathered = dist.gather((preds, rows))
        preds = {k: v for g in gathered for k, v in g[0].items()}
        rows = [r for g in gathered for r in g[1]]
        if not dist.is_main:
            return {}
    return write_results(out_dir, preds, rows, title=title, plots=plots)


def write_results(
    out_dir, preds: dict, rows: list[dict], title: str = "", plots: bool = True, meta: dict | None = None
) -> dict:
    """Write predictions.npz, per_video.csv, metrics.json, table.md/.tex and Bland–Altman plots."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if preds:
        flat = {f"{vid}/{k}": np.asarray(v) for vid, d in preds.items() for k, v in d.items()}
        np.savez_compressed(out / "predictions.npz", **flat)
    rows = sorted(rows, key=lambda r: (r["task"], r["video"], r["window"]))
    with open(out / "per_video.csv", "w", newline="") as fh:
        w = csv.DictWriter(
            fh, fieldnames=["video", "task", "window", "gt_rate", "pred_rate", "abs_err", "snr", "macc"]
        )
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
    metrics = aggregate(rows)
    result = {"title": title, "metrics": metrics, "n_videos": len({r["video"] for r in rows})} | (meta or {})
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    table_rows = [{"name": title or "model", "task": t, "metrics": m} for t, m in metrics.items()]
    (out / "table.md").write_text(markdown_table(table_rows))
    (out / "table.tex").write_text(latex_table(table_rows))
    if plots:
        from mmrphys.signals.bland_altman import plot_bland_altman

        for task in metrics:
            rs = [
                r
                for r in rows
                if r["task"] == task and np.isfinite(r["pred_rate"]) and np.isfinite(r["gt_rate"])
            ]
            if len(rs) >= 2:
                unit = "bpm" if task == "bvp" else "breaths/min"
                plot_bland_altman(
                    [r["pred_rate"] for r in rs],
                    [r["gt_rate"] for r in rs],
                    out / f"bland_altman_{task}.png",
                    units=unit,
                    title=f"{title} {RATE_NAME[task]}".strip(),
                )
    return result


def _fmt(v: float, digits: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def markdown_table(rows: list[dict]) -> str:
    """Paper layout: one line per (name, task) with Avg and SE for MAE, RMSE, MAPE, Corr, SNR, MACC.

    ``rows``: ``{"name": str, "task": "bvp"|"rsp", "metrics": {"MAE": (avg, se), ..., "n": int}}``.
    """
    head = "| Model | Rate | n | " + " | ".join(f"{HEADERS[c]} Avg | SE" for c in COLUMNS) + " |"
    sep = "|" + "---|" * (3 + 2 * len(COLUMNS))
    lines = [head, sep]
    for r in rows:
        m = r["metrics"]
        cells = _metric_cells(m)
        lines.append(
            f"| {r['name']} | {RATE_NAME[r['task']]} | {m.get('n', '')} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def _metric_cells(metrics: dict) -> list[str]:
    """Avg and SE cells of each metric column, formatted as the paper's tables print them."""
    cells = []
    for c in COLUMNS:
        avg, se = metrics.get(c, (math.nan, math.nan))
        cells += [_fmt(avg, 3 if c in ("Pearson", "MACC") else 2), _fmt(se, 2)]
    return cells


def latex_table(rows: list[dict]) -> str:
    """The same table as LaTeX (booktabs)."""
    cols = "ll" + "r" * (1 + 2 * len(COLUMNS))

    def tex(h: str) -> str:
        return h.replace("↓", "$\\downarrow$").replace("↑", "$\\uparrow$")

    metric_heads = " & ".join("\\multicolumn{2}{c}{" + tex(HEADERS[c]) + "}" for c in COLUMNS)
    sub = " & ".join(["Avg & SE"] * len(COLUMNS))
    lines = [
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        f"Model & Rate & n & {metric_heads} \\\\",
        f" & & & {sub} \\\\",
        "\\midrule",
    ]
    for r in rows:
        m = r["metrics"]
        cells = _metric_cells(m)
        name = str(r["name"]).replace("_", "\\_").replace("&", "\\&")
        lines.append(f"{name} & {RATE_NAME[r['task']]} & {m.get('n', '')} & " + " & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines).replace("–", "--") + "\n"


def combine_tables(results: dict[str, dict], out_dir) -> None:
    """One table from several ``metrics.json`` results (``{name: result}``), written as md and tex."""
    rows = [
        {"name": name, "task": t, "metrics": m}
        for name, res in results.items()
        for t, m in res["metrics"].items()
    ]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(markdown_table(rows))
    (out / "table.tex").write_text(latex_table(rows))
