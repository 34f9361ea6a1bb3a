"""``mmrphys live`` with a file as the camera: readings within 10 s of video, the final result equal to
``estimate``'s, a session that ``analyze session`` re-analyses, and Ctrl-C writing it (exit 130)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

import mmrphys
from mmrphys.cli.main import main


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    out = tmp_path_factory.mktemp("live") / "c.mp4"
    assert main(["synth", str(out), "--duration", "16", "--hr", "75", "--rr", "15", "--size", "160x120"]) == 0
    return out


def _readings(text: str) -> list[tuple[float, float]]:
    """(t_s, HR) of the plain reading lines ``  6.0 s  face 1: HR 75.1 bpm (0.91)...``."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 5 and parts[1] == "s" and parts[2] == "face" and parts[4] == "HR":
            out.append((float(parts[0]), float(parts[5])))
    return out


def test_live_file_fast_equals_estimate_and_its_session_reanalyses(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["live", str(clip), "--fast", "--plain", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    readings = _readings(printed)
    assert readings and readings[0][0] <= 10.0  # the first HR within 10 s of video
    assert all(abs(hr - 75) <= 3 for _, hr in readings)
    live = json.loads((out / "c.json").read_text())
    ref = mmrphys.estimate(clip, progress=False).to_dict()
    for d in (live, ref):
        d.pop("source")
    assert live == json.loads(json.dumps(ref))  # the same pipeline on the same frames: the same numbers
    assert {p.name for p in out.iterdir()} == {"c.json", "c_waveforms.csv", "c_report.png", "c_session.json"}
    session = json.loads((out / "c_session.json").read_text())
    assert session["format"] == "mmrphys-web-session" and session["metadata"]["face_id"] == 1
    assert [h["t_s"] for h in session["rates"]["heart"]] == [t for t, _ in readings]
    assert main(["analyze", "session", str(out / "c_session.json"), "--out", str(tmp_path / "ana")]) == 0
    report = json.loads((tmp_path / "ana" / "c_session_analysis.json").read_text())
    assert abs(report["heart_rate_bpm"] - live["heart_rate_bpm"]) <= 1.0
    assert report["fs"] == pytest.approx(30, abs=0.01) and report["samples"] == len(session["bvp"])


def test_file_through_opencv_as_the_camera(clip, tmp_path, capsys):
    out = tmp_path / "cam"
    assert main(["live", "--camera", str(clip), "--fast", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert _readings(printed) == [] and "HR " in printed  # --quiet: the summary only
    data = json.loads((out / "c.json").read_text())
    assert abs(data["heart_rate_bpm"] - 75) <= 3 and data["fps"] == pytest.approx(30)
    assert json.loads((out / "c_session.json").read_text())["metadata"]["source"] == "file"


def _live(clip, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "mmrphys", "live", str(clip), "--plain", "--out", str(out),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ctrl_c_writes_the_session_and_exits_130(clip, tmp_path):
    out = tmp_path / "int"
    proc = _live(clip, out, "--speed", "3")
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for two readings (8 s of video), then Ctrl-C
        line = proc.stdout.readline()
        if not line:
            break
        seen += _readings(line)
        if len(seen) >= 2:
            proc.send_signal(signal.SIGINT)
            break
    stdout, stderr = proc.communicate(timeout=120)
    assert len(seen) >= 2, stderr
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    data = json.loads((out / "c.json").read_text())
    assert 7.0 <= data["duration_s"] < 16.0  # the stream up to Ctrl-C, not the whole file
    session = json.loads((out / "c_session.json").read_text())
    assert len(session["rates"]["heart"]) >= 2 and len(session["bvp"]) == len(session["timestamps_s"])


def test_ctrl_c_before_6_s_writes_nothing(clip, tmp_path):
    out = tmp_path / "early"
    proc = _live(clip, out, "--speed", "0.5")
    proc.stdout.readline()  # the start line: frames are being read
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "nothing written" in stderr and "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["live"], "give a FILE or --camera"),
    (["live", "{clip}", "--camera", "0"], "give a FILE or --camera"),
    (["live", "--camera", "/nonexistent/cam.mp4"], "cannot be opened"),
    (["live", "{clip}", "--speed", "0"], "--speed must be a positive"),
    (["live", "{clip}", "--max-faces", "0"], "--max-faces must be at least 1"),
    (["live", "{clip}", "--method", "nope"], "unknown method"),
])
def test_bad_options_are_one_line_exit_2(clip, capsys, args, message):
    args = [a.replace("{clip}", str(clip)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_camera_is_read_in_a_thread_and_timed_as_frames_arrive(clip, tmp_path, monkeypatch, capsys):
    """A fake OpenCV camera (index 0) on the clip's frames, 30 per second of a fake clock: the frames
    come through the background reader, the rate is measured from their arrival times, the stream's
    files are named live-<date>-<time>, and the camera is released."""
    import types

    import cv2
    import numpy as np

    import mmrphys.cli.live as live
    from mmrphys.video import open_video

    frames = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f, _ in open_video(clip)]
    clock = {"t": 100.0}
    released = []

    class FakeCamera:
        def __init__(self, source):
            assert source == 0
            self.i = 0

        def isOpened(self):
            return True

        def get(self, prop):
            return 0.0  # a camera that does not say its rate

        def read(self):
            if self.i >= len(frames):
                return False, None
            clock["t"] += 1 / 30
            self.i += 1
            return True, frames[self.i - 1].copy()

        def release(self):
            released.append(True)

    monkeypatch.setattr(cv2, "VideoCapture", FakeCamera)
    monkeypatch.setattr(live, "time", types.SimpleNamespace(monotonic=lambda: clock["t"], sleep=None))
    out = tmp_path / "cam0"
    assert main(["live", "--camera", "0", "--plain", "--out", str(out)]) == 0
    assert released and _readings(capsys.readouterr().out)[0][0] <= 10.0
    (json_file,) = [p for p in out.iterdir() if p.suffix == ".json" and "session" not in p.name]
    assert json_file.name.startswith("live-")
    data = json.loads(json_file.read_text())
    assert data["fps"] == pytest.approx(30, abs=0.01) and abs(data["heart_rate_bpm"] - 75) <= 3
    session = json.loads(json_file.with_name(json_file.stem + "_session.json").read_text())
    assert session["metadata"]["source"] == "camera" and np.isfinite(session["bvp"]).all()
