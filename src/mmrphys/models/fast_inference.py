"""A faster CPU inference path for MMRPhys and FactorizePhys, numerically equal to the PyTorch model.

Where the time goes (MMRPhys-LEF, 181x72x72, 1 thread, CPU time on the shared 2-core Xeon): the
official ONNX spends ~75 % in onnxruntime's 3D convs (im2col + SGEMM, ~20-25 GMAC/s on these
3-16 channel layers) and most of the rest in instance norm. oneDNN's brgemm 3D convolution on
channels-last (NDHWC) tensors runs the 16-channel layers at ~40-60 GMAC/s (~25-35 for the
3-channel first layers): the fastest engine we measured. Rewriting each 3×3×3 conv time-major as
one Conv2d over three stacked frames was no faster, neither in onnxruntime (NCHWc) nor in oneDNN
(docs/benchmarks.md), so this path keeps NDHWC 3D convs and strips what surrounds them:

1. Each ``ConvBlock3D`` is one oneDNN convolution with Tanh fused as a post-op
   (``torch.ops.mkldnn._convolution_pointwise``), writing NDHWC.
2. Instance-norm statistics take one memory pass (:func:`channel_moments`: per ~1 MB block, the
   sums as one SGEMV over a 256-float-wide view and, while the block is in cache, the diagonal of
   its Gram matrix), with a two-pass fallback where E[y²] − E[y]² would cancel.
3. (``fold=True``, default; :class:`FoldedModel`) the normalisation of every large activation is
   folded into the next conv — weights scaled by 1/σ per input channel, −Σ μ/σ·W as a bias, the
   few output frames whose window reaches the temporal padding recomputed with mean-valued
   padding frames — so no pass rewrites those activations. Exact; skipped where spatial padding or
   |μ|/σ > 10 would make it inexact or ill-conditioned (then the norm is applied in place).
   ``fold=False`` swaps in :class:`FastConvBlock3D` (in-place norm) instead; both measured alike.
4. The input's temporal difference is written straight to NDHWC; dropout becomes identity; work on
   small tensors runs on one thread (fork/join stalls on a busy machine).
5. (``retain_memory=True``, default) glibc keeps freed memory: PyTorch's CPU allocator has no
   cache, so every activation over 32 MB was a fresh ``mmap`` with ~14k page faults per call
   (onnxruntime has its arena), and one malloc arena for all threads. Process-wide; see
   :func:`retain_freed_memory`.
6. (``concurrent=True``, default) at 2+ torch threads a two-branch model (BVP + RSP) runs its
   branches side by side on two threads, each with a one-thread OpenMP/MKL team, instead of
   spreading each small conv over all threads (:func:`_run_side_by_side`). The threads split the
   input difference and its statistics, then the RSP thread runs the RSP branch while the other
   computes the last third of RSP conv1's output frames (3→16 channels at full resolution, the
   largest layer; :class:`_Split`) and then the whole BVP branch: two independent threads with
   two meeting points, where intra-op threading forks and joins ~100 times per call and stalls
   whenever another process holds a core. ``concurrent=False`` keeps intra-op threading.

``compile=True`` instead compiles a plain channels-last copy with TorchInductor (frozen weights,
intra-op threading). Compilation is per input shape (and thread count): ~20 s on a warm Inductor
cache, ~100 s cold under load, paid on the first call with each new clip shape; ``dynamic=False``.

Factorization attention, which does not run at inference, is untouched; where it does run at
inference (``attention_at_inference=True``) the module-swap path runs it unchanged on NDHWC
tensors. The returned module keeps the model's ``forward`` contract in eval mode (max |Δ| ≤ 1e-5
after z-scoring in tests, ~4e-6 typical).

>>> fast = fast_inference.optimize(models.create("mmrphys_lef"))
>>> out = fast(frames)        # (B, C, T+1, H, W) -> {"bvp": (B, T), "rsp": (B, T)}
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

from mmrphys.models.layers import ConvBlock3D, DiffNormalize, check_clip

EPS = 1e-5  # InstanceNorm3d's default
CL = torch.channels_last_3d
# Above this mean²/var ratio the one-pass variance E[y²] − E[y]² (fp32 sums with ~5e-6 relative
# error over ~1e6 terms) could lose more than ~5e-5 relative accuracy; such channels get two passes.
_CANCELLATION_RATIO = 10.0
# Folding skips activations whose |mean|/std exceeds 10 (conv(y·rstd) − conv(mean·rstd) cancels).
_FOLD_RATIO = 100.0
# Smaller activations are normalised in place instead: the pass is cheap, and each fold costs
# extra small calls (a border conv), which multi-threaded runs on a busy machine pay dearly for.
_FOLD_MIN_NUMEL = 1 << 20
# Work on fewer elements than this runs on one thread: with several threads each call is a
# fork/join, and on a shared machine one descheduled worker stalls it for a whole time slice.
_SERIAL_NUMEL = 1 << 19
# A stream's first block is split across the two threads when its output has this many elements.
_SPLIT_NUMEL = 1 << 22
# The share of that block's output frames the worker thread computes (it also runs the other branch).
_WORKER_SHARE = 0.33
_SUM_ROW = 256  # floats per row of the SGEMV that sums an activation's channels
_STATS_BLOCK = 1 << 18  # floats per block of the statistics pass (1 MB: stays in L2 for the second read)


def _has_fused_conv() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def conv3d_cl(x: torch.Tensor, weight: torch.Tensor, stride, padding, tanh: bool, bias=None) -> torch.Tensor:
    """3D conv on NDHWC memory, optionally with Tanh fused (oneDNN post-op after the bias)."""
    x = x.contiguous(memory_format=CL)
    if _FUSED:
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, list(padding), list(stride), [1, 1, 1], 1, "tanh" if tanh else "none", [], ""
        )
    y = F.conv3d(x, weight, bias, stride, padding)
    return torch.tanh_(y) if tanh else y


class _serial:
    """Run the enclosed torch calls on one intra-op thread (no-op when already single-threaded)."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        if self.threads > 1:
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.threads > 1:
            torch.set_num_threads(self.threads)


def _rows(y: torch.Tensor) -> torch.Tensor:
    """(N, C) view of a batch-1 NDHWC (1, C, T, H, W) tensor."""
    return y.permute(0, 2, 3, 4, 1).reshape(-1, y.shape[1])


def channel_stats(y: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and 1/sqrt(var + eps) of a batch-1 NDHWC tensor, each of shape (C,).

    See :func:`channel_moments`; channels whose mean dominates their variance, where
    E[y²] − E[y]² would cancel, are recomputed in two passes.
    """
    return stats_from_moments([y], *channel_moments(y), eps=eps)


def channel_moments(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-channel sums, sums of squares and element count of a batch-1 NDHWC tensor.

    One memory pass in ~1 MB blocks, two BLAS calls per block: the sums as an SGEMV over the
    block viewed as rows of ``k·C`` (~256) floats (``k`` pixels per row, folded afterwards), and,
    while the block is still in cache, the sums of squares as the diagonal of its (C×C) Gram
    matrix (one SGEMM). Far faster than ``var_mean`` over a strided channel axis. Runs on one
    thread (many small fork/joins stall on a shared machine).
    """
    rows = _rows(y)
    n, c = rows.shape
    k = max(_SUM_ROW // c, 1)  # pixels per row of the wide view
    step = max(_STATS_BLOCK // (k * c), 1) * k  # pixels per block, a multiple of k
    flat = rows.reshape(-1)
    wide = torch.zeros(k * c, dtype=rows.dtype)
    gram = torch.zeros(c, c, dtype=rows.dtype)
    ones = torch.ones(step // k, dtype=rows.dtype)
    end = n - n % k
    with _serial():
        for i in range(0, end, step):
            j = min(i + step, end)
            wide.addmv_(flat[i * c : j * c].view(-1, k * c).T, ones[: (j - i) // k])
            block = rows[i:j]
            gram.addmm_(block.T, block)
        total = wide.view(k, c).sum(0)
        if end < n:
            tail = rows[end:]
            total += tail.sum(0)
            gram.addmm_(tail.T, tail)
    return total, gram.diagonal(), n


def stats_from_moments(parts, total, sumsq, n: int, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and 1/sqrt(var + eps) from :func:`channel_moments` (summed over ``parts``, the
    tensors they came from, which a second pass reads where the one-pass variance would cancel)."""
    mean = total / n
    var = sumsq / n - mean * mean
    if bool((mean * mean > _CANCELLATION_RATIO * var).any()):
        var = sum((_rows(y) - mean).square_().sum(0) for y in parts) / n
    return mean, torch.rsqrt(var.clamp_min(0) + eps)


def instance_norm_(y: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Non-affine instance norm of an NDHWC (B, C, T, H, W) tensor, in place; returns ``y``."""
    for i in range(y.shape[0]):
        yi = y[i : i + 1]
        mean, rstd = channel_stats(yi, eps)
        rows = _rows(yi)
        torch.addcmul(-mean * rstd, rows, rstd, out=rows)
    return y


class FastConvBlock3D(nn.Module):
    """``ConvBlock3D`` as one fused conv+Tanh (oneDNN) and an in-place instance norm, on NDHWC."""

    def __init__(self, block: ConvBlock3D):
        super().__init__()
        conv = block.conv
        self.stride, self.padding = tuple(conv.stride), tuple(conv.padding)
        self.eps = getattr(block.norm, "eps", EPS)
        self.weight = nn.Parameter(conv.weight.detach().contiguous(memory_format=CL), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm_(conv3d_cl(x, self.weight, self.stride, self.padding, tanh=True), self.eps)


class FastConv3d(nn.Module):
    """A plain bias-free ``Conv3d`` (the heads' last layer) on NDHWC."""

    def __init__(self, conv: nn.Conv3d):
        super().__init__()
        self.stride, self.padding = tuple(conv.stride), tuple(conv.padding)
        self.weight = nn.Parameter(conv.weight.detach().contiguous(memory_format=CL), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv3d_cl(x, self.weight, self.stride, self.padding, tanh=False)


class FastDiffNormalize(nn.Module):
    """:class:`DiffNormalize` (per-channel instance norm of the first difference) written to NDHWC."""

    def __init__(self, norm: DiffNormalize):
        super().__init__()
        self.reference = norm  # channel checks and messages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm_(diff_cl(x, self.reference))


def diff_cl(x: torch.Tensor, norm: DiffNormalize) -> torch.Tensor:
    """First temporal difference of the channels ``norm`` uses, written to a new NDHWC tensor."""
    x = _diff_source(x, norm)
    b, c, t1, h, w = x.shape
    d = torch.empty((b, c, t1 - 1, h, w), dtype=x.dtype, memory_format=CL)
    return torch.sub(x[:, :, 1:], x[:, :, :-1], out=d)


def _diff_source(x: torch.Tensor, norm: DiffNormalize) -> torch.Tensor:
    """The channels of ``x`` that ``norm`` differences (the reference error for a wrong count)."""
    ch, c = norm.in_channels, x.shape[1]
    if c != ch:
        if not (c == 4 and ch in (1, 3)):
            norm(x[:, :, :2])  # raises the reference InputError for a wrong channel count
        x = x[:, :3] if ch == 3 else x[:, -1:]
    return x


class _Pending:
    """An NDHWC batch-1 activation ``y`` whose instance norm ``(y - mean) * rstd`` is not applied yet.

    Consumers that are convs fold the normalisation into their weights and bias (exact, by
    linearity) instead of paying a read-and-write pass over ``y``; others call :meth:`materialize`.
    """

    __slots__ = ("y", "mean", "rstd")

    def __init__(self, y: torch.Tensor, mean=None, rstd=None):
        self.y, self.mean, self.rstd = y, mean, rstd

    @classmethod
    def of(cls, y: torch.Tensor) -> _Pending:
        return cls(y, *channel_stats(y))

    def materialize(self) -> torch.Tensor:
        if self.mean is not None:
            rows = _rows(self.y)
            torch.addcmul(-self.mean * self.rstd, rows, self.rstd, out=rows)
            self.mean = self.rstd = None
        return self.y

    def foldable(self, padding) -> bool:
        # Spatial zero padding would make the folded constant position-dependent inside frames;
        # a mean far above the spread would make conv(y·rstd) − conv(mean·rstd) cancel.
        if self.mean is None or any(padding[1:]) or self.y.numel() < _FOLD_MIN_NUMEL:
            return False
        shift = self.mean * self.rstd
        return bool((shift * shift <= _FOLD_RATIO).all())

    def channels(self, sl: slice) -> _Pending:
        if range(self.y.shape[1])[sl] == range(self.y.shape[1]):
            return self
        y = self.y[:, sl].contiguous(memory_format=CL)
        if self.mean is None:
            return _Pending(y)
        return _Pending(y, self.mean[sl], self.rstd[sl])

    @staticmethod
    def cat(parts: list[_Pending]) -> _Pending:
        if len(parts) == 1:
            return parts[0]
        if any(p.mean is None for p in parts):
            return _Pending(torch.cat([p.materialize() for p in parts], 1).contiguous(memory_format=CL))
        y = torch.cat([p.y for p in parts], 1).contiguous(memory_format=CL)
        return _Pending(y, torch.cat([p.mean for p in parts]), torch.cat([p.rstd for p in parts]))


def _conv_pending(
    p: _Pending, weight, bias, stride, padding, tanh: bool, keep=None, fold: bool | None = None
) -> torch.Tensor:
    """``conv(instance_norm(p))`` [+ bias] [→ Tanh] with the normalisation folded in where exact.

    ``conv((y − mean)·rstd, W) = conv(y, W·rstd) − Σ_c mean_c·rstd_c·ΣW[:, c]`` wherever the
    window lies inside the clip. The temporal zero padding of the *normalised* input is the raw
    value ``mean``, so the few output frames whose window reaches into it are recomputed
    (:func:`_fix_borders`: a small conv over the clip frames of their window, the padding's
    constant in the bias; only those in ``keep``, a range of output frames, where given: the others
    are the caller's to discard).
    ``fold=True`` skips the check of :meth:`_Pending.foldable` (the caller made it on the tensor
    that ``p.y`` is a view of, which must not be normalised in place).
    """
    if p.mean is not None and not fold and not p.foldable(padding):
        p.materialize()
    if p.mean is None:
        return conv3d_cl(p.y, weight, stride, padding, tanh, bias)
    x = p.y
    w = weight * p.rstd.view(1, -1, 1, 1, 1)
    shift = torch.einsum("oikhw,i->o", weight, p.mean * p.rstd)
    folded_bias = -shift if bias is None else bias - shift
    y = conv3d_cl(x, w, stride, padding, tanh, folded_bias)
    t_in, k_t, s_t, p_t = x.shape[2], weight.shape[2], stride[0], padding[0]
    t_out = y.shape[2]
    first = [t * s_t - p_t for t in range(t_out)]
    border = [t for t in range(t_out) if first[t] < 0 or first[t] + k_t > t_in]
    if keep is not None:
        border = [t for t in border if t in keep]
    if border:
        with _serial():
            _fix_borders(x, y, w, folded_bias, p.mean, border, first, stride, padding, tanh)
    return y


def _fix_borders(x, y, w, bias, mean, border, first, stride, padding, tanh) -> None:
    """Recompute output frames ``border`` of ``y`` as if mean-valued frames were the temporal padding.

    A mean-valued frame adds ``Σ_{c,h,w} w[o, c, j, h, w]·mean_c`` through temporal tap ``j``, the
    same at every spatial position (folding is only used without spatial padding). So each border
    frame is one conv over the clip frames its window does reach, with the taps that reach them and
    the other taps' constants added to the bias: no window of fill frames is built, and the conv is
    1/k_t smaller per missing tap.
    """
    t_in, k_t = x.shape[2], w.shape[2]
    tap = torch.einsum("oikhw,i->ko", w, mean)  # (k_t, C_out): a mean-valued frame through each tap
    for t in border:
        lo, hi = max(first[t], 0), min(first[t] + k_t, t_in)
        j0, j1 = lo - first[t], hi - first[t]  # the taps that reach clip frames [lo, hi)
        b = bias + tap[:j0].sum(0) + tap[j1:].sum(0)
        if hi <= lo:  # the window lies wholly in the padding: a constant frame
            v = torch.tanh(b) if tanh else b
            y[:, :, t : t + 1].copy_(v.view(1, -1, 1, 1, 1).expand_as(y[:, :, t : t + 1]))
            continue
        part = conv3d_cl(
            x[:, :, lo:hi], w[:, :, j0:j1].contiguous(), (1, *stride[1:]), (0, *padding[1:]), tanh, b
        )
        y[:, :, t : t + 1].copy_(part)


_SKIPPED = (nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.Identity)  # identities at inference


def _run_stack(stack, p: _Pending) -> _Pending:
    """Run a ``Sequential`` of ConvBlock3D / Dropout / Upsample / Conv3d on a pending activation."""
    for m in stack:
        if isinstance(m, _SKIPPED):
            continue
        if p.y.numel() < _SERIAL_NUMEL and torch.get_num_threads() > 1:
            with _serial():
                p = _run_stack([m], p)
            continue
        if isinstance(m, ConvBlock3D):
            c = m.conv
            y = _conv_pending(p, c.weight, None, tuple(c.stride), tuple(c.padding), tanh=True)
            p = _Pending(y, *channel_stats(y, getattr(m.norm, "eps", EPS)))
        elif isinstance(m, nn.Conv3d):
            p = _Pending(_conv_pending(p, m.weight, m.bias, tuple(m.stride), tuple(m.padding), tanh=False))
        elif isinstance(m, nn.Upsample):
            scale = _temporal_repeat(m)
            p = _Pending(p.y.repeat_interleave(scale, dim=2).contiguous(memory_format=CL), p.mean, p.rstd)
        else:  # pragma: no cover - guarded by _plan
            raise TypeError(type(m).__name__)
    return p


def _temporal_repeat(m: nn.Module) -> int | None:
    """The integer temporal factor of a nearest (s, 1, 1) ``Upsample``; None for anything else."""
    sf = m.scale_factor
    sf = tuple(sf) if isinstance(sf, (tuple, list)) else (sf,) * 3
    if m.mode != "nearest" or m.size is not None or len(sf) != 3 or tuple(sf[1:]) != (1, 1):
        return None
    return int(sf[0]) if float(sf[0]).is_integer() else None


def _supported(stack) -> bool:
    for m in stack:
        if isinstance(m, nn.Upsample):
            if _temporal_repeat(m) is None:
                return False
        elif isinstance(m, nn.Conv3d):
            if m.groups != 1 or tuple(m.dilation) != (1, 1, 1) or m.padding_mode != "zeros":
                return False
        elif not isinstance(m, (ConvBlock3D, nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.Identity)):
            return False
    return True


def _plan(model: nn.Module):
    """``[(task, [(channel slice, extractor stack)], head)]`` for MMRPhys / FactorizePhys, or None."""
    from mmrphys.models.attention import Head

    if hasattr(model, "heads") and hasattr(model, "_streams"):
        branches = [
            (task, list(zip(model._streams[task], getattr(model, f"{task}_extractors"))), head)
            for task, head in model.heads().items()
        ]
    elif hasattr(model, "extractor") and isinstance(getattr(model, "bvp_head", None), Head):
        branches = [("bvp", [(slice(None), model.extractor)], model.bvp_head)]
    else:
        return None
    if not isinstance(getattr(model, "normalize", None), DiffNormalize):
        return None
    for _, streams, head in branches:
        if head.attention is not None and head.attention_at_inference:
            return None  # attention runs at inference: use the module-swap path
        stacks = [ext for _, ext in streams] + list(head.convs) + [head.final]
        if len(head.convs) != len(streams) or not all(_supported(s) for s in stacks):
            return None
    return branches


class FoldedModel(nn.Module):
    """Eval-mode MMRPhys/FactorizePhys forward with each instance norm folded into the next conv.

    ``concurrent=True`` (default) runs the task branches (BVP, RSP) side by side at 2+ threads, each
    on its own thread with a one-thread OpenMP/MKL team (:func:`_run_side_by_side`); otherwise, or
    with one thread, or one branch, the branches run one after the other with intra-op threading.
    """

    def __init__(self, model: nn.Module, branches, concurrent: bool = True):
        super().__init__()
        self.model = model
        self._branches = branches
        self.concurrent = concurrent

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        m = self.model
        check_clip(x, m.in_channels, getattr(m, "frame_multiple", 1))
        outs: dict[str, list[torch.Tensor]] = {task: [] for task, _, _ in self._branches}
        side_by_side = self.concurrent and len(self._branches) > 1 and torch.get_num_threads() > 1
        for b in range(x.shape[0]):  # instance statistics and folded weights are per sample
            if side_by_side:
                results = _run_side_by_side(_diff_source(x[b : b + 1], m.normalize), self._branches)
            else:
                z = _Pending.of(diff_cl(x[b : b + 1], m.normalize))
                results = [_run_branch(z, streams, head) for _, streams, head in self._branches]
            for (task, _, _), out in zip(self._branches, results):
                outs[task].append(out)
        return {task: torch.cat(v) for task, v in outs.items()}


def _run_branch(z: _Pending, streams, head) -> torch.Tensor:
    return _run_head([_run_stack(ext, z.channels(sl)) for sl, ext in streams], head)


def _run_head(feats: list[_Pending], head) -> torch.Tensor:
    """A head on its streams' features: (B, T) output."""
    emb = _Pending.cat([_run_stack(stack, f) for stack, f in zip(head.convs, feats)])
    return _run_stack(head.final, emb).materialize().flatten(1)


def _first_conv(stack) -> nn.Conv3d | None:
    """The first 3D convolution of a stack (that of its first ConvBlock3D), or None."""
    convs = (getattr(m, "conv", m) for m in stack if isinstance(m, (ConvBlock3D, nn.Conv3d)))
    return next(convs, None)


def _run_side_by_side(xs: torch.Tensor, branches) -> list[torch.Tensor]:
    """One sample's branches on two threads, one intra-op thread each (see :class:`FoldedModel`).

    The worker thread takes the later frames of the input difference and their moments, then the
    branches other than the one with the largest first activation (BVP in MMRPhys-L); the caller's
    thread takes the rest of the difference and that heavy branch (RSP). Where the heavy branch
    starts with a large stride-1 block followed by a conv (:func:`_split_plan`), the worker first
    computes that block's last frames (``_WORKER_SHARE`` of them), so that both threads carry about
    equal work. The threads meet twice: for the input statistics and for that block's statistics.
    """
    from concurrent.futures import Future

    b, c, t1, h, w = xs.shape
    d = torch.empty((b, c, t1 - 1, h, w), dtype=xs.dtype, memory_format=CL)
    mid = (t1 - 1) // 2
    later_moments: Future = Future()  # worker -> caller: moments of d[:, :, mid:]
    ready: Future = Future()  # caller -> worker: (z, plan)
    later_half: Future = Future()  # worker -> caller: the split block's last frames
    heavy = max(range(len(branches)), key=lambda i: _first_numel(c, branches[i][1][0]))
    others = [br for i, br in enumerate(branches) if i != heavy]

    def worker():
        try:
            torch.sub(xs[:, :, mid + 1 :], xs[:, :, mid:-1], out=d[:, :, mid:])
            later_moments.set_result(channel_moments(d[:, :, mid:]))
            z, plan = ready.result()
            if plan is not None:
                later_half.set_result(_block_part(z, plan, later=True))
        except BaseException as e:
            for f in (later_moments, later_half):
                if not f.done():
                    f.set_exception(e)
            raise
        return [_run_branch(z, streams, head) for _, streams, head in others]

    future = _worker_pool().submit(_one_thread_task, worker)
    with _serial():
        try:
            torch.sub(xs[:, :, 1 : mid + 1], xs[:, :, :mid], out=d[:, :, :mid])
            ta, qa, na = channel_moments(d[:, :, :mid])
            tb, qb, nb = later_moments.result()
            parts = [d[:, :, :mid], d[:, :, mid:]]
            z = _Pending(d, *stats_from_moments(parts, ta + tb, qa + qb, na + nb))
            # The shared input must not be normalised in place by one branch while another reads it.
            for _, streams, _ in branches:
                for sl, ext in streams:
                    if z.mean is None:
                        break
                    conv = _first_conv(ext)
                    if conv is None or not z.channels(sl).foldable(tuple(conv.padding)):
                        z.materialize()
            _, streams, head = branches[heavy]
            (sl, ext), rest = streams[0], streams[1:]
            z0 = z.channels(sl)
            plan = _split_plan(ext, z0) if z0 is z else None
        except BaseException as e:
            ready.set_exception(e)
            raise
        ready.set_result((z, plan))
        if plan is None:
            last = _run_branch(z, streams, head)
        else:
            first = _block_part(z, plan, later=False)
            feat = _run_stack(ext[plan.after :], _join_parts(plan, first, later_half.result()))
            last = _run_head([feat] + [_run_stack(e, z.channels(s_)) for s_, e in rest], head)
    out = future.result()
    out.insert(heavy, last)
    return out


def _first_numel(channels: int, stream) -> float:
    """Output elements per input element of a stream's first conv (its relative size)."""
    sl, ext = stream
    conv = _first_conv(ext)
    if conv is None:
        return 0.0
    return conv.out_channels / max(len(range(channels)[sl]), 1) / math.prod(conv.stride)


class _Split:
    """How a stream's first ConvBlock3D (stride 1 in time) is computed in two temporal halves.

    The next conv's outputs ``[0, cut)`` read only block frames ``[0, a_end)``, and outputs
    ``[cut, T2)`` only frames ``[b_start, T1)`` (``b_start ≤ a_end``: a frame or two computed
    twice); statistics take frames ``[0, a_end)`` from the first half and the rest from the other.
    """

    __slots__ = ("block", "nxt", "after", "t1", "cut", "a_end", "b_start")

    def __init__(self, block, nxt, after, t1, cut, a_end, b_start):
        self.block, self.nxt, self.after = block, nxt, after
        self.t1, self.cut, self.a_end, self.b_start = t1, cut, a_end, b_start


def _split_plan(stack, z: _Pending) -> _Split | None:
    """A :class:`_Split` for ``stack`` (a ConvBlock3D, then a ConvBlock3D or Conv3d) on ``z``, or
    None where it does not apply or the block is too small for a split to pay."""
    idx = [i for i, m in enumerate(stack) if not isinstance(m, _SKIPPED)]
    if len(idx) < 2 or not isinstance(stack[idx[0]], ConvBlock3D):
        return None
    block, nxt = stack[idx[0]].conv, stack[idx[1]]
    if not isinstance(nxt, (ConvBlock3D, nn.Conv3d)):
        return None
    c2 = getattr(nxt, "conv", nxt)
    k1, s1, p1 = block.kernel_size[0], block.stride[0], block.padding[0]
    t1 = z.y.shape[2]
    if s1 != 1 or k1 != 2 * p1 + 1 or z.y[:, :1].numel() * block.out_channels < _SPLIT_NUMEL:
        return None
    k2, s2, p2 = c2.kernel_size[0], c2.stride[0], c2.padding[0]
    t2 = (t1 + 2 * p2 - k2) // s2 + 1
    cut = t2 - max(round(t2 * _WORKER_SHARE), 1)
    a_end, b_start = (cut - 1) * s2 - p2 + k2, cut * s2 - p2
    # the later half's conv runs unpadded in time: its last window must end inside the clip
    if not (0 < b_start <= a_end < t1) or (t2 - 1) * s2 - p2 + k2 > t1:
        return None
    return _Split(stack[idx[0]], stack[idx[1]], idx[1] + 1, t1, cut, a_end, b_start)


def _block_part(z: _Pending, plan: _Split, later: bool):
    """Frames ``[0, a_end)`` (or ``[b_start, T1)``) of the block's output, and their moments
    over the frames this half counts for the statistics."""
    conv = plan.block.conv
    f0, f1 = (plan.b_start, plan.t1) if later else (0, plan.a_end)
    p1, k1 = conv.padding[0], conv.kernel_size[0]
    s0, s1 = max(f0 - p1, 0), min(f1 - p1 + k1 - 1, plan.t1)
    # a symmetric temporal padding p1 on input frames [s0, s1): output j is frame s0 + j
    y = _conv_pending(
        _Pending(z.y[:, :, s0:s1], z.mean, z.rstd),
        conv.weight,
        None,
        tuple(conv.stride),
        tuple(conv.padding),
        tanh=True,
        keep=range(f0 - s0, f1 - s0),
        fold=True,  # z is shared by both threads: foldable as a whole, or already normalised
    )[:, :, f0 - s0 : f1 - s0]
    counted = y[:, :, plan.a_end - plan.b_start :] if later else y
    return y, channel_moments(counted), counted


def _join_parts(plan: _Split, first, later) -> _Pending:
    """The next conv's output from the two halves (its statistics pending if it is a block)."""
    (ya, (ta, qa, na), ca), (yb, (tb, qb, nb), cb) = first, later
    eps = getattr(plan.block.norm, "eps", EPS)
    mean, rstd = stats_from_moments([ca, cb], ta + tb, qa + qb, na + nb, eps)
    nxt = plan.nxt
    c = getattr(nxt, "conv", nxt)
    tanh = isinstance(nxt, ConvBlock3D)
    pa, pb = _Pending(ya, mean, rstd), _Pending(yb, mean, rstd)
    pad_b = (0, *c.padding[1:])
    if not (pa.foldable(tuple(c.padding)) and pb.foldable(pad_b)):
        pa.materialize()
        pb.materialize()
    stride = tuple(c.stride)
    out_a = _conv_pending(pa, c.weight, c.bias, stride, tuple(c.padding), tanh, keep=range(plan.cut))
    out_b = _conv_pending(pb, c.weight, c.bias, stride, pad_b, tanh)
    y = torch.cat([out_a[:, :, : plan.cut], out_b], 2).contiguous(memory_format=CL)
    if tanh:
        return _Pending(y, *channel_stats(y, getattr(nxt.norm, "eps", EPS)))
    return _Pending(y)


def _one_thread_task(fn, *args):
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)  # this worker thread's own OpenMP/MKL team
    with torch.inference_mode():
        return fn(*args)


_POOL = None


def _worker_pool():
    """The process-wide persistent worker thread of the side-by-side path (created on first use)."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmrphys-fast")
    return _POOL


class _ChannelsLastConvBlock3D(nn.Module):
    """The Inductor-friendly form: channels-last ``conv3d``, Tanh, ``instance_norm`` (``compile=True``)."""

    def __init__(self, block: ConvBlock3D):
        super().__init__()
        conv = block.conv
        self.stride, self.padding = conv.stride, conv.padding
        self.eps = getattr(block.norm, "eps", EPS)
        self.weight = nn.Parameter(conv.weight.detach().contiguous(memory_format=CL), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv3d(x.contiguous(memory_format=CL), self.weight, None, self.stride, self.padding)
        return F.instance_norm(torch.tanh(y), eps=self.eps)


class _ChannelsLastConv3d(nn.Module):
    def __init__(self, conv: nn.Conv3d):
        super().__init__()
        self.conv = conv
        conv.weight.data = conv.weight.data.contiguous(memory_format=CL)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.contiguous(memory_format=CL))


def _swap(module: nn.Module, for_compile: bool) -> None:
    for name, child in module.named_children():
        if isinstance(child, ConvBlock3D):
            setattr(module, name, (_ChannelsLastConvBlock3D if for_compile else FastConvBlock3D)(child))
        elif isinstance(child, (nn.Dropout, nn.Dropout2d, nn.Dropout3d)):
            setattr(module, name, nn.Identity())
        elif isinstance(child, DiffNormalize) and not for_compile:
            setattr(module, name, FastDiffNormalize(child))
        elif isinstance(child, nn.Conv3d) and type(module).__name__ != "FactorizationAttention":
            if for_compile or child.bias is not None or child.groups != 1 or child.dilation != (1, 1, 1):
                setattr(module, name, _ChannelsLastConv3d(child))
            else:
                setattr(module, name, FastConv3d(child))
        else:
            _swap(child, for_compile)


_MALLOC_TUNED = False


def retain_freed_memory() -> bool:
    """Make glibc keep freed heap memory for reuse (no ``mmap`` per large block, no trimming).

    PyTorch's CPU allocator does not cache, and glibc serves every block above 32 MB with a fresh
    ``mmap`` whose pages fault in on first touch (~30 ms per 56 MB activation here). After this call
    such blocks come from the heap and are reused, as onnxruntime's arena does. Also limits glibc to
    one arena, so that the side-by-side worker thread reuses the same heap (a per-thread arena
    unmaps each emptied heap: ~2.7k page faults per call). Process-wide and not undoable: the
    process keeps its peak memory. Returns False where glibc is not the allocator.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # <malloc.h>
    # One arena: a thread's own arena (the side-by-side worker's) gives a heap back to the system as
    # soon as it is empty, so its blocks would fault their pages in again on every call.
    _MALLOC_TUNED = (
        bool(mallopt(m_mmap_max, 0))
        and bool(mallopt(m_trim_threshold, 1 << 30))
        and bool(mallopt(m_arena_max, 1))
    )
    return _MALLOC_TUNED


class FastModel(nn.Module):
    """Wraps the optimised copy; runs under ``torch.inference_mode``."""

    def __init__(self, model: nn.Module, compiled=None, source: nn.Module | None = None):
        super().__init__()
        self.model = model
        source = model if source is None else source
        object.__setattr__(self, "_compiled", compiled)  # not a submodule: same weights as ``model``
        for attr in ("tasks", "in_channels", "input_size", "frame_multiple"):
            if hasattr(source, attr):
                setattr(self, attr, getattr(source, attr))

    def forward(self, x: torch.Tensor, labels=None) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            return (self.model if self._compiled is None else self._compiled)(x)


def optimize(
    model: nn.Module,
    compile: bool = False,
    fold: bool = True,
    retain_memory: bool = True,
    concurrent: bool = True,
) -> FastModel:
    """An inference-only copy of ``model`` (MMRPhys/FactorizePhys built from ``ConvBlock3D``).

    Default: the eager path with each large instance norm folded into the next conv where that is
    exact (:class:`FoldedModel`); ``fold=False`` (or attention running at inference) swaps modules
    for :class:`FastConvBlock3D` instead. ``compile=True`` compiles a channels-last copy with
    TorchInductor (one-off compilation per input shape). ``retain_memory`` calls
    :func:`retain_freed_memory` (process-wide). ``concurrent`` (folded path, 2+ torch threads,
    two branches) runs the BVP and RSP branches on two threads of one intra-op thread each instead
    of one after the other on all threads; the threads are read from ``torch.get_num_threads()``
    at each call, so ``torch.set_num_threads(1)`` gives the one-thread path.
    """
    fast = copy.deepcopy(model).eval()
    for p in fast.parameters():
        p.requires_grad_(False)
    if retain_memory:
        retain_freed_memory()
    branches = _plan(fast) if fold and not compile else None
    if branches is not None:
        return FastModel(FoldedModel(fast, branches, concurrent), None, fast)
    _swap(fast, for_compile=compile)
    compiled = None
    if compile:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # constant weights: lets Inductor prepack them for oneDNN
        compiled = torch.compile(fast, dynamic=False)
    return FastModel(fast, compiled, fast)


_FUSED = _has_fused_conv()
