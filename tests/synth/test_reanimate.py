"""Re-animated synthetic data: stills only from the given videos, item format, determinism, labels,
polarity, skin optics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmrphys.errors import ConfigError, InputError
from mmrphys.signals.rates import heart_rate, respiratory_rate
from mmrphys.signals.unsupervised import pos
from mmrphys.synth import FaceLook, make_clip
from mmrphys.synth.optics import MELANIN, skin_tone
from mmrphys.synth.physio import PhysioParams, draw_physiology
from mmrphys.training.reanimate import ReanimatedDataset, RenderParams, render_clip, track_crops
from mmrphys.training.stills import StillBank

SKIN_A = (215.0, 160.0, 130.0)
SKIN_B = (150.0, 170.0, 205.0)  # bluish: nothing real, easy to tell apart


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("reanim")
    out = {}
    for name, skin in (("alice", SKIN_A), ("bob", SKIN_B)):
        path = root / name / "vid.mp4"
        path.parent.mkdir()
        make_clip(
            path,
            duration_s=1.0,
            fps=30,
            size=(192, 144),
            seed=1,
            look=FaceLook(skin_rgb=skin, background_rgb=(60, 120, 110)),
        )
        out[name] = path
    return out


@pytest.fixture(scope="module")
def bank(videos):
    return StillBank.from_videos([videos["alice"]], per_video=2, segment_s=0.3, px=80)


def _skin_mean(still) -> np.ndarray:
    w = still.skin.astype(float)[..., None] / 255
    return (still.image * w).sum(axis=(0, 1)) / w.sum()


def test_stills_come_only_from_the_given_videos(bank, videos, tmp_path):
    assert bank.subjects == ["alice"] and len(bank) >= 1
    assert all(s.source == str(videos["alice"]) for s in bank.stills)
    for s in bank.stills:  # the pixels are alice's skin, not bob's
        m = _skin_mean(s)
        assert np.abs(m - SKIN_A).mean() < 25 < np.abs(m - SKIN_B).mean()
    both = StillBank.from_videos([videos["alice"], videos["bob"]], per_video=1, segment_s=0.3, px=64)
    assert both.subjects == ["alice", "bob"]
    assert both.select(["bob"]).subjects == ["bob"]
    # every item a dataset renders is from a passed subject
    ds = ReanimatedDataset(bank, n=3, chunk=24, size=9, params=RenderParams(codec=False))
    assert {ds.clip(i).truth["subject"] for i in range(3)} == {"alice"}
    path = bank.save(tmp_path / "stills.npz")
    again = StillBank.load(path)
    assert again.digest() == bank.digest() and again.subjects == ["alice"]
    (tmp_path / "bad.npz").write_bytes(b"not a bank")
    with pytest.raises(InputError, match="bad.npz"):
        StillBank.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("size", [72, 36, 9])
def test_item_format(bank, size):
    ds = ReanimatedDataset(bank, n=4, seed=1, chunk=180 if size == 9 else 40, size=size)
    item = ds[2]
    t = ds.chunk
    assert set(item) == {"frames", "bvp", "rsp", "id"}
    assert item["frames"].dtype == torch.float32 and item["frames"].shape == (3, t, size, size)
    assert item["bvp"].dtype == torch.float32 and item["bvp"].shape == (t,)
    assert item["rsp"].dtype == torch.float32 and item["rsp"].shape == (t,)
    f = item["frames"].numpy()
    assert 0 <= f.min() and f.max() <= 255 and np.all(f == np.round(f))  # raw 8-bit levels like the cache
    assert f.std() > 5  # a picture, not a flat field
    assert isinstance(item["id"], str) and "alice" in item["id"]
    assert abs(float(item["bvp"].mean())) < 1e-5 and abs(float(item["bvp"].std(unbiased=False)) - 1) < 1e-3


def test_items_are_deterministic_per_seed_and_index(bank):
    a = ReanimatedDataset(bank, n=5, seed=3, chunk=32, size=36)
    b = ReanimatedDataset(bank, n=5, seed=3, chunk=32, size=36)
    x, y = a[4], b[4]
    assert torch.equal(x["frames"], y["frames"]) and torch.equal(x["bvp"], y["bvp"])
    assert torch.equal(x["rsp"], y["rsp"]) and x["id"] == y["id"]
    assert not torch.equal(a[3]["frames"], x["frames"])
    c = ReanimatedDataset(bank, n=5, seed=4, chunk=32, size=36)
    assert not torch.equal(c[4]["bvp"], x["bvp"])
    assert a.manifest_hash() == b.manifest_hash() != c.manifest_hash()
    # DataLoader workers give the same items as the main process
    loader = torch.utils.data.DataLoader(a, batch_size=None, num_workers=1, sampler=[4])
    (item,) = list(loader)
    assert torch.equal(item["frames"], x["frames"]) and torch.equal(item["bvp"], x["bvp"])


def test_label_rates_within_the_requested_ranges():
    p = PhysioParams()
    for seed in range(12):
        ph = draw_physiology(np.random.default_rng(seed), 1800, 30.0, p)
        bvp = ph.pulse_at(ph.t)
        assert 40 <= ph.hr_inst.min() and ph.hr_inst.max() <= 180
        # the waveform beats at a rate the heart had in the clip (trends move the spectral peak)
        assert ph.hr_inst.min() - 2 <= heart_rate(bvp, 30.0) <= ph.hr_inst.max() + 2
        assert 6 <= ph.rr_bpm <= 30
        if ph.apnoea is None and ph.rr_bpm >= 8.5:  # the estimator's RR band starts at 7.8 /min
            rr = respiratory_rate(ph.rsp, 30.0)
            assert 5 <= rr <= 31 and abs(rr - ph.rr_bpm) < max(2.0, 0.2 * ph.rr_bpm)
    steady = draw_physiology(
        np.random.default_rng(1), 900, 30.0, PhysioParams(hr_trend_bpm_per_min=0), hr_bpm=72
    )
    assert abs(heart_rate(steady.pulse_at(steady.t), 30.0) - 72) < 1.5 and abs(steady.hr_bpm - 72) < 1.0
    narrow = PhysioParams(hr_range_bpm=(50, 60), rr_range_bpm=(10, 12))
    ph = draw_physiology(np.random.default_rng(0), 900, 30.0, narrow)
    assert 50 <= ph.hr_inst.min() and ph.hr_inst.max() <= 60
    with pytest.raises(ConfigError):
        PhysioParams(hr_range_bpm=(10, 300)).validate()


def _skin_trace(clip) -> np.ndarray:
    """Mean RGB of the crop's centre (the face) per frame."""
    s = clip.frames.shape[1]
    c = clip.frames[:, s // 4 : 3 * s // 4, s // 4 : 3 * s // 4].astype(float)
    return c.reshape(len(c), -1, 3).mean(axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_pixels_pulse_at_the_label_rate_with_ubfc_polarity(bank, seed):
    rng = np.random.default_rng(seed)
    clip = render_clip(bank, rng, 300, 36, 30.0, RenderParams.clean())
    rgb = _skin_trace(clip)
    hr_label = heart_rate(clip.bvp, 30.0)
    assert abs(heart_rate(pos(rgb, 30.0), 30.0) - hr_label) <= 2.0
    # UBFC-rPPG convention: the label rises with blood volume, so the skin's green falls (r < 0), lag 0
    g = rgb[:, 1] - np.convolve(rgb[:, 1], np.ones(31) / 31, mode="same")
    r = [np.corrcoef(g[30:-30], np.roll(clip.bvp, k)[30:-30])[0, 1] for k in (-2, -1, 0, 1, 2)]
    assert r[2] < -0.8 and r[2] <= min(r) + 0.05


def test_skin_tone_stays_in_range_and_darkens_with_melanin():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (20, 20, 3)).astype(np.float32)
    img[0, 0] = 255
    img[0, 1] = 0
    skin = np.zeros((20, 20), np.float32)
    skin[5:15, 5:15] = 1.0
    prev = None
    for m in (-0.5, 0.0, 0.5, 1.5, 3.0, 5.0):
        out, share = skin_tone(img, skin, melanin=m)
        assert out.min() >= 0 and out.max() <= 255.0 + 1e-3
        assert np.all((share >= 0) & (share <= 1))
        assert np.allclose(out[skin == 0], img[skin == 0], atol=0.05)  # not skin: unchanged
        if prev is not None:
            assert np.all(out[skin == 1] <= prev[skin == 1] + 1e-3)  # each pixel, each channel
            assert out[skin == 1].mean() < prev[skin == 1].mean()
        prev = out
    assert MELANIN[2] > MELANIN[1] > MELANIN[0]  # melanin absorbs blue most, red least


def test_crop_follows_the_face_like_the_tracker():
    n = 150
    boxes = np.zeros((n, 4))
    boxes[:, 0] = 50 + np.linspace(0, 40, n)  # the face moves right by 40 px
    boxes[:, 1], boxes[:, 2:] = 40, 100
    crops, dets = track_crops(boxes, np.random.default_rng(0), 300, every_n=30)
    centre = (crops[:, 0] + crops[:, 2]) / 2
    steps = np.abs(np.diff(centre))
    assert steps.max() <= 40 / 30 * 30 / 30 + 2  # glides (no jumps beyond a rounding pixel)
    assert abs(centre[-1] - (boxes[-1, 0] + 50)) < 20  # and keeps up with the face
    assert np.all(crops[:, 2] - crops[:, 0] >= 140)  # square x1.5 of a 100 px face


def test_bad_parameters_raise(bank):
    with pytest.raises(ConfigError):
        ReanimatedDataset(bank, n=0)
    with pytest.raises(ConfigError):
        RenderParams(crf=(30, 20)).validate()
    with pytest.raises(ConfigError):
        RenderParams(motion=-1).validate()


def test_a_video_without_a_usable_face_is_named(tmp_path):
    from mmrphys.synth import write_video

    path = tmp_path / "dave" / "vid.mp4"
    rng = np.random.default_rng(0)
    write_video(path, (rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(12)), 30.0)
    with pytest.raises(InputError, match="dave/vid.mp4"):
        StillBank.from_videos([path], per_video=1, segment_s=0.2, px=64)
    with pytest.raises(InputError, match="empty"):
        StillBank([])
