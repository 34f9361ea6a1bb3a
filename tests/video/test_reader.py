"""Streaming decode: timestamps, formats, and one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from mmrphys.errors import InputError
from mmrphys.synth import write_video
from mmrphys.video import frames_from_array, open_video, uniform_grid


def _frames(n=30, h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return [np.roll(base, i, axis=1) for i in range(n)]


@pytest.mark.parametrize("suffix", [".mp4", ".y4m", ".avi"])
def test_roundtrip_timestamps_and_shape(tmp_path, suffix):
    path = tmp_path / f"clip{suffix}"
    write_video(path, _frames(30), fps=25)
    reader = open_video(path)
    assert reader.fps == pytest.approx(25)
    assert (reader.width, reader.height) == (96, 64)
    got = list(reader)
    assert len(got) == 30
    ts = np.array([t for _, t in got])
    assert ts[0] == 0.0
    np.testing.assert_allclose(np.diff(ts), 1 / 25, atol=1e-3)
    assert got[0][0].shape == (64, 96, 3) and got[0][0].dtype == np.uint8


def test_lossless_avi_is_exact(tmp_path):
    frames = _frames(5)
    write_video(tmp_path / "c.avi", frames, fps=30)
    decoded = [f for f, _ in open_video(tmp_path / "c.avi")]
    assert all(np.array_equal(a, b) for a, b in zip(frames, decoded))


def test_max_side_downscales_4k_early(tmp_path):
    small = _frames(3, h=216, w=384)
    big = [np.repeat(np.repeat(f, 10, 0), 10, 1) for f in small]  # 3840x2160
    write_video(tmp_path / "uhd.avi", big, fps=30)
    reader = open_video(tmp_path / "uhd.avi", max_side=1280)
    assert (reader.width, reader.height) == (3840, 2160)
    frames = [f for f, _ in reader]
    assert frames[0].shape == (720, 1280, 3)


def test_fps_override(tmp_path):
    write_video(tmp_path / "c.mp4", _frames(10), fps=30)
    reader = open_video(tmp_path / "c.mp4", fps=10)
    ts = [t for _, t in reader]
    assert reader.fps == 10 and ts[1] == pytest.approx(0.1)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("maker, message", [
    (lambda p: p / "missing.mp4", "no such file"),
    (lambda p: p, "is a folder with no image frames"),  # a folder of frames is a video (test_images.py)
    (lambda p: _write(p / "empty.mp4", b""), "empty"),
    (lambda p: _write(p / "notes.mp4", b"hello, not a video\n" * 50), "not a readable video"),
])
def test_bad_paths_raise_one_line(tmp_path, maker, message):
    with pytest.raises(InputError, match=message) as info:
        open_video(maker(tmp_path))
    assert "\n" not in str(info.value)


def test_truncated_file_gives_frames_before_the_cut_or_a_clear_error(tmp_path):
    write_video(tmp_path / "c.mp4", _frames(60), fps=30)
    data = (tmp_path / "c.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    try:
        reader = open_video(tmp_path / "cut.mp4")
        n = sum(1 for _ in reader)
    except InputError as err:
        assert "\n" not in str(err)
    else:
        assert 0 < n < 60


def test_zero_decodable_frames(tmp_path):
    write_video(tmp_path / "c.mp4", _frames(30), fps=30)
    data = bytearray((tmp_path / "c.mp4").read_bytes())
    # keep the container header, destroy every coded frame
    mdat = data.find(b"mdat")
    data[mdat + 8:] = bytes(len(data) - mdat - 8)
    (tmp_path / "zeroed.mp4").write_bytes(bytes(data))
    with pytest.raises(InputError):
        frames = list(open_video(tmp_path / "zeroed.mp4"))
        # a decoder may "succeed" on zeroed data; what it returns must then not be silent garbage
        assert not frames


def test_frames_from_array_variants():
    frames = np.stack(_frames(10))
    v = frames_from_array(frames, timestamps=np.cumsum(np.r_[0, np.full(9, 0.04)]))
    assert v.fps == pytest.approx(25)
    gray = frames_from_array(frames[..., 0], fps=30)
    f, _ = next(iter(gray))
    assert gray.is_grayscale and f.shape == (64, 96, 3) and np.all(f[..., 0] == f[..., 1])
    deep = frames_from_array(frames.astype(np.uint16) * 257, fps=30)
    f, _ = next(iter(deep))
    assert deep.bit_depth == 16 and f.dtype == np.uint8 and np.array_equal(f, frames[0])
    with pytest.raises(InputError, match="frame rate"):
        frames_from_array(frames)
    with pytest.raises(InputError, match="fps must be between 1 and 1000"):
        frames_from_array(frames, fps=0)
    with pytest.raises(InputError, match="increasing"):
        frames_from_array(frames, timestamps=np.zeros(10))


def test_uniform_grid():
    g = uniform_grid(0.0, 1.0, 30)
    assert g.size == 31 and g[-1] == pytest.approx(1.0)
