"""Named weights: the catalogue's data, downloads from a loopback server laid out like the public one.

The server answers ``/<repository>/<commit>/<path>`` (as raw.githubusercontent.com does) on
127.0.0.1, with files generated here (always) or taken from ../shared/reference (skipped when
absent). ``MMRPHYS_WEIGHTS_URL`` points at it and ``MMRPHYS_CACHE`` at a temporary folder; no test
touches the internet.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest
import torch

from mmrphys import models
from mmrphys.cli.main import main as cli_main
from mmrphys.errors import WeightsError
from mmrphys.models import weights
from mmrphys.models.checkpoints import load_model, load_official, save_weights

REPO, COMMIT = "someone/models", "0123456789abcdef0123456789abcdef01234567"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.server.hits.append(self.path)
        body, mode = self.server.routes.get(self.path, (None, None))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncate":  # the connection drops mid-body
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server:
    """A loopback HTTP server in a thread; ``serve(entry, body, mode)`` publishes a file."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.routes, self.httpd.hits = {}, []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hits(self) -> list[str]:
        return self.httpd.hits

    def serve(self, w: weights.Weights, body: bytes, mode: str | None = None) -> None:
        self.httpd.routes[f"/{w.repository}/{w.commit}/{w.source_path}"] = (body, mode)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch, tmp_path):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    srv = Server()
    monkeypatch.setenv("MMRPHYS_WEIGHTS_URL", srv.url)
    monkeypatch.setenv("MMRPHYS_CACHE", str(tmp_path / "cache"))
    yield srv
    srv.stop()


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A catalogue (injected as the package's) with one small remote file of ours and one ONNX entry."""
    torch.manual_seed(0)
    src = save_weights(models.create("mmrphys_sef", tasks=("bvp",)), tmp_path / "src" / "tiny.pt")
    body = src.read_bytes()
    onnx = b"not really a graph" * 100
    folder = tmp_path / "package"
    folder.mkdir()
    entries = [
        {
            "name": "tiny", "aliases": ["tiny-sef"], "kind": "ours", "file": "tiny.pt",
            "source": {"repository": REPO, "commit": COMMIT, "path": "release/tiny.pt"},
            "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body),
            "architecture": {"model": "mmrphys_sef", "kwargs": {"tasks": ["bvp"]}},
        },
        {
            "name": "tiny_onnx", "kind": "onnx", "file": "tiny.onnx",
            "source": {"repository": REPO, "commit": COMMIT, "path": "release/tiny.onnx"},
            "sha256": hashlib.sha256(onnx).hexdigest(), "bytes": len(onnx),
        },
    ]
    (folder / "catalogue.json").write_text(json.dumps({"weights": entries}))
    monkeypatch.setattr(weights, "WEIGHTS_DIR", folder)
    return {"body": body, "onnx": onnx, "source": src}


def _cache_files(tmp_path) -> list[str]:
    d = tmp_path / "cache" / "weights"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- downloads (always run)
def test_download_once_then_cache_hit_without_network(server, tiny, tmp_path, capsys):
    w = weights.get_entry("tiny-sef")
    server.serve(w, tiny["body"])
    path = weights.resolve_weights("tiny", download=True, progress=False)
    assert path == tmp_path / "cache" / "weights" / "tiny.pt"
    assert path.read_bytes() == tiny["body"] and _cache_files(tmp_path) == ["tiny.pt"]
    err = capsys.readouterr().err.strip().splitlines()
    url = f"{server.url}/{REPO}/{COMMIT}/release/tiny.pt"
    assert err == [f"downloading tiny ({round(len(tiny['body']) / 1024)} KB) from {url}"]
    assert server.hits == [f"/{REPO}/{COMMIT}/release/tiny.pt"]
    server.stop()  # from here on any network access would fail
    assert weights.resolve_weights("tiny", download=True) == path
    assert weights.resolve_weights("TINY.pt") == path  # file name, any case, no download needed
    net = load_model("tiny-sef")
    x = torch.rand(1, 3, 9, 9, 9)
    with torch.no_grad():
        assert torch.equal(net(x)["bvp"], load_model(tiny["source"])(x)["bvp"])
    assert capsys.readouterr().err == "" and len(server.hits) == 1


def test_nothing_is_downloaded_unless_asked(server, tiny):
    w = weights.get_entry("tiny")
    server.serve(w, tiny["body"])
    with pytest.raises(WeightsError, match=r"'tiny' are not downloaded: run 'mmrphys weights download tiny'"):
        weights.resolve_weights("tiny")
    with pytest.raises(WeightsError, match="not downloaded"):
        load_model("tiny", download=False)
    assert server.hits == []


@pytest.mark.parametrize("fault", ["checksum", "cut"])
def test_failed_download_keeps_nothing(server, tiny, tmp_path, fault):
    body, n = tiny["body"], len(tiny["body"])
    if fault == "checksum":  # same size, one byte differs
        server.serve(weights.get_entry("tiny"), body[:1000] + bytes([body[1000] ^ 0xFF]) + body[1001:])
        expected = (r"tiny: the file from http://127\.0\.0\.1:\d+/.* has SHA-256 .*"
                    r"the catalogue expects .*deleted the download .*tiny\.pt\..*\.part")
    else:  # the connection drops after half the body
        server.serve(weights.get_entry("tiny"), body, mode="truncate")
        expected = (rf"cannot download tiny from {server.url}/.*: .*{n // 2:,} of {n:,} bytes"
                    r".*download it elsewhere and pass the file path, or set MMRPHYS_WEIGHTS_URL")
    with pytest.raises(WeightsError, match=expected):
        weights.resolve_weights("tiny", download=True)
    assert _cache_files(tmp_path) == []


def test_short_body_reads_the_same_when_http_client_raises(tiny, tmp_path, monkeypatch):
    class ShortResponse:  # what http.client does on a cut body in versions that raise IncompleteRead
        calls = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, amt):
            self.calls += 1
            if self.calls > 1:
                return b""
            raise http.client.IncompleteRead(tiny["body"][:1000], len(tiny["body"]) - 1000)

    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda *args, **kw: ShortResponse())
    monkeypatch.setenv("MMRPHYS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsError, match=rf"the transfer ended after 1,000 of {len(tiny['body']):,} bytes"):
        weights.download_weights("tiny")
    assert _cache_files(tmp_path) == []


def test_offline_is_one_clear_line(server, tiny, tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MMRPHYS_WEIGHTS_URL", url + "/")  # a trailing slash is fine
    with pytest.raises(WeightsError) as err:
        weights.resolve_weights("tiny", download=True)
    msg = str(err.value)
    assert msg.startswith(f"cannot download tiny from {url}/{REPO}/{COMMIT}/release/tiny.pt: ")
    assert "refused" in msg.lower() and "\n" not in msg
    assert msg.endswith("; download it elsewhere and pass the file path, or set MMRPHYS_WEIGHTS_URL")
    assert _cache_files(tmp_path) == []


def test_missing_file_on_server_is_named(server, tiny):
    with pytest.raises(WeightsError, match=r"cannot download tiny from .*: HTTP 404"):
        weights.download_weights("tiny")


def test_weights_url_setting(server, tiny, monkeypatch):
    w = weights.get_entry("tiny")
    assert w.url() == f"{server.url}/{REPO}/{COMMIT}/release/tiny.pt"
    monkeypatch.delenv("MMRPHYS_WEIGHTS_URL")
    assert w.url() == f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/release/tiny.pt"
    mirror = server.url + "/mirror"
    server.httpd.routes[f"/mirror/{REPO}/{COMMIT}/release/tiny.pt"] = (tiny["body"], None)
    assert weights.download_weights("tiny", base_url=mirror).read_bytes() == tiny["body"]


def test_damaged_cache_is_downloaded_again(server, tiny, tmp_path):
    server.serve(weights.get_entry("tiny"), tiny["body"])
    cached = tmp_path / "cache" / "weights" / "tiny.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(tiny["body"][:-10] + b"x" * 10)
    with pytest.raises(WeightsError, match="not downloaded"):
        weights.resolve_weights("tiny")
    assert weights.resolve_weights("tiny", download=True).read_bytes() == tiny["body"]


def test_unwritable_cache(server, tiny, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("MMRPHYS_CACHE", str(blocker / "sub"))
    server.serve(weights.get_entry("tiny"), tiny["body"])
    with pytest.raises(WeightsError, match=r"cannot write to the weights cache .*a-file/sub/weights "):
        weights.resolve_weights("tiny", download=True)
    assert server.hits == []


def test_local_path_needs_no_network(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("MMRPHYS_WEIGHTS_URL", f"http://127.0.0.1:{_closed_port()}")
    assert weights.resolve_weights(tiny["source"]) == tiny["source"]
    assert load_model(str(tiny["source"])).input_size == 9
    with pytest.raises(WeightsError, match="nowhere/x.pth: no such weights file"):
        weights.resolve_weights(tmp_path / "nowhere" / "x.pth")
    with pytest.raises(WeightsError, match="is a folder, not a weights file"):
        weights.resolve_weights(tmp_path)


def test_onnx_entries_are_not_pytorch_weights(server, tiny):
    server.serve(weights.get_entry("tiny_onnx"), tiny["onnx"])
    assert weights.resolve_weights("tiny_onnx", download=True).read_bytes() == tiny["onnx"]
    with pytest.raises(WeightsError, match=r"tiny\.onnx: an ONNX export, not PyTorch weights"):
        load_model("tiny_onnx")


def test_unknown_names_suggest_close_ones(tiny):
    with pytest.raises(WeightsError, match=r"unknown weights 'tiny-sf' \(did you mean tiny-sef"):
        weights.resolve_weights("tiny-sf")


def test_cli_download_list_info(server, tiny, capsys):
    server.serve(weights.get_entry("tiny"), tiny["body"])
    assert cli_main(["weights", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["NAME", "ALIASES"] and out[1].split()[-1] == "remote"
    assert cli_main(["weights", "download", "tiny", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().endswith("weights/tiny.pt")
    assert cli_main(["weights", "download", "--all", "--no-progress"]) == 2  # tiny_onnx is not served
    assert "HTTP 404" in capsys.readouterr().err
    cli_main(["weights", "list"])
    assert capsys.readouterr().out.splitlines()[1].split()[-1] == "cached"
    assert cli_main(["weights", "info", "tiny", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["state"] == "cached" and info["bytes"] == len(tiny["body"]) and info["measured"] is None


# ----------------------------------------------------------------------------- the shipped catalogue
def test_shipped_catalogue_is_consistent():
    data = weights.read_catalogue()
    entries = weights.catalogue()
    assert weights.default_name() in entries and entries[weights.default_name()].kind == "ours"
    keys = [k.lower() for w in entries.values() for k in (w.name, *w.aliases)]
    assert len(keys) == len(set(keys)), "a name or alias is used twice"
    for w in entries.values():
        assert w.model in models.list_models(), w.name
        models.create(w.model, **w.architecture.get("kwargs", {}))  # the kwargs build the model
        assert w.input["channels"] in ("RGB", "T", "RGBT") and w.input["size"] in (9, 36, 72)
        assert w.input["frames"] in (161, 181) and set(w.tasks) <= {"bvp", "rsp"} and w.tasks
        assert w.licence["weights"] in data["licences"], w.name
        assert w.trained_on["datasets"] and set(w.licence["data"]) == set(w.trained_on["datasets"])
        assert set(w.trained_on["datasets"]) <= set(data["datasets"]), w.name
        # accuracy we measured is never on data the weights were trained on
        assert w.measured is None or w.measured["dataset"] not in w.trained_on["datasets"], w.name
        if w.remote:
            assert len(w.commit) == 40 and len(w.sha256) == 64 and w.bytes > 0
            assert w.name == Path(w.file).stem == Path(w.source_path).stem
    ours = entries[weights.default_name()]
    assert weights.file_sha256(ours.path) == ours.sha256 and ours.path.stat().st_size == ours.bytes


@pytest.mark.reference
def test_catalogue_matches_the_reference_files(official_dir):
    rows = {r["file"]: r for r in csv.DictReader(open(official_dir / "CATALOG.tsv"), delimiter="\t")}
    remote = {w.file: w for w in weights.catalogue().values() if w.remote}
    assert set(remote) == set(rows)
    for f, r in rows.items():
        w = remote[f]
        assert (w.repository, w.commit, w.source_path, w.sha256, w.bytes) == (
            r["repository"], r["commit"], r["path"], r["sha256"], int(r["bytes"]))
        assert w.kind == ("onnx" if f.endswith(".onnx") else "official")
        if (official_dir / f).is_file():
            assert weights.file_sha256(official_dir / f) == w.sha256, f


@pytest.mark.reference
def test_architecture_is_what_the_keys_say(official_dir):
    from mmrphys.models.checkpoints import recognise

    for w in weights.catalogue().values():
        if w.kind == "official" and (official_dir / w.file).is_file():
            info = recognise(official_dir / w.file)
            kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in info.kwargs.items()}
            assert (info.model, kwargs) == (w.model, w.architecture["kwargs"]), w.name


@pytest.mark.reference
def test_load_model_by_name_is_load_official(official_dir, server, capsys):
    official = [w for w in weights.catalogue().values() if w.kind == "official"]
    for w in official:
        if (official_dir / w.file).is_file():
            server.serve(w, (official_dir / w.file).read_bytes())
    with pytest.warns(UserWarning, match="rBP_head"):  # LNF/LLF drop their blood-pressure head
        for w in official:
            if not (official_dir / w.file).is_file():
                continue
            by_name = load_model(w.aliases[0] if w.aliases else w.name, progress=False)
            ref = load_official(official_dir / w.file)
            assert by_name.mmrphys_config == ref.mmrphys_config, w.name
            a, b = by_name.state_dict(), ref.state_dict()
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), w.name
    net, ref = load_model("pure-mmrphys"), load_official(official_dir / "PURE_MMRPhys_SFSAM_Label_Epoch9.pth")
    x = torch.rand(1, 3, 21, 72, 72)
    with torch.no_grad():
        assert torch.equal(net(x)["bvp"], ref(x)["bvp"])
    assert capsys.readouterr().err.count("downloading ") == len(server.hits)


def test_docs_table_is_the_catalogue():
    from mmrphys.cli.weights import markdown_catalogue

    doc = (Path(__file__).resolve().parents[2] / "docs" / "weights.md").read_text(encoding="utf-8")
    block = doc.split("<!-- BEGIN catalogue", 1)[1].split("-->", 1)[1].split("<!-- END catalogue -->", 1)[0]
    assert block.strip() == markdown_catalogue().strip(), "regenerate with: mmrphys weights list --markdown"
    assert block.count("\n| `") == len(weights.catalogue())  # one row per entry
