"""Re-animated clips on disk, for people to look at (training renders on the fly instead).

:func:`write_set` writes ``n`` clips in the ``generic`` dataset layout (``load_dataset("generic", OUT)``
and ``mmrphys preprocess --dataset generic`` read it back)::

    OUT/dataset.json              settings, still bank digest and every clip's truth summary
    OUT/<subject>/r000.avi        the camera's view of the face region after H.264 (stored losslessly, FFV1)
    OUT/<subject>/r000.csv        t_s, bvp, rsp, hr_bpm, rr_bpm per frame
    OUT/<subject>/r000.boxes.csv  the detector's (jittered) face box per frame
    OUT/<subject>/r000.json       every drawn parameter
    OUT/preview/contact_sheet.png crops at the training size over time, and the camera view
    OUT/preview/r000_crop.m4v     the training crops enlarged x4 (first ``previews`` clips; H.264 in MP4)

Subjects are the stills' subjects, so subject-wise splits keep holding.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from mmrphys.errors import ConfigError
from mmrphys.synth.clip import write_video
from mmrphys.synth.dataset import write_boxes_csv
from mmrphys.training.reanimate import Clip, RenderParams, render_clip
from mmrphys.training.stills import StillBank


def contact_sheet(clips: list[Clip], path, columns: int = 8, zoom: int = 2) -> Path:
    """One row per clip: ``columns`` crops spread over time (enlarged ``zoom`` x) and, when the clip
    kept it, its camera view at mid-clip scaled to the row height. Written as PNG."""
    rows = []
    for c in clips:
        n, s = len(c.frames), c.frames.shape[1]
        idx = np.linspace(0, n - 1, columns).round().astype(int)
        crops = [cv2.resize(c.frames[k], (s * zoom, s * zoom), interpolation=cv2.INTER_NEAREST) for k in idx]
        row = np.hstack(crops)
        if c.canvas is not None:
            view = c.canvas[n // 2]
            h = s * zoom
            row = np.hstack(
                [
                    row,
                    cv2.resize(
                        view,
                        (max(1, round(view.shape[1] * h / view.shape[0])), h),
                        interpolation=cv2.INTER_AREA,
                    ),
                ]
            )
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0))) for r in rows])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path


def write_set(
    out,
    bank: StillBank,
    n: int = 8,
    duration_s: float = 10.0,
    fps: float = 30.0,
    size: int = 72,
    seed: int = 0,
    params: RenderParams | None = None,
    previews: int = 4,
    progress=None,
) -> dict:
    """Render ``n`` clips of ``duration_s`` to ``out`` (layout above); returns the index."""
    if n < 1 or duration_s <= 0 or fps <= 0:
        raise ConfigError(f"need n >= 1, duration_s > 0 and fps > 0 (got {n}, {duration_s}, {fps})")
    n_frames = int(round(duration_s * fps))
    if n_frames < 2:
        raise ConfigError(f"--duration {duration_s} s at {fps} fps is fewer than 2 frames")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params = (params or RenderParams()).validate()
    index = {
        "generator": "mmrphys.training.reanimate",
        "n": n,
        "duration_s": duration_s,
        "fps": fps,
        "size": size,
        "seed": seed,
        "bank": bank.digest(),
        "bank_subjects": bank.subjects,
        "face_boxes": True,
        "recordings": {},
    }
    sheet = []
    for i in range(n):
        clip = render_clip(
            bank, np.random.default_rng([seed, i]), n_frames, size, fps, params, keep_canvas=True
        )
        t = clip.truth
        subject = t["subject"]
        name = f"r{i:03d}"
        path = out / subject / f"{name}.avi"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, clip.canvas, fps)
        ph = clip.physio
        with open(path.with_suffix(".csv"), "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["t_s", "bvp", "rsp", "hr_bpm", "rr_bpm"])
            for row in zip(ph.t, clip.bvp, clip.rsp, ph.hr_inst, ph.rr_inst):
                w.writerow([f"{row[0]:.5f}"] + [f"{v:.5f}" for v in row[1:]])
        write_boxes_csv(path.with_name(f"{name}.boxes.csv"), clip.detections)
        path.with_suffix(".json").write_text(json.dumps(t, indent=1, default=float))
        index["recordings"][f"{subject}_{name}"] = {
            "subject": subject,
            "hr_bpm": round(t["hr_bpm"], 3),
            "rr_bpm": round(t["rr_bpm"], 3),
            "n_frames": n_frames,
            "crf": t["crf"],
        }
        if i < previews:  # .m4v (H.264 in MP4): players open it, the generic loader does not list it
            crop_video = np.repeat(np.repeat(clip.frames, 4, axis=1), 4, axis=2)
            tmp = out / "preview" / f"{name}_crop.mp4"
            write_video(tmp, crop_video, fps, crf=12)
            tmp.replace(tmp.with_suffix(".m4v"))
        if len(sheet) < 24:
            sheet.append(clip)
        if progress:
            progress(
                f"{i + 1}/{n} {subject}/{name}: HR {t['hr_bpm']:.1f} RR {t['rr_bpm']:.1f} "
                f"({t['motion_class']} motion, CRF {t['crf']})"
            )
    contact_sheet(sheet, out / "preview" / "contact_sheet.png")
    (out / "dataset.json").write_text(json.dumps(index, indent=1))
    return index
