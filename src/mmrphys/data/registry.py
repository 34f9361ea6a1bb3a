"""Dataset loaders by name: ``get_loader("ubfc-rppg")``, ``list_datasets()``, ``load_dataset(name, root)``.

The built-in loaders are listed here by module and class and imported on first use (listing names
costs nothing); they do not import this module, so the package has no import cycle. Your own loader
class is added with :func:`register` (import its module in worker processes too: see
``preprocess(worker_init=...)``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mmrphys.errors import ConfigError

if TYPE_CHECKING:
    from mmrphys.data.base import Loader, Recording

_LOADERS: dict[str, type[Loader]] = {}
# name -> (module under mmrphys.data, class); each class's ``name`` equals its key (tested)
_BUILTIN = {
    "ubfc-rppg": ("ubfc_rppg", "UBFCrPPG"),
    "pure": ("pure", "PURE"),
    "ibvp": ("ibvp", "IBVP"),
    "scamps": ("scamps", "SCAMPS"),
    "bp4d": ("bp4d", "BP4D"),
    "cohface": ("cohface", "COHFACE"),
    "mmpd": ("mmpd", "MMPD"),
    "ubfc-phys": ("ubfc_phys", "UBFCPhys"),
    "generic": ("generic", "Generic"),
}
_ALIASES = {
    "ubfc": "ubfc-rppg",
    "ubfcrppg": "ubfc-rppg",
    "ubfc-rppg": "ubfc-rppg",
    "bp4dplus": "bp4d",
    "bp4d+": "bp4d",
    "ubfcphys": "ubfc-phys",
    "ubfc-phys": "ubfc-phys",
}


def register(cls: type[Loader]) -> type[Loader]:
    """Class decorator: make a :class:`Loader` subclass available under ``cls.name``."""
    _LOADERS[cls.name] = cls
    return cls


def canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    return _ALIASES.get(key.replace("-", ""), _ALIASES.get(key, key))


def list_datasets() -> list[str]:
    """Names of the registered dataset layouts."""
    return sorted(set(_BUILTIN) | set(_LOADERS))


def loader_class(name: str) -> type[Loader]:
    """The loader class registered as ``name`` (case/alias tolerant)."""
    key = canonical_name(name)
    if key not in _LOADERS and key in _BUILTIN:
        module, cls = _BUILTIN[key]
        _LOADERS[key] = getattr(importlib.import_module(f"mmrphys.data.{module}"), cls)
    if key not in _LOADERS:
        raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(list_datasets())}")
    return _LOADERS[key]


def get_loader(name: str, **options) -> Loader:
    """The loader for dataset ``name`` (case/alias tolerant) configured with ``options``."""
    return loader_class(name)(**options)


def load_dataset(name: str, root, **options) -> list[Recording]:
    """All recordings of dataset ``name`` under ``root`` (sorted by recording id)."""
    return get_loader(name, **options).recordings(root)
