"""``mmrphys analyze``: after-the-fact analyses (exported web sessions, learned features)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="re-analyse a web session export or model features",
                       description=__doc__)
    what = p.add_subparsers(dest="what", metavar="WHAT")

    s = what.add_parser("session", help="re-analyse a session JSON/CSV exported by the web app")
    s.add_argument("file", help="session export (.json or .csv) from 'mmrphys serve'")
    s.add_argument("--out", default=None, help="folder for the report (default: next to the file)")
    s.add_argument("--json", default=None, help="write the result JSON here")
    s.set_defaults(func=_session)

    f = what.add_parser("features", help="cosine similarity of temporal embeddings to the ground truth "
                        "(paper Fig. 4/5), for one or two models side by side")
    f.add_argument("weights", nargs="+", help="one or two weights files or run folders")
    f.add_argument("--data", action="append", default=[], metavar="NAME=PATH",
                   help="dataset to draw a sample from")
    f.add_argument("--out", default="features", help="output folder for the maps")
    f.set_defaults(func=_features)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _session(args) -> int:
    from mmrphys.web.session import analyze_session_main

    return analyze_session_main(args)


def _features(args) -> int:
    from mmrphys.training.analysis import features_main

    return features_main(args)
