"""BP4D+ in its two layouts (``layout="auto"`` picks by what is under the root).

**distributed**: ``2D+3D/Fxxx.zip`` (JPEG frames in ``.../Tk/*.jpg`` inside the zip, 25 fps) and
``Physiology/Fxxx/Tk/*.txt`` (one value a line, 1000 Hz): ``BP_mmHg.txt`` is the continuous blood
pressure wave the toolbox uses as the pulse label (``bvp``), ``Resp_Volts.txt`` the breathing wave
(``rsp``). Frames are read straight from the zip, one at a time. Thermal video is not read.

**cropped** (the MMRPhys code's layout): ``Fxxx_Tk/Fxxx_Tk_rgb/*.npy`` and ``Fxxx_Tk/Fxxx_Tk_t/*.npy``
per-frame face crops (already 72×72) and ``Fxxx_Tk/Fxxx_Tk_phys.csv`` with one row per frame and the
columns bvp, rsp, eda, ecg, hr, rr, sysBP, avgBP, diaBP, rawBP. Fold lists are read by
:func:`mmrphys.data.splits.bp4d_fold`.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from mmrphys.data._readers import npy_frame, read_numeric_rows, sorted_files, to_uint8
from mmrphys.data.base import Loader, Signal, natural_key, no_recordings, require_dir, require_file
from mmrphys.errors import ConfigError, InputError

PHYS_FS = 1000.0
PHYS_FILES = {"bvp": "BP_mmHg.txt", "rsp": "Resp_Volts.txt"}
CSV_COLUMNS = ("bvp", "rsp", "eda", "ecg", "hr", "rr", "sys_bp", "avg_bp", "dia_bp", "raw_bp")
_IMG = re.compile(r"\.(jpe?g|png|bmp)$", re.I)


def _zip_members(path: str, task: str) -> list[str]:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise InputError(f"{path}: not a readable zip ({err})") from None
    sel = [n for n in names if _IMG.search(n) and f"/{task}/" in f"/{n}"]
    return sorted(sel, key=natural_key)


class BP4D(Loader):
    name = "bp4d"
    description = "BP4D+ (distributed zip + Physiology txt, or pre-cropped npy + phys.csv)"
    fps = 25.0
    option_defaults = {"layout": "auto", "modality": "rgb"}

    def _layout(self, root: Path) -> str:
        layout = self.options["layout"]
        if layout not in ("auto", "distributed", "cropped"):
            raise ConfigError(f"BP4D+ layout must be auto, distributed or cropped, got {layout!r}")
        if layout == "auto":
            layout = "distributed" if (root / "Physiology").is_dir() else "cropped"
        return layout

    def recordings(self, root):
        root = require_dir(root)
        recs = self._distributed(root) if self._layout(root) == "distributed" else self._cropped(root)
        if not recs:
            raise no_recordings(
                self.name, root, "2D+3D/Fxxx.zip + Physiology/Fxxx/Tk/ or Fxxx_Tk/Fxxx_Tk_phys.csv"
            )
        return recs

    def _distributed(self, root: Path):
        if self.options["modality"] != "rgb":
            raise ConfigError(
                "the distributed BP4D+ layout is read for RGB only; thermal needs the cropped layout"
            )
        recs = []
        for subj in sorted((root / "Physiology").iterdir(), key=lambda p: natural_key(p.name)):
            if not subj.is_dir():
                continue
            zpath = root / "2D+3D" / f"{subj.name}.zip"
            for task in sorted((p for p in subj.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
                require_file(zpath, "BP4D+ frame archive")
                files = {"zip": str(zpath)}
                for key, fname in PHYS_FILES.items():
                    files[key] = str(require_file(task / fname, "BP4D+ physiology file"))
                recs.append(
                    self._recording(
                        f"{subj.name}_{task.name}",
                        subj.name,
                        label_names=("bvp", "rsp"),
                        files=files,
                        meta={"task": task.name, "layout": "distributed"},
                    )
                )
        return recs

    def _cropped(self, root: Path):
        mods = {"rgb": ("rgb",), "thermal": ("thermal",), "t": ("thermal",), "rgbt": ("rgb", "thermal")}
        if self.options["modality"] not in mods:
            raise ConfigError(
                f"BP4D+ modality must be rgb, thermal or rgbt, got {self.options['modality']!r}"
            )
        modalities = mods[self.options["modality"]]
        recs = []
        for d in sorted(root.glob("*_T*"), key=lambda p: natural_key(p.name)):
            if not d.is_dir() or not re.fullmatch(r"[A-Za-z]+\d+_T\d+", d.name):
                continue
            files = {"labels": str(require_file(d / f"{d.name}_phys.csv", "BP4D+ phys.csv"))}
            for mod, suffix in (("rgb", "rgb"), ("thermal", "t")):
                if mod in modalities:
                    folder = d / f"{d.name}_{suffix}"
                    if not folder.is_dir():
                        raise InputError(f"missing BP4D+ {mod} folder {folder}")
                    files[f"{mod}_dir"] = str(folder)
            recs.append(
                self._recording(
                    d.name,
                    d.name.split("_")[0],
                    modalities=modalities,
                    label_names=CSV_COLUMNS,
                    files=files,
                    pre_cropped=True,
                    meta={"task": d.name.split("_")[1], "layout": "cropped"},
                )
            )
        return recs

    def iter_frames(self, rec, modality):
        if "zip" in rec.files:
            return self._zip_frames(rec)
        return self._npy_frames(rec, modality)

    def _zip_frames(self, rec):
        import cv2

        members = _zip_members(rec.files["zip"], rec.meta["task"])
        if not members:
            raise InputError(f"{rec.files['zip']}: no frames for task {rec.meta['task']}")
        with zipfile.ZipFile(rec.files["zip"]) as z:
            for i, name in enumerate(members):
                buf = np.frombuffer(z.read(name), np.uint8)
                img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
                if img is None:
                    raise InputError(f"{rec.files['zip']}: cannot decode {name}")
                yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB), i / rec.fps

    def _npy_files(self, rec, modality):
        files = sorted_files(Path(rec.files[f"{modality}_dir"]), ("*.npy",))
        if not files:
            raise InputError(f"no .npy frames in {rec.files[f'{modality}_dir']}")
        return files

    def _npy_frames(self, rec, modality):
        n = min(len(self._npy_files(rec, m)) for m in rec.modalities)
        for i, p in enumerate(self._npy_files(rec, modality)[:n]):
            a = npy_frame(p)
            if modality == "rgb":
                yield to_uint8(a), i / rec.fps
            else:
                yield np.asarray(a, dtype=np.float32).reshape(a.shape[:2]), i / rec.fps

    def read_labels(self, rec):
        if "zip" in rec.files:
            return {
                k: Signal(read_numeric_rows(rec.files[k], "BP4D+ physiology file")[:, 0], fs=PHYS_FS)
                for k in PHYS_FILES
            }
        table = read_numeric_rows(rec.files["labels"], "BP4D+ phys.csv")
        if table.shape[1] < 2:
            raise InputError(
                f"{rec.files['labels']}: expected >= 2 columns (bvp, rsp, ...), got {table.shape[1]}"
            )
        return {name: Signal(table[:, i]) for i, name in enumerate(CSV_COLUMNS[: table.shape[1]])}
