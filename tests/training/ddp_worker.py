"""Run the tiny training job once (plain python or under torchrun); used by test_trainer.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from training_stubs import PulseChunks, TinyNet  # noqa: E402

from mmrphys.training import distributed  # noqa: E402
from mmrphys.training.config import validate  # noqa: E402
from mmrphys.training.trainer import Trainer, seed_everything  # noqa: E402


def main(out: str) -> None:
    torch.set_num_threads(1)
    cfg = validate(
        {
            "seed": 3,
            "device": "cpu",
            "model": {"tasks": ["bvp", "rsp"]},
            "data": {"chunk": 32, "size": 8},
            "train": {"epochs": 2, "batch_size": 4, "lr": 1e-2, "log_every": 1, "progress": False,
                      "precision": "fp32"},
        }
    )
    dist = distributed.setup("cpu")
    seed_everything(cfg["seed"])
    model = TinyNet(dropout=0.0)  # dropout RNG streams differ per rank; keep the math comparable
    seen = []
    hooks = {"after_step": lambda tr, e, s: seen.append(list(tr.last_batch_ids))}
    # heads are bias-free (like MMRPhys): a bias before a z-scored loss has a zero gradient that Adam
    # would turn into lr-sized noise steps, which differ between ranks
    Trainer(cfg, model, PulseChunks(n=16, T=32), out, dist=dist, hooks=hooks).fit()
    Path(out).mkdir(parents=True, exist_ok=True)
    Path(out, f"seen_rank{dist.rank}.json").write_text(json.dumps(seen))
    if dist.is_main:
        torch.save(model.state_dict(), Path(out) / "final_state.pt")
    dist.close()


if __name__ == "__main__":
    main(sys.argv[1])
