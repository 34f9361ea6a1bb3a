"""Fault cases for ``mmrphys serve`` and ``mmrphys analyze session``.

Three kinds:

* the CLI with bad settings (ports, hosts, a port in use, missing page files, missing or junk model,
  no ONNX exporter, an unwritable model cache): one error line naming the problem, exit 2;
* the server under bad clients, probed over raw loopback sockets by a snippet that starts the real
  :class:`mmrphys.web.server.WebServer` (no model needed: the POS fallback) and exits 0 only when
  the server answered as it must (malformed requests answered with every security header, idle and
  slow clients closed, 500 half-open connections held by a bounded pool, no path traversal, foreign
  Host headers refused); a wrong answer is one ``error:`` line and exit 1;
* bad session exports for ``mmrphys analyze session``: one line naming the file and field, exit 2,
  no half-written report.

All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path

from battery.case import Case, CaseRun

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "web"))  # raw HTTP helpers
from _rawhttp import MALFORMED, exchange, parse  # noqa: E402

# -- probes run inside the case's subprocess (``python -c "from battery.cases_serve import ..."``) -----



def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def _server(**kwargs):
    from mmrphys.web.model import WebModel
    from mmrphys.web.server import WebServer

    srv = WebServer("127.0.0.1", 0, WebModel(available=False, reason="battery"), **kwargs)
    srv.start_background()
    return srv


def _stop(srv) -> None:
    srv.shutdown()
    srv.server_close()


def _exchange(port: int, data: bytes) -> bytes:
    return exchange(port, data, timeout=15.0)


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    try:
        return parse(raw)
    except ValueError as err:
        _fail(str(err))


def _headers_missing(headers: dict[str, str]) -> list[str]:
    from mmrphys.web.server import SECURITY_HEADERS

    return [k for k, v in SECURITY_HEADERS.items() if headers.get(k) != v]


def probe_malformed(name: str) -> None:
    """A malformed request gets its status with every security header, and nothing of it echoed."""
    data, status = MALFORMED[name]
    srv = _server()
    port = srv.server_address[1]
    code, headers, body = _parse(_exchange(port, data.replace(b"{port}", str(port).encode())))
    _stop(srv)
    if code != status:
        _fail(f"{name}: status {code}, expected {status}")
    if _headers_missing(headers):
        _fail(f"{name}: {code} without {_headers_missing(headers)}")
    if len(body) > 60 or b"<" in body:
        _fail(f"{name}: the error body echoes something: {body[:60]!r}")
    print(f"{name}: {code} with all security headers")


def probe_idle_and_slow() -> None:
    """Idle connections and a slowloris client are closed by the server's 10 s budget per request head."""
    from mmrphys.web.server import IDLE_TIMEOUT_S

    srv = _server()
    port = srv.server_address[1]
    idle = [socket.create_connection(("127.0.0.1", port), timeout=IDLE_TIMEOUT_S + 10) for _ in range(8)]
    slow = socket.create_connection(("127.0.0.1", port), timeout=IDLE_TIMEOUT_S + 10)
    slow.sendall(b"GET / HTTP/1.1\r\n")
    t0 = time.monotonic()
    slow_closed = None
    while time.monotonic() - t0 < IDLE_TIMEOUT_S + 8 and slow_closed is None:
        time.sleep(0.5)
        try:
            slow.sendall(b"X")  # one header byte every half second: the head never ends
        except OSError:
            slow_closed = time.monotonic() - t0
    idle_closed = [s.recv(16) == b"" for s in idle]
    elapsed = time.monotonic() - t0
    for s in [*idle, slow]:
        s.close()
    _stop(srv)
    if slow_closed is None or slow_closed > IDLE_TIMEOUT_S + 4:
        _fail(f"slowloris connection still open after {elapsed:.0f} s (budget {IDLE_TIMEOUT_S:g} s)")
    if not all(idle_closed) or elapsed > IDLE_TIMEOUT_S + 8:
        _fail(f"{idle_closed.count(False)} of {len(idle)} idle connections still open after {elapsed:.0f} s")
    print(f"slowloris closed after {slow_closed:.1f} s, 8 idle connections closed by {elapsed:.1f} s")


def probe_half_open(n: int = 500) -> None:
    """500 half-open connections: a bounded pool serves (and waits for) a few, the rest get 503 at once."""
    from mmrphys.web.server import MAX_WAITING, MAX_WORKERS

    before = threading.active_count()
    srv = _server()
    port = srv.server_address[1]
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    time.sleep(1.0)
    threads = threading.active_count() - before
    refused = 0
    for s in socks[MAX_WORKERS + MAX_WAITING:]:
        code, headers, _ = _parse(s.recv(65536))
        refused += code == 503 and not _headers_missing(headers)
    for s in socks:
        s.close()
    code, _, _ = _parse(_exchange(port, f"GET /api/model.json HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                                  .encode()))
    _stop(srv)
    if threads > MAX_WORKERS + 2:  # the pool, the accept loop, nothing per connection
        _fail(f"{threads} threads for {n} half-open connections (pool of {MAX_WORKERS})")
    if refused != n - MAX_WORKERS - MAX_WAITING:
        _fail(f"{refused} connections got a 503 with the headers, expected {n - MAX_WORKERS - MAX_WAITING}")
    if code != 200:
        _fail(f"after the flood a plain request got {code}")
    print(f"{n} half-open connections: {threads} threads, {refused} answered 503, then 200 again")


TRAVERSAL = ["/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fserver.py",
             "/../../../etc/passwd", "//etc/passwd", "/static//etc/passwd", "/static/models/../../model.py",
             "/static/", "/static/models", "/model.onnx", "/static/index.html.gz", "/static/app.js/"]


def probe_traversal() -> None:
    """No request path reaches the file system: only the listed files exist."""
    srv = _server()
    port = srv.server_address[1]
    bad = []
    for path in TRAVERSAL:
        code, headers, body = _parse(_exchange(port, f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                                               .encode()))
        if code != 404 or _headers_missing(headers) or b"import" in body or b"root:" in body:
            bad.append(f"{path} -> {code}")
    _stop(srv)
    if bad:
        _fail(f"paths served that must not be: {bad}")
    print(f"{len(TRAVERSAL)} traversal paths: all 404 with the headers")


def probe_host_guard() -> None:
    """Foreign or missing Host headers (DNS rebinding) get 421 with the headers; writes get 405."""
    srv = _server()
    port = srv.server_address[1]
    answers = {}
    for host in (f"evil.example:{port}", "attacker.test", f"localhost.evil.example:{port}",
                 f"127.0.0.1:{port + 1}", None):
        line = f"Host: {host}\r\n" if host is not None else ""
        answers[host] = _parse(_exchange(port, f"GET / HTTP/1.1\r\n{line}Connection: close\r\n\r\n".encode()))
    post = _parse(_exchange(port, f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n"
                                  f"Connection: close\r\n\r\n".encode()))
    _stop(srv)
    wrong = {h: a[0] for h, a in answers.items() if a[0] != 421 or _headers_missing(a[1]) or b"<html" in a[2]}
    if wrong:
        _fail(f"foreign Host headers not refused with 421 and the headers: {wrong}")
    if post[0] != 405 or _headers_missing(post[1]):
        _fail(f"POST answered {post[0]}")
    print("5 foreign Host headers: 421; POST: 405; all with the headers")


# -- the cases -----------------------------------------------------------------------------------------

def _probe(call: str, timeout_s: float = 60) -> dict:
    return {"python": f"from battery.cases_serve import *; {call}", "expect_exit": 0, "timeout_s": timeout_s}


#: The default weights as a file: served with --model, they are exported (the default start serves their
#: shipped runtime twin and exports nothing, so the exporter's faults need a weights file)
_DEFAULT_PT = str(Path(__file__).resolve().parents[2] / "src" / "mmrphys" / "weights"
                  / "mmrphys_sef_ubfc8_reanim.pt")


def _serve_cli(*argv: str) -> list[str]:
    return ["serve", "--no-browser", *argv]


def _in_process(prelude: str, argv: list[str] | str) -> str:
    # Runs the CLI in the snippet's process after ``prelude`` (a port to hold, a patched module, ...);
    # ``argv`` is a list, or the source of an expression that the prelude's names can fill in.
    args = argv if isinstance(argv, str) else repr(argv)
    return f"import os, socket, sys\n{prelude}\nfrom mmrphys.cli.main import main\nsys.exit(main({args}))"


def _session(seconds: float = 24.0, fps: float = 30.0) -> dict:
    import numpy as np

    t = np.arange(int(seconds * fps)) / fps
    bvp = np.sin(2 * np.pi * 1.2 * t) + 0.1 * np.cos(7 * t)
    return {"format": "mmrphys-web-session", "version": 1, "metadata": {"method": "battery"},
            "timestamps_s": t.round(4).tolist(), "bvp": bvp.tolist(), "rsp": None,
            "rates": {"heart_rate_bpm": 72.0, "heart": [], "respiratory": []}, "warnings": []}


def _no_report(stem: str):
    def check(run: CaseRun) -> str | None:
        left = [p.name for pattern in (f"{stem}_analysis*", ".*.tmp*") for p in run.root.rglob(pattern)]
        return f"report files left behind: {left}" if left else None

    return check


def cases(root: Path) -> list[Case]:
    root = Path(root)
    out: list[Case] = []

    # CLI settings: one line, exit 2
    for port, named in (("70000", "--port 70000"), ("-1", "--port -1"), ("abc", "--port 'abc'"),
                        ("", "--port ''")):
        out.append(Case(f"serve/port-{port or 'empty'}", _serve_cli("--port", port), expect_exit=2,
                        must_name=named, timeout_s=30))
    out.append(Case("serve/port-in-use", python=_in_process(
        "held = socket.socket(); held.bind(('127.0.0.1', 0)); held.listen(); port = held.getsockname()[1]",
        "['serve', '--no-browser', '--port', str(port)]"), expect_exit=2, must_name="Address already in use",
        timeout_s=30))
    out.append(Case("serve/host-unresolvable", _serve_cli("--host", "no-such-host.invalid", "--port", "0"),
                    expect_exit=2, must_name="no-such-host.invalid", timeout_s=60))
    out.append(Case("serve/host-empty", _serve_cli("--host", "", "--port", "0"), expect_exit=2,
                    must_name="--host ''", timeout_s=30))
    out.append(Case("serve/host-not-on-this-machine", _serve_cli("--host", "192.0.2.1", "--port", "0"),
                    expect_exit=2, must_name="192.0.2.1", timeout_s=30))
    out.append(Case("serve/missing-page-files", python=_in_process(
        f"import pathlib, mmrphys.web.server as s; s.STATIC_DIR = pathlib.Path({str(root / 'no-static')!r})",
        _serve_cli("--port", "0")), expect_exit=2, must_name="reinstall mmrphys", timeout_s=30))
    out.append(Case("serve/missing-model-file", _serve_cli("--port", "0", "--model", str(root / "gone.onnx")),
                    expect_exit=2, must_name="gone.onnx", timeout_s=60))
    junk = root / "junk.onnx"
    junk.write_bytes(b"\x08\x07 this is not an ONNX graph" * 10)
    out.append(Case("serve/junk-onnx-model", _serve_cli("--port", "0", "--model", str(junk)), expect_exit=2,
                    must_name="junk.onnx", timeout_s=60))
    out.append(Case("serve/no-onnx-exporter", python=_in_process(
        f"os.environ['MMRPHYS_CACHE'] = {str(root / 'empty-cache')!r}\n"
        "import importlib.util as u; real = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name == 'onnx' else real(name, *a)",
        _serve_cli("--port", "0", "--model", _DEFAULT_PT)), expect_exit=2, must_name="pip install onnx",
        timeout_s=60))
    blocker = root / "cache-is-a-file"
    blocker.write_text("not a folder")
    out.append(Case("serve/model-cache-not-writable", python=_in_process(
        f"os.environ['MMRPHYS_CACHE'] = {str(blocker)!r}", _serve_cli("--port", "0", "--model", _DEFAULT_PT)),
        expect_exit=2, must_name="MMRPHYS_CACHE", timeout_s=60))

    # the server under bad clients (raw sockets on 127.0.0.1)
    for name in MALFORMED:
        out.append(Case(f"serve/{name}", **_probe(f"probe_malformed({name!r})")))
    out.append(Case("serve/idle-and-slowloris-closed", **_probe("probe_idle_and_slow()", timeout_s=60)))
    out.append(Case("serve/500-half-open-connections", **_probe("probe_half_open(500)", timeout_s=90)))
    out.append(Case("serve/path-traversal", **_probe("probe_traversal()")))
    out.append(Case("serve/foreign-host-header", **_probe("probe_host_guard()")))

    # bad session exports for `mmrphys analyze session`
    def session_case(name: str, content: str | bytes, suffix: str, must_name: str, extra=()):
        f = root / f"{name}{suffix}"
        f.write_bytes(content if isinstance(content, bytes) else content.encode())
        out.append(Case(f"analyze/{name}", ["analyze", "session", str(f), *extra], expect_exit=2,
                        must_name=must_name, timeout_s=60, check=_no_report(name)))

    good = _session()
    session_case("session-not-json", "{not json", ".json", "session-not-json.json: not a readable JSON")
    session_case("session-binary", bytes(range(256)) * 8, ".json", "session-binary.json")
    session_case("session-empty", b"", ".json", "session-empty.json: not a readable JSON")
    session_case("session-other-format", json.dumps({**good, "format": "other"}), ".json", "'format'")
    session_case("session-ragged", json.dumps({**good, "bvp": good["bvp"][:-5]}), ".json", "same length")
    session_case("session-text-in-bvp", json.dumps({**good, "bvp": good["bvp"][:-1] + ["x"]}), ".json",
                 "'bvp' must be a list of numbers")
    session_case("session-too-short", json.dumps(_session(seconds=3.0)), ".json", "need at least")
    t = list(good["timestamps_s"])
    t[100], t[101] = t[101], t[100]
    session_case("session-time-goes-back", json.dumps({**good, "timestamps_s": t}), ".json", "must increase")
    gap = {**good, "timestamps_s": good["timestamps_s"][:-1] + [1e9]}
    session_case("session-huge-gap", json.dumps(gap), ".json", "timestamps_s jump by")
    session_case("session-csv-no-columns", "a,b\n1,2\n", ".csv", "columns t_s and bvp")
    session_case("session-wrong-suffix", "x", ".txt", "expected a .json or .csv")
    out.append(Case("analyze/session-missing-file", ["analyze", "session", str(root / "nope.json")],
                    expect_exit=2, must_name="nope.json", timeout_s=60))
    ok = root / "session-good.json"
    ok.write_text(json.dumps(good))
    taken = root / "out-is-a-file"
    taken.write_text("x")
    out.append(Case("analyze/session-out-is-a-file", ["analyze", "session", str(ok), "--out", str(taken)],
                    expect_exit=2, must_name="out-is-a-file", timeout_s=60, check=_no_report("session-good")))
    return out
