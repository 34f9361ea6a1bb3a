"""Fault battery: named weights (unknown names, downloads that go wrong, bad local files, the cache).

Downloads never leave the machine: a case that needs a server starts one on 127.0.0.1 inside its
Python snippet, laid out like raw.githubusercontent.com, and points ``MMRPHYS_WEIGHTS_URL`` at it;
"offline" is a closed loopback port. Every download case checks that nothing was left in the cache
(no partial file under the final name, no temporary file).
"""

from __future__ import annotations

import pathlib
import textwrap

from battery.case import Case

NAME = "pure-mmrphys"  # a remote catalogue entry (159 KB)
STEM = "PURE_MMRPhys_SFSAM_Label_Epoch9"
DOWNLOAD = ["weights", "download", NAME, "--no-progress"]

# A snippet: cache in the case's folder, a loopback server answering every GET with {mode}, then the
# CLI with {argv}. Modes: "zeros" (right size, wrong bytes), "half" (the body is cut), "404",
# "interrupt" (half the body, then Ctrl-C arrives), "closed" (nothing listens on the port).
_SNIPPET = """
import http.server, os, signal, socket, sys, threading, time
os.environ["MMRPHYS_CACHE"] = {cache!r}
from mmrphys.cli.main import main
from mmrphys.models import weights
size = weights.get_entry({name!r}).bytes
mode = {mode!r}

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if mode == "404":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if mode == "zeros":
            self.wfile.write(bytes(size))
            return
        self.wfile.write(bytes(size // 2))
        self.wfile.flush()
        if mode == "interrupt":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.0)

    def log_message(self, *args):
        pass

if mode == "closed":
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
else:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
os.environ["MMRPHYS_WEIGHTS_URL"] = f"http://127.0.0.1:{{port}}"
sys.exit(main({argv!r}))
"""


def _snippet(cache: pathlib.Path, mode: str, argv: list[str]) -> str:
    return textwrap.dedent(_SNIPPET).format(cache=str(cache), name=NAME, mode=mode, argv=argv)


def _left_in(folder: pathlib.Path, out: pathlib.Path | None = None):
    """A check: nothing was written to ``out`` and no file is left in the cache ``folder``."""

    def check(run) -> str | None:
        if out is not None and out.exists():
            return f"{out} was written"
        left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        return f"files left in the cache: {left}" if left else None

    return check


def cases(root: pathlib.Path) -> list[Case]:
    root = pathlib.Path(root)
    junk = root / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint\n" * 40)
    onnx = root / "model.onnx"
    onnx.write_bytes(b"\x08\x07not really a graph")
    blocker = root / "a-file"
    blocker.write_text("the cache cannot be a folder under a file\n")
    broken = root / "broken-catalogue"
    broken.mkdir(exist_ok=True)
    (broken / "catalogue.json").write_text('{"weights": [{"name": "x", ')
    damaged = root / "damaged"
    (damaged / "weights").mkdir(parents=True, exist_ok=True)
    (damaged / "weights" / f"{STEM}.pth").write_bytes(b"damaged")

    def served(name: str, mode: str, argv: list[str], **kw) -> Case:
        """A case against a loopback server (or a closed port), with a cache folder of its own."""
        cache = root / name.replace("/", "-")
        out = next((pathlib.Path(a) for a in argv if a.endswith(".onnx")), None)
        return Case(name, [], python=_snippet(cache, mode, argv), check=_left_in(cache, out), **kw)

    def local(name: str, weights: str, must_name: str) -> Case:
        """export-onnx with a local file or a bad name: no network, no output file, no cache."""
        out = root / f"{name.replace('/', '-')}.onnx"
        argv = ["export-onnx", "--weights", weights, "--out", str(out)]
        return Case(name, argv, must_name=must_name, check=_left_in(root / "no-cache", out))

    offline = f"cannot download {STEM}"
    serve = ["serve", "--weights", NAME, "--no-browser", "--port", "0"]
    return [
        Case("weights/unknown-name", ["weights", "info", "no-such-weights"], must_name="no-such-weights"),
        Case("weights/unknown-name-in-download", ["weights", "download", "pure-mmrphyz"],
             must_name="pure-mmrphys"),  # the message suggests the close name
        Case("weights/download-without-names", ["weights", "download"], must_name="--all"),
        local("weights/export-unknown-name", "no-such-weights", "no-such-weights"),
        served("weights/offline", "closed", DOWNLOAD, must_name=offline),
        served("weights/checksum-mismatch", "zeros", DOWNLOAD, must_name="SHA-256"),
        served("weights/cut-body", "half", DOWNLOAD, must_name="the transfer ended after"),
        served("weights/http-404", "404", DOWNLOAD, must_name="HTTP 404"),
        served("weights/ctrl-c-mid-download", "interrupt", DOWNLOAD, expect_exit=130),
        served("weights/export-remote-offline", "closed", ["export-onnx", "--weights", NAME, "--out",
                                                           str(root / "remote.onnx")], must_name=offline),
        served("weights/evaluate-remote-offline", "closed", ["evaluate", NAME, "--data", f"ubfc-rppg={root}"],
               must_name=offline),
        served("weights/serve-remote-offline", "closed", serve, must_name=offline, timeout_s=60),
        Case("weights/unwritable-cache", [], python=_snippet(blocker / "sub", "zeros", DOWNLOAD),
             must_name="cannot write to the weights cache"),
        Case("weights/damaged-cache-offline", [], python=_snippet(damaged, "closed", DOWNLOAD),
             must_name="cannot download",
             check=lambda run: None if [p.name for p in (damaged / "weights").iterdir()] == [f"{STEM}.pth"]
             and (damaged / "weights" / f"{STEM}.pth").read_bytes() == b"damaged" else "the cache changed"),
        local("weights/onnx-file-as-pytorch", str(onnx), "model.onnx: an ONNX export"),
        local("weights/junk-local-file", str(junk), "junk.pth: cannot read weights"),
        local("weights/missing-local-file", str(root / "none.pth"), "none.pth: no such weights file"),
        Case("weights/broken-catalogue", [], python=(
            "import sys\nfrom mmrphys.models import weights\n"
            f"weights.WEIGHTS_DIR = __import__('pathlib').Path({str(broken)!r})\n"
            "from mmrphys.cli.main import main\nsys.exit(main(['weights', 'list']))\n"),
             must_name="unreadable weights catalogue"),
    ]
