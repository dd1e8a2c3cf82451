"""Run the web service: build the index when missing or stale, then serve with waitress."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

from kb.build import build, index_state
from kb.config import Settings
from kb.errors import KBError
from kb.progress import progress_bars


def ensure_index(settings: Settings, out: object = sys.stderr) -> None:
    """Build the index if it is missing or was built from another corpus or schema."""
    state, _ = index_state(settings)
    if state == "current":
        return
    reason = "no index yet" if state == "missing" else "the corpus or the code changed"
    print(f"Building the search index ({reason}) ...", file=out, flush=True)  # type: ignore[call-overload]
    report = build(settings, progress=progress_bars(out))
    counts = report.manifest["counts"]
    print(f"Indexed {counts['sources']} sources and {counts['claims']} claims in "
          f"{report.manifest['build_seconds']} s.", file=out, flush=True)  # type: ignore[call-overload]


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, prepare the index, serve until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(prog="server.py", description="Serve Evidence KB over HTTP.")
    parser.add_argument("--host", default=os.environ.get("KB_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("KB_PORT", "5000")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("KB_THREADS", "8")))
    parser.add_argument("--corpus-dir", default=None, help="corpus folder (default: corpus/)")
    parser.add_argument("--index-dir", default=None, help="index folder (default: index/)")
    args = parser.parse_args(argv)

    from pathlib import Path

    settings = Settings.from_env()
    corpus_dir = Path(args.corpus_dir) if args.corpus_dir else None
    index_dir = Path(args.index_dir) if args.index_dir else None
    if corpus_dir is not None and index_dir is None:
        index_dir = corpus_dir.parent / ("index" if corpus_dir.name == "corpus" else f"{corpus_dir.name}-index")
    settings = settings.with_dirs(corpus_dir, index_dir)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not _port_free(args.host, args.port):
        print(f"Error: port {args.port} on {args.host} is in use: stop the other server or pass "
              f"--port (or KB_PORT) with a free port", file=sys.stderr)
        return 1
    try:
        ensure_index(settings)
    except KBError as error:
        print(f"Error: the index could not be built: {error}", file=sys.stderr)
        return 1

    import waitress

    from kb.web import create_app

    app = create_app(settings)
    app.extensions["kb_state"].knowledge_base()  # open once now, so the first request is fast
    server = waitress.create_server(app, host=args.host, port=args.port, threads=args.threads,
                                    ident="evidence-kb")

    def stop(signum: int, frame: object) -> None:
        server.close()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"Serving Evidence KB on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0
