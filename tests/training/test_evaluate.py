"""Test protocol files and numbers, tables, feature analysis, CLI errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from mmrphys.training import analysis
from mmrphys.training.evaluate import TestVideo as Video
from mmrphys.training.evaluate import latex_table, markdown_table, predict_video, run_protocol


class GreenMean(nn.Module):
    """'Model' whose BVP is the mean green change: a perfect oracle for a clean green pulse."""

    tasks = ("bvp",)
    input_size = 8

    def forward(self, x, labels=None):
        return {"bvp": torch.diff(x[:, 1], dim=1).mean(dim=(2, 3))}


def _video(hr_bpm, n=600, fs=30.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    pulse = np.sin(2 * np.pi * hr_bpm / 60 * t)
    frames = 120 + rng.normal(0, 0.2, (n, 8, 8, 3))
    frames[..., 1] += 2 * pulse[:, None, None]
    return Video(id=f"v{hr_bpm}", frames=frames.astype(np.float32), fs=fs, labels={"bvp": pulse}, subject="s")


def test_predict_video_chunks_and_drops_the_remainder():
    p = predict_video(GreenMean(), _video(72, n=400).frames, chunk=180)
    assert p["bvp"].shape == (360,)
    assert abs(p["bvp"][:180].mean()) < 1e-6 and p["bvp"][:180].std() == pytest.approx(1, abs=1e-4)


def test_protocol_recovers_hr_and_writes_every_file(tmp_path):
    vids = [_video(hr, seed=i) for i, hr in enumerate((60, 75, 90, 110))]
    res = run_protocol(GreenMean(), vids, tmp_path, chunk=180, preset="mmrphys", title="oracle")
    m = res["metrics"]["bvp"]
    assert m["n"] == 4 and m["MAE"][0] < 2.0 and m["Pearson"][0] > 0.99
    rows = (tmp_path / "per_video.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("video,task,window,gt_rate,pred_rate")
    z = np.load(tmp_path / "predictions.npz")
    assert z["v60/bvp_pred"].shape == (540,) and z["v60/bvp_label"].shape == (540,)
    for name in ("metrics.json", "table.md", "table.tex", "bland_altman_bvp.png"):
        assert (tmp_path / name).is_file()
    assert json.loads((tmp_path / "metrics.json").read_text())["n_videos"] == 4


def test_windowed_protocol_scores_each_window(tmp_path):
    res = run_protocol(GreenMean(), [_video(80, n=1800)], tmp_path, chunk=180, window_s=20.0)
    assert res["metrics"]["bvp"]["n"] == 3 and res["metrics"]["bvp"]["MAE"][0] < 3


def test_tables_have_the_paper_columns():
    rows = [
        {
            "name": "m_1",
            "task": "bvp",
            "metrics": {
                "MAE": (1.234, 0.5),
                "RMSE": (2, 1),
                "MAPE": (1, 0.1),
                "Pearson": (0.9, 0.1),
                "SNR": (5, 1),
                "MACC": (0.7, 0.01),
                "n": 4,
            },
        }
    ]
    md = markdown_table(rows)
    assert "MAE ↓ Avg | SE" in md and "Corr ↑" in md and "| m_1 | HR | 4 | 1.23 | 0.50 |" in md
    tex = latex_table(rows)
    assert "\\toprule" in tex and "m\\_1 & HR & 4 & 1.23 & 0.50" in tex


def test_cosine_maps_find_the_channel_that_carries_the_signal():
    y = np.sin(np.linspace(0, 12, 60))
    emb = torch.randn(2, 60, 3, 3) * 0.01
    emb[1, :, 1, 1] += torch.as_tensor(y, dtype=torch.float32)
    maps = analysis.cosine_maps(emb, y)
    assert maps.shape == (2, 3, 3) and maps[1, 1, 1] > 0.99 and maps[0].max() < 0.6


def test_feature_analysis_of_a_real_model(tmp_path):
    from mmrphys import models

    net = models.create("mmrphys_sef", tasks=("bvp", "rsp"), in_channels=3, attention="tsfm")
    frames = np.random.default_rng(0).uniform(0, 255, (184, 9, 9, 3)).astype(np.float32)
    labels = {"bvp": np.sin(np.arange(184) / 5.0), "rsp": np.sin(np.arange(184) / 40.0)}
    s = analysis.analyze({"a": net, "b": net}, frames, labels, tmp_path)
    assert set(s) == {"bvp", "rsp"} and len(s["bvp"]["a"]) >= 6
    assert all(0 <= v["mean"] <= 1 for v in s["bvp"]["a"].values())
    assert (tmp_path / "features_bvp.png").is_file() and (tmp_path / "features_rsp.npz").is_file()


def test_cli_errors_are_one_line(tmp_path, capsys):
    from mmrphys.cli.main import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: {lr: -1}\n")
    assert main(["train", str(cfg)]) == 2
    assert "train.lr" in capsys.readouterr().err
    cfg.write_text("data: {train: [{name: ubfc-rppg}]}\n")
    assert main(["train", str(cfg)]) == 2
    assert "--data ubfc-rppg=PATH" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "none.pt")]) == 2
    assert "--data" in capsys.readouterr().err
