"""MMPD: ``subjectN/pN_M.mat`` (MATLAB v5, read with scipy): ``video`` (T, H, W, 3) in [0, 1] and
``GT_ppg``, plus the metadata fields light, motion, exercise, skin_color, gender, glasser,
hair_cover and makeup (kept in ``Recording.meta``; filter with ``info={"light": [1, 2]}``).

The v5 format cannot be read partially, so one recording's video is held in memory while it is read
(float 320×240: about 1.3 GB per minute); the mini version (80×60) is small.
"""

from __future__ import annotations

import numpy as np

from mmrphys.data._readers import to_uint8
from mmrphys.data.base import Loader, Signal, natural_key, no_recordings, require_dir, require_file
from mmrphys.errors import InputError

META_FIELDS = ("light", "motion", "exercise", "skin_color", "gender", "glasser", "hair_cover", "makeup")


def _loadmat(path, names=None):
    import scipy.io

    p = require_file(path, "MMPD .mat file")
    try:
        return scipy.io.loadmat(str(p), variable_names=names)
    except (ValueError, NotImplementedError, OSError, TypeError) as err:
        raise InputError(f"{p}: not a readable MATLAB file ({type(err).__name__}: {err})") from None


def _scalar(v):
    a = np.asarray(v).ravel()
    if a.size == 0:
        return None
    x = a[0]
    return x.item() if hasattr(x, "item") else str(x)


class MMPD(Loader):
    name = "mmpd"
    description = "MMPD (subjectN/pN_M.mat with video, GT_ppg and metadata)"
    fps = 30.0
    option_defaults = {"info": None}

    def recordings(self, root):
        root = require_dir(root)
        info = self.options["info"] or {}
        recs = []
        for p in sorted(root.glob("subject*/*.mat"), key=lambda q: natural_key(str(q))):
            rec = self._listed(p.stem, p.parent.name, {"mat": str(p)}, self._one, p)
            if rec.error or not any(rec.meta.get(k) not in set(v) for k, v in info.items()):
                recs.append(rec)  # a broken file is listed (as failed) whatever the filter
        if not recs:
            raise no_recordings(self.name, root, "subjectN/pN_M.mat")
        return recs

    def _one(self, p):
        mat = _loadmat(p, list(META_FIELDS))
        meta = {k: _scalar(mat[k]) for k in META_FIELDS if k in mat}
        return self._recording(p.stem, p.parent.name, files={"mat": str(p)}, meta=meta)

    def iter_frames(self, rec, modality):
        mat = _loadmat(rec.files["mat"], ["video"])
        if "video" not in mat:
            raise InputError(f"{rec.files['mat']}: no 'video' variable")
        video = mat.pop("video")
        if video.ndim != 4:
            raise InputError(f"{rec.files['mat']}: 'video' has shape {video.shape}, expected (T, H, W, 3)")
        for k in range(video.shape[0]):
            yield to_uint8(video[k]), k / rec.fps

    def read_labels(self, rec):
        mat = _loadmat(rec.files["mat"], ["GT_ppg"])
        if "GT_ppg" not in mat:
            raise InputError(f"{rec.files['mat']}: no 'GT_ppg' variable")
        return {"bvp": Signal(np.asarray(mat["GT_ppg"], dtype=float).T.ravel())}
