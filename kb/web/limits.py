"""Rate limits: the article checker is the expensive endpoint, so it is limited per client.

Flask-Limiter counts requests per client address in memory (per process; the server runs one
process with threads). A refused request gets the JSON error shape (or the HTML error page) with
a Retry-After header and a message that says when to retry.
"""

from __future__ import annotations

import math
import time

from flask import Flask
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address

from kb.config import Settings
from kb.web.errors import error_response

# Routes whose POSTs run the article checker.
LIMITED_RULES = ("/api/v1/check", "/check")


def install_rate_limits(app: Flask, settings: Settings) -> Limiter | None:
    """Limit POSTs to the article checker to ``settings.check_rate_limit`` per client."""
    if not settings.check_rate_limit:
        return None
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", headers_enabled=True,
                      default_limits=[])
    for rule in app.url_map.iter_rules():
        if rule.rule in LIMITED_RULES and "POST" in (rule.methods or set()):
            view = app.view_functions[rule.endpoint]
            app.view_functions[rule.endpoint] = limiter.limit(
                settings.check_rate_limit, methods=["POST"])(view)

    @app.errorhandler(RateLimitExceeded)
    def too_many(error: RateLimitExceeded) -> ResponseReturnValue:
        current = limiter.current_limit
        retry = max(1, math.ceil(current.reset_at - time.time())) if current else 60
        body, status = error_response(
            f"Too many article checks from your address (limit: {error.limit.limit}); "
            f"retry in {retry} seconds.", 429)  # type: ignore[misc]
        return body, status, {"Retry-After": str(retry)}

    return limiter
