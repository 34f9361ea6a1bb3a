"""The page's signal processing (webapp/src/dsp.js) is the Python package's, on the same inputs.

``webapp/tools/golden-run.mjs`` runs the page's functions in Node on fixed inputs made here; the same
inputs go through :mod:`mmrphys.signals` (and :class:`mmrphys.tensors.OverlapAdd`), with the settings
the server sends the page (``page_settings()``). Also: Node's own unit tests of dsp.js, and that the
page takes its bands, windows and crop scale from ``/api/model.json`` (no copies in the page).
Skips the Node parts when Node is absent.

Tolerances (both sides compute in float64, eps = 2.2e-16; the bounds below are what the algorithms can
differ by, with wide margins, and the measured differences are printed):

* Butterworth coefficients: the same formulas (prototype poles, pre-warp, low-pass to band-pass,
  bilinear transform, polynomial expansion), ~50 complex operations per coefficient, so the rounding
  difference is ~50 eps relative (~1e-14) of the largest coefficient (|a_k| <= C(2N, k) <= 70 for
  N <= 4). Bound: ``1e-12 * max|coefficient|``.
* Band-pass output (filtfilt): both filter with coefficients (b, a) that differ by rounding only
  (~1e-15, see above), but the transfer-function form of a band-pass with poles clustered near z = 1
  amplifies such differences: the output's sensitivity to a relative change eps of the coefficients
  is about cond(I - A^T) * eps * max|x|, where A is the companion matrix of a (the matrix filtfilt
  solves for its start-up state; its condition number grows as the poles approach 1 and each other:
  5e3 for 0.6-3.3 Hz, 8e6 for 0.13-0.5 Hz at 30 fps with order 2, 1.5e10 with order 3). Running scipy
  with the page's coefficients moves scipy's own output by the same amount, so this is the rounding
  floor of the design, not a difference of method. Bound: ``4 * cond(I - A^T) * eps * max|x|`` (the
  forward and the backward pass, b and a); measured 150-2000x below it.
* Rates: both take the top bin of the same PSD (scipy's FFT vs the page's radix-2 FFT or direct DFT:
  relative differences ~eps * log2(nfft)), then 201 points of the DTFT over +-1 bin (scipy's chirp-z
  vs a direct sum, ~1e-13 relative) and a parabola through the top three. A rounding difference can
  at most move the top to a neighbouring zoom point, and the parabola's vertex then moves by far less
  than one zoom step, 2 * df / 200 (df = fs / nfft). Bound: one zoom step, ``60 * 2 * df / 200`` bpm
  (0.035 bpm for 10 s at 30 fps). A flip of the coarse bin or of the harmonic check would need two
  powers equal to ~1e-13, which these generic inputs do not have.
* Quality index: a ratio of sums of the same in-band powers, ~1e-13 relative. Bound: ``1e-9``.
* Stitching and resampling: a few float64 operations per sample. Bound: ``1e-12 * max|x|``.
* Breathing from the pulse (the page's RR when a model runs; ``respiration_from_bvp`` then
  ``respiratory_rate``, and the crop pulse's POS before it):

  - detrend: both solve ``(I + lam² DᵀD) trend = x`` by a Cholesky-type factorisation (LAPACK's banded
    Cholesky vs the page's LDLᵀ); backward-stable, so the difference is ~cond·eps·max|x| with
    cond(I + lam² DᵀD) <= 1 + 16·lam² (the spectrum of DᵀD lies in [0, 16]): 1.6e5 for lam = 100.
    Bound: ``4 * (1 + 16 lam²) * eps * max|x|`` (1.4e-10 of max|x|).
  - POS: per window a few sums of w = 49 terms and one ratio, then that detrend and the 1st-order
    band-pass (cond(I - Aᵀ) of that filter, small): bounded by the two terms, ``4 * (1 + 16 lam²) *
    eps * max|raw POS|`` plus the band-pass's floor.
  - peak positions: the same integer peaks (a different one would need two samples equal to ~1e-12),
    then the parabola's shift 0.5·(y0 - y2)/(y0 - 2y1 + y2): a difference dy in the filtered pulse
    (the HR band-pass floor, 4·cond_hr·eps·max|x|, 4.4e-12·max|x|) moves it by ~dy/|y0 - 2y1 + y2|;
    with >= 10 samples per beat (the cases: 72 bpm at 30 fps, 150 bpm at 25 fps) the curvature at a
    peak is >= (2π/10)²·amplitude ~ 0.4·amplitude, so ~1e-11 samples. Bound: ``1e-8`` samples.
  - respiration waveform (z-scored): the RR band-pass dominates: its floor 4·cond_rr·eps (cond_rr =
    cond(I - Aᵀ) of the RR band-pass, 8e6 at 30 fps, order 2) relative to max|its input|, divided by
    the sd of its output when z-scored (a modulation inside the band: max|input|/sd <= ~3; allowed
    10), summed over the three modulations and re-z-scored (<= 3 terms, the fused sd no less than a
    third of the weights' sum: another 9). The spline (a diagonally dominant tridiagonal system,
    cond <= 3) and the peak shifts above add ~1e-10 relative. Bound: ``4 * cond_rr * eps * 100``
    (7e-7 at 30 fps), a bound on the absolute difference of the z-scored waveforms.
  - RR: one zoom step of the rate's spectrum, as for the rates above (0.02 /min for 60 s at 30 fps,
    Welch): the waveforms differ by <= 7e-7 of their unit sd, which moves the zoomed peak's vertex by
    far less than one step.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mmrphys import signals
from mmrphys.errors import InputError
from mmrphys.signals.filters import butter_coefficients
from mmrphys.signals.presets import get_preset
from mmrphys.signals.spectrum import next_pow2, psd_kind
from mmrphys.tensors import OverlapAdd
from mmrphys.web.model import PAGE_PRESET, page_settings
from mmrphys.web.session import _uniform
from numeric_margins import within

WEBAPP = Path(__file__).resolve().parents[2] / "webapp"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")

SETTINGS = page_settings()
PRESET = get_preset(PAGE_PRESET)


def _pulse(fs, seconds, hr_bpm, seed, harmonic=0.5, noise=0.3, drift=0.0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * fs))) / fs
    ph = 2 * np.pi * hr_bpm / 60 * t + 0.3 * np.sin(2 * np.pi * 0.1 * t)  # a little rate variability
    return (np.sin(ph) + harmonic * np.sin(2 * ph + 0.7) + 0.8 * np.sin(2 * np.pi * 0.25 * t)
            + drift * t + noise * rng.normal(size=t.size))


def _breath(fs, seconds, rr_bpm, seed, noise=0.3):
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * fs))) / fs
    return (np.sin(2 * np.pi * rr_bpm / 60 * t) + 0.3 * np.sin(2 * np.pi * 1.2 * t)
            + 0.05 * t + noise * rng.normal(size=t.size))


def _zoom_step_bpm(n: int, fs: float) -> float:
    df = fs / (next_pow2(n) if psd_kind(n, fs, PRESET.psd, PRESET.welch_after_s) == "periodogram" else n // 2)
    return 60 * 2 * df / 200


def _rate_cases():
    cases = []
    hr = [(30.0, 10, 72, 0), (30.0, 6, 52, 1), (29.97, 20, 96, 2), (25.0, 10, 130, 3), (30.0, 10, 170, 4),
          (15.0, 12, 64, 5), (30.0, 35, 80, 6), (30.0, 10, 88, 7)]
    for fs, sec, bpm, seed in hr:
        cases.append(("hr", fs, _pulse(fs, sec, bpm, seed, drift=0.02 * seed), bpm))
    # The 2nd harmonic stronger than the fundamental: the harmonic check must pick 60, not 120.
    t = np.arange(300) / 30.0
    cases.append(("hr", 30.0, 0.6 * np.sin(2 * np.pi * t) + np.sin(4 * np.pi * t + 0.4)
                  + 0.02 * np.random.default_rng(8).normal(size=t.size), 60))
    cases.append(("hr", 30.0, np.random.default_rng(9).normal(size=300), None))  # noise: any rate
    rr = [(30.0, 20, 12, 10), (30.0, 15, 8, 11), (29.97, 20, 18, 12), (25.0, 35, 27, 13)]
    for fs, sec, bpm, seed in rr:
        cases.append(("rr", fs, _breath(fs, sec, bpm, seed), bpm))
    return cases


def _modulated_pulse(fs, seconds, rr_bpm, hr_bpm, seed, noise=0.05):
    """A pulse that breathing modulates three ways: amplitude (AM, ±30 %), rate (FM: the phase swings
    ±0.5 rad, i.e. ±(rr/hr)·0.5·hr ≈ ±1.6 bpm at 15 /min) and baseline (BM), plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * fs))) / fs
    breath = np.sin(2 * np.pi * rr_bpm / 60 * t)
    ph = 2 * np.pi * hr_bpm / 60 * t + 0.5 * breath
    return ((1 + 0.3 * breath) * (np.sin(ph) + 0.4 * np.sin(2 * ph + 0.7)) + 0.5 * breath
            + noise * rng.normal(size=t.size))


def _rgb_trace(fs, seconds, rr_bpm, hr_bpm, seed):
    """A mean-colour trace (T, 3) whose pulse is ``_modulated_pulse``: the crop's colour as POS sees it."""
    x = _modulated_pulse(fs, seconds, rr_bpm, hr_bpm, seed)
    noise = np.random.default_rng(seed + 100).normal(0, 0.05, (x.size, 3))
    return np.array([100.0, 120.0, 90.0]) + np.outer(x, [0.2, 0.8, 0.4]) + noise


# (fs, seconds, rr_bpm, hr_bpm, seed): the task's case first (15 /min on 72 bpm, 60 s at 30 fps), the
# page's live window (20 s), other frame rates and rates, and a clip too short to hold 4 beats.
_RESP_CASES = [(30.0, 60, 15, 72, 50), (30.0, 20, 12, 66, 51), (29.97, 20, 18, 90, 52), (25.0, 40, 9, 58, 53),
               (15.0, 30, 20, 100, 54), (30.0, 2, 15, 72, 55)]


@pytest.fixture(scope="module")
def golden():
    """Every case run once through Node; returns (cases, js_results)."""
    if NODE is None:
        pytest.skip("node is not installed")
    preset = SETTINGS["preset"]
    cases = []
    for order in (1, 2, 3, 4):
        for fs, band in ((30.0, (0.6, 3.3)), (25.0, (0.13, 0.5)), (60.0, (0.75, 2.5))):
            cases.append({"op": "butter", "order": order, "band": band, "fs": fs})
    filters = [(30.0, (0.6, 3.3), 2), (30.0, (0.13, 0.5), 2), (29.97, (0.6, 3.3), 1), (25.0, (0.13, 0.5), 3),
               (30.0, tuple(preset["hr_band"]), 2)]
    for i, (fs, band, order) in enumerate(filters):
        x = _pulse(fs, 20, 75, 20 + i, drift=0.05) * (10.0 ** (i - 2))  # scales 0.01 to 100
        cases.append({"op": "bandpass", "x": x.tolist(), "fs": fs, "band": band, "order": order})
    for kind, fs, x, _truth in _rate_cases():
        cases.append({"op": "rate", "x": x.tolist(), "fs": fs, "kind": kind, "preset": preset})
        cases.append({"op": "quality", "x": x.tolist(), "fs": fs, "kind": kind, "preset": preset,
                      "half_width_hz": SETTINGS["quality"]["half_width_hz"][kind]})
    rng = np.random.default_rng(30)
    windows = [(s, (5 * rng.normal(size=180) + 3).tolist()) for s in range(1, 600 - 180, 90)]
    windows.append((5, [2.0] * 180))  # a constant window: z-scored to zeros, as Python does
    cases.append({"op": "stitch", "n": 600, "windows": windows})
    t = np.cumsum(1 / 30 + 0.004 * rng.normal(size=400))
    t = np.delete(t, np.arange(3, 400, 7))  # dropped frames
    cases.append({"op": "resample", "x": np.sin(2 * np.pi * 1.3 * t).tolist(), "t": t.tolist(), "fs": 29.5})
    resp = SETTINGS["respiration"]
    for fs, sec, rr_bpm, hr_bpm, seed in _RESP_CASES:
        cases.append({"op": "respiration", "x": _modulated_pulse(fs, sec, rr_bpm, hr_bpm, seed).tolist(),
                      "fs": fs, "preset": preset, "settings": resp})
    rgb = _rgb_trace(30.0, 20, 12, 66, 41)
    cases.append({"op": "pos", "rgb": rgb.T.tolist(), "fs": 30.0, "settings": resp})
    cases.append({"op": "pos-respiration", "rgb": rgb.T.tolist(), "fs": 30.0, "preset": preset,
                  "settings": resp})
    cases.append({"op": "detrend", "x": (_pulse(30.0, 20, 70, 42, drift=0.3) * 40).tolist(),
                  "lam": resp["pulse"]["detrend_lambda"]})
    for fs, hr_bpm, seed in ((30.0, 72, 43), (25.0, 150, 44)):
        x = signals.rates.preprocess(_pulse(fs, 20, hr_bpm, seed, noise=0.1), fs, PRESET, "hr")
        cases.append({"op": "peaks", "x": x.tolist(), "fs": fs, "max_hz": PRESET.hr_band[1],
                      "settings": resp})
    proc = subprocess.run([NODE, "tools/golden-run.mjs"], cwd=WEBAPP, input=json.dumps({"cases": cases}),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert len(out) == len(cases)
    return cases, out


def _by_op(golden, op):
    cases, out = golden
    return [(c, r) for c, r in zip(cases, out) if c["op"] == op]


def test_butterworth_design_equals_scipy(golden):
    worst = 0.0
    for c, js in _by_op(golden, "butter"):
        b, a = butter_coefficients(c["fs"], *c["band"], order=c["order"])
        scale = max(np.abs(b).max(), np.abs(a).max())
        err = max(np.abs(np.asarray(js["b"]) - b).max(), np.abs(np.asarray(js["a"]) - a).max()) / scale
        assert within(f"butter {c['band']} Hz order {c['order']}, relative", err, 1e-12), (c, err)
        worst = max(worst, err)
    print(f"\nbutter: max relative difference {worst:.1e} (bound 1e-12)")


def test_bandpass_equals_filtfilt(golden):
    from scipy.linalg import companion

    for c, js in _by_op(golden, "bandpass"):
        x = np.asarray(c["x"])
        ref = signals.bandpass(x, c["fs"], *c["band"], order=c["order"])
        _, a = butter_coefficients(c["fs"], *c["band"], order=c["order"])
        cond = np.linalg.cond(np.eye(a.size - 1) - companion(a).T)
        bound = 4 * cond * np.finfo(float).eps
        err = np.abs(np.asarray(js) - ref).max() / np.abs(x).max()
        assert within(f"bandpass {c['band']} Hz order {c['order']} fs {c['fs']}, of max|x|", err, bound), (
            c["fs"], c["band"], c["order"], err, bound)
        assert np.abs(ref).max() > 0.05 * np.abs(x).max()  # the filter passed something: not 0 vs 0
        print(f"\nbandpass {c['band']} Hz, order {c['order']}, fs {c['fs']}: difference {err:.1e} of max|x| "
              f"(bound {bound:.1e})", end="")


def test_rates_equal_python(golden):
    worst = 0.0
    truths = iter(_rate_cases())
    for c, js in _by_op(golden, "rate"):
        kind, _fs, _x, truth = next(truths)
        x = np.asarray(c["x"])
        ref = (signals.heart_rate if kind == "hr" else signals.respiratory_rate)(x, c["fs"], preset=PRESET)
        tol = _zoom_step_bpm(x.size, c["fs"])
        assert js is not None and within(f"{kind} rate fs {c['fs']} n {x.size}, bpm", abs(js - ref), tol), (
            kind, c["fs"], x.size, js, ref, tol)
        if truth is not None:  # the cases exercise the design, not noise: Python finds the truth
            assert abs(ref - truth) < 2.0, (kind, truth, ref)
        worst = max(worst, abs(js - ref))
    print(f"\nrates: max difference {worst:.1e} bpm (bound: one zoom step, >= 0.017 bpm)")


def test_quality_index_equals_python(golden):
    worst = 0.0
    for c, js in _by_op(golden, "quality"):
        ref = signals.signal_quality(np.asarray(c["x"]), c["fs"], kind=c["kind"], preset=PRESET)
        assert within(f"{c['kind']} quality fs {c['fs']}", abs(js - ref), 1e-9), (c["kind"], c["fs"], js, ref)
        worst = max(worst, abs(js - ref))
    values = [r for _, r in _by_op(golden, "quality")]
    assert min(values) < 0.3 < 0.8 < max(values)  # the cases span noise to clean signals
    print(f"\nquality: max difference {worst:.1e} (bound 1e-9)")


def test_stitching_equals_overlap_add(golden):
    (c, js), = _by_op(golden, "stitch")
    acc = OverlapAdd()
    for start, values in c["windows"]:
        acc.add(start, values)
    ref = acc.result(c["n"])[: len(js)]
    covered = np.isfinite(ref)
    assert covered.sum() > 400 and np.all(np.asarray(js)[~covered] == 0)
    err = np.abs(np.asarray(js)[covered] - ref[covered]).max()
    assert within("stitched waveform, abs", err, 1e-12 * np.nanmax(np.abs(ref)))


def test_resampling_equals_python(golden):
    (c, js), = _by_op(golden, "resample")
    ref = _uniform(np.asarray(c["t"]), np.asarray(c["x"]), c["fs"])
    assert len(js) == ref.size and within("resampled signal, abs", np.abs(np.asarray(js) - ref).max(), 1e-12)


def _rr_cond(fs):
    from scipy.linalg import companion

    _, a = butter_coefficients(fs, *PRESET.rr_band, order=PRESET.order)
    return np.linalg.cond(np.eye(a.size - 1) - companion(a).T)


def test_breathing_from_the_pulse_equals_python(golden):
    """The page's RR when a model runs: respiration_from_bvp + respiratory_rate, in Node and in Python."""
    eps = np.finfo(float).eps
    results = _by_op(golden, "respiration")
    assert len(results) == len(_RESP_CASES)
    for (fs, sec, rr_bpm, _hr, _seed), (c, js) in zip(_RESP_CASES, results):
        x = np.asarray(c["x"])
        try:
            ref = signals.respiration_from_bvp(x, fs, preset=PRESET)
        except InputError:
            assert "error" in js and "beats" in js["error"], js  # both refuse the 2 s clip
            continue
        rr_ref = signals.respiratory_rate(ref, fs, preset=PRESET)
        assert "error" not in js, js
        bound = 4 * _rr_cond(fs) * eps * 100
        err = np.abs(np.asarray(js["rsp"]) - ref).max()
        assert within(f"respiration from the pulse fs {fs} {sec} s, abs (z-scored)", err, bound), (fs, err)
        tol = _zoom_step_bpm(x.size, fs)
        assert within(f"RR from the pulse fs {fs} {sec} s, /min", abs(js["rr"] - rr_ref), tol), (
            fs, js["rr"], rr_ref, tol)
        assert abs(js["rr"] - rr_bpm) < 1.0, (fs, sec, rr_bpm, js["rr"])  # the truth, within 1 /min
        print(f"\nRR from the pulse, {sec} s at {fs} fps, truth {rr_bpm}: page {js['rr']:.4f}, Python "
              f"{rr_ref:.4f} /min (bound {tol:.3f}); waveform difference {err:.1e} (bound {bound:.1e})",
              end="")
    assert "error" in results[-1][1]  # the refused case was reached


def test_crop_pulse_equals_python(golden):
    """The pulse the page reads breathing from: POS (with its detrend and band-pass), and its peaks."""
    from mmrphys.signals.filters import detrend
    from mmrphys.signals.rates import detect_peaks
    from mmrphys.signals.unsupervised import get_method

    eps = np.finfo(float).eps
    (c, js), = _by_op(golden, "detrend")
    x, lam = np.asarray(c["x"]), c["lam"]
    bound = 4 * (1 + 16 * lam**2) * eps * np.abs(x).max()
    assert within("detrend, abs", np.abs(np.asarray(js) - detrend(x, lam)).max(), bound)

    (c, js), = _by_op(golden, "pos")
    rgb = np.asarray(c["rgb"]).T
    ref = get_method("pos")(rgb, c["fs"])
    from mmrphys.signals.unsupervised.pos import pos_raw

    scale = np.abs(pos_raw(rgb, c["fs"])).max()
    bound = 4 * (1 + 16 * lam**2) * eps * scale + 1e-12 * scale
    assert np.abs(ref).max() > 0.1 * scale  # a pulse came through
    assert within("POS pulse, abs", np.abs(np.asarray(js) - ref).max(), bound)

    (c, js), = _by_op(golden, "pos-respiration")
    rsp = signals.respiration_from_bvp(ref, c["fs"], preset=PRESET)
    rr_ref = signals.respiratory_rate(rsp, c["fs"], preset=PRESET)
    assert within("RR from the POS pulse, /min", abs(js["rr"] - rr_ref), _zoom_step_bpm(rsp.size, c["fs"]))
    assert abs(rr_ref - 12) < 1.0, rr_ref

    for c, js in _by_op(golden, "peaks"):
        ref = detect_peaks(np.asarray(c["x"]), c["fs"], max_hz=c["max_hz"], refine=True)
        assert len(js) == ref.size > 20
        assert within(f"peak positions fs {c['fs']}, samples", np.abs(np.asarray(js) - ref).max(), 1e-8)


def test_page_settings_come_from_the_python_package():
    from importlib import import_module

    from mmrphys.faces import FaceTracker, square_box
    from mmrphys.web import model

    pipeline = import_module("mmrphys.vitals.pipeline")
    estimators = import_module("mmrphys.vitals.estimators")
    s = SETTINGS
    assert (s["preset"]["hr_band"], s["preset"]["rr_band"]) == (list(PRESET.hr_band), list(PRESET.rr_band))
    assert s["preset"]["order"] == PRESET.order and s["preset"]["psd"] == PRESET.psd
    assert (s["windows"]["hr_s"], s["windows"]["rr_s"]) == (pipeline.ROLLING_HR_WINDOW_S,
                                                            pipeline.ROLLING_RR_WINDOW_S)
    assert (s["windows"]["hr_min_s"], s["windows"]["rr_min_s"]) == (pipeline.MIN_DURATION_S,
                                                                    pipeline.RR_MIN_DURATION_S)
    import inspect

    assert s["crop_scale"] == inspect.signature(square_box).parameters["scale"].default
    assert s["crop_scale"] == inspect.signature(FaceTracker).parameters["scale"].default
    # The page's window: the main job's for an MMRPhys model (its InputSpec), with its overlap.
    from mmrphys.models.mmrphys import MMRPhys

    assert model.DEFAULT_FRAMES == MMRPhys.window_frames
    assert model.STRIDE == round((MMRPhys.window_frames - 1) * (1 - estimators.MODEL_WINDOW_OVERLAP))
    assert model.WebModel(available=False).to_dict()["settings"] == s
    # Breathing: the main job's source and the constants of the computation it uses.
    from mmrphys.signals import rates, respiration

    pos = import_module("mmrphys.signals.unsupervised.pos")  # (also the name of a function)
    r = s["respiration"]
    assert r["rr_from"] == estimators.DEFAULT_RR_FROM == "pulse"
    assert r["pulse"] == {"window_s": pos.WINDOW_S, "band_hz": list(pos.BAND_HZ), "order": pos.BAND_ORDER,
                          "detrend_lambda": pos.DETREND_LAMBDA, "crop_border": estimators.PULSE_CROP_BORDER}
    assert (r["modulation"]["min_beats"], r["modulation"]["fusion_half_width_hz"]) == (
        respiration.MIN_BEATS, respiration.FUSION_HALF_WIDTH_HZ)
    assert r["modulation"]["peak_min_spacing"] == rates.PEAK_MIN_SPACING
    assert r["sources"]["pulse"] == pipeline.RSP_FROM_CROP_PULSE


def test_page_has_no_copies_of_the_settings():
    worker = (WEBAPP / "src" / "infer-worker.js").read_text()
    page = (WEBAPP / "src" / "main.js").read_text()
    numbers = lambda text: set(re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text))  # noqa: E731
    bands = {str(v) for v in (*PRESET.hr_band, *PRESET.rr_band, 0.54, 0.1)}
    assert not numbers(worker) & bands, numbers(worker) & bands
    assert str(SETTINGS["crop_scale"]) not in numbers(page)
    assert "settings.preset" in worker and "settings.crop_scale" in page


@needs_node
def test_dsp_js_unit_tests():
    proc = subprocess.run([NODE, "--test", "test/"], cwd=WEBAPP, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    passed = int(re.search(r"^# pass (\d+)", proc.stdout, re.M).group(1))
    assert re.search(r"^# fail 0$", proc.stdout, re.M) and passed > 0
