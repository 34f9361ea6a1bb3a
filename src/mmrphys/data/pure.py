"""PURE: ``ii-jj/ii-jj/Image<ts>.png`` frames + ``ii-jj/ii-jj.json``.

The JSON holds ``/FullPackage[k] = {Timestamp (ns), Value: {waveform, pulseRate, o2saturation}}``
(60 Hz pulse oximeter) and ``/Image[k] = {Timestamp (ns)}`` per frame; both use the same clock, so
labels are aligned by time by default (``align="index"`` gives the toolbox's resampling).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmrphys.data._readers import image_frames, sorted_files
from mmrphys.data.base import Loader, Signal, natural_key, no_recordings, require_dir, require_file
from mmrphys.errors import InputError


def _read_json(path) -> dict:
    p = require_file(path, "PURE JSON")
    try:
        with open(p, encoding="utf-8") as fh:
            data = json.load(fh)
        _ = data["/FullPackage"], data["/Image"]
        return data
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"{p}: not a PURE JSON file ({type(err).__name__}: {err})") from None


class PURE(Loader):
    name = "pure"
    description = "PURE (png frames + JSON with timestamps)"
    fps = 30.0
    option_defaults = {}

    def recordings(self, root):
        root = require_dir(root)
        recs = []
        for d in sorted(root.glob("*-*"), key=lambda p: natural_key(p.name)):
            if not d.is_dir():
                continue
            files = {"frames": str(d / d.name), "labels": str(d / f"{d.name}.json")}
            recs.append(self._listed(d.name, d.name.split("-")[0], files, self._one, d.name, files))
        if not recs:
            raise no_recordings(self.name, root, "ii-jj/ii-jj/*.png + ii-jj/ii-jj.json")
        return recs

    def _one(self, rid: str, files: dict):
        if not Path(files["frames"]).is_dir():
            raise InputError(f"missing PURE frame folder {files['frames']}")
        require_file(files["labels"], "PURE JSON")
        return self._recording(rid, rid.split("-")[0], align="time", files=files)

    def _frame_files(self, rec):
        files = sorted_files(Path(rec.files["frames"]), ("*.png",))
        if not files:
            raise InputError(f"no png frames in {rec.files['frames']}")
        return files

    def frame_times(self, rec):
        data = _read_json(rec.files["labels"])
        ts = np.array([e["Timestamp"] for e in data["/Image"]], dtype=float)
        n = len(self._frame_files(rec))
        if ts.size != n:
            raise InputError(f"{rec.files['labels']}: {ts.size} /Image timestamps for {n} png frames")
        return (ts - ts[0]) / 1e9

    def iter_frames(self, rec, modality):
        return image_frames(self._frame_files(rec), self.frame_times(rec))

    def read_labels(self, rec):
        data = _read_json(rec.files["labels"])
        t0 = float(data["/Image"][0]["Timestamp"]) if data["/Image"] else 0.0
        try:
            pkg = data["/FullPackage"]
            wave = np.array([e["Value"]["waveform"] for e in pkg], dtype=float)
            t = (np.array([e["Timestamp"] for e in pkg], dtype=float) - t0) / 1e9
        except (KeyError, TypeError) as err:
            raise InputError(f"{rec.files['labels']}: /FullPackage entry lacks {err}") from None
        return {"bvp": Signal(wave, t=t)}
