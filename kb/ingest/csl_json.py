"""CSL-JSON (Citation Style Language data, as exported by Zotero, pandoc or doi.org): a list of
items or a single item, one Source each.

Crossref's /works records share most of CSL's field names, so ``source_from_item`` serves both
formats; the Crossref parser calls it with its own verification marks. A CSL-JSON file is the
user's own export, so nothing in it is marked verified.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kb.ids import normalize_doi, normalize_pmcid, normalize_pmid
from kb.ingest import ParseResult
from kb.ingest.common import (
    KeyAllocator,
    add_with_unique_key,
    clean,
    join_sections,
    normalize_pages,
    only_present_marks,
    person,
    problem,
    read_json,
    sections_from_text,
    source_key,
    strip_markup,
    year_from,
)
from kb.models import CorpusProblem, Provenance, Source

# CSL and Crossref item types -> BibTeX entry types (Source.type)
TYPES = {
    "article-journal": "article", "journal-article": "article", "article": "article",
    "article-magazine": "article", "article-newspaper": "article", "review": "article",
    "book": "book", "monograph": "book", "edited-book": "book", "reference-book": "book",
    "chapter": "incollection", "book-chapter": "incollection", "book-section": "incollection",
    "paper-conference": "inproceedings", "proceedings-article": "inproceedings",
    "report": "techreport", "thesis": "phdthesis", "dissertation": "phdthesis",
    "posted-content": "unpublished", "manuscript": "unpublished",
}
_SECTION = re.compile(r"<(?:jats:)?sec\b[^>]*>(.*?)</(?:jats:)?sec>", re.DOTALL)
_TITLE = re.compile(r"<(?:jats:)?title\b[^>]*>(.*?)</(?:jats:)?title>", re.DOTALL)
_DATE_FIELDS = ("issued", "published-print", "published", "published-online")


def parse(text: str, origin: str) -> ParseResult:
    """Parse a CSL-JSON document (an array of items or one item)."""
    result = ParseResult()
    loaded, data = read_json(text, origin, result)
    if not loaded:
        return result
    items = data if isinstance(data, list) else [data]
    add_items(result, items, origin, verification=None)
    return result


def add_items(result: ParseResult, items: list[Any], origin: str,
              verification: dict[str, str] | None, note: str = "") -> None:
    """Turn each item into a Source (keys unique within *result*) or a problem naming its number."""
    keys = KeyAllocator(s.id for s in result.sources)
    for number, item in enumerate(items, start=1):
        provenance = Provenance(origin, number)
        if not isinstance(item, dict):
            result.problems.append(problem(provenance, f"record {number} is not a JSON object; "
                                           "skipped"))
            continue
        source, problems = source_from_item(item, provenance, verification, note)
        result.problems.extend(problems)
        if source is None:
            continue
        add_with_unique_key(result, source, json.dumps(item, ensure_ascii=False, indent=1), keys)


def source_from_item(item: dict[str, Any], provenance: Provenance,
                     verification: dict[str, str] | None = None, note: str = ""
                     ) -> tuple[Source | None, list[CorpusProblem]]:
    """Build a Source from a CSL-JSON or Crossref item; *verification* marks the service's fields.

    Provenance lines count records (1 = the first item) because JSON has no useful line per record.
    """
    title = strip_markup(_first(item.get("title")))  # markup alone ("<jats:p>") is no title
    if not title:
        return None, [problem(provenance, f"record {provenance.line} has no title; skipped")]
    subtitle = strip_markup(_first(item.get("subtitle")))
    if subtitle and subtitle.lower() not in title.lower():
        title = f"{title.rstrip(':')}: {subtitle}"
    names = item.get("author")
    authors = tuple(a for a in (_name(n) for n in names if isinstance(n, dict)) if a) \
        if isinstance(names, list) else ()
    year = _year(item)
    doi = normalize_doi(str(item.get("DOI") or item.get("doi") or ""))
    sections = abstract_sections(str(item.get("abstract") or ""))
    marks = dict(verification or {})
    if not doi:
        marks.pop("doi", None)
    keywords = item.get("keyword") or ""
    keywords_list = keywords if isinstance(keywords, list) else re.split(r"[;,]", str(keywords))
    source = Source(
        id=source_key(authors, year, title),
        type=TYPES.get(str(item.get("type", "")), "misc"),
        title=title,
        authors=authors,
        year=year,
        container=strip_markup(_first(item.get("container-title"))),
        volume=clean(item.get("volume")),
        issue=clean(item.get("issue")),
        pages=normalize_pages(clean(item.get("page"))),
        doi=doi,
        pmid=normalize_pmid(clean(item.get("PMID"))),
        pmcid=normalize_pmcid(clean(item.get("PMCID"))),
        url=clean(item.get("URL")),
        abstract=join_sections(sections),
        abstract_sections=sections if any(label for label, _ in sections) else (),
        keywords=tuple(k for k in (clean(k) for k in keywords_list) if k),
        verification=marks,
        verification_notes=dict.fromkeys(marks, note) if note else {},
        provenance=(provenance,),
    )
    return only_present_marks(source), []


def abstract_sections(markup: str) -> tuple[tuple[str, str], ...]:
    """(label, text) sections of a JATS or plain abstract; a lone "Abstract" heading is dropped."""
    if not markup.strip():
        return ()
    found = _SECTION.findall(markup, 0, _closed(markup, "sec"))
    if found:
        sections = []
        for body in found:
            end = _closed(body, "title")
            heading = _TITLE.search(body, 0, end)
            label = strip_markup(heading.group(1)).rstrip(":").upper() if heading else ""
            text = strip_markup(_TITLE.sub(" ", body[:end]) + body[end:])
            if text:
                sections.append((label, text))
        return tuple(sections)
    end = _closed(markup, "title")
    heading = _TITLE.search(markup, 0, end)
    if heading and strip_markup(heading.group(1)).lower().rstrip(":") == "abstract":
        markup = _TITLE.sub(" ", markup[:end], count=1) + markup[end:]
    return sections_from_text(strip_markup(markup))


def _closed(markup: str, tag: str) -> int:
    """Where the last ``</tag>`` (or ``</jats:tag>``) ends; 0 when there is none.

    No ``<tag>...</tag>`` match can run past it, and searching only up to it keeps an abstract
    of thousands of unclosed tags from costing quadratic time (each one rescanned to the end).
    """
    ends = [markup.rfind(closer) + len(closer) for closer in (f"</{tag}>", f"</jats:{tag}>")
            if closer in markup]
    return max(ends, default=0)


def _first(value: Any) -> str:
    if isinstance(value, list):
        return clean(value[0]) if value else ""
    return clean(value) if value is not None else ""


def _name(name: dict[str, Any]) -> str:
    if name.get("literal"):
        return clean(name["literal"])
    family = " ".join(filter(None, (clean(name.get("non-dropping-particle")),
                                    clean(name.get("family")))))
    return person(family, clean(name.get("given")))


def _year(item: dict[str, Any]) -> int | None:
    for field in _DATE_FIELDS:
        date = item.get(field)
        if not isinstance(date, dict):
            continue
        parts = date.get("date-parts")
        # [[year, month, day], ...] when well formed; anything else is read as no date
        first = parts[0][0] if isinstance(parts, list) and parts and isinstance(parts[0], list) \
            and parts[0] else None
        if isinstance(first, int | str) and year_from(first):
            return year_from(first)
        if date.get("raw") and year_from(date["raw"]):
            return year_from(date["raw"])
        if date.get("literal") and year_from(date["literal"]):
            return year_from(date["literal"])
    return year_from(item.get("year"))
