"""Training windows at random speed (labels resampled with the frames) and the leave-subjects-out folds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmrphys.errors import ConfigError
from mmrphys.signals import heart_rate
from mmrphys.training.augment import AugmentSpec, choose_speed, draw_window, resample_window
from mmrphys.training.loso import fold_config, make_folds, summarise


def _pulse_clip(hr_bpm: float, n: int, fs: float = 30.0, size: int = 8):
    t = np.arange(n) / fs
    pulse = np.sin(2 * np.pi * hr_bpm / 60.0 * t)
    frames = np.empty((n, size, size, 3), np.float32)
    frames[:] = (120.0 + 4.0 * pulse)[:, None, None, None]
    return frames, {"bvp": pulse.astype(np.float32)}


def test_resample_window_scales_the_rate_of_frames_and_labels_together():
    frames, labels = _pulse_clip(60.0, 900)
    x, labs = resample_window(frames, labels, start=10.0, speed=1.5, n_out=300)
    assert x.shape == (300, 8, 8, 3)
    # 60 bpm played 1.5x faster is 90 bpm, in the pixels and in the label (FFT resolution at 10 s:
    # 6 bpm per bin, refined peak interpolation well inside 1 bpm for a clean sinusoid)
    assert heart_rate(labs["bvp"], 30.0) == pytest.approx(90.0, abs=1.0)
    assert heart_rate(x[:, 0, 0, 1] - x[:, 0, 0, 1].mean(), 30.0) == pytest.approx(90.0, abs=1.0)
    # linear interpolation of a sinusoid sampled at 30 Hz: error <= (2*pi*f/fs)^2/8 of the amplitude
    t = (10.0 + 1.5 * np.arange(300)) / 30.0
    err = np.abs(labs["bvp"] - np.sin(2 * np.pi * t))
    assert err.max() <= (2 * np.pi * 1.0 / 30.0) ** 2 / 8 + 1e-6


def test_resample_window_refuses_a_window_outside_the_recording():
    frames, labels = _pulse_clip(60.0, 100)
    with pytest.raises(ValueError):
        resample_window(frames, labels, start=50.0, speed=1.0, n_out=60)


def test_target_heart_rate_spreads_window_rates_over_the_range():
    spec = AugmentSpec(speed=(0.5, 2.0), target_hr_bpm=(45.0, 150.0))
    rng = np.random.default_rng(0)
    rates = np.array([80.0 * choose_speed(spec, 80.0, rng) for _ in range(4000)])
    assert rates.min() >= 45.0 - 1e-9 and rates.max() <= 150.0 + 1e-9
    # uniform over [45, 150]: each quarter of the range holds 25 % (binomial SE 0.7 %)
    counts = np.histogram(rates, bins=4, range=(45, 150))[0] / rates.size
    assert np.all(np.abs(counts - 0.25) < 0.04)


def test_draw_window_is_a_pure_function_of_the_generator_and_stays_in_range():
    frames, labels = _pulse_clip(72.0, 600)
    spec = AugmentSpec(
        speed=(0.6, 1.6),
        crop_scale=(0.8, 1.0),
        flip=True,
        channel_gain=0.05,
        gain=(0.7, 1.3),
        drift=0.05,
        noise=(0.0, 2.0),
    )
    a = draw_window(frames, labels, 72.0, 180, 30.0, spec, np.random.default_rng([1, 2, 3]))
    b = draw_window(frames, labels, 72.0, 180, 30.0, spec, np.random.default_rng([1, 2, 3]))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1]["bvp"], b[1]["bvp"])
    assert a[0].shape == (180, 8, 8, 3) and a[0].dtype == np.float32
    assert a[0].min() >= 0.0 and a[0].max() <= 255.0
    # the window's label rate is the recording's rate times the speed
    assert heart_rate(a[1]["bvp"], 30.0) == pytest.approx(72.0 * a[2], abs=3.0)


def test_a_recording_shorter_than_the_speed_needs_gets_a_lower_speed():
    frames, labels = _pulse_clip(72.0, 200)
    spec = AugmentSpec(speed=(1.5, 1.5))
    x, labs, speed = draw_window(frames, labels, 72.0, 180, 30.0, spec, np.random.default_rng(0))
    assert speed == pytest.approx(199 / 179)
    assert x.shape[0] == 180


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"speed": [1.2, 0.8]}, "speed"),
        ({"sped": [1, 2]}, "sped"),
        ({"crop_scale": [0.5, 1.2]}, "crop_scale"),
        ({"noise": "loud"}, "noise"),
        ({"drift": -1}, "drift"),
    ],
)
def test_bad_augment_settings_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=f"augment.{key}"):
        AugmentSpec.from_config(raw)


def test_folds_are_round_robin_over_naturally_sorted_subjects():
    subs = [
        "subject10",
        "subject3",
        "subject22",
        "subject4",
        "subject12",
        "subject8",
        "subject17",
        "subject14",
    ]
    folds = make_folds(subs, 4)
    assert folds == [
        ["subject3", "subject12"],
        ["subject4", "subject14"],
        ["subject8", "subject17"],
        ["subject10", "subject22"],
    ]
    with pytest.raises(ConfigError):
        make_folds(subs, 9)


def test_fold_config_trains_on_the_others_and_tests_on_the_fold():
    raw = {
        "name": "r",
        "data": {
            "train": [
                {"name": "ubfc-rppg", "windows": 10},
                {"name": "reanimated", "options": {"source": "ubfc-rppg"}},
                {"name": "synth"},
                {"name": "ubfc-rppg", "key": "ubfc-c20"},  # a re-encoded copy: the same people
            ]
        },
    }
    cfg = fold_config(raw, "ubfc-rppg", ["a", "b"], ["c"])
    assert cfg["data"]["train"][0]["subjects"] == ["a", "b"]
    assert cfg["data"]["train"][1]["options"]["subjects"] == ["a", "b"]
    assert "subjects" not in cfg["data"]["train"][2]
    assert cfg["data"]["train"][3]["subjects"] == ["a", "b"]
    assert cfg["data"]["test"] == [{"name": "ubfc-rppg", "subjects": ["c"]}]
    assert "subjects" not in raw["data"]["train"][0]  # the input is not changed
    with pytest.raises(ConfigError):
        fold_config({"data": {"train": [{"name": "pure"}]}}, "ubfc-rppg", ["a"], ["b"])


def test_summary_gives_mean_absolute_error_and_its_standard_error():
    rows = summarise(
        {"m": {"s1": {"protocol": 1.0, "estimate": -2.0}, "s2": {"protocol": -3.0, "estimate": 4.0}}}
    )
    r = rows[0]
    assert r["protocol_mae"] == pytest.approx(2.0) and r["estimate_mae"] == pytest.approx(3.0)
    assert r["estimate_mae_se"] == pytest.approx(np.std([2.0, 4.0], ddof=1) / np.sqrt(2))
    assert r["estimate_rmse"] == pytest.approx(np.sqrt(10.0))
    assert r["estimate_within3"] == 1


class _Counting(torch.utils.data.Dataset):
    """A deterministic 'rendered' dataset that counts its renderings."""

    def __init__(self):
        self.calls = 0

    def __len__(self):
        return 3

    def manifest_hash(self):
        return "abc123"

    def __getitem__(self, i):
        self.calls += 1
        rng = np.random.default_rng(i)
        return {"frames": rng.random((3, 8, 9, 9), dtype=np.float32) * 255, "bvp": rng.random(8),
                "rsp": rng.random(8), "id": f"reanimated/subject{i}/0-{i}"}


def test_cached_items_render_once_and_rerender_damaged(tmp_path):
    from mmrphys.training.data import CachedItems

    base = _Counting()
    ds = CachedItems(base, tmp_path)
    first = [ds[i] for i in range(3)]
    again = [ds[i] for i in range(3)]
    assert base.calls == 3  # the second pass reads the files
    for a, b in zip(first, again):
        assert b["id"] == a["id"]
        np.testing.assert_array_equal(b["frames"], a["frames"])  # stored exactly (npz, same dtype)
        np.testing.assert_array_equal(b["bvp"], a["bvp"])
    damaged = tmp_path / "abc123" / "000001.npz"
    damaged.write_bytes(damaged.read_bytes()[:40])
    np.testing.assert_array_equal(ds[1]["frames"], first[1]["frames"])
    assert base.calls == 4  # the cut file was rendered again, and replaced whole
    assert not list((tmp_path / "abc123").glob(".*tmp*"))


def test_joined_rendered_sets_keep_ids_unique(tmp_path):
    from mmrphys.training.data import CachedItems, _Joined

    class Named(_Counting):
        ids = [f"reanimated/0-{i}" for i in range(3)]  # the same ids in each subject's set

    parts = [CachedItems(Named(), tmp_path), CachedItems(Named(), tmp_path)]
    joined = _Joined(parts, ["subject3", "subject4"])
    assert len(joined) == 6 and len(set(joined.ids)) == 6
    assert joined.ids[3] == "subject4:reanimated/0-0"
    assert len(joined.manifest_hash()) == 16
