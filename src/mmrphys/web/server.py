"""A small local server for the web app: our static files and the ONNX model, nothing else.

Security posture (the page handles a camera): binds 127.0.0.1 unless told otherwise; answers only
requests whose Host header names this server (a DNS-rebinding guard: another site's name resolving
to 127.0.0.1 is refused with 421); GET/HEAD only (the server never receives frames); a strict
Content-Security-Policy that allows our own scripts and WebAssembly and no other origin.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import mimetypes
import sys
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mmrphys.errors import ConfigError, InputError
from mmrphys.web.model import WebModel

STATIC_DIR = Path(__file__).resolve().parent / "static"

CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self' 'wasm-unsafe-eval'",  # WebAssembly (onnxruntime-web) needs wasm-unsafe-eval
    "worker-src 'self'",
    "connect-src 'self'",
    "img-src 'self' blob: data:",
    "media-src 'self' blob: mediastream:",
    "style-src 'self'",
    "font-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), usb=(), payment=()",
}

TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
         ".json": "application/json", ".css": "text/css", ".html": "text/html; charset=utf-8",
         ".bin": "application/octet-stream", ".onnx": "application/octet-stream",
         ".txt": "text/plain; charset=utf-8"}

LOOPBACK_NAMES = {"localhost", "localhost.", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host.strip("[]").lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(header: str | None, bind_host: str, port: int) -> bool:
    """Whether a request's Host header names this server.

    Accepted names: ``localhost``, any IP literal (a DNS-rebinding attack needs a domain name; an IP
    in the Host header is what a browser sends when the user typed the address), and the ``--host``
    value itself. The port must be ours (a missing port only for port 80).
    """
    if not header:
        return False
    header = header.strip()
    if header.startswith("["):  # [v6]:port
        end = header.find("]")
        if end < 0:
            return False
        name, rest = header[1:end], header[end + 1:]
        port_txt = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        name, _, port_txt = header.partition(":")
    if port_txt is None or (port_txt == "" and port != 80) or (port_txt and port_txt != str(port)):
        return False
    name = name.lower().rstrip(".")
    if name in ("localhost", bind_host.lower().strip("[]")):
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class StaticFile:
    """One file of the built page: ``path`` on disk, stored gzipped when ``gz`` (``NAME.gz``)."""

    path: Path
    gz: bool = False


def static_files(root: Path) -> dict[str, StaticFile]:
    """The built page's files by the name the page requests (``NAME.gz`` on disk is served as ``NAME``).

    An explicit list of what exists at start-up: no path from a request ever reaches the file system.
    """
    files = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name == ".gitignore":
            continue
        name = p.relative_to(root).as_posix()
        if name.endswith(".gz"):
            files[name[:-3]] = StaticFile(p, gz=True)
        else:
            files.setdefault(name, StaticFile(p))
    return files


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (``gzip``, ``x-gzip`` or ``*``, unless ``q=0``)."""
    for item in (header or "").split(","):
        token, *params = (part.strip() for part in item.split(";"))
        if token.lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for prm in params:
            key, _, value = prm.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        return q > 0
    return False


def _content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class _Handler(BaseHTTPRequestHandler):
    server_version = "mmrphys-serve"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet unless --verbose
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    def _send(self, status: int, body: bytes = b"", ctype: str = "text/plain; charset=utf-8",
              head: bool = False, cache: str = "no-cache", encoding: str | None = None) -> None:
        self.send_response(status)
        for k, v in SECURITY_HEADERS.items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _guard(self) -> bool:
        srv = self.server
        if not host_allowed(self.headers.get("Host"), srv.bind_host, srv.server_address[1]):
            self._send(HTTPStatus.MISDIRECTED_REQUEST,
                       b"unknown Host header: this server answers only to its own address\n")
            return False
        return True

    def _get(self, head: bool) -> None:
        if not self._guard():
            return
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        srv = self.server
        if path in ("/", "/index.html"):
            return self._static(srv.files.get("index.html"), "index.html", head)
        if path == "/api/model.json":
            body = json.dumps(srv.model.to_dict()).encode()
            return self._send(HTTPStatus.OK, body, "application/json", head)
        if path == "/model.onnx":
            if not srv.model.available:
                return self._send(HTTPStatus.NOT_FOUND, b"no model\n", head=head)
            return self._file(Path(srv.model.path), head)
        if path == "/favicon.ico":
            return self._send(HTTPStatus.NO_CONTENT, head=head)
        if path.startswith("/static/"):
            name = path[len("/static/"):]
            return self._static(srv.files.get(name), name, head)
        return self._send(HTTPStatus.NOT_FOUND, b"not found\n", head=head)

    def _static(self, f: StaticFile | None, name: str, head: bool) -> None:
        if f is None:
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n", head=head)
        if not f.gz:
            return self._file(f.path, head)
        try:
            data = f.path.read_bytes()
            if not accepts_gzip(self.headers.get("Accept-Encoding")):
                data, encoding = gzip.decompress(data), None
            else:
                encoding = "gzip"
        except (OSError, EOFError, gzip.BadGzipFile):
            return self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"damaged file\n", head=head)
        self._send(HTTPStatus.OK, data, _content_type(name), head, encoding=encoding)

    def _file(self, p: Path, head: bool) -> None:
        try:
            data = p.read_bytes()
        except OSError:
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n", head=head)
        self._send(HTTPStatus.OK, data, _content_type(p.name), head)

    def do_GET(self):  # noqa: N802 - http.server API
        self._get(head=False)

    def do_HEAD(self):  # noqa: N802
        self._get(head=True)

    def _refuse(self):
        if self._guard():
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only server\n")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse  # noqa: N815


class WebServer(ThreadingHTTPServer):
    """The HTTP server; ``.url`` is the page's address."""

    daemon_threads = True

    def __init__(self, host: str, port: int, model: WebModel, static_dir: Path | None = None,
                 verbose: bool = False):
        if ":" in host.strip("[]"):
            import socket

            self.address_family = socket.AF_INET6
        self.bind_host = host.strip("[]")
        self.model = model
        self.verbose = verbose
        static_dir = Path(STATIC_DIR if static_dir is None else static_dir)
        self.files = static_files(static_dir) if static_dir.is_dir() else {}
        if "index.html" not in self.files:
            raise InputError(f"{static_dir}: the web app's files are missing (no index.html); reinstall "
                             "mmrphys, or rebuild them with 'cd webapp && npm ci && npm run build'")
        try:
            super().__init__((self.bind_host, port), _Handler)
        except OSError as err:
            raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None

    @property
    def url(self) -> str:
        host = self.bind_host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.server_address[1]}/"

    def start_background(self) -> threading.Thread:
        """Serve from a daemon thread (tests, benchmarks); stop with ``.shutdown()``."""
        t = threading.Thread(target=self.serve_forever, name="mmrphys-web", daemon=True)
        t.start()
        return t
