"""Faults injected into preprocessing worker processes, by injection (``preprocess(worker_init=...)``).

Workers are spawned, so a monkeypatch in the test process does not reach them: these functions run
first in each worker (``functools.partial`` makes them picklable with their arguments) and patch
that worker only. Also: helpers to list a process's descendants and tell whether any is alive
(from /proc; psutil is not a dependency).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path


def crash_after_chunks(recording_id: str, n_chunks: int = 1, code: int = 70) -> None:
    """The worker dies (``os._exit(code)``) right after writing ``n_chunks`` frame chunks of
    ``recording_id``: a worker killed mid-recording."""
    import mmrphys.data.cache as cache

    real = cache.save_npy
    written = []

    def save_npy(path, array):
        info = real(path, array)
        if path.parent.name.startswith(f".{recording_id}-") and path.name.startswith("rgb_"):
            written.append(path.name)
            if len(written) >= n_chunks:
                os._exit(code)
        return info

    cache.save_npy = save_npy


def slow_frames(delay_s: float = 0.05) -> None:
    """Every decoded frame takes ``delay_s`` longer: a run slow enough to be killed midway."""
    from mmrphys.data.base import Recording

    real = Recording.frames

    def frames(self, modality=None):
        for item in real(self, modality):
            time.sleep(delay_s)
            yield item

    Recording.frames = frames


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of ``pid``, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), fields[0]


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (children, grandchildren, ...)."""
    parents = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and (st := _stat(int(p.name))) is not None and st[1] != "Z":
            parents[int(p.name)] = st[0]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, pp in parents.items() if pp in frontier and c not in found}
        found |= frontier
    return found


def alive(pids) -> set[int]:
    """Those of ``pids`` still running (a zombie waiting for its reaper counts as gone)."""
    return {p for p in pids if (st := _stat(p)) is not None and st[1] != "Z"}


def wait_until(condition, timeout_s: float, step_s: float = 0.05) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(step_s)
    return bool(condition())


@contextlib.contextmanager
def read_only(path):
    """Make ``path`` (and everything below it) unwritable for this user, even root (``chattr +i``:
    root ignores permission bits); yields False when that is impossible here (the caller skips)."""
    path = Path(path)
    if os.geteuid() == 0:
        ok = shutil.which("chattr") and not subprocess.run(["chattr", "-R", "+i", str(path)]).returncode
        try:
            yield bool(ok)
        finally:
            if ok:
                subprocess.run(["chattr", "-R", "-i", str(path)], check=True)
        return
    items = [path, *path.rglob("*")] if path.is_dir() else [path]
    modes = {p: p.stat().st_mode for p in items}
    for p in reversed(items):
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield True
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def file_size_limit(n_bytes: int):
    """A ``preexec_fn`` for a child process whose files cannot grow past ``n_bytes`` (a full disk):
    writes fail with EFBIG instead of the default SIGXFSZ kill."""

    def limit():
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))

    return limit
