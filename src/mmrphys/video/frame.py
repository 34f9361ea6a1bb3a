"""Decoded frames that convert lazily: grey for detection, RGB only for the face crop.

Converting every 640x480 H.264 frame to RGB costs about three times as much CPU as decoding it; the
main job only needs a grey image about once a second (face detection) and a small RGB face crop per
frame. :class:`YUVFrame` keeps the decoder's 4:2:0 planes and converts just the crop: each plane is
area-resized to the crop size, then YCbCr -> RGB is applied to the small image (the conversion is
affine, so area-averaging before or after it agrees up to rounding). :class:`RGBFrame` gives the same
interface over an RGB array (frame arrays, grey/16-bit/other pixel formats).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

# YCbCr -> RGB (Kr, Kb) of ITU-R BT.601 and BT.709; FFmpeg colourspace 1 is BT.709, everything else
# (unspecified included) is treated as BT.601, which is also what FFmpeg's RGB conversion assumes.
_KR_KB = {601: (0.299, 0.114), 709: (0.2126, 0.0722)}


def _ycbcr_matrix(standard: int) -> np.ndarray:
    kr, kb = _KR_KB[standard]
    kg = 1.0 - kr - kb
    return np.array([[1.0, 0.0, 2 * (1 - kr)],
                     [1.0, -2 * (1 - kb) * kb / kg, -2 * (1 - kr) * kr / kg],
                     [1.0, 2 * (1 - kb), 0.0]], dtype=np.float32)


_MATRICES = {k: _ycbcr_matrix(k) for k in _KR_KB}


def _clip_box(xyxy, h: int, w: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(v) for v in xyxy)
    x0, y0 = min(max(0, x0), w - 1), min(max(0, y0), h - 1)
    return x0, y0, max(x0 + 1, min(w, x1)), max(y0 + 1, min(h, y1))


class RGBFrame:
    """An RGB uint8 (H, W, 3) frame behind the lazy-frame interface."""

    __slots__ = ("_rgb",)

    def __init__(self, rgb: np.ndarray):
        self._rgb = rgb

    @property
    def shape(self) -> tuple[int, int, int]:
        return self._rgb.shape

    def rgb(self) -> np.ndarray:
        return self._rgb

    def gray(self) -> np.ndarray:
        return cv2.cvtColor(self._rgb, cv2.COLOR_RGB2GRAY)

    def crop_rgb(self, xyxy, size: int) -> np.ndarray:
        """The box ``(x0, y0, x1, y1)`` resized to ``size``×``size`` by area (uint8 RGB)."""
        x0, y0, x1, y1 = _clip_box(xyxy, *self._rgb.shape[:2])
        return cv2.resize(self._rgb[y0:y1, x0:x1], (int(size), int(size)), interpolation=cv2.INTER_AREA)


def _ycbcr_affine(standard: int, full_range: bool) -> np.ndarray:
    """3x4 matrix mapping (Y, Cb, Cr, 1) code values to (R, G, B) for ``cv2.transform``."""
    if full_range:
        y_s, c_s, y_off = 1.0, 1.0, 0.0
    else:  # "TV" range: luma 16-235, chroma 16-240
        y_s, c_s, y_off = 255.0 / 219.0, 255.0 / 224.0, 16.0
    m = _MATRICES[standard] @ np.diag([y_s, c_s, c_s]).astype(np.float32)
    offset = -m @ np.array([y_off, 128.0, 128.0], dtype=np.float32)
    return np.hstack([m, offset[:, None]]).astype(np.float32)


_AFFINE = {(k, full): _ycbcr_affine(k, full) for k in _KR_KB for full in (False, True)}


class YUVFrame:
    """A decoded 4:2:0 frame (PyAV ``VideoFrame`` in ``yuv420p``/``yuvj420p``), converted on demand."""

    __slots__ = ("_frame", "_planes", "_affine", "_rgb_size")

    def __init__(self, frame, rgb_size: tuple[int, int] | None = None):
        self._frame = frame  # keeps the decoder's buffers alive while the planes are in use
        w, h = frame.width, frame.height
        planes = []
        for i, (pw, ph) in enumerate(((w, h), ((w + 1) // 2, (h + 1) // 2), ((w + 1) // 2, (h + 1) // 2))):
            p = frame.planes[i]
            planes.append(np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:ph, :pw])
        self._planes = planes
        full_range = frame.format.name.startswith("yuvj") or int(getattr(frame, "color_range", 0) or 0) == 2
        standard = 709 if int(getattr(frame, "colorspace", 2) or 2) == 1 else 601
        self._affine = _AFFINE[standard, full_range]
        self._rgb_size = rgb_size

    @property
    def shape(self) -> tuple[int, int, int]:
        h, w = self._planes[0].shape
        return h, w, 3

    def gray(self) -> np.ndarray:
        """The luma plane (H, W) uint8 (a view: copy it to keep it beyond this frame)."""
        return self._planes[0]

    def rgb(self) -> np.ndarray:
        """The whole frame as RGB uint8 (FFmpeg's conversion; downscaled to ``rgb_size`` when set)."""
        if self._rgb_size is not None and self._rgb_size != (self._frame.width, self._frame.height):
            w, h = self._rgb_size
            return self._frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
        return self._frame.to_ndarray(format="rgb24")

    def crop_rgb(self, xyxy, size: int) -> np.ndarray:
        """The box ``(x0, y0, x1, y1)`` (luma pixels) resized to ``size``×``size`` by area, as uint8 RGB."""
        yp, up, vp = self._planes
        x0, y0, x1, y1 = _clip_box(xyxy, *yp.shape)
        size = (int(size), int(size))
        cx0, cy0 = x0 // 2, y0 // 2
        cx1, cy1 = max(cx0 + 1, (x1 + 1) // 2), max(cy0 + 1, (y1 + 1) // 2)
        ycc = cv2.merge([cv2.resize(yp[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA),
                         cv2.resize(up[cy0:cy1, cx0:cx1], size, interpolation=cv2.INTER_AREA),
                         cv2.resize(vp[cy0:cy1, cx0:cx1], size, interpolation=cv2.INTER_AREA)])
        return cv2.transform(ycc, self._affine)  # rounds and saturates to uint8


def as_lazy_frame(frame) -> RGBFrame | YUVFrame:
    """Wrap an RGB array (anything without ``crop_rgb``) as an :class:`RGBFrame`."""
    return frame if hasattr(frame, "crop_rgb") else RGBFrame(np.asarray(frame))


_END = object()


def prefetch(items: Iterable, depth: int = 16) -> Iterator:
    """Iterate ``items`` in a background thread, ``depth`` items ahead (decoding overlaps processing).

    Exceptions raised by the producer are re-raised in the consumer; closing the consumer early
    stops the producer at its next item.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    source = iter(items)

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            else:
                q.put(_END)
        except BaseException as err:  # handed to the consumer, raised there
            q.put(err)
        finally:
            close = getattr(source, "close", None)
            if close is not None:  # release the decoder (file handle) in the thread that used it
                close()

    worker = threading.Thread(target=produce, name="mmrphys-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(0.05)
