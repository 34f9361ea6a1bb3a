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


def _snippet(root: pathlib.Path, mode: str, argv: list[str], cache: pathlib.Path | None = None) -> str:
    cache = cache or root / "cache"
    return textwrap.dedent(_SNIPPET).format(cache=str(cache), name=NAME, mode=mode, argv=argv)


def _cache_left_empty(run) -> str | None:
    folder = pathlib.Path(run.root) / "cache"
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return f"files left in the cache: {left}" if left else None


def _no_file(path: pathlib.Path):
    def check(run) -> str | None:
        return f"{path} was written" if path.exists() else _cache_left_empty(run)

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
    out_onnx = root / "out.onnx"

    def offline(argv: list[str]) -> str:
        return _snippet(root, "closed", argv)

    return [
        Case("weights/unknown-name", ["weights", "info", "no-such-weights"], must_name="no-such-weights"),
        Case("weights/unknown-name-in-download", ["weights", "download", "pure-mmrphyz"],
             must_name="pure-mmrphys"),  # the message suggests the close name
        Case("weights/download-without-names", ["weights", "download"], must_name="--all"),
        Case("weights/export-unknown-name", ["export-onnx", "--weights", "no-such-weights", "--out",
                                             str(out_onnx)], must_name="no-such-weights",
             check=_no_file(out_onnx)),
        Case("weights/offline", [], python=offline(DOWNLOAD),
             must_name=f"cannot download {STEM}", check=_cache_left_empty),
        Case("weights/checksum-mismatch", [], python=_snippet(root, "zeros", DOWNLOAD),
             must_name="SHA-256", check=_cache_left_empty),
        Case("weights/cut-body", [], python=_snippet(root, "half", DOWNLOAD),
             must_name="the transfer ended after", check=_cache_left_empty),
        Case("weights/http-404", [], python=_snippet(root, "404", DOWNLOAD),
             must_name="HTTP 404", check=_cache_left_empty),
        Case("weights/ctrl-c-mid-download", [], python=_snippet(root, "interrupt", DOWNLOAD),
             expect_exit=130, check=_cache_left_empty),
        Case("weights/unwritable-cache", [],
             python=_snippet(root, "zeros", DOWNLOAD, cache=blocker / "sub"),
             must_name="cannot write to the weights cache"),
        Case("weights/damaged-cache-offline", [], python=_snippet(root, "closed", DOWNLOAD,
                                                                  cache=damaged),
             must_name="cannot download",
             check=lambda run: None if (damaged / "weights" / f"{STEM}.pth").read_bytes() == b"damaged"
             and len(list((damaged / "weights").iterdir())) == 1 else "the cache folder changed"),
        Case("weights/export-remote-offline", [],
             python=offline(["export-onnx", "--weights", NAME, "--out", str(out_onnx)]),
             must_name=f"cannot download {STEM}", check=_no_file(out_onnx)),
        Case("weights/evaluate-remote-offline", [],
             python=offline(["evaluate", NAME, "--data", f"ubfc-rppg={root}"]),
             must_name=f"cannot download {STEM}", check=_cache_left_empty),
        Case("weights/serve-remote-offline", [],
             python=offline(["serve", "--weights", NAME, "--no-browser", "--port", "0"]),
             must_name=f"cannot download {STEM}", check=_cache_left_empty, timeout_s=60),
        Case("weights/onnx-file-as-pytorch", ["export-onnx", "--weights", str(onnx), "--out", str(out_onnx)],
             must_name="model.onnx: an ONNX export", check=_no_file(out_onnx)),
        Case("weights/junk-local-file", ["export-onnx", "--weights", str(junk), "--out", str(out_onnx)],
             must_name="junk.pth: cannot read weights", check=_no_file(out_onnx)),
        Case("weights/missing-local-file", ["export-onnx", "--weights", str(root / "none.pth"), "--out",
                                            str(out_onnx)], must_name="none.pth: no such weights file"),
        Case("weights/broken-catalogue", [], python=(
            "import sys\nfrom mmrphys.models import weights\n"
            f"weights.WEIGHTS_DIR = __import__('pathlib').Path({str(broken)!r})\n"
            "from mmrphys.cli.main import main\nsys.exit(main(['weights', 'list']))\n"),
             must_name="unreadable weights catalogue"),
    ]
