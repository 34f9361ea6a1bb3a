"""A registry of named model variants, in the manner of timm's ``create_model``.

Each model module registers one small constructor per named variant with ``@register_model``.
Variant differences are arguments, not copied classes. Weights are handled outside the
``nn.Module`` (see :mod:`mmrphys.models.checkpoints`); what a model module contributes to that is
data: :class:`OfficialKeys`, how the authors' checkpoints of its family are recognised and how their
keys map onto the module (timm keeps a ``checkpoint_filter_fn`` beside each model for the same reason).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mmrphys.errors import ConfigError

_MODELS: dict[str, Callable] = {}
_DEFAULT_INPUT: dict[str, dict] = {}
_OFFICIAL: dict[str, OfficialKeys] = {}


@dataclass(frozen=True)
class OfficialKeys:
    """One key layout of the authors' checkpoints and its mapping onto our module.

    ``recognise(state, hints)`` looks at a state dict (``module.`` prefix removed) and returns
    ``(model_name, kwargs, notes)`` when the keys are of this layout, else ``None``; ``hints`` holds
    ``file`` (the file name) and the caller's ``size`` / ``attention`` (None when not given), for
    what keys cannot tell. Keys are then mapped in order: ``drop`` prefixes are removed (with the
    reason in a warning), ``moves`` rename a prefix (the renamed key is final), and the first
    ``rules`` regex that matches the whole key is replaced by its template (``re`` syntax,
    ``\\1``...). A key nothing matches is an error, unless ``identity`` (the keys are ours already).
    """

    layout: str
    recognise: Callable[[dict, dict], tuple[str, dict, list[str]] | None]
    rules: tuple[tuple[str, str], ...] = ()
    moves: tuple[tuple[str, str], ...] = ()
    drop: dict[str, str] = field(default_factory=dict)
    identity: bool = False


def register_official_keys(keys: OfficialKeys) -> OfficialKeys:
    """Register a layout of official checkpoints; recognisers are tried in registration order."""
    if keys.layout in _OFFICIAL:
        raise ValueError(f"official key layout {keys.layout!r} registered twice")
    _OFFICIAL[keys.layout] = keys
    return keys


def official_keys() -> dict[str, OfficialKeys]:
    """Registered official key layouts by name, in the order they are tried."""
    _ensure_loaded()
    return dict(_OFFICIAL)


def name_hint(name: str, patterns: dict[str, str]) -> str | None:
    """The first key of ``patterns`` whose regex occurs in ``name`` (a checkpoint's file name), or None."""
    return next((value for value, pattern in patterns.items() if re.search(pattern, name)), None)


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


#: The modules that register model variants on import (imported on the first registry lookup).
VARIANT_MODULES = ("mmrphys", "factorizephys", "physnet", "efficientphys", "physformer", "bigsmall")


def _ensure_loaded() -> None:
    import importlib

    for mod in VARIANT_MODULES:
        importlib.import_module(f"mmrphys.models.{mod}")


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
    """Build the registered variant ``name`` with keyword options (no weights are loaded).

    The model records how it was built as ``model.mmrphys_config = {"name": name, "kwargs": kwargs}``
    (as timm's ``pretrained_cfg``), which is what :func:`mmrphys.models.checkpoints.save_weights`
    stores and what rebuilds it.
    """
    _ensure_loaded()
    if name not in _MODELS:
        raise ConfigError(_unknown(name))
    model = _MODELS[name](**kwargs)
    model.mmrphys_config = {"name": name, "kwargs": dict(kwargs)}
    return model


def _unknown(name: str) -> str:
    close = fnmatch.filter(_MODELS, f"*{name.split('_')[0]}*") or sorted(_MODELS)
    return f"unknown model {name!r}; registered models include: {', '.join(sorted(close)[:12])}"
