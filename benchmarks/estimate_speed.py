"""Whole-process speed and peak memory of ``mmrphys estimate`` (and open-rppg on the same video).

    python benchmarks/estimate_speed.py [--workdir /tmp/mmrphys_speed] [--method pos] [--repeat 3]
                                        [--openrppg-python /tmp/orppg/bin/python]
    python benchmarks/estimate_speed.py --method mmrphys --weights .../SCAMPS_MMRPhysLEF_..._Epoch0.pth
    python benchmarks/estimate_speed.py --method mmrphys --against /work/main/src --repeat 3 --skip-long

``--against SRC`` times another source tree (``PYTHONPATH=SRC``, e.g. the main branch's ``src``)
alternately with this checkout's, run by run, so that both see the same load; ``--backend compiled``
passes the inference backend on (the compiled model is built once, before the timed runs).

1. Generates (once, cached in --workdir) a 60 s 640x480 30 fps H.264 synthetic face video, and a
   10-minute one made by repeating its packets (no re-encoding).
2. Times ``python -m mmrphys estimate VIDEO --quiet --json FILE`` as a child process (import time
   included) and reads its peak RSS from ``/usr/bin/time -v`` (or ``RUSAGE_CHILDREN``).
3. If ``--openrppg-python`` points at a Python with open-rppg installed (a throwaway venv: it is
   not a dependency), times ``rppg.Model().process_video(VIDEO)`` on the same 60 s video.

Threads, chosen deliberately for a 2-core machine: decoding (FFmpeg, one thread) runs in a
background thread and hands over the decoder's YUV planes (no full-frame RGB conversion); SciPy is
imported in another background thread meanwhile; the main thread tracks the face (Haar every 1 s)
and converts only the face crop; classic methods in NumPy; the default model in onnxruntime (its
shipped runtime twin, no torch import) and other models in torch, each with 1 intra-op thread
(``--threads``; ``OMP_NUM_THREADS=1`` for both tools so neither grabs both cores).

The machine is shared, so each row prints the 1-minute load average before the run and CPU time
(user + sys) beside wall time; ``--repeat`` runs each measurement N times and keeps the fastest
wall time (the run least disturbed by other jobs) with its own CPU time.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def make_videos(workdir: Path) -> tuple[Path, Path]:
    from mmrphys.synth import make_clip

    workdir.mkdir(parents=True, exist_ok=True)
    one = workdir / "face_60s_640x480.mp4"
    ten = workdir / "face_600s_640x480.mp4"
    if not one.is_file():
        print("generating the 60 s 640x480 clip (once) ...", flush=True)
        make_clip(one, hr_bpm=72, rr_bpm=15, duration_s=60, fps=30, size=(640, 480), seed=3, crf=20)
    if not ten.is_file():
        repeat_packets(one, ten, 10)
    return one, ten


def repeat_packets(src: Path, dst: Path, times: int) -> None:
    """Concatenate ``times`` copies of ``src``'s video packets into ``dst`` (stream copy)."""
    import av

    with av.open(str(src)) as inp:
        s_in = inp.streams.video[0]
        packets = [p for p in inp.demux(s_in) if p.size]
        dur = max(int(p.pts) + int(p.duration or 0) for p in packets)
        with av.open(str(dst), "w") as out:
            s_out = out.add_stream_from_template(s_in)
            for k in range(times):
                for p in packets:
                    p2 = av.Packet(bytes(p))
                    p2.pts = None if p.pts is None else p.pts + k * dur
                    p2.dts = None if p.dts is None else p.dts + k * dur
                    p2.time_base = p.time_base
                    p2.is_keyframe = p.is_keyframe
                    p2.stream = s_out
                    out.mux(p2)


def run_measured(cmd: list[str], env: dict) -> tuple[float, float, float, int, str]:
    """(wall s, CPU s (user + sys), peak RSS MiB, return code, output tail) of a child process.

    CPU time is reported beside wall time because the 2-core machine is shared: under load, wall
    time measures the neighbours as much as the program."""
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    full = [timer, "-v", *cmd] if timer else cmd
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(full, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if m:
        rss_mib = int(m.group(1)) / 1024
    else:  # no /usr/bin/time: the largest child so far (only meaningful when it grows)
        rss_mib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    user = re.search(r"User time \(seconds\): ([\d.]+)", proc.stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", proc.stderr)
    cpu = float(user.group(1)) + float(system.group(1)) if user and system else float("nan")
    tail = (proc.stdout + proc.stderr)[-600:]
    return wall, cpu, rss_mib, proc.returncode, tail


OPENRPPG_SNIPPET = """
import sys, time, rppg
t0 = time.perf_counter()
model = rppg.Model()
res = model.process_video(sys.argv[1])
hr = model.hr() if hasattr(model, "hr") else None
print("openrppg-result", hr, time.perf_counter() - t0)
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mmrphys_speed"))
    ap.add_argument("--method", default=None, help="estimation method (default: the package default)")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--openrppg-python", default="/tmp/orppg/bin/python")
    ap.add_argument("--skip-long", action="store_true", help="skip the 10-minute memory run")
    ap.add_argument("--skip-openrppg", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest is kept")
    ap.add_argument("--against", type=Path, default=None, help="another src tree, timed alternately")
    ap.add_argument("--backend", default=None, help="inference backend for this checkout (eager, compiled)")
    args = ap.parse_args(argv)
    one, ten = make_videos(args.workdir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    base = [sys.executable, "-m", "mmrphys", "estimate", "--quiet"]
    if args.method:
        base += ["--method", args.method]
    if args.weights:
        base += ["--weights", args.weights]
    ours = base + (["--backend", args.backend] if args.backend else [])
    if args.against is not None:
        return compare(ours, base, args.against, one, env, args)
    base = ours
    rows = []

    def measure(tool, video, cmd):
        best = None
        for _ in range(max(1, args.repeat)):
            load = os.getloadavg()[0]
            wall, cpu, rss, rc, tail = run_measured(cmd, env)
            if rc:
                print(f"{tool} failed:", tail)
            if best is None or wall < best[2]:
                best = (tool, video, wall, cpu, rss, rc, load)
        rows.append(best)

    measure("mmrphys estimate", "60 s", [*base, str(one), "--json", str(args.workdir / "r60.json")])
    if not args.skip_long:
        measure("mmrphys estimate", "600 s", [*base, str(ten), "--json", str(args.workdir / "r600.json")])
    orppg = Path(args.openrppg_python)
    if args.skip_openrppg:
        pass
    elif orppg.is_file():
        measure("open-rppg process_video", "60 s", [str(orppg), "-c", OPENRPPG_SNIPPET, str(one)])
    else:
        print(f"open-rppg not measured: no interpreter at {orppg} (pip install open-rppg into a venv there)")
    label = args.method or "package default"
    print(f"\nmethod {label}; 640x480 30 fps synthetic H.264; whole process incl. imports; "
          f"{os.cpu_count()} CPUs")
    print(f"{'tool':<26} {'video':>6} {'load':>5} {'wall s':>7} {'CPU s':>7} {'x real (wall)':>14} "
          f"{'x real (CPU)':>13} {'peak RSS MiB':>13} {'rc':>3}")
    for tool, video, wall, cpu, rss, rc, load in rows:
        secs = 60 if video == "60 s" else 600
        print(f"{tool:<26} {video:>6} {load:5.1f} {wall:7.1f} {cpu:7.1f} {secs / wall:14.1f} "
              f"{secs / cpu:13.1f} {rss:13.0f} {rc:3d}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


def compare(ours: list[str], theirs: list[str], against: Path, video: Path, env: dict, args) -> int:
    """This checkout and ``against`` (its own PYTHONPATH) on the 60 s video, run alternately."""
    other = {**env, "PYTHONPATH": str(against.resolve())}
    runs = {"this checkout": [], f"against {against}": []}
    if args.backend == "compiled":  # compile (or load) once outside the timing
        run_measured([*ours, str(video), "--json", str(args.workdir / "warm.json")], env)
    for _ in range(max(1, args.repeat)):
        for label, cmd, e in (("this checkout", ours, env), (f"against {against}", theirs, other)):
            load = os.getloadavg()[0]
            out = str(args.workdir / "c.json")
            wall, cpu, rss, rc, tail = run_measured([*cmd, str(video), "--json", out], e)
            if rc:
                print(f"{label} failed:", tail)
            runs[label].append((load, wall, cpu, rss))
    print(f"method {args.method or 'package default'}; 60 s 640x480 30 fps synthetic H.264; whole process; "
          "alternate runs")
    for label, rs in runs.items():
        cells = "; ".join(f"load {ld:.1f}: {w:.1f} s wall, {c:.1f} s CPU, {r:.0f} MiB" for ld, w, c, r in rs)
        print(f"{label:<40} {cells}")
        print(f"{'':<40} median wall {sorted(r[1] for r in rs)[len(rs) // 2]:.1f} s, "
              f"median CPU {sorted(r[2] for r in rs)[len(rs) // 2]:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
