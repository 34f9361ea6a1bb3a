"""Face tracking for video: detect every N frames, glide between detections, bridge short gaps.

* :class:`FaceTrack` — one face's box over time (the state both trackers share).
* :class:`FaceTracker` — one face: the largest, then the one overlapping the tracked face.
* :class:`MultiFaceTracker` — every face, each with a stable id through crossings and short losses
  (detections associated to tracks by their motion-predicted centre and size; a lost face keeps its
  id when it comes back near where it was expected).

With a single face in the video both give the same boxes on every frame (tested): the main job's
single-face numbers do not depend on which one runs.
"""

from __future__ import annotations

import numpy as np

from mmrphys.errors import ConfigError
from mmrphys.faces.crop import square_box
from mmrphys.faces.detect import Box, FaceDetector

#: While tracking, the detector looks only for faces of this range of the tracked face's size.
TRACK_SIZE_RANGE = (0.6, 1.7)
#: Tracks whose sizes are within this ratio share one size-bounded detection call.
GROUP_SIZE_RATIO = 1.3
#: A detection belongs to a track only if its centre is within this many face sides of the track's
#: motion-predicted centre (and its size within TRACK_SIZE_RANGE).
GATE_SIDES = 1.0
#: A detection is a new face only if no tracked face's box overlaps it by more than this IoU and its
#: centre is farther than GATE_SIDES from every tracked face's prediction.
NEW_FACE_MAX_IOU = 0.2
#: Two tracks whose predicted centres are closer than this many sides overlap (crossing): their
#: velocities are frozen until they separate, so that a detection of the front face does not drag
#: the hidden face's motion model along.
OVERLAP_SIDES = 0.6
#: ``glide="smooth"``: each box change is spread over this many detection intervals with a raised-cosine
#: (Hann) speed profile; overlapping changes add up, so the box's speed never steps.
SMOOTH_GLIDE_INTERVALS = 2.0
#: Box glides between detections: "linear" (constant speed over one interval) or "smooth" (above).
GLIDES = ("linear", "smooth")
#: Motion is extrapolated at most this many detection intervals ahead.
MAX_EXTRAPOLATE_INTERVALS = 3.0
#: While the followed faces stay the same, the search for new faces backs off (its interval doubles
#: after each search that finds nothing new) up to this many ``discover_every`` intervals; a new,
#: returning or lost face resets it. Each search scans the whole frame (~3x a tracking detection).
DISCOVER_BACKOFF = 4


def _check_glide(glide: str) -> str:
    if glide not in GLIDES:
        raise ConfigError(f"glide must be one of {', '.join(GLIDES)}, got {glide!r}")
    return glide


def _iou(a, b) -> float:
    ax0, ay0, aw, ah = a[:4]
    bx0, by0, bw, bh = b[:4]
    ix = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _centre(box) -> np.ndarray:
    return np.array([box[0] + box[2] / 2.0, box[1] + box[3] / 2.0])


class FaceTrack:
    """One face's box over time.

    The box glides linearly to each accepted detection over ``every_n`` frames (no jumps that would show
    up as a pulse-band step in the colour traces; ``glide="smooth"``: with a Hann speed profile over
    ``SMOOTH_GLIDE_INTERVALS`` intervals, measured in docs/main_job.md and not the default); moves below
    ``deadband`` (fraction of the box side) are ignored, moves above half a side snap. After a failed
    detection the face is retried every ``every_n // 3`` frames and the last box is kept (bridged) for up
    to ``max_gap`` frames; after that the track is lost (``box is None``) until a detection is accepted
    again. ``gaps`` lists ``(start, end, bridged)`` frame ranges (end exclusive) from the first failed
    detection. A constant-velocity model of the detected centres predicts where the face is expected next.
    """

    def __init__(self, track_id: int, index: int, every_n: int = 30, max_gap: int = 45, scale: float = 1.5,
                 deadband: float = 0.04, glide: str = "linear"):
        self.glide = _check_glide(glide)
        self.id = int(track_id)
        self.every_n = max(1, int(every_n))
        self.retry_every = max(1, self.every_n // 3)
        self.max_gap = int(max_gap)
        self.scale = float(scale)
        self.deadband = float(deadband)
        self.first_index = int(index)
        self.next_detect = int(index)
        self.n_detections = 0  # detection calls made for this track
        self.n_found = 0  # calls that found it
        self.frames_with_face = 0
        self.gaps: list[tuple[int, int, bool]] = []
        self.box: np.ndarray | None = None  # current (x, y, w, h)
        self.fail_since: int | None = None
        self._step = np.zeros(4)
        self._ramp_left = 0
        self._pending: np.ndarray | None = None  # smooth glide: (frames, 4) moves still to make
        # motion model of the detected centres
        self._det_centre: np.ndarray | None = None
        self._det_side = 0.0
        self._det_index = 0
        self._velocity = np.zeros(2)  # pixels per frame
        self._moving = False  # whether _velocity has been measured

    @property
    def lost(self) -> bool:
        return self.box is None

    @property
    def side(self) -> float:
        return float(max(self.box[2], self.box[3])) if self.box is not None else self._det_side

    def predict(self, index: int) -> np.ndarray:
        """The centre (x, y) where the face is expected at frame ``index``."""
        if self._det_centre is None:
            return _centre(self.box)
        dt = min(index - self._det_index, MAX_EXTRAPOLATE_INTERVALS * self.every_n)
        return self._det_centre + self._velocity * dt

    def accept(self, det, index: int, freeze_motion: bool = False) -> None:
        """Take detection ``det`` (a :class:`Box` or ``(x, y, w, h)``) at frame ``index``."""
        target = np.array(det[:4], dtype=float)
        was_lost = self.box is None
        side = 0.0 if was_lost else max(self.box[2], self.box[3])
        if was_lost or np.abs(target - self.box).max() / side > 0.5:
            # lost before, or a different place entirely (cut, re-found face): snap
            self.box = target
            self._ramp_left, self._pending = 0, None
        elif self.glide == "smooth":
            self._glide_smooth(target, side)
        elif np.abs(target - self.box).max() / side > self.deadband:
            self._step = (target - self.box) / self.every_n
            self._ramp_left = self.every_n
        if self.fail_since is not None:
            start = self.fail_since
            self.gaps.append((start, index, index - start <= self.max_gap))
            self.fail_since = None
        centre = _centre(target)
        if was_lost:
            self._velocity, self._moving = np.zeros(2), False  # motion before a loss says little after it
        elif self._det_centre is not None and not freeze_motion and index > self._det_index:
            measured = (centre - self._det_centre) / (index - self._det_index)
            self._velocity = 0.5 * (self._velocity + measured) if self._moving else measured
            self._moving = True
        self._det_centre, self._det_side, self._det_index = centre, float(max(target[2], target[3])), index
        self.n_found += 1
        self.next_detect = index + self.every_n

    def _glide_smooth(self, target: np.ndarray, side: float) -> None:
        """Add the move from where the box is heading to ``target`` as a Hann-shaped speed bump."""
        heading = self.box if self._pending is None else self.box + self._pending.sum(axis=0)
        residual = target - heading
        if np.abs(residual).max() / side <= self.deadband:
            return
        n = max(1, int(round(SMOOTH_GLIDE_INTERVALS * self.every_n)))
        w = 1.0 - np.cos(2.0 * np.pi * np.arange(1, n + 1) / (n + 1))
        bump = np.outer(w / w.sum(), residual)
        if self._pending is not None:
            k = min(len(self._pending), n)
            bump[:k] += self._pending[:k]
            bump = np.concatenate([bump, self._pending[k:]])
        self._pending = bump

    def fail(self, index: int) -> None:
        """A detection for this track at frame ``index`` found nothing."""
        if self.fail_since is None:
            self.fail_since = index
        self.next_detect = index + self.retry_every

    def advance(self, index: int, frame_shape) -> tuple[int, int, int, int] | None:
        """The square crop ``(x0, y0, x1, y1)`` for frame ``index`` (after any detection), or None."""
        if self.fail_since is not None and index - self.fail_since >= self.max_gap:
            self.box = None  # long gap: forget the box so a re-found face is snapped to, not glided to
            self._ramp_left, self._pending = 0, None
        if self.box is None:
            return None
        if self._ramp_left > 0:
            self.box = self.box + self._step
            self._ramp_left -= 1
        elif self._pending is not None:
            self.box = self.box + self._pending[0]
            self._pending = self._pending[1:] if len(self._pending) > 1 else None
        self.frames_with_face += 1
        return square_box(self.box, self.scale, frame_shape)

    def finish(self, n_frames: int) -> list[tuple[int, int, bool]]:
        """Close an open gap at ``n_frames`` and return all gaps ``(start, end, bridged)``."""
        if self.fail_since is not None:
            start = self.fail_since
            self.gaps.append((start, n_frames, n_frames - start <= self.max_gap))
            self.fail_since = None
        return list(self.gaps)


def _size_bounds(tracks) -> tuple[float, float]:
    """The detector's face-size search range (pixels) for ``tracks`` (their boxes known)."""
    lo, hi = TRACK_SIZE_RANGE
    return (lo * min(min(t.box[2], t.box[3]) for t in tracks),
            hi * max(max(t.box[2], t.box[3]) for t in tracks))


class FaceTracker:
    """Per-frame box of one face from detections every ``every_n`` frames (see :class:`FaceTrack`).

    ``update(frame, index)`` returns the training crop ``(x0, y0, x1, y1)`` (square ×``scale``) or
    ``None`` when no face is known. With several faces the one overlapping the tracked face is kept,
    else the largest. ``gaps`` lists ``(start, end, bridged)`` frame ranges.
    """

    def __init__(self, detector: FaceDetector | None = None, every_n: int = 30, scale: float = 1.5,
                 max_gap: int = 45, deadband: float = 0.04, glide: str = "linear"):
        self.detector = detector or FaceDetector()
        self._track = FaceTrack(1, 0, every_n, max_gap, scale, deadband, glide)
        self.every_n, self.scale, self.max_gap = self._track.every_n, float(scale), int(max_gap)
        self.deadband, self.retry_every = float(deadband), self._track.retry_every
        self.n_detections = 0  # detector calls
        self.n_found = 0  # calls that found a face
        self.frames_seen = 0
        self.last_detection: Box | None = None

    @property
    def lost(self) -> bool:
        return self._track.lost

    @property
    def gaps(self) -> list[tuple[int, int, bool]]:
        return self._track.gaps

    @property
    def frames_with_face(self) -> int:
        return self._track.frames_with_face

    def update(self, frame: np.ndarray, index: int):
        """Box for frame ``index`` (frames must come in increasing order)."""
        self.frames_seen += 1
        track = self._track
        if index >= track.next_detect:
            boxes = _detect_for(self.detector, frame, [track] if track.box is not None else [])
            self.n_detections += 1
            if boxes:
                self.n_found += 1
                self.last_detection = _choose(boxes, track.box)
                track.accept(self.last_detection, index)
            else:
                track.fail(index)
        return track.advance(index, frame.shape[:2])

    def finish(self, n_frames: int) -> list[tuple[int, int, bool]]:
        """Close an open gap at ``n_frames`` and return all gaps ``(start, end, bridged)``."""
        return self._track.finish(n_frames)


def _detect_for(detector: FaceDetector, frame, tracks) -> list[Box]:
    """Detect faces in ``frame``; with ``tracks`` only faces of their size range (much faster)."""
    if not tracks:
        return detector.detect(frame)
    lo, hi = _size_bounds(tracks)
    return detector.detect(frame, min_face_px=lo, max_face_px=hi)


def _choose(boxes: list[Box], box) -> Box:
    """The single-face choice: the detection overlapping ``box`` (IoU > 0.3), else the largest."""
    if box is not None and len(boxes) > 1:
        best = max(boxes, key=lambda b: _iou(b, box))
        if _iou(best, box) > 0.3:
            return best
    return boxes[0]  # largest


class MultiFaceTracker:
    """Every face in the video, each with a stable id (1, 2, ... in order of appearance).

    ``update(frame, index) -> {id: (x0, y0, x1, y1) | None}`` for every track created so far (None:
    not seen now). Each track follows :class:`FaceTrack`'s rules on its own detection schedule;
    tracks due at the same frame with similar sizes share one size-bounded detection call, and
    detections are associated to tracks greedily by the distance from each track's motion-predicted
    centre (gated at ``GATE_SIDES`` face sides and ``TRACK_SIZE_RANGE`` in size), so two faces
    crossing keep their ids. New faces are searched for over the whole frame every
    ``discover_every`` frames (every ``retry_every`` frames while no face is followed), backing off
    to every ``DISCOVER_BACKOFF`` x ``discover_every`` frames while the followed faces stay the same,
    with the detector's cheaper ``discover`` scan where it has one; a face found near where a lost
    track was expected takes that track's id back. At most ``max_faces`` faces are
    followed at a time (None: all). While only one face has ever been seen, detections are chosen
    as :class:`FaceTracker` chooses them, so a single-face video gets the same boxes from both.
    """

    def __init__(self, detector: FaceDetector | None = None, every_n: int = 30, scale: float = 1.5,
                 max_gap: int = 45, deadband: float = 0.04, discover_every: int | None = None,
                 max_faces: int | None = None, glide: str = "linear"):
        self.detector = detector or FaceDetector()
        self.every_n = max(1, int(every_n))
        self.retry_every = max(1, self.every_n // 3)
        self.scale, self.max_gap, self.deadband = float(scale), int(max_gap), float(deadband)
        self.glide = _check_glide(glide)  # refused here, not when the first face appears
        self.discover_every = max(1, int(discover_every if discover_every is not None else 2 * self.every_n))
        self.max_faces = None if max_faces is None else max(1, int(max_faces))
        self.tracks: dict[int, FaceTrack] = {}
        self.n_detections = 0  # detector calls, all kinds
        self._next_search = 0
        self._search_interval = self.discover_every  # grows while nothing changes (DISCOVER_BACKOFF)
        self._n_active = 0

    def update(self, frame, index: int) -> dict[int, tuple[int, int, int, int] | None]:
        """Crop box of every track for frame ``index`` (frames must come in increasing order)."""
        active = [t for t in self.tracks.values() if t.box is not None]
        lost = [t for t in self.tracks.values() if t.box is None]
        if len(active) < self._n_active:  # a face was lost: look for it (and others) soon again
            self._search_interval = self.discover_every
            self._next_search = min(self._next_search, index + self.discover_every)
        if active:
            search = index >= self._next_search and (self.max_faces is None or len(active) < self.max_faces)
        else:  # nothing followed: search on the lost faces' retry schedule (FaceTracker's while lost)
            search = index >= min([self._next_search] + [t.next_detect for t in lost])
        if search:
            discover = getattr(self.detector, "discover", None) if active else None
            boxes = discover(frame) if discover is not None else _detect_for(self.detector, frame, [])
            self.n_detections += 1
            if not active:
                for t in lost:
                    t.n_detections += 1
                    if not boxes:
                        t.fail(index)
            followed = list(active)
            self._discover(boxes, followed, lost, index)
            if not active and not boxes:
                self._next_search = index + self.retry_every
            else:  # back off while a search finds no face beyond those followed before it
                grown = min(2 * self._search_interval, DISCOVER_BACKOFF * self.discover_every)
                same = bool(active) and len(followed) == len(active)
                self._search_interval = grown if same else self.discover_every
                self._next_search = index + self._search_interval
        due = [t for t in active if index >= t.next_detect]
        for group in self._groups(due):
            boxes = _detect_for(self.detector, frame, group)
            self.n_detections += 1
            for t in group:
                t.n_detections += 1
            self._associate(group, boxes, index)
        shape = frame.shape[:2]
        out = {tid: t.advance(index, shape) for tid, t in self.tracks.items()}
        self._n_active = sum(t.box is not None for t in self.tracks.values())
        return out

    @staticmethod
    def _groups(tracks: list[FaceTrack]) -> list[list[FaceTrack]]:
        groups: list[list[FaceTrack]] = []
        for t in sorted(tracks, key=lambda t: t.side):
            if groups and t.side <= GROUP_SIZE_RATIO * groups[-1][0].side:
                groups[-1].append(t)
            else:
                groups.append([t])
        return groups

    def _associate(self, group: list[FaceTrack], boxes: list[Box], index: int) -> None:
        if len(self.tracks) == 1:  # one face ever seen: FaceTracker's choice (any detection is that face)
            t = group[0]
            if boxes:
                t.accept(_choose(boxes, t.box), index)
            else:
                t.fail(index)
            return
        pairs = []
        for i, t in enumerate(group):
            pred, side = t.predict(index), t.side
            for j, b in enumerate(boxes):
                ratio = max(b.w, b.h) / side
                dist = float(np.linalg.norm(_centre(b) - pred)) / side
                if dist <= GATE_SIDES and TRACK_SIZE_RANGE[0] <= ratio <= TRACK_SIZE_RANGE[1]:
                    pairs.append((dist, i, j))
        taken_t, taken_b = set(), set()
        for _, i, j in sorted(pairs):
            if i in taken_t or j in taken_b:
                continue
            taken_t.add(i)
            taken_b.add(j)
            group[i].accept(boxes[j], index, freeze_motion=self._overlapping(group[i], index))
        for i, t in enumerate(group):
            if i not in taken_t:
                t.fail(index)

    def _overlapping(self, track: FaceTrack, index: int) -> bool:
        """Whether another followed face is expected where ``track`` is (crossing faces)."""
        pred = track.predict(index)
        return any(o is not track and o.box is not None
                   and np.linalg.norm(o.predict(index) - pred) < OVERLAP_SIDES * max(track.side, o.side)
                   for o in self.tracks.values())

    def _discover(self, boxes: list[Box], active: list[FaceTrack], lost: list[FaceTrack], index: int) -> None:
        """Start or revive tracks for the detections that belong to no followed face."""
        searched_for_lost = not active  # the lost tracks have counted this call already
        for b in boxes:
            c, side = _centre(b), max(b.w, b.h)
            if any(_iou(b, t.box) > NEW_FACE_MAX_IOU
                   or np.linalg.norm(c - t.predict(index)) <= GATE_SIDES * max(side, t.side) for t in active):
                continue  # a followed face: its own schedule updates it
            if self.max_faces is not None and len(active) >= self.max_faces:
                break
            near = [(float(np.linalg.norm(c - t.predict(index))) / t.side, t) for t in lost
                    if TRACK_SIZE_RANGE[0] <= side / t.side <= TRACK_SIZE_RANGE[1]]
            near = [(d, t) for d, t in near if d <= GATE_SIDES]
            if near or (len(self.tracks) == 1 and lost):  # one face ever seen: it is that face again
                track = min(near, key=lambda dt: dt[0])[1] if near else lost[0]
                lost.remove(track)
                track.n_detections += 0 if searched_for_lost else 1
            else:
                track = FaceTrack(len(self.tracks) + 1, index, self.every_n, self.max_gap, self.scale,
                                  self.deadband, self.glide)
                self.tracks[track.id] = track
                track.n_detections += 1
            track.accept(b, index)
            active.append(track)

    def finish(self, n_frames: int) -> dict[int, list[tuple[int, int, bool]]]:
        """Close open gaps at ``n_frames``; ``{id: gaps}`` (see :meth:`FaceTrack.finish`)."""
        return {tid: t.finish(n_frames) for tid, t in self.tracks.items()}
