"""``mmrphys synth dataset``: a training set from the CLI, preprocessed with its own face boxes."""

from __future__ import annotations

import json

from mmrphys.cli.main import main


def test_synth_dataset_cli_then_preprocess_with_given_boxes(tmp_path, capsys):
    out = tmp_path / "syn"
    args = ["synth", "dataset", "--out", str(out), "--n", "2", "--per-subject", "1", "--duration", "1.2",
            "--size", "96x72", "--no-thermal", "--seed", "4", "--quiet"]
    assert main(args) == 0
    assert "2 recordings of 2 synthetic subjects" in capsys.readouterr().out
    index = json.loads((out / "dataset.json").read_text())
    assert index["seed"] == 4 and not index["thermal"] and list(index["recordings"]) == ["s000_r0", "s001_r0"]
    rows = (out / "s001" / "r0.boxes.csv").read_text().splitlines()
    assert rows[0] == "frame,x,y,w,h" and len(rows) == 1 + 36
    assert not (out / "s000" / "r0.thermal.npy").exists()

    cache = tmp_path / "cache"
    pre = ["preprocess", "--dataset", "generic", "--root", str(out), "--out", str(cache), "--size", "9",
           "--chunk", "30", "--workers", "0", "--quiet"]
    assert main(pre) == 0
    text = capsys.readouterr().out
    assert "own face boxes" in text and "face1.5x-given30" in text and "chunks: 2" in text
    assert main([*pre, "--crop", "detect", "--allow-failures"]) == 0  # detection is still one flag away
    assert "face1.5x-det30" in capsys.readouterr().out
    assert main([*pre, "--no-crop"]) == 0
    assert "nocrop" in capsys.readouterr().out


def test_synth_cli_refuses_mixed_modes(tmp_path, capsys):
    assert main(["synth", "dataset", "--n", "1"]) == 2
    assert "needs --out DIR" in capsys.readouterr().err
    assert main(["synth", "dataset", "--out", str(tmp_path / "d"), "--hr", "60"]) == 2
    assert main(["synth", str(tmp_path / "c.mp4"), "--out", str(tmp_path / "d")]) == 2
    assert main(["preprocess", "--dataset", "generic", "--root", str(tmp_path), "--out", str(tmp_path),
                 "--crop", "given", "--no-crop"]) == 2
    assert not (tmp_path / "d").exists()
