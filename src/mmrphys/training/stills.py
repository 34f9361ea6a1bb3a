"""Face stills for re-animation, taken only from the videos the caller passes.

:meth:`StillBank.from_videos` reads each video once (streaming), and at a few evenly spaced moments
takes a short segment (``segment_s``, default 1.5 s): the project's face detector finds the face in
the segment's middle frame, a square region around it is cut from every frame of the segment (the
training crop, square box x1.5, plus a margin of x1.3 for motion), the frames are registered to the
middle one (phase correlation; frames that moved are dropped) and averaged per pixel (a trimmed
mean). Averaging over >= 1 s removes the subject's own pulse and most sensor noise, so the still
carries no pulse and no noise of its own: the renderer adds both, with known values. Segments that
are too dark, saturated or moving are skipped; the best ``per_video`` are kept.

Each :class:`Still` also holds a soft skin mask (YCrCb skin colours inside the face region), a
person/background matte (GrabCut from the face box) with an inpainted background plate (so the head
can move in front of a still background), and eye positions (Haar eye cascade, else the usual
place in the face box). The bank saves to and loads from one ``.npz`` file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mmrphys.errors import InputError

STILL_PX = 256  # side of a stored still (the training crop spans STILL_PX / REGION_MARGIN of it)
CROP_SCALE = 1.5  # training crop = square face box x1.5 (mmrphys.faces.square_box)
REGION_MARGIN = 1.3  # still = training crop x1.3, room for the face to move
FORMAT = "mmrphys-stills/1"
GENERIC_VIDEO_STEMS = ("vid", "video", "rgb", "camera")

# Face landmarks as fractions of the detected (Haar) face box: x, y. Used where the eye cascade
# finds nothing, and always for the mouth, forehead and cheeks.
EYES = ((0.31, 0.40), (0.69, 0.40))
MOUTH = (0.5, 0.80)
FOREHEAD = (0.5, 0.14)
CHEEKS = ((0.27, 0.64), (0.73, 0.64))


@dataclass
class Still:
    """One face still: ``image`` (P, P, 3) uint8 RGB, ``skin`` and ``matte`` (P, P) uint8 (255 = skin /
    person), ``background`` (P, P, 3) uint8 (the scene without the person), ``face_box`` (x, y, w, h)
    in still pixels (the detector's box), ``eyes`` ((x, y), (x, y)) in still pixels."""

    image: np.ndarray
    skin: np.ndarray
    matte: np.ndarray
    background: np.ndarray
    face_box: tuple[float, float, float, float]
    eyes: tuple[tuple[float, float], tuple[float, float]]
    subject: str
    source: str
    t_s: float
    info: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.image.shape[0])

    def landmark(self, fx: float, fy: float) -> tuple[float, float]:
        """Still pixel of the point at fractions (fx, fy) of the face box."""
        x, y, w, h = self.face_box
        return x + fx * w, y + fy * h


def default_subject(path) -> str:
    """Subject id of a video path: its folder's name for generic file names (``subject3/vid.mp4``),
    else the file's stem."""
    p = Path(path)
    return p.parent.name if p.stem.lower() in GENERIC_VIDEO_STEMS and p.parent.name else p.stem


# ------------------------------------------------------------------------------------- extraction
def _region(box, frame_shape) -> tuple[float, float, float]:
    """Centre (x, y) and side of the still's region around a face box, in frame pixels."""
    x, y, w, h = (float(v) for v in box[:4])
    return x + w / 2, y + h / 2, max(w, h) * CROP_SCALE * REGION_MARGIN


def _cut(frame: np.ndarray, cx: float, cy: float, side: float, px: int) -> np.ndarray:
    """The square region (centre, side in frame pixels) as px x px float32 (area resize), edges
    replicated where it leaves the frame."""
    h, w = frame.shape[:2]
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    n = int(round(side))
    pad = (max(0, -y0), max(0, y0 + n - h), max(0, -x0), max(0, x0 + n - w))
    roi = frame[max(0, y0) : y0 + n, max(0, x0) : x0 + n]
    if any(pad):
        roi = cv2.copyMakeBorder(roi, *pad, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if n > px else cv2.INTER_LINEAR
    return cv2.resize(roi, (px, px), interpolation=interp).astype(np.float32)


def _average(cuts: list[np.ndarray], max_shift_px: float) -> tuple[np.ndarray, dict] | None:
    """Register the cuts to the middle one and take a per-pixel trimmed mean; None if it moved too much."""
    ref = cuts[len(cuts) // 2]
    grey = [cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in cuts]
    win = cv2.createHanningWindow(grey[0].shape[::-1], cv2.CV_32F)
    kept, shifts = [], []
    for c, g in zip(cuts, grey):
        (dx, dy), response = cv2.phaseCorrelate(grey[len(cuts) // 2], g, win)
        shifts.append(float(np.hypot(dx, dy)))
        if np.hypot(dx, dy) > max_shift_px:
            continue
        m = np.float32([[1, 0, -dx], [0, 1, -dy]])
        kept.append(
            cv2.warpAffine(c, m, c.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        )
    if len(kept) < max(2, len(cuts) // 2):
        return None
    stack = np.sort(np.stack(kept), axis=0)
    q = len(kept) // 4
    mean = stack[q : len(kept) - q].mean(axis=0)
    residual = float(np.mean([np.abs(k - mean).mean() for k in kept]))
    return mean, {
        "frames": len(kept),
        "of": len(cuts),
        "max_shift_px": max(shifts),
        "residual": residual,
        "ref_diff": float(np.abs(ref - mean).mean()),
    }


def _eyes(img: np.ndarray, face_box) -> tuple[tuple[float, float], tuple[float, float]]:
    """Eye centres from OpenCV's eye cascade in the face box's upper half, else the usual places."""
    x, y, w, h = face_box
    default = tuple((x + fx * w, y + fy * h) for fx, fy in EYES)
    path = Path(cv2.data.haarcascades) / "haarcascade_eye.xml"
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():  # pragma: no cover - broken OpenCV install
        return default
    x0, y0, x1, y1 = int(x), int(y + 0.15 * h), int(x + w), int(y + 0.6 * h)
    grey = cv2.equalizeHist(cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY))
    found = cascade.detectMultiScale(
        grey, 1.1, 3, minSize=(int(0.12 * w), int(0.12 * w)), maxSize=(int(0.4 * w), int(0.4 * w))
    )
    eyes = []
    for side, (dx, dy) in zip((0, 1), default):
        cands = [(ex + ew / 2 + x0, ey + eh / 2 + y0) for ex, ey, ew, eh in np.reshape(found, (-1, 4))]
        cands = [
            c
            for c in cands
            if (c[0] < x + w / 2) == (side == 0) and abs(c[0] - dx) < 0.15 * w and abs(c[1] - dy) < 0.15 * h
        ]
        eyes.append(min(cands, key=lambda c: np.hypot(c[0] - dx, c[1] - dy)) if cands else (dx, dy))
    return tuple(eyes)


def _skin(img: np.ndarray, face_box, matte: np.ndarray, eyes) -> np.ndarray:
    """Soft skin mask: pixels of the person whose chroma is close to the face centre's (the subject's
    own skin colour, so any lighting or tone works) and that are not much darker (hair, brows, eyes).
    Inside the face the chroma test is waived (shaded eye sockets, red lips are skin too) except on
    the eyes themselves."""
    x, y, w, h = face_box
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    seed = np.zeros(img.shape[:2], np.uint8)
    cv2.ellipse(seed, (int(x + w / 2), int(y + 0.55 * h)), (int(0.28 * w), int(0.3 * h)), 0, 0, 360, 255, -1)
    pts = ycc[seed > 0]
    pts = pts[pts[:, 0] >= np.percentile(pts[:, 0], 25)]  # drop the darkest (nostrils, beard, shadow)
    med = np.median(pts, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(pts - med), axis=0), (4.0, 2.0, 2.0))
    d2 = ((ycc[..., 1] - med[1]) / (2.5 * spread[1])) ** 2 + ((ycc[..., 2] - med[2]) / (2.5 * spread[2])) ** 2
    chroma = np.exp(-0.5 * np.maximum(d2 - 1.0, 0.0))
    luma = np.clip((ycc[..., 0] / med[0] - 0.45) / 0.25, 0.0, 1.0)
    inner = np.zeros(img.shape[:2], np.uint8)
    cv2.ellipse(
        inner, (int(x + w / 2), int(y + 0.55 * h)), (int(0.38 * w), int(0.42 * h)), 0, 0, 360, 255, -1
    )
    for ex, ey in eyes:
        cv2.ellipse(inner, (int(ex), int(ey)), (int(0.09 * w), int(0.045 * h)), 0, 0, 360, 0, -1)
    inner = cv2.GaussianBlur(inner.astype(np.float32) / 255, (0, 0), 0.03 * w)
    dark_ok = np.clip((ycc[..., 0] / med[0] - 0.3) / 0.25, 0.0, 1.0)  # brows and beard stay out
    mask = np.maximum(chroma * luma, inner * dark_ok) * (matte.astype(np.float32) / 255)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, img.shape[0] / 150))
    return np.clip(255 * mask, 0, 255).astype(np.uint8)


def _matte(img: np.ndarray, face_box) -> tuple[np.ndarray, np.ndarray]:
    """Soft person matte (GrabCut started from the face box) and the background with the person
    inpainted, both at the image's size."""
    px = img.shape[0]
    k = 128 / px
    small = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
    x, y, w, h = (v * k for v in face_box)
    mask = np.full((128, 128), cv2.GC_PR_BGD, np.uint8)
    cx, cy = x + w / 2, y + h / 2
    cv2.ellipse(
        mask, (int(cx), int(cy - 0.1 * h)), (int(0.75 * w), int(0.9 * h)), 0, 0, 360, cv2.GC_PR_FGD, -1
    )
    cv2.rectangle(mask, (int(cx - 1.1 * w), int(cy + 0.7 * h)), (int(cx + 1.1 * w), 127), cv2.GC_PR_FGD, -1)
    cv2.ellipse(mask, (int(cx), int(cy + 0.05 * h)), (int(0.3 * w), int(0.38 * h)), 0, 0, 360, cv2.GC_FGD, -1)
    mask[: int(cy), : max(2, int(cx - 1.0 * w))] = cv2.GC_BGD
    mask[: int(cy), min(126, int(cx + 1.0 * w)) :] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(small, mask, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # degenerate colour statistics (e.g. a flat test image): keep the prior
        pass
    fg = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    # keep the component holding the face; fill holes
    n, lab = cv2.connectedComponents(fg)
    if n > 2:
        keep = lab[int(min(127, cy)), int(min(127, cx))]
        if keep:
            fg = np.where(lab == keep, 255, 0).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    hole = cv2.dilate(fg, np.ones((5, 5), np.uint8))
    bg = cv2.inpaint(small, hole, 6, cv2.INPAINT_TELEA)
    bg = cv2.GaussianBlur(bg, (0, 0), 1.0)
    matte = cv2.GaussianBlur(cv2.resize(fg, (px, px), interpolation=cv2.INTER_LINEAR), (0, 0), 1.5 / k)
    bg_full = cv2.resize(bg, (px, px), interpolation=cv2.INTER_CUBIC)
    # the background outside the person keeps its full-resolution detail
    a = (matte.astype(np.float32) / 255)[..., None]
    hole_full = cv2.resize(hole, (px, px)).astype(np.float32)[..., None] / 255
    hole_full = np.maximum(hole_full, a)
    background = (hole_full * bg_full + (1 - hole_full) * img).astype(np.uint8)
    return matte, background


def make_still(
    frames: list[np.ndarray], box, subject: str, source: str, t_s: float, px: int = STILL_PX
) -> Still | None:
    """A still from consecutive RGB frames and the face box of the middle one; None when the segment
    moves too much, or the face is too dark or saturated."""
    cx, cy, side = _region(box, frames[0].shape)
    cuts = [_cut(f, cx, cy, side, px) for f in frames]
    avg = _average(cuts, max_shift_px=0.03 * px)
    if avg is None:
        return None
    mean, info = avg
    img = np.clip(np.round(mean), 0, 255).astype(np.uint8)
    fside = px / (CROP_SCALE * REGION_MARGIN)
    scale = px / side
    bw, bh = float(box[2]) * scale, float(box[3]) * scale
    face_box = (px / 2 - bw / 2, px / 2 - bh / 2, bw, bh)
    fb = [int(v) for v in face_box]
    face = img[max(0, fb[1]) : fb[1] + fb[3], max(0, fb[0]) : fb[0] + fb[2]]
    luma = float(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).mean())
    saturated = float((face.max(axis=2) >= 250).mean())
    info |= {
        "luma": luma,
        "saturated": saturated,
        "native_crop_px": side / REGION_MARGIN,
        "face_px": float(max(box[2], box[3])),
        "still_face_px": fside,
    }
    if not 40 <= luma <= 220 or saturated > 0.03:
        return None
    matte, background = _matte(img, face_box)
    eyes = _eyes(img, face_box)
    skin = _skin(img, face_box, matte, eyes)
    if skin.mean() < 0.1 * 255 * (fside / px) ** 2:
        return None  # hardly any skin-coloured pixels around the face: not a usable face
    return Still(
        image=img,
        skin=skin,
        matte=matte,
        background=background,
        face_box=face_box,
        eyes=eyes,
        subject=str(subject),
        source=str(source),
        t_s=float(t_s),
        info=info,
    )


def _video_stills(path, subject: str, per_video: int, segment_s: float, detector, px: int) -> list[Still]:
    from mmrphys.video import open_video

    reader = open_video(path)
    fps = reader.fps
    n = reader.n_frames
    if not n:
        n = sum(1 for _ in reader.frames(prefetch=False))
    seg = min(n, max(3, int(round(segment_s * fps))))  # a short video: all of it
    k = 2 * per_video
    starts = sorted({int(max(0, min(n - seg, (i + 0.5) * n / k - seg / 2))) for i in range(k)})
    cands: list[Still] = []
    buf: list[np.ndarray] = []
    it = iter(starts)
    start = next(it, None)
    for index, (frame, _) in enumerate(reader.frames(prefetch=False)):
        if start is None:
            break
        if index < start:
            continue
        buf.append(frame.rgb())
        if len(buf) < seg:
            continue
        mid = buf[len(buf) // 2]
        boxes = detector.detect(mid)
        if boxes:
            s = make_still(buf, boxes[0], subject, str(path), (start + seg / 2) / fps, px)
            if s is not None:
                cands.append(s)
        buf = []
        start = next(it, None)
        while start is not None and start <= index:
            start = next(it, None)
    if not cands:
        return []
    # the steadiest segments (least residual motion), in time order
    best = sorted(sorted(cands, key=lambda s: s.info["residual"])[:per_video], key=lambda s: s.t_s)
    return best


# ----------------------------------------------------------------------------------------- bank
class StillBank:
    """The face stills re-animated by :class:`mmrphys.training.reanimate.ReanimatedDataset`.

    Build it with :meth:`from_videos` (or :meth:`from_recordings`) from your training subjects only;
    :meth:`save` / :meth:`load` keep it in one file. ``subjects`` lists the subjects it holds.
    """

    def __init__(self, stills: list[Still]):
        if not stills:
            raise InputError("the still bank is empty: no usable face was found in the given videos")
        self.stills = list(stills)

    def __len__(self) -> int:
        return len(self.stills)

    def __getitem__(self, i: int) -> Still:
        return self.stills[i]

    @property
    def subjects(self) -> list[str]:
        return sorted({s.subject for s in self.stills})

    def select(self, subjects) -> StillBank:
        """A bank with only these subjects' stills."""
        want = {str(s) for s in subjects}
        return StillBank([s for s in self.stills if s.subject in want])

    def digest(self) -> str:
        """Hash of every still's pixels and subject (names the data in checkpoints)."""
        h = hashlib.sha256()
        for s in self.stills:
            h.update(s.subject.encode())
            h.update(np.ascontiguousarray(s.image).tobytes())
        return h.hexdigest()[:16]

    @classmethod
    def from_videos(
        cls,
        videos,
        subjects=None,
        per_video: int = 4,
        segment_s: float = 1.5,
        detector=None,
        px: int = STILL_PX,
        log=None,
    ) -> StillBank:
        """Stills from these videos only. ``subjects`` names each video's subject (default:
        :func:`default_subject` of its path). Raises InputError naming a video without a usable face."""
        from mmrphys.faces import FaceDetector

        videos = [str(v) for v in videos]
        if subjects is None:
            subjects = [default_subject(v) for v in videos]
        if len(subjects) != len(videos):
            raise InputError(f"{len(subjects)} subject names for {len(videos)} videos")
        if per_video < 1 or segment_s <= 0:
            raise InputError(f"need per_video >= 1 and segment_s > 0, got {per_video}, {segment_s}")
        detector = detector or FaceDetector()
        stills: list[Still] = []
        for path, subject in zip(videos, subjects):
            got = _video_stills(path, str(subject), per_video, segment_s, detector, px)
            if not got:
                raise InputError(f"{path}: no steady, well-lit face found for a still")
            if log:
                log(f"[stills] {path}: {len(got)} stills of subject {subject}")
            stills += got
        return cls(stills)

    @classmethod
    def from_recordings(cls, recordings, **kw) -> StillBank:
        """Stills from dataset recordings (``mmrphys.data`` loaders), named by their subject ids."""
        recs = list(recordings)
        return cls.from_videos([r.files["video"] for r in recs], [str(r.subject_id) for r in recs], **kw)

    # -- files ----------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the bank to one ``.npz`` (atomically)."""
        path = Path(path)
        meta = [
            {
                "face_box": list(s.face_box),
                "eyes": [list(e) for e in s.eyes],
                "subject": s.subject,
                "source": s.source,
                "t_s": s.t_s,
                "info": s.info,
            }
            for s in self.stills
        ]
        arrays = {
            "image": np.stack([s.image for s in self.stills]),
            "skin": np.stack([s.skin for s in self.stills]),
            "matte": np.stack([s.matte for s in self.stills]),
            "background": np.stack([s.background for s in self.stills]),
            "meta": np.frombuffer(json.dumps({"format": FORMAT, "stills": meta}).encode(), np.uint8),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path) -> StillBank:
        path = Path(path)
        try:
            with np.load(path) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                arrays = {k: z[k] for k in ("image", "skin", "matte", "background")}
        except (OSError, ValueError, KeyError) as err:
            raise InputError(f"{path}: not a still bank ({type(err).__name__})") from None
        if meta.get("format") != FORMAT or len(meta["stills"]) != len(arrays["image"]):
            raise InputError(f"{path}: not a still bank of format {FORMAT}")
        stills = [
            Still(
                image=arrays["image"][i],
                skin=arrays["skin"][i],
                matte=arrays["matte"][i],
                background=arrays["background"][i],
                face_box=tuple(m["face_box"]),
                eyes=tuple(tuple(e) for e in m["eyes"]),
                subject=m["subject"],
                source=m["source"],
                t_s=m["t_s"],
                info=m["info"],
            )
            for i, m in enumerate(meta["stills"])
        ]
        return cls(stills)
