"""Thermal recordings as stored by cameras and datasets: arrays, TIFF stacks, iBVP .raw folders, grey
video; units, timestamps, and one-line errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from mmrphys.errors import ConfigError, InputError
from mmrphys.video.thermal import IBVP_RAW_SHAPE, open_thermal, to_celsius

H, W, N = 24, 32, 6


def _ramp(n=N, base_c=30.0) -> np.ndarray:
    """(n, H, W) °C: a warm square on a room-temperature background, one degree warmer per frame."""
    t = np.full((n, H, W), 22.0, np.float32)
    t[:, 6:18, 10:22] = base_c
    return t + np.arange(n, dtype=np.float32)[:, None, None]


def _frames(reader):
    return [(f, t) for f, t in reader]


def test_units_convert_exactly():
    x = np.array([3000, 30315, 7800], dtype=np.float32)
    assert to_celsius(x[:1], "cdegC")[0] == pytest.approx(30.0)
    assert to_celsius(x[1:2], "cK")[0] == pytest.approx(30.0, abs=1e-4)
    assert to_celsius(np.float32([303.15]), "K")[0] == pytest.approx(30.0, abs=1e-4)
    assert to_celsius(x[2:], "raw-ibvp")[0] == pytest.approx(7800 * 0.04 - 273.15, abs=1e-3)
    with pytest.raises(ConfigError, match="unknown thermal unit"):
        to_celsius(x, "F")


def test_npy_float_celsius_and_integer_centi_celsius(tmp_path):
    ref = _ramp()
    np.save(tmp_path / "t.npy", ref)
    r = open_thermal(tmp_path / "t.npy", fps=10)
    got = _frames(r)
    assert r.kind == "array" and r.unit == "degC" and (r.width, r.height, r.n_frames) == (W, H, N)
    assert np.array_equal(np.stack([f for f, _ in got]), ref)
    assert [t for _, t in got] == pytest.approx(np.arange(N) / 10) and r.timestamps_guessed
    np.save(tmp_path / "c.npy", np.round(ref * 100).astype(np.uint16))  # centi-°C, the default for integers
    r = open_thermal(tmp_path / "c.npy", fps=10)
    assert r.unit == "cdegC" and np.allclose(next(iter(r))[0], ref[0], atol=1e-4)


def test_timestamps_from_npz_and_companion_files(tmp_path):
    ts = np.array([0.0, 0.11, 0.2, 0.32, 0.4, 0.5]) + 1700000000.0  # absolute camera times
    np.savez(tmp_path / "rec.npz", frames=_ramp(), timestamps=ts)
    r = open_thermal(tmp_path / "rec.npz")
    assert [t for _, t in r] == pytest.approx(ts - ts[0]) and not r.timestamps_guessed
    assert r.fps == pytest.approx(5 / 0.5)
    np.save(tmp_path / "a.npy", _ramp())
    (tmp_path / "a.timestamps.csv").write_text("time_s\n" + "\n".join(f"{v:.3f}" for v in ts - ts[0]))
    assert [t for _, t in open_thermal(tmp_path / "a.npy")] == pytest.approx(ts - ts[0], abs=1e-3)
    # milliseconds, wrong count, no times at all: one line naming the file
    (tmp_path / "a.timestamps.csv").write_text("\n".join(str(v * 1000) for v in ts - ts[0]))
    with pytest.raises(InputError, match=r"a.timestamps.csv: median step 99.9.*\(milliseconds\?\)"):
        open_thermal(tmp_path / "a.npy")
    (tmp_path / "a.timestamps.csv").write_text("0\n0.1\n")
    with pytest.raises(InputError, match="one value per frame"):
        open_thermal(tmp_path / "a.npy")
    np.save(tmp_path / "b.npy", _ramp())
    with pytest.raises(InputError, match="b.npy: no timestamps.*--thermal-fps"):
        open_thermal(tmp_path / "b.npy")


def test_tiff_stack_16_bit_centi_kelvin(tmp_path):
    from PIL import Image

    ref = _ramp()
    pages = [Image.fromarray(np.round((f + 273.15) * 100).astype(np.uint16)) for f in ref]
    pages[0].save(tmp_path / "t.tiff", save_all=True, append_images=pages[1:])
    r = open_thermal(tmp_path / "t.tiff", unit="cK", fps=9)
    got = np.stack([f for f, _ in r])
    # centi-kelvin integers: rounding to 0.01 K, float32 arithmetic near 300 adds < 1e-4
    assert r.kind == "tiff" and r.n_frames == N and np.allclose(got, ref, atol=0.006)
    # the same stack read as centi-°C (the integer default) is no temperature: named with the unit
    with pytest.raises(InputError, match=r"t.tiff: thermal values read as cdegC give a median of 2.*unit"):
        open_thermal(tmp_path / "t.tiff", fps=9)


def test_ibvp_raw_folder(tmp_path):
    folder = tmp_path / "p1_t"
    folder.mkdir()
    raw = np.full(IBVP_RAW_SHAPE, 7700, dtype="<u2")
    for k in (1, 2, 10):  # natural order: 1, 2, 10
        (raw + k).tofile(folder / f"frame{k}.raw")
    r = open_thermal(folder, fps=30)
    first = [float(f[0, 0]) for f, _ in r]
    assert r.kind == "raw-folder" and r.unit == "raw-ibvp" and (r.width, r.height) == (640, 512)
    assert first == pytest.approx([(7700 + k) * 0.04 - 273.15 for k in (1, 2, 10)], abs=1e-3)
    (folder / "frame2.raw").write_bytes(b"\x00" * 100)  # a truncated frame is named when reached
    with pytest.raises(InputError, match="frame2.raw: 100 bytes, expected 655360"):
        list(open_thermal(folder, fps=30))
    with pytest.raises(InputError, match="one .raw frame; give the folder"):
        open_thermal(folder / "frame1.raw")


def test_folder_of_16_bit_png_frames(tmp_path):
    import cv2

    folder = tmp_path / "thermal_png"
    folder.mkdir()
    cdeg = np.rint(_ramp() * 100).astype(np.uint16)  # centi-°C, as 16-bit radiometric frames are stored
    for k in range(N):
        cv2.imwrite(str(folder / f"t{k + 1}.png"), cdeg[k])  # t1 ... t6: natural order (t10 after t9)
    np.savetxt(folder / "timestamps.txt", np.arange(N) * 0.04)  # 25 fps, from the folder's own file
    r = open_thermal(folder)
    got = _frames(r)
    assert r.kind == "image-folder" and r.unit == "cdegC" and (r.width, r.height) == (W, H)
    assert [t for _, t in got] == pytest.approx(np.arange(N) * 0.04)
    for k, (f, _) in enumerate(got):  # centi-°C held exactly in uint16: the same °C up to float32 (1e-5)
        np.testing.assert_allclose(f, cdeg[k] / 100.0, atol=1e-4)
    with pytest.raises(InputError, match="give the right --thermal-unit"):  # centi-°C read as cK: -251 °C
        open_thermal(folder, unit="cK")
    cv2.imwrite(str(folder / "t4.png"), cdeg[3, :-2])  # a frame of another size: named when reached
    with pytest.raises(InputError, match=r"thermal frame .*t4\.png: 32x22 uint16, the first frame is 32x24"):
        _frames(open_thermal(folder))
    cv2.imwrite(str(folder / "t1.png"), np.zeros((H, W, 3), np.uint8))
    with pytest.raises(InputError, match=r"t1\.png: 3 channels; a thermal frame has one"):
        open_thermal(folder)
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(InputError, match=r"nothing: a thermal folder must hold .raw frames .* or one image"):
        open_thermal(empty)


def test_grey_video_is_relative_intensity(tmp_path):
    from mmrphys.synth.clip import write_video

    frames = [np.full((48, 64), 40 + 10 * k, np.uint8) for k in range(8)]
    write_video(tmp_path / "t.avi", frames, fps=15)  # FFV1, lossless
    r = open_thermal(tmp_path / "t.avi")
    got = _frames(r)
    assert r.kind == "video" and r.unit == "relative" and r.fps == pytest.approx(15)
    assert [float(f.mean()) for f, _ in got] == pytest.approx([40 + 10 * k for k in range(8)], abs=0.5)
    assert r.warnings == []  # a grey video is what is expected: no "grey" warning
    with pytest.raises(ConfigError, match="a video holds 8-bit intensities"):
        open_thermal(tmp_path / "t.avi", unit="degC")


def test_damaged_values_and_bad_files(tmp_path):
    t = _ramp()
    t[2, 0, :5] = np.nan
    r = open_thermal(t, fps=10)
    frames = [f for f, _ in r]
    assert np.isfinite(frames[2]).all() and frames[2][0, 0] == np.median(t[2][np.isfinite(t[2])])
    assert len(r.warnings) == 1 and "frame 2" in r.warnings[0]
    t[3] = np.nan
    with pytest.raises(InputError, match="frame 3 holds no finite value"):
        list(open_thermal(t, fps=10))
    for arr, message in [(np.zeros((4, 5)), r"\(N, H, W\) array"), (np.zeros((0, H, W)), "no thermal frames"),
                         (np.zeros((3, 4, 4)), "too small"), (np.full((3, H, W), "a"), "must be numbers")]:
        with pytest.raises(InputError, match=message):
            open_thermal(arr, fps=10)
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match="bad.npy: not a readable NumPy array"):
        open_thermal(tmp_path / "bad.npy", fps=10)
    with pytest.raises(InputError, match="no such thermal recording"):
        open_thermal(tmp_path / "missing.npy")
    with pytest.raises(ConfigError, match="unknown thermal unit"):
        open_thermal(t, unit="kelvin", fps=10)
    with pytest.raises(InputError, match="thermal fps"):
        open_thermal(_ramp(), fps=0)
