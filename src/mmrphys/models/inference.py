"""One narrow inference interface for every model: :func:`prepare` ``(model, backend) -> Predictor``.

>>> predict = prepare(models.create("mmrphys_lef"))                 # eager
>>> out = predict(frames)        # float (B, C, T+1, H, W) -> {"bvp": (B, T), "rsp": (B, T)}
>>> predict = prepare(net, backend="compiled", example_shape=(1, 3, 181, 72, 72))

Backends (both give the module's outputs within float32 rounding; tested on raw outputs):

``"eager"``
    A copy of the module in eval mode, no autograd, run under ``torch.inference_mode()``. For the
    networks built from :class:`~mmrphys.models.layers.ConvBlock3D` (MMRPhys, FactorizePhys) the
    copy's 5-D weights are converted to channels-last (NDHWC), where oneDNN's 3D convolution runs
    about 2x faster than on NCDHW, and each ``ConvBlock3D`` and the input ``DiffNormalize`` are
    swapped for an NDHWC form of the same computation: convolution, Tanh in place, and the
    non-affine instance norm applied in place from one-pass statistics (PyTorch's own instance
    norm on NDHWC tensors reads strided channels and is ~4x slower than the convolution it follows).
    Inside a conv stack (``nn.Sequential``) the norm of a block that feeds a convolution is folded
    into that convolution's weights and bias instead (:class:`_FoldedStack`; no pass rewrites the
    activation: ~10 ms of a ~140 ms MMRPhys-LEF window on one thread).
    Other architectures run as they are.

``"compiled"``
    The module exported with :func:`torch.export.export` and compiled ahead of time by AOTInductor
    (``torch._inductor.aoti_compile_and_package``, the documented AOTInductor entry point, with
    frozen weights) for one window shape, ``example_shape`` with batch 1. The package is cached on disk
    (:func:`compiled_cache_dir`), keyed by a digest of the weights, the window shape, the torch
    version, the CPU (the code is built with ``-march=native``) and the thread count, so the
    20-100 s compilation happens once; later processes load it in a few seconds (importing Inductor).
    Exactly that shape runs through it; any other (batches included: the attention of some
    models couples the samples of a batch) runs on the eager module. Without
    a C++ compiler, or when compilation fails, one warning is issued and the eager backend is used.

The predictor carries the model's :class:`InputSpec` (crop size, window length, pixel scale), which
each architecture states as data beside its module (class attributes ``window_frames`` and
``pixel_scale``, with ``input_size``, ``frame_multiple`` and ``in_channels``).
"""

from __future__ import annotations

import copy
import hashlib
import os
import platform
import shutil
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mmrphys.errors import ConfigError
from mmrphys.models.layers import ConvBlock3D, DiffNormalize
from mmrphys.models.spec import InputSpec

BACKENDS = ("eager", "compiled")
CL = torch.channels_last_3d
_ONEDNN = torch.backends.mkldnn.is_available()
#: Rows of an NDHWC activation whose statistics are taken in one block: ~1 MB of float32 at 16
#: channels, so that the block is still in cache for its second read (the sums of squares).
_STATS_BLOCK_FLOATS = 1 << 18
#: Convolutions with inputs under this many elements run on oneDNN tensors (``Tensor.to_mkldnn``):
#: for batch-1 inputs of ~1e5 elements PyTorch picks its im2col fallback, 3-6x slower here.
_SMALL_CONV_NUMEL = 1 << 18
#: Above this mean²/variance ratio the one-pass variance E[y²] − E[y]² would lose more than a few
#: float32 digits; such channels are recomputed in two passes.
_CANCELLATION_RATIO = 10.0
#: A norm is folded into the next conv only where every channel's |mean|/std is at most this: the
#: folded conv sums terms up to (|mean|/std + |z|)·|W| instead of |z|·|W| and then subtracts the
#: constant, so its rounding error grows by up to ~(1 + this); 4 keeps it within ~5x of the
#: unfolded conv's (the equivalence tests' bound leaves > 10x room: measured <= 1e-3 of it).
_FOLD_MAX_SHIFT = 4.0


def input_spec(model: nn.Module) -> InputSpec:
    """The :class:`InputSpec` a model states about itself (defaults: 181 frames, scale 1.0)."""
    return InputSpec(
        size=int(model.input_size),
        frames=int(getattr(model, "window_frames", 181)),
        frame_multiple=int(getattr(model, "frame_multiple", 1)),
        in_channels=int(model.in_channels),
        pixel_scale=float(getattr(model, "pixel_scale", 1.0)),
    )


class Predictor:
    """A prepared model: ``predictor(x)`` with float ``x`` (B, C, T+1, H, W), a tensor or a NumPy
    array, returns ``{task: (B, T)}`` tensors.

    Runs under ``torch.inference_mode()``; the model's own input checks apply. Attributes:
    ``backend`` (the one actually used), ``spec`` (:class:`InputSpec`), ``tasks``, ``module`` (the
    eager module), ``compiled_shape`` (the window shape of the compiled code, or None).
    """

    def __init__(self, module: nn.Module, spec: InputSpec, compiled=None, compiled_shape=None, tasks=None):
        self.module = module
        self.spec = spec
        self.tasks = tuple(tasks) if tasks is not None else tuple(getattr(module, "tasks", ("bvp",)))
        self._compiled = compiled
        self.compiled_shape = compiled_shape
        self.backend = "eager" if compiled is None else "compiled"

    def __call__(self, x) -> dict[str, torch.Tensor]:
        if not isinstance(x, torch.Tensor):  # a NumPy array (the main job's windows)
            x = torch.from_numpy(x)
        with torch.inference_mode():
            if self._compiled is not None and tuple(x.shape) == self.compiled_shape:
                out = self._compiled(x.contiguous())
            else:
                out = self.module(x)
        return {t: out[t] for t in self.tasks}


def prepare(model: nn.Module, backend: str = "eager", example_shape=None, cache_dir=None,
            tasks=None) -> Predictor:
    """An inference-only :class:`Predictor` for ``model`` (which is left untouched).

    ``backend``: ``"eager"`` or ``"compiled"`` (see the module docstring); ``example_shape``, the
    window shape (B, C, T+1, H, W) to compile for, is required for ``"compiled"`` (B is taken as 1);
    ``cache_dir`` overrides :func:`compiled_cache_dir`. ``tasks``: the outputs wanted (default: all
    of ``model.tasks``); a model with a ``keep_tasks`` method (MMRPhys: one branch per task) then
    does not compute the others at all, any other model computes them and the predictor drops them.
    The window contract (:class:`InputSpec`) stays the whole model's.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    spec = input_spec(model)
    reference = copy.deepcopy(model).eval()
    if tasks is not None:
        tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        own = tuple(getattr(model, "tasks", ("bvp",)))
        if not tasks or any(t not in own for t in tasks):
            raise ConfigError(f"tasks must be a non-empty subset of the model's {own}; got {tasks!r}")
        tasks = tuple(t for t in own if t in tasks)
        if hasattr(reference, "keep_tasks"):
            reference.keep_tasks(tasks)
    for p in reference.parameters():
        p.requires_grad_(False)
    eager = _channels_last(copy.deepcopy(reference)) if _has_conv_blocks(reference) else reference
    if backend == "eager":
        return Predictor(eager, spec, tasks=tasks)
    if example_shape is None or len(example_shape) != 5:
        raise ConfigError(f"backend 'compiled' needs example_shape=(B, C, T+1, H, W); got {example_shape!r}")
    shape = (1, *(int(s) for s in example_shape[1:]))
    compiled = _load_or_compile(reference, shape, Path(cache_dir) if cache_dir else compiled_cache_dir())
    return Predictor(eager, spec, compiled, shape if compiled is not None else None, tasks=tasks)


# ----------------------------------------------------------------------------- eager: NDHWC blocks
def _has_conv_blocks(model: nn.Module) -> bool:
    return any(isinstance(m, ConvBlock3D) for m in model.modules())


def _channels_last(model: nn.Module) -> nn.Module:
    """``model`` with NDHWC weights and NDHWC forms of its ConvBlock3D / DiffNormalize modules."""
    for p in model.parameters():  # every 5-D weight (the remaining plain Conv3d layers included)
        if p.dim() == 5:
            p.data = p.data.contiguous(memory_format=CL)
    _swap_blocks(model)
    return model


def _swap_blocks(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential) and any(isinstance(m, ConvBlock3D) for m in child):
            setattr(module, name, _FoldedStack(child))
        elif isinstance(child, ConvBlock3D):
            setattr(module, name, _BlockNDHWC(child))
        elif isinstance(child, DiffNormalize):
            setattr(module, name, _DiffNormalizeNDHWC(child))
        else:
            _swap_blocks(child)


class _BlockNDHWC(nn.Module):
    """:class:`ConvBlock3D` on NDHWC tensors: conv, Tanh in place, instance norm in place."""

    def __init__(self, block: ConvBlock3D):
        super().__init__()
        self.conv = block.conv
        self.eps = block.norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm_(_conv_cl(x, self.conv.weight, None, self.conv), self.eps, tanh=True)


def _conv_cl(x: torch.Tensor, weight: torch.Tensor, bias, conv: nn.Conv3d) -> torch.Tensor:
    """``conv3d(x, weight, bias)`` with ``conv``'s stride and padding, NDHWC in and out."""
    if x.numel() < _SMALL_CONV_NUMEL and _ONEDNN:
        y = F.conv3d(x.to_mkldnn(), weight.to_mkldnn(), bias, conv.stride, conv.padding)
        return y.to_dense().contiguous(memory_format=CL)
    # NDHWC out, whichever kernel PyTorch picks (its im2col fallback returns NCDHW)
    y = F.conv3d(x.contiguous(memory_format=CL), weight, bias, conv.stride, conv.padding)
    return y.contiguous(memory_format=CL)


def _plain_conv(m: nn.Module) -> bool:
    return (isinstance(m, nn.Conv3d) and m.groups == 1 and tuple(m.dilation) == (1, 1, 1)
            and m.padding_mode == "zeros" and isinstance(m.padding, tuple))


class _FoldedStack(nn.Module):
    """A conv stack (``nn.Sequential`` with ConvBlock3D) on NDHWC tensors, where the instance norm
    of each block that feeds a convolution is folded into that convolution instead of rewriting
    the activation: ``conv((y − m)·r, W) = conv(y, W·r) − Σ_c m_c·r_c·ΣW[:, c]`` for every output
    whose window lies inside the clip (exact in real arithmetic). The norm's zero temporal padding
    is the raw value ``m``: output frames whose window reaches it get the missing taps' constant
    back (a per-channel constant, as no fold is made across spatial padding). Folded only at batch
    1 (per-sample weights otherwise) and where |m|·r <= ``_FOLD_MAX_SHIFT`` (conv(y·r) and the
    constant would cancel); the stack's output is always normalised.
    """

    def __init__(self, stack: nn.Sequential):
        super().__init__()
        layers = []
        for m in stack:
            if isinstance(m, ConvBlock3D):
                m = _BlockNDHWC(m)
            elif not _plain_conv(m):
                _swap_blocks(m)
            layers.append(m)
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pending = None  # (mean, rstd) of x's instance norm, not applied yet
        for m in self.layers:
            if isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.Identity)):
                continue  # eval-mode copy: identities
            conv = m.conv if isinstance(m, _BlockNDHWC) else m if _plain_conv(m) else None
            if pending is not None and (conv is None or any(conv.padding[1:])):
                x, pending = _normalize_(x, *pending), None
            if conv is None:
                x = m(x)
                continue
            y = _conv_folded(x, conv, pending)
            if not isinstance(m, _BlockNDHWC):
                x, pending = y, None
            elif y.shape[0] == 1:
                stats = _stats(y, m.eps, tanh=True)
                x, pending = (y, stats) if _foldable(*stats) else (_normalize_(y, *stats), None)
            else:
                x, pending = instance_norm_(y, m.eps, tanh=True), None
        return x if pending is None else _normalize_(x, *pending)


def _foldable(mean: torch.Tensor, rstd: torch.Tensor) -> bool:
    return bool(((mean * rstd).abs() <= _FOLD_MAX_SHIFT).all())


def _conv_folded(x: torch.Tensor, conv: nn.Conv3d, pending) -> torch.Tensor:
    """``conv(instance_norm(x))`` (+ conv's bias) where ``pending`` = (mean, rstd) of batch-1 ``x``
    not applied yet (None: ``x`` is ready)."""
    w, b = conv.weight, conv.bias
    if pending is None:
        return _conv_cl(x, w, b, conv)
    mean, rstd = pending
    w64 = w.double()
    shift = mean.double() * rstd.double()
    taps = torch.einsum("oikhw,i->ok", w64, shift)  # per output channel and temporal tap
    bias = -taps.sum(1) if b is None else b.double() - taps.sum(1)
    folded = (w64 * rstd.double().view(1, -1, 1, 1, 1)).to(w.dtype).contiguous(memory_format=CL)
    y = _conv_cl(x, folded, bias.to(w.dtype), conv)
    (k_t, s_t, p_t), t_in, n = (conv.kernel_size[0], conv.stride[0], conv.padding[0]), x.shape[2], y.shape[2]
    # only the output frames whose window reaches the temporal padding: t·s − p < 0 at the start,
    # t·s − p + k − 1 >= T_in at the end (the frames between need no correction)
    head, tail = min(n, -(-p_t // s_t)), max(0, -(-(t_in + p_t - k_t + 1) // s_t))
    for t in sorted(set(range(head)) | set(range(tail, n))):
        missing = [k for k in range(k_t) if not 0 <= t * s_t - p_t + k < t_in]
        if missing:
            y[:, :, t] += taps[:, missing].sum(1).to(y.dtype).view(1, -1, 1, 1)
    return y


class _DiffNormalizeNDHWC(nn.Module):
    """:class:`DiffNormalize` with the first difference written straight to an NDHWC tensor."""

    def __init__(self, norm: DiffNormalize):
        super().__init__()
        self.reference = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reference.used_channels(x)
        b, c, t1, h, w = x.shape
        d = torch.empty((b, c, t1 - 1, h, w), dtype=x.dtype, memory_format=CL)
        return instance_norm_(torch.sub(x[:, :, 1:], x[:, :, :-1], out=d), eps=1e-5)


def instance_norm_(y: torch.Tensor, eps: float = 1e-5, tanh: bool = False) -> torch.Tensor:
    """Non-affine instance norm of an NDHWC (B, C, T, H, W) tensor (of ``tanh(y)`` with ``tanh``),
    in place; returns ``y``.

    Each sample is viewed as rows of one image row (W pixels x C channels, so that the elementwise
    passes run along W·C contiguous floats, not C). One pass over ~1 MB blocks of rows applies the
    Tanh and takes the per-channel sums and sums of squares (a column sum and the diagonal of the
    block's C x C Gram matrix) while the block is in cache; channels whose mean dominates their
    variance, where E[y²] − E[y]² would cancel, get a second, centred pass. Then
    ``(y − mean) · rstd`` in place.
    """
    for i in range(y.shape[0]):
        _normalize_(y[i : i + 1], *_stats(y[i : i + 1], eps, tanh))
    return y


def _rows_of(y: torch.Tensor) -> torch.Tensor:
    """A batch-1 NDHWC (1, C, T, H, W) tensor as (T·H, W·C) rows (a view of its memory, else: error)."""
    _, c, t, h, w = y.shape
    return y[0].permute(1, 2, 3, 0).view(t * h, w * c)


def _stats(y: torch.Tensor, eps: float, tanh: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and 1/sqrt(var + eps) of batch-1 NDHWC ``y`` (after ``tanh`` in place)."""
    return _row_stats(_rows_of(y), y.shape[1], eps, tanh)


def _normalize_(y: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor) -> torch.Tensor:
    """``(y − mean)·rstd`` in place on batch-1 NDHWC ``y``; returns ``y``."""
    rows, w = _rows_of(y), y.shape[4]
    torch.addcmul((-mean * rstd).repeat(w), rows, rstd.repeat(w), out=rows)
    return y


def _row_stats(rows: torch.Tensor, c: int, eps: float, tanh: bool) -> tuple[torch.Tensor, torch.Tensor]:
    # One thread: blocks that stay in cache. More threads: whole-tensor calls, since every call on a
    # block would be a fork/join of the intra-op team, which stalls whenever a core is busy.
    step = max(_STATS_BLOCK_FLOATS // rows.shape[1], 1) if torch.get_num_threads() == 1 else rows.shape[0]
    total = rows.new_zeros(rows.shape[1])
    gram = rows.new_zeros(c, c)
    ones = rows.new_ones(min(step, rows.shape[0]))
    for i in range(0, rows.shape[0], step):
        block = rows[i : i + step]
        if tanh:
            block.tanh_()
        total.addmv_(block.T, ones[: block.shape[0]])  # column sums as one SGEMV (~2x sum(0))
        pixels = block.view(-1, c)
        gram.addmm_(pixels.T, pixels)
    n = rows.numel() // c
    mean = total.view(-1, c).sum(0) / n
    var = gram.diagonal() / n - mean * mean
    if bool((mean * mean > _CANCELLATION_RATIO * var).any()):
        var = (rows.view(-1, c) - mean).square_().sum(0) / n
    return mean, torch.rsqrt(var.clamp_min(0) + eps)


# ----------------------------------------------------------------------------- compiled: AOTInductor
def compiled_cache_dir() -> Path:
    """Compiled models: ``$MMRPHYS_CACHE`` or ``$XDG_CACHE_HOME/mmrphys`` (``~/.cache/mmrphys``),
    plus ``/compiled``."""
    root = os.environ.get("MMRPHYS_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "mmrphys"
    )
    return Path(root).expanduser() / "compiled"


def cache_key(model: nn.Module, shape: tuple) -> str:
    """Digest of everything the compiled code depends on: the weights and buffers, the module
    structure, the window shape, the torch version, the CPU and the thread count."""
    h = hashlib.sha256()
    parts = (repr(model), repr(tuple(shape)), torch.__version__, _cpu_tag(), str(torch.get_num_threads()))
    for part in parts:
        h.update(part.encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _cpu_tag() -> str:
    model_name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    isa = torch.backends.cpu.get_cpu_capability()
    return f"{platform.machine()}/{isa}/{model_name or platform.processor()}"


def _have_compiler() -> bool:
    return shutil.which(os.environ.get("CXX") or "g++") is not None


def _load_or_compile(model: nn.Module, shape: tuple, folder: Path):
    """The AOTInductor runner for ``shape`` from the cache, compiled and stored first if absent;
    None (after one warning) where that is not possible."""
    from torch._inductor import aoti_compile_and_package, aoti_load_package

    path = folder / f"{cache_key(model, shape)[:40]}.pt2"
    if path.is_file():
        try:
            return aoti_load_package(str(path))
        except Exception as err:  # noqa: BLE001 - a damaged or foreign package: compile it again
            warnings.warn(f"{path}: cached compiled model unusable ({type(err).__name__}); recompiling",
                          stacklevel=3)
    if not _have_compiler():
        warnings.warn("backend 'compiled' needs a C++ compiler (g++ or $CXX), none found: "
                      "running the eager backend", stacklevel=3)
        return None
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.pt2")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        example = torch.rand(shape)
        with torch.no_grad():  # Inductor freezes the weights only with autograd off
            program = torch.export.export(model, (example,))
            aoti_compile_and_package(program, package_path=str(tmp), inductor_configs={"freezing": True})
        os.replace(tmp, path)
        return aoti_load_package(str(path))
    except Exception as err:  # noqa: BLE001 - compiler, exporter or disk: the eager module still works
        warnings.warn(f"compiling the model failed ({type(err).__name__}: {str(err).splitlines()[0][:160]}); "
                      "running the eager backend", stacklevel=3)
        return None
    finally:
        tmp.unlink(missing_ok=True)
