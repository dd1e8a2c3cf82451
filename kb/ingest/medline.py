"""PubMed's MEDLINE tagged format (``.nbib``, "Send to: Citation manager"): one Source per record.

Each line is ``TAG - value`` (the tag padded to four characters); a value goes on over lines
indented by six spaces, and a blank line ends a record. The file is read line by line, one
record at a time. The records are PubMed's own, so their fields are marked ``verified`` (the
DOI, deposited by the publisher, ``verified-secondary``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kb.ids import normalize_doi, normalize_pmcid, normalize_pmid
from kb.ingest import ParseResult
from kb.ingest.common import (
    BIBLIOGRAPHIC_FIELDS,
    clean,
    iter_lines,
    join_sections,
    normalize_pages,
    only_present_marks,
    parse_tagged_records,
    person,
    problem,
    sections_from_text,
    source_key,
    verified_marks,
    year_from,
)
from kb.ingest.notices import MEDLINE_TAGS, medline_notice
from kb.models import CorpusProblem, Provenance, Source, merge_notices

_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9]{0,3})\s*- ?(.*)$")
Record = dict[str, list[str]]


def records(text: str) -> Iterator[tuple[int, Record, str]]:
    """Yield (first line number, tag -> values, raw text) for each record, lazily."""
    fields: Record = {}
    raw: list[str] = []
    start = 0
    last_tag = ""
    more: list[str] = []  # continuation lines of the last value, joined once: see _continue

    for number, line in enumerate(iter_lines(text.lstrip("\ufeff")), start=1):
        stripped = line.rstrip("\r\n")
        if not stripped.strip():
            _continue(fields, last_tag, more, " ")
            if fields:
                yield start, fields, "".join(raw)
            fields, raw, last_tag = {}, [], ""
            continue
        raw.append(stripped + "\n")
        match = _TAG_LINE.match(stripped)
        if match and not stripped.startswith("      "):
            _continue(fields, last_tag, more, " ")
            last_tag = match.group(1)
            if not fields:
                start = number
            fields.setdefault(last_tag, []).append(match.group(2).strip())
        elif last_tag:
            more.append(stripped.strip())
        else:
            if not fields:
                start = number
            fields.setdefault("?", []).append(stripped.strip())
    _continue(fields, last_tag, more, " ")
    if fields:
        yield start, fields, "".join(raw)


def _continue(fields: Record, tag: str, more: list[str], separator: str) -> None:
    """Append the continuation lines in *more* to *tag*'s last value, and empty *more*.

    Joining once per value, not once per line, keeps a value that goes on over many thousand
    lines linear in time rather than quadratic.
    """
    if more and tag:
        values = fields[tag]
        values[-1] = separator.join([values[-1], *more]).strip()
    more.clear()


def parse(text: str, origin: str) -> ParseResult:
    """Parse MEDLINE-format text; *origin* names the file in problems and provenance."""
    return parse_tagged_records(records(text), origin, source_from_record,
                                "no MEDLINE record found (expected lines such as 'PMID- 12345678')")


def source_from_record(fields: Record, provenance: Provenance
                       ) -> tuple[Source | None, list[CorpusProblem]]:
    """Build a Source from one record's tags, or report why it cannot be used."""
    def first(tag: str) -> str:
        return clean(fields.get(tag, [""])[0])

    if "?" in fields:
        return None, [problem(provenance, f"not a MEDLINE record: line {fields['?'][0][:40]!r} "
                              "has no 'TAG - ' prefix; skipped")]
    pmid = normalize_pmid(first("PMID"))
    title = first("TI") or first("BTI")
    if not title:
        return None, [problem(provenance, f"record PMID {pmid or '?'} has no TI (title); skipped")]
    authors = tuple(_author(full) for full in fields.get("FAU", [])) or tuple(
        _short_author(short) for short in fields.get("AU", []))
    authors += tuple(clean(name) for name in fields.get("CN", []))
    year = year_from(first("DP"))
    doi = ""
    for value in (*fields.get("LID", []), *fields.get("AID", [])):
        if value.endswith("[doi]"):
            doi = normalize_doi(value[: -len("[doi]")])
            if doi:
                break
    sections = sections_from_text(first("AB"))
    mesh = tuple(dict.fromkeys(_heading(value) for value in fields.get("MH", [])))
    types = tuple(dict.fromkeys(clean(value) for value in fields.get("PT", [])))
    notices = tuple(n for tag in MEDLINE_TAGS for value in fields.get(tag, [])
                    if (n := medline_notice(tag, value, str(provenance))) is not None)
    verification = verified_marks((*BIBLIOGRAPHIC_FIELDS, "pmid"))
    if doi:
        verification["doi"] = "verified-secondary"
    source = Source(
        id=source_key(authors, year, title),
        type="article",
        title=title,
        authors=tuple(a for a in authors if a),
        year=year,
        container=first("JT") or first("TA"),
        volume=first("VI"),
        issue=first("IP"),
        pages=normalize_pages(first("PG")),
        doi=doi,
        pmid=pmid,
        pmcid=normalize_pmcid(first("PMC")),
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else "",
        abstract=join_sections(sections),
        abstract_sections=sections if any(label for label, _ in sections) else (),
        keywords=tuple(m for m in mesh if m),
        publication_types=types,
        notices=merge_notices(notices),
        verification=verification,
        verification_notes=dict.fromkeys(verification, f"PubMed record {pmid} (MEDLINE format)"),
        provenance=(provenance,),
    )
    return only_present_marks(source), []


def _author(full: str) -> str:
    family, _, given = full.partition(",")
    return person(family, given)


def _short_author(short: str) -> str:
    # "Griffin DK": the family name, then the initials
    family, _, initials = clean(short).rpartition(" ")
    return person(family, initials) if family else initials


def _heading(value: str) -> str:
    # "Genomics/history" or "*Genome": the descriptor without qualifiers or the major-topic star
    return clean(value.split("/")[0].lstrip("*"))
