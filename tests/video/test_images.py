"""A folder of image frames as a video (``mmrphys.video.ImageFolder``): order, times, pixel formats,
and damaged or mismatched files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mmrphys.errors import InputError
from mmrphys.video import ImageFolder, is_image_folder, open_video
from mmrphys.video.images import image_files, natural_key

FPS = 25.0


def _frame(i: int, size=(32, 24)) -> np.ndarray:
    """A distinct RGB frame per index: R = i, G = 2 i, B = 255 - i (exact in any lossless format)."""
    w, h = size
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = i, 2 * i, 255 - i
    return rgb


def _write(folder, n: int, name="f{:d}.png", size=(32, 24)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / name.format(i)), _frame(i, size)[..., ::-1])  # cv2 writes BGR
    return folder


def test_frames_in_natural_order_with_times_from_the_rate(tmp_path):
    folder = _write(tmp_path / "seq", 12)  # f0.png ... f11.png: plain sorting would put f10 after f1
    (tmp_path / "seq" / "notes.txt").write_text("not a frame")
    (tmp_path / "seq" / ".hidden.png").write_bytes(b"")
    reader = open_video(folder, fps=FPS)
    assert isinstance(reader, ImageFolder)
    assert (reader.n_frames, reader.width, reader.height, reader.fps) == (12, 32, 24, FPS)
    got = list(reader)
    assert [t for _, t in got] == pytest.approx([i / FPS for i in range(12)], abs=1e-12)
    for i, (rgb, _) in enumerate(got):
        np.testing.assert_array_equal(rgb, _frame(i))  # RGB order, exact (PNG is lossless)
    lazy = list(reader.frames(prefetch=True))
    np.testing.assert_array_equal(lazy[10][0].rgb(), _frame(10))
    assert reader.warnings == []


def test_natural_key_orders_numbers_as_numbers():
    names = ["img10.png", "img2.png", "IMG1.png", "img2b.png"]
    assert sorted(names, key=natural_key) == ["IMG1.png", "img2.png", "img2b.png", "img10.png"]


def test_a_folder_without_a_rate_or_frames_is_refused_with_one_line(tmp_path):
    folder = _write(tmp_path / "seq", 3)
    with pytest.raises(InputError, match=r"seq: a folder of 3 image frames stores no frame rate.*--fps"):
        open_video(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty is a folder with no image frames"):
        open_video(empty, fps=FPS)


def test_a_frame_of_another_size_is_named(tmp_path):
    folder = _write(tmp_path / "seq", 6)
    cv2.imwrite(str(folder / "f4.png"), _frame(4, size=(40, 24)))
    reader = open_video(folder, fps=FPS)
    with pytest.raises(InputError, match=r"f4\.png \(frame 4\): 40x24 3-channel 8-bit image, but the first "
                                         r"frame is 32x24 3-channel 8-bit"):
        list(reader)


def test_a_damaged_frame_is_skipped_named_and_the_others_keep_their_times(tmp_path):
    folder = _write(tmp_path / "seq", 8)
    (folder / "f3.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG signature, then nothing
    reader = open_video(folder, fps=FPS)
    got = list(reader)
    assert [round(t * FPS) for _, t in got] == [0, 1, 2, 4, 5, 6, 7]
    np.testing.assert_array_equal(got[3][0], _frame(4))
    assert reader.warnings == ["1 of 8 image frames could not be read and were skipped "
                               "(12%; the first: f3.png)"]
    (folder / "f0.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"f0\.png: the first frame cannot be read"):
        open_video(folder, fps=FPS)


def test_grey_16_bit_and_alpha_frames_become_8_bit_rgb(tmp_path):
    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(3):
        cv2.imwrite(str(grey / f"{i}.png"), np.full((8, 10), 1000 * (i + 1), np.uint16))
    reader = open_video(grey, fps=FPS)
    assert reader.is_grayscale and reader.bit_depth == 16
    rgb, _ = next(iter(reader))
    assert rgb.shape == (8, 10, 3) and rgb.dtype == np.uint8
    assert (rgb == 1000 >> 8).all()  # the top 8 bits, as a 16-bit video is converted
    rgba = tmp_path / "rgba"
    rgba.mkdir()
    bgra = np.dstack([_frame(5, (10, 8))[..., ::-1], np.full((8, 10), 7, np.uint8)])
    cv2.imwrite(str(rgba / "0.png"), bgra)
    rgb, _ = next(iter(open_video(rgba, fps=FPS)))
    np.testing.assert_array_equal(rgb, _frame(5, (10, 8)))


def test_max_side_downscales_like_a_video(tmp_path):
    folder = _write(tmp_path / "seq", 2, size=(64, 48))
    reader = open_video(folder, fps=FPS, max_side=32)
    assert reader.output_size == (32, 24)
    rgb, _ = next(iter(reader))
    assert rgb.shape == (24, 32, 3)
    np.testing.assert_array_equal(rgb, _frame(0, (32, 24)))  # flat frames: area averaging is exact


def test_is_image_folder_needs_images_and_no_video_beside_them(tmp_path):
    seq = _write(tmp_path / "seq", 2)
    assert is_image_folder(seq, (".mp4",))
    (seq / "clip.mp4").write_bytes(b"x")
    assert not is_image_folder(seq, (".mp4",))
    assert not is_image_folder(tmp_path / "missing", (".mp4",))
    assert not is_image_folder(seq / "f0.png", (".mp4",))
    assert [f.name for f in image_files(seq)] == ["f0.png", "f1.png"]
