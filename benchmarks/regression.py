"""Speed regression check: this checkout (HEAD) against a base commit, measured in one run, arms alternating.

    python benchmarks/regression.py                          # --base 7802191 --repeat 5
    python benchmarks/regression.py --repeat 1 --calls 3 --duration-s 12 --no-compile   # quick look

The base is checked out with ``git worktree add --detach`` into a temporary folder (removed at the
end); HEAD is this working tree (uncommitted changes included; ``--head REV`` checks a commit out
instead). Every measurement runs in a child process with ``PYTHONPATH=<arm>/src`` and
``OMP_NUM_THREADS=1`` (torch, MKL and onnxruntime on one thread), and the two arms take turns —
base, HEAD, base, HEAD, ... — so that the load of the shared machine falls on both alike. Each
round records the load average before each arm's measurement.

Rows:

(a) ``python -m mmrphys estimate VIDEO --method mmrphys --weights W --quiet --out DIR`` as a whole
    process (imports, decoding, face tracking, inference, writing JSON/CSV/PNG): wall and CPU time
    and peak RSS (``/usr/bin/time -v``), on a 60 s 640x480 30 fps synthetic video made once with
    :func:`mmrphys.synth.make_clip` (as ``estimate_speed.py`` makes it) in ``--workdir``. W is the
    file the base shipped as its default weights (read from the base's weights manifest or
    catalogue and extracted with ``git show``), so both arms run the same network; the heart rates
    the two arms report must agree within 0.5 bpm.
(b) Window latency of MMRPhys-LEF (BVP+RSP, 3x181x72x72, W's weights, batch 1, one thread): each arm's
    fastest documented paths, as its own ``benchmarks/latency.py`` builds them — a base with
    ``models/fast_inference.py``: ``optimize(model)`` (``fast``) and ``optimize(model, compile=True)``
    (``fast+compile``, TorchInductor); a later one: ``models.prepare(model, "eager")`` and
    ``prepare(model, "compiled")`` (AOTInductor, cached in ``--workdir``) when a C++ compiler is
    present — and the official ``SCAMPS_MultiTask_72x72_FP.onnx`` in onnxruntime, called alternately
    with them, call by call, in the same process. One long-lived worker per arm (so compilation is
    paid once); per round each worker times ``--calls`` calls of every path.
(c) The package default as a whole process (``mmrphys estimate VIDEO --quiet --out DIR``; a base
    whose default was POS against a HEAD whose default is a model): an extra row, ``--no-default``
    skips it.

The table gives the median and minimum over rounds (latency: over all calls) of each arm and the
HEAD/base ratio of the medians (< 1: HEAD is faster). Exit status 1 when a run failed or the heart
rates of (a) disagree. A benchmark, not a test: ~4 min for ``--repeat 5`` on an idle 2-core machine
(plus compilation the first time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from estimate_speed import run_measured

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MMRPHYS_SHARED", ROOT.parent / "shared"))
OFFICIAL_ONNX = SHARED / "reference" / "mmrphys-official" / "SCAMPS_MultiTask_72x72_FP.onnx"
HR_AGREE_BPM = 0.5
WINDOW = (1, 3, 181, 72, 72)  # MMRPhys-LEF window, batch 1: T = 180 differenced frames
MARK = "@@regression "  # prefix of the worker's protocol lines on stdout (library output is ignored)


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


# ----------------------------------------------------------------------------------- set-up
def extract_default_weights(rev: str, workdir: Path) -> Path:
    """The base's default weights file (from its manifest.json or catalogue.json), extracted to workdir."""
    folder = "src/mmrphys/weights"
    for listing in ("manifest.json", "catalogue.json"):
        try:
            data = json.loads(git("show", f"{rev}:{folder}/{listing}"))
        except subprocess.CalledProcessError:
            continue
        entry = next((w for w in data.get("weights", []) if w.get("name") == data.get("default")), None)
        if entry:
            break
    else:
        raise SystemExit(f"regression: error: {rev} ships no default weights in {folder}")
    dest = workdir / f"{git('rev-parse', '--short', rev)}_{entry['file']}"
    if not dest.is_file():
        blob = subprocess.run(["git", "show", f"{rev}:{folder}/{entry['file']}"], cwd=ROOT, check=True,
                              capture_output=True).stdout
        tmp = dest.with_suffix(".part")
        tmp.write_bytes(blob)
        os.replace(tmp, dest)
    return dest


def make_video(workdir: Path, duration_s: float) -> Path:
    """The 60 s 640x480 clip of estimate_speed.py / batch_speed.py (made once, cached in workdir)."""
    clip = workdir / f"face_{duration_s:g}s_640x480.mp4"
    if not clip.is_file():
        sys.path.insert(0, str(ROOT / "src"))
        from mmrphys.synth import make_clip

        print(f"generating the {duration_s:g} s 640x480 clip (once) ...", file=sys.stderr, flush=True)
        part = clip.with_name("part_" + clip.name)
        make_clip(part, hr_bpm=72, rr_bpm=15, duration_s=duration_s, fps=30, size=(640, 480), seed=3, crf=20)
        for side in part.parent.glob(part.stem + ".*"):  # the truth files beside it; the clip last
            if side != part:
                os.replace(side, clip.with_suffix(side.suffix))
        os.replace(part, clip)
    return clip


def arm_env(src: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1"}


# ------------------------------------------------------------------------------- (a), (c)
def run_estimate(src: Path, video: Path, out: Path, extra: list[str]) -> dict:
    """One whole ``mmrphys estimate`` process: wall/CPU s, peak RSS MiB, heart rate, return code."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "mmrphys", "estimate", str(video), *extra, "--quiet", "--out", str(out)]
    load = load_avg()
    wall, cpu, rss, rc, tail = run_measured(cmd, arm_env(src))
    hr = None
    result = out / f"{video.stem}.json"
    if rc == 0 and result.is_file():
        hr = json.loads(result.read_text()).get("heart_rate_bpm")
    else:
        print(f"# estimate failed (PYTHONPATH={src}, rc {rc}): {tail}", file=sys.stderr)
    return {"wall_s": wall, "cpu_s": cpu, "rss_mib": rss, "hr_bpm": hr, "rc": rc, "load": load}


# -------------------------------------------------------------------------------------- (b)
class Worker:
    """A long-lived latency worker (this file with ``--worker``) in one arm's environment."""

    def __init__(self, src: Path, args, workdir: Path, weights: Path):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--weights", str(weights),
               "--workdir", str(workdir)]
        if args.no_compile:
            cmd.append("--no-compile")
        self.proc = subprocess.Popen(cmd, env=arm_env(src), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.ready = self._read()

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        raise RuntimeError(f"latency worker exited with {self.proc.wait()} (see its stderr above)")

    def time_calls(self, calls: int) -> dict:
        self.proc.stdin.write(f"{calls}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def worker_main(weights: Path, workdir: Path, compile_: bool) -> int:
    """Build the arm's paths, announce them, then time ``n`` alternating calls per line read from stdin."""
    import onnxruntime as ort
    import torch

    import mmrphys
    from mmrphys.models.checkpoints import load_model

    torch.set_num_threads(1)
    model = load_model(weights).eval()
    torch.manual_seed(0)
    x = torch.rand(*WINDOW)
    paths: dict = {}
    t0 = time.perf_counter()
    try:  # a version with models/fast_inference.py: its optimize() paths (and retain_freed_memory inside)
        from mmrphys.models.fast_inference import optimize

        paths["fast"] = optimize(model)
        if compile_:
            paths["fast+compile"] = optimize(model, compile=True)
    except ImportError:  # models.prepare(); the process keeps freed memory as latency.py's does
        from mmrphys.cli.process import retain_freed_memory
        from mmrphys.models import prepare

        retain_freed_memory()
        paths["eager"] = prepare(model, "eager")
        if compile_ and shutil.which("c++"):
            compiled = prepare(model, "compiled", example_shape=WINDOW, cache_dir=workdir / "compiled")
            if compiled.backend == "compiled":
                paths["compiled"] = compiled
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(OFFICIAL_ONNX), opts, providers=["CPUExecutionProvider"])
    xn = x.numpy()
    calls = {name: (lambda f=f: f(x)) for name, f in paths.items()}
    calls["official onnx"] = lambda: session.run(None, {session.get_inputs()[0].name: xn})
    outputs = {}
    with torch.inference_mode():
        reference = model(x)
        for name, f in paths.items():  # warm-up (compiles fast+compile) and the output of each path
            for _ in range(2):
                out = f(x)
            outputs[name] = {t: out[t].flatten().tolist() for t in reference}
        calls["official onnx"]()
    outputs["module"] = {t: reference[t].flatten().tolist() for t in reference}
    print(MARK + json.dumps({"paths": list(calls), "setup_s": time.perf_counter() - t0, "outputs": outputs,
                             "package": str(Path(mmrphys.__file__).parent), "torch": torch.__version__,
                             "threads": torch.get_num_threads(), "onnxruntime": ort.__version__}), flush=True)
    for line in sys.stdin:
        n = int(line)
        wall: dict = {k: [] for k in calls}
        cpu: dict = {k: [] for k in calls}
        with torch.inference_mode():
            for _ in range(n):
                for name, fn in calls.items():
                    w0, c0 = time.perf_counter(), time.process_time()
                    fn()
                    wall[name].append(1000 * (time.perf_counter() - w0))
                    cpu[name].append(1000 * (time.process_time() - c0))
        print(MARK + json.dumps({"wall_ms": wall, "cpu_ms": cpu}), flush=True)
    return 0


# ---------------------------------------------------------------------------------- report
def med(v) -> float:
    return statistics.median(v) if v else float("nan")


def cell(v, fmt: str) -> str:
    return f"{med(v):{fmt}} ({min(v):{fmt}})" if v else "–"


def ratio(head, base) -> str:
    return f"{med(head) / med(base):.3f}" if head and base and med(base) else "–"


def max_rel_diff(a: dict, b: dict) -> float:
    """max |a - b| over the tasks, relative to the peak |b| of each output."""
    worst = 0.0
    for t in b:
        peak = max(abs(v) for v in b[t]) or 1.0
        worst = max(worst, max(abs(p - q) for p, q in zip(a[t], b[t])) / peak)
    return worst


def render(res: dict, meta: dict) -> str:
    b, h = meta["base_label"], meta["head_label"]
    lines = [
        f"Regression check, {time.strftime('%Y-%m-%d %H:%M')}: base {b} vs HEAD {h}; {os.cpu_count()} CPUs "
        f"({meta['cpu']}), torch {meta['torch']}, onnxruntime {meta['ort']}; one thread everywhere "
        f"(OMP_NUM_THREADS=1, torch.set_num_threads(1), onnxruntime intra/inter-op 1); {meta['repeat']} "
        "rounds, arms alternating (base, HEAD) within each round. Load average before the run: "
        f"{meta['load_before']}; after: {meta['load_after']}.",
        f"Video: {meta['video']} (synthetic, 640x480, 30 fps, H.264). Weights W: {meta['weights']} "
        "(the base's default).",
        "",
        f"| measure | base {b}: median (min) | HEAD {h}: median (min) | HEAD/base |",
        "|---|---:|---:|---:|",
    ]

    def row(label, key, sub, fmt):
        bv = [r[sub] for r in res[key]["base"] if r.get("rc", 0) == 0 and r[sub] is not None]
        hv = [r[sub] for r in res[key]["head"] if r.get("rc", 0) == 0 and r[sub] is not None]
        lines.append(f"| {label} | {cell(bv, fmt)} | {cell(hv, fmt)} | {ratio(hv, bv)} |")

    if "estimate" in res:
        row("(a) `estimate --method mmrphys --weights W`, wall s", "estimate", "wall_s", ".2f")
        row("(a) same, CPU s (user+sys)", "estimate", "cpu_s", ".2f")
        row("(a) same, peak RSS MiB", "estimate", "rss_mib", ".0f")
        row("(a) same, heart rate bpm", "estimate", "hr_bpm", ".2f")
    if "default" in res:
        row(f"(c) `estimate` default method ({meta['base_default']} / {meta['head_default']}), wall s",
            "default", "wall_s", ".2f")
        row("(c) same, CPU s", "default", "cpu_s", ".2f")
        row("(c) same, heart rate bpm", "default", "hr_bpm", ".2f")
    lat = res.get("latency")
    if lat:
        for label, bp, hp in meta["pairs"]:
            bv, hv = lat["base"]["wall_ms"].get(bp, []), lat["head"]["wall_ms"].get(hp, [])
            lines.append(f"| (b) LEF window, {label} (base `{bp}`, HEAD `{hp}`), ms | {cell(bv, '.1f')} "
                         f"| {cell(hv, '.1f')} | {ratio(hv, bv)} |")
        for label, bp, hp in meta["pairs"]:
            bv, hv = lat["base"]["cpu_ms"].get(bp, []), lat["head"]["cpu_ms"].get(hp, [])
            lines.append(f"| (b) {label}, process CPU ms per call | {cell(bv, '.1f')} | {cell(hv, '.1f')} "
                         f"| {ratio(hv, bv)} |")
        for label, bp, hp in meta["pairs"]:
            bs, hs = lat["base"]["speedup"].get(bp, []), lat["head"]["speedup"].get(hp, [])
            if bs or hs:
                lines.append(f"| (b) {label}: speed-up vs official ONNX (per call, ×) | {cell(bs, '.2f')} "
                             f"| {cell(hs, '.2f')} | {ratio(hs, bs)} |")
        fastest = {arm: min((p for p in lat[arm]["wall_ms"] if p != "official onnx"),
                            key=lambda p, a=arm: med(lat[a]["wall_ms"][p])) for arm in ("base", "head")}
        bv, hv = lat["base"]["wall_ms"][fastest["base"]], lat["head"]["wall_ms"][fastest["head"]]
        lines.append(f"| (b) LEF window, fastest path (base `{fastest['base']}`, HEAD `{fastest['head']}`), "
                     f"ms | {cell(bv, '.1f')} | {cell(hv, '.1f')} | {ratio(hv, bv)} |")
        bv, hv = lat["base"]["wall_ms"]["official onnx"], lat["head"]["wall_ms"]["official onnx"]
        lines.append(f"| (b) official ONNX in the same process, ms (control) | {cell(bv, '.1f')} "
                     f"| {cell(hv, '.1f')} | {ratio(hv, bv)} |")
    lines += ["", "Load average (1/5/15 min) before each arm's measurement, per round:", "",
              "| round | row | base: load | base | HEAD: load | HEAD |", "|---:|---|---|---:|---|---:|"]
    for i in range(meta["repeat"]):
        for key, unit in (("estimate", "s"), ("default", "s")):
            if key in res and i < len(res[key]["base"]) and i < len(res[key]["head"]):
                rb, rh = res[key]["base"][i], res[key]["head"][i]
                lines.append(f"| {i + 1} | ({'a' if key == 'estimate' else 'c'}) {key} | {rb['load']} | "
                             f"{rb['wall_s']:.2f} {unit} | {rh['load']} | {rh['wall_s']:.2f} {unit} |")
        if lat and i < len(lat["rounds"]):
            rd = lat["rounds"][i]
            lines.append(f"| {i + 1} | (b) latency, {meta['pairs'][0][0]} | {rd['base_load']} | "
                         f"{rd['base_ms']:.1f} ms | {rd['head_load']} | {rd['head_ms']:.1f} ms |")
    notes = meta.get("notes", [])
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ main
def checkout(rev: str, parent: Path) -> Path:
    dest = Path(tempfile.mkdtemp(prefix=f"arm-{rev[:12]}-", dir=parent))
    dest.rmdir()
    git("worktree", "add", "--detach", str(dest), rev)
    return dest


def remove_checkout(path: Path) -> None:
    try:
        git("worktree", "remove", "--force", str(path))
    except subprocess.CalledProcessError as err:
        print(f"# could not remove the worktree {path}: {err.stderr.strip()}", file=sys.stderr)


def default_method(src: Path) -> str:
    """The arm's default estimate method, read from its source (DEFAULT_METHOD), for the table."""
    for f in sorted((src / "mmrphys" / "vitals").glob("*.py")):
        for line in f.read_text().splitlines():
            if line.startswith("DEFAULT_METHOD ="):
                return line.split("=", 1)[1].strip().strip("\"'")
    return "default"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: flock /work/notes/cpu.lock python benchmarks/regression.py")
    ap.add_argument("--base", default="7802191", help="base commit (default 7802191, before models.prepare)")
    ap.add_argument("--head", default=None, help="a commit to check out as HEAD (default: this working tree)")
    ap.add_argument("--repeat", type=int, default=5, help="rounds; each runs every row once per arm")
    ap.add_argument("--calls", type=int, default=9, help="(b) timed calls of each path per arm and round")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mmrphys_regression",
                    help="cache for the video, the extracted weights and compiled code")
    ap.add_argument("--duration-s", type=float, default=60.0, help="length of the synthetic video")
    ap.add_argument("--no-default", action="store_true", help="skip row (c), each version's default method")
    ap.add_argument("--no-latency", action="store_true", help="skip (b)")
    ap.add_argument("--no-compile", action="store_true", help="(b) without the compiled paths")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args.weights, args.workdir, not args.no_compile)
    if not args.no_latency and not OFFICIAL_ONNX.is_file():
        raise SystemExit(f"regression: error: {OFFICIAL_ONNX} not found (needed for (b); or --no-latency)")

    args.workdir.mkdir(parents=True, exist_ok=True)
    load_before = load_avg()
    print(f"# load average before: {load_before}; threads: 1 (OMP_NUM_THREADS=1)", file=sys.stderr)
    weights = extract_default_weights(args.base, args.workdir)
    video = make_video(args.workdir, args.duration_s)
    arms_dir = Path(tempfile.mkdtemp(prefix="mmrphys-regression-"))
    checkouts: list[Path] = []
    workers: list[Worker] = []
    res: dict = {}
    meta: dict = {"repeat": args.repeat, "load_before": load_before, "video": video.name,
                  "weights": weights.name, "notes": []}
    try:
        base_root = checkout(args.base, arms_dir)
        checkouts.append(base_root)
        if args.head:
            head_root = checkout(args.head, arms_dir)
            checkouts.append(head_root)
            meta["head_label"] = git("rev-parse", "--short", args.head)
        else:
            head_root = ROOT
            dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
            meta["head_label"] = git("rev-parse", "--short", "HEAD") + dirty
        meta["base_label"] = git("rev-parse", "--short", args.base)
        arms = {"base": base_root / "src", "head": head_root / "src"}
        meta["base_default"] = default_method(arms["base"])
        meta["head_default"] = default_method(arms["head"])
        ws = {} if args.no_latency else start_workers(arms, args, weights, meta, workers)
        if ws:
            res["latency"] = {arm: {"wall_ms": {}, "cpu_ms": {}, "speedup": {}} for arm in arms}
            res["latency"]["rounds"] = []
        res["estimate"] = {"base": [], "head": []}
        if not args.no_default:
            res["default"] = {"base": [], "head": []}
        model_args = ["--method", "mmrphys", "--weights", str(weights)]
        for i in range(args.repeat):
            print(f"# round {i + 1}/{args.repeat}, load {load_avg()}", file=sys.stderr, flush=True)
            for key, extra in (("estimate", model_args), ("default", [])):
                for arm, src in arms.items():
                    if key in res:
                        res[key][arm].append(run_estimate(src, video, args.workdir / f"out_{arm}", extra))
            if ws:
                latency_round(ws, res["latency"], args.calls, meta["pairs"][0])
    finally:
        for w in workers:
            w.close()
        for c in checkouts:
            remove_checkout(c)
        shutil.rmtree(arms_dir, ignore_errors=True)
    meta["load_after"] = load_avg()
    meta.setdefault("torch", "?")
    meta.setdefault("ort", "?")
    from weights_table import cpu_model

    meta["cpu"] = cpu_model()
    runs = [r for k in ("estimate", "default") if k in res for arm in res[k].values() for r in arm]
    failed = sum(r["rc"] != 0 for r in runs)
    hr = {arm: [r["hr_bpm"] for r in res["estimate"][arm] if r["hr_bpm"] is not None] for arm in arms}
    every = hr["base"] + hr["head"]
    agree = bool(hr["base"] and hr["head"]) and max(every) - min(every) <= HR_AGREE_BPM
    meta["notes"].append(
        f"(a) heart rates of every run: base {sorted({round(v, 2) for v in hr['base']})}, "
        f"HEAD {sorted({round(v, 2) for v in hr['head']})} bpm: {'agree' if agree else 'DISAGREE'} "
        f"within {HR_AGREE_BPM} bpm.")
    if failed:
        meta["notes"].append(f"{failed} estimate run(s) failed (left out of the table; see stderr).")
    print(render(res, meta))
    return 0 if agree and not failed else 1


def start_workers(arms: dict, args, weights: Path, meta: dict, started: list) -> dict:
    """One latency worker per arm, started one after the other (compilation uses the whole machine)."""
    ws = {}
    for arm, src in arms.items():
        t0 = time.perf_counter()
        print(f"# starting the {arm} latency worker (builds, compiles) ...", file=sys.stderr, flush=True)
        ws[arm] = Worker(src, args, args.workdir, weights)
        started.append(ws[arm])
        print(f"#   {arm}: paths {ws[arm].ready['paths']} from {ws[arm].ready['package']}, "
              f"ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    meta["pairs"] = pair_paths(ws["base"].ready["paths"], ws["head"].ready["paths"])
    meta["torch"], meta["ort"] = ws["head"].ready["torch"], ws["head"].ready["onnxruntime"]
    out_b, out_h = ws["base"].ready["outputs"], ws["head"].ready["outputs"]
    for label, bp, hp in meta["pairs"]:
        between = max_rel_diff(out_h[hp], out_b[bp])
        own_b, own_h = max_rel_diff(out_b[bp], out_b["module"]), max_rel_diff(out_h[hp], out_h["module"])
        meta["notes"].append(
            f"(b) {label}: max |HEAD `{hp}` − base `{bp}`| = {between:.1e} of the output's peak; "
            f"each against its own module: base {own_b:.1e}, HEAD {own_h:.1e}.")
    return ws


def latency_round(ws: dict, lat: dict, calls: int, first_pair: tuple) -> None:
    """Each worker in turn times ``calls`` alternating calls of its paths; results appended to ``lat``."""
    rd = {}
    for arm, worker in ws.items():
        rd[f"{arm}_load"] = load_avg()
        got = worker.time_calls(calls)
        onnx = got["wall_ms"]["official onnx"]
        for name, ms in got["wall_ms"].items():
            lat[arm]["wall_ms"].setdefault(name, []).extend(ms)
            lat[arm]["cpu_ms"].setdefault(name, []).extend(got["cpu_ms"][name])
            if name != "official onnx":
                lat[arm]["speedup"].setdefault(name, []).extend(o / m for o, m in zip(onnx, ms))
        rd[f"{arm}_ms"] = med(got["wall_ms"][first_pair[1 if arm == "base" else 2]])
    lat["rounds"].append(rd)


def pair_paths(base: list[str], head: list[str]) -> list[tuple[str, str, str]]:
    """Rows comparing like with like: eager with eager, compiled with compiled."""
    pairs = []
    eager_b = next((p for p in ("fast", "eager") if p in base), None)
    eager_h = next((p for p in ("eager", "fast") if p in head), None)
    if eager_b and eager_h:
        pairs.append(("eager path", eager_b, eager_h))
    comp_b = next((p for p in ("fast+compile", "compiled") if p in base), None)
    comp_h = next((p for p in ("compiled", "fast+compile") if p in head), None)
    if comp_b and comp_h:
        pairs.append(("compiled path", comp_b, comp_h))
    return pairs


if __name__ == "__main__":
    sys.exit(main())
