"""Re-animated synthetic training data: real face stills given a pulse, breathing, motion, light and
a camera, rendered on the fly at crop resolution.

One item (:func:`render_clip`) is drawn from a NumPy generator seeded by ``(seed, index)``:

1. identity: a still of the caller's subjects (:class:`~mmrphys.training.stills.StillBank`), maybe
   mirrored and stretched, its skin tone changed through skin optics (melanin and haemoglobin in
   optical density, :mod:`mmrphys.synth.optics`), a specular share, a face size in the camera
   frame (the training crop is 110-260 px before resizing);
2. physiology (:mod:`mmrphys.synth.physio`): HR 40-180 bpm with trend, RSA, Mayer wave and
   beat-to-beat jitter, one waveform per beat; breathing 6-30 /min with irregular breaths, sighs,
   pauses and sometimes an apnoea;
3. the pulse in the skin: blood-volume change along the haemoglobin direction (green > blue > red),
   strongest on the forehead and cheeks, a random smooth map of amplitude, and a pulse-transit delay
   of up to tens of ms varying smoothly over the face;
4. motion: ballistocardiographic head motion at the heart rate, breathing motion (shift and scale),
   head sway, moves, roll, scale and yaw-like squeeze at realistic speeds, talking (jaw), smiling,
   brow raises and blinks as local warps; the person moves in front of a still background;
5. light and camera (:mod:`mmrphys.synth.camera`): drift, steps, moving shadow edge, side-light
   ratio, mains flicker aliased at the frame rate with rolling-shutter bands, PWM lights,
   auto-exposure with lag, white-balance drift, colour cast, sensor noise (read + shot), 8-bit
   quantisation and H.264 (libx264, yuv420p, CRF around UBFC-rPPG's 23) of the camera's view of
   the face region at its native size;
6. the crop follows the face as the project's tracker does (``mmrphys.faces.FaceTracker``:
   detection every 30 frames with the Haar detector's jitter and misses, gliding to the new box),
   cut from the decoded 4:2:0 frame and area-resized to ``size`` exactly like ``mmrphys estimate``.

Labels follow UBFC-rPPG's convention (measured on the 8 shared subjects, see docs/datasets.md):
``bvp`` is the blood volume of the face (up = more blood = darker skin, i.e. the skin's green
trace is anti-correlated with it), with no lag between label sample k and frame k; ``rsp`` is
chest volume (inhale up). Both are z-scored per item.

:class:`ReanimatedDataset` serves items in the trainer's format; :func:`write_set` writes clips to
disk as videos + ground truth (the ``generic`` layout) with a contact sheet, for people to look at.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np

from mmrphys.errors import ConfigError
from mmrphys.synth.camera import (
    LightPlan,
    Sensor,
    canvas_grids,
    draw_light,
    h264_roundtrip,
    smooth_noise,
    white_noise,
)
from mmrphys.synth.optics import pulse_basis, skin_tone
from mmrphys.synth.physio import Physio, PhysioParams, draw_physiology
from mmrphys.training.stills import CHEEKS, CROP_SCALE, FOREHEAD, MOUTH, Still, StillBank

CANVAS_MARGIN = 1.45  # the camera's view rendered around the face: crop side x this
MAX_SHIFT = 0.2  # head translation bound, fraction of the face box side
DETECTION_JITTER = (0.007, 0.015)  # Haar box centre / side jitter (fraction of the side), UBFC-measured
WINDOW_PAD_PX = 16  # rendered view = the union of the clip's crops + this (one macroblock)


@dataclass(frozen=True)
class RenderParams:
    """What an item is drawn from. ``motion``/``light``/``noise``/``expression`` scale those effects
    (0 switches them off); ``codec=False`` skips H.264."""

    crop_px: tuple[float, float] = (110.0, 260.0)  # native training-crop side (face box x1.5)
    # H.264 CRF: UBFC-rPPG is CRF 23 with x264's macroblock tree, which keeps the pulse like CRF ~21
    # without it (mbtree is off here: it is not deterministic), so the range is centred on 22
    crf: tuple[float, float] = (17.0, 27.0)
    near_lossless_share: float = 0.1  # items encoded at CRF 8-14 instead (uncompressed datasets)
    preset: str = "veryfast"
    pulse_od: tuple[float, float] = (0.01, 0.08)  # std of the blood OD at the strongest skin
    transit_ms: tuple[float, float] = (0.0, 60.0)  # largest pulse-transit delay across the face
    melanin: tuple[float, float] = (-0.4, 4.0)  # OD added along MELANIN (light .. very dark)
    haemoglobin: tuple[float, float] = (-0.15, 0.35)
    specular: tuple[float, float] = (0.005, 0.04)
    motion: float = 1.0
    light: float = 1.0
    noise: float = 1.0
    expression: float = 1.0
    codec: bool = True
    tracker_every: int = 30
    physio: PhysioParams = field(default_factory=PhysioParams)

    def validate(self) -> RenderParams:
        if not 16 <= self.crop_px[0] <= self.crop_px[1] <= 1024:
            raise ConfigError(f"crop_px must be increasing within 16-1024, got {self.crop_px}")
        if not 0 <= self.crf[0] <= self.crf[1] <= 51:
            raise ConfigError(f"crf must be increasing within 0-51, got {self.crf}")
        for name in ("motion", "light", "noise", "expression"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        self.physio.validate()
        return self

    @classmethod
    def clean(cls, **kw) -> RenderParams:
        """No motion, light changes, noise, expressions or codec: the pulse alone (for tests)."""
        return cls(motion=0.0, light=0.0, noise=0.0, expression=0.0, codec=False, **kw)


@dataclass
class Clip:
    """A rendered clip: ``frames`` (n, S, S, 3) uint8 crops, labels ``bvp``/``rsp`` (n,) float32
    (z-scored), ``truth`` (rates and every drawn parameter), the crop boxes in the camera view and,
    when asked for, the camera view itself (``canvas``: (n, N, N, 3) uint8 after the codec)."""

    frames: np.ndarray
    bvp: np.ndarray
    rsp: np.ndarray
    truth: dict
    boxes: np.ndarray
    detections: np.ndarray
    canvas: np.ndarray | None = None
    physio: Physio | None = None
    extra: dict = field(default_factory=dict)

    def item(self, id_format: str = "reanimated/{subject}", size: int | None = None) -> dict:
        """The trainer's item: ``frames`` float32 (3, n, S, S) raw 0-255 RGB, ``bvp``, ``rsp`` (n,) and
        ``id`` (torch tensors); ``size`` picks one of ``extra``'s sizes instead of the main one."""
        import torch

        frames = self.frames if size is None or size == self.frames.shape[1] else self.extra[size]
        chw = np.ascontiguousarray(frames.transpose(3, 0, 1, 2), dtype=np.float32)
        return {
            "frames": torch.from_numpy(chw),
            "bvp": torch.from_numpy(self.bvp.copy()),
            "rsp": torch.from_numpy(self.rsp.copy()),
            "id": id_format.format(subject=self.truth["subject"]),
        }


# ------------------------------------------------------------------------------------ identity
def _loguniform(rng, lo, hi) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _gauss(shape, cx, cy, sx, sy) -> np.ndarray:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2)).astype(np.float32)


def _smooth_field(rng, shape, scale_px: float) -> np.ndarray:
    """Smooth random field, zero mean, unit std, correlation length ~``scale_px``."""
    small = max(2, int(round(max(shape) / max(scale_px, 1.0))))
    f = rng.standard_normal((small, small)).astype(np.float32)
    f = cv2.resize(f, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    f = cv2.GaussianBlur(f, (0, 0), scale_px / 3)
    return (f - f.mean()) / (f.std() + 1e-6)


def _flip(still: Still) -> Still:
    px = still.size
    x, y, w, h = still.face_box
    (lx, ly), (rx, ry) = still.eyes
    return replace(
        still,
        image=still.image[:, ::-1],
        skin=still.skin[:, ::-1],
        matte=still.matte[:, ::-1],
        background=still.background[:, ::-1],
        face_box=(px - x - w, y, w, h),
        eyes=((px - rx, ry), (px - lx, ly)),
    )


def _prepare(still: Still, rng: np.random.Generator, p: RenderParams, crop_px: float) -> dict:
    """The still at the native scale of a ``crop_px`` crop, with its new skin tone, the pulse bases and
    the expression fields (all in still pixels at that scale)."""
    flipped = bool(rng.uniform() < 0.5)
    if flipped:
        still = _flip(still)
    face_side = max(still.face_box[2], still.face_box[3])
    k = crop_px / CROP_SCALE / face_side
    size = max(16, int(round(still.size * k)))
    k = size / still.size
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
    image = cv2.resize(still.image, (size, size), interpolation=interp)
    skin = cv2.resize(still.skin, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    matte = cv2.resize(still.matte, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    background = cv2.resize(still.background, (size, size), interpolation=interp).astype(np.float32)
    x, y, w, h = (v * k for v in still.face_box)
    eyes = [(ex * k, ey * k) for ex, ey in still.eyes]
    tone = {
        "melanin": float(rng.uniform(*p.melanin)),
        "haemoglobin": float(rng.uniform(*p.haemoglobin)),
        "specular": float(rng.uniform(*p.specular)),
    }
    img, diffuse = skin_tone(image, skin, **tone)
    # pulse amplitude over the face: forehead and cheeks strongest, a smooth random modulation
    shape = (size, size)
    at = lambda fx, fy: (x + fx * w, y + fy * h)  # noqa: E731 - face-box fractions to pixels
    blobs = rng.uniform(0.6, 1.0) * _gauss(shape, *at(*FOREHEAD), 0.3 * w, 0.14 * h)
    for c in CHEEKS:
        blobs += rng.uniform(0.6, 1.0) * _gauss(shape, *at(*c), 0.16 * w, 0.15 * h)
    amp = (
        skin
        * (rng.uniform(0.3, 0.6) + np.minimum(blobs, 1.0))
        * np.clip(1 + rng.uniform(0.1, 0.35) * _smooth_field(rng, shape, 0.3 * w), 0.3, 2.0)
    )
    amp /= max(float(np.percentile(amp[skin > 0.5], 95)) if np.any(skin > 0.5) else 1.0, 1e-6)
    pulse_od = _loguniform(rng, *p.pulse_od)
    # pulse transit: a smooth delay map 0..1 (x transit_ms), roughly along the face's height
    delay = (
        0.5
        + 0.25 * rng.choice([-1, 1]) * (np.mgrid[0:size, 0:size][0] - (y + h / 2)) / h
        + 0.25 * _smooth_field(rng, shape, 0.5 * w)
    )
    delay = np.clip(delay, 0, 1).astype(np.float32)
    basis = pulse_basis(img, diffuse, amp * pulse_od)
    weight = float(np.sum(amp * delay) / max(np.sum(amp), 1e-6))  # the label's share of the late pulse
    out = {
        "image": img,
        "skin": skin,
        "matte": matte,
        "background": background,
        "face_box": (x, y, w, h),
        "eyes": eyes,
        "size": size,
        "scale": k,
        "tone": tone,
        "pulse_od": pulse_od,
        "basis_early": basis * (1 - delay)[..., None],
        "basis_late": basis * delay[..., None],
        "late_weight": weight,
        "at": at,
        "flipped": flipped,
    }
    return out


def _expression_fields(prep: dict) -> dict:
    """Displacement fields (still pixels per unit) and colour bases of the local expressions."""
    x, y, w, h = prep["face_box"]
    shape = (prep["size"],) * 2
    at = prep["at"]
    yy = np.mgrid[0 : shape[0], 0 : shape[1]][0].astype(np.float32)
    mouth_y = at(*MOUTH)[1]
    below = 1 / (1 + np.exp(-(yy - mouth_y) / (0.02 * h)))
    jaw = _gauss(shape, *at(0.5, 1.0), 0.32 * w, 0.3 * h) * below  # lower face moves down
    smile_dy = -(
        _gauss(shape, *at(*CHEEKS[0]), 0.14 * w, 0.12 * h)
        + _gauss(shape, *at(*CHEEKS[1]), 0.14 * w, 0.12 * h)
    )
    smile_dx = _gauss(shape, *at(0.68, 0.8), 0.08 * w, 0.06 * h) - _gauss(
        shape, *at(0.32, 0.8), 0.08 * w, 0.06 * h
    )
    brow = -_gauss(shape, *at(0.5, 0.22), 0.4 * w, 0.1 * h)
    mouth = _gauss(shape, *at(MOUTH[0], MOUTH[1] + 0.02), 0.1 * w, 0.02 * h)
    img = prep["image"]
    # closed eyes: the eye region filled with the surrounding skin
    eye_mask = np.zeros(shape, np.uint8)
    for ex, ey in prep["eyes"]:
        cv2.ellipse(
            eye_mask, (int(ex), int(ey)), (max(1, int(0.11 * w)), max(1, int(0.055 * h))), 0, 0, 360, 255, -1
        )
    closed = cv2.inpaint(np.clip(img, 0, 255).astype(np.uint8), eye_mask, 3, cv2.INPAINT_TELEA).astype(
        np.float32
    )
    soft = cv2.GaussianBlur(eye_mask.astype(np.float32) / 255, (0, 0), max(1.0, 0.02 * w))[..., None]
    return {
        "jaw": jaw,
        "smile": (smile_dx, smile_dy),
        "brow": brow,
        "mouth_basis": -0.5 * img * mouth[..., None],
        "blink_basis": (closed - img) * soft,
    }


# -------------------------------------------------------------------------------------- motion
def _min_jerk(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0, 1)
    return u**3 * (10 - 15 * u + 6 * u**2)


def _sway(rng, n, fs, cutoff_hz) -> np.ndarray:
    return smooth_noise(rng, n, fs, cutoff_hz)


def _moves(rng, t, count, size, dur_s) -> np.ndarray:
    out = np.zeros_like(t)
    for _ in range(count):
        at, d = rng.uniform(t[0] - 1, t[-1]), rng.uniform(*dur_s)
        out += rng.normal(0, size) * _min_jerk((t - at) / d)
    return out


MOTION_CLASSES = {  # sway, moves (count range, size), roll deg, scale, squeeze; share of clips
    "still": {
        "share": 0.5,
        "sway": (0.002, 0.008),
        "moves": (0, 0, 0.0),
        "roll": 0.5,
        "scale": 0.005,
        "squeeze": 0.005,
        "talk": 0.15,
    },
    "moderate": {
        "share": 0.35,
        "sway": (0.008, 0.03),
        "moves": (0, 2, 0.05),
        "roll": 2.0,
        "scale": 0.02,
        "squeeze": 0.02,
        "talk": 0.3,
    },
    "large": {
        "share": 0.15,
        "sway": (0.02, 0.06),
        "moves": (1, 4, 0.1),
        "roll": 6.0,
        "scale": 0.05,
        "squeeze": 0.05,
        "talk": 0.5,
    },
}


def draw_motion(rng: np.random.Generator, n: int, fs: float, face_px: float, strength: float = 1.0) -> dict:
    """Head pose per frame: ``tx``, ``ty`` (px), ``roll`` (rad), ``scale``, ``squeeze`` (yaw-like
    horizontal scale), and the motion class."""
    names = list(MOTION_CLASSES)
    name = names[rng.choice(len(names), p=[MOTION_CLASSES[k]["share"] for k in names])]
    c = MOTION_CLASSES[name]
    t = np.arange(n) / fs
    s = strength
    tx = s * face_px * rng.uniform(*c["sway"]) * _sway(rng, n, fs, rng.uniform(0.1, 1.0))
    ty = s * face_px * rng.uniform(*c["sway"]) * _sway(rng, n, fs, rng.uniform(0.1, 1.0))
    lo, hi, size = c["moves"]
    count = int(rng.integers(lo, hi + 1)) if s > 0 else 0
    tx += s * face_px * _moves(rng, t, count, size, (0.3, 1.2))
    ty += s * face_px * _moves(rng, t, count, 0.5 * size, (0.3, 1.2))
    lim = MAX_SHIFT * face_px
    tx, ty = lim * np.tanh(tx / lim), lim * np.tanh(ty / lim)
    roll = s * np.deg2rad(c["roll"]) * (0.5 * _sway(rng, n, fs, 0.5) + _moves(rng, t, count, 0.5, (0.3, 1.2)))
    scale = 1 + s * c["scale"] * (0.5 * _sway(rng, n, fs, 0.3) + _moves(rng, t, count, 0.5, (0.5, 1.5)))
    squeeze = 1 + s * c["squeeze"] * _sway(rng, n, fs, 0.5)
    return {
        "tx": tx,
        "ty": ty,
        "roll": roll,
        "scale": scale,
        "squeeze": squeeze,
        "class": name,
        "talk_share": c["talk"],
    }


def _expressions(rng, t: np.ndarray, fs: float, face_px: float, strength: float, talk_share: float) -> dict:
    """Per-frame expression amplitudes: jaw (px), smile (px), brow (px), blink (0..1)."""
    n = len(t)
    out = {k: np.zeros(n) for k in ("jaw", "smile", "brow", "blink")}
    if strength <= 0:
        return out
    if rng.uniform() < talk_share:
        syll = np.maximum(_sway(rng, n, fs, rng.uniform(3.0, 6.0)), 0)
        env = np.zeros(n)
        t0 = rng.uniform(-2, t[-1])
        while t0 < t[-1] + 1:  # speech bursts and pauses
            burst = rng.uniform(0.8, 4.0)
            env += _min_jerk((t - t0) / 0.15) - _min_jerk((t - t0 - burst) / 0.15)
            t0 += burst + rng.uniform(0.3, 2.0)
        out["jaw"] = strength * rng.uniform(0.02, 0.07) * face_px * syll * np.clip(env, 0, 1)
    if rng.uniform() < 0.15 * strength:
        on, d = rng.uniform(-1, t[-1]), rng.uniform(0.4, 1.5)
        off = on + rng.uniform(1.0, 6.0)
        out["smile"] = (
            strength
            * rng.uniform(0.01, 0.03)
            * face_px
            * (_min_jerk((t - on) / d) - _min_jerk((t - off) / d))
        )
    if rng.uniform() < 0.1 * strength:
        on = rng.uniform(-1, t[-1])
        out["brow"] = (
            strength
            * rng.uniform(0.01, 0.03)
            * face_px
            * (_min_jerk((t - on) / 0.3) - _min_jerk((t - on - rng.uniform(0.5, 2)) / 0.4))
        )
    if rng.uniform() < 0.85:
        tb = rng.uniform(-2, 2)
        while tb < t[-1]:
            d = rng.uniform(0.1, 0.3)
            u = (t - tb) / d
            out["blink"] = np.maximum(
                out["blink"], np.where(u < 0.35, _min_jerk(u / 0.35), 1 - _min_jerk((u - 0.35) / 0.65))
            )
            tb += rng.uniform(1.5, 8.0)
    return out


class _ScriptedDetector:
    """Stands in for the face detector: the true box of the current frame with Haar-like jitter and
    misses (set ``index`` before each tracker update)."""

    def __init__(self, boxes: np.ndarray, miss: np.ndarray):
        self.boxes, self.miss, self.index = boxes, miss, 0

    def detect(self, frame, *args, **kwargs) -> list:
        from mmrphys.faces import Box

        if self.miss[self.index]:
            return []
        return [Box(*(float(v) for v in self.boxes[self.index]))]


class _Shape:
    def __init__(self, n: int):
        self.shape = (n, n, 3)


def track_crops(
    true_boxes: np.ndarray,
    rng: np.random.Generator,
    canvas_px: int,
    every_n: int = 30,
    miss_rate: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Crops ``(n, 4)`` xyxy the project's :class:`~mmrphys.faces.FaceTracker` gives for faces at
    ``true_boxes`` (x, y, w, h per frame) seen by a jittery detector; and the detections used."""
    from mmrphys.faces import FaceTracker

    n = len(true_boxes)
    side = np.maximum(true_boxes[:, 2], true_boxes[:, 3])
    det = true_boxes.copy()
    det[:, :2] += rng.normal(0, DETECTION_JITTER[0], (n, 2)) * side[:, None]
    ds = rng.normal(0, DETECTION_JITTER[1], n) * side
    det[:, :2] -= ds[:, None] / 2
    det[:, 2:] += ds[:, None]
    miss = rng.uniform(size=n) < miss_rate
    miss[0] = False
    scripted = _ScriptedDetector(det, miss)
    tracker = FaceTracker(scripted, every_n=every_n, scale=CROP_SCALE)
    frame = _Shape(canvas_px)
    crops = np.zeros((n, 4))
    last = None
    for k in range(n):
        scripted.index = k
        box = tracker.update(frame, k)
        box = box if box is not None else last
        crops[k] = box
        last = box
    return crops, det


# ------------------------------------------------------------------------------------- rendering
def _zscore(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    s = x.std()
    return ((x - x.mean()) / s if s > 1e-9 else x - x.mean()).astype(np.float32)


def _affine(prep: dict, canvas_px: int, tx, ty, roll, scale, squeeze, aspect) -> np.ndarray:
    """2x3 map from still pixels to canvas pixels: the face-box centre to the canvas centre + shift."""
    x, y, w, h = prep["face_box"]
    cx, cy = x + w / 2, y + h / 2
    c, s = np.cos(roll), np.sin(roll)
    sx, sy = scale * squeeze * aspect, scale / aspect
    a = np.array([[c * sx, -s * sy], [s * sx, c * sy]])
    off = np.array([canvas_px / 2 + tx, canvas_px / 2 + ty]) - a @ np.array([cx, cy])
    return np.hstack([a, off[:, None]]).astype(np.float32)


def render_clip(
    bank: StillBank,
    rng: np.random.Generator,
    n_frames: int,
    size: int = 72,
    fs: float = 30.0,
    params: RenderParams | None = None,
    keep_canvas: bool = False,
    hr_bpm: float | None = None,
    rr_bpm: float | None = None,
    extra_sizes=(),
) -> Clip:
    """Render one clip of ``n_frames`` at ``size`` x ``size`` from a still of ``bank`` (all draws from
    ``rng``); ``extra_sizes`` also crops the same frames at those sizes (``Clip.extra``)."""
    from mmrphys.faces import crop_resize
    from mmrphys.video.frame import YUVFrame

    p = (params or RenderParams()).validate()
    if n_frames < 2 or size < 2 or fs <= 0:
        raise ConfigError(f"need n_frames >= 2, size >= 2 and fs > 0, got {n_frames}, {size}, {fs}")
    si = int(rng.integers(len(bank)))
    still = bank[si]
    crop_px = _loguniform(rng, *p.crop_px)
    prep = _prepare(still, rng, p, crop_px)
    face_px = crop_px / CROP_SCALE
    canvas = int(np.ceil(crop_px * CANVAS_MARGIN / 16)) * 16
    aspect = float(np.exp(rng.uniform(-0.04, 0.04)))

    phys = draw_physiology(rng, n_frames, fs, p.physio, hr_bpm=hr_bpm, rr_bpm=rr_bpm)
    t = phys.t
    transit_s = rng.uniform(*p.transit_ms) / 1000.0
    early = phys.pulse_at(t)
    late = phys.pulse_at(t - transit_s)
    # unit std: the pulse's strength in the skin is ``pulse_od`` whatever the rate and shape
    mean, std = early.mean(), max(float(early.std()), 1e-9)
    early, late = (early - mean) / std, (late - mean) / std
    bvp = (1 - prep["late_weight"]) * early + prep["late_weight"] * late

    # motion, with warm-up frames before the clip so the tracker is mid-way as in a long video
    warm = int(rng.integers(0, 2 * p.tracker_every))
    mo = draw_motion(rng, warm + n_frames, fs, face_px, p.motion)
    rsp_n = phys.rsp / max(np.abs(phys.rsp).max(), 1e-9)
    breath = p.motion * rng.uniform(0.0, 0.012) * face_px
    breath_scale = p.motion * rng.uniform(0.0, 0.006)
    bcg_lead = phys.pulse_at(t + rng.uniform(0.05, 0.15))
    bcg = (
        p.motion
        * rng.uniform(0.0, 0.004)
        * face_px
        * (bcg_lead - bcg_lead.mean())
        / max(np.ptp(bcg_lead), 1e-9)
    )
    ty = mo["ty"].copy()
    ty[warm:] += breath * rsp_n + bcg
    scale = mo["scale"].copy()
    scale[warm:] *= 1 + breath_scale * rsp_n
    mats = [
        _affine(prep, canvas, mo["tx"][k], ty[k], mo["roll"][k], scale[k], mo["squeeze"][k], aspect)
        for k in range(warm + n_frames)
    ]
    centres = np.array(
        [
            m[:, :2]
            @ np.array(
                [prep["face_box"][0] + prep["face_box"][2] / 2, prep["face_box"][1] + prep["face_box"][3] / 2]
            )
            + m[:, 2]
            for m in mats
        ]
    )
    side = face_px * scale * np.sqrt(mo["squeeze"])
    true_boxes = np.column_stack([centres - side[:, None] / 2, side, side])
    miss_rate = float(rng.uniform(0, 0.15)) * min(1.0, p.motion)
    crops, dets = track_crops(true_boxes, rng, canvas, p.tracker_every, miss_rate)
    crops, dets, mats = crops[warm:], dets[warm:], mats[warm:]
    # only the part of the camera's view the crops cover (plus a macroblock) is rendered and encoded;
    # whole macroblocks, since libx264 (through FFmpeg) is not deterministic on other heights
    lo = [max(0, int(np.floor(crops[:, i].min())) - WINDOW_PAD_PX) for i in (0, 1)]
    hi = [min(canvas, int(np.ceil(crops[:, i].max())) + WINDOW_PAD_PX) for i in (2, 3)]
    view_w, view_h = (min(canvas, int(np.ceil((b - a) / 16)) * 16) for a, b in zip(lo, hi))
    x0, y0 = (min(a, canvas - v) for a, v in zip(lo, (view_w, view_h)))
    crops = crops - np.array([x0, y0, x0, y0])
    dets = dets - np.array([x0, y0, 0, 0])
    mats = [m - np.float32([[0, 0, x0], [0, 0, y0]]) for m in mats]

    expr = _expressions(rng, t, fs, face_px, p.expression, mo["talk_share"])
    fields = _expression_fields(prep) if any(np.any(v != 0) for v in expr.values()) else None
    light = draw_light(rng, n_frames, fs, canvas, p.light)
    sensor = Sensor.draw(rng, p.noise) if p.noise > 0 else Sensor(0.0, 0.0)
    crf = float(rng.uniform(8, 14) if rng.uniform() < p.near_lossless_share else rng.uniform(*p.crf))

    frames_u8 = _render_frames(prep, fields, expr, mats, (view_h, view_w), early, late, light, sensor, rng)
    n_bytes = None
    if p.codec:
        decoded, n_bytes = h264_roundtrip(frames_u8, fs, crf, p.preset)
        yuv = [YUVFrame(f) for f in decoded]
        crops_at = {s: np.stack([f.crop_rgb(b, s) for f, b in zip(yuv, crops)]) for s in (size, *extra_sizes)}
        view = np.stack([f.to_ndarray(format="rgb24") for f in decoded]) if keep_canvas else None
    else:
        crops_at = {
            s: np.stack([crop_resize(f, b, s) for f, b in zip(frames_u8, crops)])
            for s in (size, *extra_sizes)
        }
        view = np.stack(frames_u8) if keep_canvas else None
    out = crops_at.pop(size)
    truth = {
        "subject": still.subject,
        "still": si,
        "still_source": still.source,
        "still_t_s": still.t_s,
        "hr_bpm": phys.hr_bpm,
        "rr_bpm": phys.rr_bpm,
        "fps": float(fs),
        "n_frames": int(n_frames),
        "crop_px": crop_px,
        "canvas_px": canvas,
        "flipped": prep["flipped"],
        "tone": prep["tone"],
        "pulse_od": prep["pulse_od"],
        "transit_ms": transit_s * 1000,
        "motion_class": mo["class"],
        "warm_frames": warm,
        "detector_miss_rate": miss_rate,
        "expressions": [k for k, v in expr.items() if np.any(v != 0)],
        "light": light.info,
        "sensor": asdict(sensor),
        "codec": p.codec,
        "crf": crf if p.codec else None,
        "view_px": [view_w, view_h],
        "bits_per_pixel": (8 * n_bytes / (view_w * view_h * n_frames)) if n_bytes else None,
        "physio": phys.info,
    }
    return Clip(
        frames=out,
        bvp=_zscore(bvp),
        rsp=_zscore(phys.rsp),
        truth=truth,
        boxes=crops,
        detections=dets,
        canvas=view,
        physio=phys,
        extra=crops_at,
    )


def _render_frames(prep, fields, expr, mats, view_hw, early, late, light: LightPlan, sensor: Sensor, rng):
    """The camera's view (uint8, view_hw + (3,)) of every frame."""
    size = prep["size"]
    h, w = view_hw
    # the person as RGBA (colour not premultiplied): pulse and expressions change RGB, the matte moves
    base = np.concatenate([prep["image"], prep["matte"][..., None]], axis=2)
    zeros = np.zeros((size, size, 1), np.float32)
    b_early = np.concatenate([prep["basis_early"], zeros], axis=2)
    b_late = np.concatenate([prep["basis_late"], zeros], axis=2)
    extra = []
    remap = None
    if fields is not None:
        if np.any(expr["blink"]):
            extra.append((expr["blink"], np.concatenate([fields["blink_basis"], zeros], axis=2)))
        if np.any(expr["jaw"]):
            jaw_n = expr["jaw"] / max(expr["jaw"].max(), 1e-9)
            extra.append((jaw_n, np.concatenate([fields["mouth_basis"], zeros], axis=2)))
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        remap = (xx, yy)
    warp = {"flags": cv2.INTER_LINEAR, "borderMode": cv2.BORDER_REPLICATE}
    bg = cv2.warpAffine(prep["background"], _mean_affine(mats), (w, h), **warp)
    grids = canvas_grids(h, w)
    shape = (h, w, 3)
    n_px = h * w * 3
    noise = white_noise() if sensor.read or sensor.shot else None
    sigma = None
    out = []
    for k, m in enumerate(mats):
        layer = cv2.scaleAdd(b_early, float(early[k]), base)
        layer = cv2.scaleAdd(b_late, float(late[k]), layer)
        for amp, basis in extra:
            if amp[k]:
                layer = cv2.scaleAdd(basis, float(amp[k]), layer)
        if remap is not None and (expr["jaw"][k] or expr["smile"][k] or expr["brow"][k]):
            jaw, smile, brow = float(expr["jaw"][k]), float(expr["smile"][k]), float(expr["brow"][k])
            map_x = remap[0] - smile * fields["smile"][0]
            map_y = remap[1] - (jaw * fields["jaw"] + smile * fields["smile"][1] + brow * fields["brow"])
            layer = cv2.remap(layer, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        lay = cv2.warpAffine(layer, m, (w, h), **warp)
        a = cv2.extractChannel(lay, 3)
        img = cv2.blendLinear(cv2.cvtColor(lay, cv2.COLOR_RGBA2RGB), bg, a, cv2.subtract(1.0, a))
        spatial = light.spatial(k, grids)
        if spatial is not None:
            img *= spatial[..., None]
        img = cv2.multiply(img, tuple(float(g) for g in light.gain[k]) + (0.0,))
        if noise is None:
            out.append(cv2.convertScaleAbs(img))  # rounds and saturates to uint8
            continue
        if sigma is None:  # read + shot noise at the view's mean level
            sigma = float(np.sqrt(sensor.read**2 + sensor.shot * float(img.mean())))
        off = int(rng.integers(len(noise) - n_px))
        out.append(
            cv2.addWeighted(img, 1.0, noise[off : off + n_px].reshape(shape), sigma, 0.0, dtype=cv2.CV_8U)
        )
    return out


def _mean_affine(mats) -> np.ndarray:
    return np.mean(np.stack(mats), axis=0).astype(np.float32)


# --------------------------------------------------------------------------------------- dataset
try:
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # pragma: no cover - torch is a dependency
    _TorchDataset = object


class ReanimatedDataset(_TorchDataset):
    """Re-animated clips rendered on the fly, in the trainer's item format.

    ``dataset[i]`` = ``{"frames": float32 (3, chunk, size, size) raw 0-255 RGB, "bvp": (chunk,),
    "rsp": (chunk,), "id": str}`` (torch tensors), the same for the same ``(seed, i)`` in any process
    or DataLoader worker. ``n`` items; ``params`` (:class:`RenderParams`) sets the ranges.
    """

    def __init__(
        self,
        bank: StillBank,
        n: int = 2000,
        seed: int = 0,
        chunk: int = 180,
        size: int = 72,
        fs: float = 30.0,
        params: RenderParams | None = None,
    ):
        if n < 1 or chunk < 2 or size < 2 or fs <= 0:
            raise ConfigError(f"need n >= 1, chunk >= 2, size >= 2, fs > 0; got {n}, {chunk}, {size}, {fs}")
        self.bank, self.n, self.seed = bank, int(n), int(seed)
        self.chunk, self.size, self.fs = int(chunk), int(size), float(fs)
        self.params = (params or RenderParams()).validate()
        self.subjects = bank.subjects

    def __len__(self) -> int:
        return self.n

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(index)])

    def clip(self, index: int, **kw) -> Clip:
        """The full :class:`Clip` of item ``index`` (truth, boxes, optionally the camera view)."""
        if not 0 <= index < self.n:
            raise IndexError(f"item {index} of {self.n}")
        return render_clip(self.bank, self.rng(index), self.chunk, self.size, self.fs, self.params, **kw)

    def __getitem__(self, index: int) -> dict:
        return self.clip(int(index)).item(f"reanimated/{{subject}}/{self.seed}-{int(index)}")

    @property
    def ids(self) -> list[str]:
        return [f"reanimated/{self.seed}-{i}" for i in range(self.n)]

    def manifest_hash(self) -> str:
        """Names the data for the trainer's resume guard: bank, parameters, seed and shape."""
        blob = json.dumps(
            [self.bank.digest(), asdict(self.params), self.seed, self.n, self.chunk, self.size, self.fs],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
