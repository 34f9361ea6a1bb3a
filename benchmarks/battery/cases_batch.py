"""Fault battery, many files and thermal input: ``mmrphys estimate A B folder/ --out DIR`` and
``mmrphys estimate [VIDEO] --thermal T``.

Inputs (made once in ``root``): two good 8 s synthetic face clips (160x120), broken files, folders of
every kind, and thermal recordings (arrays, timestamps, iBVP ``.raw`` frames) with small untrained
thermal / RGB + thermal MMRPhys weights (the cases test the plumbing, not accuracy). Batch cases
check ``summary.csv`` (one row per input, statuses), the result sets and that no temporary file or
worker process is left; thermal error cases check that nothing was written.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import textwrap
from pathlib import Path

import numpy as np

from battery.case import Case, CaseRun, all_of, files_under, unchanged

SIZE = (160, 120)
CLIP_S = 8.0
RESULT_SUFFIXES = (".json", "_waveforms.csv", "_report.png")


def die_on(name: str) -> None:
    """A pool initializer (``worker_init``): the worker process dies on the input called ``name``."""
    from mmrphys.vitals import batch

    run_one = batch._run_one

    def dying(path, stem, out_dir, options):
        if Path(path).name == name:
            os._exit(9)
        return run_one(path, stem, out_dir, options)

    batch._run_one = dying


# --- inputs --------------------------------------------------------------------------------------
def make_inputs(root: Path) -> dict:
    import cv2
    import torch

    from mmrphys.models import create
    from mmrphys.models.checkpoints import save_weights
    from mmrphys.synth import make_clip

    p: dict = {}
    truth = make_clip(root / "good.mp4", hr_bpm=72, rr_bpm=14, duration_s=CLIP_S, size=SIZE, seed=1,
                      thermal=True, thermal_suffix=".npy", thermal_size=(80, 60))
    p["good"], p["thermal_npy"] = root / "good.mp4", Path(truth["thermal_video"])
    make_clip(root / "good2.mp4", hr_bpm=90, rr_bpm=12, duration_s=CLIP_S, size=SIZE, seed=2)
    p["good2"] = root / "good2.mp4"
    p["broken"] = root / "broken.mp4"
    p["broken"].write_bytes(b"\x00\x00\x00\x18ftypmp42 but then nothing" * 40)
    # folders
    mixed = root / "mixed"
    (mixed / "sub").mkdir(parents=True)
    shutil.copy(p["good"], mixed / "a.mp4")
    shutil.copy(p["good2"], mixed / "sub" / "b.mp4")
    shutil.copy(p["broken"], mixed / "sub" / "c_broken.mp4")
    p["mixed"] = mixed
    clutter = root / "clutter"
    clutter.mkdir()
    shutil.copy(p["good"], clutter / "clip.mp4")
    (clutter / "._clip.mp4").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # macOS resource fork
    (clutter / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (clutter / "notes.txt").write_text("session notes\n")
    os.symlink(".", clutter / "loop")  # a folder that contains itself
    p["clutter"] = clutter
    same = root / "same"
    for d in ("a", "b"):
        (same / d).mkdir(parents=True)
        shutil.copy(p["good"], same / d / "clip.mp4")
    p["same"] = same
    (root / "novideo").mkdir()
    (root / "novideo" / "readme.txt").write_text("no video here\n")
    p["novideo"] = root / "novideo"
    p["afile"] = root / "afile.txt"
    p["afile"].write_text("a file, not a folder\n")
    # thermal recordings
    th = np.load(p["thermal_npy"])
    np.save(root / "t_notimes.npy", th)
    p["t_notimes"] = root / "t_notimes.npy"
    np.save(root / "t_ms.npy", th)
    np.save(root / "t_ms.timestamps.npy", np.arange(len(th)) * 33.3)
    p["t_ms"] = root / "t_ms.npy"
    np.save(root / "t_centikelvin.npy", np.round((th + 273.15) * 100).astype(np.uint16))
    np.save(root / "t_centikelvin.timestamps.npy", np.arange(len(th)) / 30.0)
    p["t_ck"] = root / "t_centikelvin.npy"
    (root / "t_garbage.npy").write_bytes(b"\x93NUMPY garbage" * 20)
    p["t_garbage"] = root / "t_garbage.npy"
    raw = root / "raw_t"
    raw.mkdir()
    for k in range(len(th)):  # the 80x60 view at iBVP's 640x512, as raw counts (°C = x 0.04 - 273.15)
        big = cv2.resize(th[k], (640, 512), interpolation=cv2.INTER_LINEAR)
        np.round((big + 273.15) / 0.04).astype("<u2").tofile(raw / f"{k:05d}.raw")
    (raw / "00100.raw").write_bytes(b"\x00" * 1000)  # one truncated frame in the middle
    p["raw_bad"] = raw
    torch.manual_seed(0)
    p["w_t"] = save_weights(create("mmrphys_lef", in_channels=1), root / "w_thermal.pt")
    p["w_rgbt"] = save_weights(create("mmrphys_lnf", in_channels=4), root / "w_rgbt.pt")
    return p


# --- checks --------------------------------------------------------------------------------------
def summary_is(out: Path, expected: dict[str, str]) -> callable:
    """A check: ``out/summary.csv`` has exactly these ``stem: status`` rows, each ok/skipped row a
    complete result set, no failed row a result file, and no temporary file in ``out``."""

    def check(run: CaseRun) -> str | None:
        path = out / "summary.csv"
        if not path.is_file():
            return "no summary.csv"
        with open(path, newline="") as fh:
            rows = {r["stem"]: r for r in csv.DictReader(fh)}
        got = {s: r["status"] for s, r in rows.items()}
        if got != expected:
            return f"summary rows {got}, expected {expected}"
        for stem, status in got.items():
            have = [(out / f"{stem}{s}").is_file() for s in RESULT_SUFFIXES]
            if status in ("ok", "skipped") and not all(have):
                return f"{stem}: status {status} but its result set is incomplete"
            if status == "failed" and (any(have) or not rows[stem]["error"]):
                return f"{stem}: failed without a reason, or with result files"
        temps = [f.name for f in files_under(out) if f.name.startswith(".")]
        return f"temporary files left: {temps}" if temps else None

    return check


def no_output(folder: Path) -> callable:
    def check(run: CaseRun) -> str | None:
        left = files_under(folder)
        return f"wrote {left[0].name}" if left else None

    return check


def _py(code: str) -> str:
    return textwrap.dedent(code).strip()


# --- cases ---------------------------------------------------------------------------------------
def cases(root: Path) -> list[Case]:
    p = make_inputs(root)
    base = root / "out"
    base.mkdir()
    cs: list[Case] = []

    def slot(name: str) -> Path:
        return base / name.replace("/", "_")

    def est(name, args, out=None, **kw):
        argv = ["estimate", *[str(a) for a in args], "--quiet"]
        argv += ["--out", str(out)] if out is not None else []
        cs.append(Case(f"batch/{name}", argv, **kw))

    # -- batches that run: one broken input fails alone, exit 1
    out = slot("one-broken-among-good")
    est("one-broken-among-good", [p["mixed"], "--workers", "2"], out, expect_exit=1, must_name="c_broken.mp4",
        check=summary_is(out, {"a": "ok", "b": "ok", "c_broken": "failed"}))
    out = slot("missing-file-among-inputs")
    est("missing-file-among-inputs", [p["good"], root / "nope.mp4"], out, expect_exit=1, must_name="nope.mp4",
        check=summary_is(out, {"good": "ok", "nope": "failed"}))
    out = slot("only-input-broken")
    est("only-input-broken", [p["broken"], p["broken"]], out, expect_exit=1, must_name="broken.mp4",
        check=summary_is(out, {"broken": "failed"}))
    out = slot("clutter-hidden-text-loop")
    est("clutter-hidden-text-loop", [p["clutter"]], out, expect_exit=0,
        check=summary_is(out, {"clip": "ok"}))
    out = slot("same-name-two-folders")
    est("same-name-two-folders", [p["same"]], out, expect_exit=0,
        check=summary_is(out, {"a_clip": "ok", "b_clip": "ok"}))
    out = slot("same-file-three-ways")
    os.symlink(p["good"], root / "alias.mp4")
    three = [p["good"], f"{p['good'].parent}/./{p['good'].name}", root / "alias.mp4"]
    est("same-file-three-ways", three, out, expect_exit=0, check=summary_is(out, {"good": "ok"}))

    # a half-written result set (JSON only) and a stale temp file from a killed run are redone / removed
    out = slot("half-written-result-redone")
    out.mkdir()
    (out / "good.json").write_text(json.dumps({"source": str(p["good"]), "method": "pos", "model": None}))
    (out / ".good_report.png.abc123.tmp").write_bytes(b"partial")
    est("half-written-result-redone", [p["good"], p["good2"]], out, expect_exit=0,
        check=summary_is(out, {"good": "ok", "good2": "ok"}))
    # results of another file under the same name are not taken as done
    out = slot("foreign-result-same-name")
    out.mkdir()
    for s in RESULT_SUFFIXES:
        (out / f"good{s}").write_bytes(json.dumps({"source": "/elsewhere/good.mp4", "method": "pos",
                                                   "model": None}).encode() if s == ".json" else b"x")

    def redone(run: CaseRun, out=out) -> str | None:
        src = json.loads((out / "good.json").read_text()).get("source")
        return None if src == str(p["good"]) else f"good.json still from {src}"

    est("foreign-result-same-name", [p["good"], p["good2"]], out, expect_exit=0,
        check=all_of(summary_is(out, {"good": "ok", "good2": "ok"}), redone))

    # -- refused before any work (exit 2, nothing written)
    out = slot("folder-without-out")
    est("folder-without-out", [p["mixed"]], None, expect_exit=2, must_name="--out")
    out = slot("json-with-batch")
    est("json-with-batch", [p["good"], p["good2"], "--json", out / "x.json"], out, expect_exit=2,
        must_name="--json", check=no_output(out))
    out = slot("workers-zero")
    est("workers-zero", [p["mixed"], "--workers", "0"], out, expect_exit=2, must_name="--workers",
        check=no_output(out))
    out = slot("workers-not-a-number")
    est("workers-not-a-number", [p["mixed"], "--workers", "two"], out, expect_exit=2, must_name="--workers",
        check=no_output(out))
    out = slot("folder-without-videos")
    est("folder-without-videos", [p["good"], p["novideo"]], out, expect_exit=2, must_name="novideo",
        check=no_output(out))
    est("out-is-a-file", [p["good"], p["good2"]], p["afile"], expect_exit=2, must_name="afile.txt")
    out = slot("result-name-taken-by-folder")
    (out / "good_report.png").mkdir(parents=True)
    est("result-name-taken-by-folder", [p["good"], p["good2"]], out, expect_exit=2,
        must_name="good_report.png", check=unchanged(out))
    out = slot("summary-is-a-folder")
    (out / "summary.csv").mkdir(parents=True)
    est("summary-is-a-folder", [p["good"], p["good2"]], out, expect_exit=2, must_name="summary.csv")
    out = slot("unknown-method")
    est("unknown-method", [p["mixed"], "--method", "magic"], out, expect_exit=2, must_name="magic",
        check=no_output(out))

    # -- Python API: rerun skips, a dying worker, Ctrl-C
    out = slot("api-rerun-skips-force-redoes")
    cs.append(Case("batch/api-rerun-skips-force-redoes", python=_py(f"""
        import sys, mmrphys
        a = [i.status for i in mmrphys.estimate_many([{str(p['good'])!r}, {str(p['good2'])!r}], {str(out)!r})]
        b = [i.status for i in mmrphys.estimate_many([{str(p['good'])!r}, {str(p['good2'])!r}], {str(out)!r})]
        c = [i.status for i in mmrphys.estimate_many([{str(p['good'])!r}], {str(out)!r}, force=True)]
        sys.exit(0 if (a, b, c) == (["ok", "ok"], ["skipped", "skipped"], ["ok"]) else 3)
        """), expect_exit=0, check=summary_is(out, {"good": "ok"})))
    out = slot("api-worker-process-dies")
    cs.append(Case("batch/api-worker-process-dies", python=_py(f"""
        import functools, sys, mmrphys
        from battery.cases_batch import die_on
        items = mmrphys.estimate_many([{str(p['mixed'])!r}], {str(out)!r}, workers=2,
                                      worker_init=functools.partial(die_on, "a.mp4"))
        st = {{i.stem: i.status for i in items}}
        ok = st == {{"a": "failed", "b": "ok", "c_broken": "failed"}} and "died" in items[0].error
        sys.exit(0 if ok else 3)
        """), expect_exit=0, timeout_s=180,
        check=summary_is(out, {"a": "failed", "b": "ok", "c_broken": "failed"})))
    inputs = root / "six"
    for k in range(6):
        (inputs / f"v{k}").mkdir(parents=True)
        shutil.copy(p["good"], inputs / f"v{k}" / "clip.mp4")
    out = slot("ctrl-c-mid-batch")
    cs.append(Case("batch/ctrl-c-mid-batch", python=_py(f"""
        import csv, os, signal, subprocess, sys, time
        out = {str(out)!r}
        proc = subprocess.Popen([sys.executable, "-m", "mmrphys", "estimate", {str(inputs)!r}, "--out", out,
                                 "--workers", "2", "--quiet"], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        def rows():
            try:
                with open(os.path.join(out, "summary.csv"), newline="") as fh:
                    return list(csv.DictReader(fh))
            except OSError:
                return []
        t0 = time.time()
        while proc.poll() is None and not any(r["status"] == "ok" for r in rows()) and time.time() - t0 < 120:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        for _ in range(50):  # the group (workers, multiprocessing's resource tracker) ends within 5 s
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            sys.exit(4)  # a worker outlived the batch
        st = [r["status"] for r in rows()]
        ok = proc.returncode == 130 and len(st) == 6 and set(st) == {{"ok", "interrupted"}}
        if not ok or "Traceback" in err:
            print("diag: exit", proc.returncode, st, err[-600:].replace("rror", "rr0r"), file=sys.stderr)
            sys.exit(3)
        """), expect_exit=0, timeout_s=240))

    # -- thermal
    def thermal(name, args, must, out=None, **kw):
        out = out or slot(f"thermal-{name}")
        argv = ["estimate", *[str(a) for a in args], "--out", str(out), "--quiet"]
        cs.append(Case(f"thermal/{name}", argv, expect_exit=kw.pop("expect_exit", 2), must_name=must,
                       check=kw.pop("check", no_output(out)), **kw))

    thermal("missing-recording", [p["good"], "--thermal", root / "none.npy", "--weights", p["w_rgbt"]],
            "none.npy")
    thermal("garbage-npy", [p["good"], "--thermal", p["t_garbage"], "--weights", p["w_rgbt"]],
            "t_garbage.npy")
    thermal("no-timestamps-no-fps", [p["good"], "--thermal", p["t_notimes"], "--weights", p["w_rgbt"]],
            "--thermal-fps")
    thermal("timestamps-in-ms", [p["good"], "--thermal", p["t_ms"], "--weights", p["w_rgbt"]],
            "t_ms.timestamps.npy")
    thermal("wrong-unit", [p["good"], "--thermal", p["t_ck"], "--weights", p["w_rgbt"]], "t_centikelvin.npy")
    thermal("rgb-weights-with-thermal", [p["good"], "--thermal", p["thermal_npy"], "--weights", "default"],
            "RGB input")
    thermal("rgbt-weights-thermal-alone", ["--thermal", p["thermal_npy"], "--weights", p["w_rgbt"]],
            "RGB video too")
    thermal("colour-method", [p["good"], "--thermal", p["thermal_npy"], "--method", "pos"], "pos")
    thermal("no-overlap-in-time", [p["good"], "--thermal", p["thermal_npy"], "--weights", p["w_rgbt"],
                                   "--thermal-delay-s", "100"], "does not overlap")
    thermal("truncated-raw-frame", ["--thermal", p["raw_bad"], "--thermal-fps", "30", "--weights", p["w_t"]],
            "00100.raw", timeout_s=180)
    thermal("with-a-batch", [p["good"], p["good2"], "--thermal", p["thermal_npy"]], "--thermal")
    thermal("unit-without-thermal", [p["good"], "--thermal-unit", "K"], "--thermal")
    out = slot("thermal-rgbt-runs")
    thermal("rgbt-runs", [p["good"], "--thermal", p["thermal_npy"], "--weights", p["w_rgbt"]], None, out=out,
            expect_exit=0, timeout_s=180,
            check=lambda run, out=out: None if all((out / f"good{s}").is_file() for s in RESULT_SUFFIXES)
            else "result set incomplete")
    return cs
