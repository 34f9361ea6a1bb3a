"""A process pool for preprocessing that knows which task a dead worker held and never leaves orphans.

``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one worker dies (every task in
flight is lost and suspect), cannot tell which task killed it, and its workers outlive a main
process that is killed. Here each worker holds one task at a time over its own pipe, so a dead
worker costs exactly its task (reported by :func:`run_pool` with how it died); every worker dies
with the main process: ``PR_SET_PDEATHSIG`` (Linux) plus a thread that watches the parent's pid
(every platform); workers ignore SIGINT (a Ctrl-C reaches the whole process group: the main process
decides and stops them), and any exception that leaves :func:`run_pool` terminates them.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from multiprocessing.connection import wait

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_INTERVAL_S = 0.5


def die_with_parent(parent_pid: int, interval_s: float = WATCH_INTERVAL_S) -> None:
    """Make this (worker) process end when ``parent_pid`` does, however that ends (even SIGKILL)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog below remains
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid, interval_s), daemon=True).start()


def _watch_parent(parent_pid: int, interval_s: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval_s)
    os._exit(1)  # reparented: the main process is gone


def _picklable(err: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")


def _worker_main(conn, parent_pid: int, fn, args: tuple, init) -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # this is our own process: the parent handles Ctrl-C
    init_error = None
    if init is not None:
        try:
            init()
        except Exception as err:  # reported with every task rather than as a traceback on stderr
            init_error = RuntimeError(f"worker initializer failed: {type(err).__name__}: {err}")
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            if init_error is not None:
                raise init_error
            msg = (True, fn(task, *args))
        except Exception as err:
            msg = (False, _picklable(err))
        try:
            conn.send(msg)
        except OSError:
            return


class _Worker:
    def __init__(self, ctx, fn, args, init):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_worker_main,
            args=(child, os.getpid(), fn, args, init),
            daemon=True,
            name="mmrphys-worker",
        )
        self.proc.start()
        child.close()
        self.task = None

    def give(self, task) -> None:
        self.task = task
        try:
            self.conn.send(task)
        except OSError:  # already dead: its sentinel says so at the next wait
            pass

    def receive(self):
        """The worker's answer ``(ok, value)``, or None when it died without one."""
        try:
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        return None

    def how_it_died(self) -> str:
        self.proc.join(5)
        code = self.proc.exitcode
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"


def _stop(workers: list[_Worker], graceful: bool) -> None:
    for w in workers:
        if graceful and w.task is None:
            try:
                w.conn.send(None)
            except OSError:
                pass
        else:
            w.proc.terminate()
    deadline = time.monotonic() + 5
    for w in workers:
        w.proc.join(max(0.0, deadline - time.monotonic()))
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join(1)
        w.conn.close()


def run_pool(
    tasks: Iterable,
    n_workers: int,
    fn: Callable,
    args: tuple = (),
    on_done: Callable | None = None,
    init: Callable[[], None] | None = None,
) -> list[tuple[object, str]]:
    """Run ``fn(task, *args)`` for each task in at most ``n_workers`` spawned processes.

    ``on_done(task, ok, value)`` is called in this process as each task ends (``value``: the result,
    or the exception when ``ok`` is False); an exception it raises stops the run (workers are
    terminated). ``init()`` runs once in each worker first (e.g. to register a loader). Returns
    ``(task, how)`` for each task whose worker died holding it (its other tasks are not affected).
    ``fn``, ``args``, ``init`` and the tasks must be picklable.
    """
    ctx = mp.get_context("spawn")
    queue = deque(tasks)
    workers: list[_Worker] = []
    lost: list[tuple[object, str]] = []
    clean = False
    try:
        while queue or any(w.task is not None for w in workers):
            for w in workers:
                if w.task is None and queue:
                    w.give(queue.popleft())
            while queue and len(workers) < n_workers:
                workers.append(_Worker(ctx, fn, args, init))
                workers[-1].give(queue.popleft())
            busy = [w for w in workers if w.task is not None]
            ready = set(wait([x for w in busy for x in (w.conn, w.proc.sentinel)]))
            for w in busy:
                if w.conn not in ready and w.proc.sentinel not in ready:
                    continue
                task, w.task = w.task, None
                msg = w.receive()
                if msg is None:
                    lost.append((task, w.how_it_died()))
                    w.conn.close()
                    workers.remove(w)
                elif on_done is not None:
                    on_done(task, *msg)
        clean = True
    finally:
        _stop(workers, graceful=clean)
    return lost
