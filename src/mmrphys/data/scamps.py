"""SCAMPS: ``P00000N.mat`` files (flat, or in ``Train/``, ``Val/``, ``Test/``), MATLAB v7.3 = HDF5.

Read with h5py (optional: ``pip install h5py``), one frame at a time. ``Xsub`` is the 240×240 face
video in [0, 1] (MATLAB H×W×3×T, stored in HDF5 as T×3×W×H), ``d_ppg`` the BVP and ``d_br`` the
breathing wave, both one sample per frame (30 fps, 600 frames). ``frames_key="RawFrames"`` reads the
uncropped 320×240 video instead.
"""

from __future__ import annotations

import numpy as np

from mmrphys.data._readers import to_uint8
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


def _open(path):
    h5py = import_optional("h5py", "h5py", "SCAMPS (.mat v7.3)")
    p = require_file(path, "SCAMPS .mat file")
    try:
        return h5py.File(p, "r")
    except OSError as err:
        raise InputError(f"{p}: not a MATLAB v7.3 (HDF5) file ({err})") from None


def _dataset(f, key, path):
    if key not in f:
        raise InputError(f"{path}: no '{key}' variable (has {', '.join(sorted(f.keys())[:12])})")
    return f[key]


class SCAMPS(Loader):
    name = "scamps"
    description = "SCAMPS synthetic videos (.mat v7.3: Xsub, d_ppg, d_br)"
    fps = 30.0
    option_defaults = {"frames_key": "Xsub"}

    def recordings(self, root):
        root = require_dir(root)
        files = sorted(root.rglob("*.mat"), key=lambda p: natural_key(p.name))
        recs = []
        for p in files:
            rel = p.relative_to(root).parts
            meta = {"split": rel[0]} if len(rel) > 1 else {}
            recs.append(
                self._recording(p.stem, p.stem, label_names=("bvp", "rsp"), files={"mat": str(p)}, meta=meta)
            )
        if not recs:
            raise no_recordings(self.name, root, "P00000N.mat (flat or in Train/Val/Test)")
        return recs

    def iter_frames(self, rec, modality):
        path = rec.files["mat"]
        with _open(path) as f:
            ds = _dataset(f, self.options["frames_key"], path)
            if ds.ndim != 4:
                raise InputError(f"{path}: '{self.options['frames_key']}' has shape {ds.shape}, expected 4-D")
            for k in range(ds.shape[0]):
                frame = np.asarray(ds[k])  # (C, W, H): MATLAB column-major order
                yield to_uint8(np.ascontiguousarray(frame.transpose(2, 1, 0))), k / rec.fps

    def read_labels(self, rec):
        path = rec.files["mat"]
        with _open(path) as f:
            out = {"bvp": Signal(np.asarray(_dataset(f, "d_ppg", path), dtype=float).ravel())}
            if "d_br" in f:
                out["rsp"] = Signal(np.asarray(f["d_br"], dtype=float).ravel())
        return out
