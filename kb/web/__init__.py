"""The web app: JSON API under /api/v1 and HTML pages, built by an app factory."""

from __future__ import annotations

import json
import logging
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from kb.config import Settings
from kb.web import api, api_sources, checker, feeds, ops, pages  # noqa: F401  # feeds adds /search.atom to pages
from kb.web.admission import install_admission
from kb.web.errors import register_error_handlers
from kb.web.inputs import KBRequest, check_text_encoding
from kb.web.limits import install_rate_limits
from kb.web.state import AppState, install_release

log = logging.getLogger("kb.requests")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app without touching disk; the index is opened by the first request."""
    app = Flask(__name__)
    app.request_class = KBRequest  # strict JSON: depth, UTF-8 and surrogates checked (kb.web.inputs)
    settings = settings or Settings.from_env()
    # multipart uploads carry some overhead beyond the text limit itself
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + 64 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep "ok" first, as documented
    app.extensions["kb_state"] = AppState(settings)
    install_release(app)
    app.extensions["kb_settings"] = settings
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    app.register_blueprint(ops.bp, url_prefix="/api/v1")
    _register_blueprints(app)
    register_error_handlers(app)
    install_rate_limits(app, settings)

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()
        # Every endpoint refuses an oversized body up front, before authentication or parsing
        # (Flask alone only refuses when a view reads the body).
        limit = app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()
        check_text_encoding(request)

    # After the checks above, so a request refused for its body never takes a slot.
    install_admission(app, settings)

    @app.after_request
    def finish(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/api/") and request.method in {"GET", "HEAD", "OPTIONS"}:
            response.headers["Access-Control-Allow-Origin"] = "*"
        if request.method == "GET" and response.status_code == 200 and not response.direct_passthrough:
            # Revalidate every time: the index can be rebuilt under a running server, and a
            # matching ETag makes the revalidation a cheap 304.
            response.headers.setdefault("Cache-Control", "no-cache")
            response.add_etag()
            response.make_conditional(request)
        started = g.get("started")
        log.info(json.dumps({
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else None,
            "path": request.path,
            "status": response.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
        }))
        return response

    return app


def _register_blueprints(app: Flask) -> None:
    """The article checker and the write API, registered unconditionally: a broken dependency
    of either fails at start-up instead of silently removing the endpoints."""
    app.register_blueprint(api_sources.bp, url_prefix="/api/v1")
    checker.register(app)
