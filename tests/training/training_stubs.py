"""Tiny stand-ins for training tests: a 3D-conv model with the project's forward contract and a
chunk dataset whose pixels carry a known pulse and breathing signal."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TinyNet(nn.Module):
    """forward(x (B,C,T+1,H,W), labels=None) -> {task: (B,T)}; diffs frames like MMRPhys."""

    def __init__(self, tasks=("bvp", "rsp"), in_channels=3, dropout=0.1):
        super().__init__()
        self.tasks = tuple(tasks)
        self.in_channels = in_channels
        self.input_size = 8
        self.frame_multiple = 4
        self.body = nn.Sequential(nn.Conv3d(in_channels, 4, 3, padding=1), nn.Tanh(), nn.Dropout3d(dropout))
        self.heads = nn.ModuleDict(
            {t: nn.Conv3d(4, 1, (3, 1, 1), padding=(1, 0, 0), bias=False) for t in self.tasks}
        )
        self.seen_labels = 0

    def forward(self, x, labels=None):
        if labels is not None and self.training:
            self.seen_labels += 1
        e = self.body(torch.diff(x, dim=2))
        return {t: h(e).mean(dim=(1, 3, 4)) for t, h in self.heads.items()}


class PulseChunks(torch.utils.data.Dataset):
    """n chunks (C, T, H, W) with a sinusoidal pulse in the green channel plus noise."""

    def __init__(self, n=8, T=32, size=8, fs=30.0, seed=0):
        rng = np.random.default_rng(seed)
        t = np.arange(T) / fs
        self.items = []
        for i in range(n):
            hr = rng.uniform(60, 120) / 60
            rr = rng.uniform(10, 25) / 60
            bvp = np.sin(2 * np.pi * hr * t + rng.uniform(0, 6))
            rsp = np.sin(2 * np.pi * rr * t + rng.uniform(0, 6))
            frames = 100 + rng.normal(0, 0.5, (3, T, size, size))
            frames[1] += bvp[:, None, None] + 0.5 * rsp[:, None, None]
            self.items.append(
                {
                    "frames": frames.astype(np.float32),
                    "bvp": bvp.astype(np.float32),
                    "rsp": rsp.astype(np.float32),
                    "id": f"clip{i}",
                }
            )
        self.ids = [it["id"] for it in self.items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]
