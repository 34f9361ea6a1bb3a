"""Records of the numeric checks: every derived bound, the error measured against it, the margin.

Tests route their tolerance checks through :func:`within` (``assert within(quantity, error, bound)``: the
same comparison, ``error <= bound``, plus a record) or call :func:`record` beside an assertion. The
records accumulate in :data:`RECORDS` for the whole session; tests/conftest.py tags each with the running
test's node id and, with ``pytest --numeric-margins FILE``, writes them as a markdown table.

``required`` is the margin the test asserts on top of the bound (e.g. ``check_within(...) >= 20``): the
check fails when margin < required, so the headroom a CPU with other kernels can eat is margin/required.
"""

from __future__ import annotations

import datetime
import math
import statistics
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Record:
    test: str
    quantity: str
    measured: float
    bound: float
    required: float = 1.0

    @property
    def margin(self) -> float:
        return self.bound / self.measured if self.measured > 0 else math.inf

    @property
    def headroom(self) -> float:
        return self.margin / self.required


RECORDS: list[Record] = []
_current = {"test": "(outside a test)"}


def set_current_test(nodeid: str) -> None:
    _current["test"] = nodeid


def record(quantity: str, measured, bound, required: float = 1.0) -> None:
    """Note that ``measured`` (an error, >= 0) was checked against ``bound`` (asserted elsewhere)."""
    RECORDS.append(Record(_current["test"], quantity, abs(float(measured)), float(bound), float(required)))


def within(quantity: str, measured, bound) -> bool:
    """``measured <= bound``, recorded: use as ``assert within("what", error, bound)``."""
    record(quantity, measured, bound)
    return measured <= bound


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a literal bar would split the markdown cell


def _fmt(v: float) -> str:
    return "∞" if math.isinf(v) else f"{v:.3g}"


def write_table(path: Path, records: list[Record], command: str) -> None:
    """A markdown table of ``records``, smallest headroom (margin / required) first, with a summary."""
    import torch

    from mmrphys.models.inference import _cpu_tag  # machine/ISA/model name, as in the compile cache key

    rows = sorted(records, key=lambda r: (r.headroom, r.test, r.quantity))
    finite = [r.headroom for r in rows if math.isfinite(r.headroom)]
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = ["?"]
    lines = [
        "# Numeric checks: derived bound, measured error, margin",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- CPU: {_cpu_tag()}; torch {torch.__version__}; torch threads {torch.get_num_threads()};"
        f" load average at the end {' '.join(load)}",
        f"- checks recorded: {len(rows)} in {len({r.test for r in rows})} tests; exact (error 0):"
        f" {len(rows) - len(finite)}; median headroom of the rest: "
        + (f"{statistics.median(finite):.3g}" if finite else "-"),
        f"- headroom under 1.6 (a 1.6x difference between CPUs would fail it): "
        f"{sum(h < 1.6 for h in finite)}",
        "",
        "margin = bound / measured; required = the margin the test asserts (1: just the bound);"
        " headroom = margin / required.",
        "",
        "| test | quantity | measured | bound | margin | required | headroom |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| `{r.test}` | {_cell(r.quantity)} | {r.measured:.3g} | {r.bound:.3g} | {_fmt(r.margin)} |"
              f" {r.required:g} | {_fmt(r.headroom)} |" for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
