"""Drive headless Chromium over the DevTools protocol (stdlib only): the web app's tests and benchmark.

A tiny CDP client: start ``chromium --headless --remote-debugging-port=0``, talk JSON over its
websocket, attach to the page and to its workers, log every network request, evaluate JavaScript,
take screenshots and accept downloads. Not a general browser-automation library.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from mmrphys.errors import ConfigError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary (``$MMRPHYS_CHROMIUM`` first), or None."""
    env = os.environ.get("MMRPHYS_CHROMIUM")
    if env and Path(env).is_file():
        return env
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def fake_camera_flags(clip) -> list[str]:
    """Chromium flags that feed ``clip`` (a .y4m or .mjpeg file) as the webcam, allowed without a prompt."""
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}", "--autoplay-policy=no-user-gesture-required"]


def wait_for_app(browser: Browser, timeout_s: float) -> dict | None:
    """Poll the mmrphys page until it has chosen its method and loaded face detection.

    Returns the page's status then, or None when ``timeout_s`` passed first.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = browser.evaluate("window.__mmrphys && window.__mmrphys.status()")
        if st and st["method"] in ("model", "pos") and st["faceReady"]:
            return st
        time.sleep(0.2)
    return None


class _WebSocket:
    """Just enough of RFC 6455 for a local CDP connection (client side, text frames)."""

    def __init__(self, url: str, timeout: float = 10.0):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise ConnectionError(f"websocket handshake failed: {status.decode(errors='replace')}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]
        self.sock.settimeout(None)
        self.lock = threading.Lock()

    def send(self, text: str) -> None:
        data = text.encode()
        n = len(data)
        header = bytes([0x81])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        full = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(data, "big") ^ int.from_bytes(full, "big")).to_bytes(n, "big") if n else b""
        with self.lock:
            self.sock.sendall(header + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self) -> str:
        parts = []
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            op = b0 & 0x0F
            if op == 8:
                raise ConnectionError("websocket closed by peer")
            if op == 9:  # ping: answer is not needed by Chromium's CDP server; ignore
                continue
            if op in (0, 1, 2):
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Browser:
    """A headless Chromium with one page; every request of the page and its workers is logged."""

    def __init__(self, extra_args=(), binary: str | None = None, window=(1280, 1000)):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise ConfigError("no chromium found (install Debian's 'chromium' or set MMRPHYS_CHROMIUM)")
        self.profile = tempfile.mkdtemp(prefix="mmrphys-chromium-")
        args = [
            self.binary, "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio",
            "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
            "--disable-domain-reliability", "--disable-client-side-phishing-detection",
            "--metrics-recording-only", "--password-store=basic", "--use-mock-keychain",
            f"--window-size={window[0]},{window[1]}", *extra_args,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        args.append("about:blank")
        # Chromium's own log goes to a file: an unread pipe would fill up and stall the browser.
        self.log_path = Path(self.profile + ".log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._log)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None:
                err = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"chromium exited at start-up: {err}")
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port within 30 s")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws = _WebSocket(f"ws://127.0.0.1:{port}{path}")
        self._id = 0
        self._pending: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.requests: list[dict] = []  # {"url", "session", "type"}
        self.console: list[str] = []
        self.downloads: list[dict] = []
        self.events: list[dict] = []
        self._worker_sessions: set[str] = set()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for method in ("Network.enable", "Page.enable", "Runtime.enable", "Log.enable"):
            self.send(method, session=self.session)
        self.send("Target.setAutoAttach", session=self.session, autoAttach=True, waitForDebuggerOnStart=True,
                  flatten=True)

    # ------------------------------------------------------------------ protocol
    def send(self, method: str, session: str | None = None, timeout: float = 30.0, **params):
        with self._lock:
            self._id += 1
            mid = self._id
            box: queue.Queue = queue.Queue(1)
            self._pending[mid] = box
        msg = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        try:
            reply = box.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"CDP {method}: no reply within {timeout} s") from None
        finally:
            self._pending.pop(mid, None)
        if "error" in reply:
            raise RuntimeError(f"CDP {method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def _read_loop(self) -> None:
        while True:
            try:
                msg = json.loads(self.ws.recv())
            except (ConnectionError, OSError, ValueError):
                return
            if "id" in msg:
                box = self._pending.get(msg["id"])
                if box:
                    box.put(msg)
                continue
            self._on_event(msg)

    def _on_event(self, msg: dict) -> None:
        method, params, session = msg.get("method"), msg.get("params", {}), msg.get("sessionId")
        if method == "Network.requestWillBeSent":
            self.requests.append({"url": params["request"]["url"], "session": session,
                                  "type": params.get("type")})
        elif method == "Target.attachedToTarget":
            sid = params["sessionId"]
            self._worker_sessions.add(sid)
            # Workers start paused (waitForDebuggerOnStart): enable network logging, then let them run.
            threading.Thread(target=self._prepare_worker, args=(sid,), daemon=True).start()
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append(f"{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            self.console.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Log.entryAdded":
            e = params.get("entry", {})
            self.console.append(f"log {e.get('level')}: {e.get('text')} {e.get('url', '')}")
        elif method in ("Browser.downloadWillBegin", "Browser.downloadProgress"):
            self.downloads.append(params)
        else:
            self.events.append(msg)

    def _prepare_worker(self, sid: str) -> None:
        for m in ("Network.enable", "Runtime.enable"):
            try:
                self.send(m, session=sid, timeout=10)
            except (RuntimeError, TimeoutError):
                pass  # not every target type has every domain
        try:
            self.send("Runtime.runIfWaitingForDebugger", session=sid, timeout=10)
        except (RuntimeError, TimeoutError):
            pass

    # ------------------------------------------------------------------ page helpers
    def navigate(self, url: str, wait_s: float = 15.0) -> None:
        self.send("Page.navigate", session=self.session, url=url)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.evaluate("document.readyState") == "complete":
                return
            time.sleep(0.1)
        raise TimeoutError(f"{url} did not finish loading within {wait_s} s")

    def evaluate(self, expr: str, await_promise: bool = False):
        res = self.send("Runtime.evaluate", session=self.session, expression=expr, returnByValue=True,
                        awaitPromise=await_promise)
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            raise RuntimeError(f"JS error: {d.get('exception', {}).get('description') or d.get('text')}")
        return res.get("result", {}).get("value")

    def screenshot(self, path) -> Path:
        data = self.send("Page.captureScreenshot", session=self.session, format="png")["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def allow_downloads(self, folder) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(folder),
                  eventsEnabled=True)

    def wait_download(self, folder, suffix: str, timeout: float = 15.0) -> Path:
        """The first completed file ending in ``suffix`` in ``folder``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [p for p in Path(folder).glob(f"*{suffix}") if p.stat().st_size > 0]
            if done:
                return done[0]
            time.sleep(0.1)
        raise TimeoutError(f"no {suffix} download in {folder} within {timeout} s")

    def close(self) -> None:
        try:
            if getattr(self, "ws", None):
                try:
                    self.send("Browser.close", timeout=3)
                except (RuntimeError, TimeoutError, OSError):
                    pass
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            shutil.rmtree(self.profile, ignore_errors=True)
            self._log.close()
            self.log_path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
