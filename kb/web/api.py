"""JSON API under /api/v1: the same data as the pages, one call to the library per route.

The routes are described in OPENAPI_PATHS below (collected by kb.web.openapi); a route without
an entry fails tests/test_openapi.py.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from kb.consensus import consensus as weigh_consensus
from kb.exports import EXPORT_FORMATS
from kb.responses import (
    _int,
    claim_body,
    map_body,
    search_body,
    search_request,
    source_body,
    stats_body,
    status_body,
    vocabulary_body,
)
from kb.web.openapi import error_responses, json_response, openapi_document, ref
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


@bp.get("/consensus")
def consensus() -> Response:
    """What the relevant claims say about the question q, weighed by evidence (kb.consensus)."""
    kb = knowledge_base()
    result = weigh_consensus(kb, search_request(_params(), kb.settings.page_size))
    return jsonify({"ok": True, **result.to_dict()})


@bp.get("/suggest")
def suggest() -> Response:
    """Completions for the search box: vocabulary terms and source titles starting with q."""
    kb = knowledge_base()
    prefix = request.args.get("q", "")
    limit = _int("limit", request.args.get("limit"), 8)
    suggestions = kb.suggest(prefix, limit)  # type: ignore[arg-type]  # a default is given
    return jsonify({"ok": True, "query": prefix, "suggestions": suggestions})


@bp.get("/sources/<path:source_id>")
def source(source_id: str) -> Response:
    """One source: metadata with verification, citations, summary and claims."""
    return jsonify(source_body(knowledge_base(), source_id))


@bp.get("/sources/<path:source_id>/export")
def export_source(source_id: str) -> Response:
    """One source as BibTeX, RIS or CSL-JSON (?format=), as a file download."""
    fmt = request.args.get("format", "bibtex")
    source, text = knowledge_base().export_source(source_id, fmt)
    spec = EXPORT_FORMATS[fmt]
    response = Response(text, mimetype=spec.media_type.split(";")[0])
    response.headers["Content-Type"] = spec.media_type
    filename = "".join(c if c.isalnum() or c in "._-" else "_" for c in source.id)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.{spec.extension}"'
    return response


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


@bp.get("/openapi.json")
def openapi() -> Response:
    """This API described as OpenAPI 3.1, collected from every module that serves routes."""
    return jsonify(openapi_document(current_app))


_KINDS = ["condition", "mechanism", "intervention", "design", "outcome"]
_SEARCH_PARAMS = [{"$ref": f"#/components/parameters/{name}"} for name in (
    "q", "condition", "mechanism", "intervention", "design", "outcome", "source", "stance",
    "year_from", "year_to", "sort", "page", "limit", "expand", "exclude_retracted")]
_SOURCE_ID = {"name": "source_id", "in": "path", "required": True,
              "description": 'A source id (citation key), "doi:10...." or "pmid:...".',
              "schema": {"type": "string", "minLength": 1}}


def _ok_object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["ok", *required],
            "properties": {"ok": {"const": True}, **properties}}


OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/status": {"get": {
        "operationId": "status", "summary": "The served index's manifest",
        "responses": {"200": json_response("Schema version, corpus fingerprint, counts, build time.",
                                           _ok_object(["manifest"], {"manifest": ref("Manifest")})),
                      **error_responses(503)},
    }},
    "/api/v1/search": {"get": {
        "operationId": "search", "summary": "Search claims",
        "description": "Claims matching q and the filters, each with its source, facet counts over "
                       "all matches and a spelling suggestion (did_you_mean). Give q or a filter.",
        "parameters": _SEARCH_PARAMS,
        "responses": {"200": {**json_response("One page of claims with facets.", ref("SearchResult")),
                              # Links let clients (and API fuzzers) follow a hit to its records.
                              "links": {
                                  "FirstHitSource": {"operationId": "source", "parameters": {
                                      "source_id": "$response.body#/hits/0/source/id"}},
                                  "FirstHitClaim": {"operationId": "claim", "parameters": {
                                      "claim_id": "$response.body#/hits/0/id"}},
                                  "FirstHitExport": {"operationId": "exportSource", "parameters": {
                                      "source_id": "$response.body#/hits/0/source/id"}},
                              }},
                      **error_responses(400, 429, 503)},
    }},
    "/api/v1/consensus": {"get": {
        "operationId": "consensus", "summary": "A consensus weighed by evidence",
        "description": "The claims relevant to the question q split by stance (supports, limits, "
                       "contradicts): one vote per source per stance, weighted by evidence level "
                       "(1 = strongest: weight 5 ... levels 6-8: 1) times a sample-size factor "
                       "(log10(n)/2 within 0.5..2; 1 when none is stated), with the strongest "
                       "studies. enough is false when fewer than min_sources sources answer it. "
                       "The search filters narrow the claims considered.",
        "parameters": _SEARCH_PARAMS[:7] + [{"$ref": f"#/components/parameters/{name}"}
                                            for name in ("year_from", "year_to", "expand")],
        "responses": {"200": json_response("The weighed tallies.", ref("Consensus")),
                      **error_responses(400, 429, 503)},
    }},
    "/api/v1/suggest": {"get": {
        "operationId": "suggest", "summary": "Completions for a search box",
        "description": "Vocabulary terms (by label or synonym) and source titles that start with q, "
                       "best first. An empty q gives no suggestions.",
        "parameters": [
            {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 1000}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 20,
                                                        "default": 8}},
        ],
        "responses": {"200": json_response("Suggestions, best first.", _ok_object(
            ["query", "suggestions"], {"query": {"type": "string"},
                                       "suggestions": {"type": "array", "items": ref("Suggestion")}})),
                      **error_responses(400, 503)},
    }},
    "/api/v1/sources/{source_id}": {"get": {
        "operationId": "source", "summary": "One source",
        "description": "Metadata with each field's verification, APA and Vancouver citations, "
                       "confirmed identifiers and links, summary, and all its claims.",
        "parameters": [_SOURCE_ID],
        "responses": {"200": json_response("The source.", _ok_object(["source"], {"source": ref("Source")})),
                      **error_responses(404, 503)},
    }},
    "/api/v1/sources/{source_id}/export": {"get": {
        "operationId": "exportSource", "summary": "Export a source for a reference manager",
        "description": "BibTeX, RIS or CSL-JSON, sent as a download. Only confirmed DOIs and PMIDs "
                       "are exported; unconfirmed fields are named in a comment or note.",
        "parameters": [_SOURCE_ID, {"name": "format", "in": "query",
                                    "schema": {"enum": list(EXPORT_FORMATS), "default": "bibtex"}}],
        "responses": {
            "200": {"description": "The exported reference.", "content": {
                "application/x-bibtex": {"schema": {"type": "string"}},
                "application/x-research-info-systems": {"schema": {"type": "string"}},
                "application/vnd.citationstyles.csl+json": {
                    "schema": {"type": "array", "minItems": 1, "maxItems": 1, "items": ref("CslItem")}},
            }},
            **error_responses(400, 404, 503),
        },
    }},
    "/api/v1/claims/{claim_id}": {"get": {
        "operationId": "claim", "summary": "One claim with related claims",
        "parameters": [{"name": "claim_id", "in": "path", "required": True,
                        "description": "<source id>-<10 hex digits>", "schema": {"type": "string"}}],
        "responses": {"200": json_response("The claim, its source and locator, related claims of "
                                           "other sources.", _ok_object(["claim"], {"claim": ref("ClaimView")})),
                      **error_responses(404, 503)},
    }},
    "/api/v1/stats": {"get": {
        "operationId": "stats", "summary": "Counts of sources and claims",
        "responses": {"200": json_response("Counts per stance and per term.", _ok_object(
            ["sources", "claims", "claims_by_stance"],
            {"sources": {"type": "integer", "minimum": 0}, "claims": {"type": "integer", "minimum": 0},
             "claims_tagged_condition_or_mechanism": {"type": "integer", "minimum": 0},
             "tagged_share": {"type": "number", "minimum": 0, "maximum": 1},
             "claims_by_stance": {"type": "object", "additionalProperties": {"type": "integer"}},
             **{f"claims_per_{kind}": {"type": "object", "additionalProperties": ref("TermCount")}
                for kind in _KINDS}})),
                      **error_responses(503)},
    }},
    "/api/v1/vocabulary": {"get": {
        "operationId": "vocabulary", "summary": "Vocabulary terms with claim counts",
        "parameters": [{"name": "kind", "in": "query", "schema": {"enum": _KINDS}}],
        "responses": {"200": json_response("The terms.", _ok_object(
            ["terms"], {"terms": {"type": "array", "items": ref("VocabularyTerm")}})),
                      **error_responses(400, 503)},
    }},
    "/api/v1/map": {"get": {
        "operationId": "evidenceMap", "summary": "The evidence map",
        "description": "Claim counts for every pair of a row term and a column term, with the "
                       "strongest evidence level (1 = strongest) among their sources.",
        "parameters": [
            {"name": "rows", "in": "query", "schema": {"enum": _KINDS, "default": "condition"}},
            {"name": "columns", "in": "query", "schema": {"enum": _KINDS, "default": "mechanism"}},
        ],
        "responses": {"200": json_response("Rows, columns and the non-empty cells.", _ok_object(
            ["rows", "columns", "cells"],
            {"rows": {"type": "array", "items": ref("MapAxis")},
             "columns": {"type": "array", "items": ref("MapAxis")},
             "cells": {"type": "array", "items": {
                 "type": "object", "required": ["row", "column", "claims", "best_level"],
                 "properties": {"row": {"type": "string"}, "column": {"type": "string"},
                                "claims": {"type": "integer", "minimum": 1},
                                "best_level": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}}})),
                      **error_responses(400, 503)},
    }},
    "/api/v1/openapi.json": {"get": {
        "operationId": "openapi", "summary": "This document",
        "responses": {"200": json_response("The OpenAPI 3.1 document.", {"type": "object",
                                                                         "required": ["openapi", "paths"]})},
    }},
}
