"""``POST /api/v1/sources``: add works by identifier over HTTP, behind an API token.

Writing to the corpus is off unless the operator sets KB_API_TOKEN; a client then sends
``Authorization: Bearer <token>``. The body is ``{"identifiers": ["doi:...", "pmid:..."]}`` and
the answer is the import report, as ``kb add --json`` prints it.
"""

from __future__ import annotations

import hmac
import logging
import threading
from typing import Any

from flask import Blueprint, current_app, request

from kb.config import Settings
from kb.errors import BadRequest, KBError, Unauthorized

bp = Blueprint("api_sources", __name__)
blueprint = bp  # the name the app factory may import
MAX_IDENTIFIERS = 100  # per request: each may cost a call to a rate-limited service
log = logging.getLogger("kb.web")
_REBUILD = threading.Lock()


class WritesDisabled(KBError):
    """The server has no API token configured, so nothing may write to its corpus."""

    status = 403
    exit_code = 2


@bp.post("/sources")
def add_sources() -> tuple[dict[str, Any], int]:
    """Fetch the identifiers in the JSON body and import them; 201 when a source was added."""
    settings: Settings = current_app.extensions["kb_settings"]
    _authorise(settings)
    # Strict JSON (kb.web.inputs): too deep, not UTF-8 or a lone surrogate is a 400 saying so.
    body = request.get_json() if request.is_json else None
    identifiers = body.get("identifiers") if isinstance(body, dict) else None
    if not isinstance(identifiers, list) or not identifiers or \
            not all(isinstance(i, str) and i.strip() for i in identifiers):
        raise BadRequest('send a JSON body {"identifiers": ["doi:10...", "pmid:..."]} with at '
                         "least one identifier")
    if len(identifiers) > MAX_IDENTIFIERS:
        raise BadRequest(f"{len(identifiers)} identifiers; send at most {MAX_IDENTIFIERS} a request")
    dry_run = _flag("dry_run", request.args.get("dry_run", ""))
    from kb.corpus.identifiers import add_identifiers

    report = add_identifiers(identifiers, settings, dry_run=dry_run)
    changed = bool(report.added or report.merged) and not dry_run
    index = "rebuilding" if changed and _rebuild_in_background(settings) else "unchanged"
    return {"ok": True, **report.to_dict(), "index": index}, 201 if report.added and not dry_run else 200


_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False, "": False}
REALM = "evidence-kb"


def _flag(name: str, value: str) -> bool:
    """A boolean query parameter; anything but the documented spellings is a 400, not a guess."""
    if value.lower() not in _FLAGS:
        raise BadRequest(f"Unknown {name} {value!r}: use one of 1, 0, true, false")
    return _FLAGS[value.lower()]


def _authorise(settings: Settings) -> None:
    if not settings.api_token:
        raise WritesDisabled("adding sources over the API is disabled on this server; the "
                             "operator enables it by setting KB_API_TOKEN")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # RFC 6750 section 3: a request without a token gets the challenge, and no error code
        raise Unauthorized("missing API token: send 'Authorization: Bearer <token>'",
                           headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})
    # compare_digest: the time taken must not reveal how much of a guessed token was right
    if not hmac.compare_digest(token.strip().encode(), settings.api_token.encode()):
        raise Unauthorized("wrong API token: send the token the operator set in KB_API_TOKEN, as "
                           "'Authorization: Bearer <token>'",
                           headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token", '
                                                        'error_description="The API token is wrong"'})


def _rebuild_in_background(settings: Settings) -> bool:
    """Rebuild the index after the corpus changed; the server swaps to it when it is complete.

    One rebuild at a time: a request arriving during a rebuild leaves it to the running one,
    whose build lock makes a second build wait rather than interleave.
    """
    if not _REBUILD.acquire(blocking=False):
        return False

    def run() -> None:
        try:
            from kb.build import build

            build(settings)
        except KBError:
            log.exception("rebuild after adding sources failed; the previous index keeps serving")
        finally:
            _REBUILD.release()

    threading.Thread(target=run, name="kb-rebuild", daemon=True).start()
    return True


_REPORT_ITEMS = {"type": "array", "items": {
    "type": "object", "required": ["id", "title", "origin", "detail"],
    "properties": {name: {"type": "string"} for name in ("id", "title", "origin", "detail")}}}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/sources": {
        "post": {
            "summary": "Add sources by DOI, PMID or OpenAlex id",
            "description": "Fetches metadata and abstracts from Crossref, PubMed or OpenAlex and "
                           "imports them into the corpus; the index is rebuilt in the background. "
                           "Disabled (403) unless the server sets KB_API_TOKEN; then send "
                           "'Authorization: Bearer <token>'.",
            "operationId": "addSources",
            "security": [{"bearerToken": []}],
            "parameters": [{"name": "dry_run", "in": "query", "required": False,
                            "schema": {"type": "string",
                                       "enum": ["0", "1", "true", "false", "yes", "no", ""]}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["identifiers"],
                "properties": {"identifiers": {"type": "array", "minItems": 1,
                                               "maxItems": MAX_IDENTIFIERS,
                                               "items": {"type": "string", "minLength": 1}}}}}}},
            "responses": {
                **{code: {"description": text, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["ok", "dry_run", "counts", "added", "merged",
                                                   "skipped", "problems", "conflicts", "written"],
                    "properties": {
                        "ok": {"const": True}, "dry_run": {"type": "boolean"},
                        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "added": _REPORT_ITEMS, "merged": _REPORT_ITEMS, "skipped": _REPORT_ITEMS,
                        "problems": {"type": "array", "items": {"type": "string"}},
                        "conflicts": {"type": "array", "items": {"type": "string"}},
                        "written": {"type": "array", "items": {"type": "string"}},
                        "index": {"type": "string", "enum": ["rebuilding", "unchanged"]},
                    }}}}} for code, text in (("201", "Sources were added."),
                                              ("200", "Nothing new was added (or a dry run)."))},
                **{str(code): {"$ref": "#/components/responses/Error"}
                   for code in (400, 401, 403, 404, 413, 502)},
            },
        }
    }
}
OPENAPI_COMPONENTS: dict[str, Any] = {
    "securitySchemes": {"bearerToken": {"type": "http", "scheme": "bearer"}},
}
