"""One error shape for the API, a friendly page for HTML; registered on the app, not a blueprint.

Only the app sees routing 404s and 405s, so the handlers live here. No stack trace or file path
ever reaches a client: unexpected errors are logged and answered with a plain 500.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from kb.errors import KBError

log = logging.getLogger("kb.web")


def error_body(message: str, status: int) -> dict[str, object]:
    """The one JSON error shape: {"ok": false, "error": "<message>", "status": <int>}."""
    return {"ok": False, "error": message, "status": status}


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(message: str, status: int) -> tuple[Response | str, int]:
    """The error as JSON under /api/, as the HTML error page elsewhere."""
    if wants_json():
        return jsonify(error_body(message, status)), status
    return render_template("error.html", message=message, status=status), status


_HTTP_MESSAGES = {
    404: "Nothing here: check the address, or search from the home page.",
    405: "This address does not accept that method; see /api/v1/openapi.json for the routes.",
    413: "The request is too large; send less text or a smaller file.",
    431: "The request's headers are too large; send fewer or shorter headers (cookies, referrers).",
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(KBError)
    def kb_error(error: KBError) -> ResponseReturnValue:
        body, status = error_response(str(error), error.status)
        return body, status, getattr(error, "headers", None) or {}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        status = error.code or 500
        message = _HTTP_MESSAGES.get(status) or error.description or error.name
        body, code = error_response(message, status)
        if status == 405 and getattr(error, "valid_methods", None):
            return body, code, {"Allow": ", ".join(error.valid_methods)}  # type: ignore[attr-defined]
        return body, code

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> ResponseReturnValue:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response("Something went wrong on our side; try again, and report it if it "
                              "persists.", 500)
