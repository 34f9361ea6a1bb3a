"""Synthetic face video with known pulse and breathing (for the demo, tests and training data).

Two generators: procedural cartoon faces (:mod:`mmrphys.synth.clip`, :mod:`mmrphys.synth.dataset`) and
re-animated real face stills rendered on the fly for training (:mod:`mmrphys.synth.reanimate`:
``StillBank``, ``ReanimatedDataset``, ``RenderParams``; imported on first use, they need torch).
"""

from mmrphys.synth.clip import (
    PBV,
    Effects,
    FaceLook,
    detector_box,
    draw_face,
    face_boxes,
    make_clip,
    physiology,
    random_look,
    render_frames,
    write_video,
)

__all__ = ["PBV", "Effects", "FaceLook", "detector_box", "draw_face", "face_boxes", "make_clip", "physiology",
           "random_look", "render_frames", "write_video", "StillBank", "ReanimatedDataset", "RenderParams"]

_LAZY = {"StillBank": "mmrphys.synth.stills", "ReanimatedDataset": "mmrphys.synth.reanimate",
         "RenderParams": "mmrphys.synth.reanimate"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmrphys.synth' has no attribute {name!r}")
