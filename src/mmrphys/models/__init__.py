"""Models: MMRPhys, FactorizePhys and the paper's baselines, behind one registry.

>>> from mmrphys import models
>>> net = models.create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3, attention="tsfm")

The names below load on first use (PEP 562), so that the torch-free parts of this package
(:mod:`mmrphys.models.runtime`, :mod:`mmrphys.models.weights`, :mod:`mmrphys.models.spec`) import
without torch; the model modules register their variants on the first registry lookup
(``registry.VARIANT_MODULES``).
"""

import importlib as _importlib

_LAZY = {
    "InputSpec": "spec",
    "Predictor": "inference",
    "input_spec": "inference",
    "prepare": "inference",
    "count_parameters": "registry",
    "create": "registry",
    "list_models": "registry",
    "model_info": "registry",
    "register_model": "registry",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(_importlib.import_module(f"mmrphys.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mmrphys.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
