"""Synthetic clips with several faces, each with its own pulse, breathing, path and absences.

:func:`make_multi_clip` writes the video (any :func:`~mmrphys.synth.clip.write_video` format) and its
ground truth: ``<stem>.json`` (per face: rates, look, path, absences) and ``<stem>.csv`` (per frame
and face: ``bvp_<k>``, ``rsp_<k>``, the detector-style box ``x_<k>, y_<k>, w_<k>, h_<k>`` and
``visible_<k>``; faces are numbered 1, 2, ... in the order given). Faces are drawn in that order, a
later face in front of an earlier one where they cross.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np

from mmrphys.errors import ConfigError
from mmrphys.synth.clip import (
    PBV,
    Effects,
    FaceLook,
    _motion,
    _noise_bank,
    detector_box,
    draw_face,
    physiology,
    write_video,
)

#: Rates given to faces 1-4 when none are chosen: pulse and breathing rates far apart.
DEFAULT_RATES = ((60.0, 10.0), (90.0, 16.0), (120.0, 22.0), (75.0, 13.0))
#: Skin and hair of faces 1-4 (each found by the Haar cascade at 240 px frame height).
LOOKS = (((205, 150, 120), (60, 40, 30)), ((170, 120, 90), (30, 22, 18)), ((225, 180, 155), (120, 80, 40)),
         ((185, 130, 100), (45, 35, 30)))


def face_layout(n: int) -> list[dict]:
    """Default specs for ``n`` faces (1-4): side by side, the first slightly larger (the main face)."""
    if not 1 <= n <= len(DEFAULT_RATES):
        raise ConfigError(f"a multi-face clip has 1 to {len(DEFAULT_RATES)} faces, got {n}")
    return [{"hr_bpm": DEFAULT_RATES[k][0], "rr_bpm": DEFAULT_RATES[k][1], "center": ((k + 0.5) / n, 0.5),
             "face_height": 0.5 if k == 0 else 0.44} for k in range(n)]


def _path_offsets(spec: dict, t: np.ndarray, size) -> np.ndarray:
    """(N, 2) pixel offsets of the face from its start centre along ``spec["path"]``: waypoints
    ``[(t_s, x_frac, y_frac), ...]`` linearly interpolated (held before the first and after the last)."""
    path = spec.get("path")
    if not path:
        return np.zeros((t.size, 2))
    w, h = size
    pts = np.asarray(path, dtype=float)
    cx0, cy0 = spec["center"]
    return np.stack([(np.interp(t, pts[:, 0], pts[:, 1]) - cx0) * w,
                     (np.interp(t, pts[:, 0], pts[:, 2]) - cy0) * h], axis=1)


def _visible(spec: dict, t: np.ndarray) -> np.ndarray:
    vis = np.ones(t.size, dtype=bool)
    for t0, t1 in spec.get("absent", ()):
        vis &= ~((t >= t0) & (t < t1))
    return vis


def render_multi_frames(scenes: list[dict], physes: list[dict], offsets: list[np.ndarray],
                        visible: list[np.ndarray], effects: Effects | None = None,
                        seed: int = 0) -> Iterator[np.ndarray]:
    """RGB uint8 frames of several faces over one background (the first scene's), each face with its
    own pulse colour change and breathing motion, moved by ``offsets[k]`` (N, 2) and drawn where
    ``visible[k]``; illumination drift and sensor noise are shared."""
    fx = effects or Effects()
    rng = np.random.default_rng(seed + 7919)
    H, W = scenes[0]["skin"].shape
    bg = scenes[0]["background"].astype(np.float32)
    faces = []
    for scene, phys in zip(scenes, physes):
        illum, dx, dy = _motion(scene, phys, fx, rng)
        face = scene["face"].astype(np.float32)
        faces.append((illum, dx, dy, face * scene["skin"].astype(np.float32)[..., None], face,
                      scene["alpha"].astype(np.float32)))
    illum = faces[0][0]
    n_rgb = H * W * 3
    bank = _noise_bank(rng, n_rgb, fx.noise) if fx.noise else np.zeros(n_rgb, np.float32)
    warp = {"flags": cv2.INTER_LINEAR, "borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    for k in range(len(physes[0]["bvp"])):
        img = bg.copy()
        for (_, dx, dy, skin_layer, face, alpha), phys, off, vis in zip(faces, physes, offsets, visible):
            if not vis[k]:
                continue
            bvp, rsp = float(phys["bvp"][k]), float(phys["rsp"][k])
            pulse = fx.pulse_amplitude * bvp * (1 + fx.riav * rsp)
            factor = tuple(fx.riiv * rsp - pulse * float(c) for c in PBV) + (0.0,)
            layer = cv2.add(cv2.multiply(skin_layer, factor), face)
            m = np.float32([[1, 0, dx[k] + off[k, 0]], [0, 1, dy[k] + off[k, 1]]])
            layer = cv2.warpAffine(layer, m, (W, H), **warp)
            a = cv2.warpAffine(alpha, m, (W, H), **warp)
            img = cv2.blendLinear(layer, img, a, 1 - a)
        off = int(rng.integers(16 * n_rgb)) if fx.noise else 0
        noise = bank[off: off + n_rgb].reshape(H, W, 3)
        yield cv2.addWeighted(img, float(illum[k]), noise, 1.0, 0.0, dtype=cv2.CV_8U)


def make_multi_clip(path, faces: list[dict] | int = 2, duration_s: float = 30.0, fps: float = 30.0,
                    size=None, seed: int = 0, effects: Effects | None = None, crf: int = 12) -> dict:
    """Write a clip with several faces to ``path`` and its ground truth next to it.

    ``faces``: a count (1-4, laid out by :func:`face_layout`) or a list of specs, each a dict with
    ``hr_bpm``, ``rr_bpm``, ``center`` (x, y as fractions of the frame), ``face_height`` (fraction
    of the frame height), optionally ``path`` (waypoints ``[(t_s, x_frac, y_frac), ...]``), ``absent``
    (``[(t0_s, t1_s), ...]`` when the face is out of the picture) and ``look`` (a :class:`FaceLook`).
    ``size``: (width, height), default 160 px per face (at least 320) by 240. Returns the truth dict
    (``faces``: per face ``hr_bpm``, ``rr_bpm``, ``box`` (median detector-style box), ...; ``video``,
    ``truth_json``, ``truth_csv``, ``n_frames``, ``fps``).
    """
    specs = face_layout(faces) if isinstance(faces, (int, np.integer)) else [dict(f) for f in faces]
    if not specs:
        raise ConfigError("a multi-face clip needs at least one face")
    if duration_s <= 0 or fps <= 0:
        raise ConfigError(f"duration_s and fps must be positive, got {duration_s}, {fps}")
    width, height = size or (max(320, 160 * len(specs)), 240)
    if min(width, height) < 64:
        raise ConfigError(f"clip size must be at least 64x64, got {width}x{height}")
    path = Path(path)
    effects = effects or Effects()
    scenes, physes, offsets, visible, boxes = [], [], [], [], []
    for k, spec in enumerate(specs):
        spec.setdefault("center", ((k + 0.5) / len(specs), 0.5))
        spec.setdefault("face_height", 0.45)
        skin, hair = LOOKS[k % len(LOOKS)]
        look = spec.get("look") or FaceLook(skin_rgb=skin, hair_rgb=hair)
        look = replace(look, center=tuple(spec["center"]), face_height=float(spec["face_height"]))
        spec["look"] = look
        phys = physiology(spec["hr_bpm"], spec["rr_bpm"], duration_s, fps, seed=seed + 101 * k)
        scene = draw_face(width, height, look, seed=seed + 101 * k)
        off = _path_offsets(spec, phys["t"], (width, height))
        scenes.append(scene)
        physes.append(phys)
        offsets.append(off)
        visible.append(_visible(spec, phys["t"]))
        box = np.repeat(np.asarray(detector_box(scene["box"]), float)[None], phys["t"].size, axis=0)
        box[:, :2] += off
        boxes.append(box)
    # the boxes follow the path; the small breathing and sway motion (about 1 % of the face height) is
    # drawn from render_multi_frames' own random stream and left out of them
    n = write_video(path, render_multi_frames(scenes, physes, offsets, visible, effects, seed), fps, crf=crf)
    truth = {
        "fps": float(fps), "n_frames": int(n), "duration_s": n / fps, "size": [width, height],
        "seed": int(seed),
        "video": str(path), "truth_json": str(path.with_suffix(".json")),
        "truth_csv": str(path.with_suffix(".csv")), "effects": asdict(effects),
        "faces": [{"face": k + 1, "hr_bpm": physes[k]["hr_bpm"], "rr_bpm": physes[k]["rr_bpm"],
                   "center": list(spec["center"]), "face_height": spec["face_height"],
                   "path": spec.get("path"), "absent": spec.get("absent"),
                   "box": [float(v) for v in np.median(boxes[k][visible[k]], axis=0)]
                   if visible[k].any() else None,
                   "look": spec["look"].to_dict()} for k, spec in enumerate(specs)],
    }
    Path(truth["truth_json"]).write_text(json.dumps(truth, indent=1))
    with open(truth["truth_csv"], "w", newline="") as fh:
        w = csv.writer(fh)
        head = ["t_s"]
        for k in range(len(specs)):
            head += [f"{c}_{k + 1}" for c in ("bvp", "rsp", "x", "y", "w", "h", "visible")]
        w.writerow(head)
        for i, t in enumerate(physes[0]["t"]):
            row = [f"{t:.4f}"]
            for k in range(len(specs)):
                row += [f"{physes[k]['bvp'][i]:.5f}", f"{physes[k]['rsp'][i]:.5f}"]
                row += [f"{v:.1f}" for v in boxes[k][i]] + [int(visible[k][i])]
            w.writerow(row)
    return truth
