"""The local server: loopback by default, DNS-rebinding guard, CSP and the other headers on every
response (http.server's own error pages too), read-only, static allow-list, idle and slow clients
closed, bounded threads, one-line errors for bad --port/--host."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time

import pytest
from _rawhttp import MALFORMED, exchange, parse

from mmrphys.cli.main import build_parser, main
from mmrphys.errors import InputError
from mmrphys.web.model import WebModel
from mmrphys.web.server import CSP, SECURITY_HEADERS, STATIC_DIR, WebServer, host_allowed


@pytest.fixture(scope="module")
def server():
    srv = WebServer("127.0.0.1", 0, WebModel(available=False, reason="test"))
    srv.start_background()
    yield srv
    srv.shutdown()
    srv.server_close()


def _request(srv, path="/", host=None, method="GET", headers=None):
    port = srv.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    if host is not False:
        conn.putheader("Host", host or f"127.0.0.1:{port}")
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def test_binds_loopback_by_default(server):
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.model, args.no_browser) == ("127.0.0.1", "8765", None, False)
    assert server.socket.getsockname()[0] == "127.0.0.1"
    # Reaching the port through a non-loopback address of this machine must fail.
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        lan_ip = s.getsockname()[0]
        s.close()
    except OSError:
        lan_ip = None
    if lan_ip and not lan_ip.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((lan_ip, server.server_address[1]), timeout=2).close()


def test_host_flag_binds_elsewhere():
    srv = WebServer("0.0.0.0", 0, WebModel(available=False))
    try:
        assert srv.socket.getsockname()[0] == "0.0.0.0"
        assert srv.url.startswith("http://127.0.0.1:")
    finally:
        srv.server_close()


@pytest.mark.parametrize("host", ["evil.example:{port}", "attacker.test", "localhost.evil.example:{port}",
                                  "127.0.0.1:{other}", "rebind.127.0.0.1.nip.io:{port}", ""])
def test_foreign_host_header_is_refused(server, host):
    port = server.server_address[1]
    resp, body = _request(server, "/", host=host.format(port=port, other=port + 1) or False)
    assert resp.status in (400, 421)
    assert b"<html" not in body.lower()
    assert resp.getheader("Content-Security-Policy") == CSP


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"])
def test_own_host_names_are_served(server, host):
    resp, body = _request(server, "/", host=host.format(port=server.server_address[1]))
    assert resp.status == 200 and b"mmrphys live" in body


def test_host_allowed_rules():
    assert host_allowed("127.0.0.1:8765", "127.0.0.1", 8765)
    assert host_allowed("192.168.1.5:8765", "0.0.0.0", 8765)  # an IP literal cannot be a rebinding name
    assert host_allowed("mybox:8765", "mybox", 8765)  # the --host name itself
    assert not host_allowed("mybox:8765", "127.0.0.1", 8765)
    assert not host_allowed("localhost", "127.0.0.1", 8765)  # port missing
    assert not host_allowed("[::1", "::1", 8765)
    assert not host_allowed(None, "127.0.0.1", 8765)


def test_csp_and_security_headers(server):
    resp, body = _request(server, "/")
    csp = resp.getheader("Content-Security-Policy")
    assert csp == CSP
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe-inline" not in csp and "'unsafe-eval'" not in csp and "http" not in csp
    assert resp.getheader("X-Content-Type-Options") == "nosniff"
    assert resp.getheader("Referrer-Policy") == "no-referrer"
    assert resp.getheader("X-Frame-Options") == "DENY"
    # The page references only our own files: no external script, style or link.
    assert b"http://" not in body and b"https://" not in body and b"<script>" not in body


def test_static_files_types_and_allow_list(server):
    resp, body = _request(server, "/static/app.js")
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/javascript" and len(body) > 1000
    wasm = json.loads((STATIC_DIR / "build.json").read_text())["wasm"]
    resp, _ = _request(server, f"/static/{wasm}", method="HEAD")
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/wasm"
    assert int(resp.getheader("Content-Length")) > 1_000_000
    for path in ("/static/../server.py", "/static/%2e%2e/server.py", "/../../etc/passwd", "/static/",
                 "/static/models", "/server.py", "/model.onnx"):
        resp, _ = _request(server, path)
        assert resp.status == 404, path


def test_gzipped_files_are_sent_compressed_or_inflated(server):
    build = json.loads((STATIC_DIR / "build.json").read_text())
    assert build["wasm"] in build["gzipped"]  # the 14 MB runtime is stored as ~3.7 MB
    stored = (STATIC_DIR / f"{build['wasm']}.gz").read_bytes()
    url = f"/static/{build['wasm']}"
    resp, body = _request(server, url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert resp.status == 200 and resp.getheader("Content-Encoding") == "gzip" and body == stored
    assert resp.getheader("Content-Type") == "application/wasm"
    assert resp.getheader("Vary") == "Accept-Encoding"
    raw = gzip.decompress(stored)
    assert raw[:4] == b"\0asm"
    for accept in (None, "identity", "gzip;q=0"):  # a client without gzip gets the inflated bytes
        resp, body = _request(server, url, headers={"Accept-Encoding": accept} if accept else None)
        assert resp.status == 200 and resp.getheader("Content-Encoding") is None and body == raw, accept


def test_read_only(server):
    for method in ("POST", "PUT", "DELETE"):
        resp, _ = _request(server, "/", method=method)
        assert resp.status == 405


def test_model_json_without_model(server):
    resp, body = _request(server, "/api/model.json")
    info = json.loads(body)
    assert resp.status == 200 and info["available"] is False and info["url"] is None
    assert "path" not in info and "detail" not in info


def test_serve_cli_starts_on_loopback(tmp_path, web_cache):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MMRPHYS_CACHE": str(web_cache),
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "mmrphys", "serve", "--port", "0", "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            if "mmrphys live:" in line:
                url = line.split("mmrphys live:")[1].split()[0]
        assert url and url.startswith("http://127.0.0.1:"), url
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/model.json")
        assert conn.getresponse().status == 200
    finally:
        proc.terminate()
        proc.wait(10)


# -- raw sockets: what http.server itself answers, timeouts, bounded threads ---------------------------

def _raw(srv, data: bytes) -> bytes:
    return exchange(srv.server_address[1], data)


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    try:
        return parse(raw)
    except ValueError as err:
        pytest.fail(str(err))


def _host(srv) -> bytes:
    return f"Host: 127.0.0.1:{srv.server_address[1]}\r\n".encode()




@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_library_error_pages_carry_the_security_headers(server, name):
    data, status = MALFORMED[name]
    port = str(server.server_address[1]).encode()
    code, headers, body = _parse(_raw(server, data.replace(b"{port}", port)))
    assert code == status
    for key, value in SECURITY_HEADERS.items():
        assert headers.get(key) == value, (name, key)
    assert headers["Content-Type"] == "text/plain; charset=utf-8" and headers["Connection"] == "close"
    assert int(headers["Content-Length"]) == len(body)
    # Nothing of the request is echoed back (no reflected markup, no long echo).
    assert body == f"{status} ".encode() + body.split(b" ", 1)[1] and len(body) < 60 and b"<" not in body


def test_idle_and_slow_clients_are_closed():
    srv = WebServer("127.0.0.1", 0, WebModel(available=False), idle_timeout_s=1.0)
    srv.start_background()
    try:
        port = srv.server_address[1]
        # Idle: connects and sends nothing.
        t0 = time.monotonic()
        assert _raw(srv, b"") == b""
        assert 0.8 < time.monotonic() - t0 < 4.0
        # Slowloris: a header byte every 0.2 s never finishes the request; the head's budget is 1 s in all.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            t0 = time.monotonic()
            s.sendall(b"GET / HTTP/1.1\r\n")
            closed_after = None
            for _ in range(40):
                time.sleep(0.2)
                try:
                    s.sendall(b"X")
                    if select.select([s], [], [], 0)[0] and s.recv(1024) == b"":  # the server's FIN
                        closed_after = time.monotonic() - t0
                except OSError:
                    closed_after = time.monotonic() - t0
                if closed_after is not None:
                    break
            assert closed_after is not None and 0.8 < closed_after < 3.0, closed_after
        # Keep-alive: a finished request is answered, then the idle connection is closed.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /api/model.json HTTP/1.1\r\n" + _host(srv) + b"\r\n")
            t0 = time.monotonic()
            got = b""
            while chunk := s.recv(65536):
                got += chunk
            assert got.startswith(b"HTTP/1.1 200") and 0.8 < time.monotonic() - t0 < 4.0
    finally:
        srv.shutdown()
        srv.server_close()


def test_connections_beyond_the_limit_get_503_and_no_thread():
    workers, waiting, n = 4, 4, 200
    srv = WebServer("127.0.0.1", 0, WebModel(available=False), idle_timeout_s=3.0, max_workers=workers,
                    max_waiting=waiting)
    srv.start_background()
    before = threading.active_count()
    socks = []
    try:
        port = srv.server_address[1]
        for _ in range(n):  # half-open: connected, never a byte
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        pool = [t for t in threading.enumerate() if t.name.startswith(f"mmrphys-web-{port}_")]
        assert len(pool) <= workers and threading.active_count() <= before + workers
        refused = 0
        for s in socks[workers + waiting:]:
            code, headers, _ = _parse(s.recv(65536))
            refused += code == 503 and headers["Content-Security-Policy"] == CSP
        assert refused == n - workers - waiting
    finally:
        for s in socks:
            s.close()
    # The admitted connections end (the clients closed); the server serves normally again.
    resp, _ = _request(srv, "/api/model.json")
    assert resp.status == 200
    srv.shutdown()
    srv.server_close()


def test_closing_the_server_ends_idle_connections_at_once():
    # Ctrl-C on `mmrphys serve` must not wait out the 10 s idle timeout of a browser's open connections.
    srv = WebServer("127.0.0.1", 0, WebModel(available=False), max_workers=2, max_waiting=2)
    srv.start_background()
    port = srv.server_address[1]
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]  # 2 served, 2 wait
    time.sleep(0.3)
    workers = [t for t in threading.enumerate() if t.name.startswith(f"mmrphys-web-{port}_")]
    assert len(workers) == 2
    t0 = time.monotonic()
    srv.shutdown()
    srv.server_close()
    for t in workers:
        t.join(5)
    assert not any(t.is_alive() for t in workers) and time.monotonic() - t0 < 2.0
    for s in socks:
        assert s.recv(1024) == b""  # closed by the server, no error page needed
        s.close()


@pytest.mark.parametrize("argv,named", [
    (["--port", "70000"], "--port 70000"), (["--port", "-1"], "--port -1"),
    (["--port", "abc"], "--port 'abc'"), (["--port", "1.5"], "--port '1.5'"),
    (["--host", "", "--port", "0"], "--host ''"),
    (["--host", "no-such-host.invalid", "--port", "0"], "no-such-host.invalid"),
])
def test_bad_port_or_host_is_one_line(capsys, argv, named):
    assert main(["serve", "--no-browser", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("mmrphys serve: error:") and named in err, err


def test_port_in_use_is_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--no-browser", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"127.0.0.1:{port}" in err and "in use" in err, err


def test_missing_page_files_say_how_to_get_them(tmp_path):
    with pytest.raises(InputError, match="reinstall mmrphys"):
        WebServer("127.0.0.1", 0, WebModel(available=False), static_dir=tmp_path / "static")
