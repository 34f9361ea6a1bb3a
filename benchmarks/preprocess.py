"""Preprocessing throughput and peak memory: mmrphys vs a re-creation of the rPPG-Toolbox's pipeline.

Both run on the same UBFC-rPPG videos at the paper's settings (72×72 face crops enlarged ×1.5, Haar
face detection every 30 frames, chunks of 180, standardized labels), each as a separate process
tree, measured whole: wall time from launch to exit (imports, process start-up, writing included)
and peak memory = the largest sum of resident set sizes over the process and all its children,
sampled every 20 ms (shared library pages are counted once per process, for both sides alike).

The reference follows ECOSYSTEM.md §1.3 (``BaseLoader``/``UBFCrPPGLoader``): each video is read
whole into RAM with ``cv2.VideoCapture`` (a list of RGB frames, then ``np.asarray``), Haar detection
(``detectMultiScale`` with default parameters on the full frame, largest width kept, box ×1.5 with
the top-left clamped) on frames 0, 30, 60, ..., every frame cropped by its block's box and resized
INTER_AREA into a float64 array, ``Raw`` data type (a copy), z-scored labels, non-overlapping chunks
saved as float64 ``.npy``; one ``multiprocessing.Process`` per video (spawn), at most 8 at a time,
file lists collected in a ``Manager().dict()``.

Run on a quiet machine::

    python benchmarks/preprocess.py [--root ../shared/data/ubfc-rppg-mini] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MMRPHYS_SHARED", ROOT.parent / "shared")) / "data" / "ubfc-rppg-mini"


# ------------------------------------------------------------------------------------------------
# the rPPG-Toolbox re-creation (runs in its own process: python preprocess.py --reference ...)


def _tb_read_video(path):
    import cv2
    import numpy as np

    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_MSEC, 0)
    ok, frame = cap.read()
    frames = []
    while ok:
        frame = cv2.cvtColor(np.array(frame), cv2.COLOR_BGR2RGB)
        frames.append(np.asarray(frame))
        ok, frame = cap.read()
    return np.asarray(frames)


def _tb_read_wave(path):
    import numpy as np

    with open(path) as fh:
        return np.asarray([float(x) for x in fh.readline().split()])


def _tb_face_detection(frame, coef=1.5):
    import cv2
    import numpy as np

    detector = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    zone = detector.detectMultiScale(frame)
    if len(zone) < 1:
        box = [0, 0, frame.shape[0], frame.shape[1]]
    elif len(zone) >= 2:
        box = zone[np.argmax(zone[:, 2])]
    else:
        box = zone[0]
    box = [int(v) for v in box]
    box[0] = max(0, int(box[0] - (coef - 1.0) / 2 * box[2]))
    box[1] = max(0, int(box[1] - (coef - 1.0) / 2 * box[3]))
    box[2], box[3] = int(coef * box[2]), int(coef * box[3])
    return box


def _tb_crop_face_resize(frames, width, height, freq):
    import cv2
    import numpy as np

    n_det = math.ceil(frames.shape[0] / freq)
    regions = [_tb_face_detection(frames[freq * i]) for i in range(n_det)]
    out = np.zeros((frames.shape[0], height, width, 3))
    for i in range(frames.shape[0]):
        x, y, w, h = regions[i // freq]
        f = frames[i][max(y, 0) : min(y + h, frames.shape[1]), max(x, 0) : min(x + w, frames.shape[2])]
        out[i] = cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
    return out


def _tb_subprocess(video, wave, out_dir, name, size, chunk, freq, file_list):
    import numpy as np

    frames = _tb_read_video(video)
    bvps = _tb_read_wave(wave)
    frames = _tb_crop_face_resize(frames, size, size, freq)
    data = np.concatenate([frames.copy()], axis=-1)  # DATA_TYPE: [Raw]
    bvps = (bvps - np.mean(bvps)) / np.std(bvps)  # LABEL_TYPE: Standardized
    n_clips = data.shape[0] // chunk
    names = []
    for i in range(n_clips):
        p = os.path.join(out_dir, f"{name}_input{i}.npy")
        np.save(p, data[i * chunk : (i + 1) * chunk])
        np.save(os.path.join(out_dir, f"{name}_label{i}.npy"), bvps[i * chunk : (i + 1) * chunk])
        names.append(p)
    file_list[name] = names


def run_reference(root, out_dir, size=72, chunk=180, freq=30, quota=8) -> int:
    """The toolbox's ``multi_process_manager`` over every ``subject*`` folder; returns the chunk count."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    dirs = sorted(Path(root).glob("subject*"))
    manager = ctx.Manager()
    file_list = manager.dict()
    running: list = []
    for d in dirs:
        video = d / "vid.avi" if (d / "vid.avi").exists() else d / "vid.mp4"
        while len(running) >= quota:
            for p in list(running):
                if not p.is_alive():
                    p.join()
                    running.remove(p)
            time.sleep(0.05)
        p = ctx.Process(
            target=_tb_subprocess,
            args=(
                str(video),
                str(d / "ground_truth.txt"),
                str(out_dir),
                d.name,
                size,
                chunk,
                freq,
                file_list,
            ),
        )
        p.start()
        running.append(p)
    for p in running:
        p.join()
    return sum(len(v) for v in file_list.values())


# ------------------------------------------------------------------------------------------------
# measurement


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                kids.append(int(entry))
    return kids


def _tree_rss(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
        stack += _children(p)
    return total


def _mem_available() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(cmd: list[str], min_free: int = 3 * 2**30) -> dict:
    """Run ``cmd``; wall time and peak tree RSS. Kills it if the machine's free memory runs out."""
    import resource

    peak, aborted = 0, False
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    done = threading.Event()

    def sample():
        nonlocal peak, aborted
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            if _mem_available() < min_free:  # protect the shared machine: stop before the OOM killer acts
                aborted = True
                os.killpg(proc.pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)  # reaped descendants included
    if proc.returncode != 0 and not aborted:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_bytes": peak,
        "aborted_low_memory": aborted,
        "stdout": out.strip(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(DEFAULT_DATA))
    ap.add_argument(
        "--workers", type=int, default=None, help="mmrphys worker processes (default: its default)"
    )
    ap.add_argument("--quota", type=int, default=8, help="reference processes (the toolbox's 8)")
    ap.add_argument("--size", type=int, default=72)
    ap.add_argument("--chunk", type=int, default=180)
    ap.add_argument("--detect-every", type=int, default=30)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--reference", nargs=2, metavar=("ROOT", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.reference:
        n = run_reference(
            args.reference[0], args.reference[1], args.size, args.chunk, args.detect_every, args.quota
        )
        print(json.dumps({"chunks": n}))
        return 0

    from mmrphys.data import load_dataset
    from mmrphys.data.cache import default_workers

    recs = load_dataset("ubfc-rppg", args.root)
    n_frames = sum(_count_frames(r) for r in recs)
    workers = args.workers or default_workers(len(recs))
    load = os.getloadavg()
    print(
        f"{len(recs)} recordings, {n_frames} frames; cores {os.cpu_count()}; load before "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; MemAvailable {_mem_available() / 2**30:.1f} GiB"
    )
    results = {
        "frames": n_frames,
        "recordings": len(recs),
        "cores": os.cpu_count(),
        "load_before": load,
        "settings": {"size": args.size, "chunk": args.chunk, "detect_every": args.detect_every},
    }
    # the paper's settings, given alike to both pipelines
    settings_args = ["--size", str(args.size), "--chunk", str(args.chunk),
                     "--detect-every", str(args.detect_every)]
    with tempfile.TemporaryDirectory(prefix="mmrphys-bench-") as tmp:
        ours = measure(
            [
                sys.executable,
                "-m",
                "mmrphys.cli.main",
                "preprocess",
                "--dataset",
                "ubfc-rppg",
                "--root",
                args.root,
                "--out",
                f"{tmp}/ours",
                *settings_args,
                "--workers",
                str(workers),
                "--quiet",
            ]
        )
        ours.update(workers=workers, threads_per_worker=1, fps=n_frames / ours["wall_s"])
        results["mmrphys"] = ours
        print(
            f"mmrphys   : {ours['fps']:7.1f} frames/s, peak {ours['peak_rss_bytes'] / 2**20:7.0f} MiB "
            f"({workers} worker processes, 1 thread each), {ours['wall_s']:.1f} s wall, "
            f"{ours['cpu_s']:.1f} s CPU"
        )
        if not args.skip_reference:
            os.makedirs(f"{tmp}/ref")
            ref = measure(
                [
                    sys.executable,
                    __file__,
                    "--reference",
                    args.root,
                    f"{tmp}/ref",
                    *settings_args,
                    "--quota",
                    str(args.quota),
                ]
            )
            ref.update(processes=args.quota, fps=n_frames / ref["wall_s"])
            if ref["aborted_low_memory"]:  # killed part-way: its wall time and CPU time mean nothing
                ref.update(fps=float("nan"), cpu_s=float("nan"))
            results["toolbox_reference"] = ref
            print(
                f"reference : {ref['fps']:7.1f} frames/s, peak {ref['peak_rss_bytes'] / 2**20:7.0f} MiB "
                f"({args.quota} processes), {ref['wall_s']:.1f} s wall, {ref['cpu_s']:.1f} s CPU"
                + ("  ABORTED: machine ran low on memory" if ref["aborted_low_memory"] else "")
            )
            print(
                f"ratio     : {ours['fps'] / ref['fps']:.2f}x throughput, "
                f"{ours['peak_rss_bytes'] / ref['peak_rss_bytes']:.3f} of the peak memory, "
                f"{ref['cpu_s'] / ours['cpu_s']:.2f}x less CPU time"
            )
    load = os.getloadavg()
    results["load_after"] = load
    print(f"load after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _count_frames(rec) -> int:
    from mmrphys.video import open_video

    n = open_video(rec.files["video"]).n_frames
    return int(n) if n else sum(1 for _ in rec.frames())


if __name__ == "__main__":
    sys.exit(main())
