"""End to end in headless Chromium: a synthetic face clip with a known pulse as the fake webcam.

Checks that the page shows the heart rate within 3 bpm of the truth within 30 s of Start, that the
plots update, that the JSON and CSV exports download and re-analyse with ``mmrphys analyze session``,
and that the browser (page and workers) requested nothing from any host other than our server.
Skips when Chromium is absent (Debian: ``apt-get install chromium``). The screenshot and a JSON of the
run go to the test's own temporary folder (printed; pytest keeps the last three runs), never into the
repository. The browser is driven by ``_headless`` (beside this file).
"""

from __future__ import annotations

import json
import os
import time
from urllib.parse import urlsplit

import pytest
from _headless import Browser, fake_camera_flags, find_chromium, wait_for_app

TRUE_HR = 72.0  # 12 beats in the 10 s clip: the looped fake camera keeps the pulse phase continuous
TRUE_RR = 12.0

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if not path:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict:
    from mmrphys.synth import Effects, make_clip

    path = tmp_path_factory.mktemp("clip") / "face.y4m"
    # No lighting step: the fake camera loops the file, and a step would repeat every loop.
    return make_clip(path, hr_bpm=TRUE_HR, rr_bpm=TRUE_RR, duration_s=10.0, fps=30.0, size=(320, 240),
                     effects=Effects(light_change=0.0), seed=3)


def _serve(cache, model_arg=None):
    from mmrphys.web import WebServer, resolve_model

    model = resolve_model(model_arg, cache=cache / "web")
    server = WebServer("127.0.0.1", 0, model)
    server.start_background()
    return server, model


def test_live_page_end_to_end(chromium, clip, tmp_path, web_cache, record_property):
    from mmrphys.cli.main import main

    server, model = _serve(web_cache, os.environ.get("MMRPHYS_WEB_MODEL"))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    downloads = tmp_path / "downloads"
    try:
        with Browser(fake_camera_flags(clip["video"]), binary=chromium) as b:
            b.allow_downloads(downloads)
            b.navigate(server.url)
            st = wait_for_app(b, 20)
            if st is None:
                pytest.fail(f"page not ready: {b.evaluate('window.__mmrphys && window.__mmrphys.status()')}; "
                            f"console: {b.console[-10:]}")
            method = "model" if model.available else "pos"
            assert st["method"] == method, (st["method"], st["model"], b.console[-10:])

            b.evaluate("document.getElementById('start').click()")
            t0 = time.monotonic()
            hit, seen, plots = None, [], []
            while time.monotonic() - t0 < 30.0:
                time.sleep(1.0)
                st = b.evaluate("window.__mmrphys.status()")
                hr = (st["hr"] or {}).get("bpm")
                seen.append((round(time.monotonic() - t0, 1), None if hr is None else round(hr, 1)))
                plots.append(st["plotUpdates"])
                close = hr is not None and abs(hr - TRUE_HR) <= 3.0
                if close and len(seen) > 1 and seen[-2][1] is not None and abs(seen[-2][1] - TRUE_HR) <= 3.0:
                    hit = seen[-2][0]  # within 3 bpm at two polls in a row: first of the two counts
                    break
            b.screenshot(artifacts / "web_e2e.png")
            label = (f"{st['model']['label']} via {st['backend']}" if method == "model"
                     else "POS fallback (no model)")
            print(f"\nweb e2e: method={label}; HR after Start (s, bpm): {seen}; processing "
                  f"{st['processingFps']:.1f} fps; inference ms {[round(v) for v in st['inferMs']]}")
            record_property("web_method", label)
            record_property("web_seconds_to_hr", hit)
            print(f"web e2e: screenshot and run summary in {artifacts}")
            (artifacts / "web_e2e.json").write_text(json.dumps({
                "method": label, "true_hr_bpm": TRUE_HR, "seconds_to_hr_within_3_bpm": hit,
                "hr_after_start": seen, "processing_fps": st["processingFps"], "inference_ms": st["inferMs"],
            }, indent=1))
            assert hit is not None, f"HR never within 3 bpm of {TRUE_HR} in 30 s ({label}): {seen}"
            deadline = time.monotonic() + 20  # the plots redraw with every window (~3 s apart)
            while st["plotUpdates"] < 3 and time.monotonic() < deadline:
                time.sleep(0.5)
                st = b.evaluate("window.__mmrphys.status()")
            plots.append(st["plotUpdates"])
            assert st["frames"] > 200 and st["processingFps"] > 15, st
            assert plots[-1] >= 3 and plots[-1] > plots[0], f"plots did not update: {plots}"
            assert not st["warning"], st["warning"]

            # the breathing rate's window (20 s; the first rate after 15 s) -- also enough for the re-analysis
            rr_s = b.evaluate("window.__mmrphys.status().model.settings.windows.rr_s")
            while b.evaluate("window.__mmrphys.status().elapsed_s") < rr_s + 1.0:
                time.sleep(0.25)
            st = b.evaluate("window.__mmrphys.status()")
            rr_seen = [round(v, 1) for v in st["rrRaw"]]
            print(f"web e2e: breathing from the {st['rrSourceLabel']}: raw RR {rr_seen} (truth {TRUE_RR})")
            assert st["rrSource"] == ("pulse" if method == "model" else "bvp"), st["rrSource"]
            assert rr_seen and abs(st["rr"]["bpm"] - TRUE_RR) <= 3.0, (st["rr"], rr_seen)
            b.evaluate("document.getElementById('stop').click()")
            b.evaluate("document.getElementById('export-json').click()")
            exported_json = b.wait_download(downloads, ".json")
            b.evaluate("document.getElementById('export-csv').click()")
            exported_csv = b.wait_download(downloads, ".csv")

            # Every request of the page and its workers went to our server (blob:/data: are local).
            port = server.server_address[1]
            foreign = [r["url"] for r in b.requests
                       if urlsplit(r["url"]).scheme not in ("blob", "data")
                       and urlsplit(r["url"]).netloc != f"127.0.0.1:{port}"]
            assert not foreign, foreign
            urls = {urlsplit(r["url"]).path for r in b.requests}
            assert {"/", "/static/app.js", "/static/infer-worker.js", "/static/face-worker.js"} <= urls
            if method == "model":
                assert "/model.onnx" in urls and any(u.endswith(".wasm") for u in urls)
            errors = [c for c in b.console if "Content Security Policy" in c or c.startswith("exception")]
            assert not errors, errors
    finally:
        server.shutdown()
        server.server_close()

    session = json.loads(exported_json.read_text())
    assert session["format"] == "mmrphys-web-session"
    n = len(session["timestamps_s"])
    assert n == len(session["bvp"]) and n > 150
    assert session["timestamps_s"][-1] - session["timestamps_s"][0] > 9.0
    # breathing: read from the pulse's modulation (the main job's source), labelled; the model's RSP
    # output kept beside it where the served model has one (the default weights' runtime twin is the
    # pulse branch only)
    from mmrphys.web.model import page_settings, resolve_model

    sources = page_settings()["respiration"]["sources"]
    has_rsp = method == "model" and "rRSP" in resolve_model().outputs
    assert len(session["rsp"]) == n and (session["rsp_model"] is not None) == has_rsp
    assert session["metadata"]["respiration_source"] == sources["pulse" if method == "model" else "bvp"]
    assert session["rates"]["respiratory_rate_source"] == ("pulse" if method == "model" else "bvp")
    assert abs(session["rates"]["respiratory_rate_bpm"] - TRUE_RR) <= 3.0
    assert abs(session["rates"]["heart_rate_bpm"] - TRUE_HR) <= 3.0
    if method == "model":  # (POS adds to its last samples with every frame, so only the model case is exact)
        _last_rate_is_pythons(session)
    out = tmp_path / "report"
    args = ["analyze", "session", str(exported_json), "--out", str(out), "--json", str(tmp_path / "r.json")]
    assert main(args) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert abs(report["heart_rate_bpm"] - TRUE_HR) <= 3.0, report["heart_rate_bpm"]
    assert (out / f"{exported_json.stem}_analysis.png").stat().st_size > 10_000
    args = ["analyze", "session", str(exported_csv), "--out", str(out), "--json", str(tmp_path / "c.json")]
    assert main(args) == 0
    report_csv = json.loads((tmp_path / "c.json").read_text())
    assert abs(report_csv["heart_rate_bpm"] - report["heart_rate_bpm"]) < 0.5


def _last_rate_is_pythons(session: dict) -> None:
    """The page's last raw HR is mmrphys.signals.heart_rate on the same samples (in the real browser).

    The page computed it on the last ``hr_s`` seconds of the stitched BVP it had then, resampled at the
    frame rate of its last 60 frames; no window was added after it, so the export holds those samples.
    Tolerance: one step of the zoomed spectrum (tests/web/test_web_dsp.py derives it).
    """
    import numpy as np

    from mmrphys import signals
    from mmrphys.signals.spectrum import next_pow2
    from mmrphys.web.model import page_settings
    from mmrphys.web.session import _uniform

    settings = page_settings()
    t, x = np.asarray(session["timestamps_s"]), np.asarray(session["bvp"])
    last = session["rates"]["heart"][-1]
    end = int(np.searchsorted(t, last["t_s"], side="right"))
    recent = t[max(0, end - 60):end]
    fs = (recent.size - 1) / (recent[-1] - recent[0])
    n = min(end, int(round(settings["windows"]["hr_s"] * fs)))
    grid = _uniform(t[end - n:end], x[end - n:end], fs)
    expected = signals.heart_rate(grid, fs, preset=settings["preset"]["name"])
    step_bpm = 60 * 2 * fs / next_pow2(grid.size) / 200
    assert abs(last["raw_bpm"] - expected) <= step_bpm, (last, expected, step_bpm)


def test_video_file_source_is_processed_like_the_camera(chromium, tmp_path, web_cache):
    from mmrphys.synth import Effects, make_clip

    video = make_clip(tmp_path / "file.mp4", hr_bpm=TRUE_HR, rr_bpm=TRUE_RR, duration_s=6.0, fps=30.0,
                      size=(320, 240), effects=Effects(light_change=0.0), seed=4)["video"]
    server, _ = _serve(web_cache, os.environ.get("MMRPHYS_WEB_MODEL"))
    try:
        with Browser(["--autoplay-policy=no-user-gesture-required"], binary=chromium) as b:
            b.navigate(server.url)
            deadline = time.monotonic() + 15  # the camera list is filled at start-up: wait for it
            while not b.evaluate("window.__mmrphys.status().faceReady") and time.monotonic() < deadline:
                time.sleep(0.2)
            doc = b.send("DOM.getDocument", session=b.session)["root"]["nodeId"]
            node = b.send("DOM.querySelector", session=b.session, nodeId=doc, selector="#file")["nodeId"]
            b.send("DOM.setFileInputFiles", session=b.session, nodeId=node, files=[str(video)])
            b.evaluate("document.getElementById('file').dispatchEvent(new Event('change'));"
                       "document.getElementById('source').value = 'file';")
            b.evaluate("document.getElementById('start').click()")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                time.sleep(0.5)
                st = b.evaluate("window.__mmrphys.status()")
                if not st["running"] and st["frames"] > 0:
                    break  # the page stops by itself at the end of the file
            assert not st["running"], "the page did not stop at the end of the file"
            # Playback slows down when the page misses frames, but a 2-core machine shared with other
            # jobs still loses some (measured: 137 of 180 at load average 24, 153 at 9).
            assert st["frames"] >= 0.5 * 180, st["frames"]
            assert st["everFace"] and 2.0 < st["elapsed_s"] <= 6.0, st
            assert b.evaluate("document.getElementById('export-json').disabled") is False
    finally:
        server.shutdown()
        server.server_close()
