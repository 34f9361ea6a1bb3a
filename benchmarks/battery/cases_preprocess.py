"""Fault battery, ``mmrphys preprocess``: bad videos and labels among good ones, damaged caches,
unwritable outputs, a full disk, killed runs, bad arguments.

Inputs are tiny datasets in their exact on-disk layouts (UBFC-rPPG, PURE, generic), written by
``tests/data/datafixtures.py``: 4 s videos (120 frames at 30 fps) so that a label/video length
mismatch is outside the 1 s tolerance. Every "among good ones" case checks that the good recordings
are cached and the bad one is recorded as failed; every damaged-cache and killed-run case checks
that the rerun redoes what was damaged and ends with a cache identical (SHA-256 of every file) to
one made without faults; killed runs check that no worker outlives the main process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

from battery.case import Case, CaseRun

REPO = Path(__file__).resolve().parents[2]
N_FRAMES = 120  # 4 s at 30 fps
SUBJECTS = (1, 2, 3)
FAST = ["--size", "8", "--chunk", "16", "--no-crop", "--quiet"]
AREA = "preprocess"
TEST_DATA = REPO / "tests" / "data"  # datafixtures.py (the inputs) and faults.py (injected faults)


def _fixtures():
    spec = importlib.util.spec_from_file_location("datafixtures", TEST_DATA / "datafixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- what runs inside the cases' processes --------------------------------------------------------


def _faults():
    """tests/data/faults.py, importable by name here and in the spawned workers (they get sys.path)."""
    if str(TEST_DATA) not in sys.path:
        sys.path.insert(0, str(TEST_DATA))
    import faults

    return faults


def ubfc_argv(data, out, workers: int | str = 0, *extra: str) -> list[str]:
    """``preprocess`` of the UBFC-rPPG set ``data`` into ``out`` at the battery's small settings."""
    argv = ["preprocess", "--dataset", "ubfc-rppg", "--root", str(data), "--out", str(out), *FAST]
    return argv + [*extra, "--workers", str(workers)]


def cli(*argv: str, worker_init=None) -> int:
    """``mmrphys`` in this process (optionally with a worker initializer injected into preprocess)."""
    import mmrphys.data.cache as cache
    from mmrphys.cli.main import main

    if worker_init is not None:
        cache.preprocess = partial(cache.preprocess, worker_init=worker_init)
    return main([str(a) for a in argv])


def crash_run(data: str, recording_id: str) -> int:
    """preprocess with 2 workers; the one that takes ``recording_id`` dies at its first chunk."""
    faults = _faults()
    return cli(*ubfc_argv(data, "out", 2), worker_init=partial(faults.crash_after_chunks, recording_id, 1))


def digests(out: Path) -> dict[str, str]:
    """SHA-256 of every cached array file under ``out``, by ``recording/file`` (folder keys left out)."""
    return {
        f"{p.parent.name.rsplit('-', 1)[0]}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(out).glob("*/*/*.npy"))
    }


SLOW_RUN = """
import sys
from functools import partial
from battery.cases_preprocess import _faults, cli
faults = _faults()
if sys.argv[-1] == "0":  # --workers 0: frames slowed in this process
    faults.slow_frames(0.03)
    sys.exit(cli(*sys.argv[1:]))
sys.exit(cli(*sys.argv[1:], worker_init=partial(faults.slow_frames, 0.03)))
"""


def kill_then_resume(data: str, sig_name: str, workers: int) -> int:
    """Start a slowed preprocess, kill it with ``sig_name`` once recordings are in flight, require
    every worker gone within 5 s, then resume (in this process). Exit status: the resume's."""
    faults = _faults()
    out = Path("out")
    p = subprocess.Popen(
        [sys.executable, "-c", SLOW_RUN, *ubfc_argv(data, out, workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    faults.wait_until(lambda: len(list(out.glob("*/.subject*.tmp-*"))) >= max(workers, 1), 60)
    kids = faults.descendants(p.pid)
    p.send_signal(getattr(signal, sig_name))
    err = p.communicate(timeout=30)[1].decode(errors="replace")
    if not faults.wait_until(lambda: not faults.alive(kids), 5):
        left = sorted(faults.alive(kids))
        print(
            f"mmrphys battery: error: {len(left)} worker(s) outlived the killed run: {left}", file=sys.stderr
        )
        return 3
    if "Traceback" in err:
        print(f"mmrphys battery: error: the killed run printed a traceback: {err[-200:]}", file=sys.stderr)
        return 3
    print(f"killed run: exit {p.returncode}, {len(kids)} child process(es) all gone")
    return cli(*ubfc_argv(data, out, 0))


def damage_then_resume(cache_src: str, data: str, how: str) -> int:
    """Copy the finished cache ``cache_src``, damage it ``how``, rerun preprocess (exit: the rerun's)."""
    out = Path("out")
    cache = Path(shutil.copytree(cache_src, out / Path(cache_src).name))
    rec = sorted(cache.glob("subject2-*"))[0]
    target = {
        "chunk-truncated": rec / "rgb_001.npy",
        "chunk-deleted": rec / "rgb_002.npy",
        "chunk-byte-flipped": rec / "rgb_003.npy",
        "labels-byte-flipped": rec / "labels_000.npy",
        "labels-truncated": rec / "labels_004.npy",
        "times-deleted": rec / "times.npy",
        "meta-deleted": rec / "meta.json",
        "meta-not-json": rec / "meta.json",
        "meta-edited": rec / "meta.json",
        "manifest-truncated": cache / "manifest.json",
        "manifest-deleted": cache / "manifest.json",
        "manifest-not-json": cache / "manifest.json",
        "stale-temp-folder": cache / ".subject2-00000000.tmp-12345",
        "folder-emptied": rec,
    }[how]
    if how.endswith("deleted"):
        target.unlink()
    elif how.endswith("truncated"):
        target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
    elif how.endswith("byte-flipped"):
        data_ = bytearray(target.read_bytes())
        data_[-3] ^= 0x5A
        target.write_bytes(bytes(data_))
    elif how.endswith("not-json"):
        target.write_text("{ this is not json")
    elif how == "meta-edited":
        target.write_text(target.read_text().replace('"n_frames": 120', '"n_frames": 121'))
    elif how == "stale-temp-folder":
        target.mkdir()
        (target / "rgb_000.npy").write_bytes(b"partial")
    elif how == "folder-emptied":
        for f in target.iterdir():
            f.unlink()
    return cli(*ubfc_argv(data, out, 0))


def read_only_run(target: str, data: str, make: str | None = None) -> int:
    """Make ``target`` unwritable (chmod, or ``chattr +i`` for root, who ignores permission bits),
    run preprocess into it, restore it. Exit: the run's (3 when it cannot be made read-only)."""
    if make:
        shutil.copytree(make, Path(target) / Path(make).name)
    with _faults().read_only(target) as ok:
        if not ok:
            print("mmrphys battery: error: cannot make a folder read-only here", file=sys.stderr)
            return 3
        return cli(*ubfc_argv(data, target, 0))


def full_disk_run(data: str, limit_bytes: int) -> int:
    """preprocess in a child whose files cannot grow past ``limit_bytes`` (writes fail with EFBIG, as
    on a full disk); its output is passed on. Exit: the child's."""
    r = subprocess.run(
        [sys.executable, "-m", "mmrphys", *ubfc_argv(data, "out", 2, "--size", "32")],
        preexec_fn=_faults().file_size_limit(limit_bytes),
        capture_output=True,
        text=True,
    )
    sys.stderr.write(r.stderr)
    sys.stdout.write(r.stdout)
    return r.returncode


# --- checks (run by the battery runner after each case) -------------------------------------------


def _manifest(out: Path) -> dict | None:
    found = sorted(Path(out).glob("*/manifest.json"))
    return json.loads(found[0].read_text()) if found else None


def statuses(out_rel: str, want: dict[str, str], in_cwd: bool = False):
    """A check: the manifest under ``out_rel`` lists exactly ``want`` (id -> done/failed), every done
    recording's folder is there, and no temporary folder is left."""

    def check(run: CaseRun) -> str | None:
        out = (run.cwd if in_cwd else run.root) / out_rel
        man = _manifest(out)
        if man is None:
            return f"no manifest under {out_rel}"
        got = {k: v["status"] for k, v in man["recordings"].items()}
        if got != want:
            return f"manifest statuses {got}, expected {want}"
        cache = next(Path(out).glob("*/manifest.json")).parent
        missing = [
            k
            for k, v in man["recordings"].items()
            if v["status"] == "done" and not (cache / v["dir"]).is_dir()
        ]
        if missing:
            return f"done but no folder: {missing}"
        stale = list(cache.glob(".*.tmp-*"))
        return f"temporary folder left: {stale[0].name}" if stale else None

    return check


def identical_to(reference: Path, must_say: str | None = None):
    """A check: the cache under the case's ``out`` equals the reference (SHA-256 of every file)."""

    def check(run: CaseRun) -> str | None:
        ref = json.loads(reference.read_text())
        got = digests(run.cwd / "out")
        if got != ref:
            diff = sorted(set(got.items()) ^ set(ref.items()))
            return f"cache differs from an uninterrupted run ({len(diff)} files, first {diff[0][0]})"
        if must_say and must_say not in run.stdout:
            return f"stdout does not say {must_say!r}"
        return None

    return check


def nothing_cached(out_rel: str):
    def check(run: CaseRun) -> str | None:
        out = run.cwd / out_rel
        left = [p for p in out.rglob("*") if p.is_file() and p.name not in (".lock", "manifest.json")]
        return f"left {len(left)} file(s), e.g. {left[0].name}" if left else None

    return check


# --- inputs and cases -----------------------------------------------------------------------------


def cases(root: Path) -> list[Case]:
    import numpy as np

    fx = _fixtures()
    ubfc = fx.ubfc2(root / "ubfc", subjects=SUBJECTS, n=N_FRAMES)
    pure = fx.pure(root / "pure", recs=("01-01", "02-01"), n=N_FRAMES)
    generic = fx.generic(root / "generic", n=N_FRAMES)

    # the reference: the UBFC set preprocessed without faults (what every resume must equal), by
    # this checkout's code as the cases run it (the runner process itself may import another copy)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    argv = ubfc_argv(ubfc, root / "reference", 0)
    subprocess.run([sys.executable, "-m", "mmrphys", *argv], env=env, check=True, capture_output=True)
    (ref_cache,) = (root / "reference").iterdir()
    reference = root / "reference.json"
    reference.write_text(json.dumps(digests(root / "reference")))

    def copy(src: Path, name: str) -> Path:
        dst = root / "inputs" / name
        shutil.copytree(src, dst)
        return dst

    out: list[Case] = []
    good3 = {f"subject{s}": "done" for s in SUBJECTS}

    def among_good(name, src, mutate, bad_id, must_name, dataset="ubfc-rppg", want=None, expect=1):
        d = copy(src, name)
        mutate(d)
        o = root / "outs" / name
        want = want or ({**good3, bad_id: "failed"} if dataset == "ubfc-rppg" else None)
        out.append(
            Case(
                f"{AREA}/{name}",
                [
                    "preprocess",
                    "--dataset",
                    dataset,
                    "--root",
                    str(d),
                    "--out",
                    str(o),
                    *FAST,
                    "--workers",
                    "0",
                ],
                expect_exit=expect,
                must_name=must_name,
                check=statuses(f"outs/{name}", want),
            )
        )

    # videos among good ones (UBFC-rPPG)
    s2 = "subject2"
    v2 = lambda d: d / s2 / "vid.avi"  # noqa: E731
    gt2 = lambda d: d / s2 / "ground_truth.txt"  # noqa: E731
    among_good("ubfc-video-random-bytes", ubfc, lambda d: v2(d).write_bytes(os.urandom(4000)), s2, "vid.avi")
    among_good("ubfc-video-empty", ubfc, lambda d: v2(d).write_bytes(b""), s2, "vid.avi")
    among_good("ubfc-video-text", ubfc, lambda d: v2(d).write_text("not a video\n" * 50), s2, "vid.avi")
    among_good(
        "ubfc-video-truncated",  # half the frames decode: the label then lasts twice the video
        ubfc,
        lambda d: v2(d).write_bytes(v2(d).read_bytes()[: v2(d).stat().st_size // 2]),
        s2,
        "ground_truth.txt",
    )
    among_good("ubfc-video-is-a-folder", ubfc, lambda d: (v2(d).unlink(), v2(d).mkdir()), s2, "missing video")

    # ground truth among good ones (UBFC-rPPG)
    def cut(d, keep):
        np.savetxt(gt2(d), np.loadtxt(gt2(d))[:, :keep], fmt="%.6e")

    among_good("ubfc-gt-missing", ubfc, lambda d: gt2(d).unlink(), s2, "ground_truth.txt")
    among_good("ubfc-gt-empty", ubfc, lambda d: gt2(d).write_text(""), s2, "ground_truth.txt")
    among_good("ubfc-gt-short", ubfc, lambda d: cut(d, 16), s2, "lasts 0.53 s (16 samples)")
    among_good("ubfc-gt-nan", ubfc, lambda d: gt2(d).write_text("0.1 0.2 nan 0.3\n"), s2, "non-finite")
    among_good("ubfc-gt-text", ubfc, lambda d: gt2(d).write_text("a\nb c d\n"), s2, "ground_truth.txt")
    among_good("ubfc-gt-binary", ubfc, lambda d: gt2(d).write_bytes(os.urandom(600)), s2, "ground_truth.txt")
    among_good(
        "ubfc-gt-three-times-too-long",
        ubfc,
        lambda d: np.savetxt(gt2(d), np.tile(np.loadtxt(gt2(d))[:2], 3), fmt="%.6e"),
        s2,
        "lasts 12.00 s (360 samples)",
    )

    # PURE (time alignment): JSON and png problems
    pure_want = {"01-01": "done", "02-01": "failed"}
    js = lambda d: d / "02-01" / "02-01.json"  # noqa: E731

    def pure_edit(d, fn):
        data = json.loads(js(d).read_text())
        fn(data)
        js(d).write_text(json.dumps(data))

    def first_png(d):
        return sorted((d / "02-01" / "02-01").glob("*.png"))[5]

    pure_cases = [
        ("pure-json-missing", lambda d: js(d).unlink(), "02-01.json"),
        ("pure-json-not-json", lambda d: js(d).write_text("{broken"), "02-01.json"),
        ("pure-json-empty", lambda d: js(d).write_text(""), "02-01.json"),
        (
            "pure-labels-stop-early",
            lambda d: pure_edit(d, lambda j: j.update({"/FullPackage": j["/FullPackage"][:60]})),
            "without label",
        ),
        (
            "pure-labels-nan",
            lambda d: pure_edit(
                d, lambda j: [e["Value"].update(waveform=float("nan")) for e in j["/FullPackage"][50:70]]
            ),
            "NaN",
        ),
        (
            "pure-labels-not-numbers",
            lambda d: pure_edit(d, lambda j: j["/FullPackage"][3]["Value"].update(waveform="x")),
            "02-01",
        ),
        ("pure-frames-folder-missing", lambda d: shutil.rmtree(d / "02-01" / "02-01"), "frame folder"),
        ("pure-png-corrupt", lambda d: first_png(d).write_text("not a png"), ".png"),
        (
            "pure-image-timestamps-short",
            lambda d: pure_edit(d, lambda j: j.update({"/Image": j["/Image"][:-5]})),
            "02-01.json",
        ),
    ]
    for name, mutate, must in pure_cases:
        among_good(name, pure, mutate, "02-01", must, dataset="pure", want=pure_want)

    # generic: CSV problems
    gen_want = {"alice_rest": "done", "bob_walk": "failed"}
    csv = lambda d: d / "bob" / "walk.csv"  # noqa: E731

    def rows(d, fn):
        lines = csv(d).read_text().splitlines()
        csv(d).write_text("\n".join(fn(lines)) + "\n")

    gen_cases = [
        ("generic-csv-missing", lambda d: csv(d).unlink(), "walk.csv"),
        ("generic-csv-empty", lambda d: csv(d).write_text(""), "walk.csv"),
        ("generic-csv-text", lambda d: csv(d).write_text("time_s,bvp\nfoo,bar\n"), "walk.csv"),
        ("generic-csv-ends-early", lambda d: rows(d, lambda L: L[:60]), "without label"),
        (
            "generic-csv-gap",
            lambda d: rows(
                d, lambda L: L[:50] + [f"{L[i].split(',')[0]},," for i in range(50, 200)] + L[200:]
            ),
            "walk.csv",
        ),
        (
            "generic-csv-no-time-with-a-hole",  # no time column: a missing value would shift the rest
            lambda d: csv(d).write_text("bvp,rsp\n0.1,1\n,2\n0.3,3\n"),
            "walk.csv",
        ),
        ("generic-csv-no-signal-column", lambda d: csv(d).write_text("time_s,temp\n0,1\n1,2\n"), "walk.csv"),
        (
            "generic-csv-time-not-increasing",
            lambda d: rows(d, lambda L: L[:10] + [L[5]] + L[10:]),
            "walk.csv",
        ),
        (
            "generic-video-unreadable",
            lambda d: (d / "bob" / "walk.avi").write_bytes(os.urandom(3000)),
            "walk.avi",
        ),
    ]
    for name, mutate, must in gen_cases:
        among_good(name, generic, mutate, "bob_walk", must, dataset="generic", want=gen_want)

    # a worker that dies on one recording, among good ones (injected: nothing in shipped code)
    out.append(
        Case(
            f"{AREA}/worker-dies-on-one-recording",
            python="import sys; from battery.cases_preprocess import crash_run; "
            f"sys.exit(crash_run({str(ubfc)!r}, 'subject2'))",
            expect_exit=1,
            must_name="subject2: worker process died",
            check=statuses("out", {**good3, s2: "failed"}, in_cwd=True),
        )
    )

    # a finished cache, damaged, then resumed: redone and identical
    for how in (
        "chunk-truncated",
        "chunk-deleted",
        "chunk-byte-flipped",
        "labels-byte-flipped",
        "labels-truncated",
        "times-deleted",
        "meta-deleted",
        "meta-not-json",
        "meta-edited",
        "manifest-truncated",
        "manifest-deleted",
        "manifest-not-json",
        "stale-temp-folder",
        "folder-emptied",
    ):
        redone = "redone subject2" if how.startswith(("chunk", "labels", "times", "meta", "folder")) else None
        out.append(
            Case(
                f"{AREA}/cache-{how}-then-resume",
                python="import sys; from battery.cases_preprocess import damage_then_resume; "
                f"sys.exit(damage_then_resume({str(ref_cache)!r}, {str(ubfc)!r}, {how!r}))",
                expect_exit=0,
                check=identical_to(reference, redone),
            )
        )
    out.append(
        Case(
            f"{AREA}/training-refuses-flipped-labels",
            python="import shutil, sys\n"
            "from pathlib import Path\n"
            "from mmrphys.data.torch_dataset import CacheDataset\n"
            "from mmrphys.errors import InputError\n"
            f"c = Path(shutil.copytree({str(ref_cache)!r}, 'c'))\n"
            "p = sorted(c.glob('subject3-*/labels_002.npy'))[0]; b = bytearray(p.read_bytes()); b[-2] ^= 1\n"
            "p.write_bytes(bytes(b))\n"
            "try:\n    CacheDataset(c, tasks=('bvp',))\n"
            "except InputError as err:\n    print(f'error: {err}', file=sys.stderr); sys.exit(2)\n",
            expect_exit=2,
            must_name="labels_002.npy differs",
        )
    )

    # unwritable outputs, a full disk
    (root / "a-file").write_text("x")
    out.append(
        Case(
            f"{AREA}/out-is-a-file",
            ubfc_argv(ubfc, root / "a-file"),
            expect_exit=2,
            must_name="Not a directory",
        )
    )
    out.append(
        Case(
            f"{AREA}/out-below-a-file",
            ubfc_argv(ubfc, root / "a-file" / "cache"),
            expect_exit=2,
            must_name="a-file",
        )
    )
    ro = "import sys; from battery.cases_preprocess import read_only_run; sys.exit(read_only_run("
    out.append(
        Case(
            f"{AREA}/out-read-only",
            python=f"import os; os.mkdir('ro'); {ro}'ro', {str(ubfc)!r}))",
            expect_exit=2,
            must_name="cannot create the cache folder",
            check=nothing_cached("ro"),
        )
    )
    out.append(
        Case(
            f"{AREA}/finished-cache-read-only",
            python=f"{ro}'ro', {str(ubfc)!r}, {str(ref_cache)!r}))",
            expect_exit=0,
        )
    )
    partial_src = root / "partial-cache"
    shutil.copytree(ref_cache, partial_src / ref_cache.name)
    shutil.rmtree(next((partial_src / ref_cache.name).glob("subject3-*")))
    out.append(
        Case(
            f"{AREA}/unfinished-cache-read-only",
            python=f"{ro}'ro', {str(ubfc)!r}, {str(partial_src / ref_cache.name)!r}))",
            expect_exit=2,
            must_name="read-only and 1 recording(s) need processing",
        )
    )
    out.append(
        Case(
            f"{AREA}/disk-full",
            python="import sys; from battery.cases_preprocess import full_disk_run; "
            f"sys.exit(full_disk_run({str(ubfc)!r}, 20000))",
            expect_exit=2,
            must_name="File too large",
            check=nothing_cached("out"),
        )
    )

    # killed runs: no orphan, and the resume equals an uninterrupted run
    for sig, workers in (("SIGKILL", 2), ("SIGTERM", 2), ("SIGINT", 2), ("SIGKILL", 0), ("SIGTERM", 0)):
        out.append(
            Case(
                f"{AREA}/{sig.lower()}-mid-run-workers{workers}-then-resume",
                python="import sys; from battery.cases_preprocess import kill_then_resume; "
                f"sys.exit(kill_then_resume({str(ubfc)!r}, {sig!r}, {workers}))",
                expect_exit=0,
                check=identical_to(reference),
            )
        )

    # bad arguments
    base = [
        "preprocess",
        "--dataset",
        "ubfc-rppg",
        "--root",
        str(ubfc),
        "--out",
        str(root / "never"),
        "--quiet",
    ]
    bad_args = [
        ("workers-negative", base + ["--workers", "-1"], "--workers"),
        ("workers-not-a-number", base + ["--workers", "two"], "--workers"),
        ("workers-float", base + ["--workers", "1.5"], "--workers"),
        ("size-zero", base + ["--size", "0"], "settings"),
        ("chunk-negative", base + ["--chunk", "-4"], "settings"),
        (
            "unknown-dataset",
            ["preprocess", "--dataset", "ubfc-rrpg", "--root", str(ubfc), "--out", str(root / "never")],
            "ubfc-rrpg",
        ),
        (
            "missing-data-path",
            [
                "preprocess",
                "--dataset",
                "ubfc-rppg",
                "--root",
                str(root / "nowhere"),
                "--out",
                str(root / "never"),
            ],
            "nowhere",
        ),
        (
            "data-path-is-a-file",
            [
                "preprocess",
                "--dataset",
                "ubfc-rppg",
                "--root",
                str(root / "a-file"),
                "--out",
                str(root / "never"),
            ],
            "a-file",
        ),
        (
            "data-folder-empty",
            [
                "preprocess",
                "--dataset",
                "ubfc-rppg",
                "--root",
                str(root / "outs"),
                "--out",
                str(root / "never"),
            ],
            "no ubfc-rppg recordings",
        ),
        ("dataset-not-given", ["preprocess", "--out", str(root / "never")], "dataset"),
        ("dataset-given-twice-differently", ["preprocess", "pure", str(ubfc), *base[1:]], "contradicts"),
        ("unknown-loader-option", base + ["--option", "colour=red"], "colour"),
        ("option-without-value", base + ["--option", "fps"], "KEY=VALUE"),
    ]
    for name, argv, must in bad_args:
        never = root / "never" / name  # a refused command must not create its --out
        argv = [str(never) if a == str(root / "never") else a for a in argv]
        out.append(Case(f"{AREA}/{name}", argv, expect_exit=2, must_name=must, check=_not_created(never)))
    out.append(
        Case(
            f"{AREA}/workers-far-more-than-recordings",
            [
                "preprocess",
                "ubfc-rppg",
                str(ubfc),
                "--out",
                str(root / "outs" / "many"),
                *FAST,
                "--workers",
                "1000",
            ],
            expect_exit=0,
            check=statuses("outs/many", good3),
        )
    )
    return out


def _not_created(path: Path):
    def check(run: CaseRun) -> str | None:
        return f"created {path.name}/ for a refused command" if path.exists() else None

    return check
