"""Video input: streaming decode with real per-frame timestamps.

``open_video(path)`` decodes a file one frame at a time (PyAV) and ``frames_from_array`` wraps an
in-memory array behind the same interface. Both iterate ``(frame_rgb uint8 HxWx3, t_s float)``;
``reader.frames()`` yields lazy frames instead (``.gray()``, ``.crop_rgb(xyxy, size)``, ``.rgb()``),
decoded in a background thread, which is what the main job uses. A folder of image frames (PNG,
JPEG, ...) opens as :class:`ImageFolder` through the same ``open_video(folder, fps=...)``.
"""

from mmrphys.video.frame import RGBFrame, YUVFrame, as_lazy_frame, prefetch
from mmrphys.video.images import ImageFolder, is_image_folder
from mmrphys.video.reader import (
    ArrayVideo,
    VideoReader,
    frames_from_array,
    open_video,
    uniform_grid,
)

__all__ = ["VideoReader", "ArrayVideo", "open_video", "frames_from_array", "uniform_grid", "RGBFrame",
           "YUVFrame", "as_lazy_frame", "prefetch", "ImageFolder", "is_image_folder"]
