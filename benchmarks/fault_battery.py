"""Fault battery: run every bad-input / fault case in a subprocess and count the clean outcomes.

Each ``benchmarks/battery/cases_<area>.py`` module gives ``cases(root)`` (see ``battery/case.py`` for
the Case fields and what "clean" means). Every case runs in its own subprocess, in a fresh working
directory, under a timeout; its process group is killed on timeout, and a case that leaves a process
running after it exited is not clean. One line is printed per case, then "N of M clean"; the exit
status is 0 only when every case is clean.

examples:
  python benchmarks/fault_battery.py                      # every case, one worker
  python benchmarks/fault_battery.py --workers 2          # two cases at a time
  python benchmarks/fault_battery.py --only 'estimate/*'  # a glob (or a plain substring) on case names
  python benchmarks/fault_battery.py --area api --list    # only cases_api.py; list names, run nothing
  python benchmarks/fault_battery.py --only fps -v        # show stderr of the cases that are not clean
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from battery.case import Case, CaseRun, judge  # noqa: E402


def discover(areas: list[str] | None = None) -> list[str]:
    """Names of the case modules (``cases_<area>``), sorted; only ``areas`` when given."""
    names = sorted(p.stem for p in (HERE / "battery").glob("cases_*.py"))
    if areas:
        names = [n for n in names if n[len("cases_"):] in areas]
    return names


def child_env() -> dict[str, str]:
    """The environment of each case: this checkout's sources first, one OpenMP thread."""
    env = dict(os.environ)
    paths = [str(REPO / "src"), str(HERE)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.pop("MPLBACKEND", None)
    return env


def _session_members(sid: int) -> list[int]:
    """PIDs of live processes in session ``sid`` (Linux /proc; [] elsewhere)."""
    out = []
    proc = Path("/proc")
    if not proc.is_dir():
        return out
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        if len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == sid:
            out.append(int(d.name))
    return out


def run_case(case: Case, root: Path, work: Path) -> tuple[CaseRun, str | None]:
    """Run ``case`` in a fresh directory under ``work``; returns the run and the reason it is not clean."""
    cwd = Path(tempfile.mkdtemp(prefix="case-", dir=work))
    logs = Path(tempfile.mkdtemp(prefix="log-", dir=work))
    cmd = [sys.executable, "-c", case.python] if case.python is not None else \
        [sys.executable, "-m", "mmrphys", *[str(a) for a in case.argv]]
    t0 = time.perf_counter()
    timed_out = False
    with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=child_env(), start_new_session=True)
        try:
            rc = proc.wait(timeout=case.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)
            rc = proc.wait()
    wall = time.perf_counter() - t0
    left = []
    deadline = time.monotonic() + 2.0  # processes that are exiting get a moment
    while True:
        left = _session_members(proc.pid)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if left:
        _kill_group(proc.pid)
    run = CaseRun(returncode=rc, stdout=(logs / "stdout").read_text(errors="replace"),
                  stderr=(logs / "stderr").read_text(errors="replace"), root=root, wall_s=wall, cwd=cwd,
                  timed_out=timed_out)
    reason = judge(case, run)
    if reason is None and left:
        reason = f"left {len(left)} process(es) running after exit (pids {left[:5]})"
    return run, reason


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def load_cases(modules: list[str], base: Path) -> tuple[list[tuple[Case, Path]], list[tuple[str, str]]]:
    """(case, module root) for every case, and (pseudo-case name, reason) for modules that failed."""
    found: list[tuple[Case, Path]] = []
    broken: list[tuple[str, str]] = []
    names: set[str] = set()
    for mod in modules:
        area = mod[len("cases_"):]
        root = base / f"root-{area}"
        root.mkdir()
        try:
            module = importlib.import_module(f"battery.{mod}")
            cases = list(module.cases(root))
        except Exception as err:  # the module's setup failed: counted as one case that is not clean
            broken.append((f"{area}/(setup)", f"cases() raised {type(err).__name__}: {err}"))
            continue
        for case in cases:
            if case.name in names:
                broken.append((case.name, "duplicate case name"))
                continue
            names.add(case.name)
            found.append((case, root))
    return found, broken


def _matches(name: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def main(argv: list[str] | None = None) -> int:
    # cases send SIGINT to the processes they start: never let them inherit an ignored SIGINT (a shell
    # without job control starts background commands so); a caught signal is reset to default on exec
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=None, metavar="PATTERN",
                    help="run the cases whose name matches this glob, or contains this text")
    ap.add_argument("--area", action="append", default=None,
                    help="load only battery/cases_AREA.py (repeatable; default: every module)")
    ap.add_argument("--workers", type=int, default=1, help="cases run at a time (default 1)")
    ap.add_argument("--list", action="store_true", help="list the case names and exit")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print stderr of the cases that are not clean")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders (printed at the end)")
    ap.add_argument("--report", default=None, metavar="FILE", help="write every outcome to this JSON file")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error(f"--workers must be at least 1, got {args.workers}")

    t_start = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="mmrphys-battery-"))
    try:
        modules = discover(args.area)
        if not modules:
            print("no case modules found", file=sys.stderr)
            return 2
        cases, broken = load_cases(modules, base)
        cases = [(c, r) for c, r in cases if _matches(c.name, args.only)]
        broken = [(n, why) for n, why in broken if _matches(n, args.only)]
        t_setup = time.perf_counter() - t_start
        if args.list:
            for case, _ in cases:
                print(case.name)
            for name, why in broken:
                print(f"{name}  NOT CLEAN: {why}")
            print(f"{len(cases)} cases in {len(modules)} modules (inputs made in {t_setup:.1f} s)")
            return 0
        work = base / "runs"
        work.mkdir()
        results: list[dict] = []
        lock = threading.Lock()
        width = max([len(c.name) for c, _ in cases] + [len(n) for n, _ in broken] + [10])

        def report(name: str, reason: str | None, wall: float, run: CaseRun | None) -> None:
            with lock:
                status = "CLEAN    " if reason is None else "NOT CLEAN"
                tail = "" if reason is None else f"  {reason}"
                print(f"{status}  {name:<{width}}  {wall:6.1f} s{tail}", flush=True)
                if reason is not None and args.verbose and run is not None:
                    for line in run.stderr.strip().splitlines()[-15:]:
                        print(f"    | {line}")
                results.append({"name": name, "clean": reason is None, "reason": reason,
                                "wall_s": round(wall, 2),
                                "returncode": None if run is None else run.returncode})

        for name, why in broken:
            report(name, why, 0.0, None)
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            futures = {pool.submit(run_case, case, root, work): case for case, root in cases}
            for fut in as_completed(futures):
                case = futures[fut]
                try:
                    run, reason = fut.result()
                except Exception as err:  # the runner itself failed on this case
                    report(case.name, f"runner failed: {type(err).__name__}: {err}", 0.0, None)
                else:
                    report(case.name, reason, run.wall_s, run)
        total = len(results)
        clean = sum(r["clean"] for r in results)
        wall = time.perf_counter() - t_start
        try:
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        except OSError:
            load = "n/a"
        print(f"{clean} of {total} clean in {wall:.0f} s (inputs {t_setup:.0f} s, {args.workers} worker(s), "
              f"load average {load})")
        if args.report:
            Path(args.report).write_text(json.dumps({"clean": clean, "total": total, "wall_s": round(wall, 1),
                                                     "cases": sorted(results, key=lambda r: r["name"])},
                                                    indent=1))
        return 0 if clean == total and total > 0 else 1
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
