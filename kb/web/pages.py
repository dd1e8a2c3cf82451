"""HTML pages: the same library calls as the API, rendered with templates.

Every page works without JavaScript (static/app.js only adds suggestions, copy buttons and
keyboard shortcuts), and every search state lives in the URL so a search can be shared.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

from cachetools import LRUCache
from flask import Blueprint, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue

from kb import citations
from kb.consensus import WEIGHING, Consensus, consensus, is_question
from kb.errors import BadQuery
from kb.exports import EXPORT_FORMATS
from kb.knowledge_base import KnowledgeBase, check_numbers
from kb.models import TAG_KINDS, VERIFICATION_MARKS
from kb.query import FILTER_KINDS, SORTS, SearchPage
from kb.responses import SEARCH_PARAMS, search_request
from kb.web.openapi import openapi_document, operations
from kb.web.state import knowledge_base

bp = Blueprint("pages", __name__)

# Parameters that hold several values (repeated, or comma-separated in a shared link).
MULTI_PARAMS = frozenset({*FILTER_KINDS, "source", "stance"})
# Changing any of these starts again at page 1; only "page" itself keeps the position.
FACET_KINDS: tuple[str, ...] = ("condition", "mechanism", "intervention", "design", "outcome")
TAG_LINK_KINDS: tuple[str, ...] = ("condition", "mechanism", "intervention")
SORT_LABELS: dict[str, str] = {"relevance": "relevance", "evidence": "evidence level", "newest": "newest"}
STANCE_LABELS: dict[str, str] = {"supports": "supports", "limits": "limits", "contradicts": "contradicts"}
FACET_SHOWN = 8  # values listed before "more"; the rest are one click away in a <details>
MAP_SHADES = 5  # count buckets for map cell shading (CSS classes shade-1 .. shade-5)
VERIFICATION_FIELDS: tuple[tuple[str, str], ...] = (
    ("title", "Title"), ("authors", "Authors"), ("container", "Published in"), ("year", "Year"),
    ("volume", "Volume"), ("issue", "Issue"), ("pages", "Pages"), ("doi", "DOI"), ("pmid", "PMID"),
    ("url", "URL"),
)
# Each verification mark in words, for the source page (the marks themselves are curator shorthand).
MARK_WORDS: dict[str, str] = {
    "verified": "Confirmed from the publisher's record",
    "verified-secondary": "Confirmed from a secondary source",
    "derived-from-publisher-URL": "Not confirmed: read from the publisher's web address",
    "partial": "Not confirmed: only partly checked",
    "unverified": "Not confirmed",
}
MESH_BROWSER = "https://meshb.nlm.nih.gov/record/ui?ui="
# Timeline bars by evidence-level group, matching the evidence map's key (style.css .tl-*).
TIMELINE_GROUPS: tuple[tuple[str, str, frozenset[int | None]], ...] = (
    ("strong", "Levels 1–2", frozenset({1, 2})),
    ("middle", "Levels 3–5", frozenset({3, 4, 5})),
    ("weak", "Levels 6–7", frozenset({6, 7})),
    ("unranked", "Unranked", frozenset({None})),
)
TIMELINE_BAR = 14  # px per year column, and the gap between columns
TIMELINE_GAP = 4
TIMELINE_HEIGHT = 96  # px of the tallest bar
TIMELINE_MAX_YEARS = 60  # wider spans show their latest 60 years (chart and table), and the caption says so


@dataclass
class SearchState:
    """The search as (name, value) pairs from the URL, and the links that change it."""

    items: list[tuple[str, str]] = field(default_factory=list)
    base: str = ""  # the search page's path, looked up once: a results page builds ~100 links

    @classmethod
    def from_args(cls, args: Mapping[str, Sequence[str]]) -> SearchState:
        """Keep known parameters with a value; split comma lists into one pair per value."""
        items: list[tuple[str, str]] = []
        for name in SEARCH_PARAMS:
            for raw in args.get(name, ()):
                values = raw.split(",") if name in MULTI_PARAMS else [raw]
                items.extend((name, v.strip()) for v in values if v.strip())
        return cls(items)

    def with_filters(self, filters: Mapping[str, Any]) -> SearchState:
        """Replace the filter values by the term ids the search resolved them to ("TRD" -> "trd")."""
        kept = [(k, v) for k, v in self.items if k not in FILTER_KINDS]
        resolved = [(kind, term) for kind in FILTER_KINDS for term in filters.get(kind, ())]
        return SearchState(kept + resolved)

    def get(self, name: str, default: str = "") -> str:
        values = self.values(name)
        return values[-1] if values else default

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.items if k == name]

    def has(self, name: str, value: str) -> bool:
        return (name, value) in self.items

    def url(self, add: tuple[str, str] | None = None, remove: tuple[str, str] | None = None,
            **changes: Any) -> str:
        """The search URL with one value added or removed and/or single parameters replaced.

        Any change but a new page number goes back to page 1; a None value drops the parameter.
        """
        items = list(self.items)
        if add and add not in items:
            items.append(add)
        if remove:
            items = [item for item in items if item != remove]
        for name, value in changes.items():
            items = [item for item in items if item[0] != name]
            if value is not None and value != "":
                items.append((name, str(value)))
        if add or remove or set(changes) - {"page"}:
            items = [item for item in items if item[0] != "page" or "page" in changes]
        items = [item for item in items if item != ("page", "1")]
        if not self.base:
            self.base = url_for("pages.search")
        return self.base + ("?" + urlencode(items) if items else "")

    def feed_url(self) -> str:
        """This search's Atom feed: the same parameters but the page and the page size."""
        items = [item for item in self.items if item[0] not in {"page", "limit"}]
        return url_for("pages.search_feed") + ("?" + urlencode(items) if items else "")

    def hidden(self, exclude: Iterable[str] = ()) -> list[tuple[str, str]]:
        """Pairs to carry in a form as hidden inputs (everything but *exclude* and the page)."""
        skip = {"page", *exclude}
        return [(k, v) for k, v in self.items if k not in skip]

    @property
    def has_search(self) -> bool:
        # exclude_retracted narrows a search but is none by itself, like sort
        return any(k not in {"sort", "page", "limit", "expand", "exclude_retracted"} for k, _ in self.items)


@bp.app_template_global()
def has_endpoint(name: str) -> bool:
    """Whether the app serves *name* (the checker's blueprint is optional), for the navigation."""
    return name in current_app.view_functions


@bp.app_template_global()
def mesh_url(descriptor: str) -> str:
    """The MeSH browser's page for a descriptor id ("D003866"); "" for none."""
    return MESH_BROWSER + quote(descriptor, safe="") if descriptor else ""


def _level_label(level: int | None) -> str:
    return f"Level {level}" if level is not None else "Unranked"


@bp.app_template_global()
def level_badge(level: int | None, design_label: str | None = None) -> dict[str, str]:
    """The evidence-level badge: its text, CSS class and an explanation for its title."""
    text = _level_label(level)
    css = f"level level-{level}" if level is not None else "level level-none"
    explain = (f"Evidence level {level} of 7 (1 = strongest)" if level is not None
               else "Not ranked as evidence")
    if design_label:
        explain += f": {design_label}"
    return {"text": text, "css": css, "title": explain, "design": design_label or ""}


# --- search ---------------------------------------------------------------------------------


@bp.get("/")
@bp.get("/search")
def search() -> ResponseReturnValue:
    """The search page: a query box, then claims with their sources, facets, sort and pages."""
    kb = knowledge_base()
    _warm_citations(kb)
    # A build never changes, so a rendered results page can be served again as it is: under load
    # this saves the template work, which holds the GIL longest (see bench/load.py).
    key = (kb.manifest.get("build"), request.query_string)
    cached = _RENDERED.get(key)
    if cached is not None:
        return cached, 200
    args = {key: request.args.getlist(key) for key in request.args}
    state, page, error = run_search(kb, args)
    context: dict[str, Any] = {"page": page, "error": error, "state": state, "q": state.get("q")}
    if page is not None:
        context.update(_results_context(kb, page, state))
        context["consensus"] = consensus_bar(kb, args, state.get("q"))
    else:
        context.update(_home_context(kb))
    html = render_template("search.html", **context)
    if page is not None and not error:
        _RENDERED.put(key, html, kb.settings.search_cache_size)
    return html, 400 if error else 200


def consensus_bar(kb: KnowledgeBase, args: Mapping[str, Sequence[str]], q: str) -> dict[str, Any] | None:
    """The consensus bar for a question (kb.consensus): segments as SVG geometry, no script.

    None when the query is no question (see kb.consensus.is_question) or cannot be weighed.
    """
    if not is_question(q):
        return None
    try:
        found: Consensus = consensus(kb, search_request(args, kb.settings.page_size))
    except BadQuery:
        return None
    segments, x = [], 0.0
    for tally in found.tallies:
        width = tally.share * 100
        if tally.sources:
            segments.append({"stance": tally.stance, "x": round(x, 2), "width": round(width, 2),
                             "percent": round(width), "sources": tally.sources,
                             "weight": round(tally.weight, 1)})
        x += width
    return {"result": found, "segments": segments, "weighing": WEIGHING,
            "tallies": [{"stance": t.stance, "sources": t.sources, "weight": round(t.weight, 1),
                         "percent": round(t.share * 100)} for t in found.tallies]}


def run_search(kb: KnowledgeBase, args: Mapping[str, Sequence[str]], *, everything: bool = False,
               limit: int | None = None, page: int | None = None
               ) -> tuple[SearchState, SearchPage | None, str | None]:
    """Read the search parameters as the search page does and run the search.

    One reading for the results page and its Atom feed (kb.web.feeds), so both always mean the
    same search. *everything*: search even without words or filters (a feed of all evidence);
    *limit* and *page* override the URL's (the feed reads results in pages of its own).
    Returns the state (filters resolved to term ids), the page (None: nothing to search) and a
    message for a malformed request.
    """
    state = SearchState.from_args(args)
    if state.has_search or everything:
        try:
            asked = search_request(args, kb.settings.page_size)
            if limit is not None or page is not None:
                asked = replace(asked, limit=limit or asked.limit, page=page or asked.page)
            found = kb.search(asked)
        except BadQuery as problem:
            return state, None, str(problem)
        return state.with_filters(found.filters), found, None
    if any(any(args.get(name, ())) for name in ("page", "sort", "limit", "year_from", "year_to", "expand")):
        try:  # nothing to search, but still reject a malformed page or sort, as the API does
            asked = search_request(args, kb.settings.page_size)
            if asked.sort not in SORTS:
                raise BadQuery(f"Unknown sort {asked.sort!r}: use one of {', '.join(SORTS)}")
            check_numbers(asked, kb.settings.max_page_size)
        except BadQuery as problem:
            return state, None, str(problem)
    return state, None, None


class _RenderedPages:
    """A small thread-safe LRU of rendered search pages, keyed by build and query string."""

    MOST = 512  # rendered pages kept at most, whatever the search cache's size

    def __init__(self) -> None:
        self._pages: LRUCache[tuple[object, bytes], str] = LRUCache(self.MOST)
        self._lock = threading.Lock()  # cachetools' LRU is not thread-safe

    def get(self, key: tuple[object, bytes]) -> str | None:
        with self._lock:
            return self._pages.get(key)

    def put(self, key: tuple[object, bytes], html: str, capacity: int) -> None:
        if capacity <= 0:
            return
        with self._lock:
            self._pages[key] = html
            while len(self._pages) > min(capacity, self.MOST):
                self._pages.popitem()  # the least recently used


_RENDERED = _RenderedPages()


def _results_context(kb: KnowledgeBase, page: SearchPage, state: SearchState) -> dict[str, Any]:
    vocab = kb.vocabulary
    facets = []
    for kind in FACET_KINDS:
        values = list(page.facets.get(kind, ()))
        if values:
            facets.append({"kind": kind, "shown": values[:FACET_SHOWN], "more": values[FACET_SHOWN:]})
    chips = []
    for kind in FILTER_KINDS:
        for term in page.filters.get(kind, ()):
            found = vocab.get(term)
            chips.append({"kind": kind, "label": vocab.label(term), "url": state.url(remove=(kind, term)),
                          "mesh": found.mesh if found is not None else ""})
    for stance in page.filters.get("stance", ()):
        chips.append({"kind": "stance", "label": stance, "url": state.url(remove=("stance", stance))})
    for source_id in page.filters.get("source", ()):
        chips.append({"kind": "source", "label": source_id, "url": state.url(remove=("source", source_id))})
    if "year_from" in page.filters or "year_to" in page.filters:
        span = f"{page.filters.get('year_from', '…')}–{page.filters.get('year_to', '…')}"
        chips.append({"kind": "years", "label": span, "url": state.url(year_from=None, year_to=None)})
    years = sorted(page.years)
    return {
        "facets": facets,
        "chips": chips,
        "sorts": [{"id": s, "label": label, "url": state.url(sort=None if s == "relevance" else s),
                   "current": page.sort == s} for s, label in SORT_LABELS.items()],
        "stances": [{"id": s, "label": label, "url": state.url(add=("stance", s)) if not state.has("stance", s)
                     else state.url(remove=("stance", s)), "selected": state.has("stance", s)}
                    for s, label in STANCE_LABELS.items()],
        "year_span": (years[0], years[-1]) if years else None,
        "pages": _pagination(page, state),
        "first": (page.page - 1) * page.limit + 1,
        "last": min(page.total, page.page * page.limit),
        "tag_kinds": TAG_LINK_KINDS,
        "timeline": timeline(page, state),
        "feed_url": state.feed_url(),
    }


def timeline(page: SearchPage, state: SearchState) -> dict[str, Any] | None:
    """Bars per publication year, stacked by evidence-level group, as numbers for the SVG.

    Server-side geometry: the page needs no script, and the same numbers fill the table that is
    the chart's text alternative. None when no matched claim has a year.
    """
    if not page.year_levels:
        return None
    first, last = min(page.year_levels), max(page.year_levels)
    first = max(first, last - TIMELINE_MAX_YEARS + 1)
    step = TIMELINE_BAR + TIMELINE_GAP
    left, top, bottom = 30, 10, 22  # px: the count scale, headroom, the year labels
    tallest = max(sum(levels.values()) for year, levels in page.year_levels.items() if year >= first)
    columns: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    labelled: list[int] = []
    for number, year in enumerate(range(first, last + 1)):
        levels = page.year_levels.get(year, {})
        counts = [(css, label, sum(n for level, n in levels.items() if level in group))
                  for css, label, group in TIMELINE_GROUPS]
        total = sum(n for _, _, n in counts)
        x = left + number * step
        bars, y = [], top + TIMELINE_HEIGHT
        for css, label, count in counts:
            if not count:
                continue
            height = max(2, round(count * TIMELINE_HEIGHT / tallest))
            y -= height
            bars.append({"css": css, "x": x, "y": y, "height": height,
                         "title": f"{year}: {count} claim{'' if count == 1 else 's'}, {label.lower()}"})
        # Label the first and last year and every fifth; a label is two columns wide, so one
        # too close to the previous is skipped (the last year wins over its neighbour).
        if year in (first, last) or year % 5 == 0:
            crowded = bool(labelled) and number - labelled[-1] < 2
            if crowded and year == last:
                labelled.pop()
            if not crowded or year == last:
                labelled.append(number)
        columns.append({"year": year, "x": x, "bars": bars, "total": total})
        if total:
            rows.append({"year": year, "counts": [n for _, _, n in counts], "total": total,
                         "url": state.url(year_from=year, year_to=year)})
    shown = set(labelled)
    for number, column in enumerate(columns):
        column["label"] = number in shown
    busiest = max(rows, key=lambda row: row["total"])
    summary = (f"{sum(row['total'] for row in rows)} claims with a publication year, from {rows[0]['year']} "
               f"to {rows[-1]['year']}; most from {busiest['year']} ({busiest['total']}).")
    return {"columns": columns, "rows": rows, "groups": [(css, label) for css, label, _ in TIMELINE_GROUPS],
            "width": left + len(columns) * step + 12, "height": top + TIMELINE_HEIGHT + bottom,
            "base": top + TIMELINE_HEIGHT, "top": top, "left": left, "tallest": tallest,
            "bar": TIMELINE_BAR, "summary": summary, "cut": first > min(page.year_levels)}


def _pagination(page: SearchPage, state: SearchState) -> list[dict[str, Any]]:
    """Page links: first, last, and two either side of the current page, with gaps marked."""
    wanted = sorted({1, page.pages, *range(page.page - 2, page.page + 3)} & set(range(1, page.pages + 1)))
    links: list[dict[str, Any]] = []
    previous = 0
    for number in wanted:
        if number - previous > 1:
            links.append({"gap": True})
        links.append({"number": number, "url": state.url(page=number), "current": number == page.page})
        previous = number
    return links if page.pages > 1 else []


def _home_context(kb: KnowledgeBase) -> dict[str, Any]:
    stats = kb.stats()
    browse = []
    for kind in ("condition", "mechanism", "intervention"):
        terms = list(stats.get(f"claims_per_{kind}", {}).items())[:8]
        browse.append({"kind": kind, "terms": [{"id": t, "label": v["label"], "claims": v["claims"],
                                                 "url": url_for("pages.search", **{kind: t})}
                                                for t, v in terms]})
    return {"manifest": kb.status(), "browse": browse}


# --- source and claim -------------------------------------------------------------------------


@bp.get("/sources/<path:source_id>")
def source(source_id: str) -> ResponseReturnValue:
    """A source: citations to copy, exports, verification of each field, summary, its claims."""
    kb = knowledge_base()
    _warm_citations(kb)
    view = kb.source_view(source_id)
    groups = {"supports": [], "against": [], "other": []}  # type: dict[str, list[dict[str, Any]]]
    for claim in view["claims"]:
        stance = claim.get("stance")
        groups["supports" if stance == "supports" else "against" if stance else "other"].append(claim)
    exports = [{"id": name, "label": spec.label,
                "url": url_for("api.export_source", source_id=view["id"], format=name)}
               for name, spec in EXPORT_FORMATS.items()]
    return render_template("source.html", source=view, groups=groups, exports=exports,
                           fields=_verification_rows(view), tag_kinds=TAG_KINDS)


def _verification_rows(view: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metadata field with a value: the value, its mark and whether it is confirmed."""
    rows = []
    marks = view.get("verification", {})
    notes = view.get("verification_notes", {})
    for name, label in VERIFICATION_FIELDS:
        value: Any = view.get(name)
        if name in ("doi", "pmid") and not value:
            value = view.get("unconfirmed_identifiers", {}).get(name)
        if isinstance(value, list):
            value = "; ".join(value)
        if not value:
            continue
        mark = marks.get(name) or marks.get("venue" if name in {"container", "year"} else name) or "unverified"
        note = notes.get(name, "")
        # Notes read "verified-secondary | gh-list, ...": the mark is said in words beside it,
        # so only where it was checked is kept.
        head, bar, rest = note.partition("|")
        if bar and head.strip() in VERIFICATION_MARKS:
            note = rest.strip()
        rows.append({"name": name, "label": label, "value": str(value), "mark": mark,
                     "confirmed": mark in {"verified", "verified-secondary"},
                     "words": MARK_WORDS.get(mark, "Not confirmed"), "note": note})
    return rows


@bp.get("/claims/<claim_id>")
def claim(claim_id: str) -> ResponseReturnValue:
    """A claim, its source and locator, and related claims of other sources by stance."""
    kb = knowledge_base()
    _warm_citations(kb)
    view = kb.claim_view(claim_id)
    related = {"supports": [], "against": [], "other": []}  # type: dict[str, list[dict[str, Any]]]
    for other in view["related"]:
        stance = other.get("stance")
        related["supports" if stance == "supports" else "against" if stance else "other"].append(other)
    return render_template("claim.html", claim=view, related=related, tag_kinds=TAG_KINDS,
                           vocabulary=kb.vocabulary)


# --- evidence map ----------------------------------------------------------------------------


@bp.get("/map")
def evidence_map() -> ResponseReturnValue:
    """The evidence map: row × column kinds, cells shaded by claim count, linking to searches."""
    kb = knowledge_base()
    rows = request.args.get("rows", "condition")
    columns = request.args.get("columns", "mechanism")
    data = kb.evidence_map(rows, columns)
    top = max((cell["claims"] for cell in data["cells"]), default=0)
    cells = {}
    for cell in data["cells"]:
        shade = max(1, -(-cell["claims"] * MAP_SHADES // top)) if top else 0
        cells[(cell["row"], cell["column"])] = {
            **cell, "shade": shade,
            "url": url_for("pages.search", **{rows: cell["row"], columns: cell["column"]}),
        }
    switches = {
        "columns": [{"kind": k, "url": url_for("pages.evidence_map", rows=rows, columns=k), "current": k == columns}
                    for k in TAG_KINDS if k != rows],
        "rows": [{"kind": k, "url": url_for("pages.evidence_map", rows=k, columns=columns), "current": k == rows}
                 for k in TAG_KINDS if k != columns],
    }
    buckets: dict[int, list[int]] = {}
    for count in sorted({cell["claims"] for cell in data["cells"]}):
        buckets.setdefault(max(1, -(-count * MAP_SHADES // top)), []).append(count)
    legend = [{"shade": shade, "text": f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"}
              for shade, counts in sorted(buckets.items())]
    return render_template("map.html", data=data, cells=cells, rows_kind=rows, columns_kind=columns,
                           switches=switches, legend=legend)


# --- the API, for people ----------------------------------------------------------------------


@bp.get("/api")
def api_page() -> ResponseReturnValue:
    """What the API offers, read from the OpenAPI document so the two cannot disagree."""
    document = openapi_document(current_app)
    routes = [{"method": method.upper(), "path": path, "summary": operation.get("summary", "")}
              for method, path, operation in operations(document)]
    routes.sort(key=lambda route: (route["path"], route["method"] != "GET"))
    for route in routes:  # the document calls itself "This document"; on this page that misleads
        if route["path"].endswith("/openapi.json"):
            route["summary"] = "This API as an OpenAPI 3.1 document"
    return render_template("api.html", routes=routes, info=document.get("info", {}))


# --- citation cache warming ------------------------------------------------------------------

_warmed: weakref.WeakSet[KnowledgeBase] = weakref.WeakSet()
_warm_lock = threading.Lock()


def _warm_citations(kb: KnowledgeBase) -> None:
    """Format every source's references once in the background, after the first page view.

    citeproc-py takes tens of milliseconds per reference; the results are cached, so a
    background pass keeps the first searches over a fresh build as fast as later ones.
    """
    with _warm_lock:
        if kb in _warmed:
            return
        _warmed.add(kb)
    threading.Thread(target=citations.warm, args=(list(kb.store.sources),), name="kb-citations",
                     daemon=True).start()
