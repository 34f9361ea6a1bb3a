"""Copy a training run's weights into the package as shipped weights, without machine paths.

    python scripts/ship_weights.py runs/default/weights.pt mmrphys_sef_ubfc8_reanim

Writes ``src/mmrphys/weights/<NAME>.pt`` with the run's model, state and meta, but every dataset
``path`` and the cache folder of the recorded config set to null (a shipped file must not carry the
trainer's machine), and prints the ``bytes`` and ``sha256`` that its catalogue entry
(``src/mmrphys/weights/catalogue.json``) must state. For an RGB MMRPhys it also writes the runtime
twin ``<NAME>.onnx`` (the pulse branch as ONNX in the runtime form, which the main job runs through
onnxruntime: docs/main_job.md, "Speed") and prints the ``runtime`` fields of the entry.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from mmrphys.models.checkpoints import load_model, read_weights

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "mmrphys" / "weights"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_weights", type=Path, help="a run's weights.pt (our format)")
    ap.add_argument("name", help="the shipped name (file stem and catalogue name)")
    a = ap.parse_args(argv)
    obj = read_weights(a.run_weights)
    data = obj.get("meta", {}).get("config", {}).get("data", {})
    for part in ("train", "test"):
        for entry in data.get(part) or []:
            entry["path"] = None
    if "cache" in data:
        data["cache"] = None
    out = WEIGHTS_DIR / f"{a.name}.pt"
    torch.save(obj, out)
    blob = out.read_bytes()
    print(f"{out}: bytes {len(blob)}, sha256 {hashlib.sha256(blob).hexdigest()}")
    from mmrphys.cli.main import main as cli

    model = load_model(out)
    if hasattr(model, "keep_tasks") and model.in_channels == 3:
        twin = out.with_suffix(".onnx")
        cli(["export-onnx", "--weights", str(out), "--tasks", "bvp", "--runtime", "--out", str(twin)])
        blob = twin.read_bytes()
        sha = hashlib.sha256(blob).hexdigest()
        print(f'catalogue "runtime": {{"file": "{twin.name}", "sha256": "{sha}", "bytes": {len(blob)}, '
              '"tasks": ["bvp"]}')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
