"""The JSON documents of the API, built in one place so `kb ... --json` prints exactly the same.

Also turns request parameters (a query string, or CLI options) into a validated SearchRequest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kb.errors import BadQuery
from kb.knowledge_base import KnowledgeBase
from kb.query import FILTER_KINDS, SearchRequest

SEARCH_PARAMS = ("q", *FILTER_KINDS, "source", "stance", "year_from", "year_to", "sort", "page",
                 "limit", "expand", "exclude_retracted")


def _int(name: str, value: str | None, default: int | None) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:  # also a number too long to convert (over 4,300 digits)
        shown = value if len(value) <= 20 else value[:20] + "..."
        raise BadQuery(f"{name} must be a whole number, not {shown!r}") from None


EXPAND_VALUES = {"1": True, "true": True, "yes": True, "on": True,
                 "0": False, "false": False, "no": False, "off": False}


def search_request(params: Mapping[str, Sequence[str]], default_limit: int = 20) -> SearchRequest:
    """Build a SearchRequest from multi-valued parameters (filters may repeat or use commas)."""
    def values(name: str) -> tuple[str, ...]:
        found: list[str] = []
        for raw in params.get(name, ()):
            found.extend(v.strip() for v in raw.split(",") if v.strip())
        return tuple(found)

    def one(name: str) -> str | None:
        found = params.get(name, ())
        return found[-1] if found else None

    expand_text = (one("expand") or "true").lower()
    if expand_text not in EXPAND_VALUES:  # an enum: a typo must not silently mean "true"
        raise BadQuery(f"Unknown expand {one('expand')!r}: use one of {', '.join(EXPAND_VALUES)}")
    expand = EXPAND_VALUES[expand_text]
    exclude_text = (one("exclude_retracted") or "0").lower()
    if exclude_text not in EXPAND_VALUES:
        raise BadQuery(f"Unknown exclude_retracted {one('exclude_retracted')!r}: use 1 to leave out "
                       f"retracted sources or 0 to keep them (also: {', '.join(EXPAND_VALUES)})")
    return SearchRequest(
        q=(one("q") or "").strip(),
        filters={kind: values(kind) for kind in FILTER_KINDS if values(kind)},
        sources=values("source"),
        stance=values("stance"),
        year_from=_int("year_from", one("year_from"), None),
        year_to=_int("year_to", one("year_to"), None),
        sort=one("sort") or "relevance",
        page=_int("page", one("page"), 1),  # type: ignore[arg-type]  # a default is given
        limit=_int("limit", one("limit"), default_limit),  # type: ignore[arg-type]
        expand=expand,
        exclude_retracted=EXPAND_VALUES[exclude_text],
    )


def status_body(kb: KnowledgeBase) -> dict[str, Any]:
    return {"ok": True, "manifest": kb.status()}


def search_body(kb: KnowledgeBase, request: SearchRequest) -> dict[str, Any]:
    return {"ok": True, **kb.search(request).to_dict()}


def source_body(kb: KnowledgeBase, source_id: str) -> dict[str, Any]:
    return {"ok": True, "source": kb.source_view(source_id)}


def claim_body(kb: KnowledgeBase, claim_id: str) -> dict[str, Any]:
    return {"ok": True, "claim": kb.claim_view(claim_id)}


def stats_body(kb: KnowledgeBase) -> dict[str, Any]:
    return {"ok": True, **kb.stats()}


def vocabulary_body(kb: KnowledgeBase, kind: str | None = None) -> dict[str, Any]:
    return {"ok": True, "terms": kb.vocabulary_terms(kind)}


def map_body(kb: KnowledgeBase, rows: str = "condition", columns: str = "mechanism") -> dict[str, Any]:
    return {"ok": True, **kb.evidence_map(rows, columns)}
