"""Atom feeds of searches: /search.atom takes the search page's parameters and lists the sources
whose claims match, newest in the knowledge base first, so a reader can follow a question.

The data comes from the same reading of the URL as the results page (pages.run_search); only the
rendering differs. An entry is a source (not a claim): a new study with five matching claims is
one alert, its summary listing the claims.

Dates: an entry's ``updated`` is the day the source entered the knowledge base (``Source.added``:
set by ``kb import``, or a summary's ``added`` front matter). Sources without one get the build
time instead, which only says "in the knowledge base by then"; they are listed after the dated
ones and their summary says the date is not recorded. Nothing else is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree import ElementTree

from flask import Response, request, url_for
from flask.typing import ResponseReturnValue

from kb.knowledge_base import KnowledgeBase
from kb.web.errors import error_response
from kb.web.pages import bp, run_search
from kb.web.state import knowledge_base

ATOM = "http://www.w3.org/2005/Atom"
FEED_ENTRIES = 50  # sources listed in one feed
FEED_SCAN_PAGES = 5  # result pages (of max_page_size claims) read to find the newest sources
CLAIMS_PER_ENTRY = 5  # matching claims quoted in an entry's summary


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One source in a feed, with the claims of it that matched."""

    source_id: str
    title: str
    updated: str  # RFC 3339
    dated: bool  # False: the source has no entry date and the build time stands in
    claims: tuple[str, ...]
    matched: int  # how many of its claims matched (claims quotes at most CLAIMS_PER_ENTRY)


def _rfc3339(day_or_time: str) -> str:
    """'2025-03-01' or an ISO timestamp -> '2025-03-01T00:00:00Z' (UTC)."""
    if len(day_or_time) == 10:
        return f"{day_or_time}T00:00:00Z"
    moment = datetime.fromisoformat(day_or_time)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def feed_entries(kb: KnowledgeBase, args: dict[str, list[str]]) -> tuple[str, list[FeedEntry]]:
    """The sources matching a search, newest first; raises nothing, returns (error, entries).

    Reads up to FEED_SCAN_PAGES pages of the best-ranked matching claims (results are cached
    per build, so a feed polled again costs look-ups), groups them by source and sorts the
    sources by entry date, keeping the search's ranking among sources of the same date.
    """
    built = _rfc3339(str(kb.manifest.get("built_at") or datetime.now(UTC).isoformat()))
    grouped: dict[str, list[str]] = {}
    size = kb.settings.max_page_size
    for number in range(1, FEED_SCAN_PAGES + 1):
        _, page, error = run_search(kb, args, everything=True, limit=size, page=number)
        if error:
            return error, []
        if page is None:
            break
        for hit in page.hits:
            grouped.setdefault(hit.source["id"], []).append(str(hit.claim["text"]))
        if number >= page.pages:
            break
    entries = []
    for source_id, claims in grouped.items():
        source = kb.store.source_by_id[source_id]
        first = source.authors[0].split(",")[0] if source.authors else ""
        byline = ", ".join(part for part in (first + (" et al." if len(source.authors) > 1 else ""),
                                             str(source.year or "")) if part)
        entries.append(FeedEntry(
            source_id=source.id, title=f"{source.title} ({byline})" if byline else source.title,
            updated=_rfc3339(source.added) if source.added else built, dated=bool(source.added),
            claims=tuple(claims[:CLAIMS_PER_ENTRY]), matched=len(claims)))
    # Dated sources newest first (a stable sort keeps the ranking within a day), then the undated.
    entries.sort(key=lambda entry: entry.updated if entry.dated else "", reverse=True)
    return "", entries[:FEED_ENTRIES]


def _summary(entry: FeedEntry) -> str:
    noun = "claim matches" if entry.matched == 1 else "claims match"
    lines = [f"{entry.matched} {noun} this search:"]
    lines += [f"- {text}" for text in entry.claims]
    if entry.matched > len(entry.claims):
        lines.append(f"(and {entry.matched - len(entry.claims)} more on the source page)")
    if not entry.dated:
        lines.append("The date this source entered the knowledge base is not recorded; "
                     "the date shown is the build time.")
    return "\n".join(lines)


def render_atom(title: str, feed_id: str, html_url: str, entries: list[FeedEntry], built: str) -> bytes:
    """The Atom 1.0 document (RFC 4287). ElementTree escapes every text and attribute."""
    ElementTree.register_namespace("", ATOM)

    def add(parent: ElementTree.Element, tag: str, text: str | None = None, **attrs: str) -> ElementTree.Element:
        element = ElementTree.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    feed = ElementTree.Element(f"{{{ATOM}}}feed")
    add(feed, "id", feed_id)
    add(feed, "title", title)
    add(feed, "updated", max((entry.updated for entry in entries), default=built))
    add(add(feed, "author"), "name", "Evidence KB")
    add(feed, "link", rel="self", type="application/atom+xml", href=feed_id)
    add(feed, "link", rel="alternate", type="text/html", href=html_url)
    add(feed, "generator", "Evidence KB")
    for entry in entries:
        item = add(feed, "entry")
        link = url_for("pages.source", source_id=entry.source_id, _external=True)
        add(item, "id", link)
        add(item, "title", entry.title)
        add(item, "link", rel="alternate", type="text/html", href=link)
        add(item, "updated", entry.updated)
        add(item, "summary", _summary(entry), type="text")
    body: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


@bp.get("/search.atom")
def search_feed() -> ResponseReturnValue:
    """The Atom feed of a search: the search page's parameters, sources newest first."""
    kb = knowledge_base()
    args = {key: request.args.getlist(key) for key in request.args}
    error, entries = feed_entries(kb, args)
    if error:
        return error_response(error, 400)
    words = (args.get("q") or [""])[-1].strip()
    filters = [value for name, values in args.items() if name not in {"q", "page", "limit", "sort"}
               for value in values if value.strip()]
    title = "Evidence KB: " + (f"“{words}”" if words else "all evidence")
    if filters:
        title += f" ({', '.join(filters)})"
    query = request.query_string.decode("utf-8", "replace")
    feed_id = url_for("pages.search_feed", _external=True) + (f"?{query}" if query else "")
    html_url = url_for("pages.search", _external=True) + (f"?{query}" if query else "")
    built = _rfc3339(str(kb.manifest.get("built_at") or datetime.now(UTC).isoformat()))
    body = render_atom(title, feed_id, html_url, entries, built)
    return Response(body, mimetype="application/atom+xml", content_type="application/atom+xml; charset=utf-8")
