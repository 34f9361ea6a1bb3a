"""Config validation and loss functions."""

from __future__ import annotations

import pytest
import torch

from mmrphys.errors import ConfigError
from mmrphys.training import config as C
from mmrphys.training import losses as L


def _write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_follow_the_paper(tmp_path):
    cfg = C.load_config(_write(tmp_path, "data:\n  train: [{name: ubfc-rppg}]\n"))
    assert cfg["train"]["batch_size"] == 4 and cfg["train"]["lr"] == 1e-3
    assert cfg["train"]["optimizer"] == "adam" and cfg["train"]["scheduler"] == "onecycle"
    assert cfg["train"]["loss"] == "smoothl1" and cfg["model"]["attention"] == "tsfm"
    assert cfg["data"]["train"][0]["path"] is None and cfg["data"]["train"][0]["modality"] == "rgb"


@pytest.mark.parametrize(
    "text,key",
    [
        ("trian: {epochs: 1}", "trian"),
        ("train: {epoch: 1}", "train.epoch"),
        ("train: {lr: -1}", "train.lr"),
        ("train: {epochs: two}", "train.epochs"),
        ("model: {attention: magic}", "model"),
        ("data: {train: [{name: x, subjcts: [1]}]}", "data.train[0].subjcts"),
        ("data: {chunk: 150}", "data.chunk"),
        ("train: {amp: 1}", "train.amp"),
    ],
)
def test_bad_keys_and_values_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        C.load_config(_write(tmp_path, text))
    assert key in str(err.value)


def test_overrides_and_data_paths(tmp_path):
    cfg = C.load_config(_write(tmp_path, "data:\n  train: [{name: ubfc-rppg}]\n"), ["train.epochs=3"])
    assert cfg["train"]["epochs"] == 3
    with pytest.raises(ConfigError, match="--data ubfc-rppg=PATH"):
        C.resolve_paths(cfg, {})
    done = C.resolve_paths(cfg, C.parse_data_args(["ubfc-rppg=/x/y"]))
    assert done["data"]["train"][0]["path"] == "/x/y"
    assert C.config_hash(done) == C.config_hash(cfg)  # paths do not change the hash


def test_smoothl1_is_scale_invariant_and_zero_on_match():
    torch.manual_seed(0)
    y = torch.randn(3, 64)
    assert float(L.smooth_l1(5 * y + 2, y)) < 1e-10
    assert float(L.smooth_l1(-y, y)) > 0.5
    total, parts = L.multitask_loss({"bvp": y, "rsp": -y}, {"bvp": y, "rsp": y})
    assert set(parts) == {"bvp", "rsp"} and float(total) == pytest.approx(float(parts["rsp"]))


def test_neg_pearson_per_sample_vs_batch_axis():
    t = torch.linspace(0, 6.28, 50)
    y = torch.stack([torch.sin(t), torch.sin(2 * t)])
    assert float(L.neg_pearson(3 * y, y)) == pytest.approx(0.0, abs=1e-6)
    assert float(L.neg_pearson(-y, y)) == pytest.approx(2.0, abs=1e-6)
    # the batch-axis variant correlates across samples at each time step: a per-sample time shift
    # that keeps each sample perfectly correlated with itself still changes it
    assert float(L.neg_pearson_batch(y, y)) == pytest.approx(0.0, abs=1e-5)
    assert float(L.neg_pearson_batch(y[[1, 0]], y)) > 0.1
    with pytest.raises(ConfigError):
        L.get_loss("hinge")


def test_masked_loss_ignores_unlabelled_samples():
    torch.manual_seed(0)
    y = torch.randn(4, 32)
    pred = y.clone()
    pred[2] = torch.randn(32)  # wrong, but masked out
    m = torch.tensor([True, True, False, True])
    total, parts = L.masked_multitask_loss({"rsp": pred}, {"rsp": y}, {"rsp": m})
    assert float(total) < 1e-10
    none, _ = L.masked_multitask_loss({"rsp": pred}, {"rsp": y}, {"rsp": torch.zeros(4, dtype=torch.bool)})
    assert float(none) == 0.0


def test_collate_masks_missing_labels():
    from mmrphys.training.trainer import collate

    a = {"frames": torch.zeros(3, 4, 2, 2), "bvp": torch.ones(4), "rsp": torch.ones(4), "id": "a"}
    b = {"frames": torch.zeros(3, 4, 2, 2), "bvp": torch.ones(4), "id": "b"}
    batch = collate([a, b])
    assert batch["rsp"].shape == (2, 4) and batch["rsp_mask"].tolist() == [True, False]
    assert "bvp_mask" not in batch and batch["id"] == ["a", "b"]


def test_collate_accepts_cache_dataset_items():
    from mmrphys.training.trainer import collate

    item = (torch.zeros(3, 5, 2, 2), {"bvp": torch.ones(4)})  # CacheDataset: T+1 frames, T labels
    batch = collate([item, item])
    assert batch["frames"].shape == (2, 3, 4, 2, 2) and batch["bvp"].shape == (2, 4)
