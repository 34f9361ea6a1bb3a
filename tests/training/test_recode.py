"""Re-encoded dataset copies: same layout and frame count, labels untouched, content close to the source."""

from __future__ import annotations

import numpy as np
import pytest

from mmrphys.errors import InputError
from mmrphys.synth.clip import write_video
from mmrphys.training.recode import main, recode_tree
from mmrphys.video import open_video


def _frames(path):
    return np.stack([f for f, _ in open_video(path)]).astype(float)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    subj = root / "subject1"
    subj.mkdir()
    (subj / "ground_truth.txt").write_text("1 2 3\n4 5 6\n")
    # 3 s at 30 fps of a smooth moving gradient: interpolation between decimated frames stays close
    yy, xx = np.mgrid[0:64, 0:96]
    frames = (np.repeat((128 + 60 * np.sin((xx + 2 * k) / 15.0) * np.cos(yy / 20.0))[..., None], 3, axis=2)
              .astype(np.uint8) for k in range(90))
    write_video(subj / "vid.mp4", frames, fps=30, crf=10)
    return root


def test_copy_keeps_layout_frame_count_and_labels(dataset, tmp_path):
    dst = tmp_path / "c20"

    def recode():
        return recode_tree(dataset, dst, 20, "mpeg4", bit_rate=2_000_000, crf=None, log=lambda *_: None)

    assert recode() == 1
    labels = "subject1/ground_truth.txt"
    assert (dst / labels).read_bytes() == (dataset / labels).read_bytes()
    src, out = _frames(dataset / "subject1" / "vid.mp4"), _frames(dst / "subject1" / "vid.mp4")
    assert out.shape == src.shape  # 90 frames: labels per source frame stay aligned
    # the pattern moves 2 px per source frame; frames rebuilt by linear interpolation between 20 fps
    # frames blur it by at most a third of a frame's motion: mean error well under 10 grey levels
    # (a frame off by one would differ by ~8 everywhere, a wrong frame count by far more)
    assert np.abs(out - src).mean() < 6.0
    assert not list(dst.rglob("*.part*"))  # no temporary file left
    # a second run keeps what exists
    stamp = (dst / "subject1" / "vid.mp4").stat().st_mtime_ns
    assert recode() == 0
    assert (dst / "subject1" / "vid.mp4").stat().st_mtime_ns == stamp


def test_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "src" / "s"
    bad.mkdir(parents=True)
    (bad / "vid.avi").write_bytes(b"not a video")
    with pytest.raises(InputError, match="vid.avi"):
        recode_tree(tmp_path / "src", tmp_path / "dst", 20, "mpeg4", 400_000, None)
    assert main([str(tmp_path / "missing"), str(tmp_path / "d"), "--fps", "20"]) == 2
    assert "not a folder" in capsys.readouterr().err
