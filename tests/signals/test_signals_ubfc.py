"""POS and CHROM on the 8 real UBFC-rPPG subjects (skipped when ../shared/data is absent).

Trace: OpenCV Haar face box (re-detected every 30 frames), skin-masked mean RGB inside it. HR from the whole
clip with the ``toolbox`` preset (refined); ground truth = FFT peak of the contact PPG (row 1) with the
same preset. The decoded traces are cached in pytest's cache dir, so only the first run decodes
(~30–60 s on one busy core).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmrphys.faces.traces import mean_rgb
from mmrphys.signals import heart_rate
from mmrphys.signals.unsupervised import METHODS

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

DETECT_EVERY = 30


def _detector():
    """Largest face by OpenCV's default frontal Haar cascade with its standard settings (the box this test
    is specified with). mmrphys.faces.FaceDetector tunes detection differently (downscaling, histogram
    equalisation, alt2 fallback); on these heavily compressed clips POS/CHROM errors depend on the exact box
    (measured with FaceDetector("haar"): POS 5/8 and CHROM 5/8 within 5 bpm, vs 6/8 and 7/8 here), so the
    test pins the plain cascade rather than follow another stage's tuning."""
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def detect(img):
        faces = cascade.detectMultiScale(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), 1.1, 5, minSize=(60, 60))
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda b: b[2] * b[3])
        return (x, y, x + w, y + h)

    return detect


def _trace(video) -> tuple[float, np.ndarray]:
    import av

    detect = _detector()
    box, rows = None, []
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        for i, frame in enumerate(container.decode(stream)):
            img = frame.to_ndarray(format="rgb24")
            if i % DETECT_EVERY == 0:
                box = detect(img) or box
            rows.append(mean_rgb(img, box, skin=True))
    return fps, np.asarray(rows)


@pytest.fixture(scope="session")
def ubfc_traces(ubfc_mini, request, tmp_path_factory):
    # traces kept between runs in pytest's cache folder; a fresh folder when the cache is switched off
    cache_plugin = getattr(request.config, "cache", None)
    cache = (cache_plugin.mkdir("mmrphys_signals_ubfc") if cache_plugin is not None
             else tmp_path_factory.mktemp("mmrphys_signals_ubfc"))
    out = {}
    for subject in sorted(p for p in ubfc_mini.iterdir() if (p / "vid.mp4").is_file()):
        video = subject / "vid.mp4"
        stamp = f"{video.stat().st_size}-{int(video.stat().st_mtime)}-cv2haar-v2"
        path = cache / f"{subject.name}.npz"
        if path.is_file() and str(np.load(path)["stamp"]) == stamp:
            data = np.load(path)
            fps, rgb = float(data["fps"]), data["rgb"]
        else:
            fps, rgb = _trace(video)
            np.savez(path, fps=fps, rgb=rgb, stamp=stamp)
        ppg = np.loadtxt(subject / "ground_truth.txt")[0]
        n = min(len(rgb), len(ppg))  # the video may carry one extra frame
        out[subject.name] = (fps, rgb[:n], ppg[:n])
    return out


@pytest.mark.parametrize("method", ["pos", "chrom"])
def test_pos_chrom_within_5_bpm_on_most_ubfc_subjects(ubfc_traces, method, record_property):
    errors = {}
    for name, (fps, rgb, ppg) in ubfc_traces.items():
        gt = heart_rate(ppg, fps, preset="toolbox")
        est = heart_rate(METHODS[method](rgb, fps), fps, preset="toolbox")
        errors[name] = round(est - gt, 2)
    record_property(f"{method}_errors_bpm", json.dumps(errors))
    print(f"\n{method} HR error per subject (bpm): {errors}")
    assert len(errors) == 8
    assert sum(abs(e) <= 5.0 for e in errors.values()) >= 5, errors
