"""Searching claims: a request validated at the edge, run on the engine, assembled into a page.

The query text is parsed with the project's grammar (``kb.grammar``); filters typed into it
("condition:ptsd", "year:2010-2015") join the request's own; vocabulary terms found in it expand
the search with their synonyms; the engine ranks; the page carries every hit's claim and source.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kb import grammar
from kb.errors import BadQuery
from kb.grammar import ParsedQuery
from kb.models import Source
from kb.opened_build import OpenedBuild
from kb.query import (
    FILTER_KINDS,
    SORTS,
    STANCE_FILTERS,
    ClaimHit,
    EngineQuery,
    EngineResult,
    FacetValue,
    SearchPage,
    SearchRequest,
)
from kb.views import card, claim_dict, vocabulary_expansions

# Names that introduce a filter inside the query text ("condition:ptsd ketamine").
QUERY_FIELDS = frozenset({*FILTER_KINDS, "source", "stance", "year"})

# The valid range of every integer a search takes. Checked at the edge, because an integer the
# index cannot hold (a year of 2**31) fails deep in the engine instead of as a clear 400.
YEARS = (0, 9999)
MAX_PAGE = 10_000


def validate(build: OpenedBuild, request: SearchRequest) -> SearchRequest:
    """Check a request against limits and the vocabulary; BadQuery says how to fix it."""
    s = build.settings
    if len(request.q) > s.max_query_chars:
        raise BadQuery(f"The query is {len(request.q)} characters long; the limit is "
                       f"{s.max_query_chars}: shorten it to the key words")
    request = _with_typed_filters(request)
    if request.sort not in SORTS:
        raise BadQuery(f"Unknown sort {request.sort!r}: use one of {', '.join(SORTS)}")
    check_numbers(request, s.max_page_size)
    vocab = build.store.vocabulary
    filters: dict[str, tuple[str, ...]] = {}
    for kind, values in request.filters.items():
        if kind not in FILTER_KINDS:
            raise BadQuery(f"Unknown filter {kind!r}: use one of {', '.join(FILTER_KINDS)}")
        resolved = []
        for value in values:
            term = vocab.resolve(value, kind)
            if term is None:
                valid = ", ".join(t.id for t in vocab.of_kind(kind))
                raise BadQuery(f"Unknown {kind} {value!r}: valid values are {valid}")
            resolved.append(term.id)
        if resolved:
            filters[kind] = tuple(dict.fromkeys(resolved))
    for stance in request.stance:
        if stance not in STANCE_FILTERS:
            raise BadQuery(f"Unknown stance {stance!r}: use one of {', '.join(STANCE_FILTERS)}")
    for source_id in request.sources:
        if source_id not in build.store.source_by_id:
            raise BadQuery(f"Unknown source {source_id!r}: use a source id such as "
                           f"{next(iter(build.store.source_by_id), 'key2020word')}")
    if request.year_from and request.year_to and request.year_from > request.year_to:
        raise BadQuery("year_from is after year_to: swap them")
    if not request.q.strip() and not filters and not request.sources:
        raise BadQuery("Empty search: type some words or choose a filter, for example: "
                       "q=ketamine or condition=" + next((t.id for t in vocab.of_kind("condition")), "..."))
    return replace(request, filters=filters)


def _with_typed_filters(request: SearchRequest) -> SearchRequest:
    """Parse q (kb.grammar) and move the filters typed into it to the request's own."""
    parsed = grammar.parse(request.q, QUERY_FIELDS)
    filters = {kind: list(values) for kind, values in request.filters.items()}
    sources, stance = list(request.sources), list(request.stance)
    year_from, year_to = request.year_from, request.year_to
    for name, value in parsed.filters:
        if name in FILTER_KINDS:
            filters.setdefault(name, []).append(value)
        elif name == "source":
            sources.append(value)
        elif name == "stance":
            stance.append(value)
        elif name == "year":
            year_from, year_to = _year_range(value, year_from, year_to)
    return replace(request, parsed=parsed, filters={k: tuple(v) for k, v in filters.items()},
                   sources=tuple(dict.fromkeys(sources)), stance=tuple(dict.fromkeys(stance)),
                   year_from=year_from, year_to=year_to)


def check_numbers(request: SearchRequest, max_page_size: int) -> None:
    """BadQuery naming the parameter and its valid range when a number of *request* is outside it."""
    bounds = {"page": (1, MAX_PAGE), "limit": (1, max_page_size), "year_from": YEARS, "year_to": YEARS}
    for name, (low, high) in bounds.items():
        value = getattr(request, name)
        if value is not None and not low <= value <= high:
            shown = str(value) if len(str(value)) <= 20 else str(value)[:20] + "..."
            raise BadQuery(f"{name} must be between {low} and {high}, not {shown}")


def _year_range(value: str, year_from: int | None, year_to: int | None) -> tuple[int | None, int | None]:
    """``year:2015``, ``year:2010-2015``, ``year:2010-`` or ``year:-2015`` as (from, to)."""
    low, dash, high = value.partition("-")
    try:
        first = int(low) if low.strip() else None
        last = (int(high) if high.strip() else None) if dash else first
    except ValueError:
        raise BadQuery(f"year:{value} is not a year or a range of years: write, for example, "
                       "year:2015 or year:2010-2015") from None
    for year in (first, last):
        if year is not None and not 0 <= year <= 9999:
            raise BadQuery(f"year:{value} is out of range: years run from 0 to 9999, for example: "
                           "year:2010-2015")
    return (first if first is not None else year_from), (last if last is not None else year_to)


def run_search(build: OpenedBuild, request: SearchRequest) -> SearchPage:
    """One validated request run on the engine, as a page (no cache: the facade keeps one)."""
    parsed = request.parsed or grammar.parse(request.q, QUERY_FIELDS)
    expansions = vocabulary_expansions(build.vocabulary, parsed.positive_text()) if request.expand else ()
    engine_query = EngineQuery(
        text=request.q, parsed=parsed, expansions=expansions, filters=request.filters,
        sources=request.sources, stance=request.stance, year_from=request.year_from,
        year_to=request.year_to, exclude_retracted=request.exclude_retracted,
        sort=request.sort, offset=(request.page - 1) * request.limit,
        limit=request.limit, facets=True, suggest=True,
        time_budget=build.settings.search_time_budget_s or None,
    )
    result = build.engine.search_claims(engine_query)
    if result.suggestion and not _suggestion_helps(build, engine_query, result, request.expand):
        result = replace(result, suggestion=None)
    return _page(build, request, result, expansions)


def _suggestion_helps(build: OpenedBuild, asked: EngineQuery, result: EngineResult, expand: bool) -> bool:
    """Whether the respelled query matches better than the one typed.

    The speller respells every word it does not know to the nearest index word, which for a
    query about something the knowledge base does not hold is noise ("ketamine cures cancer"
    -> "ketamine care center"). So the suggestion runs too, cheaply (one hit, no facets, no
    time budget beyond the asked one), and is kept only when it matches where the typed
    query matched nothing, or its best match has all of its content words and the typed
    query's best match had no larger share of its own.
    """
    text = result.suggestion or ""
    try:
        parsed = grammar.parse(text, QUERY_FIELDS)
    except BadQuery:
        return False
    trial = build.engine.search_claims(replace(
        asked, text=text, parsed=parsed, offset=0, limit=1, facets=False, suggest=False,
        expansions=vocabulary_expansions(build.vocabulary, parsed.positive_text()) if expand else ()))
    if not trial.total:
        return False
    if not result.total:
        return True

    def share(r: EngineResult) -> float:
        return r.best_coverage / r.content_words if r.content_words else 0.0

    # Whole, and no worse: some claim has every content word of the respelled query, so a
    # respelling that only swaps one unmatched word for another (2 of 3) is not offered;
    # "ketamin" -> "ketamine" (the same stem, so an equal match) still is: it is the word.
    return trial.best_coverage == trial.content_words and share(trial) >= share(result)


def _page(build: OpenedBuild, request: SearchRequest, result: EngineResult,
          expansions: tuple[tuple[str, tuple[str, ...]], ...]) -> SearchPage:
    vocab = build.store.vocabulary
    hits = []
    for hit in result.hits:
        claim = build.store.claim_by_id[hit.id]
        source = build.store.source_by_id[claim.source_id]
        hits.append(ClaimHit(claim=claim_dict(build, claim), source=card(build, source),
                             score=hit.score, highlight=hit.highlight))
    facets: dict[str, tuple[FacetValue, ...]] = {}
    for kind in FILTER_KINDS:
        counts = result.facets.get(kind, {})
        selected = set(request.filters.get(kind, ()))
        values = [FacetValue(t, vocab.label(t), n, t in selected)
                  for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], vocab.label(kv[0])))]
        facets[kind] = tuple(values)
    filters: dict[str, Any] = {k: list(v) for k, v in request.filters.items()}
    if request.sources:
        filters["source"] = list(request.sources)
    if request.stance:
        filters["stance"] = list(request.stance)
    if request.year_from is not None:
        filters["year_from"] = request.year_from
    if request.year_to is not None:
        filters["year_to"] = request.year_to
    if request.exclude_retracted:
        filters["exclude_retracted"] = True
    did_you_mean = result.suggestion if result.suggestion and result.suggestion != request.q else None
    return SearchPage(
        query=request.q, total=result.total, page=request.page, limit=request.limit,
        sort=request.sort, hits=tuple(hits), facets=facets, years=result.years, filters=filters,
        expanded_terms=tuple({"id": t, "label": vocab.label(t),
                              "kind": vocab.get(t).kind if vocab.get(t) else ""}  # type: ignore[union-attr]
                             for t, _ in expansions),
        did_you_mean=did_you_mean, partial=result.partial, year_levels=result.year_levels,
        weak_match=result.weak,
    )


def search_sources(build: OpenedBuild, text: str, limit: int = 20) -> list[tuple[Source, float]]:
    """Rank sources by title, abstract and summary (no facets)."""
    result = build.engine.search_sources(EngineQuery(text=text, parsed=ParsedQuery.of_words(text),
                                                    limit=limit, facets=False,
                                                    expansions=vocabulary_expansions(build.vocabulary, text)))
    return [(build.store.source_by_id[h.id], h.score) for h in result.hits]


# --- suggestions and exports (search page, source page) --------------------------------

def request_key(request: SearchRequest) -> tuple[object, ...]:
    return (request.q, tuple(sorted(request.filters.items())), request.sources, request.stance,
            request.year_from, request.year_to, request.sort, request.page, request.limit,
            request.expand, request.exclude_retracted)
