"""mmrphys.Stream: readings within 10 s of video, per face; close() equals estimate() on the same frames
(bit for bit with POS; within float32 rounding with a model); bad input named in one line."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mmrphys
from mmrphys.errors import ConfigError, InputError
from mmrphys.synth import FaceLook, draw_face, physiology, render_frames
from mmrphys.synth.multi import make_multi_clip

HR, RR = 72.0, 15.0


@pytest.fixture(scope="module")
def frames():
    """16 s, 160x120, one face, HR 72 / RR 15."""
    scene = draw_face(160, 120, FaceLook(), seed=4)
    phys = physiology(HR, RR, 16, 30, seed=4)
    return np.stack([rgb for rgb, _ in render_frames(scene, phys, seed=4)])


def _same_result(a, b):
    assert a.fps == b.fps and a.duration_s == b.duration_s
    assert np.array_equal(a.timestamps_s, b.timestamps_s)
    assert np.array_equal(a.bvp, b.bvp, equal_nan=True) and np.array_equal(a.rsp, b.rsp, equal_nan=True)
    assert a.heart_rate_bpm == b.heart_rate_bpm and a.confidence == b.confidence
    assert (a.respiratory_rate_bpm == b.respiratory_rate_bpm
            or (math.isnan(a.respiratory_rate_bpm) and math.isnan(b.respiratory_rate_bpm)))
    da, db = a.to_dict(), b.to_dict()  # everything in the JSON (NaN as null), the source's name aside
    da.pop("source"), db.pop("source")
    assert da == db


def test_pos_stream_reads_within_10_s_and_closes_to_estimates_result(frames):
    readings = []
    with mmrphys.Stream(fps=30) as stream:
        for i, frame in enumerate(frames):
            r = stream.push(frame)
            if r is None:
                assert i / 30 < 6.0  # warming up only until 6 s of face
            readings.append(r)
    first = next(i for i, r in enumerate(readings) if r is not None)
    assert first / 30 <= 6.0 + 1 / 30  # the first HR within 10 s of video (at 6 s)
    hist = stream.readings()
    assert [round(r.t_s) for r in hist] == list(range(6, 16))  # once a second
    assert all(abs(r.heart_rate_bpm - HR) <= 3 and r.confidence["heart_rate"] > 0.5 for r in hist)
    assert math.isnan(hist[0].respiratory_rate_bpm)  # RR after 15 s of face
    assert abs(hist[-1].respiratory_rate_bpm - RR) <= 3
    assert hist[-1].faces[0].id == 1 and len(hist[-1].faces[0].box) == 4
    ref = mmrphys.estimate(frames, fps=30, progress=False)
    _same_result(stream.result, ref)  # the same pipeline: identical, not merely close


def test_stream_without_fps_measures_the_rate_from_timestamps(frames):
    rng = np.random.default_rng(1)
    t = 1000.0 + np.arange(len(frames)) / 30 + rng.uniform(-0.004, 0.004, len(frames))  # any origin
    stream = mmrphys.Stream()
    for frame, ti in zip(frames, t):
        stream.push(frame, ti)
    res = stream.close()
    assert abs(stream.fps - 30) < 0.5 and stream.readings()[0].t_s <= 6.1
    ref = mmrphys.estimate(frames, fps=stream.fps, timestamps=t, progress=False)
    _same_result(res, ref)


def test_model_stream_equals_estimate(frames):
    """A stream runs each model window as soon as it is complete, one per call, and estimate() runs
    one window per call too (``estimators.MODEL_BATCH = 1``): the same windows through the same
    predictor, so the waveforms are bit-identical. Readings come once the first window is done (6 s)."""
    from mmrphys.vitals.estimators import MODEL_BATCH

    assert MODEL_BATCH == 1
    clip = frames[:300]  # 10 s: windows at 0, 90 and the end-aligned last one
    ref = mmrphys.estimate(clip, fps=30, method="mmrphys", progress=False)
    with mmrphys.Stream(fps=30, method="mmrphys") as stream:
        for frame in clip:
            stream.push(frame)
    res = stream.result
    assert res.model["windows"] == ref.model["windows"] == 3
    assert np.array_equal(res.bvp, ref.bvp, equal_nan=True)
    # breathing from the crop pulse needs RR_MIN_DURATION_S of video: none in 10 s, in both
    assert res.rsp is None and ref.rsp is None and res.rsp_source == ref.rsp_source
    first = stream.readings()[0]
    assert first.t_s <= 7.0 and abs(first.heart_rate_bpm - HR) <= 3


def test_two_faces_each_get_readings(tmp_path):
    specs = [{"hr_bpm": 60, "rr_bpm": 10, "center": (0.25, 0.5), "face_height": 0.5},
             {"hr_bpm": 100, "rr_bpm": 18, "center": (0.75, 0.5)}]
    truth = make_multi_clip(tmp_path / "two.npy", specs, duration_s=8, size=(320, 160), seed=2)
    stream = mmrphys.Stream(fps=30, max_faces=None)
    for frame in np.load(truth["video"]):
        stream.push(frame)
    last = stream.readings()[-1]
    assert {f.id for f in last.faces} == {1, 2} and last.main_face_id == 1
    left = min(last.faces, key=lambda f: f.box[0])
    right = max(last.faces, key=lambda f: f.box[0])
    assert abs(left.heart_rate_bpm - 60) <= 3 and abs(right.heart_rate_bpm - 100) <= 3
    assert last.heart_rate_bpm == last.face(last.main_face_id).heart_rate_bpm
    assert len(stream.close().faces) == 2


def test_bad_frames_and_times_are_named(frames):
    stream = mmrphys.Stream(fps=30)
    stream.push(frames[0])
    with pytest.raises(InputError, match="frame 1 must be an RGB uint8"):
        stream.push(frames[1].astype(np.float32))
    with pytest.raises(InputError, match="frame 2 is 80x60, the stream's frames are 160x120"):
        stream.push(frames[2, :60, :80])
    timed = mmrphys.Stream()
    timed.push(frames[0], 1.0)
    with pytest.raises(InputError, match="does not come after"):
        timed.push(frames[1], 0.5)
    with pytest.raises(ConfigError, match="no t_s"):
        mmrphys.Stream().push(frames[0])
    with pytest.raises(InputError, match="grey"):
        mmrphys.Stream(fps=30).push(frames[0, ..., 1])
    with pytest.raises(InputError, match="no frames"):
        mmrphys.Stream(fps=30).close()
    short = mmrphys.Stream(fps=30)
    for f in frames[:60]:
        short.push(f)
    with pytest.raises(InputError, match="minimum is 6 s"):
        short.close()
    with pytest.raises(ConfigError, match="push after close"):
        short.push(frames[0])
    with pytest.raises(InputError, match="fps must be between"):
        mmrphys.Stream(fps=0)


def test_context_manager_does_not_mask_an_error(frames):
    with pytest.raises(RuntimeError, match="camera unplugged"):
        with mmrphys.Stream(fps=30) as stream:
            stream.push(frames[0])
            raise RuntimeError("camera unplugged")
    assert stream.result is None
