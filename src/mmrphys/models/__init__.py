"""Models: MMRPhys, FactorizePhys and the paper's baselines, behind one registry.

>>> from mmrphys import models
>>> net = models.create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3, attention="tsfm")
"""

# Model modules register their variants on import. Each is optional so that a partially built
# tree still imports; a missing module simply contributes no variants.
import importlib as _importlib

from mmrphys.models.inference import InputSpec, Predictor, input_spec, prepare
from mmrphys.models.registry import count_parameters, create, list_models, model_info, register_model

for _mod in ("mmrphys", "factorizephys", "physnet", "efficientphys", "physformer", "bigsmall"):
    try:
        _importlib.import_module(f"mmrphys.models.{_mod}")
    except ModuleNotFoundError as _e:  # pragma: no cover - only while the tree is being built
        if _e.name != f"mmrphys.models.{_mod}":
            raise

__all__ = [
    "InputSpec",
    "Predictor",
    "count_parameters",
    "create",
    "input_spec",
    "list_models",
    "model_info",
    "prepare",
    "register_model",
]
