"""What a fault-battery case is, and when its outcome is clean.

A case module ``benchmarks/battery/cases_<area>.py`` exposes ``cases(root) -> list[Case]``; ``root``
is a fresh temporary folder for the module's input files (made once, shared by its cases). Each case
then runs in a subprocess, in a fresh empty working directory of its own (``CaseRun.cwd``), as
``[sys.executable, "-m", "mmrphys", *argv]`` or, when ``python`` is set, ``[sys.executable, "-c",
python]``. A case that writes files should write them under a path of its own (under ``root`` or
relative to its working directory), so that cases can run in parallel (``--workers``).

A case is clean when (:func:`judge`):

- the exit code matches ``expect_exit`` (an exact code, or ``"nonzero"``);
- stderr holds no ``Traceback``;
- at most one line of stderr contains ``error`` (any case), and that line contains ``must_name``
  when it is set (a case with ``must_name`` needs that one error line);
- ``check(run)`` returns ``None`` (it returns the reason otherwise: a half-written file, a lost
  cache entry, ...);
- no process the case started is still running after it exited (checked by the runner).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CaseRun:
    """The outcome of running one case."""

    returncode: int
    stdout: str
    stderr: str
    root: Path  # the module's input folder (the ``root`` given to ``cases``)
    wall_s: float
    cwd: Path | None = None  # the case's own working directory
    timed_out: bool = False


@dataclass
class Case:
    name: str  # unique, e.g. "preprocess/unreadable-video"
    argv: list[str] = field(default_factory=list)  # run as [sys.executable, "-m", "mmrphys", *argv]
    python: str | None = None  # a Python snippet run with `python -c` (argv ignored then)
    expect_exit: int | str = "nonzero"  # exact exit code, or "nonzero"
    must_name: str | None = None  # substring the one stderr error line must contain
    timeout_s: float = 120
    check: Callable[[CaseRun], str | None] | None = None  # extra check; return a reason if NOT clean


def error_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that contain "error" (any case)."""
    return [line for line in stderr.splitlines() if "error" in line.lower()]


def judge(case: Case, run: CaseRun) -> str | None:
    """``None`` when ``run`` is a clean outcome of ``case``, else the first reason it is not."""
    if run.timed_out:
        return f"timed out after {case.timeout_s:g} s"
    if case.expect_exit == "nonzero":
        if run.returncode == 0:
            return "exit 0, expected a non-zero exit"
    elif run.returncode != int(case.expect_exit):
        return f"exit {run.returncode}, expected {case.expect_exit}"
    if "Traceback" in run.stderr:
        last = [ln for ln in run.stderr.strip().splitlines() if ln.strip()][-1:]
        return f"traceback on stderr ({last[0].strip()[:120] if last else ''})"
    errors = error_lines(run.stderr)
    if len(errors) > 1:
        return f"{len(errors)} error lines on stderr (first: {errors[0].strip()[:120]})"
    if case.must_name is not None:
        if not errors:
            return f"no error line naming {case.must_name!r} on stderr"
        if case.must_name not in errors[0]:
            return f"error line does not name {case.must_name!r}: {errors[0].strip()[:160]}"
    if case.check is not None:
        try:
            reason = case.check(run)
        except Exception as err:  # a check that crashes is a failed check, reported as such
            return f"check raised {type(err).__name__}: {err}"
        if reason:
            return str(reason)
    return None


# --- small helpers for checks -------------------------------------------------------------------


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder`` (sorted), or [] when it does not exist."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def nothing_written(folder: Path) -> Callable[[CaseRun], str | None]:
    """A check: ``folder`` holds no file after the run (no partial output, no temp file)."""

    def check(run: CaseRun) -> str | None:
        left = files_under(folder)
        return f"left {len(left)} file(s) in {folder.name}/: {left[0].name}" if left else None

    return check


def unchanged(folder: Path) -> Callable[[CaseRun], str | None]:
    """A check: ``folder``'s files after the run are exactly those before it (same bytes, none new).

    Call it when the case is built (it records the files then).
    """
    before = {f: f.read_bytes() for f in files_under(folder)}

    def check(run: CaseRun) -> str | None:
        new = [f for f in files_under(folder) if f not in before]
        if new:
            return f"wrote {len(new)} file(s): {new[0].name}"
        changed = [f for f, data in before.items() if not f.is_file() or f.read_bytes() != data]
        return f"changed or removed {changed[0].name}" if changed else None

    return check


def all_of(*checks: Callable[[CaseRun], str | None] | None) -> Callable[[CaseRun], str | None]:
    """A check that runs ``checks`` in order and returns the first reason."""

    def check(run: CaseRun) -> str | None:
        for c in checks:
            if c is not None:
                reason = c(run)
                if reason:
                    return reason
        return None

    return check
