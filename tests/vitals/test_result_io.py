"""Result writers: all three files or none, no temp file, one-line errors naming the path; the
summary line and the report carry the confidence of each vital and the warnings."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from mmrphys.errors import ConfigError
from mmrphys.vitals import report as report_mod
from mmrphys.vitals.result import LOW_CONFIDENCE, Result, check_output_dir, check_output_file


def _result(hr=72.0, rr=float("nan"), warnings=("respiration unreliable",)) -> Result:
    t = np.arange(300) / 30.0
    return Result(heart_rate_bpm=hr, respiratory_rate_bpm=rr, fps=30.0, duration_s=10.0, timestamps_s=t,
                  bvp=np.sin(2 * np.pi * 1.2 * t), rsp=None, rolling=[], hrv={},
                  quality={"signal_quality": 0.5, "face_detected_fraction": 1.0, "warnings": list(warnings)},
                  method="pos", model=None)


def _names(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_save_writes_three_files_and_no_temp(tmp_path):
    files = _result(hr=float("nan")).save(tmp_path / "a" / "b", stem="r")
    assert _names(tmp_path) == ["r.json", "r_report.png", "r_waveforms.csv"]
    assert json.loads(files["json"].read_text())["heart_rate_bpm"] is None  # NaN -> null
    assert files["report"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert files["csv"].read_text().splitlines()[0] == "time_s,bvp,rsp"
    umask_mode = stat.S_IMODE(files["json"].stat().st_mode)
    assert umask_mode & 0o644 == 0o644 or os.geteuid() != 0  # not mkstemp's 0o600


@pytest.mark.parametrize("taken", ["r.json", "r_waveforms.csv", "r_report.png"])
def test_save_refuses_a_name_taken_by_a_folder_and_writes_nothing(tmp_path, taken):
    (tmp_path / taken).mkdir()
    with pytest.raises(ConfigError, match=f"{taken} is taken by a folder") as info:
        _result().save(tmp_path, stem="r")
    assert "\n" not in str(info.value)
    assert _names(tmp_path) == []


def test_save_into_a_file_or_under_a_file(tmp_path):
    (tmp_path / "f").write_text("keep")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        _result().save(tmp_path / "f")
    with pytest.raises(ConfigError, match=r"f/sub: .*f is a file"):
        _result().save(tmp_path / "f" / "sub")
    assert _names(tmp_path) == ["f"] and (tmp_path / "f").read_text() == "keep"


def test_a_failure_while_writing_leaves_the_old_files(tmp_path, monkeypatch):
    _result(hr=60.0).save(tmp_path, stem="r")
    before = {n: (tmp_path / n).read_bytes() for n in _names(tmp_path)}
    real_replace = os.replace
    calls = []

    def fail_second(src, dst):  # the disk fills up after the JSON is in place
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(ConfigError, match="No space left"):
        _result(hr=90.0).save(tmp_path, stem="r")
    monkeypatch.undo()
    # all or nothing: the new JSON already renamed is taken back, the old one restored, no temp file
    assert {n: (tmp_path / n).read_bytes() for n in _names(tmp_path)} == before


def test_a_failure_while_rendering_touches_nothing(tmp_path, monkeypatch):
    _result(hr=60.0).save(tmp_path, stem="r")
    before = {n: (tmp_path / n).read_bytes() for n in _names(tmp_path)}

    def broken(result, target):
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(report_mod, "render_report", broken)
    with pytest.raises(RuntimeError):
        _result(hr=90.0).save(tmp_path, stem="r")
    assert {n: (tmp_path / n).read_bytes() for n in _names(tmp_path)} == before


def test_single_writers(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        _result().write_json(tmp_path / "d")
    with pytest.raises(ConfigError, match="not a regular file"):
        _result().write_report("/dev/null")
    with pytest.raises(ConfigError, match="empty file name"):
        check_output_file("", "--json")
    path = _result().write_csv(tmp_path / "x" / "w.csv")
    assert len(path.read_text().splitlines()) == 301 and _names(tmp_path) == ["w.csv"]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_unwritable_places_are_found_before_a_run():
    with pytest.raises(ConfigError, match="/proc/mmrphys-out: cannot write in /proc"):
        check_output_dir("/proc/mmrphys-out", "r", "--out")
    with pytest.raises(ConfigError, match="--json /proc/x.json: cannot write"):
        check_output_file("/proc/x.json", "--json")


def test_summary_marks_low_confidence():
    res = _result(rr=14.0)
    assert "confidence" not in res.summary()  # no confidence reported: nothing claimed
    res.confidence = {"heart_rate": 0.12, "respiratory_rate": 0.9}
    line = res.summary()
    assert "HR 72.0 bpm (LOW CONFIDENCE 0.12)" in line and "RR 14.0 /min (confidence 0.90)" in line
    res.quality["confidence"] = {"heart_rate": 0.7}
    del res.confidence
    assert "HR 72.0 bpm (confidence 0.70)" in res.summary()  # read from quality when not an attribute
    from mmrphys.signals.quality import CONFIDENCE_THRESHOLD

    assert LOW_CONFIDENCE == CONFIDENCE_THRESHOLD  # the summary marks exactly what the warnings flag


def test_report_lists_confidence_and_every_warning_without_pyplot_state():
    import matplotlib

    backend = matplotlib.get_backend()
    res = _result(warnings=[f"warning number {i}" for i in range(10)])
    res.confidence = {"heart_rate": 0.12}
    lines = [text for text, _ in report_mod._summary_lines(res)]
    assert "    LOW CONFIDENCE 0.12" in lines
    assert "10 warnings:" in lines and "! warning number 0" in lines
    assert any("2 more" in text for text in lines)
    import io

    buf = io.BytesIO()
    report_mod.render_report(res, buf)
    assert buf.getvalue()[:4] == b"\x89PNG" and matplotlib.get_backend() == backend
    plt = __import__("sys").modules.get("matplotlib.pyplot")
    assert plt is None or plt.get_fignums() == []
