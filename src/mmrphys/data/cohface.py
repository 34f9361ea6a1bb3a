"""COHFACE: ``<subject>/<0..3>/data.avi`` (20 fps) + ``data.hdf5`` with ``pulse`` and ``respiration``
(256 Hz) and ``time`` (s). Needs h5py. Labels are aligned by time by default.
"""

from __future__ import annotations

import numpy as np

from mmrphys.data._readers import video_fps, video_frames
from mmrphys.data.base import (
    Loader,
    Signal,
    import_optional,
    natural_key,
    no_recordings,
    require_dir,
    require_file,
)
from mmrphys.errors import InputError

LABEL_FS = 256.0


class COHFACE(Loader):
    name = "cohface"
    description = "COHFACE (data.avi + data.hdf5 with pulse and respiration)"
    fps = 20.0
    option_defaults = {}

    def recordings(self, root):
        root = require_dir(root)
        recs = []
        for video in sorted(root.glob("*/*/data.avi"), key=lambda p: natural_key(str(p))):
            subject, session = video.parent.parent.name, video.parent.name
            files = {"video": str(video), "labels": str(video.parent / "data.hdf5")}
            recs.append(
                self._listed(f"{subject}_{session}", subject, files, self._one, subject, session, files)
            )
        if not recs:
            raise no_recordings(self.name, root, "<subject>/<n>/data.avi + data.hdf5")
        return recs

    def _one(self, subject: str, session: str, files: dict):
        require_file(files["labels"], "COHFACE data.hdf5")
        return self._recording(
            f"{subject}_{session}",
            subject,
            label_names=("bvp", "rsp"),
            files=files,
            align="time",
            fps=video_fps(files["video"]),
        )

    def iter_frames(self, rec, modality):
        return video_frames(rec.files["video"])

    def read_labels(self, rec):
        h5py = import_optional("h5py", "h5py", "COHFACE (data.hdf5)")
        path = rec.files["labels"]
        try:
            with h5py.File(path, "r") as f:
                if "pulse" not in f:
                    raise InputError(f"{path}: no 'pulse' dataset (has {', '.join(sorted(f.keys()))})")
                pulse = np.asarray(f["pulse"], dtype=float).ravel()
                resp = np.asarray(f["respiration"], dtype=float).ravel() if "respiration" in f else None
                t = np.asarray(f["time"], dtype=float).ravel() if "time" in f else None
        except OSError as err:
            raise InputError(f"{path}: not an HDF5 file ({err})") from None
        if t is not None and t.size == pulse.size:
            t = t - t[0]
            out = {"bvp": Signal(pulse, t=t)}
            if resp is not None:
                out["rsp"] = Signal(resp, t=t)
        else:
            out = {"bvp": Signal(pulse, fs=LABEL_FS)}
            if resp is not None:
                out["rsp"] = Signal(resp, fs=LABEL_FS)
        return out
