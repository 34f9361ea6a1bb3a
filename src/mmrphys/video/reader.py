"""Streaming video readers (PyAV) and an in-memory equivalent, both yielding ``(frame_rgb, t_s)``."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmrphys.errors import InputError
from mmrphys.video.frame import RGBFrame, YUVFrame
from mmrphys.video.frame import prefetch as _prefetch

# 8-bit 4:2:0 formats whose planes YUVFrame converts itself (everything else goes through FFmpeg)
_YUV420_FORMATS = ("yuv420p", "yuvj420p")

# Decode in one thread: the machine this was tuned on has 2 cores and the other one runs face
# detection / inference on the previous frames; FFmpeg frame threads would only contend with it.
DEFAULT_DECODE_THREADS = 1


def _is_gray_format(name: str) -> bool:
    return name.startswith(("gray", "ya", "mono"))


def _bit_depth(fmt) -> int:
    try:
        return max(c.bits for c in fmt.components)
    except Exception:  # pragma: no cover - exotic formats
        return 8


class VideoReader:
    """Streaming decoder of one video file.

    Iterating yields ``(frame_rgb, t_s)`` with ``frame_rgb`` uint8 HxWx3 (grey and 16-bit sources are
    converted to 8-bit RGB; see ``is_grayscale``/``bit_depth``) and ``t_s`` the frame's presentation
    time in seconds from the first frame. Frames are decoded one at a time, never all held.
    ``max_side`` downscales during colour conversion (cheap, in FFmpeg) so 4K input costs little.
    Decoding problems after at least one good frame end the iteration and are listed in ``warnings``.
    """

    def __init__(self, path, fps: float | None = None, max_side: int | None = None,
                 threads: int = DEFAULT_DECODE_THREADS):
        self.path = Path(path)
        self.max_side = max_side
        self.threads = threads
        self.warnings: list[str] = []
        self.frames_read = 0
        p = self.path
        if not p.exists():
            raise InputError(f"no such file: {p}")
        if p.is_dir():
            raise InputError(f"{p} is a directory, not a video file")
        if not os.access(p, os.R_OK):
            raise InputError(f"cannot read {p} (permission denied)")
        if p.stat().st_size == 0:
            raise InputError(f"{p} is empty (0 bytes)")
        container = self._open()
        try:
            streams = container.streams.video
            if not streams:
                raise InputError(f"{p} has no video stream")
            stream = streams[0]
            cc = stream.codec_context
            self.width = int(cc.width or 0)
            self.height = int(cc.height or 0)
            if self.width <= 0 or self.height <= 0:
                raise InputError(f"{p}: video stream has no frame size (not a decodable video)")
            self.pix_fmt = str(cc.pix_fmt or "")
            self.is_grayscale = _is_gray_format(self.pix_fmt)
            try:
                import av

                self.bit_depth = _bit_depth(av.VideoFormat(self.pix_fmt)) if self.pix_fmt else 8
            except Exception:
                self.bit_depth = 8
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            nominal = float(rate) if rate else 0.0
            if fps is not None:
                if not (fps > 0 and math.isfinite(fps)):
                    raise InputError(f"fps must be a positive number, got {fps}")
                nominal = float(fps)
            if not (nominal > 0 and math.isfinite(nominal)) or nominal > 1000:
                raise InputError(f"{p}: unknown or zero frame rate; pass fps= (CLI: --fps)")
            self.fps = nominal
            self.fps_overridden = fps is not None
            n = int(stream.frames or 0)
            if n <= 0 and stream.duration is not None and stream.time_base is not None:
                n = int(round(float(stream.duration * stream.time_base) * self.fps))
            self.n_frames = n if n > 0 else None
        finally:
            container.close()

    def _open(self):
        import av

        try:
            return av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, UnicodeDecodeError, OSError, ValueError) as err:
            raise InputError(f"{self.path} is not a readable video ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:120]})") from None

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the frames this reader yields (after ``max_side`` downscaling)."""
        s = 1.0
        if self.max_side and max(self.width, self.height) > self.max_side:
            s = self.max_side / max(self.width, self.height)
        return max(2, int(round(self.width * s))) // 2 * 2, max(2, int(round(self.height * s))) // 2 * 2

    @property
    def duration_s(self) -> float | None:
        return None if self.n_frames is None else self.n_frames / self.fps

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        out_w, out_h = self.output_size
        resize = (out_w, out_h) != (self.width, self.height)
        for frame, t in self._decoded():
            if resize:
                yield frame.to_ndarray(format="rgb24", width=out_w, height=out_h, interpolation="AREA"), t
            else:
                yield frame.to_ndarray(format="rgb24"), t

    def frames(self, prefetch: bool = True) -> Iterator[tuple[RGBFrame | YUVFrame, float]]:
        """Like iterating the reader, but yields lazy frames (:mod:`mmrphys.video.frame`).

        8-bit 4:2:0 video (nearly all H.264/HEVC/VP9/MJPEG files) gives :class:`YUVFrame`: no
        full-frame RGB conversion, the face crop is converted alone, the grey image is the luma
        plane. Other formats give :class:`RGBFrame`. ``prefetch`` decodes in a background thread.
        """
        it = self._lazy_frames()
        return _prefetch(it) if prefetch else it

    def _lazy_frames(self) -> Iterator[tuple[RGBFrame | YUVFrame, float]]:
        out_size = self.output_size
        resize = out_size != (self.width, self.height)
        for frame, t in self._decoded():
            if frame.format.name in _YUV420_FORMATS:
                yield YUVFrame(frame, rgb_size=out_size), t
            elif resize:
                yield RGBFrame(frame.to_ndarray(format="rgb24", width=out_size[0], height=out_size[1],
                                                interpolation="AREA")), t
            else:
                yield RGBFrame(frame.to_ndarray(format="rgb24")), t

    def _decoded(self):
        """(PyAV VideoFrame, t_s) with time from the first frame, strictly increasing."""
        import av

        container = self._open()
        try:
            stream = container.streams.video[0]
            stream.thread_count = max(1, int(self.threads))
            stream.thread_type = "SLICE" if self.threads <= 1 else "AUTO"
            t0 = None
            last_t = -math.inf
            index = 0
            dropped = 0
            decoder = container.decode(stream)
            while True:
                try:
                    frame = next(decoder)
                except StopIteration:
                    break
                except (av.error.FFmpegError, ValueError, OSError) as err:
                    if index == 0:
                        raise InputError(f"{self.path}: no decodable frames ({type(err).__name__})") from None
                    self.warnings.append(f"decoding stopped at frame {index} ({type(err).__name__}); "
                                         "file truncated or corrupt, using the frames before it")
                    break
                if frame.pts is not None and frame.time_base is not None:
                    t = float(frame.pts * frame.time_base)
                    if self.fps_overridden:
                        t = index / self.fps
                else:
                    t = index / self.fps
                if t0 is None:
                    t0 = t
                t -= t0
                if t <= last_t:  # duplicate/out-of-order timestamp: keep time strictly increasing
                    dropped += 1
                    continue
                last_t = t
                index += 1
                self.frames_read = index
                yield frame, t
            if index == 0:
                raise InputError(f"{self.path}: no decodable frames")
            if dropped:
                self.warnings.append(f"{dropped} frames with duplicate timestamps were skipped")
        finally:
            container.close()


def open_video(path, fps: float | None = None, max_side: int | None = None,
               threads: int = DEFAULT_DECODE_THREADS) -> VideoReader:
    """Open ``path`` for streaming decode; raises :class:`InputError` with a one-line reason."""
    return VideoReader(path, fps=fps, max_side=max_side, threads=threads)


class ArrayVideo:
    """The :class:`VideoReader` interface over an in-memory (N, H, W[, 3]) array."""

    def __init__(self, frames, fps: float | None = None, timestamps=None):
        arr = np.asarray(frames)
        if arr.ndim == 3:
            arr = arr[..., None]
        if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
            raise InputError(f"frames must be (N, H, W, 3) or (N, H, W), got shape {np.shape(frames)}")
        if arr.shape[0] == 0:
            raise InputError("frames array has no frames")
        self.is_grayscale = arr.shape[-1] == 1
        if arr.dtype == np.uint16:
            self.bit_depth = 16
        elif arr.dtype == np.uint8:
            self.bit_depth = 8
        elif np.issubdtype(arr.dtype, np.floating):
            self.bit_depth = 0
        else:
            raise InputError(f"frames must be uint8, uint16 or float in [0, 1], got {arr.dtype}")
        self._frames = arr
        n = arr.shape[0]
        if timestamps is not None:
            ts = np.asarray(timestamps, dtype=float)
            if ts.shape != (n,):
                raise InputError(f"timestamps must have one value per frame ({n}), got shape {ts.shape}")
            if not np.all(np.isfinite(ts)) or np.any(np.diff(ts) <= 0):
                raise InputError("timestamps must be finite and strictly increasing")
            self._t = ts - ts[0]
            if fps is None:
                fps = (n - 1) / self._t[-1] if n > 1 else None
        if fps is None or not (float(fps) > 0 and math.isfinite(float(fps))):
            raise InputError("unknown or zero frame rate: pass fps= or timestamps= with a frame array")
        self.fps = float(fps)
        if timestamps is None:
            self._t = np.arange(n) / self.fps
        self.n_frames = n
        self.height, self.width = arr.shape[1:3]
        self.path = None
        self.warnings: list[str] = []
        self.pix_fmt = "gray" if self.is_grayscale else "rgb24"

    @property
    def output_size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        for frame, t in zip(self._frames, self._t):
            yield _to_rgb8(frame, self.bit_depth), float(t)

    def frames(self, prefetch: bool = False) -> Iterator[tuple[RGBFrame, float]]:
        """The frames as :class:`RGBFrame` (the lazy-frame interface of :meth:`VideoReader.frames`)."""
        it = ((RGBFrame(f), t) for f, t in self)
        return _prefetch(it) if prefetch else it


def _to_rgb8(frame: np.ndarray, bit_depth: int) -> np.ndarray:
    if bit_depth == 16:
        frame = (frame >> 8).astype(np.uint8)
    elif bit_depth == 0:
        frame = np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    return np.ascontiguousarray(frame)


def frames_from_array(frames, fps: float | None = None, timestamps=None) -> ArrayVideo:
    """Wrap an in-memory frame array (uint8/uint16/float) with its ``fps`` or per-frame ``timestamps``."""
    return ArrayVideo(frames, fps=fps, timestamps=timestamps)


def uniform_grid(t_start: float, t_end: float, fs: float) -> np.ndarray:
    """Sample times ``t_start, t_start + 1/fs, ...`` up to and including ``t_end`` (within 1e-6 s)."""
    n = int(math.floor((t_end - t_start) * fs + 1e-6)) + 1
    return t_start + np.arange(max(n, 0)) / fs
