"""RGB + thermal and thermal alone: the warm-region face detector, pairing by time, box mapping, the
model input (thermal channel in °C), weights checks, and RR from the thermal RSP branch on synthetic
paired clips with known truth (the authors' BP4D+ checkpoints, when present)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import mmrphys
from mmrphys.cli.main import main
from mmrphys.errors import ConfigError, InputError, WeightsError
from mmrphys.faces.thermal import WarmFaceDetector
from mmrphys.models import InputSpec, create
from mmrphys.models.checkpoints import save_weights
from mmrphys.synth import make_clip
from mmrphys.synth.clip import (
    detector_box,
    draw_face,
    physiology,
    random_look,
    render_frames,
    thermal_celsius,
)
from mmrphys.video import frames_from_array
from mmrphys.video.frame import RGBFrame
from mmrphys.video.thermal import open_thermal
from mmrphys.vitals.paired import PairedSource
from mmrphys.vitals.thermal import ThermalModelEstimator

BP4D = {"rgbt-lnf": "BP4D_MMRPhysLNF_BVP_RSP_RGBTx180x72_SFSAM_Label_Fold1_Epoch4.pth",
        "rgbt-lef": "BP4D_MMRPhysLEF_BVP_RSP_RGBTx180x72_SFSAM_Label_Fold1_Epoch4.pth",
        "t-lef": "BP4D_MMRPhysLEF_BVP_RSP_Tx180x72_SFSAM_Label_Fold1_Epoch4.pth"}
RR_TOL = 2.0  # the bound: RR within 2 /min of the truth


def _iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """30 s paired clip: RGB 320x240 mp4, thermal 160x120 .npy in °C (RR 10, HR 72)."""
    root = tmp_path_factory.mktemp("paired")
    return make_clip(root / "face.mp4", hr_bpm=72, rr_bpm=10, duration_s=30, size=(320, 240), thermal=True,
                     thermal_suffix=".npy", thermal_size=(160, 120), seed=5)


@pytest.fixture(scope="module")
def short_pair(tmp_path_factory):
    """8 s paired clip, thermal as a grey video at the RGB's size."""
    root = tmp_path_factory.mktemp("short_pair")
    return make_clip(root / "s.mp4", hr_bpm=80, rr_bpm=15, duration_s=8, size=(160, 120), thermal=True,
                     seed=2)


# ----------------------------------------------------------------------------- faces in thermal frames
def test_warm_detector_finds_synthetic_thermal_faces():
    rng = np.random.default_rng(3)
    det, ious = WarmFaceDetector(), []
    for k in range(10):
        w, h = ((160, 128), (320, 240))[k % 2]
        scene = draw_face(w, h, random_look(rng), seed=k)
        _, th = next(iter(render_frames(scene, physiology(70, 12, 1 / 30, 30), thermal=True, seed=k)))
        boxes = det.detect(thermal_celsius(th))
        ious.append(max((_iou(b, detector_box(scene["box"])) for b in boxes), default=0.0))
    # measured on these 10: IoU 0.86-0.93 with the box a detector reports in the RGB view
    assert min(ious) >= 0.6 and np.median(ious) >= 0.8
    assert det.detect(np.full((120, 160), 22.0, np.float32)) == []  # an empty room
    noise = 22 + 0.05 * np.random.default_rng(0).standard_normal((120, 160)).astype(np.float32)
    assert det.detect(noise) == [] or det.detect(noise)[0].w < 40  # no large face in sensor noise


# ----------------------------------------------------------------------------- pairing and mapping
def _rgb_video(n=60, fps=30.0, size=(160, 120)):
    return frames_from_array(np.zeros((n, size[1], size[0], 3), np.uint8), fps=fps)


def _thermal(n, fps, size=(80, 60)):
    return open_thermal(np.full((n, size[1], size[0]), 30.0, np.float32), fps=fps)


def test_each_rgb_frame_gets_the_nearest_thermal_frame():
    src = PairedSource(_rgb_video(), open_thermal(np.arange(20, dtype=np.float32)[:, None, None]
                                                  + np.full((20, 60, 80), 25.0, np.float32), fps=10))
    pairs = [(t, float(f.thermal()[0, 0]) - 25.0) for f, t in src.frames()]
    # thermal frame k is at k / 10 s: the nearest one to RGB time t is round(10 t) (the last is 19)
    assert len(pairs) == 60 and all(k == min(19, np.floor(10 * t + 0.5 - 1e-9)) for t, k in pairs)
    a = src.alignment()
    assert a["frames_paired"] == 60 and a["offset_median_s"] <= 0.05 and a["fps"] == 10
    assert a["offset_max_s"] == pytest.approx(59 / 30 - 1.9)  # the last RGB frame, after the last thermal
    assert any("repeated" in w for w in src.warnings)  # 10 fps thermal for 30 fps RGB


def test_rgb_frames_outside_the_thermal_recording_are_not_used():
    src = PairedSource(_rgb_video(n=90), _thermal(30, 30), thermal_delay_s=0.5)  # thermal covers 0.5-1.5 s
    times = [t for _, t in src.frames()]
    assert times[0] == pytest.approx(0.5) and times[-1] == pytest.approx(29 / 30 + 0.5)
    a = src.alignment()
    assert a["frames_paired"] == 30 and a["rgb_frames_without_thermal"] == 60 and a["offset_max_s"] < 1e-6
    assert any("covers part of the RGB video" in w for w in src.warnings)
    with pytest.raises(InputError, match="does not overlap"):
        list(PairedSource(_rgb_video(n=30), _thermal(30, 30), thermal_delay_s=5.0).frames())


def test_box_is_scaled_between_views_and_channels_stacked():
    rgb = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    th = np.full((60, 80), 22.0, np.float32)
    th[15:45, 20:60] = 35.0  # a warm block at half the RGB resolution
    src = PairedSource(frames_from_array(rgb[None].repeat(8, 0), fps=30),
                       open_thermal(th[None].repeat(8, 0), fps=30))
    frame, _ = next(iter(src.frames()))
    crop = frame.crop_rgb((40, 30, 120, 90), 16)  # the RGB box of the warm block
    assert crop.shape == (16, 16, 4) and crop.dtype == np.float32
    assert np.array_equal(crop[..., :3], RGBFrame(rgb).crop_rgb((40, 30, 120, 90), 16).astype(np.float32))
    # only the warm block, in °C: area resizing by 2.5 x 1.875 sums <= 9 float32 weights per pixel
    # (rounding <= 9 x 6e-8 x 35 = 2e-5); a pixel of the 22 °C room would pull it down by > 0.5
    assert np.abs(crop[..., 3] - 35.0).max() <= 1e-4
    alone = PairedSource(None, open_thermal(th[None].repeat(8, 0), fps=30))
    frame, _ = next(iter(alone.frames()))
    assert frame.crop_rgb((20, 15, 60, 45), 8).shape == (8, 8, 1) and alone.face_detector is not None
    assert frame.rgb().shape == (60, 80, 3) and frame.rgb().dtype == np.uint8  # a false-colour picture


class _Recorder:
    """A stand-in predictor that records its input."""

    def __init__(self, channels):
        self.spec = InputSpec(size=8, frames=9, frame_multiple=4, in_channels=channels)
        self.tasks, self.backend, self.seen = ("bvp", "rsp"), "eager", []

    def __call__(self, x):
        self.seen.append(np.array(x))  # the main job hands NumPy windows to every predictor
        return {t: np.zeros((x.shape[0], x.shape[2] - 1), np.float32) for t in self.tasks}


def test_model_input_is_rgb_scaled_and_thermal_in_celsius():
    rec = _Recorder(4)
    est = ThermalModelEstimator(rec, "mmrphys_lnf", "test", 0.2, "rgbt")
    est.start(30.0, [])
    rng = np.random.default_rng(1)
    crops = [np.concatenate([rng.integers(0, 256, (8, 8, 3)).astype(np.float32),
                             (30 + rng.random((8, 8, 1))).astype(np.float32)], 2) for _ in range(9)]
    for k, c in enumerate(crops):
        est.push(c, k / 30)
    est.finish(np.arange(9) / 30, [(0, 9)])
    x = rec.seen[0][0]  # (C, T+1, H, W)
    ref = np.stack(crops).transpose(3, 0, 1, 2).astype(np.float64)
    # RGB: one float32 division of an integer level by 255 (<= 0.5 ulp of a value <= 1: 6e-8);
    # thermal: multiplied by 255 then divided by 255 in float32 (2 roundings of ~31 °C, <= 2 x 0.5 ulp
    # = 2 x 1.9e-6); bounds with a 10x margin
    assert np.abs(x[:3] - ref[:3] / 255.0).max() <= 1e-6
    assert np.abs(x[3] - ref[3]).max() <= 4e-5


# ----------------------------------------------------------------------------- weights and options
@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Untrained MMRPhys weights for thermal (1 channel) and RGB + thermal (4 channels, LNF)."""
    root = tmp_path_factory.mktemp("w")
    torch.manual_seed(0)
    return {"t": save_weights(create("mmrphys_lef", in_channels=1), root / "t.pt"),
            "rgbt": save_weights(create("mmrphys_lnf", in_channels=4), root / "rgbt.pt")}


def test_weights_must_fit_the_input(short_pair, tiny_weights, tmp_path, monkeypatch):
    video, th = short_pair["video"], short_pair["thermal_video"]
    with pytest.raises(WeightsError, match="weights for RGB input .*cannot use the thermal recording"):
        mmrphys.estimate(video, thermal=th, weights="default")
    with pytest.raises(WeightsError, match="need the RGB video too"):
        mmrphys.estimate(thermal=th, weights=str(tiny_weights["rgbt"]))
    with pytest.raises(ConfigError, match="reads colour only; a thermal recording needs a model"):
        mmrphys.estimate(video, thermal=th, method="pos")
    monkeypatch.setenv("MMRPHYS_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(WeightsError, match="BP4D_MMRPhysLEF_BVP_RSP_RGBTx.*not downloaded.*default weights"):
        mmrphys.estimate(video, thermal=th)
    assert not (tmp_path / "empty-cache").exists() or not any((tmp_path / "empty-cache").rglob("*.pth"))


def test_thermal_runs_end_to_end_with_any_fitting_weights(short_pair, tiny_weights, tmp_path, capsys):
    res = mmrphys.estimate(short_pair["video"], thermal=short_pair["thermal_video"],
                           weights=str(tiny_weights["rgbt"]), progress=False)
    info = res.to_dict(waveforms=False)
    assert info["thermal"]["frames_paired"] == 240 and info["thermal"]["kind"] == "video"
    assert info["model"]["channels"] == "RGB + thermal" and info["model"]["windows"] >= 1
    assert len(res.bvp) == len(res.timestamps_s) == 240 and np.isfinite(res.bvp).all()
    # thermal alone from the CLI: files named after the thermal recording
    out = tmp_path / "res"
    argv = ["estimate", "--thermal", short_pair["thermal_video"], "--weights", str(tiny_weights["t"]),
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    data = json.loads((out / "s_thermal.json").read_text())
    assert data["thermal"]["face_detector"].startswith("warm-region")
    assert data["model"]["channels"] == "thermal"
    assert data["quality"]["face_detected_fraction"] == 1.0
    assert sorted(p.name for p in out.iterdir()) == ["s_thermal.json", "s_thermal_report.png",
                                                      "s_thermal_waveforms.csv"]


def test_a_folder_of_16_bit_thermal_frames_pairs_with_the_video(paired, tiny_weights, tmp_path):
    """The paired clip's thermal recording stored as thermal cameras' tools do: one 16-bit PNG per frame
    in centi-°C. Every RGB frame is paired and the model runs on RGB + thermal."""
    import cv2

    celsius = np.load(paired["thermal_video"])
    folder = tmp_path / "thermal_frames"
    folder.mkdir()
    for k, frame in enumerate(celsius):
        cv2.imwrite(str(folder / f"frame_{k}.png"), np.rint(frame * 100).astype(np.uint16))
    res = mmrphys.estimate(paired["video"], thermal=folder, thermal_fps=30, weights=str(tiny_weights["rgbt"]),
                           progress=False)
    info = res.to_dict(waveforms=False)
    assert info["thermal"]["kind"] == "image-folder" and info["thermal"]["frames_paired"] == len(celsius)
    assert info["model"]["channels"] == "RGB + thermal" and np.isfinite(res.bvp).all()


@pytest.mark.parametrize("argv, message", [
    (["{video}", "--thermal-fps", "30"], "describe a --thermal recording"),
    (["{video}", "{video}", "--thermal", "{th}", "--out", "{tmp}"], "--thermal pairs one RGB video"),
    (["{video}", "--thermal", "{tmp}/none.npy", "--weights", "{w}"], "no such thermal recording"),
    (["{video}", "--thermal", "{th}", "--thermal-unit", "degC", "--weights", "{w}"], "8-bit intensities"),
    (["--thermal", "{th}", "--thermal-fps", "0", "--weights", "{w}"], "--thermal-fps"),
])
def test_thermal_cli_errors_are_one_line(short_pair, tiny_weights, tmp_path, capsys, argv, message):
    subst = {"{video}": short_pair["video"], "{th}": short_pair["thermal_video"], "{tmp}": str(tmp_path),
             "{w}": str(tiny_weights["rgbt"])}
    for k, v in subst.items():
        argv = [a.replace(k, v) for a in argv]
    assert main(["estimate", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("mmrphys estimate: error:")


# ----------------------------------------------------------------------------- RR from the thermal branch
@pytest.mark.slow  # 3 runs of a 30 s clip through MMRPhys-L: ~1 min idle
@pytest.mark.reference
@pytest.mark.parametrize("kind", ["rgbt-lnf", "rgbt-lef", "t-lef"])
def test_rr_from_the_thermal_rsp_branch_within_2(paired, official_dir, kind):
    weights = str(official_dir / BP4D[kind])
    rgb = None if kind.startswith("t-") else paired["video"]
    res = mmrphys.estimate(rgb, thermal=paired["thermal_video"], weights=weights, progress=False)
    assert res.rsp_source == "model RSP output"
    assert abs(res.respiratory_rate_bpm - paired["rr_bpm"]) <= RR_TOL
    assert res.confidence["respiratory_rate"] >= 0.5
    t = res.extra["thermal"]
    assert t["unit"] == "degC" and t["size"] == [160, 120] and t["frames_paired"] == 900
    if rgb is not None:  # the pulse comes from the RGB channels
        assert abs(res.heart_rate_bpm - paired["hr_bpm"]) <= 3.0
