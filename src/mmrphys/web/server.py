"""A small local server for the web app: our static files and the ONNX model, nothing else.

Security posture (the page handles a camera): binds 127.0.0.1 unless told otherwise; answers only
requests whose Host header names this server (a DNS-rebinding guard: another site's name resolving
to 127.0.0.1 is refused with 421); GET/HEAD only (the server never receives frames); a strict
Content-Security-Policy that allows our own scripts and WebAssembly and no other origin, on every
response, http.server's own error pages (400, 414, 431, 501, 505) included.

Resources are bounded: a request's line and headers must arrive within ``idle_timeout_s`` (10 s) of
the server starting to wait for them (an idle keep-alive connection or a slow-header "slowloris"
client is closed then), at most ``max_workers`` connections are served at once by a fixed pool of
threads, ``max_waiting`` more wait for a free thread, and any further connection gets an immediate
503 and is closed, without a thread of its own.
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import json
import mimetypes
import socket
import socketserver
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from mmrphys.errors import ConfigError, InputError
from mmrphys.web.model import WebModel

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Seconds a client has to send a whole request line and its headers, counted from when the server
#: starts waiting for them (so also the longest a keep-alive connection may sit idle).
IDLE_TIMEOUT_S = 10.0
#: Connections served at once (a browser opens about 6 to one host), and connections that may wait
#: for a free worker; any further connection is answered 503 and closed at once.
MAX_WORKERS = 16
MAX_WAITING = 64
#: Seconds a closing connection is drained for (see ``WebServer.shutdown_request``).
LINGER_S = 0.5

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


class _DeadlineIO(socket.SocketIO):
    """A socket reader with an overall deadline: each read waits at most until ``deadline``.

    A socket timeout alone restarts with every byte, so a client that sends one header byte every few
    seconds would hold a worker for ever; here the whole request head has one budget.
    """

    deadline: float | None = None

    def readinto(self, b):
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("request head not complete in time")
            self._sock.settimeout(left)
        return super().readinto(b)


def _content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _status_body(code: int) -> tuple[str, bytes]:
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    return phrase, f"{code} {phrase}\n".encode()


def _busy_response() -> bytes:
    # Written by the accept loop to a connection over the limit: complete, with the same headers.
    phrase, body = _status_body(HTTPStatus.SERVICE_UNAVAILABLE)
    lines = [f"HTTP/1.1 503 {phrase}", *(f"{k}: {v}" for k, v in SECURITY_HEADERS.items()),
             "Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(body)}", "Retry-After: 1",
             "Cache-Control: no-store", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Handler(BaseHTTPRequestHandler):
    server_version = "mmrphys-serve"
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, fmt, *args):  # quiet unless --verbose
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    # -- time limits -----------------------------------------------------------------------------
    def setup(self):
        self.timeout = self.server.idle_timeout_s
        super().setup()  # applies self.timeout to the socket and makes rfile/wfile
        self.rfile.close()
        self._reader = _DeadlineIO(self.connection, "rb")
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self):
        # The request line and the headers must arrive within idle_timeout_s from now.
        self._reader.deadline = time.monotonic() + self.server.idle_timeout_s
        super().handle_one_request()

    def parse_request(self) -> bool:
        if len(self.raw_requestline.split()) == 2:
            # "GET /" is HTTP/0.9, whose answer can carry no headers at all: refused before its headers.
            self.command, self.request_version, self.close_connection = None, "HTTP/1.1", True
            self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
            self.send_error(HTTPStatus.BAD_REQUEST)
            return False
        ok = super().parse_request()
        # Head read: the response gets the plain per-write socket timeout, not what was left.
        self._reader.deadline = None
        self.connection.settimeout(self.server.idle_timeout_s)
        return ok

    # -- responses -------------------------------------------------------------------------------
    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (400, 414, 431, 501, 505, ...) with our headers and a plain body.

        The body names the status only: nothing of the request is echoed back.
        """
        if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
            # Set before the version was parsed (or HTTP/0.9): still answer with a status line and headers.
            self.request_version = "HTTP/1.1"
        self.log_error("code %d, %s", code, message or "")
        _, body = _status_body(code)
        self._send(code, body, head=self.command == "HEAD", close=True)

    def _send(self, status: int, body: bytes = b"", ctype: str = "text/plain; charset=utf-8",
              head: bool = False, cache: str = "no-cache", encoding: str | None = None,
              close: bool = False) -> None:
        self.send_response(status)
        for k, v in SECURITY_HEADERS.items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        if close:
            self.close_connection = True
            self.send_header("Connection", "close")
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


def parse_port(text) -> int:
    """A TCP port from the command line: an integer 0-65535 (0: the system picks a free one)."""
    try:
        port = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"--port {text!r}: not a port number (0-65535)") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: out of range (0-65535)")
    return port


class WebServer(HTTPServer):
    """The HTTP server; ``.url`` is the page's address.

    Connections are served by a fixed pool of ``max_workers`` threads; up to ``max_waiting`` more wait
    for one, and any further connection is answered 503 by the accept loop and closed. A request head
    must arrive within ``idle_timeout_s``.
    """

    request_queue_size = 128  # listen backlog

    def __init__(self, host: str, port: int, model: WebModel, static_dir: Path | None = None,
                 verbose: bool = False, *, idle_timeout_s: float = IDLE_TIMEOUT_S,
                 max_workers: int = MAX_WORKERS, max_waiting: int = MAX_WAITING):
        host = str(host).strip()
        if not host.strip("[]") or any(c.isspace() for c in host):
            raise ConfigError(f"--host {host!r}: not a host name or address")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"--port {port!r}: out of range (0-65535)")
        if ":" in host.strip("[]"):
            self.address_family = socket.AF_INET6
        self.bind_host = host.strip("[]")
        self.model = model
        self.verbose = verbose
        self.idle_timeout_s = float(idle_timeout_s)
        static_dir = Path(STATIC_DIR if static_dir is None else static_dir)
        self.files = static_files(static_dir) if static_dir.is_dir() else {}
        if "index.html" not in self.files:
            raise InputError(f"{static_dir}: the web app's files are missing (no index.html); reinstall "
                             "mmrphys, or rebuild them with 'cd webapp && npm ci && npm run build'")
        try:
            super().__init__((self.bind_host, port), _Handler)
        except (OSError, OverflowError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise ConfigError(f"cannot listen on {host}:{port}: {why}") from None
        self._pool = ThreadPoolExecutor(max_workers,
                                        thread_name_prefix=f"mmrphys-web-{self.server_address[1]}")
        self._slots = threading.BoundedSemaphore(max_workers + max_waiting)
        self._busy = _busy_response()
        self._waiting: set = set()  # connections admitted, waiting for a worker
        self._serving: set = set()  # connections a worker is serving
        self._open_lock = threading.Lock()

    def server_bind(self):
        # HTTPServer.server_bind also looks the address up in DNS (getfqdn): not needed, and slow offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.bind_host, self.server_address[1]

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            try:  # over the limit: a complete 503 without blocking the accept loop, then close
                request.setblocking(False)
                request.send(self._busy)
            except OSError:
                pass
            self._close(request, 0.0)
            return
        with self._open_lock:
            self._waiting.add(request)
        try:
            self._pool.submit(self._serve_connection, request, client_address)
        except RuntimeError:  # the pool is shut down: the server is closing
            with self._open_lock:
                self._waiting.discard(request)
            self._slots.release()
            self.shutdown_request(request)

    def _serve_connection(self, request, client_address):
        with self._open_lock:
            if request not in self._waiting:  # closed by server_close while it waited
                self._slots.release()
                return
            self._waiting.discard(request)
            self._serving.add(request)
        try:
            self.finish_request(request, client_address)
        except Exception as err:  # noqa: BLE001 - one connection's failure must not stop the server
            self.handle_error(request, client_address, err)
        finally:
            with self._open_lock:
                self._serving.discard(request)
            self.shutdown_request(request)
            self._slots.release()

    def handle_error(self, request, client_address, err=None):
        # A client that hangs up or stalls is routine; anything else is one line, not a traceback.
        if isinstance(err, (ConnectionError, TimeoutError)) or err is None:
            return
        sys.stderr.write(f"mmrphys serve: a request from {client_address[0]} failed: "
                         f"{type(err).__name__}: {err}\n")

    def shutdown_request(self, request):
        self._close(request, LINGER_S)

    def _close(self, request, linger_s: float) -> None:
        """Close a connection gracefully: send our end's FIN, then read (briefly, boundedly) what the
        client still sends, so that unread request bytes do not make the kernel reset the connection
        and throw away the response before the client has read it. ``linger_s=0``: only what is
        already there (the accept loop never waits)."""
        try:
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            end = time.monotonic() + linger_s
            for _ in range(16):  # at most 1 MiB, and at most linger_s in all
                request.settimeout(max(0.0, end - time.monotonic()))
                if not request.recv(65536):
                    break
        except OSError:
            pass
        self.close_request(request)

    def server_close(self):
        """Stop listening and end every open connection now: a worker waiting for a client's request
        sees the end of its input at once (and finishes normally), connections still waiting for a
        worker are closed, so the process can exit without waiting out the idle timeout."""
        super().server_close()
        if not hasattr(self, "_pool"):  # binding failed: nothing was started
            return
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._open_lock:
            waiting, self._waiting = list(self._waiting), set()
            serving = list(self._serving)
        for request in serving:
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for request in waiting:
            self._close(request, 0.0)

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
