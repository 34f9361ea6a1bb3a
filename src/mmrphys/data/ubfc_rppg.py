"""UBFC-rPPG: DATASET_2 (``subjectN/vid.avi|vid.mp4`` + ``ground_truth.txt``) and DATASET_1
(``<folder>/vid.avi`` + ``gtdump.xmp``).

``ground_truth.txt`` has three whitespace-separated rows: contact PPG, oximeter HR (bpm), time (s),
one value per frame. ``gtdump.xmp`` is a CSV with rows ``time_ms, HR, SpO2, PPG`` at ~62 Hz.
Default alignment is by index (DATASET_2 samples are the frames; the toolbox's rule); ``time`` uses
row 3 / the xmp times against the video's timestamps.
"""

from __future__ import annotations

import numpy as np

from mmrphys.data._readers import read_numeric_rows, video_fps, video_frames
from mmrphys.data.base import Loader, Recording, Signal, natural_key, no_recordings, require_dir
from mmrphys.errors import InputError

VIDEO_NAMES = ("vid.avi", "vid.mp4")


class UBFCrPPG(Loader):
    name = "ubfc-rppg"
    description = "UBFC-rPPG DATASET_2 (ground_truth.txt) and DATASET_1 (gtdump.xmp)"
    fps = 30.0
    option_defaults = {"fps": None}  # None: the video's own rate

    def recordings(self, root) -> list[Recording]:
        root = require_dir(root)
        recs = []
        for d in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
            video = next((d / v for v in VIDEO_NAMES if (d / v).is_file()), None)
            gt2, gt1 = d / "ground_truth.txt", d / "gtdump.xmp"
            gt = gt2 if gt2.is_file() else gt1 if gt1.is_file() else None
            if video is None and gt is None:
                continue  # not a recording folder (README, etc.)
            files = {k: str(v) for k, v in (("video", video), ("labels", gt)) if v is not None}
            recs.append(self._listed(d.name, d.name, files, self._one, d, video, gt))
        if not recs:
            raise no_recordings(self.name, root, "subjectN/vid.avi|vid.mp4 + ground_truth.txt")
        return recs

    def _one(self, d, video, gt) -> Recording:
        if video is None:
            raise InputError(f"missing video in {d}: expected one of {', '.join(VIDEO_NAMES)}")
        if gt is None:
            raise InputError(f"missing labels in {d}: expected ground_truth.txt or gtdump.xmp")
        return self._recording(
            d.name,
            d.name,
            files={"video": str(video), "labels": str(gt)},
            meta={"variant": "DATASET_2" if gt.name == "ground_truth.txt" else "DATASET_1"},
            fps=video_fps(video, self.options["fps"]),
        )

    def iter_frames(self, rec, modality):
        return video_frames(rec.files["video"], fps=self.options["fps"])

    def read_labels(self, rec):
        path = rec.files["labels"]
        if path.endswith(".xmp"):
            rows = read_numeric_rows(path, "UBFC-rPPG gtdump.xmp")
            if rows.shape[1] < 4:
                raise InputError(f"{path}: expected 4 columns (time_ms, HR, SpO2, PPG), got {rows.shape[1]}")
            t = rows[:, 0] / 1000.0
            return {"bvp": Signal(rows[:, 3], t=t - t[0])}
        rows = read_numeric_rows(path, "UBFC-rPPG ground_truth.txt")
        if rows.shape[0] > 3 and rows.shape[1] <= 3:  # one sample per line (column layout)
            rows = rows.T
        ppg = rows[0][np.isfinite(rows[0])]
        t = None
        if rows.shape[0] >= 3:
            times = rows[2][np.isfinite(rows[2])]
            if times.size == ppg.size and np.all(np.diff(times) > 0):
                t = times - times[0]
        return {"bvp": Signal(ppg, t=t)}
