"""Run the web service: build the index when missing or stale, then serve with waitress."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace

from kb.build import build, current_problems, index_state, resolve_build
from kb.config import Settings
from kb.errors import KBError
from kb.progress import progress_bars
from kb.search import check_engine
from kb.web.admission import threads_needed


def ensure_index(settings: Settings, out: object = sys.stderr) -> None:
    """Build the index if it is missing, damaged, or was built from another corpus or schema.

    A damaged build is repaired by building afresh; when that build fails too (a corpus error,
    a full disk), an intact earlier build is served, degraded, rather than no service at all,
    and /api/v1/health says so. Otherwise a failed build raises KBError.
    """
    state, _ = index_state(settings)
    if state == "current":
        return
    if settings.engine and state == "stale":
        # A database's builds are published by `kb --engine URL build` (on the primary; this
        # server may read a replica): serve what it holds rather than build from this machine.
        print("Note: the database serves a build of another corpus or version; publish a new one "
              "with: kb --engine URL build", file=out, flush=True)  # type: ignore[call-overload]
        return
    if state == "corrupt":
        problems = current_problems(settings.index_dir)
        reason = f"the served build is damaged: {problems[0]}" if problems else "the index is damaged"
    else:
        reason = "no index yet" if state == "missing" else "the corpus or the code changed"
    print(f"Building the search index ({reason}) ...", file=out, flush=True)  # type: ignore[call-overload]
    try:
        # Lines when the output is a log, not a terminal: the README promises visible progress.
        report = build(settings, progress=progress_bars(out, lines=True))
    except KBError as error:
        if state != "corrupt":
            raise
        try:
            served = resolve_build(settings.index_dir)
        except KBError:
            raise error from None
        print(f"Warning: the index could not be rebuilt ({error}); {served.reason()}",
              file=out, flush=True)  # type: ignore[call-overload]
        return
    counts = report.manifest["counts"]
    print(f"Indexed {counts['sources']} sources and {counts['claims']} claims in "
          f"{report.manifest['build_seconds']} s.", file=out, flush=True)  # type: ignore[call-overload]


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As waitress binds: connections a stopped server closed linger in TIME_WAIT for a minute
        # and must not block a restart, while a server still listening does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
    parser.add_argument("--threads", type=int, default=int(os.environ.get("KB_THREADS", "0")) or None,
                        help="worker threads (default: enough for the searches and checks admitted "
                             "at once, plus 4 for cheap requests)")
    parser.add_argument("--corpus-dir", default=None, help="corpus folder (default: corpus/)")
    parser.add_argument("--index-dir", default=None, help="index folder (default: index/)")
    parser.add_argument("--engine", default=None, metavar="URL",
                        help="serve from a PostgreSQL database (postgresql://user@host:port/db; "
                             "default: KB_ENGINE, else the index folder); a replica serves reads")
    args = parser.parse_args(argv)

    from pathlib import Path

    settings = Settings.from_env().for_folders(Path(args.corpus_dir) if args.corpus_dir else None,
                                               Path(args.index_dir) if args.index_dir else None)
    if args.engine is not None:
        settings = replace(settings, engine=args.engine.strip())
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not _port_free(args.host, args.port):
        print(f"Error: port {args.port} on {args.host} is in use: stop the other server or pass "
              f"--port (or KB_PORT) with a free port", file=sys.stderr)
        return 1
    try:
        check_engine(settings.engine)
        ensure_index(settings)
    except KBError as error:
        print(f"Error: the index could not be built: {error}", file=sys.stderr)
        return 1

    from kb.web import create_app
    from kb.web.serve import create_server, serve

    app = create_app(settings)
    app.extensions["kb_state"].knowledge_base()  # open once now, so the first request is fast
    # Bodies bounded on their headers, refusals in the error shape, stalled uploads closed after
    # KB_CHANNEL_TIMEOUT s (kb.web.serve).
    server = create_server(app, settings, args.host, args.port, args.threads or threads_needed(settings))
    print(f"Serving Evidence KB on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    # SIGTERM or Ctrl-C: stop accepting, answer the requests in flight (up to KB_SHUTDOWN_GRACE
    # s), then exit 0.
    return serve(server, settings.shutdown_grace_s)
