"""Synthetic face video with known pulse and breathing (for the demo, tests and training data)."""

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
