"""Rate limits per client address: one bucket for the article checker, one for searching.

The checker is the expensive endpoint: its API route and its page share ONE bucket
(``settings.check_rate_limit``), so a client cannot double its allowance by alternating between
them. Searches (``/api/v1/search`` and the ``/search`` page) share another
(``settings.search_rate_limit``); the bare home page, which runs no search, is not counted.

Flask-Limiter counts requests per client address in memory (per process; the server runs one
process with threads). A refused request gets the JSON error shape (or the HTML error page) with a
Retry-After header equal to the seconds named in its message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, Response, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address

from kb.config import Settings
from kb.web.errors import error_response

# (scope, rules, methods, what a refused client was doing) per bucket.
CHECK_RULES = ("/api/v1/check", "/check")
SEARCH_RULES = ("/api/v1/search", "/search", "/", "/search.atom",  # a feed poll is a search
                "/api/v1/consensus")  # a consensus runs a search
_WHAT = {"check": "article checks", "search": "searches"}


def _no_search() -> bool:
    """The home page without parameters runs no search, so it costs no search allowance."""
    return request.path == "/" and not request.args


def install_rate_limits(app: Flask, settings: Settings) -> Limiter | None:
    """Limit checker POSTs and searches per client address; None when both limits are off."""
    every: list[tuple[str, str, tuple[str, ...], list[str], Callable[[], bool] | None]] = [
        ("check", settings.check_rate_limit, CHECK_RULES, ["POST"], None),
        ("search", settings.search_rate_limit, SEARCH_RULES, ["GET", "HEAD"], _no_search)]
    buckets = [bucket for bucket in every if bucket[1]]
    if not buckets:
        return None
    # headers_enabled stays off: Flask-Limiter would rewrite Retry-After from its own clock, one
    # second off the message; rate_headers below sends the X-RateLimit-* headers itself.
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", headers_enabled=False,
                      default_limits=[])
    wrapped: dict[str, str] = {}  # endpoint -> scope, so a view behind two rules is wrapped once
    for scope, limit, rules, methods, exempt in buckets:
        shared = limiter.shared_limit(limit, scope=scope, methods=methods, exempt_when=exempt)
        for rule in app.url_map.iter_rules():
            if rule.rule in rules and rule.endpoint not in wrapped and set(methods) & (rule.methods or set()):
                wrapped[rule.endpoint] = scope
                app.view_functions[rule.endpoint] = shared(app.view_functions[rule.endpoint])  # type: ignore[assignment]

    def seconds_left() -> int:
        """Seconds until the client's window resets: one number for the message and the header."""
        current = limiter.current_limit
        # window[0] is when the oldest counted request leaves the window (reset_at adds a second)
        return max(1, math.ceil(current.window[0] - time.time())) if current else 60

    @app.errorhandler(RateLimitExceeded)
    def too_many(error: RateLimitExceeded) -> ResponseReturnValue:
        retry = seconds_left()
        scope = wrapped.get(request.endpoint or "", "")
        body, status = error_response(
            f"Too many {_WHAT.get(scope, 'requests')} from your address (limit: {error.limit.limit}); "
            f"retry in {retry} seconds.", 429)
        return body, status, {"Retry-After": str(retry)}

    app.after_request(_rate_headers(limiter))
    return limiter


def _rate_headers(limiter: Limiter) -> Callable[[Response], Response]:
    def rate_headers(response: Response) -> Response:
        """X-RateLimit-Limit/Remaining/Reset on every limited response, so clients can pace themselves."""
        current = limiter.current_limit
        if current is not None:
            response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
            response.headers["X-RateLimit-Remaining"] = str(current.remaining)
            response.headers["X-RateLimit-Reset"] = str(current.reset_at)
        return response

    return rate_headers
