"""``mmrphys serve``: live heart rate and breathing from the webcam, computed in the browser."""

from __future__ import annotations

_EXAMPLES = """examples:
  mmrphys serve                         http://127.0.0.1:8765/, opens a browser tab
  mmrphys serve --port 0 --no-browser   a free port, printed on the console
  mmrphys serve --model my.onnx         another model (an .onnx, or weights exported once)
  mmrphys serve --host 0.0.0.0          reachable from other machines (prints a warning)"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser(
        "serve", help="start the live web app (camera, on-device inference in the browser)",
        description=__doc__ + "\n\nThe server sends only the page and the model; video never leaves "
                              "the browser.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Checked in mmrphys.web.serve_main (one error line, exit 2), not by argparse (usage + error).
    p.add_argument("--port", default="8765", help="port 0-65535 (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.add_argument("--model", "--weights", dest="model", default=None, metavar="PATH_OR_NAME",
                   help="ONNX file, weights file or named weights ('mmrphys weights list'; a remote one is "
                        "downloaded once) to run (default: the shipped default weights, exported to ONNX "
                        "once and cached)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=run)


def run(args) -> int:
    from mmrphys.web import serve_main

    if args.model:
        from mmrphys.models.weights import resolve_weights

        args.model = str(resolve_weights(args.model, download=True))
    return serve_main(args)
