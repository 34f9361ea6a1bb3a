"""Several faces in the main job: each face its own id, rates, waveforms, quality, confidence and box
track; the top level is the main face (present longest, then largest); max_faces; JSON, CSV, PNG."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import mmrphys
from mmrphys.cli.main import main
from mmrphys.synth.multi import make_multi_clip

RATE_TOL = 3.0  # bpm, for HR and RR (the bound)


def _match(result, truth):
    """{face id: truth face dict}: each reported face to the true face whose box centre is nearest."""
    out = {}
    for face in result.faces:
        x, y, w, h = face.face_box
        cx, cy = x + w / 2, y + h / 2
        best = min(truth["faces"], key=lambda f: np.hypot(f["box"][0] + f["box"][2] / 2 - cx,
                                                          f["box"][1] + f["box"][3] / 2 - cy))
        assert np.hypot(best["box"][0] + best["box"][2] / 2 - cx, best["box"][1] + best["box"][3] / 2 - cy) \
            < 0.25 * best["box"][2], "a reported face is not on any true face"
        out[face.face_id] = best
    assert len({f["face"] for f in out.values()}) == len(out), "two ids on one face"
    return out


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """18 s, 384x180, three faces: HR 60/90/120, RR 10/16/22 (face 1 the largest), as frames."""
    truth = make_multi_clip(tmp_path_factory.mktemp("multi") / "three.npy", 3, duration_s=18, size=(384, 180),
                            seed=3)
    return truth, np.load(truth["video"])


def test_three_faces_each_get_their_own_rates_and_stable_ids(three):
    truth, frames = three
    res = mmrphys.estimate(frames, fps=30, progress=False)
    assert [f.face_id for f in res.faces] == [1, 2, 3]
    matched = _match(res, truth)
    for face in res.faces:
        true = matched[face.face_id]
        assert abs(face.heart_rate_bpm - true["hr_bpm"]) <= RATE_TOL, (face.face_id, true)
        assert abs(face.respiratory_rate_bpm - true["rr_bpm"]) <= RATE_TOL, (face.face_id, true)
        assert face.confidence["heart_rate"] > 0.5 and face.quality["face_detected_fraction"] > 0.85
        assert face.bvp.shape == res.timestamps_s.shape and np.isfinite(face.bvp).mean() > 0.85
        assert len(face.box_track["t_s"]) >= 15  # one box a second
    # the main face: present as long as the others, and the largest (face 1 of the layout)
    assert matched[res.face_id]["face"] == 1 and res.main_face
    assert res.heart_rate_bpm == res.faces[0].heart_rate_bpm and sum(f.main_face for f in res.faces) == 1
    d = res.to_dict()
    assert d["main_face_id"] == res.face_id and len(d["faces"]) == 3
    entry = d["faces"][1]
    assert {"id", "box", "boxes", "heart_rate_bpm", "respiratory_rate_bpm", "confidence", "quality", "bvp",
            "rsp", "rolling", "present_s", "main"} <= set(entry)
    assert len(entry["box"]) == 4 and len(entry["boxes"]["xywh"]) == len(entry["boxes"]["t_s"])
    assert "bvp" not in res.to_dict(waveforms=False)["faces"][0]


def test_max_faces_one_reports_the_main_face_only(three):
    truth, frames = three
    res = mmrphys.estimate(frames, fps=30, progress=False, max_faces=1)
    assert len(res.faces) == 1 and res.faces[0] is res
    assert _match(res, truth)[res.face_id]["face"] == 1
    assert abs(res.heart_rate_bpm - 60) <= RATE_TOL
    with pytest.raises(mmrphys.ConfigError, match="max_faces"):
        mmrphys.estimate(frames[:10], fps=30, max_faces=0)


def test_crossing_faces_keep_ids_and_their_own_pulse(tmp_path):
    """Two faces walk past each other; the id that starts on the left ends on the right with its pulse."""
    specs = [{"hr_bpm": 60, "rr_bpm": 10, "center": (0.15, 0.45), "path": [(2, 0.15, 0.45), (6, 0.85, 0.55)]},
             {"hr_bpm": 100, "rr_bpm": 18, "center": (0.85, 0.5), "path": [(2, 0.85, 0.5), (6, 0.15, 0.5)]}]
    truth = make_multi_clip(tmp_path / "cross.npy", specs, duration_s=10, size=(360, 180), seed=1)
    res = mmrphys.estimate(np.load(truth["video"]), fps=30, progress=False)
    assert [f.face_id for f in res.faces] == [1, 2]
    for face in res.faces:
        xs = [b[0] + b[2] / 2 for b in face.box_track["xywh"]]
        started_left = xs[0] < 180
        assert (xs[-1] > 180) == started_left  # crossed with its face
        assert abs(face.heart_rate_bpm - (60 if started_left else 100)) <= RATE_TOL


def test_two_faces_from_the_cli_json_csv_and_report(tmp_path, capsys):
    clip = tmp_path / "two.mp4"
    assert main(["synth", str(clip), "--faces", "2", "--duration", "16", "--size", "320x240"]) == 0
    truth = json.loads(clip.with_suffix(".json").read_text())
    assert [(f["hr_bpm"], f["rr_bpm"]) for f in truth["faces"]] == [pytest.approx((60, 10)),
                                                                    pytest.approx((90, 16))]
    out = tmp_path / "out"
    assert main(["estimate", str(clip), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "face 1 (main):" in printed and "face 2:" in printed
    data = json.loads((out / "two.json").read_text())
    assert data["main_face_id"] == 1 and [f["id"] for f in data["faces"]] == [1, 2]
    for face, true in zip(data["faces"], truth["faces"]):
        assert abs(face["heart_rate_bpm"] - true["hr_bpm"]) <= RATE_TOL
        assert abs(face["respiratory_rate_bpm"] - true["rr_bpm"]) <= RATE_TOL
    assert data["heart_rate_bpm"] == data["faces"][0]["heart_rate_bpm"]
    with open(out / "two_waveforms.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["time_s", "bvp", "rsp", "bvp_1", "rsp_1", "bvp_2", "rsp_2"]
    assert len(rows) == 1 + len(data["timestamps_s"]) and rows[100][1] == rows[100][3] != rows[100][5]
    assert (out / "two_report.png").stat().st_size > 40_000
    assert main(["estimate", str(clip), "--max-faces", "1", "--json", "-"]) == 0
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [f["id"] for f in one["faces"]] == [1]
    assert main(["estimate", str(clip), "--max-faces", "0"]) == 2
    assert "--max-faces must be at least 1" in capsys.readouterr().err
