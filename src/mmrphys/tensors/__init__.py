"""Model inputs from face crops: uniform resampling, windows of T+1 frames, overlap-add stitching."""

from mmrphys.tensors.windows import (
    OverlapAdd,
    StreamResampler,
    WindowStream,
    overlap_add,
    window_starts,
)

__all__ = ["OverlapAdd", "StreamResampler", "WindowStream", "overlap_add", "window_starts"]
