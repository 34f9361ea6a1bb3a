"""UBFC-Phys: ``sN/vid_sN_T{1,2,3}.avi`` + ``sN/bvp_sN_T{k}.csv`` (BVP at 64 Hz, one value a line).

Video is 35 fps. Labels are index-resampled by default (toolbox); ``time`` assumes both start together.
``tasks`` selects T1/T2/T3 and ``exclude`` drops recordings by id (e.g. the toolbox's exclusion list).
"""

from __future__ import annotations

import re
from pathlib import Path

from mmrphys.data._readers import read_numeric_rows, video_fps, video_frames
from mmrphys.data.base import Loader, Signal, natural_key, no_recordings, require_dir, require_file

BVP_FS = 64.0


class UBFCPhys(Loader):
    name = "ubfc-phys"
    description = "UBFC-Phys (vid_sN_Tk.avi + bvp_sN_Tk.csv, 35 fps, BVP 64 Hz)"
    fps = 35.0
    option_defaults = {"tasks": ("T1", "T2", "T3"), "exclude": ()}

    def recordings(self, root):
        root = require_dir(root)
        recs = []
        for video in sorted(root.glob("s*/vid_s*_T*.avi"), key=lambda p: natural_key(str(p))):
            m = re.fullmatch(r"vid_(s\d+)_(T\d+)", video.stem)
            if not m:
                continue
            subject, task = m.groups()
            rid = f"{subject}_{task}"
            if task not in tuple(self.options["tasks"]) or rid in set(self.options["exclude"]):
                continue
            files = {"video": str(video), "labels": str(video.parent / f"bvp_{subject}_{task}.csv")}
            recs.append(self._listed(rid, subject, files, self._one, rid, subject, task, files))
        if not recs:
            raise no_recordings(self.name, root, "sN/vid_sN_Tk.avi + sN/bvp_sN_Tk.csv")
        return recs

    def _one(self, rid: str, subject: str, task: str, files: dict):
        require_file(files["labels"], "UBFC-Phys BVP file")
        return self._recording(rid, subject, files=files, meta={"task": task}, fps=video_fps(files["video"]))

    def iter_frames(self, rec, modality):
        return video_frames(Path(rec.files["video"]))

    def read_labels(self, rec):
        rows = read_numeric_rows(rec.files["labels"], "UBFC-Phys BVP file")
        return {"bvp": Signal(rows[:, 0], fs=BVP_FS)}
