"""A registry of named model variants, in the manner of timm's ``create_model``.

Each model module registers one small constructor per named variant with ``@register_model``.
Variant differences are arguments, not copied classes. Weights are handled outside the
``nn.Module`` (see :mod:`mmrphys.models.checkpoints`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from mmrphys.errors import ConfigError

_MODELS: dict[str, Callable] = {}
_DEFAULT_INPUT: dict[str, dict] = {}


def register_model(name: str | None = None, **default_input) -> Callable:
    """Decorator registering a variant constructor under ``name`` (default: the function name).

    ``default_input`` records metadata such as ``size=72, frames=181`` used by tools (benchmarks,
    export) to build a valid example input.
    """

    def wrap(fn: Callable) -> Callable:
        key = name or fn.__name__
        if key in _MODELS:
            raise ValueError(f"model {key!r} registered twice")
        _MODELS[key] = fn
        _DEFAULT_INPUT[key] = dict(default_input)
        return fn

    return wrap


def _ensure_loaded() -> None:
    # Importing the package imports every model module, which registers its variants.
    import mmrphys.models  # noqa: F401


def count_parameters(model, inference: bool = True) -> int:
    """Number of parameters; ``inference=True`` leaves out modules that only run in training.

    Attention weights (FSAM/TSFM/GRBF) are trained but unused by the deployed network, as in the
    paper's "params at inference" (e.g. MMRPhys-LEF RGB BVP+RSP: 87,600 vs 88,256 with TSFM). A
    module names such parts of itself with a method ``unused_at_inference()``.
    """
    total = sum(p.numel() for p in model.parameters())
    if not inference:
        return total
    unused = 0
    for m in model.modules():
        for part in getattr(m, "unused_at_inference", list)():
            unused += sum(p.numel() for p in part.parameters())
    return total - unused


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of registered variants matching a shell-style ``pattern``."""
    _ensure_loaded()
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def model_info(name: str) -> dict:
    """Metadata recorded at registration (e.g. input size and frame count)."""
    _ensure_loaded()
    if name not in _MODELS:
        raise ConfigError(_unknown(name))
    return dict(_DEFAULT_INPUT[name])


def create(name: str, **kwargs):
    """Build the registered variant ``name`` with keyword options (no weights are loaded)."""
    _ensure_loaded()
    if name not in _MODELS:
        raise ConfigError(_unknown(name))
    return _MODELS[name](**kwargs)


def _unknown(name: str) -> str:
    close = fnmatch.filter(_MODELS, f"*{name.split('_')[0]}*") or sorted(_MODELS)
    return f"unknown model {name!r}; registered models include: {', '.join(sorted(close)[:12])}"
