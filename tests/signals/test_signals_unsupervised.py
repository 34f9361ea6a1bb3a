import numpy as np
import pytest
from signals_synth import PULSE_DIRECTION, SKIN_RGB, rgb_trace

from mmrphys.errors import ConfigError, InputError
from mmrphys.faces.traces import mean_rgb, skin_mask
from mmrphys.faces.traces import rgb_trace as frames_to_trace
from mmrphys.signals import heart_rate
from mmrphys.signals.unsupervised import METHODS, get_method, jade, pbv

FS = 30.0


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("hr,seed", [(75.0, 0), (58.0, 1), (96.0, 2), (130.0, 3)])
def test_each_method_recovers_hr_within_3_bpm(name, hr, seed):
    rgb = rgb_trace(hr, FS, 30.0, seed=seed)
    bvp = METHODS[name](rgb, FS)
    assert bvp.shape == (rgb.shape[0],) and np.isfinite(bvp).all()
    assert abs(heart_rate(bvp, FS, preset="toolbox") - hr) <= 3.0


def test_pbv_toolbox_signature_follows_illumination_drift():
    rgb = rgb_trace(75.0, FS, 30.0, seed=0)
    # measured: 81.9 bpm with the toolbox's whole-clip std signature, 75.0 with the band-passed one
    assert abs(heart_rate(pbv(rgb, FS, signature="toolbox"), FS, preset="toolbox") - 75.0) > 3.0
    assert abs(heart_rate(pbv(rgb, FS, signature=PULSE_DIRECTION), FS, preset="toolbox") - 75.0) <= 3.0


def test_jade_separates_independent_sources():
    rng = np.random.default_rng(0)
    t = np.arange(3000) / FS
    square, sine = np.sign(np.sin(2 * np.pi * 0.7 * t)), np.sin(2 * np.pi * 1.3 * t)
    s = np.vstack([square, sine, rng.uniform(-1, 1, t.size)])
    mix = rng.standard_normal((3, 3))
    sep = jade(mix @ s)
    est = sep @ (mix @ s - (mix @ s).mean(axis=1, keepdims=True))
    corr = np.abs(np.corrcoef(np.vstack([est, s]))[:3, 3:])
    assert np.all(corr.max(axis=1) > 0.99)  # every estimate matches one true source
    assert sorted(corr.argmax(axis=1)) == [0, 1, 2]


def test_mean_rgb_box_and_skin_mask():
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[:, :] = (20, 200, 20)  # green background: not skin
    frame[10:30, 20:40] = SKIN_RGB.astype(np.uint8)  # skin-coloured patch
    assert skin_mask(frame)[15, 25] and not skin_mask(frame)[0, 0]
    box = (10, 5, 50, 35)
    # uint8 means: both sides sum integers exactly and divide once, so they agree to an ulp (rtol 1e-12)
    whole = mean_rgb(frame, box)
    np.testing.assert_allclose(whole, frame[5:35, 10:50].reshape(-1, 3).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(mean_rgb(frame, box, skin=True), SKIN_RGB.astype(np.uint8), rtol=1e-12)
    trace = frames_to_trace([frame, frame], [box, None], skin=True)
    assert trace.shape == (2, 3)
    np.testing.assert_allclose(trace[1], frame[skin_mask(frame)].mean(axis=0), rtol=1e-12)
    # no skin at all: falls back to the whole box
    np.testing.assert_allclose(mean_rgb(frame, (0, 0, 10, 10), skin=True), (20, 200, 20), rtol=1e-12)
    with pytest.raises(InputError, match="empty"):
        mean_rgb(frame, (70, 0, 80, 10))
    with pytest.raises(InputError, match="frame 1"):
        frames_to_trace([frame, frame[..., 0]])


@pytest.mark.parametrize("name", sorted(METHODS))
def test_bad_rgb_inputs_raise_input_error(name):
    fn = METHODS[name]
    good = rgb_trace(75.0, FS, 10.0)
    with pytest.raises(InputError, match=r"\(T, 3\)"):
        fn(good[:, :2], FS)
    with pytest.raises(InputError, match="NaN"):
        fn(np.vstack([good[:-1], [np.nan, 1, 1]]), FS)
    if name in ("chrom", "pos", "ica", "pbv"):  # windows or filters need more frames
        with pytest.raises(InputError):
            fn(good[:2], FS)
    else:  # per-frame projections are defined for any length
        assert fn(good[:2], FS).shape == (2,)


@pytest.mark.parametrize("name", ["chrom", "pos", "pbv"])
def test_colour_normalising_methods_reject_zero_mean_input(name):
    rgb = rgb_trace(75.0, FS, 10.0)
    with pytest.raises(InputError, match="mean"):
        METHODS[name](rgb - rgb.mean(axis=0), FS)


def test_get_method():
    assert get_method("POS") is METHODS["pos"]
    with pytest.raises(ConfigError):
        get_method("nope")
