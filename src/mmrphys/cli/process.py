"""Process-wide settings of the ``mmrphys`` command, in one place (the library never changes them).

A verb that runs a model in torch (:func:`runs_torch`) calls :func:`configure_inference` once, before
any work:

* torch intra-op threads (``--threads``);
* glibc keeps freed memory for reuse (:func:`retain_freed_memory`).

``estimate`` calls :func:`configure_estimate` (OpenCV in one thread and silent, and the above with a
model), in its own process and in each batch worker.

Every verb: NumPy's BLAS computes in the calling thread (:func:`single_thread_blas`, called by
``mmrphys.cli.main.main`` before NumPy loads).

A verb that must finish its work when interrupted (``live`` writes its session) uses
:func:`interrupt_flag`: Ctrl-C sets a flag instead of raising at an arbitrary point; one that opens
a camera through OpenCV uses :func:`opencv_quiet` (OpenCV's own warnings would add lines to the
one-line error).

This module defines no verb (no ``add_parser``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import signal
import sys
import threading

_MALLOC_TUNED = False


def runs_torch(args) -> bool:
    """Whether ``estimate`` / ``live`` with these arguments runs a model in torch (a thermal model, or
    :func:`mmrphys.vitals.estimators.runs_torch`: the default weights run through onnxruntime)."""
    from mmrphys.vitals.estimate import DEFAULT_METHOD
    from mmrphys.vitals.estimators import DEFAULT_RR_FROM, method_name
    from mmrphys.vitals.estimators import runs_torch as _runs_torch

    if getattr(args, "thermal", None) is not None:
        return True
    method = method_name(args.method, DEFAULT_METHOD)
    return _runs_torch(method, args.weights, getattr(args, "backend", "auto"),
                       getattr(args, "rr_from", None) or DEFAULT_RR_FROM)


def single_thread_blas() -> None:
    """OpenBLAS (NumPy's and SciPy's BLAS) in the calling thread, unless ``OPENBLAS_NUM_THREADS`` is set.

    It otherwise starts a pool of one thread per core whose threads spin after each call: the main
    job's matrix products are a few hundred numbers each, too small for a pool to pay, and the spinning
    threads take CPU from the decoder thread. A minute of 640x480 video with the default model (2 cores,
    5 alternating whole processes each, load 0.8-1.1): median 3.96 -> 3.59 s wall, 4.97 -> 4.44 s CPU,
    the same numbers out. Takes effect only before NumPy is imported (the variable is read when
    OpenBLAS loads), so ``main`` calls it first; the batch's worker processes inherit it.
    """
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def configure_inference(threads: int) -> None:
    """Torch threads (at most 4 per CPU) and the allocator setting for a process that runs a model."""
    import os

    import torch

    torch.set_num_threads(min(max(1, int(threads)), max(1, os.cpu_count() or 1) * 4))
    retain_freed_memory()


def configure_estimate(threads: int, torch_model: bool) -> None:
    """The main job's process (and each batch worker's): OpenCV computes in the calling thread, and
    with a ``torch_model`` :func:`configure_inference` (a model run by onnxruntime gets its threads
    from its session: ``estimate(threads=)``).

    OpenCV otherwise splits every call over its own pool of one thread per core: the face detector
    and the three resizes of each 72x72 face crop are too small for that to pay, and the hand-over
    costs more than it saves. A minute of 640x480 video with the default model (2 cores, idle):
    3.7 -> 3.0 s of CPU and 2.7 -> 2.4 s of wall time, the same numbers out (the results do not
    depend on OpenCV's thread count). The decoding thread still runs beside the main one.

    OpenCV's own log lines are off: a damaged image frame makes its decoder write an ``[ERROR]`` line
    to stderr, beside the one line the main job writes about it (or the warning it gives).
    """
    import cv2

    cv2.setNumThreads(1)
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    if torch_model:
        configure_inference(threads)


def retain_freed_memory() -> bool:
    """Make glibc keep freed heap memory for reuse: no ``mmap`` per large block, no trimming.

    PyTorch's CPU allocator does not cache, and glibc serves every block above 32 MB with a fresh
    ``mmap`` whose pages fault in on first touch (~14k page faults, 10-30 ms, per 56 MB activation
    of MMRPhys-L). After this call such blocks come from the heap and are reused, as onnxruntime's
    arena does. Process-wide and not undoable (the process keeps its peak memory), hence here and
    not in the library. Returns False where glibc is not the allocator.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
    _MALLOC_TUNED = bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 1 << 30))
    return _MALLOC_TUNED


@contextlib.contextmanager
def interrupt_flag():
    """Within the block, SIGINT (Ctrl-C) sets the yielded :class:`threading.Event` instead of raising
    ``KeyboardInterrupt``, so the loop can stop between two frames and save its work; a second Ctrl-C
    raises ``KeyboardInterrupt`` as usual. The previous handler is restored on exit. Outside the
    main thread (where signal handlers cannot be set) the event is yielded and never set."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def opencv_quiet():
    """OpenCV's logging off within the block (it writes its own lines to stderr when a camera cannot
    be opened; the verb reports that itself in one line); the previous level is restored."""
    import cv2

    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:  # pragma: no cover - very old OpenCV
        yield
        return
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)
