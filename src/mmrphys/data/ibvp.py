"""iBVP: ``pii_x/pii_x_rgb/*.bmp``, ``pii_x/pii_x_t/*.raw`` (uint16 640×512) and ``pii_x/pii_x_bvp.csv``.

Thermal °C = raw·0.04 − 273.15. The BVP CSV columns are ``BVP, SQPhysMD, SQ1, SQ2, Perfusion_Value``
(BVP already at 30 Hz); BVP (col 0) and SQ2 (col 3) are index-resampled to the frame count, and with
``drop_low_quality`` (the toolbox's default) frames whose SQ2 ≤ ``sq_threshold`` are removed before
anything else sees them. ``modality`` is ``rgb``, ``thermal`` or ``rgbt``; with both, thermal frames
are cut to the RGB height (480 rows) as the toolbox does and both are truncated to the shorter count.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from mmrphys.data._readers import read_image_rgb, read_numeric_rows, sorted_files
from mmrphys.data.align import resample_to_frames
from mmrphys.data.base import Loader, Signal, natural_key, no_recordings, require_dir, require_file
from mmrphys.errors import ConfigError, InputError

THERMAL_SHAPE = (512, 640)  # rows, columns of the uint16 .raw frames
RGB_HEIGHT = 480


def raw_to_celsius(raw: np.ndarray) -> np.ndarray:
    """iBVP thermal counts → °C (float32)."""
    return (raw.astype(np.float32) * 0.04 - 273.15).astype(np.float32)


def read_thermal_raw(path, shape=THERMAL_SHAPE) -> np.ndarray:
    """One iBVP ``.raw`` thermal frame as float32 °C, shape ``shape``; errors name the file."""
    p = Path(path)
    expected = shape[0] * shape[1] * 2
    size = p.stat().st_size if p.is_file() else -1
    if size != expected:
        raise InputError(
            f"thermal frame {p}: {size if size >= 0 else 'missing'} bytes, expected {expected} "
            f"(uint16 {shape[1]}x{shape[0]})"
        )
    return raw_to_celsius(np.fromfile(p, dtype="<u2").reshape(shape))


@lru_cache(maxsize=8)
def _listing(folder: str, patterns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(p) for p in sorted_files(Path(folder), patterns))


class IBVP(Loader):
    name = "ibvp"
    description = "iBVP (bmp RGB + uint16 .raw thermal + BVP/SQ csv)"
    fps = 30.0
    option_defaults = {"modality": "rgb", "drop_low_quality": True, "sq_threshold": 0.3}

    def _modalities(self):
        m = self.options["modality"]
        table = {"rgb": ("rgb",), "thermal": ("thermal",), "t": ("thermal",), "rgbt": ("rgb", "thermal")}
        if m not in table:
            raise ConfigError(f"iBVP modality must be rgb, thermal or rgbt, got {m!r}")
        return table[m]

    def recordings(self, root):
        root = require_dir(root)
        mods = self._modalities()
        recs = []
        for d in sorted(root.glob("*_*"), key=lambda p: natural_key(p.name)):
            if not d.is_dir():
                continue
            files = {"labels": str(d / f"{d.name}_bvp.csv")}
            files |= {
                f"{m}_dir": str(d / f"{d.name}_{s}")
                for m, s in (("rgb", "rgb"), ("thermal", "t"))
                if m in mods
            }
            subject = d.name.replace("_", "")[:3]
            recs.append(self._listed(d.name, subject, files, self._one, d.name, subject, mods, files))
        if not recs:
            raise no_recordings(self.name, root, "pii_x/pii_x_rgb/*.bmp + pii_x/pii_x_bvp.csv")
        return recs

    def _files(self, rec, modality) -> tuple[str, ...]:
        folder = rec.files[f"{modality}_dir"]
        files = _listing(folder, ("*.bmp",) if modality == "rgb" else ("*.raw",))
        if not files:
            raise InputError(f"no {'bmp' if modality == 'rgb' else 'raw'} frames in {folder}")
        return files

    def _n_frames(self, rec) -> int:
        return min(len(self._files(rec, m)) for m in rec.modalities)

    def _keep_mask(self, rec, n: int) -> np.ndarray:
        if not self.options["drop_low_quality"]:
            return np.ones(n, bool)
        table = read_numeric_rows(rec.files["labels"], "iBVP BVP csv")
        if table.shape[1] < 4:
            raise InputError(f"{rec.files['labels']}: no SQ2 column (expected BVP, SQPhysMD, SQ1, SQ2, ...)")
        sq = resample_to_frames(table[:, 3], n)
        keep = sq > float(self.options["sq_threshold"])
        if not keep.any():
            raise InputError(f"{rec.files['labels']}: every frame has SQ2 <= {self.options['sq_threshold']}")
        return keep

    def frame_times(self, rec):
        n = self._n_frames(rec)
        return np.flatnonzero(self._keep_mask(rec, n)) / rec.fps

    def _one(self, rid: str, subject: str, mods, files: dict):
        require_file(files["labels"], "iBVP BVP csv")
        for mod in mods:
            if not Path(files[f"{mod}_dir"]).is_dir():
                raise InputError(f"missing iBVP {mod} folder {files[f'{mod}_dir']}")
        return self._recording(rid, subject, modalities=mods, files=files)

    def iter_frames(self, rec, modality):
        n = self._n_frames(rec)
        keep = self._keep_mask(rec, n)
        files = self._files(rec, modality)[:n]
        crop_rows = RGB_HEIGHT if len(rec.modalities) == 2 else None
        for i in np.flatnonzero(keep):
            if modality == "rgb":
                yield read_image_rgb(files[i]), i / rec.fps
            else:
                frame = read_thermal_raw(files[i])
                yield (frame[:crop_rows] if crop_rows else frame), i / rec.fps

    def read_labels(self, rec):
        table = read_numeric_rows(rec.files["labels"], "iBVP BVP csv")
        n = self._n_frames(rec)
        keep = self._keep_mask(rec, n)
        bvp = resample_to_frames(table[:, 0], n)[keep]
        return {"bvp": Signal(bvp)}  # already one value per kept frame
