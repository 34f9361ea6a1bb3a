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
from mmrphys.video.rate import MAX_FPS, MIN_FPS, check_fps

# 8-bit 4:2:0 formats whose planes YUVFrame converts itself (everything else goes through FFmpeg)
_YUV420_FORMATS = ("yuv420p", "yuvj420p")

# Decode in one thread: the machine this was tuned on has 2 cores and the other one runs face
# detection / inference on the previous frames; FFmpeg frame threads would only contend with it.
DEFAULT_DECODE_THREADS = 1


#: FFmpeg demuxers that are not video: ``tty`` renders any text file (.txt, .ans) as frames.
_TEXT_FORMATS = ("tty",)
#: Frames decoded when a file is opened, to read its rotation, timestamps and whether it has colour.
PROBE_FRAMES = 60
#: A frame shows colour when its chroma departs from neutral by more than this many 8-bit levels
#: (99.9th percentile): lossy coding of a grey picture keeps chroma within ~1 level of 128.
GREY_CHROMA_LEVELS = 3.0
#: Frames flatter than this (luma std, 8-bit levels) tell nothing about colour (black, fades).
FLAT_LUMA_STD = 4.0


def _is_gray_format(name: str) -> bool:
    return name.startswith(("gray", "ya", "mono"))


def _is_image_format(name: str) -> bool:
    return name.endswith("_pipe") or name in ("image2", "webp", "gif_pipe")


def _bit_depth(fmt) -> int:
    try:
        return max(c.bits for c in fmt.components)
    except Exception:  # pragma: no cover - exotic formats
        return 8


def colour_spread(rgb_or_yuv) -> float | None:
    """How far a frame is from grey (8-bit levels), or ``None`` when it is too flat to tell.

    Takes a PyAV 4:2:0 frame (chroma planes vs neutral 128) or an RGB array (max - min channel).
    """
    if isinstance(rgb_or_yuv, np.ndarray):
        rgb = rgb_or_yuv[:: max(1, rgb_or_yuv.shape[0] // 120), :: max(1, rgb_or_yuv.shape[1] // 160)]
        rgb = rgb.astype(np.int16)
        luma = rgb.mean(-1)
        if luma.std() < FLAT_LUMA_STD:
            return None
        return float(np.percentile(rgb.max(-1) - rgb.min(-1), 99.9))
    frame = rgb_or_yuv
    if frame.format.name in _YUV420_FORMATS:
        def plane(i: int, rows: int, cols: int) -> np.ndarray:
            p = frame.planes[i]
            return np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:rows, :cols]

        if plane(0, frame.height, frame.width)[::4, ::4].std() < FLAT_LUMA_STD:
            return None
        ch, cw = (frame.height + 1) // 2, (frame.width + 1) // 2
        dev = [np.abs(plane(i, ch, cw)[::2, ::2].astype(np.int16) - 128) for i in (1, 2)]
        return float(max(np.percentile(d, 99.9) for d in dev))
    w = min(frame.width, 160)
    h = max(2, int(round(frame.height * w / max(1, frame.width))))
    return colour_spread(frame.to_ndarray(format="rgb24", width=w, height=h))


class VideoReader:
    """Streaming decoder of one video file.

    Iterating yields ``(frame_rgb, t_s)`` with ``frame_rgb`` uint8 HxWx3 (grey and 16-bit sources are
    converted to 8-bit RGB; see ``is_grayscale``/``bit_depth``) and ``t_s`` the frame's presentation
    time in seconds from the first frame. Frames are decoded one at a time, never all held.
    ``max_side`` downscales during colour conversion (cheap, in FFmpeg) so 4K input costs little.

    Opening the file decodes its first frames (at most :data:`PROBE_FRAMES`) to learn:

    - ``rotation_deg``: the container's display rotation (phone videos), applied to every frame, so
      ``width``/``height`` and the frames are as the video is meant to be shown;
    - ``timestamps_guessed``: the container stores no timestamps (a raw ``.h264`` stream): times are
      then ``index / fps`` with the codec's own frame rate (H.264 SPS timing), and a warning says so;
    - ``is_grayscale``: a grey pixel format, or colour frames that are all grey (R = G = B).

    Damaged packets are skipped (the decoder resumes at the next one) and a decoding stop after at
    least one good frame ends the iteration; both are listed in ``warnings``.
    """

    def __init__(self, path, fps: float | None = None, max_side: int | None = None,
                 threads: int = DEFAULT_DECODE_THREADS):
        self.path = Path(path)
        self.max_side = max_side
        self.threads = threads
        self.warnings: list[str] = []
        self.frames_read = 0
        self.damaged_packets = 0
        #: times (s) of the key (intra-coded) frames decoded so far (``vitals`` notches their artefact)
        self.keyframe_times: list[float] = []
        p = self.path
        if str(path) == "":
            raise InputError("no video file given (empty path)")
        if fps is not None:
            fps = check_fps(fps)
        if not p.exists():
            raise InputError(f"no such file: {p}")
        if p.is_dir():
            raise InputError(f"{p} is a directory, not a video file")
        if not p.is_file():
            raise InputError(f"{p} is not a regular file (a pipe, socket or device): pass a video file")
        if not os.access(p, os.R_OK):
            raise InputError(f"cannot read {p} (permission denied)")
        if p.stat().st_size == 0:
            raise InputError(f"{p} is empty (0 bytes)")
        container = self._open()
        try:
            fmt = container.format.name
            if fmt in _TEXT_FORMATS:
                raise InputError(f"{p} is a text file, not a video")
            streams = container.streams.video
            if not streams:
                raise InputError(f"{p} has no video stream")
            stream = streams[0]
            cc = stream.codec_context
            if _is_image_format(fmt):
                raise InputError(f"{p} is a still image ({cc.name}), not a video")
            width, height = int(cc.width or 0), int(cc.height or 0)
            if width <= 0 or height <= 0:
                raise InputError(f"{p}: video stream has no frame size (not a decodable video)")
            self.pix_fmt = str(cc.pix_fmt or "")
            self.is_grayscale = _is_gray_format(self.pix_fmt)
            try:
                import av

                self.bit_depth = _bit_depth(av.VideoFormat(self.pix_fmt)) if self.pix_fmt else 8
            except Exception:
                self.bit_depth = 8
            probe = self._probe(container, stream)
            # no timestamps and no rate from the user: times come from the codec's own rate (a guess);
            # a rate given with fps= is the user's statement, not a guess
            self.timestamps_guessed = probe["no_pts"] and fps is None
            self.rotation_deg = probe["rotation"]
            self._coded_size = (width, height)
            self.width, self.height = (height, width) if self.rotation_deg in (90, 270) else (width, height)
            if not self.is_grayscale and probe["colourless"]:
                self.is_grayscale = True
                self.warnings.append("the frames are grey (R = G = B) although the video is stored in colour")
            nominal = self._nominal_rate(stream, probe["no_pts"], fps)
            self.fps = nominal
            self.fps_overridden = fps is not None
            n = int(stream.frames or 0)
            if n <= 0 and stream.duration is not None and stream.time_base is not None:
                n = int(round(float(stream.duration * stream.time_base) * self.fps))
            self.n_frames = n if n > 0 else None
        finally:
            container.close()

    def _nominal_rate(self, stream, no_pts: bool, fps: float | None) -> float:
        """The frame rate: ``fps`` if given, else the container's; the codec's when there are no times."""
        if fps is not None:
            return fps
        if no_pts:
            codec_rate = stream.codec_context.framerate
            if codec_rate and 0 < float(codec_rate) <= MAX_FPS:
                rate = float(codec_rate)
                self.warnings.append(f"the file stores no timestamps: frame times are guessed from the "
                                     f"codec's frame rate ({rate:g} fps); pass --fps if that is wrong")
                return rate
            rate = float(stream.guessed_rate or stream.average_rate or 0)
            if MIN_FPS <= rate <= MAX_FPS:
                self.warnings.append(f"the file stores no timestamps and no frame rate: {rate:g} fps "
                                     "guessed; pass --fps with the real rate")
                return rate
            raise InputError(f"{self.path}: no timestamps and no frame rate stored; pass --fps")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        nominal = float(rate) if rate else 0.0
        if not (math.isfinite(nominal) and MIN_FPS <= nominal <= MAX_FPS):
            raise InputError(f"{self.path}: unknown frame rate ({nominal:g} fps, outside "
                             f"{MIN_FPS:g}-{MAX_FPS:g}); pass --fps")
        return nominal

    def _probe(self, container, stream) -> dict:
        """Decode the first frames: timestamps present? rotation? any colour?"""
        import av

        stream.thread_type = "SLICE"
        info = {"no_pts": False, "rotation": 0, "colourless": False}
        seen = informative = 0
        coloured = False
        try:
            for frame in container.decode(stream):
                if seen == 0:
                    info["no_pts"] = frame.pts is None
                    info["rotation"] = self._rotation_of(frame)
                seen += 1
                spread = None if self.is_grayscale else colour_spread(frame)
                if spread is not None:
                    informative += 1
                    if spread > GREY_CHROMA_LEVELS:
                        coloured = True
                        break  # colour: nothing more to learn
                if seen >= PROBE_FRAMES or self.is_grayscale:
                    break
        except (av.error.FFmpegError, ValueError, OSError) as err:
            if seen == 0:
                raise InputError(f"{self.path}: no decodable frames ({type(err).__name__})") from None
        if seen == 0:
            raise InputError(f"{self.path}: no decodable frames")
        info["colourless"] = informative > 0 and not coloured
        return info

    def _rotation_of(self, frame) -> int:
        try:
            rot = float(getattr(frame, "rotation", 0) or 0)
        except Exception:  # pragma: no cover - malformed display matrix
            return 0
        k = int(round(rot / 90.0))
        if abs(rot - 90 * k) > 1.0:
            self.warnings.append(f"display rotation {rot:g} degrees is not a multiple of 90; ignored")
            return 0
        return (90 * k) % 360

    def _open(self):
        import av

        try:
            return av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, UnicodeDecodeError, OSError, ValueError) as err:
            raise InputError(f"{self.path} is not a readable video ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:120]})") from None

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the frames this reader yields (after rotation and ``max_side`` downscaling)."""
        s = 1.0
        if self.max_side and max(self.width, self.height) > self.max_side:
            s = self.max_side / max(self.width, self.height)
        return max(2, int(round(self.width * s))) // 2 * 2, max(2, int(round(self.height * s))) // 2 * 2

    @property
    def duration_s(self) -> float | None:
        return None if self.n_frames is None else self.n_frames / self.fps

    def _rgb(self, frame) -> np.ndarray:
        """A decoded frame as uint8 RGB at ``output_size``, rotated for display."""
        out_w, out_h = self.output_size
        turn = self.rotation_deg // 90
        if turn % 2:
            out_w, out_h = out_h, out_w  # convert at the coded orientation, then turn
        if (out_w, out_h) != self._coded_size:
            rgb = frame.to_ndarray(format="rgb24", width=out_w, height=out_h, interpolation="AREA")
        else:
            rgb = frame.to_ndarray(format="rgb24")
        if turn:
            rgb = np.ascontiguousarray(np.rot90(rgb, turn))  # the tag's angle is counter-clockwise
        return rgb

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        for frame, t in self._decoded():
            yield self._rgb(frame), t

    def frames(self, prefetch: bool = True) -> Iterator[tuple[RGBFrame | YUVFrame, float]]:
        """Like iterating the reader, but yields lazy frames (:mod:`mmrphys.video.frame`).

        8-bit 4:2:0 video (nearly all H.264/HEVC/VP9/MJPEG files) gives :class:`YUVFrame`: no
        full-frame RGB conversion, the face crop is converted alone, the grey image is the luma
        plane. Other formats, and rotated video, give :class:`RGBFrame`. ``prefetch`` decodes in a
        background thread.
        """
        it = self._lazy_frames()
        return _prefetch(it) if prefetch else it

    def _lazy_frames(self) -> Iterator[tuple[RGBFrame | YUVFrame, float]]:
        out_size = self.output_size
        for frame, t in self._decoded():
            if frame.format.name in _YUV420_FORMATS and not self.rotation_deg:
                yield YUVFrame(frame, rgb_size=out_size), t
            else:
                yield RGBFrame(self._rgb(frame)), t

    def _decoded(self):
        """(PyAV VideoFrame, t_s) with time from the first frame, strictly increasing.

        Packets are decoded one by one: a packet the decoder rejects is skipped (counted in
        ``damaged_packets``, warned about at the end); a demuxing error ends the stream.
        """
        import av

        container = self._open()
        try:
            stream = container.streams.video[0]
            stream.thread_count = max(1, int(self.threads))
            stream.thread_type = "SLICE" if self.threads <= 1 else "AUTO"
            t0 = None
            last_t = -math.inf
            index = 0
            dropped = corrupt = 0
            first_damage = None
            self.damaged_packets = 0
            self.keyframe_times.clear()  # the same list: a pipeline may hold it
            demux = container.demux(stream)
            while True:
                try:
                    packet = next(demux)
                except StopIteration:
                    break
                except (av.error.FFmpegError, ValueError, OSError) as err:
                    if index == 0:
                        raise InputError(f"{self.path}: no decodable frames ({type(err).__name__})") from None
                    self.warnings.append(f"decoding stopped at frame {index} ({last_t:.1f} s, "
                                         f"{type(err).__name__}): file truncated or damaged; "
                                         "using the frames before it")
                    break
                try:
                    decoded = packet.decode()
                except (av.error.FFmpegError, ValueError, OSError):
                    self.damaged_packets += 1
                    if first_damage is None:
                        first_damage = max(last_t, 0.0)
                    continue
                for frame in decoded:
                    corrupt += bool(getattr(frame, "is_corrupt", False))
                    if frame.pts is not None and frame.time_base is not None and not self.fps_overridden:
                        t = float(frame.pts * frame.time_base)
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
                    if getattr(frame, "key_frame", False):
                        self.keyframe_times.append(t)
                    yield frame, t
            if index == 0:
                raise InputError(f"{self.path}: no decodable frames")
            if self.damaged_packets:
                self.warnings.append(f"{self.damaged_packets} damaged or truncated packets skipped (first "
                                     f"near {first_damage:.1f} s); frames after them may show artefacts")
            if corrupt:
                self.warnings.append(f"{corrupt} frames were flagged corrupt (damaged) by the decoder")
            if dropped:
                self.warnings.append(f"{dropped} frames with duplicate timestamps were skipped")
        finally:
            container.close()


def open_video(path, fps: float | None = None, max_side: int | None = None,
               threads: int = DEFAULT_DECODE_THREADS):
    """Open ``path`` for streaming decode; raises :class:`InputError` with a one-line reason.

    A video file gives a :class:`VideoReader`; a folder gives an
    :class:`~mmrphys.video.images.ImageFolder` (its image files as frames; ``fps`` required).
    """
    if str(path) != "" and Path(path).is_dir():
        from mmrphys.video.images import ImageFolder

        return ImageFolder(path, fps=fps, max_side=max_side)
    return VideoReader(path, fps=fps, max_side=max_side, threads=threads)


#: Frames of an array checked for colour (evenly spaced), to flag grey pictures stored as RGB.
ARRAY_COLOUR_SAMPLES = 16


def _stack_frames(frames) -> np.ndarray:
    """``frames`` as one array; a list of frames of different shapes names the first odd one."""
    if isinstance(frames, np.ndarray):
        return frames
    if isinstance(frames, (list, tuple)):
        if len(frames) == 0:
            raise InputError("frames: empty list, no frames")
        shape0 = np.shape(frames[0])
        for i, f in enumerate(frames):
            if not hasattr(f, "shape") and not isinstance(f, (list, tuple)):
                raise InputError(f"frames[{i}] is a {type(f).__name__}, not an image array")
            if np.shape(f) != shape0:
                raise InputError(f"frames[{i}] has shape {np.shape(f)}, frames[0] has {shape0}: "
                                 "all frames must have the same size")
        try:
            return np.stack([np.asarray(f) for f in frames])
        except ValueError as err:  # pragma: no cover - nested ragged lists
            raise InputError(f"frames: cannot stack into one array ({err})") from None
    raise InputError(f"frames must be a NumPy array or a list of frames, got {type(frames).__name__}")


def _check_shape(arr: np.ndarray) -> np.ndarray:
    """(N, H, W, C) with C in (1, 3); one line naming the shape and the likely fix otherwise."""
    shape = tuple(arr.shape)
    if arr.ndim == 4 and shape[-1] == 4:
        raise InputError(f"frames have 4 channels (RGBA?), shape {shape}: pass frames[..., :3]")
    if arr.ndim == 4 and shape[1] in (1, 3) and shape[-1] not in (1, 3):
        raise InputError(f"frames are channels-first, shape {shape}: pass frames.transpose(0, 2, 3, 1) "
                         "(N, H, W, 3)")
    if arr.ndim == 3 and shape[-1] in (3, 4) and min(shape[:2]) > 4:
        raise InputError(f"frames of shape {shape} look like one (H, W, {shape[-1]}) image: pass a stack "
                         "(N, H, W, 3)")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise InputError(f"frames must be (N, H, W, 3) or (N, H, W), got shape {shape}")
    if arr.shape[0] == 0:
        raise InputError(f"frames array has no frames (shape {shape})")
    if min(arr.shape[1:3]) < 2:
        raise InputError(f"frames are {arr.shape[2]}x{arr.shape[1]} pixels; too small for a face")
    return arr


def _first_frame(mask_per_frame: np.ndarray) -> int:
    return int(np.flatnonzero(mask_per_frame)[0])


def _pixel_scale(arr: np.ndarray) -> tuple[int, float]:
    """``(bit_depth, scale)``: how :func:`_to_rgb8` maps ``arr``'s values to 8-bit levels.

    Dtype rules: uint8 as it is; uint16 is 16-bit (top 8 bits kept); float frames in [0, 1] are
    scaled by 255, float frames in [0, 255] are taken as 8-bit levels (the largest value decides);
    other integer types must hold 0..255. NaN/inf, negative or too large values name the first frame.
    """
    if arr.dtype == np.uint8:
        return 8, 1.0
    if arr.dtype == np.uint16:
        return 16, 1.0
    kind = arr.dtype.kind
    if kind not in "fiu":
        raise InputError(f"frames must be uint8, uint16, float or integer pixel values, got dtype "
                         f"{arr.dtype}")
    flat = arr.reshape(arr.shape[0], -1)
    if kind == "f":
        finite = np.isfinite(flat).all(axis=1)
        if not finite.all():
            i = _first_frame(~finite)
            raise InputError(f"frame {i} holds NaN or infinite values (dtype {arr.dtype})")
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    if (lo < 0).any():
        i = _first_frame(lo < 0)
        raise InputError(f"frame {i} has negative values (min {lo[i]:g}); pixel values must be >= 0")
    if kind == "f":
        top = float(hi.max())
        if top <= 1.0:
            return 0, 255.0
        if top <= 255.0:
            return 0, 1.0
        i = _first_frame(hi > 255)
        raise InputError(f"frame {i} has values up to {hi[i]:g}; float frames must be in 0-1 or 0-255")
    if (hi > 255).any():
        i = _first_frame(hi > 255)
        raise InputError(f"frame {i} has values up to {hi[i]}; {arr.dtype} frames must hold 0-255 "
                         "(use uint16 for 16-bit video)")
    return 8, 1.0


def _check_timestamps(timestamps, n: int) -> np.ndarray:
    try:
        ts = np.asarray(timestamps, dtype=float)
    except (TypeError, ValueError):
        raise InputError("timestamps must be numbers (seconds), one per frame") from None
    if ts.shape != (n,):
        raise InputError(f"timestamps must have one value per frame ({n}), got shape {ts.shape}")
    bad = ~np.isfinite(ts)
    if bad.any():
        i = _first_frame(bad)
        raise InputError(f"timestamps[{i}] is {ts[i]}: timestamps must be finite")
    step = np.diff(ts)
    if (step <= 0).any():
        i = _first_frame(step <= 0) + 1
        raise InputError(f"timestamps must be strictly increasing: timestamps[{i}] = {ts[i]:g} follows "
                         f"timestamps[{i - 1}] = {ts[i - 1]:g}")
    return ts - ts[0]


class ArrayVideo:
    """The :class:`VideoReader` interface over an in-memory (N, H, W[, 3]) array.

    Pixel values follow :func:`_pixel_scale`'s dtype rules; ``fps`` or ``timestamps`` (seconds, one
    per frame, strictly increasing) give the time of each frame.
    """

    def __init__(self, frames, fps: float | None = None, timestamps=None):
        arr = _check_shape(_stack_frames(frames))
        self.bit_depth, self._scale = _pixel_scale(arr)
        self.is_grayscale = arr.shape[-1] == 1
        self._frames = arr
        self.warnings: list[str] = []
        n = arr.shape[0]
        if fps is not None:
            fps = check_fps(fps)
        if timestamps is not None:
            self._t = _check_timestamps(timestamps, n)
            if n > 1:
                rate = (n - 1) / self._t[-1]
                try:
                    check_fps(rate)
                except InputError:
                    raise InputError(f"timestamps span {self._t[-1]:g} s for {n} frames ({rate:.3g} fps): "
                                     f"they must be in seconds, {MIN_FPS:g}-{MAX_FPS:g} fps") from None
                if fps is not None and abs(rate - fps) > 0.1 * fps:
                    raise InputError(f"fps={fps:g} disagrees with the timestamps ({rate:.2f} fps): pass one")
                if fps is None:
                    fps = rate
        if fps is None:
            raise InputError("unknown frame rate: pass fps= or timestamps= with a frame array")
        self.fps = float(fps)
        if timestamps is None:
            self._t = np.arange(n) / self.fps
        self.n_frames = n
        self.height, self.width = arr.shape[1:3]
        self.path = None
        self.timestamps_guessed = False
        self.rotation_deg = 0
        self.pix_fmt = "gray" if self.is_grayscale else "rgb24"
        if not self.is_grayscale and self._colourless():
            self.is_grayscale = True
            self.warnings.append("the frames are grey (R = G = B) although given as colour (N, H, W, 3)")

    def _colourless(self) -> bool:
        k = min(self.n_frames, ARRAY_COLOUR_SAMPLES)
        idx = np.unique(np.linspace(0, self.n_frames - 1, k).astype(int))
        informative = False
        for i in idx:
            spread = colour_spread(_to_rgb8(self._frames[i], self.bit_depth, self._scale))
            if spread is None:
                continue
            if spread > GREY_CHROMA_LEVELS:
                return False
            informative = True
        return informative

    @property
    def output_size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        for frame, t in zip(self._frames, self._t):
            yield _to_rgb8(frame, self.bit_depth, self._scale), float(t)

    def frames(self, prefetch: bool = False) -> Iterator[tuple[RGBFrame, float]]:
        """The frames as :class:`RGBFrame` (the lazy-frame interface of :meth:`VideoReader.frames`)."""
        it = ((RGBFrame(f), t) for f, t in self)
        return _prefetch(it) if prefetch else it


def _to_rgb8(frame: np.ndarray, bit_depth: int, scale: float = 1.0) -> np.ndarray:
    if bit_depth == 16:
        frame = (frame >> 8).astype(np.uint8)
    elif bit_depth == 0:  # float: 0-1 (scale 255) or 0-255 (scale 1)
        frame = np.clip(frame * scale + 0.5, 0, 255).astype(np.uint8)
    elif frame.dtype != np.uint8:  # other integer types, checked to hold 0..255
        frame = frame.astype(np.uint8)
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    return np.ascontiguousarray(frame)


def frames_from_array(frames, fps: float | None = None, timestamps=None) -> ArrayVideo:
    """Wrap in-memory frames (an (N, H, W[, 3]) array or a list of frames) with ``fps`` or ``timestamps``.

    Dtypes: uint8; uint16 (16-bit, converted to 8 bits); float in 0-1 (scaled by 255) or in 0-255
    (taken as 8-bit levels; the largest value decides); other integer types holding 0-255. Bad
    shapes, ragged lists, NaN, negative or out-of-range values raise :class:`InputError` naming the
    first bad frame.
    """
    return ArrayVideo(frames, fps=fps, timestamps=timestamps)


def uniform_grid(t_start: float, t_end: float, fs: float) -> np.ndarray:
    """Sample times ``t_start, t_start + 1/fs, ...`` up to and including ``t_end`` (within 1e-6 s)."""
    n = int(math.floor((t_end - t_start) * fs + 1e-6)) + 1
    return t_start + np.arange(max(n, 0)) / fs
