"""Builders of tiny datasets in each dataset's exact on-disk layout (used by the tests in this folder).

Frames encode their index (``frame_value(i)``) so a test can check order and count after reading back.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cv2
import numpy as np

H, W = 48, 64


def frame_value(i: int) -> int:
    return (20 + 9 * i) % 256


def make_frame(i: int, h: int = H, w: int = W) -> np.ndarray:
    """RGB uint8 frame whose red channel holds ``frame_value(i)`` (green/blue fixed)."""
    f = np.empty((h, w, 3), np.uint8)
    f[..., 0], f[..., 1], f[..., 2] = frame_value(i), 100, 200
    return f


def write_video(path, n: int, fps: float = 30.0, h: int = H, w: int = W) -> Path:
    """Lossless FFV1 .avi (or H.264 .mp4) of ``n`` frames of :func:`make_frame`."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        if path.suffix == ".mp4":
            s = c.add_stream("libx264", rate=int(round(fps)))
            s.pix_fmt, s.options = "yuv420p", {"crf": "0"}
        else:
            s = c.add_stream("ffv1", rate=int(round(fps)))
            s.pix_fmt = "bgr0"
        s.width, s.height = w, h
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(make_frame(i, h, w), format="rgb24")
            for pkt in s.encode(vf):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def sine(n: int, fs: float, f_hz: float = 1.2, phase: float = 0.0) -> np.ndarray:
    return np.sin(2 * np.pi * f_hz * np.arange(n) / fs + phase)


def ubfc2(root, subjects=(1, 2), n=24, ext=".avi") -> Path:
    for s in subjects:
        d = Path(root) / f"subject{s}"
        write_video(d / f"vid{ext}", n)
        ppg = sine(n, 30.0) + s
        hr = np.full(n, 70.0)
        t = np.arange(n) / 30.0 + 0.001 * s
        np.savetxt(d / "ground_truth.txt", np.stack([ppg, hr, t]), fmt="%.6e")
    return Path(root)


def ubfc1(root, n=24) -> Path:
    d = Path(root) / "10-gt"
    write_video(d / "vid.avi", n)
    fs = 62.0
    m = int(n / 30 * fs)
    t_ms = np.arange(m) / fs * 1000
    rows = np.stack([t_ms, np.full(m, 70), np.full(m, 98), sine(m, fs)], axis=1)
    np.savetxt(d / "gtdump.xmp", rows, delimiter=",", fmt="%.4f")
    return Path(root)


def pure(root, recs=("01-01", "02-01"), n=12) -> Path:
    for rid in recs:
        d = Path(root) / rid
        (d / rid).mkdir(parents=True)
        ts0 = 1_392_643_993_642_000_000
        img_ts = ts0 + (np.arange(n) * 1e9 / 30).astype(np.int64)
        for i, ts in enumerate(img_ts):
            cv2.imwrite(str(d / rid / f"Image{ts}.png"), cv2.cvtColor(make_frame(i), cv2.COLOR_RGB2BGR))
        m = int(n / 30 * 60) + 4
        pk_ts = ts0 - 20_000_000 + (np.arange(m) * 1e9 / 60).astype(np.int64)
        wave = (np.arange(m) * 3) % 100  # a ramp: value at time t is known
        js = {
            "/FullPackage": [
                {
                    "Timestamp": int(t),
                    "Value": {"waveform": int(v), "pulseRate": 70, "o2saturation": 98, "signalStrength": 4},
                }
                for t, v in zip(pk_ts, wave)
            ],
            "/Image": [{"Timestamp": int(t)} for t in img_ts],
        }
        (d / f"{rid}.json").write_text(json.dumps(js))
    return Path(root)


def ibvp(root, recs=("p01_a", "p02_a"), n=10, sq_low=(3, 4)) -> Path:
    for rid in recs:
        d = Path(root) / rid
        (d / f"{rid}_rgb").mkdir(parents=True)
        (d / f"{rid}_t").mkdir()
        for i in range(n):
            cv2.imwrite(
                str(d / f"{rid}_rgb" / f"{i:05d}.bmp"),
                cv2.cvtColor(make_frame(i, 480, 64), cv2.COLOR_RGB2BGR),
            )
            celsius = 30.0 + 0.1 * i
            raw = np.full((512, 640), round((celsius + 273.15) / 0.04), np.uint16)
            raw.tofile(d / f"{rid}_t" / f"{i:05d}.raw")
        sq = np.ones(n)
        sq[list(sq_low)] = 0.1
        rows = np.stack([np.arange(n, dtype=float), np.ones(n), np.ones(n), sq, np.ones(n)], axis=1)
        with open(d / f"{rid}_bvp.csv", "w") as fh:
            fh.write("BVP,SQPhysMD,SQ1,SQ2,Perfusion_Value\n")
            np.savetxt(fh, rows, delimiter=",", fmt="%.4f")
    return Path(root)


def scamps(root, names=("P000001", "P000002"), n=8, split="Train", size=32) -> Path:
    import h5py

    d = Path(root) / split
    d.mkdir(parents=True)
    for k, name in enumerate(names):
        p = d / f"{name}.mat"
        frames = np.stack([make_frame(i, size, size) for i in range(n)]).astype(np.float64) / 255.0
        with h5py.File(p, "w", userblock_size=512) as f:
            # MATLAB writes column-major: H x W x 3 x T is stored as T x 3 x W x H
            f["Xsub"] = frames.transpose(0, 3, 2, 1)
            f["d_ppg"] = (sine(n, 30.0) + k)[None, :]
            f["d_br"] = sine(n, 30.0, 0.25)[None, :]
        with open(p, "r+b") as fh:  # the MATLAB v7.3 text header in the user block
            fh.write(
                b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 "
                b"HDF5 schema 1.00 ."
            )
    return Path(root)


def bp4d_distributed(root, subjects=("F001", "M002"), tasks=("T1", "T8"), n=10) -> Path:
    root = Path(root)
    (root / "2D+3D").mkdir(parents=True)
    for s in subjects:
        with zipfile.ZipFile(root / "2D+3D" / f"{s}.zip", "w") as z:
            for t in tasks:
                for i in range(n):
                    ok, buf = cv2.imencode(
                        ".jpg",
                        cv2.cvtColor(make_frame(i), cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 100],
                    )
                    z.writestr(f"{s}/{t}/{i:04d}.jpg", buf.tobytes())
            for t in tasks:
                td = root / "Physiology" / s / t
                td.mkdir(parents=True)
                m = n * 40  # 1000 Hz over n frames at 25 fps
                np.savetxt(td / "BP_mmHg.txt", 90 + 20 * sine(m, 1000.0), fmt="%.4f")
                np.savetxt(td / "Resp_Volts.txt", sine(m, 1000.0, 0.3), fmt="%.4f")
                np.savetxt(td / "Pulse Rate_BPM.txt", np.full(m, 70.0), fmt="%.1f")
    return root


def bp4d_cropped(root, recs=("F001_T1", "F002_T1", "M003_T2"), n=8, size=72) -> Path:
    for rid in recs:
        d = Path(root) / rid
        (d / f"{rid}_rgb").mkdir(parents=True)
        (d / f"{rid}_t").mkdir()
        for i in range(n):
            np.save(d / f"{rid}_rgb" / f"{i:05d}.npy", make_frame(i, size, size))
            np.save(d / f"{rid}_t" / f"{i:05d}.npy", np.full((size, size), 30 + 0.1 * i, np.float32))
        table = np.stack([sine(n, 25.0), sine(n, 25.0, 0.3)] + [np.full(n, float(c)) for c in range(8)], 1)
        np.savetxt(d / f"{rid}_phys.csv", table, delimiter=",", fmt="%.5f")
    return Path(root)


def cohface(root, subjects=("1", "2"), sessions=("0",), n=20) -> Path:
    import h5py

    for s in subjects:
        for k in sessions:
            d = Path(root) / s / k
            write_video(d / "data.avi", n, fps=20.0)
            m = int(n / 20 * 256)
            t = np.arange(m) / 256.0
            with h5py.File(d / "data.hdf5", "w") as f:
                f["pulse"] = t * 10  # a ramp: label at a frame's time is 10 * t
                f["respiration"] = sine(m, 256.0, 0.3)
                f["time"] = t
    return Path(root)


def mmpd(root, subjects=(1, 2), n=6) -> Path:
    import scipy.io

    for s in subjects:
        d = Path(root) / f"subject{s}"
        d.mkdir(parents=True)
        video = np.stack([make_frame(i, 24, 32) for i in range(n)]).astype(np.float64) / 255.0
        scipy.io.savemat(
            d / f"p{s}_0.mat",
            {
                "video": video,
                "GT_ppg": sine(n, 30.0)[None, :],
                "light": f"LED-{s}",
                "motion": "Stationary",
                "exercise": "False",
                "skin_color": np.array([[3]]),
                "gender": "male",
                "glasser": "False",
                "hair_cover": "False",
                "makeup": "False",
            },
        )
    return Path(root)


def ubfc_phys(root, subjects=(1, 2), tasks=("T1", "T2"), n=14) -> Path:
    for s in subjects:
        for t in tasks:
            d = Path(root) / f"s{s}"
            write_video(d / f"vid_s{s}_{t}.avi", n, fps=35.0)
            m = int(n / 35 * 64)
            np.savetxt(d / f"bvp_s{s}_{t}.csv", sine(m, 64.0), fmt="%.6f")
    return Path(root)


def generic(root, n=40, fps=30.0, thermal=False, names=(("alice", "rest"), ("bob", "walk"))) -> Path:
    for subject, rec in names:
        d = Path(root) / subject
        write_video(d / f"{rec}.avi", n, fps=fps)
        t = np.arange(0, n / fps + 0.01, 1 / 64.0)
        with open(d / f"{rec}.csv", "w") as fh:
            fh.write("time_s,bvp,rsp\n")
            for ti in t:
                fh.write(f"{ti:.6f},{np.sin(2 * np.pi * 1.2 * ti):.6f},{np.sin(2 * np.pi * 0.25 * ti):.6f}\n")
        if thermal:
            np.save(d / f"{rec}.thermal.npy", np.full((n, H, W), 33.0, np.float16))
    return Path(root)
