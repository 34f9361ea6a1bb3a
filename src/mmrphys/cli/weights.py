"""``mmrphys weights``: the named weights (ours, shipped; the authors' releases, downloaded on request).

Nothing is downloaded unless you ask: 'mmrphys weights download NAME', or '--weights NAME' of a
remote entry in estimate, serve, evaluate, export-onnx or train (downloads it once). Files go to
$MMRPHYS_CACHE/weights (default ~/.cache/mmrphys/weights) and are checked against their SHA-256.
MMRPHYS_WEIGHTS_URL replaces https://raw.githubusercontent.com (a mirror, or file:///folder).
"""

from __future__ import annotations

import argparse
import json

_EPILOG = """examples:
  mmrphys weights list                              every named weights and its state (shipped/cached/remote)
  mmrphys weights info pure-mmrphys                 architecture, input, training data, licences, source
  mmrphys weights download pure-mmrphys scamps-lef  fetch two releases into the cache
  mmrphys weights download --all                    fetch every release (about 10 MB)
  mmrphys estimate video.mp4 --method mmrphys --weights pure-mmrphys
  MMRPHYS_WEIGHTS_URL=file:///mnt/mirror mmrphys weights download --all   from a local mirror"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "weights",
        help="list, describe and download named weights",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = verbs.add_parser("list", help="every named weights")
    fmt = ls.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the catalogue entries as JSON")
    fmt.add_argument("--markdown", action="store_true", help="the table of docs/weights.md")
    info = verbs.add_parser("info", help="one entry in full")
    info.add_argument("name", metavar="NAME", help="name, alias or file name (see 'mmrphys weights list')")
    info.add_argument("--json", action="store_true", help="as JSON")
    dl = verbs.add_parser("download", help="fetch remote entries into the cache (explicit request)")
    dl.add_argument("names", nargs="*", metavar="NAME", help="names or aliases")
    dl.add_argument("--all", action="store_true", help="every remote entry")
    dl.add_argument("--force", action="store_true", help="download again even when cached")
    bar = dl.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="show a progress bar (default: on a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    return {"list": _list, "info": _info, "download": _download}[args.action](args)


def _state(w) -> str:
    from mmrphys.models.weights import is_cached

    if not w.remote:
        return "shipped" if w.path.is_file() else "missing"
    return "cached" if is_cached(w) else "remote"


def _input(w) -> str:
    i = w.input
    if not i:
        return ""
    return f"{i.get('channels', '?')} {i.get('size', '?')}x{i.get('size', '?')}x{i.get('frames', '?')}"


def _trained(w) -> str:
    return "+".join(w.trained_on.get("datasets", ())) or "?"


def _list(args) -> int:
    from mmrphys.models.weights import catalogue

    entries = catalogue()
    if args.json:
        print(json.dumps([w.to_dict() for w in entries.values()], indent=1))
        return 0
    if args.markdown:
        print(markdown_catalogue())
        return 0
    rows = [("NAME", "ALIASES", "KIND", "MODEL", "INPUT", "TASKS", "TRAINED ON", "KB", "STATE")]
    for w in entries.values():
        size = w.bytes or (w.path.stat().st_size if w.path.is_file() else 0)
        kb = str(round(size / 1024))
        rows.append((w.name, ",".join(w.aliases), w.kind, w.model or "?", _input(w), "+".join(w.tasks),
                     _trained(w), kb, _state(w)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(n) for c, n in zip(r, widths)).rstrip())
    return 0


def markdown_catalogue() -> str:
    """The block of docs/weights.md between its ``catalogue`` markers (a test keeps the two equal)."""
    from mmrphys.models.weights import catalogue

    return markdown_table(catalogue().values()) + "\n\n" + markdown_terms()


def markdown_table(entries) -> str:
    """The entries as a Markdown table."""
    from mmrphys.models.weights import licence_terms

    lines = [
        "| name | aliases | kind | architecture | input (channels size×size×frames, fps) | tasks "
        "| trained on | licence: weights / data | KB | measured |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in entries:
        terms = licence_terms(w)
        data = ", ".join(terms["data"]) or "?"
        use = " (research only)" if terms["research_only"] else ""
        kwargs = ", ".join(f"{k}={'+'.join(v) if isinstance(v, list) else v}"
                           for k, v in w.architecture.get("kwargs", {}).items())
        measured = "not yet" if w.measured is None else _measured(w.measured)
        fps = w.input.get("fps")
        licence = f"{terms['weights'].get('key', '?')} / {data}{use}"
        lines.append(
            f"| `{w.name}` | {', '.join(f'`{a}`' for a in w.aliases)} | {w.kind} | `{w.model}` {kwargs} "
            f"| {_input(w)}{f', {fps} fps' if fps else ''} | {'+'.join(w.tasks)} | {_trained(w)} "
            f"| {licence} | {round((w.bytes or 0) / 1024)} | {measured} |"
        )
    return "\n".join(lines)


def markdown_terms() -> str:
    """The catalogue's licences and training-data terms as two Markdown tables."""
    from mmrphys.models.weights import read_catalogue

    data = read_catalogue()
    yes = {True: "yes", False: "no", None: "not stated"}
    lines = ["| weights licence | research only | summary |", "|---|---|---|"]
    for k, v in data.get("licences", {}).items():
        only = yes[v.get("research_only")]
        lines.append(f"| [{v.get('name', k)}]({v.get('url')}) (`{k}`) | {only} | {v.get('summary', '')} |")
    lines += ["", "| training data | research only | terms | reference |", "|---|---|---|---|"]
    for k, v in data.get("datasets", {}).items():
        name, only = f"[{k}]({v['url']})" if v.get("url") else k, yes[v.get("research_only")]
        lines.append(f"| {name} | {only} | {v.get('terms', '')} | {v.get('reference', '')} |")
    return "\n".join(lines)


def _measured(m: dict) -> str:
    return "; ".join(f"{k} {v}" for k, v in m.items())


def _info(args) -> int:
    from mmrphys.models.weights import get_entry, licence_terms

    w = get_entry(args.name)
    terms = licence_terms(w)
    if args.json:
        print(json.dumps(w.to_dict() | {"licence_terms": terms, "state": _state(w)}, indent=1))
        return 0
    lic, t = terms["weights"], w.trained_on
    lines = [
        ("name", w.name),
        ("aliases", ", ".join(w.aliases) or "-"),
        ("kind", w.kind),
        ("architecture", f"{w.model} {json.dumps(w.architecture.get('kwargs', {}))}"),
        ("input", f"{_input(w)} (channels size x size x frames T+1), {w.input.get('fps', '?')} fps"),
        ("tasks", ", ".join(w.tasks)),
        ("trained on", f"{_trained(w)}: {t.get('split', '?')}; {t.get('epochs', '?')} epochs" if t else "?"),
        ("weights licence", f"{lic.get('name', '?')}: {lic.get('summary', '')} {lic.get('url') or ''}"),
    ]
    lines += [(f"data: {d}", f"{t.get('terms', '?')} ({t.get('reference', '')}) {t.get('url') or ''}")
              for d, t in terms["data"].items()]
    lines += [
        ("use", "research only (see the licences above)" if terms["research_only"] else "see the licences"),
        ("source", f"{w.repository} @ {w.commit}: {w.source_path}" if w.remote else "shipped with mmrphys"),
        ("url", w.url() or "-"),
        ("sha256", w.sha256 or "-"),
        ("size", f"{w.bytes:,} bytes" if w.bytes else "-"),
        ("file", f"{w.path} ({_state(w)})"),
    ]
    if w.runtime_path is not None:
        branch = "+".join(w.runtime.get("tasks", []))
        lines.append(("runtime twin", f"{w.runtime_path} (the {branch} branch as ONNX: what the main job "
                                      "runs by default, without torch)"))
    lines += [
        ("measured", "not measured yet" if w.measured is None else _measured(w.measured)),
        ("notes", w.notes or "-"),
    ]
    width = max(len(k) for k, _ in lines) + 1
    for key, value in lines:
        print(f"{key + ':':{width}} {value.strip()}")
    return 0


def _download(args) -> int:
    from mmrphys.errors import ConfigError
    from mmrphys.models.weights import catalogue, download_weights, get_entry, is_cached

    if args.all == bool(args.names):
        raise ConfigError("give NAME... or --all (not both)")
    if args.all:
        entries = [w for w in catalogue().values() if w.remote]
    else:
        entries = [get_entry(n) for n in args.names]
    for w in entries:
        if not w.remote:
            print(f"{w.name}: shipped with mmrphys ({w.path})")
            continue
        was_cached = is_cached(w) and not args.force
        path = download_weights(w, progress=args.progress, force=args.force)
        print(f"{w.name}: {path}{' (already cached)' if was_cached else ''}")
    return 0
