"""``mmrphys serve``: the in-browser live app (camera → face → ONNX model in a Web Worker → HR/RR).

The page, its workers, the onnxruntime-web wasm and the face detector weights are prebuilt into
``static/`` (see ``webapp/`` and docs/webapp.md); the server sends those files and the ONNX model and
receives nothing. :mod:`mmrphys.web.session` re-analyses exported sessions.
"""

from mmrphys.web.model import WebModel, resolve_model
from mmrphys.web.server import WebServer

__all__ = ["WebModel", "WebServer", "resolve_model", "serve_main"]


def serve_main(args) -> int:
    """Run the server until interrupted (the ``mmrphys serve`` verb)."""
    import sys
    import webbrowser

    from mmrphys.web.server import is_loopback, parse_port

    # Bind first: a bad --port or --host, or a port in use, is one line before any model is exported.
    server = WebServer(args.host, parse_port(args.port), WebModel(available=False, reason="loading"),
                       verbose=getattr(args, "verbose", False))
    try:
        model = server.model = resolve_model(args.model)
    except BaseException:
        server.server_close()
        raise
    if model.available:
        extra = f", first window {model.first_frames}" if model.first_frames else ""
        print(f"model: {model.label} ({model.frames}-frame windows{extra})")
    else:
        print(f"model: none ({model.detail or model.reason}); "
              "the page uses the POS fallback (no breathing rate)")
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}: other machines on the network can open the page",
              file=sys.stderr)
    print(f"mmrphys live: {server.url}  (Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0
