"""Synthetic face video with known pulse and breathing (for the demo, tests and training data).

Procedural cartoon faces (:mod:`mmrphys.synth.clip`, :mod:`mmrphys.synth.dataset`) and the shared
physiology, optics and camera models. The other generator, real face stills re-animated on the fly
for training, needs the face tracker, the decoder and torch, so it lives in the training package
(:mod:`mmrphys.training.reanimate`: ``StillBank``, ``ReanimatedDataset``, ``RenderParams``).
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
           "random_look", "render_frames", "write_video"]

