"""Training losses on (B, T) waveforms.

- ``smoothl1`` (MMRPhys default): SmoothL1 between the per-sample z-scored prediction and label.
- ``neg_pearson``: 1 - Pearson r per sample over time, averaged over the batch.
- ``neg_pearson_batch``: the reference FactorizePhys/rPPG-Toolbox variant, which z-scores with the
  whole batch's mean/std and correlates *across the batch at each time step* (cosine similarity
  along dim 0), then averages over time. Kept for reproducing published numbers; it depends on
  the batch composition and does not decompose across DDP ranks.
- ``mse``: MSE on z-scored signals (BigSmall).

:func:`multitask_loss` sums a loss over the tasks present in both prediction and labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmrphys.errors import ConfigError


def zscore(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-sample z-score along the last axis; std clamped to ``eps`` (flat signals stay finite)."""
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, keepdim=True, unbiased=False).clamp_min(eps)
    return (x - mean) / std


def smooth_l1(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """SmoothL1 (beta 1) between per-sample z-scored prediction and label."""
    eps = 1e-3 if pred.dtype in (torch.float16, torch.bfloat16) else 1e-8
    return F.smooth_l1_loss(zscore(pred.float(), eps), zscore(label.float(), eps))


def mse(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(zscore(pred.float()), zscore(label.float()))


def neg_pearson(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 - Pearson r(pred_i, label_i) over time."""
    p = zscore(pred.float())
    y = zscore(label.float())
    r = (p * y).mean(dim=-1)
    return (1.0 - r).mean()


def neg_pearson_batch(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Reference batch-axis variant: global z-score, cosine similarity along the batch, 1 - mean."""
    p = pred.float()
    y = label.float()
    p = (p - p.mean()) / p.std().clamp_min(1e-8)
    y = (y - y.mean()) / y.std().clamp_min(1e-8)
    return 1.0 - F.cosine_similarity(p, y, dim=0).mean()


LOSSES = {
    "smoothl1": smooth_l1,
    "neg_pearson": neg_pearson,
    "neg_pearson_batch": neg_pearson_batch,
    "mse": mse,
}


def get_loss(name: str):
    """The loss function called ``name`` (see :data:`LOSSES`)."""
    if name not in LOSSES:
        raise ConfigError(f"train.loss: {name!r} is not one of {', '.join(LOSSES)}")
    return LOSSES[name]


def multitask_loss(pred: dict, labels: dict, loss: str = "smoothl1", weights: dict | None = None):
    """Sum of ``loss`` over tasks in both dicts; returns ``(total, {task: value})``."""
    fn = get_loss(loss)
    parts = {}
    total = None
    for task in pred:
        if task not in labels or labels[task] is None:
            continue
        value = fn(pred[task], labels[task]) * float((weights or {}).get(task, 1.0))
        parts[task] = value
        total = value if total is None else total + value
    if total is None:
        raise ConfigError(f"no labels for any predicted task {sorted(pred)}")
    return total, parts


def masked_multitask_loss(
    pred: dict, labels: dict, masks: dict, loss: str = "smoothl1", weights: dict | None = None
):
    """:func:`multitask_loss` where ``masks[task]`` (B,) bool keeps only the labelled samples.

    A task with no labelled sample in the batch contributes 0 (with a graph, so DDP stays in step).
    """
    fn = get_loss(loss)
    parts, total = {}, None
    for task in pred:
        if task not in labels:
            continue
        p, y = pred[task], labels[task]
        if task in masks:
            m = masks[task]
            if not bool(m.any()):
                value = p.sum() * 0.0
            else:
                value = fn(p[m], y[m])
        else:
            value = fn(p, y)
        value = value * float((weights or {}).get(task, 1.0))
        parts[task] = value
        total = value if total is None else total + value
    if total is None:
        raise ConfigError(f"no labels for any predicted task {sorted(pred)}")
    return total, parts
