"""Small pieces shared by the baseline networks (PhysNet, EfficientPhys, PhysFormer, BigSmall).

The baselines as the FactorizePhys/MMRPhys authors trained them take raw frames, difference them in
time inside the network and batch-normalise each modality (RGB and/or thermal) before the first
convolution. The functions :func:`add_modality_norm` and
:func:`apply_modality_norm` reproduce that input stage with the checkpoints' parameter names.
"""

from __future__ import annotations

import torch
from torch import nn

from mmrphys.errors import ConfigError, InputError


def check_clip(x: torch.Tensor, model: str, in_channels: int, size: int | None = None) -> None:
    """Raise :class:`InputError` unless ``x`` is a float (B, C, T, H, W) clip that ``model`` accepts."""
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"{model}: expected a (B, C, T, H, W) tensor, got {shape}")
    if x.shape[1] != in_channels:
        raise InputError(
            f"{model}: expected {in_channels} channels, got {x.shape[1]} (input {tuple(x.shape)})"
        )
    if size is not None and (x.shape[3] != size or x.shape[4] != size):
        raise InputError(f"{model}: expected {size}x{size} frames, got {x.shape[3]}x{x.shape[4]}")


def time_diff(x: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """First difference along ``dim`` by slicing (``torch.diff`` has no ONNX export)."""
    n = x.shape[dim]
    return x.narrow(dim, 1, n - 1) - x.narrow(dim, 0, n - 1)


def check_frames(n_frames: int, multiple: int, model: str) -> None:
    """Raise :class:`InputError` unless the number of (differenced) frames is a positive multiple."""
    if n_frames <= 0 or n_frames % multiple:
        raise InputError(f"{model}: needs a multiple of {multiple} frames after differencing, got {n_frames}")


def add_modality_norm(module: nn.Module, in_channels: int, dims: int = 3, name: str = "norm") -> None:
    """Give ``module`` the BatchNorm of its input per modality: RGB (3 ch), thermal (1 ch) or RGBT (4 ch).

    Attribute names follow the authors' code so that checkpoints load: ``<name>`` for 1 or 3 channels,
    ``rgb_norm`` and ``thermal_norm`` for 4. ``dims`` is 2 (frames as a batch of images) or 3 (clips).
    """
    if in_channels not in (1, 3, 4):
        raise ValueError(f"in_channels must be 1, 3 or 4, got {in_channels}")
    bn = nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d
    if in_channels == 4:
        module.rgb_norm = bn(3)
        module.thermal_norm = bn(1)
    else:
        setattr(module, name, bn(in_channels))


def apply_modality_norm(
    module: nn.Module, x: torch.Tensor, in_channels: int, name: str = "norm"
) -> torch.Tensor:
    """Apply the norms made by :func:`add_modality_norm` (channels are on axis 1)."""
    if in_channels == 4:
        return torch.cat([module.rgb_norm(x[:, :3]), module.thermal_norm(x[:, 3:])], dim=1)
    return getattr(module, name)(x)


def temporal_shift(x: torch.Tensor, n_segment: int, fold_div: int = 3, wrap: bool = False) -> torch.Tensor:
    """Temporal shift (TSM) of (N*n_segment, C, H, W) features within each segment of frames.

    The first C//fold_div channels take the next frame's values, the second fold the previous
    frame's; the rest stay. Ends are zero-filled (TSM) or wrap around within the segment (BigSmall's
    WTSM).
    """
    nt, c, h, w = x.shape
    x = x.view(nt // n_segment, n_segment, c, h, w)
    fold = c // fold_div
    left, right, keep = x[:, :, :fold], x[:, :, fold : 2 * fold], x[:, :, 2 * fold :]
    if wrap:
        left = torch.roll(left, shifts=-1, dims=1)
        right = torch.roll(right, shifts=1, dims=1)
    else:
        left = torch.cat([left[:, 1:], torch.zeros_like(left[:, :1])], dim=1)
        right = torch.cat([torch.zeros_like(right[:, :1]), right[:, :-1]], dim=1)
    return torch.cat([left, right, keep], dim=2).view(nt, c, h, w)


def check_options(model: str, kwargs: dict, tasks=None, supported_tasks=("bvp",)) -> None:
    """Raise :class:`ConfigError` for unknown keyword options or tasks the model cannot produce."""
    if kwargs:
        raise ConfigError(f"{model}: unknown option(s) {', '.join(sorted(kwargs))}")
    if tasks is not None:
        tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        bad = [t for t in tasks if t not in supported_tasks]
        if bad or not tasks:
            raise ConfigError(f"{model}: tasks must be among {supported_tasks}, got {tasks}")
