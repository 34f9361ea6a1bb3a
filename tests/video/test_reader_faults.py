"""Bad and unusual video files: refused with one line naming the file, or read right with a warning."""

from __future__ import annotations

import os
from fractions import Fraction

import cv2
import numpy as np
import pytest

from mmrphys.errors import InputError
from mmrphys.synth import write_video
from mmrphys.video import open_video
from mmrphys.video.reader import check_fps


def _scene(n=24, h=96, w=128, seed=0):
    """Coloured frames with structure (a moving bright square on a colour gradient)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([100 + 80 * xx / w, 60 + 100 * yy / h, 150 - 60 * xx / w], -1)
    out = []
    for i in range(n):
        f = base + rng.normal(0, 2, base.shape)
        f[20:40, 10 + 3 * i: 30 + 3 * i] = (250, 240, 60)
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out


def _encode(path, frames, fps=30, fmt=None, rotation=None):
    import av

    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream("libx264", rate=Fraction(fps))
        s.pix_fmt = "yuv420p"
        s.height, s.width = frames[0].shape[:2]
        s.options = {"crf": "10", "preset": "ultrafast"}
        if rotation is not None:
            s.set_display_rotation(rotation)
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


@pytest.mark.parametrize("name, data, message", [
    ("notes.txt", b"hello, not a video\n" * 100, "is a text file"),  # FFmpeg's tty demuxer would render it
    ("art.ans", b"\x1b[31mred\x1b[0m\n" * 100, "is a text file"),
])
def test_text_files_are_refused(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError, match=message) as info:
        open_video(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_still_image_renamed_mp4_is_refused(tmp_path, ext):
    cv2.imwrite(str(tmp_path / f"face{ext}"), _scene(1)[0])
    renamed = tmp_path / "face.mp4"
    renamed.write_bytes((tmp_path / f"face{ext}").read_bytes())
    with pytest.raises(InputError, match="still image"):
        open_video(renamed)


def test_fifo_is_not_opened(tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        open_video(fifo)  # would block forever if opened


@pytest.mark.parametrize("fps, message", [
    (0, "between 1 and 1000"), (-1, "between 1 and 1000"), (float("nan"), "between 1 and 1000"),
    (float("inf"), "between 1 and 1000"), (1e9, "between 1 and 1000"), (0.5, "between 1 and 1000"),
    ("abc", "must be a number"), (None, "must be a number"),
])
def test_check_fps(fps, message):
    with pytest.raises(InputError, match=message):
        check_fps(fps, "--fps")
    assert check_fps("30") == 30.0 and check_fps(1000) == 1000.0


def test_fps_override_is_validated_before_opening(tmp_path):
    with pytest.raises(InputError, match="fps must be between 1 and 1000 frames per second, got 1e"):
        open_video(tmp_path / "missing.mp4", fps=1e9)  # the option is checked before the file
    write_video(tmp_path / "c.mp4", _scene(), fps=30)
    with pytest.raises(InputError, match="got 0"):
        open_video(tmp_path / "c.mp4", fps=0)


def test_grey_frames_stored_as_colour_are_flagged(tmp_path):
    colour = _scene()
    grey = [np.repeat(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[..., None], 3, -1) for f in colour]
    _encode(tmp_path / "grey.mp4", grey)
    _encode(tmp_path / "colour.mp4", colour)
    r = open_video(tmp_path / "grey.mp4")
    assert r.pix_fmt == "yuv420p" and r.is_grayscale
    assert any("grey (R = G = B)" in w for w in r.warnings)
    c = open_video(tmp_path / "colour.mp4")
    assert not c.is_grayscale and c.warnings == []


def test_dark_start_is_not_taken_for_grey(tmp_path):
    frames = _scene(30)
    frames[:10] = [np.zeros_like(frames[0])] * 10  # a fade-in: black frames carry no colour information
    _encode(tmp_path / "fade.mp4", frames)
    assert not open_video(tmp_path / "fade.mp4").is_grayscale


def test_raw_h264_takes_the_codec_rate_and_warns(tmp_path):
    # a raw Annex-B stream has no timestamps; FFmpeg's demuxer assumes 25 fps, the SPS says 30
    _encode(tmp_path / "s.h264", _scene(30), fps=30, fmt="h264")
    r = open_video(tmp_path / "s.h264")
    assert r.timestamps_guessed and r.fps == pytest.approx(30.0)
    assert any("no timestamps" in w and "30 fps" in w for w in r.warnings)
    ts = [t for _, t in r]
    np.testing.assert_allclose(np.diff(ts), 1 / 30, atol=1e-9)
    mp4 = open_video(_encode(tmp_path / "s.mp4", _scene(30), fps=30))
    assert not mp4.timestamps_guessed and mp4.warnings == []
    given = open_video(tmp_path / "s.h264", fps=24)
    assert given.fps == 24 and [t for _, t in given][1] == pytest.approx(1 / 24)
    assert not given.timestamps_guessed  # the rate was given: nothing is guessed


@pytest.mark.parametrize("deg, k", [(90, -1), (-90, 1), (180, 2)])
def test_rotation_tag_is_applied(tmp_path, deg, k):
    upright = _scene(6, h=96, w=128)
    stored = [np.rot90(f, k) for f in upright]  # what a phone writes, with the tag that undoes it
    path = _encode(tmp_path / "phone.mp4", stored, rotation=deg)
    r = open_video(path)
    assert r.rotation_deg == deg % 360 and (r.width, r.height) == (128, 96)
    frames = [f for f, _ in r]
    assert frames[0].shape == (96, 128, 3)
    # lossy coding: compare against the source within a few levels on average
    assert np.abs(frames[3].astype(int) - upright[3]).mean() < 4
    lazy = [f for f, _ in r.frames(prefetch=False)]
    assert lazy[3].shape == (96, 128, 3) and np.array_equal(lazy[3].rgb(), frames[3])
    crop = lazy[3].crop_rgb((10, 20, 40, 50), 16)
    assert crop.shape == (16, 16, 3)


def test_damaged_packet_is_skipped_with_a_warning(tmp_path):
    path = _encode(tmp_path / "c.mp4", _scene(90), fps=30)
    data = bytearray(path.read_bytes())
    mdat = data.find(b"mdat")
    mid = mdat + (len(data) - mdat) // 2
    data[mid: mid + 600] = bytes(600)  # wipe part of a packet in the middle
    (tmp_path / "d.mp4").write_bytes(bytes(data))
    r = open_video(tmp_path / "d.mp4")
    n = sum(1 for _ in r)
    assert n >= 60  # decoding goes on after the damage
    assert any("damaged" in w for w in r.warnings)
