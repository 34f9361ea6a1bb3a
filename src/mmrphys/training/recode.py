"""Re-encoded copies of a dataset: the camera, frame rate and codec of other recordings, labels untouched.

    python -m mmrphys.training.recode SRC DST --fps 20 --codec mpeg4 --bitrate 400k

Every video under ``SRC`` (``.avi``, ``.mp4``, ``.mkv``, ``.mov``) is written to the same relative path
under ``DST``; every other file (labels, timestamps) is copied. A video is

1. decimated to ``--fps`` (the source frame nearest each new frame time),
2. encoded with ``--codec`` at ``--bitrate`` (``mpeg4``: MPEG-4 Part 2, as COHFACE stores its videos;
   ``libx264`` with ``--crf``) — the compression a model must survive, — decoded again, and
3. brought back to the source's frame rate and frame count by linear interpolation between the
   decoded frames, as the main job resamples crops of a video outside 25-35 fps to the model's
   30 fps; stored near-losslessly (H.264, CRF 8).

Labels sampled per source frame therefore stay aligned frame by frame, and a model trained on the
copy sees what it sees at inference on such a video. Leave-subjects-out (:mod:`mmrphys.training.loso`)
restricts a copy's subjects like the source's when its entry has the dataset's ``name``.

Each file is written to a temporary name and renamed when complete; existing outputs are kept
(``--force`` rewrites them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from mmrphys.errors import InputError

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov")


def _parse_rate(text: str) -> int:
    t = str(text).strip().lower()
    scale = 1000 if t.endswith("k") else 1_000_000 if t.endswith("m") else 1
    return int(float(t.rstrip("km")) * scale)


def _open_encoder(path: Path, codec: str, fps: float, width: int, height: int, bit_rate: int | None,
                  crf: int | None):
    from fractions import Fraction

    import av

    out = av.open(str(path), "w")
    stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    if bit_rate:
        stream.bit_rate = bit_rate
    if crf is not None:
        stream.options = {"crf": str(crf), "preset": "fast"}
    return out, stream


def _write(out, stream, rgb: np.ndarray, pts: int) -> None:
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    frame.pts = pts
    for pkt in stream.encode(frame):
        out.mux(pkt)


def _close(out, stream) -> None:
    for pkt in stream.encode():
        out.mux(pkt)
    out.close()


def recode_video(src: Path, dst: Path, fps: float, codec: str = "mpeg4", bit_rate: int | None = 400_000,
                 crf: int | None = None) -> int:
    """Write ``dst`` as described in the module docstring; returns the number of frames written.

    A video that fails part-way leaves no file behind (its temporary files are removed)."""
    import av

    parts = (dst.with_name(dst.stem + ".low.part.avi"), dst.with_name(dst.stem + ".part" + dst.suffix))
    try:
        return _recode(src, dst, fps, codec, bit_rate, crf, *parts)
    except av.error.FFmpegError as err:
        raise InputError(f"{src}: cannot re-encode ({err})") from None
    finally:
        for part in parts:
            part.unlink(missing_ok=True)


def _recode(src, dst, fps, codec, bit_rate, crf, low, tmp) -> int:
    import av

    try:
        inp = av.open(str(src))
    except av.error.FFmpegError as err:
        raise InputError(f"{src}: cannot open the video ({err})") from None
    with inp:
        vin = inp.streams.video[0]
        fps_in = float(vin.average_rate or vin.guessed_rate or 30)
        w, h = vin.codec_context.width, vin.codec_context.height
        w, h = w - w % 2, h - h % 2
        enc, stream = _open_encoder(low, codec, fps, w, h, bit_rate, crf)
        n_in, k_low = 0, 0
        for k, frame in enumerate(inp.decode(vin)):
            n_in = k + 1
            if k + 0.5 < k_low * fps_in / fps:  # not the frame nearest the next low-rate time
                continue
            _write(enc, stream, frame.to_ndarray(format="rgb24")[:h, :w], k_low)
            k_low += 1
        _close(enc, stream)
    if n_in == 0:
        raise InputError(f"{src}: no frames decoded")
    # back to the source's rate and frame count: source frame k lies at low-rate position k * fps / fps_in
    enc, stream = _open_encoder(tmp, "libx264", fps_in, w, h, None, 8)
    with av.open(str(low)) as lowf:
        decoded = (f.to_ndarray(format="rgb24") for f in lowf.decode(lowf.streams.video[0]))
        prev = next(decoded)
        nxt = next(decoded, None)
        j = 0  # prev is low-rate frame j
        for k in range(n_in):
            pos = k * fps / fps_in
            while nxt is not None and pos >= j + 1:
                prev, nxt, j = nxt, next(decoded, None), j + 1
            a = min(max(pos - j, 0.0), 1.0) if nxt is not None else 0.0
            img = prev if a == 0.0 else (prev * (1.0 - a) + nxt * a + 0.5).astype(np.uint8)
            _write(enc, stream, img, k)
        _close(enc, stream)
    os.replace(tmp, dst)
    return n_in


def recode_tree(src: Path, dst: Path, fps: float, codec: str, bit_rate: int | None, crf: int | None,
                force: bool = False, log=print) -> int:
    """Recode every video of ``src`` into ``dst`` (same layout), copy the other files; videos written."""
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise InputError(f"{src}: not a folder")
    n = 0
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists() and not force:
            continue
        if path.suffix.lower() in VIDEO_SUFFIXES:
            frames = recode_video(path, out, fps, codec, bit_rate, crf)
            log(f"{path.relative_to(src)}: {frames} frames via {fps:g} fps {codec}")
            n += 1
        else:
            tmp = out.with_name(out.name + ".part")
            shutil.copyfile(path, tmp)
            os.replace(tmp, out)
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m mmrphys.training.recode", description=__doc__.splitlines()[0],
        epilog="example: python -m mmrphys.training.recode ../shared/data/ubfc-rppg-mini "
               "/data/ubfc-cohface20 --fps 20 --codec mpeg4 --bitrate 400k")
    ap.add_argument("src", type=Path, help="dataset folder (any layout)")
    ap.add_argument("dst", type=Path, help="output folder (same layout)")
    ap.add_argument("--fps", type=float, required=True, help="frame rate the video passes through")
    ap.add_argument("--codec", default="mpeg4", help="mpeg4 (MPEG-4 Part 2) or libx264 (default: mpeg4)")
    ap.add_argument("--bitrate", default="400k", help="target bit rate, e.g. 400k (mpeg4)")
    ap.add_argument("--crf", type=int, default=None, help="constant rate factor instead (libx264), e.g. 30")
    ap.add_argument("--force", action="store_true", help="rewrite outputs that exist")
    a = ap.parse_args(argv)
    if a.fps <= 0:
        ap.error("--fps must be positive")
    try:
        n = recode_tree(a.src, a.dst, a.fps, a.codec, None if a.crf is not None else _parse_rate(a.bitrate),
                        a.crf, a.force)
    except InputError as err:
        print(f"recode: error: {err}", file=sys.stderr)
        return 2
    print(f"{n} videos written to {a.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
