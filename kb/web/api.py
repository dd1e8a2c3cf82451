"""JSON API under /api/v1: the same data as the pages, one call to the library per route."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from kb.responses import (
    claim_body,
    map_body,
    search_body,
    search_request,
    source_body,
    stats_body,
    status_body,
    vocabulary_body,
)
from kb.web.state import knowledge_base

bp = Blueprint("api", __name__)


def _params() -> dict[str, list[str]]:
    return {key: request.args.getlist(key) for key in request.args}


@bp.get("/status")
def status() -> Response:
    """The manifest of the served index: schema version, corpus fingerprint, counts, build time."""
    return jsonify(status_body(knowledge_base()))


@bp.get("/search")
def search() -> Response:
    """Claims matching q and the filters, each with its source; facet counts over all matches."""
    kb = knowledge_base()
    return jsonify(search_body(kb, search_request(_params(), kb.settings.page_size)))


@bp.get("/sources/<path:source_id>")
def source(source_id: str) -> Response:
    """One source: metadata with verification, citations, summary and claims."""
    return jsonify(source_body(knowledge_base(), source_id))


@bp.get("/claims/<claim_id>")
def claim(claim_id: str) -> Response:
    """One claim with its source, locator and related claims of other sources."""
    return jsonify(claim_body(knowledge_base(), claim_id))


@bp.get("/stats")
def stats() -> Response:
    """Counts of sources and claims, per term and per stance."""
    return jsonify(stats_body(knowledge_base()))


@bp.get("/vocabulary")
def vocabulary() -> Response:
    """Controlled vocabulary terms with claim counts; ?kind= narrows to one kind."""
    return jsonify(vocabulary_body(knowledge_base(), request.args.get("kind") or None))


@bp.get("/map")
def evidence_map() -> Response:
    """Claim counts by rows × columns kinds (default condition × mechanism)."""
    return jsonify(map_body(knowledge_base(), request.args.get("rows", "condition"),
                            request.args.get("columns", "mechanism")))
