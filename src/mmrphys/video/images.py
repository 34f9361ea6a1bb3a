"""A folder of image frames (one file per frame) as a video: PNG/JPEG/BMP/TIFF sequences.

Cameras, capture tools and datasets (PURE stores PNG frames) often write a recording as numbered image
files instead of a video. :class:`ImageFolder` gives such a folder the reader interface of
:class:`mmrphys.video.VideoReader`: the frames in natural file-name order (``2.png`` before
``10.png``), read one at a time (never the whole recording in memory), at a frame rate the caller
gives (image files store none).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmrphys.errors import InputError
from mmrphys.video.frame import RGBFrame
from mmrphys.video.frame import prefetch as _prefetch
from mmrphys.video.rate import check_fps

__all__ = ["IMAGE_SUFFIXES", "ImageFolder", "image_files", "is_image_folder", "natural_key", "read_image"]

#: File suffixes read as frames (lower case; what OpenCV's ``imread`` decodes).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp", ".jp2")


def natural_key(s: str) -> list:
    """Sort key that puts ``s2`` before ``s10`` (digit runs as numbers, text case-insensitively)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", s) if t]


def image_files(folder) -> list[Path]:
    """The image files directly in ``folder`` (not below; hidden files skipped), in natural order."""
    folder = Path(folder)
    files = [f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES
             and not f.name.startswith(".") and f.is_file()]
    return sorted(files, key=lambda f: natural_key(f.name))


def is_image_folder(path, video_suffixes: tuple[str, ...] = ()) -> bool:
    """``path`` is a folder holding image files and none of ``video_suffixes`` directly: one recording."""
    p = Path(path)
    if not p.is_dir():
        return False
    try:
        names = [f.name for f in p.iterdir() if not f.name.startswith(".")]
    except OSError:
        return False
    suffixes = {Path(n).suffix.lower() for n in names}
    return bool(suffixes & set(IMAGE_SUFFIXES)) and not suffixes & set(video_suffixes)


def read_image(path) -> np.ndarray | None:
    """One image as stored (grey, BGR or BGRA; 8 or 16 bits), or None when it cannot be decoded."""
    import cv2

    try:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # pragma: no cover - OpenCV raises for some malformed headers
        return None
    return None if img is None or img.size == 0 else img


def _describe(img_or_shape, dtype=None) -> str:
    shape = getattr(img_or_shape, "shape", img_or_shape)
    dtype = getattr(img_or_shape, "dtype", dtype)
    channels = 1 if len(shape) == 2 else shape[2]
    return f"{shape[1]}x{shape[0]} {channels}-channel {np.dtype(dtype).itemsize * 8}-bit"


class ImageFolder:
    """The :class:`~mmrphys.video.VideoReader` interface over a folder of image frames.

    ``fps`` is required (image files store no frame rate); frame ``i`` is at ``i / fps`` seconds.
    Frames are 8-bit or 16-bit (converted to 8 bits), grey or colour (an alpha channel is dropped);
    ``max_side`` downscales larger frames (area interpolation). The first frame fixes the size: a
    frame of another size raises :class:`InputError` naming its file. A file that cannot be decoded
    (damaged, empty) is skipped and named in ``warnings``, as a video's damaged packet is; its time
    slot stays empty, so the other frames keep their times.
    """

    def __init__(self, folder, fps: float | None = None, max_side: int | None = None):
        self.path = Path(folder)
        if not self.path.is_dir():
            raise InputError(f"{self.path} is not a folder of image frames")
        self.files = image_files(self.path)
        if not self.files:
            kinds = ", ".join(IMAGE_SUFFIXES[:5])
            raise InputError(f"{self.path} is a folder with no image frames ({kinds}, ...): give a video "
                             "file, or a folder of frames")
        if fps is None:
            raise InputError(f"{self.path}: a folder of {len(self.files)} image frames stores no frame rate: "
                             "give it (--fps FPS, or fps= in Python)")
        self.fps = check_fps(fps)
        self.max_side = max_side
        self.warnings: list[str] = []
        self.skipped: list[Path] = []
        first = read_image(self.files[0])
        if first is None:
            raise InputError(f"{self.files[0]}: the first frame cannot be read as an image")
        if first.dtype not in (np.uint8, np.uint16):
            raise InputError(f"{self.files[0]}: {first.dtype} pixels; frames must be 8- or 16-bit images")
        self._shape, self._dtype = first.shape, first.dtype
        self.height, self.width = first.shape[:2]
        self.bit_depth = 16 if first.dtype == np.uint16 else 8
        self.is_grayscale = first.ndim == 2 or first.shape[2] == 1
        self.pix_fmt = "gray" if self.is_grayscale else "rgb24"
        self.n_frames = len(self.files)
        self.timestamps_guessed = False  # the caller gave the rate: frame i is at i / fps
        self.rotation_deg = 0

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the frames this reader yields (after ``max_side`` downscaling)."""
        if self.max_side and max(self.width, self.height) > self.max_side:
            s = self.max_side / max(self.width, self.height)
            return max(2, int(round(self.width * s))), max(2, int(round(self.height * s)))
        return self.width, self.height

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def _rgb(self, img: np.ndarray) -> np.ndarray:
        import cv2

        if img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        size = self.output_size
        if size != (self.width, self.height):
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        return img

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        self.skipped = []
        for i, f in enumerate(self.files):
            img = read_image(f)
            if img is None:
                self.skipped.append(f)
                continue
            if img.shape != self._shape or img.dtype != self._dtype:
                raise InputError(f"{f} (frame {i}): {_describe(img)} image, but the first frame is "
                                 f"{_describe(self._shape, self._dtype)}: frames of one recording must match")
            yield self._rgb(img), i / self.fps
        if self.skipped:
            share = len(self.skipped) / self.n_frames
            self.warnings.append(f"{len(self.skipped)} of {self.n_frames} image frames could not be read and "
                                 f"were skipped ({share:.0%}; the first: {self.skipped[0].name})")

    def frames(self, prefetch: bool = True) -> Iterator[tuple[RGBFrame, float]]:
        """The frames as :class:`RGBFrame`; ``prefetch`` reads and decodes them in a background thread."""
        it = ((RGBFrame(f), t) for f, t in self)
        return _prefetch(it) if prefetch else it
