"""Dataset loaders by name: ``get_loader("ubfc-rppg")``, ``list_datasets()``, ``load_dataset(name, root)``."""

from __future__ import annotations

import importlib

from mmrphys.data.base import Loader, Recording
from mmrphys.errors import ConfigError

_LOADERS: dict[str, type[Loader]] = {}
# Module of each built-in loader; imported on first use so listing names costs nothing.
_MODULES = ("ubfc_rppg", "pure", "ibvp", "scamps", "bp4d", "cohface", "mmpd", "ubfc_phys", "generic")
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


def _load_builtins() -> None:
    for mod in _MODULES:
        importlib.import_module(f"mmrphys.data.{mod}")


def canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    return _ALIASES.get(key.replace("-", ""), _ALIASES.get(key, key))


def list_datasets() -> list[str]:
    """Names of the registered dataset layouts."""
    _load_builtins()
    return sorted(_LOADERS)


def get_loader(name: str, **options) -> Loader:
    """The loader for dataset ``name`` (case/alias tolerant) configured with ``options``."""
    _load_builtins()
    key = canonical_name(name)
    if key not in _LOADERS:
        raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(sorted(_LOADERS))}")
    return _LOADERS[key](**options)


def load_dataset(name: str, root, **options) -> list[Recording]:
    """All recordings of dataset ``name`` under ``root`` (sorted by recording id)."""
    return get_loader(name, **options).recordings(root)
