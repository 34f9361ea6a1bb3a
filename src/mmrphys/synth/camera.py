"""Light and camera for the re-animated clips: illumination, flicker, shadows, auto-exposure and
white balance, sensor noise, and the H.264 round trip.

Everything the light and the camera's gains do is multiplicative, so it is applied in the
gamma-encoded domain as per-frame channel gains times a one-channel spatial map (a gain ``g`` in
linear light is ``g ** (1 / GAMMA)`` in encoded values). :func:`draw_light` draws the plan of a whole
clip; :meth:`LightPlan.spatial` gives a frame's map (or None when the light is uniform);
:func:`h264_roundtrip` encodes frames with libx264 (PyAV) at a CRF and decodes them again.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from mmrphys.errors import ConfigError
from mmrphys.synth.optics import GAMMA


@dataclass
class LightPlan:
    """Per-frame channel gains ``gain`` (n, 3) in the encoded domain and the parameters of the
    spatial effects (rolling-shutter flicker bands, a moving shadow edge, a left-right light ratio)."""

    gain: np.ndarray
    flicker: dict | None = None
    shadow: dict | None = None
    ramp: np.ndarray | None = None  # (n,) left-right gain slope per canvas width
    info: dict = field(default_factory=dict)

    def spatial(self, k: int, grids: dict) -> np.ndarray | None:
        """The (N, N) float32 multiplicative map of frame ``k`` (None: uniform). ``grids`` from
        :func:`canvas_grids`."""
        m = None
        if self.flicker is not None:
            f = self.flicker
            # rows are read out one after another: the flicker's phase moves down the frame
            phase = f["phase"][k] + f["rad_per_row"] * grids["row"]
            rows = 1.0 + f["amp"] * np.cos(phase).astype(np.float32)
            m = np.broadcast_to(rows[:, None], grids["x"].shape).astype(np.float32)
        if self.ramp is not None and self.ramp[k] != 0:
            r = 1.0 + float(self.ramp[k]) * grids["x"]
            m = r if m is None else m * r
        if self.shadow is not None:
            s = self.shadow
            d = (grids["x"] * s["dir"][0] + grids["y"] * s["dir"][1] - s["pos"][k]) / s["width"]
            shade = 1.0 - s["depth"] / (1.0 + np.exp(-np.clip(d, -30, 30)))
            m = shade.astype(np.float32) if m is None else m * shade.astype(np.float32)
        return m


def canvas_grids(h: int, w: int) -> dict:
    """Coordinates of an h x w view: ``x``, ``y`` in -0.5..0.5 of the width (float32) and ``row`` indices."""
    cx = (np.arange(w, dtype=np.float32) + 0.5) / w - 0.5
    cy = (np.arange(h, dtype=np.float32) - h / 2 + 0.5) / w
    y, x = np.meshgrid(cy, cx, indexing="ij")
    return {"x": x, "y": y, "row": np.arange(h, dtype=np.float32)}


def smooth_noise(rng, n: int, fs: float, cutoff_hz: float) -> np.ndarray:
    """Zero-mean, unit-peak random signal band-limited below ``cutoff_hz``."""
    spec = np.fft.rfft(rng.standard_normal(n + 64))
    f = np.fft.rfftfreq(n + 64, 1 / fs)
    spec[f > cutoff_hz] = 0
    x = np.fft.irfft(spec, n + 64)[32 : 32 + n]
    x -= x.mean()
    return x / max(np.abs(x).max(), 1e-9)


def _lowpass(x: np.ndarray, fs: float, tau_s: float) -> np.ndarray:
    """First-order lag (auto-exposure / white-balance loop), starting settled at x[0]."""
    a = 1.0 - np.exp(-1.0 / (fs * max(tau_s, 1e-3)))
    out = np.empty_like(x)
    acc = x[0]
    for i, v in enumerate(x):
        acc = acc + a * (v - acc)
        out[i] = acc
    return out


def _steps(
    rng, t: np.ndarray, n_max: int, size: tuple[float, float], dur_s: tuple[float, float]
) -> np.ndarray:
    """Sum of up to ``n_max`` smooth steps of random sign/size/time/duration (relative change)."""
    out = np.zeros_like(t)
    for _ in range(rng.integers(1, n_max + 1)):
        at, d = rng.uniform(t[0], t[-1]), rng.uniform(*dur_s)
        out += (
            rng.choice([-1, 1])
            * rng.uniform(*size)
            * (1 / (1 + np.exp(-np.clip((t - at) / (d / 6), -30, 30))))
        )
    return out


def draw_light(
    rng: np.random.Generator, n: int, fs: float, canvas_px: int, strength: float = 1.0
) -> LightPlan:
    """Light and camera gains of one clip of ``n`` frames (``strength`` 0 gives a constant, neutral plan)."""
    t = np.arange(n) / fs
    info: dict = {}
    if strength <= 0:
        return LightPlan(gain=np.ones((n, 3), np.float32), info={"static": True})
    # scene illumination (linear light): slow drift and sometimes steps (lamps, clouds, a door)
    illum = 1.0 + strength * rng.uniform(0, 0.06) * smooth_noise(rng, n, fs, rng.uniform(0.05, 0.4))
    if rng.uniform() < 0.2 * strength:
        illum *= np.exp(_steps(rng, t, 2, (0.05, 0.3), (0.05, 0.6)))
        info["steps"] = True
    shadow = None
    if rng.uniform() < 0.1 * strength:
        d = rng.normal(size=2)
        speed = rng.uniform(0.1, 0.8)  # canvas widths per second
        start = rng.uniform(-0.9, 0.3)
        shadow = {
            "dir": d / np.linalg.norm(d),
            "depth": rng.uniform(0.1, 0.45),
            "width": rng.uniform(0.03, 0.2),
            "pos": (start + speed * (t - rng.uniform(0, t[-1] + 1e-9))),
        }
        info["shadow"] = True
    ramp = None
    if rng.uniform() < 0.25 * strength:
        ramp = (rng.uniform(-0.15, 0.15) + rng.uniform(0, 0.15) * smooth_noise(rng, n, fs, 0.3)).astype(
            np.float32
        )
        info["side_light"] = True
    # camera: auto-exposure pulls the mean back with a lag (partly), white balance drifts
    exposure = rng.uniform(0.7, 1.3)
    ae = np.ones(n)
    if rng.uniform() < 0.6:
        kappa, tau = rng.uniform(0.3, 1.0), rng.uniform(0.2, 2.0)
        mean_light = illum * (1 - (0.5 * shadow["depth"] if shadow is not None else 0.0))
        ae = np.power(1.0 / _lowpass(mean_light, fs, tau), kappa)
        if rng.uniform() < 0.2:  # exposure moves in steps of 1/12 EV
            ae = np.power(2.0, np.round(np.log2(ae) * 12) / 12)
        info["auto_exposure"] = {"kappa": kappa, "tau_s": tau}
    cast = np.exp(rng.normal(0, 0.06, 3))
    wb = np.ones((n, 3))
    if rng.uniform() < 0.4 * strength:
        temp = strength * rng.uniform(0, 0.03) * smooth_noise(rng, n, fs, 0.2)
        temp = _lowpass(temp, fs, rng.uniform(0.5, 3.0))
        wb = np.exp(np.stack([temp, np.zeros(n), -temp], axis=1))
        info["white_balance_drift"] = True
    lin_gain = (illum * ae * exposure)[:, None] * cast[None] * wb
    flicker = None
    if rng.uniform() < 0.2 * strength:
        f_mains = float(rng.choice([100.0, 120.0]))
        fs_true = fs * rng.uniform(0.99, 1.01)
        alias = f_mains - np.round(f_mains / fs_true) * fs_true
        readout_s = rng.uniform(0.3, 0.9) / fs  # rolling shutter: time to read the whole frame
        rows_in_frame = canvas_px / rng.uniform(0.35, 0.7)  # our canvas is part of a taller frame
        flicker = {
            "amp": strength * rng.uniform(0.001, 0.01) / GAMMA,
            "phase": (2 * np.pi * alias * t + rng.uniform(0, 2 * np.pi)).astype(np.float32),
            "rad_per_row": float(2 * np.pi * f_mains * readout_s / rows_in_frame),
            "f_mains": f_mains,
            "alias_hz": float(alias),
        }
        info["flicker_alias_hz"] = float(alias)
    if rng.uniform() < 0.08 * strength:  # PWM-dimmed LED: an arbitrary alias, global
        f_pwm, amp = rng.uniform(0.3, fs / 2), strength * rng.uniform(0.001, 0.01)
        lin_gain *= (1 + amp * np.sin(2 * np.pi * f_pwm * t + rng.uniform(0, 6.3)))[:, None]
        info["pwm_alias_hz"] = float(f_pwm)
    gain = np.power(lin_gain, 1.0 / GAMMA).astype(np.float32)
    return LightPlan(gain=gain, flicker=flicker, shadow=shadow, ramp=ramp, info=info)


@dataclass
class Sensor:
    """Sensor noise in encoded levels: std ``sqrt(read**2 + shot * level)`` at the view's mean level
    (read noise plus photon shot noise), fresh in every frame."""

    read: float = 1.0
    shot: float = 0.02

    @classmethod
    def draw(cls, rng: np.random.Generator, strength: float = 1.0) -> Sensor:
        return cls(read=strength * rng.uniform(0.3, 2.5), shot=strength * rng.uniform(0.005, 0.08))


@functools.lru_cache(maxsize=1)
def white_noise(n: int = 1 << 22) -> np.ndarray:
    """A fixed bank of unit normal float32 samples (same in every process); frames of sensor noise are
    read from it at random offsets, as white as fresh noise and much cheaper."""
    bank = np.random.default_rng(20240611).standard_normal(n, dtype=np.float32)
    bank.flags.writeable = False
    return bank


def h264_roundtrip(
    frames: list[np.ndarray], fps: float, crf: float, preset: str = "veryfast", keyint: int = 250
) -> tuple[list, int]:
    """Encode RGB uint8 frames (H, W multiples of 16: libx264 through FFmpeg gives different streams
    for the same frames at other heights) with libx264 in yuv420p at ``crf`` and decode them again.

    Returns the decoded PyAV frames (yuv420p; wrap them in :class:`mmrphys.video.frame.YUVFrame`) and
    the size of the encoded stream in bytes. One thread each way, so the result depends only on the
    input.
    """
    import av

    h, w = frames[0].shape[:2]
    if h % 16 or w % 16:
        raise ConfigError(f"h264_roundtrip needs frame sides that are multiples of 16, got {w}x{h}")
    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as out:
        st = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.thread_count = 1
        st.options = {
            "crf": f"{crf:.1f}",
            "preset": preset,
            "threads": "1",
            "keyint": str(keyint),
            # macroblock-tree rate control (on in the UBFC-rPPG encodes) makes this libx264 give
            # different streams for the same frames; off, the same frames always give the same stream
            "x264-params": "threads=1:lookahead-threads=1:sliced-threads=0:mbtree=0",
        }
        for k, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = k  # unset timestamps make x264's rate control (mbtree) non-deterministic
            for p in st.encode(vf):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    n_bytes = buf.tell()
    buf.seek(0)
    with av.open(buf, "r", format="h264") as inp:
        s = inp.streams.video[0]
        s.thread_count = 1
        s.thread_type = "SLICE"
        decoded = list(inp.decode(s))
    return decoded, n_bytes
