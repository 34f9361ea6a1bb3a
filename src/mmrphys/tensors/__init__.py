"""Model inputs from face crops: uniform resampling, windows of T+1 frames, overlap-add stitching,
and removal of a compressed video's key-frame flicker."""

from mmrphys.tensors.deflicker import GopDeflicker, GopPhase
from mmrphys.tensors.windows import (
    OverlapAdd,
    StreamResampler,
    WindowStream,
    overlap_add,
    window_starts,
)

__all__ = ["GopDeflicker", "GopPhase", "OverlapAdd", "StreamResampler", "WindowStream", "overlap_add",
           "window_starts"]
