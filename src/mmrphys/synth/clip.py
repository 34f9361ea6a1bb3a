"""Synthetic face video with a known pulse and breathing, written to a real video file + ground truth.

The pieces are reusable (the training-set generator builds on them):

- :func:`physiology` — ground-truth waveforms: a PPG-shaped pulse whose rate varies with breathing
  (RSA) and slowly drifts, and a breathing waveform.
- :class:`FaceLook` / :func:`random_look` — appearance of one synthetic person and scene.
- :func:`draw_face` — a procedural face (hair, brows, eyes, nose, mouth, neck) that OpenCV's Haar
  cascade finds, with its skin mask and nostril mask.
- :func:`render_frames` — frames (and optionally a thermal channel) over time: colour change of the
  skin along the pulsatile direction, breathing head motion and intensity modulation, illumination
  drift and a lighting change, sensor noise.
- :func:`write_video` — mp4 (H.264 via PyAV), y4m (raw, e.g. Chromium's fake camera), avi (FFV1,
  lossless) or npy, chosen by suffix.
- :func:`make_clip` — all of the above plus the ground truth next to the video (``.json`` + ``.csv``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mmrphys.errors import ConfigError

# Relative pulsatile strength of R, G, B in skin reflectance (the "Pbv" blood-volume signature of
# de Haan & van Leest 2014, normalised): green carries most of the pulse, red least.
PBV = np.array([0.33, 0.77, 0.53])
PBV = PBV / np.linalg.norm(PBV)

VIDEO_SUFFIXES = (".mp4", ".y4m", ".avi", ".npy")


# --------------------------------------------------------------------------------------------------
# ground-truth physiology


def _pulse_shape(phase: np.ndarray) -> np.ndarray:
    """One PPG cycle per unit phase: fast systolic rise, slower fall, small dicrotic wave."""
    p = np.mod(phase, 1.0)
    wave = (np.exp(-0.5 * ((p - 0.22) / 0.09) ** 2) + 0.35 * np.exp(-0.5 * ((p - 0.55) / 0.08) ** 2)
            + np.exp(-0.5 * ((p - 1.22) / 0.09) ** 2) + 0.35 * np.exp(-0.5 * ((p + 0.45) / 0.08) ** 2))
    return wave


def physiology(hr_bpm: float, rr_bpm: float, duration_s: float, fs: float, seed: int = 0,
               rsa_bpm: float = 2.0, hr_drift_bpm: float = 1.0, rr_jitter: float = 0.03) -> dict:
    """Ground-truth waveforms sampled at ``fs``: ``t``, ``bvp``, ``rsp`` (zero mean, unit std),
    instantaneous ``hr_inst``/``rr_inst`` (bpm) and the peak times ``beats_s``.

    The instantaneous heart rate swings by ``±rsa_bpm`` with breathing (respiratory sinus
    arrhythmia) and drifts slowly by up to ``hr_drift_bpm``; its mean over the clip is ``hr_bpm``.
    """
    if not (20 <= hr_bpm <= 250) or not (3 <= rr_bpm <= 60):
        raise ConfigError(f"hr_bpm must be in [20, 250] and rr_bpm in [3, 60], got {hr_bpm}, {rr_bpm}")
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fs))
    t = np.arange(n) / fs
    # breathing: rate jittered slowly around rr_bpm, waveform with slightly longer exhale
    rr_inst = rr_bpm * (1 + rr_jitter * np.sin(2 * np.pi * t / max(duration_s, 1) + rng.uniform(0, 6.3)))
    rr_inst *= rr_bpm / rr_inst.mean()
    r_phase = np.cumsum(rr_inst / 60.0) / fs + rng.uniform()
    rsp = np.sin(2 * np.pi * r_phase) + 0.15 * np.sin(4 * np.pi * r_phase + 0.7)
    rsp = (rsp - rsp.mean()) / (rsp.std() + 1e-12)
    drift = hr_drift_bpm * np.sin(2 * np.pi * t / max(duration_s, 1) * 0.7 + rng.uniform(0, 6.3))
    hr_inst = hr_bpm + rsa_bpm * np.sin(2 * np.pi * r_phase) + drift
    hr_inst += hr_bpm - hr_inst.mean()
    h_phase = np.cumsum(hr_inst / 60.0) / fs + rng.uniform()
    bvp = _pulse_shape(h_phase)
    bvp = (bvp - bvp.mean()) / (bvp.std() + 1e-12)
    k = np.arange(np.ceil(h_phase[0] - 0.22), np.floor(h_phase[-1] - 0.22) + 1)
    beats_s = np.interp(k + 0.22, h_phase, t)
    return {"t": t, "bvp": bvp, "rsp": rsp, "hr_inst": hr_inst, "rr_inst": rr_inst, "beats_s": beats_s,
            "hr_bpm": float(hr_inst.mean()), "rr_bpm": float(rr_inst.mean()), "fs": float(fs)}


# --------------------------------------------------------------------------------------------------
# appearance


@dataclass
class FaceLook:
    """Appearance of one synthetic subject and scene (colours are RGB in 0..255)."""

    skin_rgb: tuple = (205, 150, 120)
    hair_rgb: tuple = (60, 40, 30)
    background_rgb: tuple = (90, 110, 140)
    background_gradient: float = 0.25
    face_height: float = 0.55  # face ellipse height as a fraction of the frame height
    center: tuple = (0.5, 0.48)  # face centre as fractions of (width, height)
    eye_rgb: tuple = (40, 30, 25)
    lip_rgb: tuple = (150, 70, 70)
    texture: float = 4.0  # std of static skin/background texture in 0..255 levels
    aspect: float = 0.76  # face width / height
    eye_spacing: float = 0.38  # eye centre distance from the midline, fraction of the half-width
    eye_height: float = 0.18  # eye centre above the face centre, fraction of the half-height
    socket: float = 0.65  # eye-socket shadow brightness relative to the skin

    def to_dict(self) -> dict:
        return asdict(self)


def random_look(rng: np.random.Generator | int | None = None) -> FaceLook:
    """A random but detectable look: skin tone from light to dark, varied hair and background."""
    rng = np.random.default_rng(rng)
    tone = rng.uniform(0, 1)  # 0 light .. 1 dark
    light, dark = np.array([225, 180, 155]), np.array([110, 70, 50])
    skin = (1 - tone) * light + tone * dark + rng.normal(0, 6, 3)
    hair = np.array([50, 35, 25]) * rng.uniform(0.4, 2.5)
    bg = rng.uniform(40, 200, 3)
    return FaceLook(
        skin_rgb=tuple(np.clip(skin, 30, 250).round(1)), hair_rgb=tuple(np.clip(hair, 5, 200).round(1)),
        background_rgb=tuple(bg.round(1)), background_gradient=float(rng.uniform(0, 0.4)),
        face_height=float(rng.uniform(0.45, 0.62)),
        center=(float(rng.uniform(0.42, 0.58)), float(rng.uniform(0.44, 0.54))),
        lip_rgb=tuple(np.clip(skin * np.array([0.75, 0.45, 0.45]), 10, 250).round(1)),
        texture=float(rng.uniform(2, 6)))


def draw_face(width: int, height: int, look: FaceLook | None = None, seed: int = 0) -> dict:
    """Render the static scene: ``face`` (H, W, 3 float32, 0..255, face layer), ``alpha`` (face
    layer coverage), ``background`` (H, W, 3), ``skin`` (H, W float32 skin mask in 0..1),
    ``nostrils`` (H, W mask), ``eyes`` (eye sockets) and ``warm_skin`` (face below the hairline and
    neck: skin temperature in the thermal view) masks, and ``box`` (x, y, w, h of the face ellipse)."""
    look = look or FaceLook()
    rng = np.random.default_rng(seed)
    W, H = int(width), int(height)
    b = look.face_height * H / 2  # semi-axes of the face ellipse
    a = look.aspect * b
    cx, cy = look.center[0] * W, look.center[1] * H

    def ell(img, c, axes, colour, angle=0.0, start=0, end=360):
        cv2.ellipse(img, (int(round(c[0] * 16)), int(round(c[1] * 16))),
                    (max(1, int(round(axes[0] * 16))), max(1, int(round(axes[1] * 16)))),
                    angle, start, end, colour, -1, cv2.LINE_AA, shift=4)

    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    bg = np.empty((H, W, 3), np.float32)
    grad = 1 + look.background_gradient * ((xx / W) - 0.5)
    bg[:] = np.asarray(look.background_rgb, np.float32) * grad[..., None]
    bg += rng.normal(0, look.texture, (H, W, 1)).astype(np.float32)
    bg = cv2.GaussianBlur(bg, (0, 0), 1.5)

    skin_rgb = tuple(float(v) for v in look.skin_rgb)
    face = np.zeros((H, W, 3), np.float32)
    alpha = np.zeros((H, W), np.float32)
    skin = np.zeros((H, W), np.float32)
    # neck and shoulders (skin), hair behind the head
    cv2.rectangle(face, (int(cx - 0.55 * a), int(cy + 0.6 * b)), (int(cx + 0.55 * a), H), skin_rgb, -1)
    cv2.rectangle(alpha, (int(cx - 0.55 * a), int(cy + 0.6 * b)), (int(cx + 0.55 * a), H), 1.0, -1)
    cv2.rectangle(skin, (int(cx - 0.55 * a), int(cy + 0.6 * b)), (int(cx + 0.55 * a), H), 1.0, -1)
    shoulders = (cx, H + 0.35 * b)
    ell(face, shoulders, (2.4 * a, 0.9 * b), (70, 80, 95))
    ell(alpha, shoulders, (2.4 * a, 0.9 * b), 1.0)
    ell(skin, shoulders, (2.4 * a, 0.9 * b), 0.0)
    ell(face, (cx, cy - 0.12 * b), (1.12 * a, 1.02 * b), tuple(float(v) for v in look.hair_rgb))
    ell(alpha, (cx, cy - 0.12 * b), (1.12 * a, 1.02 * b), 1.0)
    # face ellipse with a hairline across the forehead
    ell(face, (cx, cy), (a, b), skin_rgb)
    ell(skin, (cx, cy), (a, b), 1.0)
    ell(alpha, (cx, cy), (a, b), 1.0)
    ell(face, (cx, cy - 0.86 * b), (0.95 * a, 0.3 * b), tuple(float(v) for v in look.hair_rgb))
    ell(skin, (cx, cy - 0.86 * b), (0.95 * a, 0.3 * b), 0.0)
    # shading: darker towards the face's edge, as a lit rounded surface
    r2 = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2
    shade = np.where(r2 < 1, 1.05 - 0.25 * r2, 1.0).astype(np.float32)
    face *= shade[..., None]
    dark = tuple(float(v) for v in look.eye_rgb)
    # brows and eye sockets keep their contrast on any skin tone (what Haar features key on)
    brow = tuple(float(v) for v in np.minimum(look.hair_rgb, 0.4 * np.asarray(skin_rgb)))
    ell(face, (cx, cy - 0.05 * b), (0.12 * a, 0.3 * b), tuple(min(255.0, 1.08 * v) for v in skin_rgb))
    eyes = np.zeros((H, W), np.float32)  # eye sockets: the warmest part of a face in thermal view
    for side in (-1, 1):
        ex, ey = cx + side * look.eye_spacing * a, cy - look.eye_height * b
        ell(eyes, (ex, ey + 0.01 * b), (0.3 * a, 0.13 * b), 1.0)
        ell(face, (ex, ey + 0.01 * b), (0.3 * a, 0.13 * b), tuple(look.socket * v for v in skin_rgb))
        ell(skin, (ex, ey + 0.01 * b), (0.32 * a, 0.15 * b), 0.0)
        ell(face, (ex, ey - 0.17 * b), (0.27 * a, 0.05 * b), brow, angle=side * 8)
        ell(skin, (ex, ey - 0.17 * b), (0.3 * a, 0.08 * b), 0.0, angle=side * 8)
        ell(face, (ex, ey), (0.2 * a, 0.075 * b), (225, 220, 215))  # sclera
        ell(face, (ex, ey), (0.08 * a, 0.07 * b), dark)  # iris
        ell(skin, (ex, ey), (0.24 * a, 0.1 * b), 0.0)
        ell(face, (ex, ey + 0.1 * b), (0.2 * a, 0.04 * b), tuple(0.85 * v for v in skin_rgb))  # lid shadow
    # nose: a shaded ridge and two nostrils
    ell(face, (cx + 0.05 * a, cy + 0.05 * b), (0.07 * a, 0.2 * b), tuple(0.88 * v for v in skin_rgb))
    nostrils = np.zeros((H, W), np.float32)
    for side in (-1, 1):
        c = (cx + side * 0.11 * a, cy + 0.24 * b)
        ell(face, c, (0.07 * a, 0.035 * b), tuple(0.45 * v for v in skin_rgb))
        ell(skin, c, (0.09 * a, 0.05 * b), 0.0)
        ell(nostrils, (c[0], c[1] + 0.04 * b), (0.1 * a, 0.07 * b), 1.0)
    # mouth
    ell(face, (cx, cy + 0.5 * b), (0.36 * a, 0.085 * b), tuple(float(v) for v in look.lip_rgb))
    ell(face, (cx, cy + 0.5 * b), (0.32 * a, 0.015 * b), tuple(0.4 * v for v in look.lip_rgb))
    ell(skin, (cx, cy + 0.5 * b), (0.4 * a, 0.11 * b), 0.0)
    face += rng.normal(0, look.texture, (H, W, 1)).astype(np.float32) * alpha[..., None]
    # skin temperature in thermal view: the face below the hairline (features included) and the neck
    warm_skin = np.zeros((H, W), np.float32)
    ell(warm_skin, (cx, cy), (a, b), 1.0)
    ell(warm_skin, (cx, cy - 0.86 * b), (0.95 * a, 0.3 * b), 0.0)
    warm_skin = np.maximum(warm_skin, skin)
    sigma = max(0.6, H / 240)
    face = cv2.GaussianBlur(face, (0, 0), sigma)
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    skin = cv2.GaussianBlur(skin, (0, 0), sigma)
    eyes = cv2.GaussianBlur(eyes, (0, 0), 2 * sigma)
    warm_skin = cv2.GaussianBlur(warm_skin, (0, 0), sigma)
    # the face layer was drawn premultiplied over black; un-premultiply where partly covered
    face = np.where(alpha[..., None] > 1e-3, face / np.maximum(alpha[..., None], 1e-3), 0).astype(np.float32)
    return {"face": face, "alpha": alpha, "background": bg, "skin": skin, "nostrils": nostrils,
            "eyes": eyes, "warm_skin": warm_skin, "box": (cx - a, cy - b, 2 * a, 2 * b)}


# --------------------------------------------------------------------------------------------------
# rendering over time


@dataclass
class Effects:
    """Strength of each effect (0 switches it off)."""

    pulse_amplitude: float = 0.012  # relative colour change of skin per unit (std) of the pulse
    riav: float = 0.25  # pulse-amplitude modulation by breathing (fraction)
    riiv: float = 0.002  # skin-intensity modulation by breathing (relative)
    breath_motion: float = 0.012  # vertical head motion by breathing, fraction of face height (peak)
    sway: float = 0.01  # slow random head sway, fraction of face height
    drift: float = 0.03  # slow illumination drift (relative, peak)
    light_change: float = 0.08  # one lighting step (relative), at ``light_change_at`` of the clip
    light_change_at: float = 0.6
    noise: float = 2.0  # sensor noise std in 0..255 levels
    thermal_amplitude: float = 0.08  # nostril temperature swing (0..1 scale) by breathing
    extra: dict = field(default_factory=dict)


# Side of the square box OpenCV's Haar cascade reports for a synthetic face, as a fraction of the
# face ellipse's height, and its centre offset below the ellipse centre (same unit). Measured with
# mmrphys.faces.FaceDetector on the 76 of 120 random looks it finds (160x120, 320x240, 640x480):
# side 0.93 (median 0.95, sd 0.1), centre offset 0.004 (sd 0.02). Writing this box lets synthetic
# data be cropped exactly as detected faces are (square x1.5) without running the detector.
DETECTOR_BOX_SIDE = 0.94
DETECTOR_BOX_DY = 0.004


def detector_box(ellipse_box) -> tuple[float, float, float, float]:
    """The face box a face detector reports for a face ellipse ``(x, y, w, h)``: square, ``(x, y, w, h)``."""
    x, y, w, h = (float(v) for v in ellipse_box)
    side = DETECTOR_BOX_SIDE * h
    cx, cy = x + w / 2, y + h / 2 + DETECTOR_BOX_DY * h
    return cx - side / 2, cy - side / 2, side, side


def _motion(scene: dict, phys: dict, fx: Effects, rng: np.random.Generator):
    """Per-frame illumination gain and face-layer shift (dx, dy in pixels); draws 3 numbers from ``rng``."""
    face_h = scene["box"][3]
    t, rsp = phys["t"], phys["rsp"]
    duration = max(t[-1], 1e-3)
    dphase = rng.uniform(0, 2 * np.pi, 3)
    illum = (1 + fx.drift * np.sin(2 * np.pi * t / max(duration * 1.5, 20) + dphase[0])
             + fx.light_change / (1 + np.exp(-(t - fx.light_change_at * duration) / 0.25)))
    sway_x = fx.sway * face_h * np.sin(2 * np.pi * 0.05 * t + dphase[1])
    sway_y = fx.sway * face_h * 0.5 * np.sin(2 * np.pi * 0.033 * t + dphase[2])
    dy = fx.breath_motion * face_h * rsp / max(np.abs(rsp).max(), 1e-6) + sway_y
    return illum, sway_x, dy


def face_boxes(scene: dict, phys: dict, effects: Effects | None = None, seed: int = 0) -> np.ndarray:
    """Per-frame face box ``(N, 4)`` = x, y, w, h of the frames :func:`render_frames` yields for the
    same arguments, as a face detector would report it (see :func:`detector_box`)."""
    fx = effects or Effects()
    _, dx, dy = _motion(scene, phys, fx, np.random.default_rng(seed + 7919))
    box = np.asarray(detector_box(scene["box"]), dtype=float)
    out = np.repeat(box[None], len(dx), axis=0)
    out[:, 0] += dx
    out[:, 1] += dy
    return out


def _noise_bank(rng: np.random.Generator, n: int, std: float, frames: int = 16) -> np.ndarray:
    # Noise frames read at random offsets of one flat bank (a view, no copy): as white as fresh noise
    # at pulse frequencies and ~10x cheaper than drawing n normals per frame.
    return (std * rng.standard_normal((frames + 1) * n, dtype=np.float32)).astype(np.float32)


def render_frames(scene: dict, phys: dict, effects: Effects | None = None, seed: int = 0,
                  thermal: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Yield ``(rgb uint8 HxWx3, thermal uint8 HxW or None)`` for every sample of ``phys``.

    The face box of every frame is :func:`face_boxes` with the same arguments.
    """
    fx = effects or Effects()
    rng = np.random.default_rng(seed + 7919)
    alpha = scene["alpha"].astype(np.float32)
    skin = scene["skin"].astype(np.float32)
    H, W = skin.shape
    bvp, rsp = phys["bvp"], phys["rsp"]
    illum, dx, dy = _motion(scene, phys, fx, rng)
    # Per frame, a handful of single passes over float32 images done by OpenCV (no NumPy
    # broadcasting): the pulse/breathing colour change is one per-channel factor times the skin
    # layer, the face layer and its coverage are warped, blended over the background, and the
    # illumination gain, sensor noise, rounding and saturation to uint8 are one addWeighted.
    face = scene["face"].astype(np.float32)
    skin_layer = face * skin[..., None]
    bg = scene["background"].astype(np.float32)
    still = 1 - alpha
    rsp_peak = max(float(np.abs(rsp).max()), 1e-6)
    if thermal:
        # on the 0..1 scale (synth.dataset maps it to 20 + 17 x °C): room 0.25 (24 °C), hair and
        # clothes 0.62 (30.5 °C), skin 0.85 (34.5 °C), eye sockets 0.93 (36 °C: the inner canthi are
        # the warmest spot of a face, unlike the dark eyes of an RGB face)
        warm_skin = scene.get("warm_skin", skin)
        eyes = scene.get("eyes", np.zeros_like(skin))
        warm = 0.62 + 0.23 * warm_skin + 0.08 * eyes
        therm_bg = 0.25 + 0.02 * rng.standard_normal((H, W), dtype=np.float32)
        therm_base = (255 * (warm * alpha + therm_bg * (1 - alpha))).astype(np.float32)
        therm_nostrils = (255 * scene["nostrils"] * alpha).astype(np.float32)
    n_rgb, n_th = H * W * 3, H * W
    bank = _noise_bank(rng, n_rgb, fx.noise) if fx.noise else np.zeros(n_rgb, np.float32)
    therm_bank = _noise_bank(rng, n_th, 1.0, frames=8) if thermal else None
    warp = {"flags": cv2.INTER_LINEAR, "borderMode": cv2.BORDER_REPLICATE}
    for k in range(len(bvp)):
        # blood absorbs: more blood volume -> slightly darker skin, most in green; breathing (riiv)
        # modulates the skin's intensity
        pulse = fx.pulse_amplitude * float(bvp[k]) * (1 + fx.riav * float(rsp[k]))
        factor = tuple(fx.riiv * float(rsp[k]) - pulse * float(c) for c in PBV) + (0.0,)
        layer = cv2.add(cv2.multiply(skin_layer, factor), face)
        m = np.float32([[1, 0, dx[k]], [0, 1, dy[k]]])
        a, a_bg = alpha, still
        if m[0, 2] or m[1, 2]:
            layer = cv2.warpAffine(layer, m, (W, H), **warp)
            a = cv2.warpAffine(alpha, m, (W, H), **warp)
            a_bg = 1 - a
        img = cv2.blendLinear(layer, bg, a, a_bg)
        off = int(rng.integers(16 * n_rgb)) if fx.noise else 0
        noise = bank[off: off + n_rgb].reshape(H, W, 3)
        rgb = cv2.addWeighted(img, float(illum[k]), noise, 1.0, 0.0, dtype=cv2.CV_8U)  # rounds, saturates
        th = None
        if thermal:
            # exhaled air warms the nostrils, inhaled air cools them (rsp > 0 = inhale)
            nostril = fx.thermal_amplitude * (-float(rsp[k]) / rsp_peak)
            tv = cv2.scaleAdd(therm_nostrils, nostril, therm_base)
            tv = cv2.warpAffine(tv, m, (W, H), **warp)
            off = int(rng.integers(8 * n_th))
            th = cv2.add(tv, therm_bank[off: off + n_th].reshape(H, W), dtype=cv2.CV_8U)
        yield rgb, th


# --------------------------------------------------------------------------------------------------
# writing


def write_video(path, frames: Iterable[np.ndarray], fps: float, crf: int = 12) -> int:
    """Write uint8 frames (HxWx3 RGB or HxW grey) to ``path``; the suffix picks the format:
    ``.mp4`` H.264 (``crf``; lower = better), ``.y4m`` raw yuv420p, ``.avi`` FFV1 lossless,
    ``.npy`` an (N, H, W[, 3]) array. Returns the number of frames written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ConfigError(f"unsupported clip format {suffix!r}; choose one of {', '.join(VIDEO_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        arr = np.stack(list(frames))
        np.save(path, arr)
        return len(arr)
    from fractions import Fraction

    import av

    rate = Fraction(fps).limit_denominator(1001)
    n = 0
    with av.open(str(path), mode="w", format="yuv4mpegpipe" if suffix == ".y4m" else None) as out:
        stream = None
        for frame in frames:
            if frame.ndim == 2:
                frame = np.repeat(frame[..., None], 3, axis=-1)
            if stream is None:
                h, w = frame.shape[:2]
                if suffix == ".mp4":
                    stream = out.add_stream("libx264", rate=rate)
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": str(crf), "preset": "ultrafast"}
                elif suffix == ".y4m":
                    stream = out.add_stream("rawvideo", rate=rate)
                    stream.pix_fmt = "yuv420p"
                else:
                    stream = out.add_stream("ffv1", rate=rate)
                    stream.pix_fmt = "bgr0"
                stream.width, stream.height = w - w % 2, h - h % 2
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[: stream.height, : stream.width]),
                                            format="rgb24")
            for packet in stream.encode(vf):
                out.mux(packet)
            n += 1
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    return n


# The thermal view is rendered on a 0..1 scale; in °C it is THERMAL_OFFSET_C + THERMAL_SPAN_C * value
# (room ~24 °C, skin ~34.5 °C).
THERMAL_OFFSET_C, THERMAL_SPAN_C = 20.0, 17.0


def thermal_celsius(th_u8: np.ndarray) -> np.ndarray:
    """A rendered thermal frame (uint8, :func:`render_frames`) in °C (float32)."""
    return (THERMAL_OFFSET_C + THERMAL_SPAN_C / 255.0 * th_u8.astype(np.float32)).astype(np.float32)


def make_clip(path, hr_bpm: float = 84.0, rr_bpm: float = 14.0, duration_s: float = 30.0, fps: float = 30.0,
              size=(320, 240), thermal: bool = False, seed: int = 0, look: FaceLook | None = None,
              effects: Effects | None = None, crf: int = 12, thermal_suffix: str | None = None,
              thermal_size=None) -> dict:
    """Render a face clip with known pulse and breathing to ``path`` (.mp4/.y4m/.avi/.npy).

    ``size`` is (width, height). Writes the ground truth next to it: ``<stem>.json`` (rates,
    settings, beat times) and ``<stem>.csv`` (per-frame ``t_s, bvp, rsp, hr_bpm, rr_bpm``). With
    ``thermal=True`` also writes ``<stem>_thermal<suffix>``: the thermal view of the same scene (warm
    face, cooler hair and clothes, nostrils cooling on inhale and warming on exhale), as a grey video
    (``thermal_suffix`` = the video's suffix by default) or, with ``thermal_suffix=".npy"``, as an
    (N, H, W) float32 array in °C with its frame times in ``<stem>_thermal.timestamps.npy``;
    ``thermal_size`` (width, height) renders it at another resolution
    (default: ``size``). Returns the truth dict (``hr_bpm``, ``rr_bpm``, ``fps``, ``n_frames``,
    ``duration_s``, ``face_box``, ``video``, ``truth_json``, ``truth_csv``, ``thermal_video``).
    """
    path = Path(path)
    if duration_s <= 0 or fps <= 0:
        raise ConfigError(f"duration_s and fps must be positive, got {duration_s}, {fps}")
    width, height = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if width < 64 or height < 64:
        raise ConfigError(f"clip size must be at least 64x64 for a detectable face, got {width}x{height}")
    look = look or FaceLook()
    effects = effects or Effects()
    phys = physiology(hr_bpm, rr_bpm, duration_s, fps, seed=seed)
    scene = draw_face(width, height, look, seed=seed)
    thermal_path = path.with_name(f"{path.stem}_thermal{thermal_suffix or path.suffix}") if thermal else None
    therm_frames: list[np.ndarray] = []
    t_size = None if thermal_size is None else (int(thermal_size[0]), int(thermal_size[1]))

    def rgb_only():
        for rgb, th in render_frames(scene, phys, effects, seed=seed, thermal=thermal):
            if th is not None:
                if t_size is not None and t_size != (width, height):
                    th = cv2.resize(th, t_size, interpolation=cv2.INTER_AREA)
                therm_frames.append(th)
            yield rgb

    n = write_video(path, rgb_only(), fps, crf=crf)
    if thermal_path is not None and thermal_path.suffix.lower() == ".npy":  # + its frame times (s)
        np.save(thermal_path, np.stack([thermal_celsius(th) for th in therm_frames]))
        np.save(thermal_path.with_name(f"{thermal_path.stem}.timestamps.npy"), phys["t"][: len(therm_frames)])
    elif thermal_path is not None:
        write_video(thermal_path, therm_frames, fps, crf=crf)
    truth = {
        "hr_bpm": phys["hr_bpm"], "rr_bpm": phys["rr_bpm"], "fps": float(fps), "n_frames": int(n),
        "duration_s": n / fps, "size": [width, height], "seed": int(seed),
        "face_box": [float(v) for v in scene["box"]], "video": str(path),
        "thermal_video": str(thermal_path) if thermal_path else None,
        "truth_json": str(path.with_suffix(".json")), "truth_csv": str(path.with_suffix(".csv")),
        "beats_s": [round(float(b), 4) for b in phys["beats_s"]],
        "look": look.to_dict(), "effects": asdict(effects),
    }
    Path(truth["truth_json"]).write_text(json.dumps(truth, indent=1))
    with open(truth["truth_csv"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t_s", "bvp", "rsp", "hr_bpm", "rr_bpm"])
        for row in zip(phys["t"], phys["bvp"], phys["rsp"], phys["hr_inst"], phys["rr_inst"]):
            w.writerow([f"{row[0]:.4f}"] + [f"{v:.5f}" for v in row[1:]])
    return truth

