"""What a model's input windows look like (:class:`InputSpec`): plain data, no torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputSpec:
    """What a model's windows look like: face crops of ``size`` px, ``frames`` = T+1 frames per
    window (T a multiple of ``frame_multiple``), RGB/thermal ``in_channels``, pixel values in
    [0, ``pixel_scale``] (1.0: scale-free models that normalise per clip; 255.0: models whose
    input batch norm learnt statistics of 0-255 frames), sampled at ``fs`` Hz."""

    size: int
    frames: int
    frame_multiple: int
    in_channels: int
    pixel_scale: float = 1.0
    fs: float = 30.0
