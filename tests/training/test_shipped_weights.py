"""The shipped default weights: registered, carded, and they find the pulse of a synthetic face."""

from __future__ import annotations

from mmrphys.models import weights
from mmrphys.models.checkpoints import load_model
from mmrphys.signals.rates import heart_rate
from mmrphys.training.data import synth_clips
from mmrphys.training.evaluate import predict_video


def test_default_weights_are_registered_with_a_card():
    assert weights.default_name() == "mmrphys_lef_ubfc4_synth"
    card = weights.model_card("default")
    assert card["model"] == "mmrphys_lef" and "research use only" in card["license"]
    assert set(card["held_out"]).isdisjoint(card["config"]["data"]["train"][0]["subjects"])
    assert all(ds["path"] is None for ds in card["config"]["data"]["train"])  # no machine paths shipped
    assert weights.get_weights().path.stat().st_size < 500_000


def test_default_weights_find_a_synthetic_pulse():
    net = load_model("default")
    clip = synth_clips(72, n_clips=1, duration_s=12.5, hr_range=[84.0, 84.0], rr_range=[15.0, 15.0], seed=5)[
        0
    ]
    pred = predict_video(net, clip.frames, chunk=180)
    assert set(pred) == {"bvp", "rsp"} and pred["bvp"].shape == (360,)
    hr_true = heart_rate(clip.labels["bvp"][:360], 30.0)
    assert abs(heart_rate(pred["bvp"], 30.0) - hr_true) < 5.0
