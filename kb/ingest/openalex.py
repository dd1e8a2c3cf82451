"""OpenAlex work JSON (``GET /works/W...``, or a ``{"meta", "results"}`` list): one Source each.

OpenAlex ships abstracts as an inverted index (word -> positions) for licensing reasons; the
text is rebuilt by putting each word back at its positions. OpenAlex aggregates Crossref, PubMed
and publisher data rather than being the record of any of them, so its fields are marked
``verified-secondary``. Its topics, concepts, citations and locations are not kept.
"""

from __future__ import annotations

import json
from typing import Any

from kb.ids import normalize_doi, normalize_pmcid, normalize_pmid
from kb.ingest import ParseResult
from kb.ingest.common import (
    BIBLIOGRAPHIC_FIELDS,
    KeyAllocator,
    add_with_unique_key,
    clean,
    join_sections,
    normalize_pages,
    only_present_marks,
    person_from_display,
    problem,
    read_json,
    sections_from_text,
    source_key,
    strip_markup,
    verified_marks,
)
from kb.ingest.csl_json import TYPES
from kb.models import CorpusProblem, Provenance, Source

_MARKS = verified_marks((*BIBLIOGRAPHIC_FIELDS, "doi", "pmid", "pmcid"), "verified-secondary")


def parse(text: str, origin: str) -> ParseResult:
    """Parse an OpenAlex work, a list of works, or a ``results`` page."""
    result = ParseResult()
    loaded, data = read_json(text, origin, result)
    if not loaded:
        return result
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        items: list[Any] = data["results"]
    else:
        items = data if isinstance(data, list) else [data]
    keys = KeyAllocator()
    for number, item in enumerate(items, start=1):
        provenance = Provenance(origin, number)
        if not isinstance(item, dict):
            result.problems.append(problem(provenance, f"record {number} is not a JSON object"))
            continue
        source, problems = source_from_work(item, provenance)
        result.problems.extend(problems)
        if source is None:
            continue
        add_with_unique_key(result, source, json.dumps(item, ensure_ascii=False, indent=1), keys)
    return result


def source_from_work(work: dict[str, Any], provenance: Provenance
                     ) -> tuple[Source | None, list[CorpusProblem]]:
    """Build a Source from one OpenAlex work object."""
    title = strip_markup(str(work.get("title") or work.get("display_name") or ""))
    if not title:
        return None, [problem(provenance, f"work {provenance.line} has no title; skipped")]
    work_id = clean(work.get("id")).rsplit("/", 1)[-1]
    ids = _dict(work.get("ids"))
    authors = tuple(name for name in (_author(a) for a in _list(work.get("authorships"))) if name)
    year = work.get("publication_year") if isinstance(work.get("publication_year"), int) else None
    biblio = _dict(work.get("biblio"))
    first, last = clean(biblio.get("first_page")), clean(biblio.get("last_page"))
    location = _dict(work.get("primary_location"))
    venue = _dict(location.get("source"))
    sections = sections_from_text(rebuild_abstract(work.get("abstract_inverted_index")))
    mesh = tuple(dict.fromkeys(
        clean(m.get("descriptor_name")) for m in _list(work.get("mesh"))
        if isinstance(m, dict) and m.get("descriptor_name")))
    pmid = normalize_pmid(clean(ids.get("pmid")).rsplit("/", 1)[-1])
    pmcid = normalize_pmcid(clean(ids.get("pmcid")).rstrip("/").rsplit("/", 1)[-1])
    source = Source(
        id=source_key(authors, year, title),
        type=TYPES.get(clean(work.get("type")), "misc"),
        title=title,
        authors=authors,
        year=year,
        container=clean(venue.get("display_name")),
        volume=clean(biblio.get("volume")),
        issue=clean(biblio.get("issue")),
        pages=normalize_pages(f"{first}-{last}" if first and last and last != first else first),
        doi=normalize_doi(clean(work.get("doi") or ids.get("doi"))),
        pmid=pmid,
        pmcid=pmcid,
        url=clean(work.get("id")),
        abstract=join_sections(sections),
        abstract_sections=sections if any(label for label, _ in sections) else (),
        keywords=mesh,
        publication_types=(clean(work.get("type")),) if work.get("type") else (),
        verification=dict(_MARKS),
        verification_notes=dict.fromkeys(_MARKS, f"OpenAlex work {work_id}"),
        provenance=(provenance,),
    )
    return only_present_marks(source), []


def _dict(value: object) -> dict[str, Any]:
    """*value* when it is a JSON object, else an empty one (as ``_list``)."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    """*value* when it is a JSON array, else nothing: a damaged work must not crash the import."""
    return value if isinstance(value, list) else []


def _author(authorship: object) -> str:
    """"Family, Given" of one ``authorships`` entry, or "" when it names nobody."""
    if not isinstance(authorship, dict):
        return ""
    author = authorship.get("author")
    name = author.get("display_name") if isinstance(author, dict) else None
    return person_from_display(str(name or authorship.get("raw_author_name") or ""))


def rebuild_abstract(index: object) -> str:
    """Rebuild an abstract from OpenAlex's ``abstract_inverted_index`` (word -> positions).

    >>> rebuild_abstract({"Ketamine": [0], "works": [1, 3], "fast": [2]})
    'Ketamine works fast works'
    """
    if not isinstance(index, dict):
        return ""
    slots: dict[int, str] = {}
    for word, positions in index.items():
        for position in positions if isinstance(positions, list) else []:
            if isinstance(position, int) and 0 <= position < 1_000_000:
                slots[position] = str(word)
    return " ".join(slots[p] for p in sorted(slots))
