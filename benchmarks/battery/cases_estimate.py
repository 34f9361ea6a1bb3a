"""Fault battery, ``mmrphys estimate``: bad videos, bad options, bad weights, unwritable outputs.

Inputs are generated here (PyAV, NumPy, :mod:`mmrphys.synth`): a good 8 s synthetic face clip and
damaged, renamed, re-encoded, rotated, time-warped variants of it. Every error case states the name
the one error line must carry and checks that nothing was written where the results would go.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import stat
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from battery.case import Case, CaseRun, all_of, files_under, unchanged

CLIP_S = 8.0
SIZE = (160, 120)
HR_BPM = 72.0
HR_TOL_BPM = 4.0  # synthetic 8 s clip: POS lands within ~1 bpm; 4 leaves room for codec/resampling
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --- inputs --------------------------------------------------------------------------------------


def good_clip(root: Path, name: str = "good.mp4", duration_s: float = CLIP_S, fps: float = 30.0,
              seed: int = 1) -> dict:
    """A synthetic face clip with known HR (``make_clip``); returns its truth dict."""
    from mmrphys.synth import make_clip

    return make_clip(root / name, hr_bpm=HR_BPM, rr_bpm=14.0, duration_s=duration_s, fps=fps, size=SIZE,
                     seed=seed)


def decoded(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def encode(path: Path, frames, fps: float = 30.0, codec: str = "libx264", pix_fmt: str = "yuv420p",
           fmt: str | None = None, rotation: int | None = None, pts_s=None, src_format: str = "rgb24",
           options: dict | None = None) -> Path:
    """Write ``frames`` with PyAV: any codec/container, a display rotation, or explicit times (VFR)."""
    import av

    frames = list(frames)
    with av.open(str(path), "w", format=fmt) as out:
        rate = Fraction(fps).limit_denominator(1001)
        s = out.add_stream(codec, rate=rate)
        s.pix_fmt = pix_fmt
        s.height, s.width = frames[0].shape[:2]
        if options:
            s.options = options
        elif codec == "libx264":
            s.options = {"crf": "14", "preset": "ultrafast"}
        if rotation is not None:
            s.set_display_rotation(rotation)
        if pts_s is not None:
            s.time_base = Fraction(1, 1000)
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format=src_format)
            if pts_s is not None:
                vf.pts = int(round(pts_s[i] * 1000))
                vf.time_base = Fraction(1, 1000)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def make_inputs(root: Path) -> dict:
    """Every input file of this module, in ``root``; returns name -> path (and the truths)."""
    import cv2

    rng = np.random.default_rng(10)
    p: dict = {}
    truth = good_clip(root)
    p["good"] = root / "good.mp4"
    p["truth"] = truth
    frames = decoded(p["good"])
    p["frames"] = frames

    def w(name: str, data: bytes) -> Path:
        path = root / name
        path.write_bytes(data)
        return path

    good_bytes = p["good"].read_bytes()
    p["empty"] = w("empty.mp4", b"")
    p["lorem"] = w("lorem.mp4", b"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * 300)
    p["notes_txt"] = w("notes.txt", b"hello, not a video\n" * 200)
    p["ansi"] = w("art.ans", b"\x1b[31mred\x1b[0m text\n" * 100)
    p["random_mp4"] = w("random.mp4", rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    p["random_avi"] = w("random.avi", b"RIFF" + rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    ebml = b"\x1a\x45\xdf\xa3"  # a Matroska signature, then noise
    p["random_mkv"] = w("random.mkv", ebml + rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    p["cut_half"] = w("cut_half.mp4", good_bytes[: len(good_bytes) // 2])
    p["cut_header"] = w("cut_header.mp4", good_bytes[:1024])
    zeroed = bytearray(good_bytes)
    mdat = zeroed.find(b"mdat")
    zeroed[mdat + 8:] = bytes(len(zeroed) - mdat - 8)
    p["zeroed"] = w("zeroed.mp4", bytes(zeroed))
    # lossless AVI: a cut keeps the frames before it
    encode(root / "lossless.avi", frames, codec="ffv1", pix_fmt="bgr0")
    avi = (root / "lossless.avi").read_bytes()
    p["avi_cut_90"] = w("avi_cut_90.avi", avi[: int(len(avi) * 0.9)])
    p["avi_cut_40"] = w("avi_cut_40.avi", avi[: int(len(avi) * 0.4)])
    for key, flips in (("corrupt_middle", 12), ("corrupt_heavy", 400)):  # bytes flipped in the middle third
        corrupt = bytearray(good_bytes)
        for i in rng.integers(len(corrupt) // 3, 2 * len(corrupt) // 3, flips):
            corrupt[i] ^= 0xFF
        p[key] = w(f"{key}.mp4", bytes(corrupt))
    p["one_frame"] = encode(root / "one_frame.mp4", frames[:1])
    p["two_s"] = encode(root / "two_s.mp4", frames[:60])
    p["short_5s"] = encode(root / "short_5s.mp4", frames[:165])
    cv2.imwrite(str(root / "face.png"), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "face.jpg"), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    p["png"] = root / "face.png"
    p["png_as_mp4"] = w("png_as.mp4", (root / "face.png").read_bytes())
    p["jpeg_as_mp4"] = w("jpeg_as.mp4", (root / "face.jpg").read_bytes())
    grey = [np.repeat(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[..., None], 3, -1) for f in frames]
    p["grey_as_colour"] = encode(root / "grey_as_colour.mp4", grey)
    p["grey_format"] = encode(root / "grey_format.avi", [g[..., 0] for g in grey], codec="ffv1",
                              pix_fmt="gray", src_format="gray")
    p["raw_h264"] = encode(root / "stream.h264", frames, fmt="h264")
    for deg in (90, -90, 180):
        k = {90: -1, -90: 1, 180: 2}[deg]  # stored = displayed rotated back (the tag rotates CCW)
        p[f"rot{deg}"] = encode(root / f"phone_rot{deg}.mp4", [np.rot90(f, k) for f in frames], rotation=deg)
    # variable frame rate: a 60 fps rendering, frames kept at irregular times (mean ~30 fps)
    from mmrphys.synth import make_clip

    make_clip(root / "vfr_src.npy", hr_bpm=HR_BPM, rr_bpm=14.0, duration_s=CLIP_S, fps=60.0, size=SIZE,
              seed=1)
    src60 = np.load(root / "vfr_src.npy")
    steps = np.resize([1, 3, 2, 1, 3, 2, 2], len(src60))  # gaps of 17, 50, 33 ms
    keep = np.cumsum(steps)
    keep = keep[keep < len(src60)]
    p["vfr"] = encode(root / "vfr.mkv", [src60[i] for i in keep], pts_s=keep / 60.0)
    (root / "vfr_src.npy").unlink()
    deep = [f.astype(np.uint16) * 257 for f in frames]
    p["deep16"] = encode(root / "deep16.mkv", deep, codec="ffv1", pix_fmt="rgb48le", src_format="rgb48le")
    big = np.zeros((4320, 7680, 3), np.uint8)
    big[::64] = 255
    p["huge"] = encode(root / "huge.mp4", [big] * 4, options={"preset": "ultrafast", "crf": "40"})
    noise = [rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8) for _ in range(int(CLIP_S * 30))]
    p["noface"] = encode(root / "noface.mp4", noise)
    p["audio"] = _wav(root / "tone.wav")
    p["mp4_as_txt"] = w("really_a_video.txt", good_bytes)
    p["spaces"] = w("my vidéo clip.mp4", good_bytes)
    (root / "adir").mkdir()
    p["adir"] = root / "adir"
    p["dangling"] = root / "dangling.mp4"
    os.symlink(root / "gone.mp4", p["dangling"])
    p["fifo"] = root / "pipe.mp4"
    os.mkfifo(p["fifo"])
    p["socket"] = root / "sock.mp4"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(p["socket"]))
    sock.close()
    return p


def _wav(path: Path) -> Path:
    import wave

    t = np.arange(16000) / 16000
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(16000)
        wf.writeframes((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())
    return path


def make_weights(root: Path) -> dict:
    """Bad weights files, plus a few well-formed ones for the wrong model."""
    import torch

    from mmrphys import models
    from mmrphys.models.checkpoints import save_weights

    rng = np.random.default_rng(11)
    d = root / "weights"
    d.mkdir()
    w: dict = {}
    w["random"] = d / "random.pth"
    w["random"].write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    w["text"] = d / "text.pth"
    w["text"].write_text("these are not weights\n" * 50)
    w["empty"] = d / "empty.pth"
    w["empty"].write_bytes(b"")
    good = save_weights(models.create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=3), d / "lef.pth")
    data = good.read_bytes()
    w["truncated"] = d / "truncated.pth"
    w["truncated"].write_bytes(data[: len(data) // 2])
    w["junk_dict"] = d / "junk_dict.pth"
    torch.save({"a": 1, "b": [1, 2, 3], "c": "text"}, w["junk_dict"])
    w["tensor"] = d / "tensor.pth"
    torch.save(torch.zeros(3, 3), w["tensor"])
    w["junk_state"] = d / "junk_state.pth"
    torch.save({"conv.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(2)}, w["junk_state"])
    w["pickle_class"] = d / "pickle_class.pth"
    w["pickle_class"].write_bytes(pickle.dumps(Fraction(1, 3)))
    w["zip"] = d / "archive.pth"
    with zipfile.ZipFile(w["zip"], "w") as z:
        z.writestr("readme.txt", "a zip archive, not a checkpoint")
    net = models.create("mmrphys_lef", tasks=("bvp", "rsp"), in_channels=4)
    w["rgbt"] = save_weights(net, d / "rgbt.pth")
    w["physnet"] = save_weights(models.create("physnet"), d / "physnet.pth", name="physnet", kwargs={})
    obj = torch.load(good, weights_only=True)
    first = next(iter(obj["state_dict"]))
    obj["state_dict"][first] = torch.zeros(1)
    w["wrong_shape"] = d / "wrong_shape.pth"
    torch.save(obj, w["wrong_shape"])
    obj = torch.load(good, weights_only=True)
    obj["state_dict"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                         for k, v in obj["state_dict"].items()}
    w["nan"] = d / "nan.pth"
    torch.save(obj, w["nan"])
    w["onnx"] = d / "model.onnx"
    w["onnx"].write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (d / "a_folder.pth").mkdir()
    w["dir"] = d / "a_folder.pth"
    return w


# --- checks --------------------------------------------------------------------------------------


def quick(limit_s: float) -> callable:
    """A check: the case failed fast (validated before decoding the video)."""
    return lambda run: None if run.wall_s <= limit_s else f"took {run.wall_s:.1f} s (> {limit_s:g} s)"


def result_ok(out: Path, hr: float | None = HR_BPM, warn: str | None = None, fps: float | None = None,
              face_min: float | None = None, files: tuple = ("json",), no_warn: str | None = None):
    """A check on a successful run's JSON (and the other outputs it should have written)."""

    def check(run: CaseRun) -> str | None:
        jsons = sorted(out.glob("*.json")) if out.is_dir() else [out]
        if not jsons or not jsons[0].is_file():
            return f"no result JSON at {out}"
        data = json.loads(jsons[0].read_text())
        if hr is not None:
            got = data.get("heart_rate_bpm")
            if got is None or abs(got - hr) > HR_TOL_BPM:
                return f"HR {got} bpm, truth {hr:.1f} (tolerance {HR_TOL_BPM})"
        warnings = " | ".join(data.get("quality", {}).get("warnings", []))
        if warn is not None and warn.lower() not in warnings.lower():
            return f"no warning mentioning {warn!r} (warnings: {warnings[:150] or 'none'})"
        if no_warn is not None and no_warn.lower() in warnings.lower():
            return f"unexpected warning mentioning {no_warn!r}"
        if fps is not None and abs(data.get("source_fps", data.get("fps", 0)) - fps) > 0.05:
            return f"fps {data.get('source_fps')} != {fps}"
        if face_min is not None and data["quality"].get("face_detected_fraction", 0) < face_min:
            return f"face in {data['quality'].get('face_detected_fraction'):.2f} of frames (< {face_min})"
        if out.is_dir():
            names = {f.name for f in files_under(out)}
            stem = jsons[0].stem
            want = {"json": f"{stem}.json", "csv": f"{stem}_waveforms.csv", "report": f"{stem}_report.png"}
            missing = [want[k] for k in files if want[k] not in names]
            if missing:
                return f"missing output {missing[0]}"
            extra = names - set(want.values())
            if extra:
                return f"left an unexpected file {sorted(extra)[0]}"
        return None

    return check


# --- cases ---------------------------------------------------------------------------------------


def cases(root: Path) -> list[Case]:
    p = make_inputs(root)
    wts = make_weights(root)
    good = str(p["good"])
    out_base = root / "out"
    out_base.mkdir()
    cs: list[Case] = []

    def slot(name: str) -> Path:
        d = out_base / name.replace("/", "_")
        d.mkdir(parents=True, exist_ok=True)
        return d

    def bad_video(name: str, path: Path, must: str | None = None, timeout_s: float = 60, extra=(), **kw):
        out = slot(name)
        argv = ["estimate", str(path), "--out", str(out), "--quiet", *extra]
        must = must if must is not None else Path(path).name
        cs.append(Case(f"estimate/{name}", argv, expect_exit=2, must_name=must,
                       timeout_s=timeout_s, check=all_of(unchanged(out), kw.pop("check", None))))

    # -- the video file itself
    bad_video("missing-file", root / "nope.mp4")
    bad_video("empty-file", p["empty"])
    bad_video("directory", p["adir"])
    bad_video("text-as-mp4", p["lorem"])
    bad_video("text-file-txt", p["notes_txt"], must="text file")
    bad_video("ansi-art-file", p["ansi"], must="text file")
    bad_video("random-bytes-mp4", p["random_mp4"])
    bad_video("random-bytes-avi", p["random_avi"])
    bad_video("random-bytes-mkv", p["random_mkv"])
    bad_video("truncated-mp4-half", p["cut_half"])
    bad_video("truncated-mp4-header-only", p["cut_header"])
    bad_video("zero-decodable-frames", p["zeroed"])
    bad_video("truncated-avi-40pct", p["avi_cut_40"])
    bad_video("one-frame", p["one_frame"])
    bad_video("two-seconds", p["two_s"])
    bad_video("just-under-minimum", p["short_5s"])
    bad_video("png-renamed-mp4", p["png_as_mp4"], must="still image")
    bad_video("jpeg-renamed-mp4", p["jpeg_as_mp4"], must="still image")
    bad_video("png-image", p["png"], must="still image")
    bad_video("audio-only-wav", p["audio"], must="no video stream")
    bad_video("grey-stored-as-colour", p["grey_as_colour"])
    bad_video("grey-pixel-format", p["grey_format"])
    bad_video("huge-dimensions-8k", p["huge"], check=quick(30))
    bad_video("no-face", p["noface"])
    bad_video("corrupt-heavy", p["corrupt_heavy"])  # too few intact frames with a face: named, exit 2
    bad_video("dangling-symlink", p["dangling"])
    bad_video("fifo", p["fifo"], must="not a regular file", check=quick(10))
    bad_video("unix-socket", p["socket"], must="not a regular file")
    bad_video("dev-null", Path("/dev/null"), must="/dev/null")
    bad_video("empty-path", Path(""), must="video")

    def good_run(name: str, path, *extra, hr=HR_BPM, out: Path | None = None, timeout_s: float = 120, **kw):
        out = out or slot(name)
        files = kw.pop("files", ("json", "csv", "report"))
        cs.append(Case(f"estimate/{name}", ["estimate", str(path), "--out", str(out), "--quiet", *extra],
                       expect_exit=0, timeout_s=timeout_s, check=result_ok(out, hr=hr, files=files, **kw)))

    good_run("good-clip", good, no_warn="timestamps")
    good_run("video-named-txt", p["mp4_as_txt"])
    good_run("path-with-spaces-unicode", p["spaces"])
    good_run("grey-as-colour-green", p["grey_as_colour"], "--method", "green", hr=None, warn="grey")
    good_run("truncated-avi-90pct", p["avi_cut_90"], warn="truncated")
    good_run("raw-h264-no-timestamps", p["raw_h264"], warn="timestamps", fps=30.0)
    good_run("raw-h264-with-fps", p["raw_h264"], "--fps", "30", fps=30.0, no_warn="guessed")
    for deg in (90, -90, 180):
        good_run(f"rotation-tag-{deg}", p[f"rot{deg}"], face_min=0.9)
    good_run("variable-frame-rate", p["vfr"])
    good_run("16-bit-video", p["deep16"], warn="16-bit")
    good_run("method-uppercase", good, "--method", "CHROM")
    # -- a folder of image frames: one recording, with --fps
    frames = decoded(p["good"])

    def frame_dir(name: str, n: int | None = None, edit=None) -> Path:
        import cv2

        d = root / "frames" / name
        d.mkdir(parents=True)
        for i, f in enumerate(frames[:n]):
            cv2.imwrite(str(d / f"img{i}.png"), f[..., ::-1])
        if edit is not None:
            edit(d)
        return d

    def garbage(name: str):
        return lambda d: (d / name).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)

    def odd_size(name: str):
        def edit(d):
            import cv2

            cv2.imwrite(str(d / name), np.zeros((SIZE[1] + 8, SIZE[0], 3), np.uint8))
        return edit

    ok_frames, fps30 = frame_dir("ok"), ("--fps", "30")
    good_run("frames-folder", ok_frames, *fps30, fps=30.0)
    good_run("frames-folder-one-corrupt", frame_dir("corrupt", edit=garbage("img100.png")), *fps30,
             warn="could not be read")
    bad_video("frames-folder-no-fps", ok_frames, must="--fps")
    bad_video("frames-folder-zero-fps", ok_frames, must="--fps", extra=("--fps", "0"), check=quick(8.0))
    bad_video("frames-folder-odd-size", frame_dir("odd", edit=odd_size("img50.png")), must="img50.png",
              extra=fps30)
    bad_video("frames-folder-first-unreadable", frame_dir("first", edit=garbage("img0.png")), must="img0.png",
              extra=fps30)
    bad_video("frames-folder-too-short", frame_dir("short", n=30), must="clip is", extra=fps30)
    # corrupt middle: either a clean error naming the file, or a result that says it was damaged
    out = slot("corrupt-middle")
    argv = ["estimate", str(p["corrupt_middle"]), "--out", str(out), "--quiet"]
    cs.append(Case("estimate/corrupt-middle", argv, expect_exit=0,
                   check=result_ok(out, hr=None, warn="damaged")))
    # overwrite earlier results: replaced whole, no temp file left
    out = slot("overwrite-previous")
    for name in ("good.json", "good_waveforms.csv", "good_report.png"):
        (out / name).write_text("old")
    good_run("overwrite-previous", good, out=out)

    # -- options, validated before the video is decoded
    def bad_opt(name: str, extra: list[str], must: str, video: str = good, limit_s: float = 8.0):
        out = slot(name)
        cs.append(Case(f"estimate/{name}", ["estimate", video, "--out", str(out), "--quiet", *extra],
                       expect_exit=2, must_name=must, check=all_of(unchanged(out), quick(limit_s))))

    for label, v in [("zero", "0"), ("negative", "-1"), ("nan", "nan"), ("inf", "inf"), ("1e9", "1e9"),
                     ("1001", "1001"), ("half", "0.5"), ("text", "abc"), ("empty", "")]:
        bad_opt(f"fps-{label}", [f"--fps={v}"], "fps")
    for label, v in [("zero", "0"), ("negative", "-1"), ("text", "abc"), ("huge", "100000")]:
        bad_opt(f"threads-{label}", [f"--threads={v}"], "threads")
    for label, v in [("unknown", "nope"), ("empty", ""), ("number", "3")]:
        bad_opt(f"method-{label}", [f"--method={v}"], "method", limit_s=30)  # imports torch for the registry
    bad_opt("weights-with-pos", ["--method", "pos", "--weights", str(wts["rgbt"])], "weights")
    bad_opt("out-and-json-same-stdout-quiet-missing-video", ["--json", "-"], "nope.mp4",
            video=str(root / "nope.mp4"))

    # -- outputs that cannot be written: refused before the run, nothing half-written
    def bad_out(name: str, args: list[str], must: str, watch: Path):
        cs.append(Case(f"estimate/{name}", ["estimate", good, "--quiet", *args], expect_exit=2,
                       must_name=must, check=all_of(unchanged(watch), quick(8.0))))

    d = slot("out-is-file")
    (d / "results").write_text("a file where the output folder should be")
    bad_out("out-is-file", ["--out", str(d / "results")], "results", d)
    d = slot("out-under-file")
    (d / "afile").write_text("x")
    bad_out("out-under-file", ["--out", str(d / "afile" / "sub")], "afile", d)
    bad_out("out-in-proc", ["--out", "/proc/mmrphys-battery-out"], "/proc/mmrphys-battery-out", slot("proc"))
    for label, taken in [("json", "good.json"), ("csv", "good_waveforms.csv"), ("png", "good_report.png")]:
        d = slot(f"out-{label}-taken-by-dir")
        (d / taken).mkdir()
        (d / taken / "keep.txt").write_text("keep")
        bad_out(f"out-{label}-name-taken-by-folder", ["--out", str(d)], taken, d)
    if not IS_ROOT:  # root writes through permission bits
        d = slot("out-read-only")
        (d / "ro").mkdir()
        os.chmod(d / "ro", stat.S_IRUSR | stat.S_IXUSR)
        bad_out("out-read-only", ["--out", str(d / "ro")], "ro", d)
    d = slot("json-to-dir")
    (d / "adir").mkdir()
    bad_out("json-to-directory", ["--json", str(d / "adir")], "adir", d)
    d = slot("json-under-file")
    (d / "afile").write_text("x")
    bad_out("json-under-file", ["--json", str(d / "afile" / "r.json")], "afile", d)
    proc_json = "/proc/mmrphys-battery.json"
    bad_out("json-in-proc", ["--json", proc_json], proc_json, slot("proc2"))
    bad_out("json-to-dev-full", ["--json", "/dev/full"], "/dev/full", slot("devfull"))
    bad_out("json-empty-name", ["--json="], "json", slot("json-empty"))
    d = slot("json-and-out-bad")
    (d / "afile").write_text("x")
    bad_out("json-good-out-bad", ["--json", str(d / "r.json"), "--out", str(d / "afile")], "afile", d)
    d = slot("json-overwrite")
    (d / "r.json").write_text("old")
    argv = ["estimate", good, "--quiet", "--json", str(d / "r.json")]
    cs.append(Case("estimate/json-overwrites-file", argv, expect_exit=0, check=result_ok(d / "r.json")))

    def stdout_json(run: CaseRun) -> str | None:
        try:
            data = json.loads(run.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return "stdout is not one JSON document"
        return None if abs(data["heart_rate_bpm"] - HR_BPM) <= HR_TOL_BPM else f"HR {data['heart_rate_bpm']}"

    cs.append(Case("estimate/json-to-stdout", ["estimate", good, "--json", "-"], expect_exit=0,
                   check=stdout_json))

    # -- weights
    def bad_weights(name: str, path: Path, must: str | None = None, method: str = "mmrphys"):
        out = slot(name)
        argv = ["estimate", good, "--method", method, "--weights", str(path), "--out", str(out), "--quiet"]
        cs.append(Case(f"estimate/weights-{name}", argv, expect_exit=2, must_name=must or Path(path).name,
                       check=all_of(unchanged(out), quick(30))))

    for key in ("random", "text", "empty", "truncated", "junk_dict", "tensor", "junk_state", "pickle_class",
                "zip", "rgbt", "wrong_shape", "nan", "onnx", "dir"):
        bad_weights(key.replace("_", "-"), wts[key])
    # another RGB architecture in our format runs: the architecture comes from the weights (untrained
    # here, so any rate; the result must simply be whole)
    out = slot("weights-physnet")
    cs.append(Case("estimate/weights-physnet", ["estimate", good, "--method", "mmrphys", "--weights",
                                                 str(wts["physnet"]), "--out", str(out), "--quiet"],
                   expect_exit=0, check=result_ok(out, hr=None)))
    bad_weights("missing", root / "weights" / "nope.pth")
    bad_weights("unknown-shipped-name", Path("no_such_shipped_weights"), must="no_such_shipped_weights")
    bad_weights("physnet-as-factorizephys", wts["physnet"], method="factorizephys")
    return cs
