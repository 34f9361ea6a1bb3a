"""The shipped default weights: registered, carded, and they find the pulse of a synthetic face."""

from __future__ import annotations

import numpy as np

from mmrphys.faces import crop_resize, square_box
from mmrphys.models import weights
from mmrphys.models.checkpoints import load_model, model_card
from mmrphys.signals.rates import heart_rate
from mmrphys.synth.clip import Effects, draw_face, physiology, random_look, render_frames
from mmrphys.training.evaluate import predict_video


def test_default_weights_are_registered_with_a_card():
    assert weights.default_name() == "mmrphys_sef_ubfc8_reanim"
    card = model_card("default")
    assert card["model"] == "mmrphys_sef" and "research use only" in card["license"]
    # trained on every shared subject: its accuracy is the leave-subjects-out table of the card
    assert card["held_out"] == [] and card["config"]["data"]["train"][0]["subjects"] is None
    assert card["metrics"]["loso_estimate_hr_mae_bpm"][0] <= 1.5
    assert all(ds["path"] is None for ds in card["config"]["data"]["train"])  # no machine paths shipped
    assert weights.get_weights().path.stat().st_size < 500_000


def _face_crops(hr_bpm: float, rr_bpm: float, duration_s: float, seed: int, size: int):
    """A rendered synthetic face cropped at its known box (square x1.5), as the training crop does."""
    phys = physiology(hr_bpm, rr_bpm, duration_s, 30.0, seed=seed)
    scene = draw_face(144, 144, random_look(seed), seed=seed)
    box = square_box(scene["box"], 1.5, (144, 144))
    fx = Effects(pulse_amplitude=0.012, noise=1.5)
    frames = np.stack([crop_resize(rgb, box, size) for rgb, _ in render_frames(scene, phys, fx, seed=seed)])
    return frames, phys["bvp"]


def test_default_weights_find_a_synthetic_pulse():
    net = load_model("default")
    frames, bvp = _face_crops(84.0, 15.0, 12.5, seed=5, size=net.input_size)
    pred = predict_video(net, frames, chunk=180)
    assert set(pred) == {"bvp", "rsp"} and pred["bvp"].shape == (360,)
    hr_true = heart_rate(bvp[:360], 30.0)
    assert abs(heart_rate(pred["bvp"], 30.0) - hr_true) < 5.0
