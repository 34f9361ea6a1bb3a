"""``mmrphys synth dataset --kind reanimated``: stills from the given videos, a set in the generic layout."""

from __future__ import annotations

import json

import numpy as np

from mmrphys.cli.main import main
from mmrphys.data import get_loader
from mmrphys.synth import FaceLook, make_clip


def test_reanimated_set_from_the_cli(tmp_path, capsys):
    video = tmp_path / "carol" / "vid.mp4"
    video.parent.mkdir()
    make_clip(
        video, duration_s=1.0, fps=30, size=(192, 144), seed=2, look=FaceLook(background_rgb=(60, 120, 110))
    )
    out, stills = tmp_path / "set", tmp_path / "stills.npz"
    args = [
        "synth",
        "dataset",
        "--kind",
        "reanimated",
        "--from-videos",
        str(video),
        "--stills",
        str(stills),
        "--out",
        str(out),
        "--n",
        "2",
        "--duration",
        "1",
        "--crop-size",
        "36",
        "--seed",
        "5",
        "--quiet",
    ]
    assert main(args) == 0
    assert "2 re-animated recordings of 1 subjects" in capsys.readouterr().out
    assert stills.is_file() and (out / "preview" / "contact_sheet.png").stat().st_size > 1000
    index = json.loads((out / "dataset.json").read_text())
    assert index["bank_subjects"] == ["carol"] and index["seed"] == 5 and len(index["recordings"]) == 2
    recs = get_loader("generic").recordings(out)
    assert [r.subject_id for r in recs] == ["carol", "carol"]
    frames, _ = recs[0].load()
    labels = recs[0].labels()
    assert len(frames) == 30 and frames.shape[1] % 16 == 0 and frames.shape[2] % 16 == 0
    assert len(labels["bvp"].values) == 30 and np.std(labels["rsp"].values) > 0
    assert recs[0].face_boxes().shape == (30, 4)
    # a second run reuses the stills file; asking to rebuild it at the same time is refused
    again = [
        "synth",
        "dataset",
        "--kind",
        "reanimated",
        "--stills",
        str(stills),
        "--out",
        str(tmp_path / "again"),
        "--n",
        "1",
        "--duration",
        "1",
        "--quiet",
    ]
    assert main(again) == 0
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err


def test_reanimated_cli_errors(tmp_path, capsys):
    base = ["synth", "dataset", "--kind", "reanimated", "--out", str(tmp_path / "o")]
    assert main(base) == 2
    assert "needs --from-videos" in capsys.readouterr().err
    assert main([*base, "--from-videos", str(tmp_path / "missing.mp4")]) == 2
    assert "missing.mp4" in capsys.readouterr().err
    assert main([*base, "--stills", str(tmp_path / "s.npz"), "--thermal"]) == 2
    assert main(["synth", "dataset", "--out", str(tmp_path / "p"), "--from-videos", "x.mp4"]) == 2
    assert "--kind reanimated" in capsys.readouterr().err
