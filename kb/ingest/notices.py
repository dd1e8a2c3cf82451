"""Retraction, correction and expression-of-concern notices, read from the records that carry them.

- PubMed XML: ``MedlineCitation/CommentsCorrectionsList/CommentsCorrections`` with ``RefType``
  ``RetractionIn`` (this work is retracted in the notice cited), ``RetractionOf`` (this record is
  the notice), ``ErratumIn``/``ErratumFor``, ``ExpressionOfConcernIn``/``ExpressionOfConcernFor``,
  ``PartialRetractionIn``/``PartialRetractionOf``; each has a ``RefSource`` citation and
  usually a ``PMID``.
- MEDLINE: the same links as tags, ``RIN``/``ROF``, ``EIN``/``EFR``, ``ECI``/``ECF``,
  ``PRIN``/``PROF``, each ``<citation>. PMID: <pmid>``.
- Crossref: ``update-to`` on a notice (the works it updates), ``updated-by`` on a work (the
  notices that update it; Crossref adds Retraction Watch's data there), each
  ``{"DOI", "type", "updated": {"date-parts"}}``.
- BibTeX: a curator's ``retraction``, ``correction`` or ``expression_of_concern`` field (see
  corpus/README.md, "Retractions and other notices").

A partial retraction is read as a correction: the work stands, in part, and still may back a
sentence; only a full retraction (or a withdrawal or removal) takes it out of the evidence.
"""

from __future__ import annotations

import re
from typing import Any

from kb.ids import normalize_doi, normalize_pmid
from kb.models import Notice, NoticeKind, NoticeRole

# PubMed CommentsCorrections RefType -> (kind, role). Other RefTypes (CommentIn, UpdateIn, ...)
# are no notices about the work's soundness and are not kept.
PUBMED_REFTYPES: dict[str, tuple[NoticeKind, NoticeRole]] = {
    "RetractionIn": ("retraction", "in"),
    "RetractionOf": ("retraction", "of"),
    "PartialRetractionIn": ("correction", "in"),
    "PartialRetractionOf": ("correction", "of"),
    "ErratumIn": ("correction", "in"),
    "ErratumFor": ("correction", "of"),
    "ExpressionOfConcernIn": ("expression_of_concern", "in"),
    "ExpressionOfConcernFor": ("expression_of_concern", "of"),
}
# MEDLINE tags of the same links (NLM's MEDLINE/PubMed field descriptions).
MEDLINE_TAGS: dict[str, tuple[NoticeKind, NoticeRole]] = {
    "RIN": ("retraction", "in"),
    "ROF": ("retraction", "of"),
    "PRIN": ("correction", "in"),
    "PROF": ("correction", "of"),
    "EIN": ("correction", "in"),
    "EFR": ("correction", "of"),
    "ECI": ("expression_of_concern", "in"),
    "ECF": ("expression_of_concern", "of"),
}
# Crossref update types -> kind; types that do not question the work (new_version, addendum,
# clarification) are not notices here.
CROSSREF_TYPES: dict[str, NoticeKind] = {
    "retraction": "retraction",
    "withdrawal": "retraction",
    "removal": "retraction",
    "correction": "correction",
    "erratum": "correction",
    "corrigendum": "correction",
    "partial_retraction": "correction",
    "expression_of_concern": "expression_of_concern",
}
# The BibTeX fields a curator writes (corpus/README.md).
BIBTEX_FIELDS: dict[str, NoticeKind] = {
    "retraction": "retraction",
    "correction": "correction",
    "erratum": "correction",
    "expression_of_concern": "expression_of_concern",
    "concern": "expression_of_concern",
}

_DOI_IN_TEXT = re.compile(r"\bdoi:\s*(10\.\S+?)\.?(?=\s|$)", re.IGNORECASE)
_PMID_IN_TEXT = re.compile(r"\bPMID:\s*(\d+)", re.IGNORECASE)
_MONTHS = {m: n for n, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                                       "oct", "nov", "dec"), start=1)}
# "Lancet. 2010 Feb 6;375(9713):445." -> the date after the journal: year, then month and day
_CITED_DATE = re.compile(r"\.\s+(\d{4})(?:\s+([A-Z][a-z]{2})[a-z]*(?:\s+(\d{1,2}))?)?\s*[;:.]")
_ISO_DATE = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2})?)?")


def cited_date(citation: str) -> str:
    """The publication date in a NLM citation, as ISO ("2010-02-06", "2010-02", "2010"), or "".

    >>> cited_date("Lancet. 2010 Feb 6;375(9713):445."), cited_date("J Test. 2020;1:1."), cited_date("x")
    ('2010-02-06', '2020', '')
    """
    found = _CITED_DATE.search(citation)
    if not found:
        return ""
    year, month, day = found.groups()
    number = _MONTHS.get((month or "").lower())
    if number is None:
        return year
    return f"{year}-{number:02d}-{int(day):02d}" if day else f"{year}-{number:02d}"


def pubmed_notice(ref_type: str, ref_source: str, pmid: str, where: str) -> Notice | None:
    """A CommentsCorrections link as a Notice, or None when its RefType is not a notice."""
    found = PUBMED_REFTYPES.get(ref_type)
    if found is None:
        return None
    return pubmed_notice_from(found, ref_source, pmid, f"{where} CommentsCorrections {ref_type}")


def medline_notice(tag: str, value: str, where: str) -> Notice | None:
    """A MEDLINE ``RIN``/``EIN``/``ECI``... value as a Notice, or None for another tag."""
    found = MEDLINE_TAGS.get(tag)
    if found is None or not value.strip():
        return None
    pmid = _PMID_IN_TEXT.search(value)
    citation = _PMID_IN_TEXT.sub("", value).strip()
    return pubmed_notice_from(found, citation, pmid.group(1) if pmid else "", f"{where} {tag}")


def pubmed_notice_from(found: tuple[NoticeKind, NoticeRole], citation: str, pmid: str,
                       provenance: str) -> Notice:
    """A notice from a NLM citation ("Lancet. 2010 Feb 6;375(9713):445. doi: 10...") and PMID."""
    kind, role = found
    doi = _DOI_IN_TEXT.search(citation)
    return Notice(kind=kind, role=role, pmid=normalize_pmid(pmid),
                  doi=normalize_doi(doi.group(1)) if doi else "", citation=citation,
                  date=cited_date(citation), provenance=provenance)


def crossref_notices(item: dict[str, Any], where: str) -> tuple[Notice, ...]:
    """The notices of a Crossref work: ``updated-by`` (about it) and ``update-to`` (it issues)."""
    found: list[Notice] = []
    for name, role in (("updated-by", "in"), ("update-to", "of")):
        updates = item.get(name)
        if not isinstance(updates, list):
            continue
        for update in updates:
            if not isinstance(update, dict):
                continue
            kind = CROSSREF_TYPES.get(str(update.get("type", "")).strip().lower().replace("-", "_"))
            doi = normalize_doi(str(update.get("DOI") or ""))
            if kind is None or not doi:
                continue
            label = str(update.get("label") or "").strip()
            found.append(Notice(kind=kind, role=role, doi=doi,  # type: ignore[arg-type]
                                citation=label if label.lower() != kind.replace("_", " ") else "",
                                date=_crossref_date(update.get("updated")),
                                provenance=f"{where} {name}"))
    return tuple(found)


def _crossref_date(value: Any) -> str:
    parts = value.get("date-parts") if isinstance(value, dict) else None
    first = parts[0] if isinstance(parts, list) and parts and isinstance(parts[0], list) else []
    numbers = [p for p in first[:3] if isinstance(p, int) and not isinstance(p, bool)]
    if not numbers:
        return ""
    return "-".join([f"{numbers[0]:04d}", *(f"{n:02d}" for n in numbers[1:])])


def bibtex_notices(fields: dict[str, str], where: str) -> tuple[tuple[Notice, ...], list[str]]:
    """The notices a curator wrote in BibTeX, and a message for each part that could not be read.

    ``retraction = {pmid: 20137807; doi: 10.1016/S0140-6736(10)60175-4; date: 2010-02-06;
    citation: Lancet. 2010;375(9713):445}``: ``;``-separated ``name: value`` parts; ``citation``
    comes last and takes the rest (citations hold ``;``). Several notices of one kind are
    separated by ``|``. A part without a name is read as the citation.
    """
    notices: list[Notice] = []
    bad: list[str] = []
    for name, kind in BIBTEX_FIELDS.items():
        value = fields.get(name, "").strip()
        if not value:
            continue
        for text in filter(None, (t.strip() for t in value.split("|"))):
            parts: dict[str, str] = {}
            rest = text
            while rest:
                head, sep, tail = rest.partition(";")
                label, colon, content = head.partition(":")
                label = label.strip().lower()
                if label == "citation" and colon:
                    parts["citation"] = rest.partition(":")[2].strip()
                    break
                if colon and label in {"pmid", "doi", "date"}:
                    parts[label] = content.strip()
                else:
                    parts["citation"] = rest.strip()
                    break
                rest = tail if sep else ""
            pmid, doi = normalize_pmid(parts.get("pmid", "")), normalize_doi(parts.get("doi", ""))
            date = parts.get("date", "")
            if parts.get("pmid") and not pmid:
                bad.append(f"{name}: pmid {parts['pmid']!r} is not a PubMed id (digits only)")
            if parts.get("doi") and not doi:
                bad.append(f"{name}: doi {parts['doi']!r} is not a DOI (expected 10.NNNN/...)")
            if date and not _ISO_DATE.fullmatch(date):
                bad.append(f"{name}: date {date!r} is not YYYY, YYYY-MM or YYYY-MM-DD; left out")
                date = ""
            notices.append(Notice(kind=kind, pmid=pmid, doi=doi, citation=parts.get("citation", ""),
                                  date=date, provenance=f"{where} {name}"))
    return tuple(notices), bad
