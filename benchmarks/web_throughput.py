"""Throughput of the live web app in headless Chromium: does it keep up with a 30 fps camera?

Feeds a synthetic face clip as the fake webcam to the page served by ``mmrphys serve``'s server and
reads the page's own counters after a warm-up: frames processed per second, frames the video element
presented vs processed (drops), face-detection time, and onnxruntime-web inference time per window.
Runs our model (the default shipped weights, or ``--model``) and, in the same run and the same
onnxruntime-web setup (WASM, 1 thread, in the worker), the authors' ``SCAMPS_MultiTask_72x72_FP.onnx``
when ``../shared/reference/mmrphys-official`` has it.

    python benchmarks/web_throughput.py [--seconds 40] [--model PATH] [--out artifacts/web_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "web"))  # the DevTools client lives with the browser tests
SHARED = Path(os.environ.get("MMRPHYS_SHARED", ROOT.parent / "shared"))
OFFICIAL_ONNX = SHARED / "reference" / "mmrphys-official" / "SCAMPS_MultiTask_72x72_FP.onnx"


def run_page(clip: Path, model_arg: str | None, seconds: float, warmup: float) -> dict:
    from _headless import Browser, fake_camera_flags, wait_for_app

    from mmrphys.web import WebServer, resolve_model

    model = resolve_model(model_arg)
    server = WebServer("127.0.0.1", 0, model)
    server.start_background()
    try:
        with Browser(fake_camera_flags(clip)) as b:
            b.navigate(server.url)
            wait_for_app(b, 30)
            b.evaluate("document.getElementById('start').click()")
            time.sleep(warmup)
            s0 = b.evaluate("window.__mmrphys.status()")
            w0 = time.monotonic()
            fps_samples = []
            while time.monotonic() - w0 < seconds:
                time.sleep(1.0)
                fps_samples.append(b.evaluate("window.__mmrphys.status()")["processingFps"])
            s1 = b.evaluate("window.__mmrphys.status()")
            wall = time.monotonic() - w0
    finally:
        server.shutdown()
        server.server_close()
    frames = s1["frames"] - s0["frames"]
    presented = s1["presentedFrames"] - s0["presentedFrames"]
    full = [ms for ms, n in zip(s1["inferMs"], s1["inferFrames"]) if n == model.frames]
    return {
        "model": model.label if model.available else "POS fallback (no model)",
        "method": s1["method"],
        "backend": s1["backend"],
        "window_frames": model.frames,
        "frames_processed_per_s": round(frames / wall, 2),
        "processing_fps_median": round(statistics.median(fps_samples), 2) if fps_samples else None,
        "frames_presented": presented,
        "frames_processed": frames,
        "dropped_fraction": round(1 - frames / presented, 4) if presented else None,
        "face_detect_ms_mean": round(s1["faceMsMean"], 1) if s1["faceMsMean"] else None,
        "windows": len(full),
        "inference_ms_median": round(statistics.median(full), 1) if full else None,
        "inference_ms_mean": round(statistics.fmean(full), 1) if full else None,
        "inference_ms_max": round(max(full), 1) if full else None,
        "hr_bpm": (s1["hr"] or {}).get("bpm"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=40.0, help="measured seconds per model (after warm-up)")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds after Start before measuring")
    ap.add_argument("--model", default=None, help="our model (default: the shipped default weights)")
    ap.add_argument("--camera-fps", type=float, default=30.0, help="frame rate of the fake camera")
    ap.add_argument("--out", default=str(ROOT / "artifacts" / "web_throughput.json"))
    args = ap.parse_args(argv)

    from _headless import find_chromium

    from mmrphys.synth import Effects, make_clip

    if not find_chromium():
        print("chromium not found: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "face.y4m"
        make_clip(clip, hr_bpm=72, rr_bpm=12, duration_s=20, fps=args.camera_fps, size=(320, 240),
                  effects=Effects(light_change=0.0))
        runs = {"ours": run_page(clip, args.model, args.seconds, args.warmup)}
        if OFFICIAL_ONNX.is_file():
            runs["authors_SCAMPS_MultiTask_72x72_FP"] = run_page(clip, str(OFFICIAL_ONNX), args.seconds,
                                                                 args.warmup)
        else:
            print(f"skipping the authors' ONNX: {OFFICIAL_ONNX} absent")
    result = {"camera_fps": args.camera_fps, "seconds": args.seconds, "cpu_count": os.cpu_count(),
              "load_average": os.getloadavg(), "runs": runs}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"{'run':36s} {'method':6s} {'fps':>6s} {'drop%':>6s} {'face ms':>8s} "
          f"{'infer ms (median/max)':>22s} {'HR':>6s}")
    for name, r in runs.items():
        drop = "-" if r["dropped_fraction"] is None else f"{100 * r['dropped_fraction']:.1f}"
        inf = ("-" if r["inference_ms_median"] is None
               else f"{r['inference_ms_median']:.0f} / {r['inference_ms_max']:.0f}")
        hr = "-" if r["hr_bpm"] is None else f"{r['hr_bpm']:.1f}"
        print(f"{name:36s} {r['method']:6s} {r['frames_processed_per_s']:6.1f} {drop:>6s} "
              f"{r['face_detect_ms_mean'] or 0:8.0f} {inf:>22s} {hr:>6s}")
    print(f"load average during the run: {result['load_average']}; written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
