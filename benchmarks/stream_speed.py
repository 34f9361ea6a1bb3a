"""Does a live stream keep up with 30 fps on one core? Frames processed per second by ``mmrphys.Stream``.

    python benchmarks/stream_speed.py                              # POS (default) and MMRPhys-LEF
    python benchmarks/stream_speed.py --method pos --seconds 60 --faces 3
    python benchmarks/stream_speed.py --method mmrphys --arch mmrphys_mef   # MMRPhys-M (36 px), speed only

1. Generates (once, cached in --workdir) a 640x480 30 fps H.264 synthetic clip with 1-4 faces.
2. Decodes it to RGB frames (as a camera would hand them over; decoding is not timed) and pushes every
   frame into a ``Stream(fps=30, method=...)`` on one thread (torch or onnxruntime intra-op threads
   = 1), timing each ``push`` with the wall clock and the thread's CPU clock (``time.thread_time``).
3. Prints, per method: frames per second of CPU time and of wall time, the push latency (median,
   99th percentile, worst: a model window runs inside the push that completes it), and whether the
   stream keeps up with 30 fps: CPU frames/s >= 30, and the worst push's CPU time shorter than the
   2 s of camera frames `mmrphys live` buffers (``CAMERA_BUFFER_S``) so none is dropped.

The machine is shared: the 1-minute load average is printed with each row; the CPU-time rate is the
one that does not depend on other jobs (wall time on a loaded machine includes their share).
``--arch`` times an untrained model of that registry name (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path


def make_clip(workdir: Path, seconds: float, faces: int) -> Path:
    path = workdir / f"stream_{faces}faces_{int(seconds)}s_640x480.mp4"
    if path.is_file():
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"generating {path.name} (once) ...", flush=True)
    if faces == 1:
        from mmrphys.synth import make_clip as one

        one(path, hr_bpm=72, rr_bpm=15, duration_s=seconds, fps=30, size=(640, 480), seed=3, crf=20)
    else:
        from mmrphys.synth.multi import make_multi_clip

        make_multi_clip(path, faces, duration_s=seconds, fps=30, size=(640, 480), seed=3, crf=20)
    return path


def weights_for(arch: str | None, workdir: Path):
    if arch is None:
        return None
    import torch

    from mmrphys import models
    from mmrphys.models.checkpoints import save_weights

    path = workdir / f"{arch}_untrained.pt"
    if not path.is_file():
        torch.manual_seed(0)
        save_weights(models.create(arch, tasks=("bvp", "rsp"), in_channels=3), path)
    return path


def measure(clip: Path, method: str, weights) -> dict:
    import mmrphys
    import mmrphys.signals.hrv  # noqa: F401  (imports outside the timed region)
    import mmrphys.signals.quality  # noqa: F401
    import mmrphys.signals.rates  # noqa: F401
    import mmrphys.signals.respiration  # noqa: F401
    from mmrphys.video import open_video

    reader = open_video(clip)
    stream = mmrphys.Stream(fps=reader.fps, method=method, weights=weights)
    wall, cpu, first = [], [], None
    for frame, t in reader:  # RGB arrays, decoded here but not timed
        w0, c0 = time.perf_counter(), time.thread_time()
        reading = stream.push(frame, t)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
        if reading is not None and first is None:
            first = reading.t_s
    c0 = time.thread_time()
    result = stream.close()
    close_cpu = time.thread_time() - c0
    n = len(wall)
    return {"method": method if weights is None else f"{method} ({Path(str(weights)).stem})",
            "frames": n, "cpu_fps": n / sum(cpu), "wall_fps": n / sum(wall),
            "p50_ms": 1e3 * statistics.median(wall), "p99_ms": 1e3 * sorted(wall)[int(0.99 * (n - 1))],
            "max_ms": 1e3 * max(wall), "cpu_p99_ms": 1e3 * sorted(cpu)[int(0.99 * (n - 1))],
            "cpu_max_ms": 1e3 * max(cpu), "first_reading_s": first, "close_s": close_cpu,
            "faces": len(result.faces), "hr": [round(f.heart_rate_bpm, 1) for f in result.faces],
            "windows": (result.model or {}).get("windows"), "load": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", action="append", default=None, help="pos, mmrphys, ... (repeatable)")
    ap.add_argument("--arch", default=None,
                    help="time an untrained model of this registry name (with --method mmrphys)")
    ap.add_argument("--seconds", type=float, default=60.0, help="clip length (default 60)")
    ap.add_argument("--faces", type=int, default=1, help="faces in the clip, 1-4 (default 1)")
    ap.add_argument("--workdir", default="/tmp/mmrphys_stream_speed")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)  # one core: the question asked
    workdir = Path(args.workdir)
    clip = make_clip(workdir, args.seconds, args.faces)
    weights = weights_for(args.arch, workdir)
    methods = args.method or ["pos", "mmrphys"]
    print(f"{clip.name}: model threads 1 (torch {torch.get_num_threads()}, onnxruntime 1), "
          f"{os.cpu_count()} CPUs, "
          f"python {sys.version.split()[0]}, torch {torch.__version__}")
    head = (f"{'method':34} {'faces':>5} {'CPU fps':>8} {'wall fps':>8} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'max ms':>7} {'1st HR s':>8} {'load':>5}  keeps up with 30 fps")
    print(head)
    for method in methods:
        r = measure(clip, method, weights if method not in ("pos", "chrom", "green") else None)
        ok = r["cpu_fps"] >= 30 and r["cpu_max_ms"] < 2000
        print(f"{r['method']:34} {r['faces']:>5} {r['cpu_fps']:8.0f} {r['wall_fps']:8.0f} {r['p50_ms']:7.2f} "
              f"{r['p99_ms']:7.1f} {r['max_ms']:7.0f} {r['first_reading_s'] or float('nan'):8.1f} "
              f"{r['load']:5.1f}  {'yes' if ok else 'NO'} ({r['cpu_fps'] / 30:.1f}x real time; "
              f"CPU p99/max {r['cpu_p99_ms']:.1f}/{r['cpu_max_ms']:.0f} ms; HR {r['hr']}, "
              f"{r['windows'] or '-'} windows, close {r['close_s']:.2f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
