"""Several faces: stable ids through crossings and short absences, the same boxes as FaceTracker for
one face, and at most max_faces followed."""

from __future__ import annotations

import numpy as np
import pytest

from mmrphys.faces import FaceDetector, FaceTracker
from mmrphys.faces.track import MultiFaceTracker
from mmrphys.synth import FaceLook, draw_face, physiology, render_frames
from mmrphys.synth.clip import detector_box
from mmrphys.synth.multi import LOOKS, _path_offsets, _visible, render_multi_frames
from mmrphys.video import RGBFrame

FPS = 30.0
SIZE = (360, 180)


def _scene_frames(specs, duration_s, seed=0):
    """In-memory frames of a multi-face scene and each face's true box per frame (x, y, w, h)."""
    scenes, physes, offsets, visible, boxes = [], [], [], [], []
    for k, spec in enumerate(specs):
        skin, hair = LOOKS[k]
        look = FaceLook(skin_rgb=skin, hair_rgb=hair, center=spec["center"],
                        face_height=spec.get("face_height", 0.45))
        phys = physiology(spec.get("hr_bpm", 70), spec.get("rr_bpm", 12), duration_s, FPS, seed=seed + k)
        scene = draw_face(*SIZE, look, seed=seed + k)
        off = _path_offsets(spec, phys["t"], SIZE)
        box = np.repeat(np.asarray(detector_box(scene["box"]))[None], off.shape[0], axis=0)
        box[:, :2] += off
        scenes.append(scene)
        physes.append(phys)
        offsets.append(off)
        visible.append(_visible(spec, phys["t"]))
        boxes.append(box)
    frames = list(render_multi_frames(scenes, physes, offsets, visible, seed=seed))
    return frames, boxes


def _track(frames, **kw):
    tracker = MultiFaceTracker(every_n=30, max_gap=45, **kw)
    out = [tracker.update(RGBFrame(f), i) for i, f in enumerate(frames)]
    return tracker, out


def _centre_x(xyxy):
    return (xyxy[0] + xyxy[2]) / 2


def test_single_face_boxes_equal_facetracker_through_gaps():
    scene = draw_face(160, 120, FaceLook(), seed=1)
    phys = physiology(72, 12, 12, FPS, seed=1)
    frames = [rgb for rgb, _ in render_frames(scene, phys, seed=1)]
    background = np.clip(scene["background"], 0, 255).astype(np.uint8)
    for i in list(range(60, 150)) + list(range(250, 280)):  # a 3 s loss (track lost) and a 1 s one (bridged)
        frames[i] = background
    single, multi = FaceTracker(every_n=30, max_gap=45), MultiFaceTracker(every_n=30, max_gap=45)
    for i, f in enumerate(frames):
        a, b = single.update(RGBFrame(f), i), multi.update(RGBFrame(f), i)
        assert a == b.get(1), f"frame {i}: {a} != {b}"
    assert list(multi.tracks) == [1]
    assert multi.finish(len(frames))[1] == single.finish(len(frames))
    assert multi.tracks[1].n_found == single.n_found


def test_two_faces_get_two_stable_ids_on_their_own_boxes():
    frames, truth = _scene_frames([{"center": (0.25, 0.5), "face_height": 0.5}, {"center": (0.75, 0.5)}], 4)
    tracker, out = _track(frames)
    assert sorted(tracker.tracks) == [1, 2]
    for i in range(len(frames)):  # every frame: both faces, each on its own side
        assert out[i][1] is not None and out[i][2] is not None
    left = 1 if _centre_x(out[-1][1]) < _centre_x(out[-1][2]) else 2
    for tid, k in ((left, 0), (3 - left, 1)):
        cx = truth[k][-1, 0] + truth[k][-1, 2] / 2
        assert abs(_centre_x(out[-1][tid]) - cx) < 0.15 * truth[k][-1, 2]


@pytest.mark.parametrize("y", [(0.5, 0.5), (0.4, 0.6)])
def test_crossing_faces_keep_their_ids(y):
    """Two faces walk past each other (the second in front); each id stays with its face."""
    specs = [{"center": (0.15, y[0]), "path": [(1, 0.15, y[0]), (5, 0.85, y[0])]},
             {"center": (0.85, y[1]), "path": [(1, 0.85, y[1]), (5, 0.15, y[1])]}]
    frames, truth = _scene_frames(specs, 8)
    tracker, out = _track(frames)
    assert sorted(tracker.tracks) == [1, 2]
    start = {tid: _centre_x(out[0][tid]) for tid in (1, 2)}
    end = {tid: _centre_x(out[-1][tid]) for tid in (1, 2)}
    for tid in (1, 2):  # the face that started on the left ends on the right, and the other way round
        assert (start[tid] < SIZE[0] / 2) == (end[tid] > SIZE[0] / 2), (start, end)
        k = 0 if start[tid] < SIZE[0] / 2 else 1
        cx = truth[k][-1, 0] + truth[k][-1, 2] / 2
        assert abs(end[tid] - cx) < 0.2 * truth[k][-1, 2]


def test_a_face_leaving_for_one_second_keeps_its_id():
    specs = [{"center": (0.25, 0.5), "absent": [(2.0, 3.0)]}, {"center": (0.75, 0.5)}]
    frames, _ = _scene_frames(specs, 6)
    tracker, out = _track(frames)
    assert sorted(tracker.tracks) == [1, 2]  # no third id after the return
    left = 1 if _centre_x(out[0][1]) < _centre_x(out[0][2]) else 2
    assert all(o[left] is not None for o in out)  # 1 s < the 1.5 s bridged
    assert _centre_x(out[-1][left]) < SIZE[0] / 2


def test_a_face_lost_for_long_comes_back_with_its_id():
    specs = [{"center": (0.25, 0.5), "absent": [(1.0, 4.0)]}, {"center": (0.75, 0.5)}]
    frames, _ = _scene_frames(specs, 7)
    tracker, out = _track(frames)
    assert sorted(tracker.tracks) == [1, 2]
    left = 1 if _centre_x(out[0][1]) < _centre_x(out[0][2]) else 2
    assert out[100][left] is None and out[-1][left] is not None  # lost, then found again near its place
    gaps = tracker.finish(len(frames))[left]
    assert any(not bridged and end - start > 60 for start, end, bridged in gaps)


def test_max_faces_follows_at_most_n():
    frames, _ = _scene_frames([{"center": (0.25, 0.5), "face_height": 0.5}, {"center": (0.75, 0.5)}], 3)
    tracker, out = _track(frames, max_faces=1)
    assert list(tracker.tracks) == [1]
    assert all(o[1] is not None for o in out)


class _CountingDetector(FaceDetector):
    def __init__(self):
        super().__init__()
        self.searches: list[int] = []  # frames of the whole-frame searches for new faces
        self.index = 0

    def discover(self, frame):
        self.searches.append(self.index)
        return super().discover(frame)


def test_the_search_for_new_faces_backs_off_while_nothing_changes():
    """One face for 10 s: searches at 2, 6, 14 s... (interval doubling up to 4x 2 s); a second face
    appearing at 10 s is still found within that longest interval (by 14 s)."""
    specs = [{"center": (0.25, 0.5), "face_height": 0.5}, {"center": (0.75, 0.5), "absent": [(0.0, 10.0)]}]
    frames, _ = _scene_frames(specs, 15)
    det = _CountingDetector()
    tracker = MultiFaceTracker(det, every_n=30, max_gap=45, discover_every=60)
    out = []
    for i, f in enumerate(frames):
        det.index = i
        out.append(tracker.update(RGBFrame(f), i))
    assert det.searches == [60, 180, 420]  # frame 0's search is the full one (no face followed yet)
    assert sorted(tracker.tracks) == [1, 2]
    first = min(i for i, o in enumerate(out) if o.get(2) is not None)
    assert 300 <= first <= 300 + 4 * 60 and first == 420
