"""Serving the app with waitress: bounded uploads, refusals in the error shape, graceful stop.

* **Bodies are bounded before they are read.** waitress reads a whole request body (spooling it
  to disk, up to 1 GiB by default) before the app sees the request, so the app's own 413 came only
  after the upload. ``create_server`` sets ``max_request_body_size`` one byte above the app's
  MAX_CONTENT_LENGTH: waitress then refuses a declared Content-Length over the app's limit as soon
  as the headers are in (``HTTPRequestParser.received``), and a chunked body once it passes it.
  ``channel_timeout`` closes a connection that stalls mid-upload or sits idle.
* **waitress's own refusals use the app's error shape.** Its ErrorTask writes plain text;
  ``RefusalTask`` renders the same error through the app instead (JSON under /api/, the HTML error
  page elsewhere, the security headers on both).
* **SIGTERM drains.** ``serve`` runs waitress's event loop itself, so a signal only sets a flag:
  the loop then closes the listening sockets (new connections are refused), keeps serving the
  requests in flight until they are answered or the grace period ends, closes idle keep-alive
  connections, stops the worker threads and returns 0. Raising SystemExit from the handler instead
  interrupts the event loop mid-call and closes sockets under running requests.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.server import create_server as waitress_server
from waitress.task import ErrorTask
from werkzeug.test import EnvironBuilder

from kb.config import Settings
from kb.web.errors import error_body, error_response

log = logging.getLogger("kb.server")
LOOP_TIMEOUT = 0.2  # seconds the event loop waits per turn: how soon a signal is noticed


def _refusal_message(code: int, detail: str, request: Any, limit: int) -> str:
    """What waitress refused, in words that say what to do."""
    if code == 413:
        declared = getattr(request, "content_length", 0)
        size = f"it declares {declared:,} bytes and " if declared else ""  # chunked: counted as read
        return (f"The request body is too large: {size}the limit is {limit:,} bytes; send less "
                "text or a smaller file (an article over 200 KB can be checked in parts).")
    if code == 431:
        return "The request's headers are too large; send fewer or shorter headers (cookies, referrers)."
    if code == 501:
        return (f"{detail.rstrip('.')}: send the body with a Content-Length header or as chunked "
                "transfer encoding.")
    if code == 400:
        return f"The HTTP request is malformed ({detail}); send a well-formed HTTP/1.1 request."
    return "Something went wrong on our side; try again, and report it if it persists."


def _path_of(request: Any) -> str:
    """The path the refused request asked for (JSON under /api/, a page elsewhere).

    For headers too large, waitress parses a stand-in "GET /" request; the real request line is
    still at the start of the bytes it had buffered.
    """
    path = str(getattr(request, "path", "") or "/")
    if path == "/" and getattr(request, "error", None) is not None and request.error.code == 431:
        line = bytes(getattr(request, "header_plus", b"")).split(b"\r\n", 1)[0].split(b" ")
        if len(line) >= 2 and line[1].startswith(b"/"):
            path = line[1].split(b"?", 1)[0].decode("latin-1")
    return path


def _render(app: Flask, code: int, message: str, path: str, method: str
            ) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of the app's error answer for *path*, without routing to a view.

    Only the error handlers and the after-request hooks run (no rate limit, no view): the request
    was never complete, so nothing else may look at it.
    """
    environ = EnvironBuilder(path=path if path.startswith("/") else "/", method=method).get_environ()
    with app.request_context(environ):
        response = app.make_response(error_response(message, code))
        response = app.process_response(response)
        body = response.get_data()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return response.status, headers, body


class RefusalTask(ErrorTask):
    """waitress's answer to a request it refuses before the app (too large, malformed), rendered by
    the app so that it has the one error shape; plain JSON if even that fails."""

    def execute(self) -> None:
        error = self.request.error
        code = int(getattr(error, "code", 500))
        server = self.channel.server
        app: Flask = getattr(server, "kb_app", None) or server.application
        limit = int(server.adj.max_request_body_size) - 1
        message = _refusal_message(code, str(getattr(error, "body", "")), self.request, limit)
        try:
            status, headers, body = _render(app, code, message, _path_of(self.request),
                                            str(getattr(self.request, "command", "") or "GET"))
        except Exception:  # the answer must go out whatever happens: fall back to bare JSON
            log.exception("could not render a refusal through the app")
            status = f"{code} {getattr(error, 'reason', 'Error')}"
            headers = [("Content-Type", "application/json")]
            body = json.dumps(error_body(message, code)).encode()
        self.status = status
        self.response_headers.extend(headers)
        self.set_close_on_finish()  # the body was not read: the connection cannot carry another request
        self.content_length = len(body)
        self.write(body)


class KBChannel(HTTPChannel):
    """waitress's channel with refusals answered by ``RefusalTask``."""

    error_task_class = RefusalTask


def _listeners(server: Any) -> list[BaseWSGIServer]:
    """The listening sockets of *server* (one per address: "localhost" may give two)."""
    if isinstance(server, BaseWSGIServer):
        return [server]
    return [item for item in server.map.values() if isinstance(item, BaseWSGIServer)]


def _socket_map(server: Any) -> dict[int, Any]:
    return server.map if hasattr(server, "map") else server._map


def create_server(app: Flask, settings: Settings, host: str, port: int, threads: int) -> Any:
    """A waitress server for *app* that bounds bodies and stalled connections (see the module)."""
    limit = int(app.config["MAX_CONTENT_LENGTH"])
    # Searches are CPU-bound Python holding the GIL; waitress's loop and a cheap request's thread
    # must take it back for every read and write. The default 5 ms switch interval makes each of
    # those hand-offs wait behind a running search; 1 ms keeps a health check or a page fast
    # under load, for a throughput cost too small to measure here.
    sys.setswitchinterval(0.001)
    server = waitress_server(
        app, host=host, port=port, threads=threads, ident="evidence-kb",
        # waitress refuses Content-Length >= this on the headers alone; the app allows <= limit
        max_request_body_size=limit + 1,
        channel_timeout=settings.channel_timeout_s,
        # the sweep that enforces channel_timeout runs every cleanup_interval seconds
        cleanup_interval=max(1, min(30, settings.channel_timeout_s // 2)),
    )
    for listener in _listeners(server):
        listener.channel_class = KBChannel
        listener.kb_app = app  # type: ignore[attr-defined]  # the app behind any WSGI middleware
    return server


def _channels(socket_map: dict[int, Any]) -> list[HTTPChannel]:
    return [item for item in list(socket_map.values()) if isinstance(item, HTTPChannel)]


def _in_flight(channel: HTTPChannel) -> bool:
    """A request is being received, run, or its answer is still being sent."""
    return bool(channel.requests) or channel.request is not None or bool(channel.total_outbufs_len)


def serve(server: Any, grace_s: float, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> int:
    """Run *server* until one of *signals*, then drain for up to *grace_s* seconds; returns 0.

    A second signal during the drain stops waiting for the requests still in flight.
    """
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)  # only a flag: the loop below does the work between its turns

    for signum in signals:
        signal.signal(signum, on_signal)
    socket_map = _socket_map(server)
    use_poll = server.adj.asyncore_use_poll
    while not received:
        wasyncore.loop(timeout=LOOP_TIMEOUT, map=socket_map, use_poll=use_poll, count=1)
    started = time.monotonic()
    for listener in _listeners(server):
        # Close the listening socket only: BaseWSGIServer.close would also close the trigger the
        # worker threads use to wake this loop when an answer is ready.
        wasyncore.dispatcher.close(listener)
    busy = [channel for channel in _channels(socket_map) if _in_flight(channel)]
    log.info("%s: stopped accepting connections; draining %d request(s) for up to %g s",
             signal.Signals(received[0]).name, len(busy), grace_s)
    deadline = started + grace_s
    while time.monotonic() < deadline and len(received) < 2:
        channels = _channels(socket_map)
        if not channels:
            break
        for channel in channels:
            if not _in_flight(channel) and not channel.will_close:
                channel.will_close = True  # an idle keep-alive connection: closed on the next turn
        wasyncore.loop(timeout=LOOP_TIMEOUT / 2, map=socket_map, use_poll=use_poll, count=1)
    left = [channel for channel in _channels(socket_map) if _in_flight(channel)]
    if left:
        log.warning("grace period over: closing %d connection(s) with requests still in flight", len(left))
    # The threads are idle once every answer is out; a thread still inside a request gets one
    # second more and is then abandoned.
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=1 if left else 5)
    wasyncore.close_all(socket_map, ignore_all=True)
    log.info("stopped after draining for %.1f s", time.monotonic() - started)
    if server.task_dispatcher.threads:
        # A thread abandoned inside a C++ extension (rapidfuzz, onnxruntime) aborts the interpreter
        # while it finalises ("terminate called without an active exception", exit -6): leave at
        # once instead, with the logs flushed.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0

