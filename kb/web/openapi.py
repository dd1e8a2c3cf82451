"""The OpenAPI 3.1 document of the JSON API, assembled from the modules that serve the routes.

Each module that adds routes under /api/v1 describes them beside its code in a module-level
``OPENAPI_PATHS: dict`` (full paths such as "/api/v1/health" -> path item), and may add shared
schemas in ``OPENAPI_COMPONENTS: dict`` (merged into "components"; e.g. {"schemas": {...}}).
``openapi_document(app)`` collects them from every module that registered a blueprint or a view
function on the app, so a new blueprint documents itself without touching this file, and
``undocumented_routes(app)`` lists any route that nobody described (a test fails on it).

Schemas are JSON Schema 2020-12 (OpenAPI 3.1), precise enough to validate responses against:
``{"$ref": "#/components/responses/Error"}`` is the one error answer for 4xx and 5xx.
"""

from __future__ import annotations

import copy
import re
import sys
from typing import Any

from flask import Flask

import kb

API_PREFIX = "/api/v1"
_METHODS = ("get", "post", "put", "patch", "delete")


def error_responses(*codes: int) -> dict[str, Any]:
    """Response entries {"400": {"$ref": Error}, ...} for an operation's error statuses."""
    return {str(code): {"$ref": "#/components/responses/Error"} for code in codes}


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A 200-style response entry whose body is JSON matching *schema*."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def ref(name: str) -> dict[str, str]:
    """A reference to a shared schema by name."""
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_STRING_LIST = {"type": "array", "items": {"type": "string"}}
_TAGS = {"type": "object", "additionalProperties": _STRING_LIST}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["ok", "error", "status"],
        "additionalProperties": False,
        "properties": {
            "ok": {"const": False},
            "error": {"type": "string", "minLength": 1, "description": "What happened and what to do."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
        },
    },
    "Locator": {
        "type": "object",
        "required": ["section", "index", "text"],
        "properties": {
            "section": {"type": "string"},
            "index": {"type": "integer", "minimum": 1},
            "label": {"type": "string"},
            "paragraph": _nullable({"type": "integer"}),
            "page": _nullable({"type": "integer", "minimum": 1}),
            "text": {"type": "string", "description": "Where the claim stands, e.g. 'claims, item 2' or "
                                                      "'results, page 3, paragraph 2, sentence 1'."},
        },
    },
    "TermRef": {
        "type": "object",
        "required": ["id", "label"],
        "properties": {"id": {"type": "string"}, "label": {"type": "string"},
                       "mesh": {"type": "string", "description": 'MeSH descriptor id, "" when none'}},
    },
    "Claim": {
        "type": "object",
        "required": ["id", "source_id", "text", "locator", "stance", "tags", "confirmed"],
        "properties": {
            "id": {"type": "string"},
            "source_id": {"type": "string"},
            "text": {"type": "string"},
            "locator": ref("Locator"),
            "stance": {"enum": ["supports", "limits", "contradicts", None]},
            "tags": _TAGS,
            "confirmed": {"type": "boolean", "description": "False when its numbers are unconfirmed."},
            "provenance": _nullable({"type": "string"}),
            "tag_labels": {"type": "object", "additionalProperties": {"type": "array", "items": ref("TermRef")}},
        },
    },
    "Notice": {
        "type": "object",
        "description": "A retraction, correction or expression of concern, as a record gave it.",
        "required": ["kind", "role", "pmid", "doi", "citation", "date", "provenance"],
        "properties": {
            "kind": {"enum": ["retraction", "correction", "expression_of_concern"]},
            "role": {"enum": ["in", "of"], "description": "in: the notice is about this source; "
                     "of: this source is the notice, for the work identified."},
            "pmid": {"type": "string", "description": 'The other record\'s PMID; "" when not given.'},
            "doi": {"type": "string", "description": 'The other record\'s DOI; "" when not given.'},
            "citation": {"type": "string", "description": "The citation the record gives, if any."},
            "date": {"type": "string", "description": 'YYYY, YYYY-MM or YYYY-MM-DD; "" when not given.'},
            "provenance": {"type": "string", "description": "The file, record and field it was read from."},
        },
    },
    "SourceCard": {
        "type": "object",
        "required": ["id", "title", "authors", "year", "citation", "doi", "pmid", "links",
                     "unconfirmed_identifiers", "evidence_level", "retracted", "notices"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "authors": {"type": "string", "description": "Short form: 'Berman et al.'"},
            "year": _nullable({"type": "integer"}),
            "container": {"type": "string"},
            "citation": {"type": "string", "description": "Vancouver reference."},
            "doi": _nullable({"type": "string", "description": "Only when confirmed."}),
            "pmid": _nullable({"type": "string", "description": "Only when confirmed."}),
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
            "unconfirmed_identifiers": {"type": "object", "additionalProperties": {"type": "string"}},
            "design": _nullable({"type": "string"}),
            "design_label": _nullable({"type": "string"}),
            "evidence_level": _nullable({"type": "integer", "minimum": 1}),
            "retracted": {"type": "boolean", "description": "A record says the work is retracted: "
                          "it backs nothing (the checker never counts it)."},
            "notices": {"type": "array", "items": ref("Notice"),
                        "description": "Notices about the work (retractions, corrections, concerns)."},
        },
    },
    "ClaimHit": {
        "allOf": [ref("Claim")],
        "type": "object",
        "required": ["score", "highlight", "source"],
        "properties": {
            "score": {"type": "number"},
            "highlight": {"type": "string", "description": "The claim, HTML-escaped, with <mark> around matches."},
            "source": ref("SourceCard"),
        },
    },
    "FacetValue": {
        "type": "object",
        "required": ["id", "label", "count", "selected"],
        "properties": {
            "id": {"type": "string"}, "label": {"type": "string"},
            "count": {"type": "integer", "minimum": 0}, "selected": {"type": "boolean"},
        },
    },
    "SearchResult": {
        "type": "object",
        "required": ["ok", "query", "total", "page", "pages", "limit", "sort", "filters", "expanded_terms",
                     "did_you_mean", "weak_match", "hits", "facets", "years"],
        "properties": {
            "ok": {"const": True},
            "query": {"type": "string"},
            "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "pages": {"type": "integer", "minimum": 1},
            "limit": {"type": "integer", "minimum": 1},
            "sort": {"enum": ["relevance", "evidence", "newest", "oldest"]},
            "filters": {"type": "object"},
            "expanded_terms": {"type": "array", "items": {
                "type": "object", "required": ["id", "label", "kind"],
                "properties": {"id": {"type": "string"}, "label": {"type": "string"}, "kind": {"type": "string"}}}},
            "did_you_mean": _nullable({"type": "string"}),
            "weak_match": {"type": "boolean", "description": "No hit matches more than half of "
                           "the query's content words (a vocabulary term counts when the hit is "
                           "tagged with it): the hits are only the closest."},
            "partial": {"type": "boolean", "description": "The search ran out of its time budget: "
                        "hits, total and facets cover only the matches found in time."},
            "hits": {"type": "array", "items": ref("ClaimHit")},
            "facets": {"type": "object", "additionalProperties": {"type": "array", "items": ref("FacetValue")}},
            "years": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        },
    },
    "ConsensusVote": {
        "type": "object",
        "required": ["stance", "source_id", "citation", "title", "year", "evidence_level", "design_label",
                     "sample_size", "weight", "claim_id", "claim_text", "claims"],
        "properties": {
            "stance": {"enum": ["supports", "limits", "contradicts"]},
            "source_id": {"type": "string"}, "citation": {"type": "string"}, "title": {"type": "string"},
            "year": _nullable({"type": "integer"}),
            "evidence_level": _nullable({"type": "integer", "minimum": 1}),
            "design_label": _nullable({"type": "string"}),
            "sample_size": _nullable({"type": "integer", "minimum": 1}),
            "weight": {"type": "number", "exclusiveMinimum": 0,
                       "description": "Level weight times the sample-size factor."},
            "claim_id": {"type": "string"}, "claim_text": {"type": "string"},
            "claims": {"type": "integer", "minimum": 1,
                       "description": "Relevant claims of this source in this stance (one vote however many)."},
        },
    },
    "Consensus": {
        "type": "object",
        "required": ["ok", "question", "searched", "enough", "min_sources", "sources", "claims", "message",
                     "partial", "weak_match", "tallies", "strongest", "weighting"],
        "properties": {
            "ok": {"const": True},
            "question": {"type": "string"}, "searched": {"type": "string"},
            "enough": {"type": "boolean", "description": "False: fewer than min_sources sources answer it."},
            "min_sources": {"type": "integer", "minimum": 1},
            "sources": {"type": "integer", "minimum": 0}, "claims": {"type": "integer", "minimum": 0},
            "message": {"type": "string"}, "partial": {"type": "boolean"}, "weak_match": {"type": "boolean"},
            "tallies": {"type": "array", "minItems": 3, "maxItems": 3, "items": {
                "type": "object", "required": ["stance", "sources", "weight", "share", "votes"],
                "properties": {"stance": {"enum": ["supports", "limits", "contradicts"]},
                               "sources": {"type": "integer", "minimum": 0},
                               "weight": {"type": "number", "minimum": 0},
                               "share": {"type": "number", "minimum": 0, "maximum": 1},
                               "votes": {"type": "array", "items": ref("ConsensusVote")}}}},
            "strongest": {"type": "array", "items": ref("ConsensusVote")},
            "weighting": {"type": "object", "required": ["level_weights", "unranked_weight", "sample_size",
                                                         "sample_sizes_known", "sample_size_used",
                                                         "explanation"],
                          "properties": {"level_weights": {"type": "object",
                                                           "additionalProperties": {"type": "number"}},
                                         "unranked_weight": {"type": "number"},
                                         "sample_size": {"type": "string"},
                                         "sample_sizes_known": {"type": "integer", "minimum": 0},
                                         "sample_size_used": {"type": "boolean"},
                                         "relative_score": {"type": "number"},
                                         "one_vote_per_source_per_stance": {"type": "boolean"},
                                         "explanation": {"type": "string"}}},
        },
    },
    "Source": {
        "type": "object",
        "required": ["id", "type", "title", "authors", "year", "container", "doi", "pmid", "summary",
                     "verification", "citation", "identifiers", "unconfirmed_fields", "links", "claims",
                     "unconfirmed_identifiers", "evidence_level"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string"},
            "title": {"type": "string"},
            "authors": _STRING_LIST,
            "year": _nullable({"type": "integer"}),
            "container": {"type": "string"},
            "volume": {"type": "string"}, "issue": {"type": "string"}, "pages": {"type": "string"},
            "doi": _nullable({"type": "string", "description": "Only when confirmed."}),
            "pmid": _nullable({"type": "string", "description": "Only when confirmed."}),
            "pmcid": {"type": "string"}, "url": {"type": "string"},
            "abstract": {"type": "string"},
            "summary": {"type": "string"},
            "design": {"type": "string"},
            "design_label": _nullable({"type": "string"}),
            "evidence_level": _nullable({"type": "integer", "minimum": 1}),
            "verification": {"type": "object", "additionalProperties": {"type": "string"}},
            "verification_notes": {"type": "object", "additionalProperties": {"type": "string"}},
            "tags": _TAGS,
            "added": {"type": "string", "description": "The day (YYYY-MM-DD) the source entered the "
                      'knowledge base; "" when not recorded.'},
            "retracted": {"type": "boolean"},
            "notices": {"type": "array", "items": ref("Notice"), "description": "Notices about the "
                        "work (role in) and, for a notice record, the works it updates (role of)."},
            "citation": {"type": "object", "required": ["vancouver", "apa"],
                         "properties": {"vancouver": {"type": "string"}, "apa": {"type": "string"}}},
            "identifiers": {"type": "object", "additionalProperties": {"type": "string"}},
            "unconfirmed_fields": _STRING_LIST,
            "unconfirmed_identifiers": {"type": "object", "additionalProperties": {"type": "string"}},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
            "claims": {"type": "array", "items": ref("Claim")},
        },
    },
    "ClaimView": {
        "allOf": [ref("Claim")],
        "type": "object",
        "required": ["source", "related"],
        "properties": {
            "source": ref("SourceCard"),
            "related": {"type": "array", "items": {
                "allOf": [ref("Claim")],
                "type": "object",
                "required": ["source", "shared_terms"],
                "properties": {"source": ref("SourceCard"), "shared_terms": _STRING_LIST},
            }},
        },
    },
    "Manifest": {
        "type": "object",
        "required": ["schema_version", "corpus_fingerprint", "counts", "built_at", "build"],
        "properties": {
            "schema_version": {"type": "integer"},
            "kb_version": {"type": "string"},
            "corpus_fingerprint": {"type": "string"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
            "problems": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
            "built_at": {"type": "string"},
            "build_seconds": {"type": "number", "minimum": 0},
            "build": {"type": "string"},
            "files": {"type": "object", "description": "Every file of the build with its size and "
                      "SHA-256, checked before the build is served.",
                      "additionalProperties": {"type": "object", "required": ["bytes", "sha256"],
                                               "properties": {"bytes": {"type": "integer", "minimum": 0},
                                                              "sha256": {"type": "string"}}}},
        },
    },
    "TermCount": {
        "type": "object", "required": ["label", "claims"],
        "properties": {"label": {"type": "string"}, "claims": {"type": "integer", "minimum": 0}},
    },
    "VocabularyTerm": {
        "type": "object",
        "required": ["id", "kind", "label", "synonyms", "parents", "claims", "claims_including_narrower"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"enum": ["condition", "mechanism", "intervention", "design", "outcome"]},
            "label": {"type": "string"},
            "synonyms": _STRING_LIST,
            "parents": _STRING_LIST,
            "mesh": {"type": "string"},
            "level": _nullable({"type": "integer"}),
            "tag": {"type": "boolean"},
            "provenance": _nullable({"type": "string"}),
            "claims": {"type": "integer", "minimum": 0},
            "claims_including_narrower": {"type": "integer", "minimum": 0},
        },
    },
    "MapAxis": {
        "type": "object", "required": ["id", "label", "kind"],
        "properties": {"id": {"type": "string"}, "label": {"type": "string"}, "kind": {"type": "string"}},
    },
    "Suggestion": {
        "type": "object",
        "required": ["type", "id", "label"],
        "properties": {
            "type": {"enum": ["term", "source"]},
            "id": {"type": "string"},
            "label": {"type": "string"},
            "kind": {"type": "string", "description": "Terms: condition, mechanism, ..."},
            "matched": {"type": "string", "description": "Terms: the label or synonym that matched."},
            "claims": {"type": "integer", "minimum": 0},
            "year": _nullable({"type": "integer"}),
            "authors": {"type": "string"},
        },
    },
    "CslItem": {
        "type": "object",
        "required": ["id", "type", "title"],
        "properties": {"id": {"type": "string"}, "type": {"type": "string"}, "title": {"type": "string"},
                       "author": {"type": "array", "items": {"type": "object"}},
                       "DOI": {"type": "string"}, "PMID": {"type": "string"}},
    },
}

_FILTER_PARAM_DESCRIPTION = ("A term id, label or synonym (narrower terms are included). Repeat the "
                             "parameter, or separate values with commas, to match any of them.")
PARAMETERS: dict[str, Any] = {
    "q": {"name": "q", "in": "query", "description": "Words to search for (synonyms and narrower terms "
          "are included): words rank by how many match; \"a phrase\"; +word or a AND b must match; "
          "-word or NOT word must not; ketam* (2+ letters, at most 4); ketamin~1 (1 or 2 typos, at "
          "most 4); filters such as condition:ptsd, design:rct, source:ID, stance:limits, "
          "year:2010-2015. At most 32 words and phrases.", "schema": {"type": "string", "maxLength": 1000}},
    **{kind: {"name": kind, "in": "query", "description": _FILTER_PARAM_DESCRIPTION, "style": "form",
              "explode": True, "schema": _STRING_LIST}
       for kind in ("condition", "mechanism", "intervention", "design", "outcome")},
    "source": {"name": "source", "in": "query", "description": "Only claims of these source ids.",
               "style": "form", "explode": True, "schema": _STRING_LIST},
    "stance": {"name": "stance", "in": "query", "style": "form", "explode": True,
               "schema": {"type": "array", "items": {"enum": ["supports", "limits", "contradicts", "none"]}}},
    "year_from": {"name": "year_from", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 9999}},
    "year_to": {"name": "year_to", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 9999}},
    "sort": {"name": "sort", "in": "query",
             "schema": {"enum": ["relevance", "evidence", "newest", "oldest"], "default": "relevance"}},
    "page": {"name": "page", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1}},
    "limit": {"name": "limit", "in": "query",
              "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
    "exclude_retracted": {"name": "exclude_retracted", "in": "query", "description": "1 (or true, yes, "
                          "on) leaves out claims of retracted sources; off by default, so a search "
                          "still finds them, flagged.",
                          "schema": {"enum": ["true", "false", "1", "0", "yes", "no", "on", "off"],
                                     "default": "0"}},
    "expand": {"name": "expand", "in": "query", "description": "false, no, off or 0 turns off synonym "
               "and hierarchy expansion.",
               "schema": {"enum": ["true", "false", "1", "0", "yes", "no", "on", "off"], "default": "true"}},
}

COMPONENTS: dict[str, Any] = {
    "schemas": SCHEMAS,
    "parameters": PARAMETERS,
    "responses": {
        "Error": {
            "description": 'An error: {"ok": false, "error": "<what happened and what to do>", '
                           '"status": <the HTTP status>} (400 bad input, 404 unknown, 405 method, '
                           "413 too large, 429 rate limited with Retry-After, 503 index unavailable "
                           "or too busy, with Retry-After).",
            "content": {"application/json": {"schema": ref("Error")}},
        },
    },
}


def document_base() -> dict[str, Any]:
    """The document without paths: info, servers and shared components."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Evidence KB API",
            "version": kb.__version__ if hasattr(kb, "__version__") else "1",
            "description": "Search research claims and their sources. Every response has "
                           '"ok"; every error is {"ok": false, "error": string, "status": integer}. '
                           "Only confirmed DOIs and PMIDs are given as identifiers.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "/"}],
        "components": copy.deepcopy(COMPONENTS),
        "paths": {},
    }


def contributing_modules(app: Flask) -> list[Any]:
    """Modules that serve routes on *app*: every blueprint's module and every view's module."""
    names: dict[str, None] = {}
    for blueprint in app.blueprints.values():
        names.setdefault(blueprint.import_name, None)
    for view in app.view_functions.values():
        module = getattr(view, "__module__", None)
        if module:
            names.setdefault(module, None)
    return [sys.modules[name] for name in names if name in sys.modules]


def openapi_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document for *app*, built once and kept in app.extensions."""
    cached = app.extensions.get("kb_openapi")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    document = document_base()
    for module in contributing_modules(app):
        for path, item in (getattr(module, "OPENAPI_PATHS", None) or {}).items():
            merged = document["paths"].setdefault(path, {})
            merged.update(copy.deepcopy(item))
        for section, entries in (getattr(module, "OPENAPI_COMPONENTS", None) or {}).items():
            document["components"].setdefault(section, {}).update(copy.deepcopy(entries))
    document["paths"] = dict(sorted(document["paths"].items()))
    _fill_error_bodies(document)
    app.extensions["kb_openapi"] = document
    return document


def _fill_error_bodies(document: dict[str, Any]) -> None:
    """Give every 4xx/5xx response that names no body the one error shape.

    Every error under /api/ is answered by kb.web.errors with {"ok": false, "error", "status"},
    so a module may list an error status with only a description and still be exact.
    """
    error_content = document["components"]["responses"]["Error"]["content"]
    for _, _, operation in operations(document):
        for status, response in operation.get("responses", {}).items():
            if status.startswith(("4", "5")) and "$ref" not in response and "content" not in response:
                response["content"] = copy.deepcopy(error_content)


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: "/sources/<path:source_id>" -> "/sources/{source_id}"."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def undocumented_routes(app: Flask, document: dict[str, Any] | None = None) -> list[str]:
    """"METHOD /path" for every API route (under /api/) that the document does not describe."""
    document = document or openapi_document(app)
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method.lower() not in document["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    return missing


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) for every operation in *document*."""
    return [(method, path, item[method]) for path, item in document["paths"].items()
            for method in _METHODS if method in item]
