"""Thermal recordings as cameras and datasets store them, read as ``(frame float32 HxW in °C, t_s)``.

:func:`open_thermal` takes

* an ``.npy`` / ``.npz`` array ``(N, H, W)`` (or ``(N, H, W, 1)``), or an in-memory array: float
  values are °C, integer values centi-°C unless ``unit`` says otherwise; times from ``timestamps``,
  a companion file (``NAME.timestamps.npy``/``NAME_timestamps.npy``/``.csv``/``.txt`` next to it, or a
  ``timestamps``/``t``/``times`` array inside the ``.npz``), or ``fps``;
* a multi-page TIFF (16-bit integer, 32-bit float or 8-bit pages; read page by page with Pillow,
  OpenCV's ``imreadmulti`` as a fallback): 16-bit integers are centi-°C unless ``unit`` says otherwise;
* a folder of iBVP-style ``.raw`` frames (uint16 little-endian 640x512, °C = raw·0.04 − 273.15),
  in natural order of their names, with ``fps`` or a ``timestamps`` file in the folder;
* a folder of one-channel image frames, one file per frame (16-bit PNG/TIFF as thermal cameras' tools
  write them, or 8-bit), in natural order, units as for a TIFF stack, times as for ``.raw`` frames;
* a grey video (anything FFmpeg decodes): 8-bit intensity, ``unit="relative"`` (no temperature scale;
  the models normalise each clip, so a relative scale works for them).

Units (``unit=``, the CLI's ``--thermal-unit``): :data:`UNITS`. Frames stream one at a time (``.npy``
is memory-mapped, TIFF pages are decoded one by one); a frame with non-finite pixels has them
replaced by the frame's median (warned once), an all-NaN frame or values that are no plausible skin
or room temperature in the given unit raise :class:`InputError` naming the file and the unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmrphys.errors import ConfigError, InputError
from mmrphys.video.images import IMAGE_SUFFIXES, image_files, natural_key, read_image
from mmrphys.video.reader import _check_timestamps, check_fps

__all__ = ["UNITS", "IBVP_RAW_SHAPE", "ThermalReader", "open_thermal", "to_celsius"]

#: Units of stored thermal values: °C, centi-°C, Kelvin, centi-Kelvin (FLIR "TLinear"), iBVP raw
#: counts (x·0.04 − 273.15), or "relative" (intensity without a temperature scale: grey video).
UNITS = ("degC", "cdegC", "K", "cK", "raw-ibvp", "relative")
#: Rows, columns of an iBVP ``.raw`` thermal frame (uint16 little-endian).
IBVP_RAW_SHAPE = (512, 640)
#: Temperatures (°C) a frame's median must fall in: anything else is a wrong ``unit``.
PLAUSIBLE_C = (-40.0, 150.0)
TIFF_SUFFIXES = (".tif", ".tiff")
ARRAY_SUFFIXES = (".npy", ".npz")
_TIME_KEYS = ("timestamps", "timestamps_s", "t", "t_s", "time_s", "times")
_FRAME_KEYS = ("frames", "thermal", "temperature", "temperatures", "data", "arr_0")


def to_celsius(values, unit: str) -> np.ndarray:
    """Stored thermal values in ``unit`` (:data:`UNITS`) as float32 °C ("relative": unchanged)."""
    x = np.asarray(values, dtype=np.float32)
    if unit in ("degC", "relative"):
        return x
    if unit == "cdegC":
        return x * np.float32(0.01)
    if unit == "K":
        return x - np.float32(273.15)
    if unit == "cK":
        return x * np.float32(0.01) - np.float32(273.15)
    if unit == "raw-ibvp":
        return x * np.float32(0.04) - np.float32(273.15)
    raise ConfigError(f"unknown thermal unit {unit!r}; choose one of {', '.join(UNITS)}")


class ThermalReader:
    """Iterating yields ``(frame float32 (H, W) in °C — or relative units —, t_s)``, one at a time.

    Attributes: ``path`` (None for an array), ``kind`` (``array``, ``tiff``, ``raw-folder``,
    ``video``), ``unit``, ``relative`` (no temperature scale), ``fps``, ``n_frames`` (None when a
    video does not say), ``width``, ``height``, ``times`` (None for a video: its times come with its
    frames), ``timestamps_guessed`` (times from ``fps`` alone), ``warnings``.
    """

    def __init__(self, path, kind: str, unit: str, n_frames: int | None, shape: tuple[int, int], frame_at,
                 times: np.ndarray | None, fps: float | None, warnings: list[str], sequence=None):
        self.path = None if path is None else Path(path)
        self.kind, self.unit, self.relative = kind, unit, unit == "relative"
        self.n_frames = None if n_frames is None else int(n_frames)
        self.height, self.width = int(shape[0]), int(shape[1])
        self._frame_at = frame_at
        self._sequence = sequence  # (raw frame, t) in order, for sources read front to back (video)
        self.warnings = warnings
        self.timestamps_guessed = times is None and sequence is None
        if times is None and sequence is None:
            if fps is None:
                raise InputError(f"{self.name}: no timestamps stored with the thermal frames; give their "
                                 "frame rate (--thermal-fps / thermal_fps=) or a timestamps file")
            times = np.arange(self.n_frames) / float(fps)
        elif times is not None and fps is None and self.n_frames > 1:
            fps = (self.n_frames - 1) / float(times[-1])
        self.times = None if times is None else np.asarray(times, dtype=float)
        self.fps = float(fps) if fps is not None else 30.0
        self._nan_warned = False
        self._check_plausible()

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "thermal array"

    def _convert(self, raw: np.ndarray, k: int) -> np.ndarray:
        if raw.shape != (self.height, self.width):
            raise InputError(f"{self.name}: frame {k} is {raw.shape[1]}x{raw.shape[0]}, frame 0 is "
                             f"{self.width}x{self.height}")
        img = to_celsius(raw, self.unit)
        if not np.isfinite(img).all():
            finite = np.isfinite(img)
            if not finite.any():
                raise InputError(f"{self.name}: frame {k} holds no finite value (all NaN or infinite)")
            img = np.where(finite, img, np.median(img[finite])).astype(np.float32)
            if not self._nan_warned:
                self._nan_warned = True
                self.warnings.append(f"thermal frame {k} (and maybe others) has non-finite pixels: "
                                     "replaced by the frame's median")
        return img

    def _check_plausible(self) -> None:
        if self.relative or self._frame_at is None:
            return
        med = float(np.median(self._convert(self._frame_at(0), 0)))
        lo, hi = PLAUSIBLE_C
        if not lo <= med <= hi:
            raise InputError(f"{self.name}: thermal values read as {self.unit} give a median of {med:.1f} °C "
                             f"in frame 0, no room or skin temperature: give the right --thermal-unit "
                             f"({', '.join(UNITS)})")

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        if self._sequence is not None:
            for k, (raw, t) in enumerate(self._sequence()):
                yield self._convert(raw, k), float(t)
            return
        for k in range(self.n_frames):
            yield self._convert(self._frame_at(k), k), float(self.times[k])


# ----------------------------------------------------------------------------- timestamps
def _read_times_file(p: Path) -> np.ndarray:
    try:
        if p.suffix == ".npy":
            return np.load(p, allow_pickle=False).astype(float).ravel()
        rows = []
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            cell = line.replace(";", ",").split(",")[0].strip()
            if not cell:
                continue
            try:
                rows.append(float(cell))
            except ValueError:
                if rows:  # a header is allowed on the first line only
                    raise InputError(f"{p}: line {len(rows) + 2} is not a number: {cell[:40]!r}") from None
        return np.asarray(rows, dtype=float)
    except (OSError, ValueError) as err:
        raise InputError(f"{p}: unreadable timestamps ({type(err).__name__}: {err})") from None


def _companion_times(path: Path) -> tuple[np.ndarray, Path] | None:
    stem = path.stem if path.is_file() else path.name
    folder = path.parent if path.is_file() else path
    names = [f"{stem}.timestamps", f"{stem}_timestamps"] if path.is_file() else ["timestamps"]
    for name in names:
        for suffix in (".npy", ".csv", ".txt"):
            p = folder / f"{name}{suffix}"
            if p.is_file():
                return _read_times_file(p), p
    return None


def _times(given, found, n: int, what: str) -> np.ndarray | None:
    times = given if given is not None else (found[0] if found else None)
    if times is None:
        return None
    where = f"{what}: timestamps" if given is not None else str(found[1])
    try:
        ts = _check_timestamps(times, n)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    if n > 1:
        step = float(np.median(np.diff(ts)))
        if step > 1.0:
            raise InputError(f"{where}: median step {step:g} between frames; timestamps must be in "
                             "seconds (milliseconds?)")
    return ts


# ----------------------------------------------------------------------------- the formats
def _default_unit(dtype: np.dtype) -> str:
    if dtype.kind == "f":
        return "degC"
    if dtype == np.uint8:
        return "relative"
    if dtype.kind in "iu":
        return "cdegC"
    raise InputError(f"thermal values must be numbers, got dtype {dtype}")


def _as_stack(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise InputError(f"{what}: thermal frames must be an (N, H, W) array, got shape {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise InputError(f"{what}: no thermal frames (shape {tuple(arr.shape)})")
    if min(arr.shape[1:]) < 8:
        raise InputError(f"{what}: thermal frames are {arr.shape[2]}x{arr.shape[1]} pixels; too small for "
                         "a face")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{what}: thermal values must be numbers, got dtype {arr.dtype}")
    return arr


def _open_array(arr, path: Path | None, unit, fps, timestamps, found=None) -> ThermalReader:
    what = str(path) if path is not None else "thermal array"
    arr = _as_stack(arr, what)
    times = _times(timestamps, found, arr.shape[0], what)
    unit = unit or _default_unit(arr.dtype)
    return ThermalReader(path, "array", unit, arr.shape[0], arr.shape[1:], lambda k: np.asarray(arr[k]),
                         times, fps, [])


def _load_array_file(p: Path):
    try:
        if p.suffix.lower() == ".npy":
            return np.load(p, mmap_mode="r", allow_pickle=False), None
        npz = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{p}: not a readable NumPy array ({type(err).__name__}: "
                         f"{str(err)[:100]})") from None
    keys = list(npz.files)
    frame_key = next((k for k in _FRAME_KEYS if k in keys), None)
    if frame_key is None:
        stacks = [k for k in keys if npz[k].ndim >= 3]
        if len(stacks) != 1:
            raise InputError(f"{p}: which array holds the thermal frames? keys {keys}; name it 'frames'")
        frame_key = stacks[0]
    time_key = next((k for k in _TIME_KEYS if k in keys), None)
    times = (np.asarray(npz[time_key], dtype=float), Path(f"{p}[{time_key}]")) if time_key else None
    return npz[frame_key], times


def _open_tiff(p: Path, unit, fps, timestamps) -> ThermalReader:
    try:
        from PIL import Image

        img = Image.open(p)
        n = int(getattr(img, "n_frames", 1))
        first = np.asarray(img)

        def frame_at(k: int) -> np.ndarray:
            img.seek(k)
            return np.asarray(img)
    except Exception:  # Pillow missing or a compression it cannot read: OpenCV reads the pages at once
        import cv2

        ok, pages = cv2.imreadmulti(str(p), flags=cv2.IMREAD_UNCHANGED)
        if not ok or not pages:
            raise InputError(f"{p}: not a readable TIFF stack") from None
        n, first = len(pages), pages[0]

        def frame_at(k: int) -> np.ndarray:
            return pages[k]
    if first.ndim == 3:
        raise InputError(f"{p}: TIFF pages have {first.shape[2]} channels; a thermal stack has one")
    _as_stack(first[None], str(p))
    times = _times(timestamps, _companion_times(p), n, str(p))
    unit = unit or _default_unit(first.dtype)
    return ThermalReader(p, "tiff", unit, n, first.shape, frame_at, times, fps, [])


def _open_raw_folder(p: Path, unit, fps, timestamps) -> ThermalReader:
    files = sorted((f for f in p.iterdir() if f.suffix.lower() == ".raw" and f.is_file()),
                   key=lambda f: natural_key(f.name))
    if not files:
        raise InputError(f"{p}: a thermal folder must hold .raw frames (iBVP layout); none found")
    rows, cols = IBVP_RAW_SHAPE
    expected = rows * cols * 2

    def frame_at(k: int) -> np.ndarray:
        f = files[k]
        size = f.stat().st_size if f.is_file() else -1
        if size != expected:
            raise InputError(f"thermal frame {f}: {size if size >= 0 else 'missing'} bytes, expected "
                             f"{expected} (uint16 {cols}x{rows})")
        return np.fromfile(f, dtype="<u2").reshape(rows, cols)

    times = _times(timestamps, _companion_times(p), len(files), str(p))
    return ThermalReader(p, "raw-folder", unit or "raw-ibvp", len(files), IBVP_RAW_SHAPE, frame_at, times,
                         fps, [])


def _open_image_folder(p: Path, unit, fps, timestamps) -> ThermalReader:
    """A folder of one-channel image frames (16-bit PNG/TIFF, as thermal cameras' tools write them)."""
    files = image_files(p)
    if not files:
        raise InputError(f"{p}: a thermal folder must hold .raw frames (iBVP layout) or one image per frame "
                         f"({', '.join(IMAGE_SUFFIXES[:5])}, ...); none found")
    first = read_image(files[0])
    if first is None:
        raise InputError(f"thermal frame {files[0]}: cannot be read as an image")
    if first.ndim == 3:
        raise InputError(f"thermal frame {files[0]}: {first.shape[2]} channels; a thermal frame has one "
                         "(a radiometric 16-bit grey image)")

    def frame_at(k: int) -> np.ndarray:
        img = read_image(files[k])
        if img is None or img.shape != first.shape or img.dtype != first.dtype:
            what = "cannot be read as an image" if img is None else (
                f"{img.shape[1]}x{img.shape[0]} {img.dtype}, the first frame is "
                f"{first.shape[1]}x{first.shape[0]} {first.dtype}")
            raise InputError(f"thermal frame {files[k]}: {what}")
        return img

    times = _times(timestamps, _companion_times(p), len(files), str(p))
    return ThermalReader(p, "image-folder", unit or _default_unit(first.dtype), len(files), first.shape,
                         frame_at, times, fps, [])


def _has_colour(video) -> bool:
    """The first frame has colour (a false-colour palette), not R = G = B up to coding noise."""
    for rgb, _ in video:
        return int(np.abs(rgb.astype(np.int16) - rgb[..., 1:2]).max()) > 8
    return False


def _open_grey_video(p: Path, unit, fps) -> ThermalReader:
    from mmrphys.video.reader import open_video

    if unit not in (None, "relative"):
        raise ConfigError(f"--thermal-unit {unit}: a video holds 8-bit intensities, not temperatures; "
                          "leave the unit out (relative) or give the radiometric frames (.npy, .tiff, .raw)")
    video = open_video(p, fps=fps)
    # a grey thermal video is what is expected here: not worth the RGB reader's warning
    warnings = [w for w in video.warnings if "grey (R = G = B)" not in w]
    colour = not video.is_grayscale and _has_colour(video)
    if colour:
        warnings.append(f"{p.name}: a colour thermal video: its brightness is used (a false-colour palette "
                        "is not inverted); a grey or radiometric recording is better")

    def sequence():
        for rgb, t in video:
            yield (rgb.mean(axis=2, dtype=np.float32) if colour else rgb[..., 1]), t

    reader = ThermalReader(p, "video", "relative", video.n_frames, (video.height, video.width), None, None,
                           video.fps, warnings, sequence=sequence)
    reader.timestamps_guessed = bool(getattr(video, "timestamps_guessed", False))
    return reader


def open_thermal(source, unit: str | None = None, fps: float | None = None, timestamps=None) -> ThermalReader:
    """A :class:`ThermalReader` over ``source`` (a path, see the module docstring, or an (N, H, W) array).

    ``unit``: :data:`UNITS` (default: float °C, 8-bit relative, other integers centi-°C; iBVP
    ``.raw``: raw-ibvp). ``fps`` / ``timestamps`` (seconds, one per frame): when the recording stores
    no times. Raises :class:`InputError` (unreadable or implausible data, naming the file) or
    :class:`ConfigError` (a bad option).
    """
    if unit is not None and unit not in UNITS:
        raise ConfigError(f"unknown thermal unit {unit!r}; choose one of {', '.join(UNITS)}")
    if fps is not None:
        fps = check_fps(fps, "thermal fps")
    if isinstance(source, ThermalReader):
        return source
    if isinstance(source, np.ndarray):
        return _open_array(source, None, unit, fps, timestamps)
    if not isinstance(source, (str, Path)) or str(source) == "":
        raise InputError("thermal recording must be a path or an (N, H, W) array, got "
                         f"{type(source).__name__}")
    p = Path(source)
    if not p.exists():
        raise InputError(f"no such thermal recording: {p}")
    if p.is_dir():
        if any(f.suffix.lower() == ".raw" for f in p.iterdir()):
            return _open_raw_folder(p, unit, fps, timestamps)
        return _open_image_folder(p, unit, fps, timestamps)
    if not p.is_file():
        raise InputError(f"{p} is not a regular file (a pipe, socket or device)")
    if p.stat().st_size == 0:
        raise InputError(f"{p} is empty (0 bytes)")
    suffix = p.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        arr, inner = _load_array_file(p)
        return _open_array(arr, p, unit, fps, timestamps, inner or _companion_times(p))
    if suffix in TIFF_SUFFIXES:
        return _open_tiff(p, unit, fps, timestamps)
    if suffix == ".raw":
        raise InputError(f"{p}: one .raw frame; give the folder of .raw frames (iBVP layout)")
    return _open_grey_video(p, unit, fps)
