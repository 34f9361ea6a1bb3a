"""The local server: loopback by default, DNS-rebinding guard, CSP, read-only, static allow-list."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from mmrphys.cli.main import build_parser
from mmrphys.web.model import WebModel
from mmrphys.web.server import CSP, STATIC_DIR, WebServer, host_allowed


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
    assert (args.host, args.port, args.model, args.no_browser) == ("127.0.0.1", 8765, None, False)
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


def test_serve_cli_starts_on_loopback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MMRPHYS_CACHE": str(tmp_path / "cache"),
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
