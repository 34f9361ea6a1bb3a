"""A folder of image frames as one recording: ``mmrphys estimate FRAMES/ --fps 30``, ``mmrphys.estimate``,
and image folders named in a batch."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import mmrphys
from mmrphys.cli.main import main
from mmrphys.errors import InputError
from mmrphys.synth import FaceLook, draw_face, make_clip, physiology, render_frames
from mmrphys.vitals.batch import find_inputs, read_summary

FPS = 30
HR, RR = 72.0, 12.0
# 12 s synthetic face at 160x120: the default model and POS read its HR within ~1 bpm (the clip tests
# of tests/vitals hold 2 bpm on 30 s); 3 bpm leaves room for the shorter clip on any CPU.
HR_TOL_BPM = 3.0


def _png_folder(folder, hr=HR, seed=4, seconds=12):
    scene = draw_face(160, 120, FaceLook(), seed=seed)
    phys = physiology(hr, RR, seconds, FPS, seed=seed)
    folder.mkdir(parents=True)
    for i, (rgb, _) in enumerate(render_frames(scene, phys, seed=seed)):
        cv2.imwrite(str(folder / f"frame_{i}.png"), rgb[..., ::-1])
    return folder


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    return _png_folder(tmp_path_factory.mktemp("images") / "frames")


def test_cli_reads_a_frame_folder_as_one_recording(frames_dir, tmp_path, capsys):
    out = tmp_path / "hr.json"
    assert main(["estimate", str(frames_dir), "--fps", str(FPS), "--json", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert abs(data["heart_rate_bpm"] - HR) <= HR_TOL_BPM
    assert data["fps"] == FPS and data["duration_s"] == pytest.approx(12.0, abs=1 / FPS)
    assert data["quality"]["face_detected_fraction"] > 0.95
    assert not (tmp_path / "summary.csv").exists()  # one recording, not a batch


def test_python_reads_the_same_folder_with_the_same_numbers_as_the_array(frames_dir):
    res = mmrphys.estimate(frames_dir, fps=FPS, method="pos", progress=False)
    files = sorted(frames_dir.glob("*.png"), key=lambda f: int(f.stem.split("_")[1]))
    arr = np.stack([cv2.imread(str(f))[..., ::-1] for f in files])
    ref = mmrphys.estimate(arr, fps=FPS, method="pos", progress=False)
    assert abs(res.heart_rate_bpm - HR) <= HR_TOL_BPM
    # the same frames, in the same order, through the same pipeline: the same numbers (float64 maths on
    # identical uint8 input, so equal up to summation order: 1e-9 bpm is far above any rounding here)
    assert res.heart_rate_bpm == pytest.approx(ref.heart_rate_bpm, abs=1e-9)
    np.testing.assert_allclose(res.bvp, ref.bvp, atol=1e-9)


def test_no_rate_is_one_line_naming_the_folder(frames_dir, capsys):
    assert main(["estimate", str(frames_dir), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(frames_dir) in err[0] and "--fps" in err[0]


def test_frame_folders_named_in_a_batch_are_inputs_beside_videos(frames_dir, tmp_path):
    other = _png_folder(tmp_path / "second", hr=90.0, seed=5, seconds=10)
    video = Path(make_clip(tmp_path / "clip.mp4", hr_bpm=60, rr_bpm=14, duration_s=10, size=(160, 120),
                           seed=6)["video"])
    assert find_inputs([frames_dir, other, video]) == [frames_dir, other, video]
    out = tmp_path / "res"
    assert main(["estimate", str(frames_dir), str(other), str(video), "--out", str(out), "--fps", str(FPS),
                 "--method", "pos", "--quiet"]) == 0
    rows = {r["stem"]: r for r in read_summary(out / "summary.csv")}
    assert set(rows) == {"frames", "second", "clip"} and all(r["status"] == "ok" for r in rows.values())
    assert abs(float(rows["clip"]["heart_rate_bpm"]) - 60.0) <= HR_TOL_BPM
    assert abs(float(rows["frames"]["heart_rate_bpm"]) - HR) <= HR_TOL_BPM
    assert abs(float(rows["second"]["heart_rate_bpm"]) - 90.0) <= HR_TOL_BPM


def test_a_folder_of_frame_folders_is_not_searched_for_frames(tmp_path):
    _png_folder(tmp_path / "root" / "a", seconds=1)
    with pytest.raises(InputError, match="no video files in this folder or below.*named itself"):
        find_inputs([tmp_path / "root"])
