"""``mmrphys analyze session``: re-analysis of exports in the web app's JSON and CSV formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmrphys.cli.main import main
from mmrphys.errors import InputError
from mmrphys.web.session import analyze_session, load_session


def _session(hr=72.0, rr=15.0, seconds=24.0, fps=30.0, with_rsp=True, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    t = np.arange(n) / fps + rng.normal(0, 0.003, n)  # camera frame jitter
    t[0] = 0.0
    t = np.sort(t)
    ph = 2 * np.pi * hr / 60 * t
    bvp = np.sin(ph) + 0.4 * np.sin(2 * ph + 0.8) + 0.2 * rng.normal(size=n)
    rsp = np.sin(2 * np.pi * rr / 60 * t) + 0.1 * rng.normal(size=n)
    hist = [{"t_s": float(s), "bpm": hr + 0.5, "raw_bpm": hr, "snr_db": 4.0, "quality": "good"}
            for s in (10, 15, 20)]
    return {
        "format": "mmrphys-web-session", "version": 1,
        "metadata": {"sampling_rate_hz": fps, "method": "mmrphys_lef_synth", "model": "test"},
        "timestamps_s": t.round(4).tolist(), "bvp": bvp.tolist(), "rsp": rsp.tolist() if with_rsp else None,
        "rates": {"heart_rate_bpm": hr + 0.5, "respiratory_rate_bpm": rr, "heart": hist, "respiratory": []},
        "warnings": [{"t_s": 3.0, "message": "Moving too much: keep your head still"}],
    }


def _csv(obj, path):
    rows = ["t_s,bvp,rsp,hr_bpm,rr_bpm"]
    for i, (t, b) in enumerate(zip(obj["timestamps_s"], obj["bvp"])):
        r = obj["rsp"][i] if obj["rsp"] else ""
        rows.append(f"{t},{b},{r},{'72.50' if t > 10 else ''},")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_json_session_rates(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps(_session()))
    rep = analyze_session(f)
    assert abs(rep["heart_rate_bpm"] - 72.0) < 1.0
    assert abs(rep["respiratory_rate_bpm"] - 15.0) < 1.0 and rep["respiratory_rate_source"] == "rsp"
    assert abs(rep["fs"] - 30.0) < 0.5 and 23.5 < rep["duration_s"] < 24.1
    assert 0.0 <= rep["quality"] <= 1.0
    assert rep["page_heart_rate_bpm"] == 72.5 and rep["method"] == "mmrphys_lef_synth"
    rolled = [v for v in rep["rolling"]["heart_rate_bpm"] if v is not None]
    assert len(rolled) > 10 and np.median(rolled) == pytest.approx(72.0, abs=2.0)


def test_csv_matches_json_and_rr_from_bvp_when_no_rsp(tmp_path):
    obj = _session(with_rsp=False)
    rep = analyze_session(_csv(obj, tmp_path / "s.csv"))
    assert abs(rep["heart_rate_bpm"] - 72.0) < 1.0
    assert rep["respiratory_rate_source"] == "bvp" and rep["page_heart_rate_bpm"] == 72.5
    s = load_session(tmp_path / "s.csv")
    assert s["rsp"] is None and s["t"].size == len(obj["bvp"])


def test_cli_writes_report_and_plot(tmp_path, capsys):
    f = tmp_path / "sess.json"
    f.write_text(json.dumps(_session()))
    out = tmp_path / "out"
    assert main(["analyze", "session", str(f), "--out", str(out), "--json", str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep == json.loads((out / "sess_analysis.json").read_text())
    assert (out / "sess_analysis.png").stat().st_size > 10_000
    assert "HR 72." in capsys.readouterr().out


@pytest.mark.parametrize("content,suffix,match", [
    ('{"format": "other"}', ".json", "format"),
    ("{not json", ".json", "readable JSON"),
    ('{"format": "mmrphys-web-session", "timestamps_s": [0, 1], "bvp": [1]}', ".json", "same length"),
    ('{"format": "mmrphys-web-session", "timestamps_s": [0, 1, 2, 3], "bvp": [1, 2, 1, 2]}', ".json",
     "need at least"),
    ("a,b\n1,2\n", ".csv", "columns t_s and bvp"),
    ("x", ".txt", "expected a .json or .csv"),
    ('{"format": "mmrphys-web-session", "timestamps_s": [0, 1, 2, "x"], "bvp": [1, 2, 1, 2]}', ".json",
     "'timestamps_s' must be a list of numbers"),
    ('{"format": "mmrphys-web-session", "timestamps_s": {"a": 1}, "bvp": [1]}', ".json",
     "'timestamps_s' is missing"),
    ('{"format": "mmrphys-web-session", "timestamps_s": [0, 2, 1, 3], "bvp": [1, 2, 1, 2]}', ".json",
     "increase"),
    ("t_s,bvp\n", ".csv", "columns t_s and bvp"),
])
def test_bad_exports_name_the_problem(tmp_path, content, suffix, match):
    f = tmp_path / f"bad{suffix}"
    f.write_text(content)
    with pytest.raises(InputError, match=match):
        analyze_session(f)


def test_gaps_that_cannot_be_bridged_are_named(tmp_path):
    obj = _session(seconds=12.0)
    obj["timestamps_s"][-1] = 1e9  # one sample a billion seconds on: a 3e10-sample grid otherwise
    f = tmp_path / "gap.json"
    f.write_text(json.dumps(obj))
    with pytest.raises(InputError, match="timestamps_s jump by 1e\\+09 s after sample 358"):
        analyze_session(f)


def test_binary_file_is_named(tmp_path):
    f = tmp_path / "bin.json"
    f.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match="bin.json: not a readable JSON session"):
        analyze_session(f)


def test_report_is_written_atomically_and_unwritable_outputs_are_one_line(tmp_path, capsys):
    f = tmp_path / "sess.json"
    f.write_text(json.dumps(_session()))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["analyze", "session", str(f), "--out", str(blocker)]) == 2  # --out is a file
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "a_file" in err and "output folder" in err
    out = tmp_path / "out"
    taken = out / "sess_analysis.json"
    taken.mkdir(parents=True)  # a folder where the report goes
    assert main(["analyze", "session", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "sess_analysis.json: cannot write" in err
    assert sorted(p.name for p in out.iterdir()) == ["sess_analysis.json", "sess_analysis.png"]  # no temp
    bad_json = str(tmp_path / "no" / "dir" / "r.json")
    assert main(["analyze", "session", str(f), "--out", str(tmp_path), "--json", bad_json]) == 2
    assert "r.json: cannot write" in capsys.readouterr().err


def test_plot_leaves_the_matplotlib_backend_alone(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    f = tmp_path / "sess.json"
    f.write_text(json.dumps(_session()))
    assert main(["analyze", "session", str(f)]) == 0
    assert matplotlib.get_backend() == before
    png = (tmp_path / "sess_analysis.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_cli_error_is_one_line(tmp_path, capsys):
    assert main(["analyze", "session", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.json" in err
