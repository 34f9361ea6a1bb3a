"""Raw HTTP over loopback sockets, for the server tests and the fault battery (benchmarks/battery)."""

from __future__ import annotations

import socket

#: Requests http.server itself refuses, and the status it must answer (always with our headers);
#: ``{port}`` is replaced by the server's port.
MALFORMED = {
    "bad-request-line": (b"GARBAGE\r\n\r\n", 400),
    "bad-http-version": (b"GET / HTTP/x.y\r\n\r\n", 400),  # answered before the version is known
    "http-0.9-request": (b"GET /\r\n", 400),  # a 0.9 answer could have no headers at all: refused
    "http-2-request": (b"GET / HTTP/2.0\r\n\r\n", 505),
    "huge-uri": (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    "huge-header-line": (b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n", 431),
    "too-many-headers": (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n",
                         431),
    "unknown-method": (b"BREW / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n", 501),
}


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection to 127.0.0.1:``port`` and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """``(status, headers, body)`` of a raw HTTP/1.x answer; ValueError when it has no status line."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1."):
        raise ValueError(f"no HTTP status line in the answer: {raw[:60]!r}")
    return int(lines[0].split()[1]), dict(line.split(": ", 1) for line in lines[1:] if ": " in line), body
