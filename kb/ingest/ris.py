"""RIS (Research Information Systems) tagged format: one Source per ``TY`` ... ``ER`` record.

Lines are ``XX  - value``; a line without a tag continues the previous value. An RIS file is
something a user exported from a reference manager, so nothing in it is marked verified.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kb.ids import normalize_doi, normalize_pmcid, normalize_pmid
from kb.ingest import ParseResult
from kb.ingest.common import (
    clean,
    iter_lines,
    join_sections,
    normalize_pages,
    parse_tagged_records,
    problem,
    sections_from_text,
    source_key,
    year_from,
)
from kb.models import CorpusProblem, Provenance, Source

_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")
_TYPES = {
    "JOUR": "article", "JFULL": "article", "ABST": "article", "MGZN": "article", "NEWS": "article",
    "EJOUR": "article", "INPR": "article", "JOURNAL ARTICLE": "article",
    "BOOK": "book", "EBOOK": "book", "EDBOOK": "book", "CHAP": "incollection",
    "ECHAP": "incollection", "CONF": "inproceedings", "CPAPER": "inproceedings",
    "THES": "phdthesis", "RPRT": "techreport", "GOVDOC": "techreport", "UNPB": "unpublished",
}
_TITLE_TAGS = ("TI", "T1", "CT", "ST", "BT")
_CONTAINER_TAGS = ("T2", "JO", "JF", "JA", "J2", "J1", "BT", "PB")
_AUTHOR_TAGS = ("AU", "A1")
Record = dict[str, list[str]]


def records(text: str) -> Iterator[tuple[int, Record, str]]:
    """Yield (line of TY, tag -> values, raw text) per record; a record without ER still ends."""
    fields: Record = {}
    raw: list[str] = []
    start = 0
    last = ""
    more: list[str] = []  # continuation lines of the last value, joined once: see _continue
    for number, line in enumerate(iter_lines(text.lstrip("\ufeff")), start=1):
        stripped = line.rstrip("\r\n").lstrip("\ufeff")
        match = _TAG_LINE.match(stripped)
        if match:
            tag, value = match.group(1), (match.group(2) or "").strip()
            _continue(fields, last, more)
            if tag == "TY":
                if fields:  # a record that never reached ER
                    yield start, fields, "".join(raw)
                fields, raw, start = {}, [], number
            raw.append(stripped + "\n")
            if tag == "ER":
                if fields:
                    yield start, fields, "".join(raw)
                fields, raw, last = {}, [], ""
                continue
            if not fields and tag != "TY":
                start = number
            fields.setdefault(tag, []).append(value)
            last = tag
        elif stripped.strip() and last and fields:
            raw.append(stripped + "\n")
            more.append(stripped.strip())
    _continue(fields, last, more)
    if fields:
        yield start, fields, "".join(raw)


def _continue(fields: Record, tag: str, more: list[str]) -> None:
    """Append the continuation lines in *more* to *tag*'s last value, and empty *more*.

    Joining once per value, not once per line, keeps a value that goes on over many thousand
    lines linear in time rather than quadratic.
    """
    if more and tag in fields:
        fields[tag][-1] = "\n".join([fields[tag][-1], *more])
    more.clear()


def parse(text: str, origin: str) -> ParseResult:
    """Parse RIS text; *origin* names the file in problems and provenance."""
    return parse_tagged_records(records(text), origin, source_from_record,
                                "no RIS record found (expected 'TY  - JOUR' ... 'ER  - ')")


def source_from_record(fields: Record, provenance: Provenance
                       ) -> tuple[Source | None, list[CorpusProblem]]:
    """Build a Source from one RIS record, or report why it cannot be used."""
    def first(*tags: str) -> str:
        return next((clean(v) for t in tags for v in fields.get(t, []) if clean(v)), "")

    if "TY" not in fields:
        return None, [problem(provenance, "RIS record without a TY line; skipped")]
    title = first(*_TITLE_TAGS)
    if not title:
        return None, [problem(provenance, "RIS record has no title (TI, T1, CT or ST); skipped")]
    authors = tuple(clean(a) for tag in _AUTHOR_TAGS for a in fields.get(tag, []) if clean(a))
    year = year_from(first("PY", "Y1", "DA", "Y2"))
    start, end = first("SP"), first("EP")
    pages = normalize_pages(f"{start}-{end}" if start and end and end != start else start)
    raw_doi = first("DO")
    doi = normalize_doi(raw_doi)
    problems = []
    if raw_doi and not doi:
        problems.append(problem(provenance, f"DO {raw_doi!r} is not a DOI; left empty", "warning"))
    # An abstract's lines may hold the original-language text and then a translation, as in
    # exports of non-English journals; each line becomes its own paragraph.
    abstract_raw = next((v for t in ("AB", "N2") for v in fields.get(t, []) if v.strip()), "")
    sections = tuple(s for line in abstract_raw.split("\n") for s in sections_from_text(line))
    title_tag = next(t for t in _TITLE_TAGS if first(t))
    type_code = clean(first("TY")).upper()
    pmid = normalize_pmid(first("AN")) if first("DB", "DP").lower().startswith("pubmed") else ""
    source = Source(
        id=source_key(authors, year, title),
        type=_TYPES.get(type_code, "misc"),
        title=title,
        authors=authors,
        year=year,
        container=first(*(t for t in _CONTAINER_TAGS if t != title_tag)),
        volume=first("VL", "VO"),
        issue=first("IS", "CP"),
        pages=pages,
        doi=doi,
        pmid=pmid,
        pmcid=normalize_pmcid(first("C2")),
        url=first("UR", "L2"),
        abstract=join_sections(sections),
        abstract_sections=sections if any(label for label, _ in sections) else (),
        keywords=tuple(dict.fromkeys(clean(k) for k in fields.get("KW", []) if clean(k))),
        provenance=(provenance,),
    )
    return source, problems
