"""``POST /api/v1/sources``: add works by identifier over HTTP, behind an API token.

Writing to the corpus is off unless the operator sets KB_API_TOKEN; a client then sends
``Authorization: Bearer <token>``. The body is ``{"identifiers": ["doi:...", "pmid:..."]}`` and
the answer is the import report, as ``kb add --json`` prints it.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, current_app, request

from kb.config import Settings
from kb.errors import BadRequest, KBError, Unauthorized

bp = Blueprint("api_sources", __name__)
blueprint = bp  # the name the app factory may import
MAX_IDENTIFIERS = 100  # per request: each may cost a call to a rate-limited service


class WritesDisabled(KBError):
    """The server has no API token configured, so nothing may write to its corpus."""

    status = 403
    exit_code = 2


@bp.post("/sources")
def add_sources() -> tuple[dict[str, Any], int]:
    """Fetch the identifiers in the JSON body and import them; 201 when a source was added."""
    settings: Settings = current_app.extensions["kb_settings"]
    _authorise(settings)
    body = request.get_json(silent=True)
    identifiers = body.get("identifiers") if isinstance(body, dict) else None
    if not isinstance(identifiers, list) or not identifiers or \
            not all(isinstance(i, str) and i.strip() for i in identifiers):
        raise BadRequest('send a JSON body {"identifiers": ["doi:10...", "pmid:..."]} with at '
                         "least one identifier")
    if len(identifiers) > MAX_IDENTIFIERS:
        raise BadRequest(f"{len(identifiers)} identifiers; send at most {MAX_IDENTIFIERS} a request")
    dry_run = request.args.get("dry_run", "").lower() in {"1", "true", "yes"}
    from kb.fetch import add_identifiers

    report = add_identifiers(identifiers, settings, dry_run=dry_run)
    return {"ok": True, **report.to_dict()}, 201 if report.added and not dry_run else 200


def _authorise(settings: Settings) -> None:
    if not settings.api_token:
        raise WritesDisabled("adding sources over the API is disabled on this server; the "
                             "operator enables it by setting KB_API_TOKEN")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    # compare_digest: the time taken must not reveal how much of a guessed token was right
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                             settings.api_token.encode()):
        raise Unauthorized("missing or wrong API token: send 'Authorization: Bearer <token>'")
