"""Fault battery, the Python API: ``mmrphys.estimate`` on bad frame arrays, timestamps, fps and sources,
and the result writers (``Result.save`` / ``write_json``) on bad paths.

Each case is a snippet that calls the API and turns an :class:`mmrphys.MmrphysError` into one stderr
line ``error: <Type>: <message>`` and exit 2, as a program using the library would; any other
exception is a traceback, so it is NOT CLEAN. The frames come from the same synthetic clip as the
estimate cases (decoded once, saved as ``good.npy``).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np

from battery.case import Case, CaseRun, all_of, files_under, unchanged
from battery.cases_estimate import HR_BPM, HR_TOL_BPM, decoded, good_clip

_PRELUDE = """\
import json, sys
from pathlib import Path
import numpy as np
import mmrphys
from mmrphys.errors import MmrphysError
ROOT = Path({root!r})
good = np.load(ROOT / "good.npy", mmap_mode="r")  # (N, H, W, 3) uint8, 30 fps, HR {hr:g}
def report(res):
    print(json.dumps({{"hr": res.heart_rate_bpm, "warnings": res.warnings, "fps": res.fps,
                      "summary": res.summary()}}))
try:
{body}
except MmrphysError as err:
    print(f"error: {{type(err).__name__}}: {{err}}", file=sys.stderr)
    sys.exit(2)
"""


def snippet(root: Path, body: str) -> str:
    body = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    return _PRELUDE.format(root=str(root), hr=HR_BPM, body=body)


def one_line(run: CaseRun) -> str | None:
    lines = [ln for ln in run.stderr.strip().splitlines() if ln.strip()]
    return None if len(lines) <= 1 else f"{len(lines)} lines on stderr, expected one"


def result_ok(hr: float | None = HR_BPM, warn: str | None = None, summary: str | None = None):
    def check(run: CaseRun) -> str | None:
        try:
            data = json.loads(run.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return "no result printed"
        if hr is not None and (data["hr"] is None or abs(data["hr"] - hr) > HR_TOL_BPM):
            return f"HR {data['hr']} bpm, truth {hr:.1f} (tolerance {HR_TOL_BPM})"
        text = " | ".join(data["warnings"])
        if warn is not None and warn.lower() not in text.lower():
            return f"no warning mentioning {warn!r} (warnings: {text[:150] or 'none'})"
        if summary is not None and summary not in data["summary"]:
            return f"summary {data['summary']!r} lacks {summary!r}"
        return None

    return check


# A Result built directly (no estimation): the writers' cases run in a second.
_FAKE_RESULT = """
from mmrphys.vitals.result import Result
t = np.arange(300) / 30.0
res = Result(heart_rate_bpm={hr}, respiratory_rate_bpm=float("nan"), fps=30.0, duration_s=10.0,
             timestamps_s=t, bvp=np.sin(2 * np.pi * 1.2 * t), rsp=None, rolling=[], hrv={{}},
             quality={{"signal_quality": 0.01, "face_detected_fraction": 1.0, "warnings": ["test warning"]}},
             method="pos", model=None)
"""


def fake_result(hr: str = "72.0") -> str:
    return _FAKE_RESULT.format(hr=hr)


def cases(root: Path) -> list[Case]:
    good_clip(root)
    frames = np.stack(decoded(root / "good.mp4"))
    np.save(root / "good.npy", frames)
    (root / "notes.txt").write_text("hello, not a video\n" * 50)
    noise = np.random.default_rng(3).integers(0, 256, 20_000, dtype=np.uint8)
    (root / "random.pth").write_bytes(noise.tobytes())
    out = root / "out"
    out.mkdir()
    cs: list[Case] = []

    def bad(name: str, body: str, must: str, extra_check=None, timeout_s: float = 60):
        cs.append(Case(f"api/{name}", python=snippet(root, body), expect_exit=2, must_name=must,
                       timeout_s=timeout_s, check=all_of(one_line, extra_check)))

    def ok(name: str, body: str, hr: float | None = HR_BPM, warn: str | None = None,
           summary: str | None = None):
        cs.append(Case(f"api/{name}", python=snippet(root, body), expect_exit=0,
                       check=result_ok(hr=hr, warn=warn, summary=summary)))

    # -- frame lists and arrays
    bad("ragged-list", "f = list(good); f[7] = f[7][:-2]; mmrphys.estimate(f, fps=30)", "frames[7]")
    bad("list-of-numbers", "mmrphys.estimate([1, 2, 3], fps=30)", "frames[0]")
    bad("empty-list", "mmrphys.estimate([], fps=30)", "empty")
    bad("empty-array", "mmrphys.estimate(np.zeros((0, 120, 160, 3), np.uint8), fps=30)", "no frames")
    bad("single-frame-hw", "mmrphys.estimate(good[0, ..., 0], fps=30)", "shape")
    bad("single-frame-hw3", "mmrphys.estimate(np.array(good[0]), fps=30)", "one (H, W, 3) image")
    bad("rgba-frames", "mmrphys.estimate(np.concatenate([good, good[..., :1]], -1), fps=30)", "4 channels")
    bad("channels-first", "mmrphys.estimate(np.ascontiguousarray(good.transpose(0, 3, 1, 2)), fps=30)",
        "channels-first")
    bad("two-channels", "mmrphys.estimate(np.array(good[..., :2]), fps=30)", "shape")
    bad("five-dims", "mmrphys.estimate(np.array(good)[None], fps=30)", "shape")
    bad("tiny-frames-1px", "mmrphys.estimate(np.array(good[:, :1, :1]), fps=30)", "too small")
    bad("small-frames-no-face", "mmrphys.estimate(np.array(good[:, ::8, ::8]), fps=30)", "no face")
    bad("black-frames", "mmrphys.estimate(np.zeros_like(good), fps=30)", "no face")
    bad("one-frame", "mmrphys.estimate(np.array(good[:1]), fps=30)", "minimum is 6 s")
    bad("three-seconds", "mmrphys.estimate(np.array(good[:90]), fps=30)", "minimum is 6 s")
    bad("bool-dtype", "mmrphys.estimate(np.array(good) > 100, fps=30)", "dtype bool")
    bad("complex-dtype", "mmrphys.estimate(np.array(good).astype(np.complex64), fps=30)", "dtype complex64")
    bad("string-dtype", "mmrphys.estimate(np.full((200, 64, 64, 3), 'a'), fps=30)", "dtype <U1")
    f32 = "f = np.array(good, np.float32); "
    bad("float-nan-frame", f32 + "f[4, 10, 10, 0] = np.nan; mmrphys.estimate(f, fps=30)", "frame 4")
    bad("float-inf-frame", f32 + "f[2, 0, 0] = np.inf; mmrphys.estimate(f, fps=30)", "frame 2")
    bad("float-over-255", f32 + "f[5] *= 2; mmrphys.estimate(f, fps=30)", "frame 5")
    bad("float-negative", "f = np.array(good, np.float32) / 255; f[3] -= 0.5; mmrphys.estimate(f, fps=30)",
        "frame 3")
    bad("int16-negative", "f = np.array(good, np.int16); f[6, 0, 0, 0] = -1; mmrphys.estimate(f, fps=30)",
        "frame 6")
    bad("int32-over-255", "f = np.array(good, np.int32); f[9] *= 4; mmrphys.estimate(f, fps=30)", "frame 9")
    bad("grey-array-colour-method", "mmrphys.estimate(np.array(good[..., 1]), fps=30)", "frames")
    bad("grey-as-rgb-colour-method",
        "g = np.repeat(np.array(good[..., 1:2]), 3, -1); mmrphys.estimate(g, fps=30)", "frames")
    ok("list-of-frames", "report(mmrphys.estimate(list(good), fps=30))")
    ok("float32-0-255", "report(mmrphys.estimate(np.array(good, np.float32), fps=30))")
    ok("float64-0-1", "report(mmrphys.estimate(np.array(good) / 255.0, fps=30))")
    ok("float16-0-1", "report(mmrphys.estimate((np.array(good) / 255.0).astype(np.float16), fps=30))")
    ok("int16-in-range", "report(mmrphys.estimate(np.array(good, np.int16), fps=30))")
    ok("uint16-16-bit", "report(mmrphys.estimate(np.array(good, np.uint16) * 257, fps=30))", warn="16-bit")
    ok("read-only-array", "report(mmrphys.estimate(good, fps=30))")
    ok("negative-stride-view", "report(mmrphys.estimate(np.array(good)[..., ::-1][..., ::-1], fps=30))")
    ok("grey-array-green", "report(mmrphys.estimate(np.array(good[..., 1]), fps=30, method='green'))",
       hr=None, warn="gray")

    # -- fps and timestamps
    for label, v in [("zero", "0"), ("negative", "-30"), ("nan", "float('nan')"), ("inf", "float('inf')"),
                     ("1e9", "1e9"), ("text", "'abc'"), ("list", "[30]")]:
        bad(f"fps-{label}", f"mmrphys.estimate(good, fps={v})", "fps")
    bad("no-fps-no-timestamps", "mmrphys.estimate(good)", "frame rate")
    n = len(frames)
    bad("timestamps-non-monotonic",
        f"t = np.arange({n}) / 30; t[5] = t[3]; mmrphys.estimate(good, timestamps=t)", "timestamps[5]")
    bad("timestamps-decreasing", f"mmrphys.estimate(good, timestamps=np.arange({n})[::-1] / 30)",
        "timestamps[1]")
    bad("timestamps-wrong-length", f"mmrphys.estimate(good, timestamps=np.arange({n - 1}) / 30)",
        "one value per frame")
    bad("timestamps-nan", f"t = np.arange({n}) / 30; t[3] = np.nan; mmrphys.estimate(good, timestamps=t)",
        "timestamps[3]")
    bad("timestamps-2d", f"mmrphys.estimate(good, timestamps=(np.arange({n}) / 30)[:, None])",
        "one value per frame")
    bad("timestamps-strings", f"mmrphys.estimate(good, timestamps=['a'] * {n})", "timestamps")
    bad("timestamps-milliseconds", f"mmrphys.estimate(good, timestamps=np.arange({n}) * 33.3)", "seconds")
    bad("fps-disagrees-with-timestamps", f"mmrphys.estimate(good, fps=60, timestamps=np.arange({n}) / 30)",
        "disagrees")
    ok("timestamps-jittered",
       f"t = np.arange({n}) / 30 + np.random.default_rng(0).uniform(0, 0.01, {n})\n"
       "report(mmrphys.estimate(good, timestamps=t))")

    # -- sources and options
    bad("source-none", "mmrphys.estimate(None)", "source")
    bad("source-int", "mmrphys.estimate(123)", "source")
    bad("source-generator", "mmrphys.estimate((f for f in good), fps=30)", "source")
    bad("source-missing-path", "mmrphys.estimate(str(ROOT / 'nope.mp4'))", "nope.mp4")
    bad("source-text-file", "mmrphys.estimate(ROOT / 'notes.txt')", "text file")
    bad("path-with-timestamps", "mmrphys.estimate(str(ROOT / 'good.mp4'), timestamps=[0, 1])", "timestamps")
    bad("path-fps-zero", "mmrphys.estimate(str(ROOT / 'good.mp4'), fps=0)", "fps")
    bad("path-fps-text", "mmrphys.estimate(str(ROOT / 'good.mp4'), fps='abc')", "fps")
    bad("method-unknown", "mmrphys.estimate(good, fps=30, method='nope')", "nope")
    bad("method-not-a-string", "mmrphys.estimate(good, fps=30, method=3)", "method")
    bad("weights-random-bytes",
        "mmrphys.estimate(good, fps=30, method='mmrphys', weights=str(ROOT / 'random.pth'))", "random.pth")
    bad("weights-with-pos", "mmrphys.estimate(good, fps=30, weights=str(ROOT / 'random.pth'))", "weights")
    bad("preset-unknown", "mmrphys.estimate(good, fps=30, preset='nope')", "nope")

    # -- result writers: nothing half-written
    def writer(name: str, setup: str, call: str, must: str, watch: Path):
        bad(f"result-{name}", fake_result() + setup + "\n" + call, must, extra_check=unchanged(watch))

    d = out / "save-to-file"
    d.mkdir()
    (d / "taken").write_text("a file")
    writer("save-to-a-file", "", f"res.save({str(d / 'taken')!r}, stem='r')", "taken", d)
    for kind, taken in (("json", "r.json"), ("csv", "r_waveforms.csv"), ("png", "r_report.png")):
        d = out / f"save-{kind}-taken"
        (d / taken).mkdir(parents=True)
        writer(f"save-{kind}-name-is-folder", "", f"res.save({str(d)!r}, stem='r')", taken, d)
    d = out / "json-to-dir"
    (d / "adir").mkdir(parents=True)
    writer("write-json-to-folder", "", f"res.write_json({str(d / 'adir')!r})", "adir", d)
    d = out / "json-under-file"
    d.mkdir()
    (d / "afile").write_text("x")
    writer("write-json-under-file", "", f"res.write_json({str(d / 'afile' / 'r.json')!r})", "afile", d)
    writer("write-csv-in-proc", "", "res.write_csv('/proc/mmrphys-battery.csv')", "/proc", out / "none")
    writer("write-report-to-dev-full", "", "res.write_report('/dev/full')", "/dev/full", out / "none")
    d = out / "save-ok"

    def saved_ok(run: CaseRun) -> str | None:
        names = sorted(f.name for f in files_under(d))
        if names != ["r.json", "r_report.png", "r_waveforms.csv"]:
            return f"saved {names}"
        data = json.loads((d / "r.json").read_text())
        return None if data["heart_rate_bpm"] is None else f"NaN HR written as {data['heart_rate_bpm']}"

    cs.append(Case("api/result-save-nan-rates", python=snippet(root, fake_result("float('nan')")
                                                                 + f"res.save({str(d)!r}, stem='r')"),
                   expect_exit=0, check=saved_ok))

    def low_conf(run: CaseRun) -> str | None:
        return None if "LOW CONFIDENCE 0.12" in run.stdout else f"summary: {run.stdout.strip()[:150]}"

    cs.append(Case("api/result-summary-low-confidence",
                   python=snippet(root, fake_result()
                                  + "res.confidence = {'heart_rate': 0.12}\nprint(res.summary())"),
                   expect_exit=0, check=low_conf))
    return cs
