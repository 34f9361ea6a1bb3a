"""Latency and parameters of the paper's models on this CPU: PyTorch, our ONNX export, the official ONNX.

One process, batch 1, T = 180 (181 input frames: every model here takes T+1 raw frames and
differences them itself) at each model's native resolution. For each thread count (``--threads``,
applied to ``torch.set_num_threads`` and to onnxruntime's ``intra_op_num_threads``; inter-op 1) and
each inference path the script reports the median of ``--runs`` timed runs after ``--warmup`` runs,
and the ratio to the official ``SCAMPS_MultiTask_72x72_FP.onnx`` timed in the same run with the same
thread count.

Paths: ``torch`` (the module, eager, ``inference_mode``), ``onnx`` (our
:func:`mmrphys.models.export.export_onnx` file, dynamic frames, onnxruntime with full graph
optimisation), ``eager`` (:func:`mmrphys.models.prepare`, backend ``"eager"``: for MMRPhys and
FactorizePhys the NDHWC blocks; other models run as the module) and, for the models in
``--compile-models``, ``compiled`` (``prepare(model, "compiled", example_shape=...)``: AOTInductor,
compiled once and cached in the user cache, ``$MMRPHYS_CACHE/compiled``; the compile or load time is
reported). Each row also gives the median process CPU time, since the machine is shared.
``--h2h-rounds`` adds a head-to-head table: the official ONNX and each MMRPhys-LEF path called
alternately, round by round, so that both see the same load. Like ``mmrphys estimate``, this process
keeps freed memory for reuse (:func:`mmrphys.cli.process.retain_freed_memory`), as onnxruntime's
arena does for its side.

    python benchmarks/latency.py                      # full table -> stdout and docs/benchmarks.md
    python benchmarks/latency.py --models lef,lef_bvp --threads 1 --runs 5 --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MMRPHYS_SHARED", ROOT.parent / "shared"))
OFFICIAL = SHARED / "reference" / "mmrphys-official"
DOC = ROOT / "docs" / "benchmarks.md"


@dataclass
class Spec:
    key: str
    label: str
    name: str
    kwargs: dict
    size: int
    paper: bool = True  # one of the models the paper compares
    official: str | None = None  # official ONNX file of the same network
    notes: str = ""
    results: dict = field(default_factory=dict)


SPECS = [
    Spec(
        "lef",
        "MMRPhys-LEF (RGB, BVP+RSP)",
        "mmrphys_lef",
        dict(tasks=("bvp", "rsp"), in_channels=3),
        72,
        official="SCAMPS_MultiTask_72x72_FP.onnx",
    ),
    Spec(
        "lef_bvp",
        "MMRPhys-LEF (RGB, BVP)",
        "mmrphys_lef",
        dict(tasks=("bvp",), in_channels=3),
        72,
        notes="single-task rPPG: the setting of the paper's latency figure",
    ),
    Spec(
        "mef",
        "MMRPhys-MEF (RGB, BVP+RSP)",
        "mmrphys_mef",
        dict(tasks=("bvp", "rsp"), in_channels=3),
        36,
    ),
    Spec(
        "sef",
        "MMRPhys-SEF (RGB, BVP+RSP)",
        "mmrphys_sef",
        dict(tasks=("bvp", "rsp"), in_channels=3),
        9,
        official="SCAMPS_MultiTask_9x9.onnx",
    ),
    Spec("factorizephys", "FactorizePhys (FSAM off at inference)", "factorizephys", {}, 72),
    Spec(
        "factorizephys_fsam",
        "FactorizePhys (FSAM at inference)",
        "factorizephys",
        dict(attention="fsam", attention_at_inference=True),
        72,
        paper=False,
        notes="the FactorizePhys configs' MD_INFERENCE=True",
    ),
    Spec("physnet", "PhysNet", "physnet", {}, 72),
    Spec("efficientphys", "EfficientPhys (SASN)", "efficientphys", dict(attention="sasn"), 72),
    Spec(
        "efficientphys_fsam",
        "EfficientPhys + FSAM (FSAM off at inference)",
        "efficientphys",
        dict(attention="fsam"),
        72,
    ),
    Spec("physformer", "PhysFormer", "physformer", {}, 128),
    Spec(
        "bigsmall",
        "BigSmall (AU+BVP+RSP)",
        "bigsmall",
        {},
        144,
        notes="raw 144x144 frames in; the 9x9 DiffNormalized stream is made in the graph",
    ),
]


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def cpu_name() -> str:
    try:
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        return m.group(1).strip() if m else platform.processor()
    except OSError:
        return platform.processor()


def timeit(fn, runs: int, warmup: int, budget_s: float) -> tuple[float, float, int, float]:
    """Median and IQR of wall ms, run count, median process-CPU ms of ``runs`` calls after ``warmup``.

    Fewer runs (>= 3) if over ``budget_s``. CPU time (all threads of this process) is reported
    because the machine is shared: wall time includes waiting for the other users' processes.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    while len(times) < runs and (len(times) < 3 or time.perf_counter() - start < budget_s):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0))
    q = np.percentile(times, [25, 75])
    return statistics.median(times), float(q[1] - q[0]), len(times), statistics.median(cpu)


def n_params(model) -> int:
    """Parameters the inference graph uses (attention that only runs in training excluded)."""
    from mmrphys.models import count_parameters

    return count_parameters(model)


def onnx_initializer_count(path: Path) -> int:
    import onnx

    return int(sum(np.prod(t.dims) for t in onnx.load(str(path)).graph.initializer))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(s.key for s in SPECS), help="comma-separated keys")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--frames", type=int, default=180, help="T (the input has T+1 frames)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per measurement before cutting runs")
    ap.add_argument("--no-onnx", action="store_true", help="skip our ONNX export path")
    ap.add_argument("--no-compile", action="store_true", help="skip the compiled path")
    ap.add_argument("--compile-models", default="lef,lef_bvp", help="keys that get the compiled path")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument(
        "--h2h-rounds", type=int, default=9, help="interleaved official-vs-ours rounds, MMRPhys-LEF (0: none)"
    )
    args = ap.parse_args(argv)

    import onnxruntime as ort

    from mmrphys.cli.process import retain_freed_memory
    from mmrphys.models import create, prepare
    from mmrphys.models.export import export_onnx, onnx_session

    retain_freed_memory()

    keys = args.models.split(",")
    specs = [s for s in SPECS if s.key in keys]
    threads = [int(t) for t in args.threads.split(",")]
    compile_keys = set() if args.no_compile else set(args.compile_models.split(","))
    t_in = args.frames + 1
    load_before = load_avg()
    print(f"# load average before: {load_before}", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="mmrphys-latency-"))

    torch.manual_seed(0)
    official: dict[str, Path] = {}
    for spec in specs:
        if spec.official and (OFFICIAL / spec.official).is_file():
            official[spec.key] = OFFICIAL / spec.official
    ref_path = OFFICIAL / "SCAMPS_MultiTask_72x72_FP.onnx"
    if not ref_path.is_file():
        print(f"# official ONNX absent ({ref_path}): ratios are omitted", file=sys.stderr)

    # Build models, inputs, exports once; time per thread count.
    built = []
    for spec in specs:
        model = create(spec.name, **spec.kwargs).eval()
        x = torch.rand(1, 3, t_in, spec.size, spec.size)
        entry = {"spec": spec, "model": model, "x": x, "paths": {}}
        spec.results["params"] = n_params(model)
        entry["paths"]["torch"] = lambda m=model, x=x: m(x)
        if not args.no_onnx:
            try:
                path = _export(export_onnx, model, tmp / f"{spec.key}.onnx")
                entry["onnx"] = path
            except Exception as e:  # report and go on: one failing export must not hide the rest
                spec.notes += f"; ONNX export failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
        entry["eager"] = prepare(model)
        with torch.inference_mode():
            entry["ref"] = model(x)
        _record_diff(entry, "eager")
        built.append(entry)

    rows = []
    h2h: list[tuple] = []
    for n_thr in threads:
        torch.set_num_threads(n_thr)
        for entry in built:  # compiled code is specific to the thread count: one package per count
            entry.pop("compiled", None)
            if entry["spec"].key in compile_keys:
                t0 = time.perf_counter()
                compiled = prepare(entry["model"], "compiled", example_shape=tuple(entry["x"].shape))
                entry["spec"].results[f"compile_s_{n_thr}"] = time.perf_counter() - t0
                if compiled.backend == "compiled":  # else no C++ compiler: prepare() warned
                    entry["compiled"] = compiled
                    _record_diff(entry, "compiled")
        ref_ms = None
        if ref_path.is_file():
            ref_sess = onnx_session(ref_path, threads=n_thr)
            ref_in = np.random.default_rng(0).random((1, 3, t_in, 72, 72), dtype=np.float32)

            def time_official(when: str, sess=ref_sess, a=ref_in, n_thr=n_thr):
                ms, iqr, n, cpu_ms = timeit(
                    lambda: sess.run(None, {"input": a}), args.runs, args.warmup, args.budget
                )
                rows.append(
                    (
                        f"Official ONNX (MMRPhys-LEF, SCAMPS web model), {when}",
                        onnx_initializer_count(ref_path),
                        "3x181x72x72",
                        "official onnx",
                        n_thr,
                        ms,
                        iqr,
                        n,
                        cpu_ms,
                    )
                )
                return ms

            ref_ms = time_official("timed first")
        sef_path = OFFICIAL / "SCAMPS_MultiTask_9x9.onnx"
        if "sef" in keys and sef_path.is_file():
            sess = onnx_session(sef_path, threads=n_thr)
            xin = np.random.default_rng(0).random((1, 3, t_in, 9, 9), dtype=np.float32)
            ms, iqr, n, cpu_ms = timeit(
                lambda s=sess, a=xin: s.run(None, {"input": a}), args.runs, args.warmup, args.budget
            )
            rows.append(
                (
                    "Official ONNX 9x9 (MMRPhys-SEF web model)",
                    onnx_initializer_count(sef_path),
                    "3x181x9x9",
                    "official onnx",
                    n_thr,
                    ms,
                    iqr,
                    n,
                    cpu_ms,
                )
            )
        for entry in built:
            spec, x = entry["spec"], entry["x"]
            shape = "x".join(map(str, x.shape[1:]))
            paths = {"torch": entry["paths"]["torch"]}
            if "onnx" in entry:
                sess = onnx_session(entry["onnx"], threads=n_thr)
                xn = x.numpy()
                paths["onnx"] = lambda s=sess, a=xn: s.run(None, {"input": a})
            if _has_conv_blocks(entry["model"]):  # else `eager` is the module: the `torch` row
                paths["eager"] = lambda f=entry["eager"], x=x: f(x)
            if "compiled" in entry:
                paths["compiled"] = lambda f=entry["compiled"], x=x: f(x)
            for path_name, fn in paths.items():
                with torch.inference_mode():
                    ms, iqr, n, cpu_ms = timeit(fn, args.runs, args.warmup, args.budget)
                spec.results[(path_name, n_thr)] = ms
                rows.append((spec.label, spec.results["params"], shape, path_name, n_thr, ms, iqr, n, cpu_ms))
            print(f"# {spec.key} threads={n_thr} done (load {load_avg()})", file=sys.stderr)
        if ref_ms:
            # Timed again after all models; ratios use the faster of the two (conservative) since
            # the shared machine's load drifts during a run.
            ref_ms = min(ref_ms, time_official("timed last"))
        for i, r in enumerate(rows):
            if r[4] == n_thr and ref_ms and len(r) == 9:
                rows[i] = r + (ref_ms / r[5],)
        lef = next((e for e in built if e["spec"].key == "lef"), None)
        if ref_ms and lef is not None and args.h2h_rounds:
            x = lef["x"]
            contenders = {"eager": lef.get("eager"), "compiled": lef.get("compiled")}
            fns = {k: (lambda f=f, x=x: f(x)) for k, f in contenders.items() if f is not None}
            if "onnx" in lef:
                sess, xn = onnx_session(lef["onnx"], threads=n_thr), x.numpy()
                fns["onnx"] = lambda s=sess, a=xn: s.run(None, {"input": a})
            h2h.extend(head_to_head(ref_sess, ref_in, fns, args.h2h_rounds, n_thr))
    load_after = load_avg()
    text = render(rows, specs, threads, load_before, load_after, args, ort.__version__, h2h)
    print(text)
    if not args.no_write:
        write_doc(text)
    return 0


def head_to_head(ref_sess, ref_in, fns: dict, rounds: int, n_thr: int) -> list[tuple]:
    """Alternate the official ONNX and each of ``fns`` call by call; median per-round speed-ups.

    Sequential timing on a shared machine lets load drift between two paths bias their ratio;
    alternating them run by run exposes both to the same load. Returns rows
    ``(path, threads, median official ms, median path ms, median wall ratio, median CPU ratio)``.
    """
    ref = lambda: ref_sess.run(None, {"input": ref_in})  # noqa: E731
    for fn in (ref, *fns.values()):
        fn()
    wall: dict[str, list[float]] = {k: [] for k in ("official", *fns)}
    cpu: dict[str, list[float]] = {k: [] for k in wall}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, fn in (("official", ref), *fns.items()):
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                wall[name].append(1000 * (time.perf_counter() - t0))
                cpu[name].append(1000 * (time.process_time() - c0))
    out = []
    for name in fns:
        w_ratio = statistics.median(a / b for a, b in zip(wall["official"], wall[name]))
        c_ratio = statistics.median(a / b for a, b in zip(cpu["official"], cpu[name]))
        out.append(
            (
                name,
                n_thr,
                statistics.median(wall["official"]),
                statistics.median(wall[name]),
                w_ratio,
                c_ratio,
            )
        )
    return out


def _export(export_onnx, model, path: Path) -> Path:
    """Our exporter; for outputs it has no ONNX name for (BigSmall's "au") a plain dynamic export."""
    from mmrphys.models.export import OUTPUT_NAMES

    if all(t in OUTPUT_NAMES for t in model.tasks):
        return export_onnx(model, path, check=True)

    class Outputs(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            out = self.net(x)
            return tuple(out[t] for t in model.tasks)

    x = torch.rand(1, model.in_channels, 4 * model.frame_multiple + 1, model.input_size, model.input_size)
    axes = {"input": {2: "frames"}, **{t: {1: "samples"} for t in model.tasks}}
    with torch.no_grad():
        torch.onnx.export(
            Outputs(model),
            (x,),
            str(path),
            input_names=["input"],
            output_names=list(model.tasks),
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    return path


def _has_conv_blocks(model) -> bool:
    from mmrphys.models.layers import ConvBlock3D

    return any(isinstance(m, ConvBlock3D) for m in model.modules())


def _record_diff(entry: dict, path_name: str) -> None:
    with torch.inference_mode():
        out = entry[path_name](entry["x"])
    ref = entry["ref"]
    diffs = [_diff(out[k], ref[k]) for k in ref]
    entry["spec"].results[f"{path_name}_diff"] = tuple(max(d[i] for d in diffs) for i in (0, 1))


def _diff(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(max |Δ| / max |ref| on raw outputs, max |Δz| on z-scored outputs)."""

    def z(v):
        return (v - v.mean(-1, keepdim=True)) / v.std(-1, keepdim=True)

    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max()), float((z(a) - z(b)).abs().max())


def render(rows, specs, threads, load_before, load_after, args, ort_version, h2h=()) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {cpu_name()} ({os.cpu_count()} cores), "
        f"torch {torch.__version__}, onnxruntime {ort_version}; batch 1, T = {args.frames} "
        f"({args.frames + 1} input frames), median of up to {args.runs} runs after {args.warmup} "
        "warm-up runs. "
        f"Threads: torch.set_num_threads(n) and onnxruntime intra_op_num_threads=n (inter-op 1) for n in "
        f"{threads}. Load average (1/5/15 min) before: {load_before}; after: {load_after}.",
        "",
        "| model | params | input (C×T×H×W) | path | threads | median ms | IQR ms | runs | CPU ms "
        "| speed-up vs official ONNX |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r[9]:.2f}×" if len(r) > 9 else "–"
        lines.append(
            f"| {r[0]} | {r[1]:,} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.1f} | {r[6]:.1f} | {r[7]} "
            f"| {r[8]:.1f} | {ratio} |"
        )
    lines.append("")
    # Summary: fastest LEF path vs official per thread count, and the paper's ranking.
    by_key = {s.key: s for s in specs}
    official_rows: dict = {}
    official_cpu: dict = {}
    for r in rows:
        if r[0].startswith("Official ONNX ("):  # the faster of the two timings, as for the ratios
            official_rows[r[4]] = min(official_rows.get(r[4], float("inf")), r[5])
            official_cpu[r[4]] = min(official_cpu.get(r[4], float("inf")), r[8])
    cpu_of = {(r[0], r[3], r[4]): r[8] for r in rows}
    for n in threads:
        for key in ("lef", "lef_bvp"):
            s = by_key.get(key)
            if not s:
                continue
            best = min(((p, ms) for (p, t), ms in _timed(s) if t == n), key=lambda pm: pm[1], default=None)
            if best and n in official_rows:
                cpu_ms = cpu_of.get((s.label, best[0], n))
                lines.append(
                    f"- {n} thread(s): fastest {s.label} path is `{best[0]}` at {best[1]:.1f} ms, "
                    f"{official_rows[n] / best[1]:.2f}× faster than the official ONNX "
                    f"({official_rows[n]:.1f} ms, the faster of its two timings); "
                    f"by process CPU time {cpu_ms:.1f} vs "
                    f"{official_cpu[n]:.1f} ms, {official_cpu[n] / cpu_ms:.2f}×."
                )
        ranked = sorted(
            (
                (min((ms for (p, t), ms in _timed(s) if t == n), default=float("inf")), s.label)
                for s in specs
                if s.paper
            ),
            key=lambda v: v[0],
        )
        if ranked:
            lines.append(
                f"- {n} thread(s), each model's fastest path at its native resolution: "
                + " < ".join(f"{label} {ms:.0f} ms" for ms, label in ranked)
                + "."
            )
    for s in specs:
        extra = []
        for path_name in ("eager", "compiled"):
            if f"{path_name}_diff" in s.results:
                raw, dz = s.results[f"{path_name}_diff"]
                extra.append(f"{path_name} max |Δ| {raw:.1e} of the output's peak, max |Δz| {dz:.1e}")
        for n in threads:
            if f"compile_s_{n}" in s.results:
                extra.append(f"compiled (or loaded from the cache) for {n} thread(s) in "
                             f"{s.results['compile_s_' + str(n)]:.0f} s")
        if s.notes:
            extra.append(s.notes.strip("; "))
        if extra:
            lines.append(f"- {s.label}: " + "; ".join(extra) + ".")
    if h2h:
        lines += [
            "",
            f"Head to head, MMRPhys-LEF (RGB, BVP+RSP), 3x181x72x72: the official ONNX and each path called "
            f"alternately, {args.h2h_rounds} rounds; speed-up = median over rounds of official/ours.",
            "",
            "| path | threads | official median ms | ours median ms | speed-up (wall) | speed-up (CPU) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, n, ref_ms, ms, w, c in h2h:
            lines.append(f"| {name} | {n} | {ref_ms:.1f} | {ms:.1f} | {w:.2f}× | {c:.2f}× |")
    return "\n".join(lines) + "\n"


def _timed(spec):
    return [(k, v) for k, v in spec.results.items() if isinstance(k, tuple)]


def write_doc(table: str) -> None:
    """Replace the generated part of the "Latency" section of docs/benchmarks.md."""
    begin, end = "<!-- latency:begin -->", "<!-- latency:end -->"
    block = f"{begin}\n{table}{end}"
    text = DOC.read_text() if DOC.is_file() else "# Benchmarks\n\n## Latency\n\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    elif "## Latency" in text:
        head, _, tail = text.partition("## Latency")
        rest = tail.split("\n## ", 1)
        text = (
            head
            + "## Latency"
            + rest[0].rstrip()
            + "\n\n"
            + block
            + "\n"
            + ("\n## " + rest[1] if len(rest) > 1 else "")
        )
    else:
        text = text.rstrip() + "\n\n## Latency\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
