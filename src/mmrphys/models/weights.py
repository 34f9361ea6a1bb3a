"""Named weights shipped with the package, each with a model card (in the manner of torchvision).

Files live in ``src/mmrphys/weights/``. A ``manifest.json`` there lists them:

.. code-block:: json

    {"default": "mmrphys_lef_synth",
     "weights": [{"name": "mmrphys_lef_synth", "file": "mmrphys_lef_synth.pt",
                  "card": {"model": "mmrphys_lef", "trained_on": "...", "metrics": {...},
                           "license": "MIT", "description": "..."}}]}

Any other ``*.pt`` file in that folder saved with :func:`mmrphys.models.checkpoints.save_weights`
is listed too, under its file stem, with its stored ``meta`` as the card. No weights download:
what is not in the folder does not exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mmrphys.errors import WeightsError

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


@dataclass(frozen=True)
class Weights:
    """One shipped weights file and its model card (training data, metrics, licence, ...)."""

    name: str
    path: Path
    card: dict = field(default_factory=dict)

    @property
    def model(self) -> str | None:
        return self.card.get("model")


def _manifest(folder: Path) -> dict:
    f = folder / "manifest.json"
    if not f.is_file():
        return {}
    try:
        return json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise WeightsError(f"{f}: unreadable weights manifest ({err})") from None


def list_weights(folder: Path | None = None) -> dict[str, Weights]:
    """Shipped weights by name (manifest entries first, then other ``*.pt`` files)."""
    folder = Path(folder or WEIGHTS_DIR)
    found: dict[str, Weights] = {}
    for entry in _manifest(folder).get("weights", []):
        found[entry["name"]] = Weights(entry["name"], folder / entry["file"], dict(entry.get("card", {})))
    if folder.is_dir():
        listed = {w.path.name for w in found.values()}
        for f in sorted(folder.glob("*.pt")):
            if f.name not in listed and f.stem not in found:
                found[f.stem] = Weights(f.stem, f, {})
    return found


def default_name(folder: Path | None = None) -> str | None:
    """Name of the default weights (manifest ``"default"``, else the only file), or None."""
    folder = Path(folder or WEIGHTS_DIR)
    name = _manifest(folder).get("default")
    if name:
        return name
    shipped = list_weights(folder)
    return next(iter(shipped)) if len(shipped) == 1 else None


def get_weights(name: str = "default", folder: Path | None = None) -> Weights:
    """Look up shipped weights by name (``"default"`` for the default); :class:`WeightsError` if absent."""
    folder = Path(folder or WEIGHTS_DIR)
    shipped = list_weights(folder)
    if name == "default":
        resolved = default_name(folder)
        if resolved is None:
            raise WeightsError(
                "no default weights are shipped with this installation "
                f"(nothing in {folder}); pass a weights file, e.g. --weights path/to/model.pt"
            )
        name = resolved
    if name not in shipped:
        have = ", ".join(sorted(shipped)) or "none"
        raise WeightsError(f"unknown weights {name!r}; shipped weights: {have}")
    w = shipped[name]
    if not w.path.is_file():
        raise WeightsError(f"weights {name!r}: file {w.path} is missing")
    return w


def model_card(name: str = "default") -> dict:
    """The model card of shipped weights, merged with the ``meta`` stored in the file."""
    from mmrphys.models.checkpoints import read_weights

    w = get_weights(name)
    obj = read_weights(w.path)
    return {
        "name": w.name,
        "model": obj["model"],
        "kwargs": obj.get("kwargs", {}),
        **obj.get("meta", {}),
        **w.card,
    }
