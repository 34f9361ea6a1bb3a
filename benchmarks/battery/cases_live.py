"""Fault battery, live streams and several faces: ``mmrphys live`` (bad sources and options, a file too
short, Ctrl-C before and after the first reading), ``mmrphys.Stream`` on bad frames and times, and
``max_faces`` / ``synth --faces`` out of range."""

from __future__ import annotations

import json
from pathlib import Path

from battery.case import Case, CaseRun, all_of, files_under, nothing_written
from battery.cases_api import snippet
from battery.cases_estimate import HR_BPM, HR_TOL_BPM, decoded, good_clip


def _live_files(out: Path, stem: str):
    def check(run: CaseRun) -> str | None:
        names = {p.name for p in files_under(out)}
        want = {f"{stem}.json", f"{stem}_waveforms.csv", f"{stem}_report.png", f"{stem}_session.json"}
        if names != want:
            return f"wrote {sorted(names)}, expected {sorted(want)}"
        hr = json.loads((out / f"{stem}.json").read_text())["heart_rate_bpm"]
        return None if abs(hr - HR_BPM) <= HR_TOL_BPM else f"HR {hr}, truth {HR_BPM}"

    return check


_SIGINT = """\
import signal, subprocess, sys
proc = subprocess.Popen([sys.executable, "-m", "mmrphys", "live", {clip!r}, "--plain", "--speed", "{speed}",
                         "--out", {out!r}], stdout=subprocess.PIPE, text=True)
lines = 0
for line in proc.stdout:
    lines += "face 1: HR" in line or line.startswith("live:")
    if lines >= {after}:
        proc.send_signal(signal.SIGINT)
        break
proc.stdout.read()
sys.exit(proc.wait(timeout=100))
"""


def cases(root: Path) -> list[Case]:
    import numpy as np

    clip = good_clip(root)["video"]
    short = good_clip(root, "short.mp4", duration_s=3.0)["video"]
    np.save(root / "good.npy", np.stack(decoded(Path(clip))))
    text = root / "notes.mp4"
    text.write_text("not a video\n" * 50)
    a_file = root / "a_file"
    a_file.write_text("x")
    out = root / "out"
    c = [
        Case("live/no-source", ["live"], expect_exit=2, must_name="give a FILE or --camera"),
        Case("live/file-and-camera", ["live", clip, "--camera", "0"], expect_exit=2, must_name="one of them"),
        Case("live/camera-index-absent", ["live", "--camera", "97"], expect_exit=2, must_name="camera 97"),
        Case("live/camera-path-absent", ["live", "--camera", str(root / "none.mp4")], expect_exit=2,
             must_name="none.mp4"),
        Case("live/text-file", ["live", str(text), "--fast"], expect_exit=2, must_name="notes.mp4"),
        Case("live/missing-file", ["live", str(root / "missing.mp4")], expect_exit=2,
             must_name="missing.mp4"),
        Case("live/too-short", ["live", short, "--fast", "--out", str(out / "short")], expect_exit=2,
             must_name="minimum is 6 s", check=nothing_written(out / "short")),
        Case("live/out-is-a-file", ["live", clip, "--fast", "--out", str(a_file)], expect_exit=2,
             must_name="a_file"),
        Case("live/speed-zero", ["live", clip, "--speed", "0"], expect_exit=2, must_name="--speed"),
        Case("live/duration-nan", ["live", clip, "--duration", "nan"], expect_exit=2, must_name="--duration"),
        Case("live/fps-zero", ["live", clip, "--fps", "0"], expect_exit=2, must_name="--fps"),
        Case("live/max-faces-zero", ["live", clip, "--max-faces", "0"], expect_exit=2,
             must_name="--max-faces"),
        Case("live/unknown-method", ["live", clip, "--method", "nope"], expect_exit=2, must_name="nope"),
        Case("live/weights-missing", ["live", clip, "--method", "mmrphys", "--weights", str(root / "w.pth")],
             expect_exit=2, must_name="w.pth"),
        Case("live/clean-run", ["live", clip, "--fast", "--plain", "--out", str(out / "ok")], expect_exit=0,
             check=_live_files(out / "ok", "good")),
        Case("live/duration-limit", ["live", clip, "--fast", "--duration", "6.5", "--out", str(out / "dur")],
             expect_exit=0, check=_live_files(out / "dur", "good")),
        Case("live/ctrl-c-after-first-reading",
             python=_SIGINT.format(clip=clip, out=str(out / "int"), speed=2, after=2), expect_exit=130,
             check=_live_files(out / "int", "good")),
        Case("live/ctrl-c-before-6-s", python=_SIGINT.format(clip=clip, out=str(out / "early"), speed=0.5,
                                                              after=1),
             expect_exit=130, check=nothing_written(out / "early")),
        Case("synth/faces-five", ["synth", str(root / "five.mp4"), "--faces", "5"], expect_exit=2,
             must_name="--faces", check=_absent(root / "five.mp4")),
        Case("synth/faces-with-hr", ["synth", str(root / "two.mp4"), "--faces", "2", "--hr", "70"],
             expect_exit=2, must_name="--hr"),
        Case("estimate/max-faces-zero", ["estimate", clip, "--max-faces", "0"], expect_exit=2,
             must_name="--max-faces"),
    ]
    api = {
        "max-faces-zero": ("mmrphys.estimate(good, fps=30, max_faces=0)", "max_faces"),
        "max-faces-text": ("mmrphys.estimate(good, fps=30, max_faces='2')", "max_faces"),
        "stream-float-frame": ("mmrphys.Stream(fps=30).push(good[0].astype(float))", "frame 0"),
        "stream-frame-size-changes": ("s = mmrphys.Stream(fps=30); s.push(good[0]); s.push(good[1][:50])",
                                      "frame 1"),
        "stream-time-goes-back": ("s = mmrphys.Stream(); s.push(good[0], 5.0); s.push(good[1], 4.0)",
                                  "frame 1"),
        "stream-time-nan": ("mmrphys.Stream().push(good[0], float('nan'))", "frame 0"),
        "stream-no-fps-no-time": ("mmrphys.Stream().push(good[0])", "t_s"),
        "stream-ms-not-s": ("s = mmrphys.Stream()\nfor i in range(70): s.push(good[i], 33.3 * i)", "seconds"),
        "stream-close-empty": ("mmrphys.Stream(fps=30).close()", "no frames"),
        "stream-too-short": ("s = mmrphys.Stream(fps=30)\nfor f in good[:90]: s.push(f)\ns.close()",
                             "minimum is 6 s"),
        "stream-fps-zero": ("mmrphys.Stream(fps=0)", "fps"),
        "stream-unknown-method": ("mmrphys.Stream(fps=30, method='nope')", "nope"),
    }
    for name, (body, must) in api.items():
        c.append(Case(f"stream-api/{name}", python=snippet(root, body), expect_exit=2, must_name=must))
    c.append(Case("stream-api/clean-run", python=snippet(root, """
        with mmrphys.Stream(fps=30) as s:
            for f in good:
                s.push(f)
        assert s.readings() and s.readings()[0].t_s <= 10
        report(s.result)"""), expect_exit=0, check=all_of(_hr_printed)))
    return c


def _absent(path: Path):
    def check(run: CaseRun) -> str | None:
        return f"wrote {path.name}" if path.exists() else None

    return check


def _hr_printed(run: CaseRun) -> str | None:
    try:
        hr = json.loads(run.stdout.strip().splitlines()[-1])["hr"]
    except (ValueError, IndexError, KeyError):
        return "no result printed"
    return None if hr is not None and abs(hr - HR_BPM) <= HR_TOL_BPM else f"HR {hr}, truth {HR_BPM}"
