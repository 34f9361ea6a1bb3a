"""Many files: input discovery, unique result names, estimate_many (ok / failed / skipped / redone),
worker crashes, and the summary table."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest

import mmrphys
from mmrphys.errors import ConfigError, InputError, WeightsError
from mmrphys.synth import make_clip
from mmrphys.vitals import batch
from mmrphys.vitals.batch import SUMMARY_COLUMNS, find_inputs, read_summary, result_complete, unique_stems

HRS = (66.0, 78.0, 92.0)
HR_TOL_BPM = 3.0  # 8 s synthetic clips: POS lands within ~1 bpm (tests/vitals/test_estimate.py: 2 at 30 s)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """3 good 8 s clips, all named clip.mp4 in their own folder, and one broken file."""
    root = tmp_path_factory.mktemp("batch_in")
    for i, hr in enumerate(HRS):
        make_clip(root / f"s{i + 1}" / "clip.mp4", hr_bpm=hr, rr_bpm=14, duration_s=8, fps=30,
                  size=(160, 120), seed=i + 1)
    (root / "broken.mp4").write_bytes(b"this is not a video" * 50)
    return root


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


# ----------------------------------------------------------------------------- names and inputs
def test_unique_stems_from_paths_suffixes_and_case(tmp_path):
    a, b = tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4"
    assert unique_stems([a, b, tmp_path / "other.avi"]) == ["a_clip", "b_clip", "other"]
    deep = [tmp_path / "x" / "p" / "s1" / "rest.mp4", tmp_path / "x" / "q" / "s1" / "rest.mp4"]
    assert unique_stems(deep) == ["p_s1_rest", "q_s1_rest"]
    assert unique_stems([tmp_path / "clip.mp4", tmp_path / "clip.avi"]) == ["clip_mp4", "clip_avi"]
    # case-insensitive file systems: Clip and clip would overwrite each other
    assert unique_stems([tmp_path / "m" / "Clip.mp4", tmp_path / "n" / "clip.mp4"]) == ["m_Clip", "n_clip"]
    # a derived name that is another input's own stem gets -2; the result is deterministic
    paths = [tmp_path / "a_clip.mp4", a, b]
    assert unique_stems(paths) == ["a_clip", "a_clip-2", "b_clip"] == unique_stems(list(paths))
    assert unique_stems([a, a.with_name("z.mp4")]) == ["clip", "z"]


def test_find_inputs_recurses_sorts_dedupes_and_names_empty_folders(tmp_path):
    root = tmp_path / "rec"
    for rel in ("s10/v.mp4", "s2/v.MOV", "s2/notes.txt", "s2/.hidden.mp4", ".cache/x.mp4", "top.avi"):
        _touch(root / rel)
    found = find_inputs([root, root / "top.avi", tmp_path / "missing.mp4"])
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    # natural order (s2 before s10), text/hidden files skipped, top.avi once, a missing file kept (it
    # fails with its own reason when run)
    assert rel == ["rec/s2/v.MOV", "rec/s10/v.mp4", "rec/top.avi", "missing.mp4"]
    # the same file under another name (a symbolic or hard link) is one input
    os.symlink(root / "top.avi", tmp_path / "alias.avi")
    assert find_inputs([root / "top.avi", tmp_path / "alias.avi"]) == [root / "top.avi"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no video files"):
        find_inputs([root, tmp_path / "empty"])
    with pytest.raises(InputError, match="no input videos"):
        find_inputs([])


# ----------------------------------------------------------------------------- estimate_many
def _by_stem(items):
    return {i.stem: i for i in items}


def test_estimate_many_results_summary_skip_force_and_half_written(inputs, tmp_path):
    out = tmp_path / "res"
    seen = []
    items = mmrphys.estimate_many([inputs], out_dir=out, workers=2, progress=False, on_item=seen.append)
    assert [i.stem for i in items] == ["broken", "s1_clip", "s2_clip", "s3_clip"]
    assert sorted(i.stem for i in seen) == sorted(i.stem for i in items)  # each reported once
    st = _by_stem(items)
    assert st["broken"].status == "failed" and "broken.mp4" in st["broken"].error
    assert "not a readable video" in st["broken"].error and st["broken"].result is None
    for k, hr in enumerate(HRS):
        item = st[f"s{k + 1}_clip"]
        assert item.status == "ok" and item.error is None
        assert abs(item.result.heart_rate_bpm - hr) <= HR_TOL_BPM
        assert item.result.report_frame is None  # the report is written; the image is not kept
        for suffix in (".json", "_waveforms.csv", "_report.png"):
            assert (out / f"s{k + 1}_clip{suffix}").is_file()
    rows = read_summary(out / "summary.csv")
    assert tuple(rows[0]) == SUMMARY_COLUMNS and len(rows) == 4
    by = {r["stem"]: r for r in rows}
    assert by["broken"]["status"] == "failed" and "not a readable video" in by["broken"]["error"]
    assert by["broken"]["heart_rate_bpm"] == ""
    for k, hr in enumerate(HRS):
        r = by[f"s{k + 1}_clip"]
        assert r["status"] == "ok" and r["method"] == "mmrphys" and r["error"] == ""
        assert abs(float(r["heart_rate_bpm"]) - hr) <= HR_TOL_BPM
        assert float(r["duration_s"]) == pytest.approx(8.0, abs=0.05)
        assert 0.0 <= float(r["hr_confidence"]) <= 1.0
        assert Path(r["input"]) == inputs / f"s{k + 1}" / "clip.mp4"
    assert not [f for f in os.listdir(out) if f.startswith(".")]  # no temporary file left

    # rerun: the three done inputs are skipped (files untouched), the broken one is tried again
    stamp = {f: f.stat().st_mtime_ns for f in out.iterdir()}
    again = _by_stem(mmrphys.estimate_many([inputs], out_dir=out, workers=1, progress=False))
    assert [again[s].status for s in ("s1_clip", "s2_clip", "s3_clip")] == ["skipped"] * 3
    assert again["broken"].status == "failed"
    assert all(stamp[f] == f.stat().st_mtime_ns for f in out.iterdir() if f.name != "summary.csv")
    skipped_rows = {r["stem"]: r for r in read_summary(out / "summary.csv")}
    assert skipped_rows["s2_clip"]["heart_rate_bpm"] == by["s2_clip"]["heart_rate_bpm"]  # read from its JSON

    # a half-written set (the report missing) and another method are redone; --force redoes all
    (out / "s2_clip_report.png").unlink()
    assert result_complete(out, "s2_clip", inputs / "s2" / "clip.mp4") is None
    good = [inputs / f"s{k}" / "clip.mp4" for k in (1, 2, 3)]
    third = _by_stem(mmrphys.estimate_many(good, out_dir=out, progress=False))
    assert [third[s].status for s in ("s1_clip", "s2_clip", "s3_clip")] == ["skipped", "ok", "skipped"]
    chrom = _by_stem(mmrphys.estimate_many(good[:1] + good[2:], out_dir=out, method="chrom", progress=False))
    assert chrom["s1_clip"].status == "ok" and chrom["s1_clip"].result.method == "chrom"
    forced = mmrphys.estimate_many(good[:2], out_dir=out, method="chrom", force=True, progress=False)
    assert [i.status for i in forced] == ["ok"] * 2


def test_results_of_another_source_are_not_taken_as_done(inputs, tmp_path):
    out = tmp_path / "res"
    first = inputs / "s1" / "clip.mp4"
    assert mmrphys.estimate_many([first], out_dir=out, progress=False)[0].stem == "clip"
    data = result_complete(out, "clip", first)
    assert data is not None and data["source"] == str(first)
    # another file that gets the same name: the old results are redone, not reported as its own
    other = inputs / "s2" / "clip.mp4"
    assert result_complete(out, "clip", other) is None
    item = mmrphys.estimate_many([other], out_dir=out, progress=False)[0]
    assert item.status == "ok" and json.loads((out / "clip.json").read_text())["source"] == str(other)


def test_without_out_dir_nothing_is_written_and_bad_options_stop_first(inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    items = mmrphys.estimate_many([inputs / "s1"], progress=False)
    assert items[0].status == "ok" and items[0].result.report_frame is not None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="unknown method"):
        mmrphys.estimate_many([inputs], out_dir=tmp_path / "r", method="nope")
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        mmrphys.estimate_many([inputs], out_dir=tmp_path / "r", workers=0)
    assert not (tmp_path / "r").exists()


def test_the_numbers_are_the_same_with_any_number_of_workers(inputs, tmp_path):
    """One worker (this process: a decoding thread, one estimator built for all inputs) and two (worker
    processes: each builds its estimator once and decodes inline) give each file exactly the numbers
    of a plain ``mmrphys.estimate`` (fresh estimator, decoding thread): the same computation on the
    same frames on the same machine, so equal bit for bit, not only within a tolerance (torch runs
    with this process's thread count in the workers too)."""
    import torch

    good = [inputs / f"s{k}" / "clip.mp4" for k in (1, 2, 3)]
    same_threads = functools.partial(torch.set_num_threads, torch.get_num_threads())
    one = mmrphys.estimate_many(good, workers=1, progress=False)
    two = mmrphys.estimate_many(good, workers=2, progress=False, worker_init=same_threads)
    assert [i.status for i in one + two] == ["ok"] * 6
    for path, a, b in zip(good, one, two):
        ref = mmrphys.estimate(path, progress=False)
        want = json.dumps(ref.to_dict())  # every number of the JSON contract, waveforms included
        for got in (a.result, b.result):
            assert got.source == str(path) and got.model["windows"] == ref.model["windows"] > 0
            np.testing.assert_array_equal(got.bvp, ref.bvp)
            np.testing.assert_array_equal(got.rsp, ref.rsp)
            assert json.dumps(got.to_dict()) == want
        # decoding in the calling thread (what the workers do) gives the same result in this process
        inline = mmrphys.estimate(path, progress=False, decode_thread=False)
        assert json.dumps(inline.to_dict()) == want


def test_with_workers_a_bad_method_or_weights_stops_the_batch_before_any_input(inputs, tmp_path):
    """The workers check the method and weights (this process does not load the model): the same
    one-line error as with one worker, and nothing written."""
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint" * 10)
    good = [inputs / f"s{k}" / "clip.mp4" for k in (1, 2)]
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        mmrphys.estimate_many(good, out_dir=tmp_path / "r", method="nope", workers=2)
    with pytest.raises(WeightsError, match="bad.pth") as err:
        mmrphys.estimate_many(good, out_dir=tmp_path / "r", weights=bad, workers=2)
    with pytest.raises(WeightsError) as err1:
        mmrphys.estimate_many(good, out_dir=tmp_path / "r", weights=bad, workers=1)
    assert str(err.value) == str(err1.value) and "\n" not in str(err.value)
    assert not (tmp_path / "r").exists()


def _crash_on(name: str) -> None:
    """Pool initializer for the test below: the worker process dies on the input called ``name``."""
    run_one = batch._run_one

    def dying(path, stem, out_dir, options):
        if Path(path).name == name:
            os._exit(3)
        return run_one(path, stem, out_dir, options)

    batch._run_one = dying


@pytest.mark.slow  # 4 worker processes start (spawn imports the package each time): ~10 s idle
def test_a_worker_that_dies_fails_its_input_only(inputs, tmp_path):
    crash = tmp_path / "crash.mp4"
    crash.write_bytes((inputs / "s1" / "clip.mp4").read_bytes())
    paths = [crash, inputs / "s2" / "clip.mp4", inputs / "s3" / "clip.mp4"]
    items = _by_stem(mmrphys.estimate_many(paths, out_dir=tmp_path / "res", workers=2, progress=False,
                                           worker_init=functools.partial(_crash_on, "crash.mp4")))
    assert items["crash"].status == "failed"
    assert "worker process died (exit code 3)" in items["crash"].error and "2 times" in items["crash"].error
    assert items["s2_clip"].status == items["s3_clip"].status == "ok"
    rows = {r["stem"]: r["status"] for r in read_summary(tmp_path / "res" / "summary.csv")}
    assert rows == {"crash": "failed", "s2_clip": "ok", "s3_clip": "ok"}
