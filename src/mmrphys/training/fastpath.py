"""The training engine: the reference network computed with fewer passes over memory, in fp32 or bf16.

``engine: reference`` trains the model exactly as the authors do (eager, NCDTHW, fp32 unless
``precision`` says otherwise). ``engine: fast`` (the default) computes the same function:

- every :class:`~mmrphys.models.layers.ConvBlock3D` (conv → tanh → non-affine instance norm) is
  swapped, for the duration of training, for :class:`FastConvBlock3D`, which keeps its activations
  channels-last (NDHWC: oneDNN's 3D convolutions and their backward passes run 2-3× faster there
  than on NCDHW) and computes tanh + instance norm as one autograd function whose forward and
  backward are each one fused loop (``torch.compile`` of :func:`tanh_instance_norm_fwd` /
  :func:`tanh_instance_norm_bwd`). It saves only its normalised output (the next conv saves it
  anyway) and the per-channel statistics: tanh's output is recovered from them in the backward
  pass instead of being kept, which halves the activation memory;
- with ``precision: bf16`` the feature extractors and head conv stacks run under bf16 autocast and
  everything from the attention point on (factorization, excitation, final convs, the loss) in fp32.
  Master weights, gradients seen by the optimizer and optimizer state stay fp32.

Nothing here changes process-wide state: the swap is undone by :func:`restore_conv_blocks`, and
autocast is a context. ``precision: auto`` picks bf16 only where the CPU computes it natively
(:func:`cpu_has_native_bf16`).
"""

from __future__ import annotations

import sys
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from mmrphys.errors import ConfigError
from mmrphys.models.layers import ConvBlock3D

CL = torch.channels_last_3d
PRECISIONS = ("auto", "fp32", "bf16")
ENGINES = ("fast", "reference")
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


# ----------------------------------------------------------------------------------- precision
def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16) and oneDNN is there.

    Read from the kernel's CPU flags (Linux); elsewhere False, so ``auto`` stays fp32. Without these
    instructions oneDNN emulates bf16, which is slower than fp32.
    """
    if not torch.backends.mkldnn.is_available() or not sys.platform.startswith("linux"):
        return False
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return any(f in flags for f in _BF16_FLAGS)
    return False


def resolve_precision(tcfg: dict, device: torch.device) -> str:
    """``train.precision`` (+ the older ``train.amp``) on ``device`` → ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    ``auto``: bf16 on a CPU with native bf16, else fp32; on CUDA fp32. ``amp: true`` keeps its old
    meaning (bf16 autocast on CPU, fp16 + GradScaler on CUDA) and conflicts with ``precision: fp32``.
    """
    want = tcfg.get("precision", "auto")
    if tcfg.get("amp"):
        if want == "fp32":
            raise ConfigError("train.amp: true conflicts with train.precision: fp32 (remove one)")
        return "fp16" if device.type == "cuda" and want == "auto" else "bf16"
    if want == "auto":
        return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    return want


def autocast(device: torch.device, precision: str):
    """The autocast context for ``precision`` (a null context for fp32)."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


# ----------------------------------------------------------------------- fused tanh + instance norm
def tanh_instance_norm_fwd(c: torch.Tensor, eps: float):
    """``IN(tanh(c))`` per (sample, channel) over (T, H, W), statistics in fp32.

    Returns ``(z, mean, rstd)``: ``z`` in ``c``'s dtype, ``mean``/``rstd`` (B, C, 1, 1, 1) of
    ``tanh(c)`` in fp32 (fp64 for fp64 input).
    """
    y = torch.tanh(c.to(torch.promote_types(c.dtype, torch.float32)))
    var, mean = torch.var_mean(y, dim=(2, 3, 4), unbiased=False, keepdim=True)
    rstd = torch.rsqrt(var + eps)
    return ((y - mean) * rstd).to(c.dtype), mean, rstd


def tanh_instance_norm_bwd(gz: torch.Tensor, z: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor):
    """Gradient wrt ``c`` of :func:`tanh_instance_norm_fwd` given ``gz`` = dL/dz.

    Instance norm: ``dL/dy = rstd · (gz − mean(gz) − z · mean(gz · z))``; tanh: ``dy/dc = 1 − y²``
    with ``y = z / rstd + mean`` recovered from the saved output.
    """
    g = gz.to(mean.dtype)
    zf = z.to(mean.dtype)
    g_mean = g.mean(dim=(2, 3, 4), keepdim=True)
    gz_mean = (g * zf).mean(dim=(2, 3, 4), keepdim=True)
    y = zf / rstd + mean
    return ((g - g_mean - zf * gz_mean) * rstd * (1.0 - y * y)).to(z.dtype)


class _Kernels:
    """The two functions, compiled on first use (one fused loop each); eager if compiling fails."""

    def __init__(self):
        self.fwd = self.bwd = None
        self.compiled = None

    def get(self):
        if self.fwd is None:
            self.fwd, self.bwd, self.compiled = _compile_kernels()
        return self.fwd, self.bwd


def _compile_kernels():
    try:
        fwd = torch.compile(tanh_instance_norm_fwd, dynamic=True, fullgraph=True)
        bwd = torch.compile(tanh_instance_norm_bwd, dynamic=True, fullgraph=True)
        _run_once(fwd, bwd, torch.float32)  # a missing C++ compiler shows here, not mid-step
        return fwd, bwd, True
    except Exception as err:  # no C++ compiler, unsupported platform: the same math, unfused
        msg = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        warnings.warn(
            f"training engine 'fast': torch.compile unavailable ({type(err).__name__}: {msg}); "
            "tanh + instance norm run unfused",
            RuntimeWarning,
            stacklevel=3,
        )
        return tanh_instance_norm_fwd, tanh_instance_norm_bwd, False


def _run_once(fwd, bwd, dtype) -> None:
    c = torch.randn(1, 2, 3, 3, 3).to(dtype).contiguous(memory_format=CL)
    z, mean, rstd = fwd(c, 1e-5)
    bwd(torch.ones_like(z), z, mean, rstd)


def warm_up(precision: str) -> bool:
    """Compile the fused kernels now for the dtypes ``precision`` uses; True when they are compiled.

    ``torch.compile`` caches its output on disk (``TORCHINDUCTOR_CACHE_DIR``), so only the first run
    on a machine pays the full compile (about 1-2 min on 2 busy cores; ~10 s later).
    """
    fwd, bwd = KERNELS.get()
    if precision in ("bf16", "fp16"):
        _run_once(fwd, bwd, torch.bfloat16 if precision == "bf16" else torch.float16)
    return bool(KERNELS.compiled)


KERNELS = _Kernels()


class _TanhInstanceNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, c: torch.Tensor, eps: float):
        fwd, _ = KERNELS.get()
        z, mean, rstd = fwd(c.contiguous(memory_format=CL), eps)
        ctx.save_for_backward(z, mean, rstd)
        return z

    @staticmethod
    def backward(ctx, gz: torch.Tensor):
        _, bwd = KERNELS.get()
        z, mean, rstd = ctx.saved_tensors
        return bwd(gz.contiguous(memory_format=CL), z, mean, rstd), None


def tanh_instance_norm(c: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``instance_norm(tanh(c))`` (non-affine) as one autograd node; channels-last output."""
    return _TanhInstanceNorm.apply(c, eps)


class FastConvBlock3D(nn.Module):
    """:class:`ConvBlock3D` computed channels-last with the fused tanh + instance norm.

    Holds the original block's ``conv`` and ``norm`` modules, so parameter names and the state dict
    are unchanged.
    """

    def __init__(self, block: ConvBlock3D):
        super().__init__()
        self.conv = block.conv
        self.norm = block.norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = _autocast_dtype(x.device.type)
        if low is not None and x.dtype == torch.float32:
            x = x.to(dtype=low, memory_format=CL)  # one copy instead of a layout copy, then autocast's cast
        else:
            x = x.contiguous(memory_format=CL)
        return tanh_instance_norm(self.conv(x), self.norm.eps)


def _autocast_dtype(device_type: str):
    """The autocast dtype active for ``device_type``, or None (torch < 2.4 lacks the query: None)."""
    try:
        if torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
    except (TypeError, AttributeError):
        return None
    return None


def swap_conv_blocks(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace every ``ConvBlock3D`` in ``model`` by a :class:`FastConvBlock3D` (in place).

    Returns what :func:`restore_conv_blocks` needs to undo it. Blocks whose norm is affine or
    tracks running statistics are left alone (the fused function assumes neither).
    """
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is ConvBlock3D and not child.norm.affine and not child.norm.track_running_stats:
                setattr(parent, name, FastConvBlock3D(child))
                swapped.append((parent, name, child))
    return swapped


def restore_conv_blocks(swapped: list[tuple[nn.Module, str, nn.Module]]) -> None:
    for parent, name, child in reversed(swapped):
        setattr(parent, name, child)


class TrainForward(nn.Module):
    """``forward(x, labels)`` of the training step: ``model`` with the precision split described above.

    Under bf16/fp16 a model with ``forward_features``/``forward_head`` (MMRPhys) runs its features
    under autocast and its heads in fp32; any other model runs entirely under autocast. Outputs are
    fp32. (A module, so that DDP can wrap it.)
    """

    def __init__(self, model: nn.Module, precision: str, device: torch.device):
        super().__init__()
        self.model = model
        self.precision = precision
        self.device = device

    def forward(self, x: torch.Tensor, labels: dict | None = None) -> dict:
        m = self.model
        if self.precision == "fp32":
            out = m(x, labels=labels)
        elif hasattr(m, "forward_features") and hasattr(m, "forward_head"):
            with autocast(self.device, self.precision):
                feats = m.forward_features(x)
            out = m.forward_head({k: v.float() for k, v in feats.items()}, labels)
        else:
            with autocast(self.device, self.precision):
                out = m(x, labels=labels)
        return {k: v.float() for k, v in out.items()}
