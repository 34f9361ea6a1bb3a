"""Windows of T+1 frames with overlap, overlap-add stitching, streaming resampling to a uniform rate.

A model maps T+1 frames to T outputs (it takes the first difference of its input), so output ``j``
of a window starting at frame ``s`` belongs to frame ``s + 1 + j``. Frame 0 of a segment has no
output of its own and takes its neighbour's value.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from mmrphys.errors import InputError


def window_starts(n_frames: int, win: int, stride: int) -> list[int]:
    """Start indices of windows of ``win`` frames every ``stride`` frames, the last one aligned with
    the end so every frame is covered; ``[]`` when ``n_frames < win``."""
    if win < 2 or stride < 1:
        raise InputError(f"window of {win} frames every {stride}: need win >= 2 and stride >= 1")
    if n_frames < win:
        return []
    starts = list(range(0, n_frames - win + 1, stride))
    if starts[-1] != n_frames - win:
        starts.append(n_frames - win)
    return starts


def _taper(n: int) -> np.ndarray:
    # Hann taper with a floor: window edges (where the model has least context) count less, but
    # never zero so a frame covered by one window alone still gets its value.
    if n < 3:
        return np.ones(n)
    return 0.1 + 0.9 * np.hanning(n)


class OverlapAdd:
    """Accumulates window outputs ``(T,)`` placed at frame offsets into one continuous waveform.

    Each window's output is z-scored (model output scale is arbitrary per window) and weighted by
    a Hann taper. ``result(n)`` returns the stitched (n,) waveform with NaN where no window reached.
    """

    def __init__(self, normalize: bool = True):
        self.normalize = normalize
        self._sum = np.zeros(0)
        self._w = np.zeros(0)

    def _grow(self, n: int) -> None:
        if n > self._sum.size:
            extra = max(n - self._sum.size, self._sum.size // 2, 256)
            self._sum = np.concatenate([self._sum, np.zeros(extra)])
            self._w = np.concatenate([self._w, np.zeros(extra)])

    def add(self, offset: int, values) -> None:
        """Add one window output whose first value belongs to frame ``offset``."""
        y = np.asarray(values, dtype=float).ravel()
        if self.normalize:
            sd = y.std()
            y = (y - y.mean()) / sd if sd > 0 else y - y.mean()
        w = _taper(y.size)
        self._grow(offset + y.size)
        self._sum[offset: offset + y.size] += w * y
        self._w[offset: offset + y.size] += w

    def result(self, n: int) -> np.ndarray:
        self._grow(n)
        s, w = self._sum[:n], self._w[:n]
        out = np.full(n, np.nan)
        np.divide(s, w, out=out, where=w > 0)
        return out


def overlap_add(outputs, starts, n_frames: int, normalize: bool = True) -> np.ndarray:
    """Stitch per-window outputs (each (T,), window ``k`` starting at frame ``starts[k]`` of T+1
    frames) into an (n_frames,) waveform; the first frame copies its neighbour."""
    acc = OverlapAdd(normalize=normalize)
    for s, y in zip(starts, outputs):
        acc.add(int(s) + 1, y)
    out = acc.result(n_frames)
    if n_frames > 1 and np.isnan(out[0]) and not np.isnan(out[1]):
        out[0] = out[1]
    return out


class WindowStream:
    """Collects frames one at a time and yields complete windows of ``win`` frames every ``stride``.

    ``push(frame)`` returns a list of ``(start, window (win, ...))`` ready now; ``flush()`` returns the
    end-aligned last window when the stream's end is not covered yet (and the stream has at least
    ``min_win`` frames; a short stream gives one window of all its frames, rounded down so that
    ``len - 1`` is a multiple of ``multiple``). Only ``win`` frames are ever held.
    """

    def __init__(self, win: int, stride: int, min_win: int | None = None, multiple: int = 1):
        if win < 2 or not 1 <= stride <= win:
            raise InputError(f"window of {win} frames every {stride}: need win >= 2 and 1 <= stride <= win")
        self.win, self.stride, self.multiple = int(win), int(stride), max(1, int(multiple))
        self.min_win = int(min_win or win)
        self._buf: deque = deque(maxlen=self.win)
        self.count = 0  # frames pushed
        self._next_start = 0
        self._last_end = 0  # frames covered by emitted windows

    def push(self, frame) -> list[tuple[int, np.ndarray]]:
        self._buf.append(frame)
        self.count += 1
        start = self.count - self.win
        if start >= 0 and start == self._next_start:
            self._next_start += self.stride
            self._last_end = self.count
            return [(start, np.stack(self._buf))]
        return []

    def flush(self) -> list[tuple[int, np.ndarray]]:
        if self.count == 0 or self._last_end == self.count:
            return []
        if self.count >= self.win:
            return [(self.count - self.win, np.stack(self._buf))]
        n = self.count
        n = (n - 1) // self.multiple * self.multiple + 1
        if n < self.min_win or n < 2:
            return []
        frames = list(self._buf)[-n:]
        return [(self.count - n, np.stack(frames))]


class StreamResampler:
    """Resamples a stream of ``(item, t)`` (items: arrays of one shape) onto the grid ``t0 + k/fs``.

    ``push(item, t)`` returns the grid samples that fall in ``(t_prev, t]`` as ``(k, t_k, item_k)``
    with ``item_k`` linearly interpolated between the two neighbouring inputs (exact copies when the
    input already lies on the grid, as for constant-rate video at the target rate). Gaps longer than
    ``max_gap_s`` are not interpolated across: their grid samples are skipped.
    """

    def __init__(self, fs: float, t0: float = 0.0, max_gap_s: float = 0.5, dtype=np.float32):
        self.fs, self.t0, self.max_gap_s, self.dtype = float(fs), float(t0), float(max_gap_s), dtype
        self._prev = None
        self._prev_t = None
        self._k = 0  # next grid index

    def reset(self) -> None:
        """Forget the previous input (e.g. after a gap): the next input starts a fresh run."""
        self._prev = None
        self._prev_t = None

    def push(self, item, t: float) -> list[tuple[int, float, np.ndarray]]:
        out = []
        eps = 1e-6 / self.fs
        tk = self.t0 + self._k / self.fs
        if self._prev is None:
            # first input of a run: skip grid points before it, emit it if it lies on the grid
            while tk < t - eps:
                self._k += 1
                tk = self.t0 + self._k / self.fs
            if abs(tk - t) <= eps:
                out.append((self._k, tk, np.asarray(item, dtype=self.dtype)))
                self._k += 1
        else:
            span = t - self._prev_t
            while tk <= t + eps:
                if span > self.max_gap_s:
                    if abs(tk - t) <= eps:  # across a gap only a grid point on the new input counts
                        out.append((self._k, tk, np.asarray(item, dtype=self.dtype)))
                else:
                    a = 0.0 if span <= 0 else min(1.0, max(0.0, (tk - self._prev_t) / span))
                    if a <= 1e-6:
                        val = np.asarray(self._prev, dtype=self.dtype)
                    elif a >= 1 - 1e-6:
                        val = np.asarray(item, dtype=self.dtype)
                    else:
                        val = ((1 - a) * np.asarray(self._prev, dtype=np.float32)
                               + a * np.asarray(item, dtype=np.float32)).astype(self.dtype)
                    out.append((self._k, tk, val))
                self._k += 1
                tk = self.t0 + self._k / self.fs
        self._prev, self._prev_t = item, t
        return out
