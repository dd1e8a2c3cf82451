"""PubMed XML (E-utilities efetch, root ``PubmedArticleSet``): one Source per PubmedArticle.

The XML is read with defusedxml, so a document declaring entities (the "billion laughs") or
pointing at external entities is refused. Articles are handled as the parser reaches their end
tag and then dropped, so a large file is read in memory bounded by its longest article.
The fields come from PubMed's own record, so they are marked ``verified``; the DOI is the one
the publisher deposited with PubMed and is marked ``verified-secondary``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from kb.ids import normalize_doi, normalize_pmcid, normalize_pmid
from kb.ingest import ParseResult
from kb.ingest.common import (
    BIBLIOGRAPHIC_FIELDS,
    KeyAllocator,
    clean,
    join_sections,
    normalize_pages,
    only_present_marks,
    person,
    problem,
    source_key,
    verified_marks,
    year_from,
)
from kb.ingest.notices import pubmed_notice
from kb.models import CorpusProblem, Provenance, Source, merge_notices

_ARTICLE_TAGS = {"PubmedArticle", "PubmedBookArticle"}
_CHUNK = 1 << 16


class _ArticleBuilder:
    """An ElementTree target that builds one article at a time and hands it on when complete.

    Unlike TreeBuilder it detaches each finished article from the root, which is what keeps
    memory bounded on a large PubmedArticleSet.
    """

    def __init__(self, on_article: Any) -> None:
        self.stack: list[ET.Element] = []
        self.text: list[str] = []
        self.on_article = on_article
        self.line_of: dict[int, int] = {}
        self.parser: DefusedXMLParser | None = None

    def _flush(self) -> None:
        if self.text and self.stack:
            element = self.stack[-1]
            joined = "".join(self.text)
            if len(element):
                last = element[-1]
                last.tail = (last.tail or "") + joined
            else:
                element.text = (element.text or "") + joined
        self.text = []

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self._flush()
        element = ET.Element(tag, attrs)
        if self.stack:
            self.stack[-1].append(element)
        self.stack.append(element)
        if tag in _ARTICLE_TAGS and self.parser is not None:
            self.line_of[id(element)] = self.parser.parser.CurrentLineNumber

    def end(self, tag: str) -> None:
        self._flush()
        element = self.stack.pop()
        if tag in _ARTICLE_TAGS:
            self.on_article(element, self.line_of.pop(id(element), None))
            if self.stack:
                self.stack[-1].remove(element)

    def data(self, data: str) -> None:
        self.text.append(data)

    def close(self) -> None:
        return None


def parse(text: str, origin: str) -> ParseResult:
    """Parse an efetch PubmedArticleSet; *origin* names the file in problems and provenance."""
    result = ParseResult()
    keys = KeyAllocator()
    count = 0

    def on_article(element: ET.Element, line: int | None) -> None:
        nonlocal count
        count += 1
        provenance = Provenance(origin, line or count)
        source, problems = source_from_article(element, provenance)
        result.problems.extend(problems)
        if source is None:
            return
        key = keys.allocate(source.id)
        source = _with_id(source, key)
        result.sources.append(source)
        result.raw[key] = _raw_document(element)

    builder = _ArticleBuilder(on_article)
    parser = DefusedXMLParser(target=builder, forbid_dtd=False, forbid_entities=True,
                              forbid_external=True)
    builder.parser = parser
    try:
        for start in range(0, len(text), _CHUNK):
            parser.feed(text[start:start + _CHUNK])
        parser.close()
    except DefusedXmlException as error:
        result.problems.append(CorpusProblem(
            origin, None, f"refused: the XML {_defused_reason(error)}; PubMed XML never needs "
            "this, so the file was not read"))
    except ET.ParseError as error:
        line = error.position[0] if error.position else None
        result.problems.append(CorpusProblem(
            origin, line, f"malformed XML ({error}); {len(result.sources)} article(s) before "
            "this point were read, the rest of the file was not"))
    if count == 0 and not result.problems:
        result.problems.append(CorpusProblem(origin, None, "no PubmedArticle found: is this an "
                                             "efetch response (db=pubmed, retmode=xml)?"))
    return result


def source_from_article(article: ET.Element, provenance: Provenance
                        ) -> tuple[Source | None, list[CorpusProblem]]:
    """Build a Source from one PubmedArticle element (or report why it cannot be used)."""
    if article.tag == "PubmedBookArticle":
        return None, [problem(provenance, "a PubmedBookArticle (book chapter) is not supported; "
                              "skipped", "warning")]
    citation = article.find("MedlineCitation")
    art = citation.find("Article") if citation is not None else None
    if citation is None or art is None:
        return None, [problem(provenance, "PubmedArticle without MedlineCitation/Article; skipped")]
    pmid = normalize_pmid(_text(citation.find("PMID")))
    title = _text(art.find("ArticleTitle")) or _text(art.find("VernacularTitle"))
    if not title:
        return None, [problem(provenance, f"PMID {pmid or '?'} has no ArticleTitle; skipped")]
    journal = art.find("Journal")
    issue = journal.find("JournalIssue") if journal is not None else None
    year = _year(art, issue)
    authors = tuple(a for a in (_author(e) for e in art.iterfind("AuthorList/Author")) if a)
    sections = tuple(
        (clean(part.get("Label", "")), _text(part))
        for part in art.iterfind("Abstract/AbstractText") if _text(part)
    )
    ids = {e.get("IdType", ""): clean(e.text) for e in article.iterfind("PubmedData/ArticleIdList/ArticleId")}
    doi = normalize_doi(ids.get("doi", "")) or next(
        (normalize_doi(e.text) for e in art.iterfind("ELocationID") if e.get("EIdType") == "doi"), "")
    mesh = tuple(dict.fromkeys(
        clean(e.text) for e in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName") if e.text
    ))
    types = tuple(dict.fromkeys(
        clean(e.text) for e in art.iterfind("PublicationTypeList/PublicationType") if e.text
    ))
    notices = tuple(n for n in (
        pubmed_notice(e.get("RefType", ""), _text(e.find("RefSource")), _text(e.find("PMID")), str(provenance))
        for e in citation.iterfind("CommentsCorrectionsList/CommentsCorrections")) if n is not None)
    verification = verified_marks((*BIBLIOGRAPHIC_FIELDS, "pmid"))
    if doi:
        verification["doi"] = "verified-secondary"
    note = f"PubMed record {pmid}"
    source = Source(
        id=source_key(authors, year, title),
        type="article",
        title=title,
        authors=authors,
        year=year,
        container=_text(journal.find("Title")) if journal is not None else "",
        volume=_text(issue.find("Volume")) if issue is not None else "",
        issue=_text(issue.find("Issue")) if issue is not None else "",
        pages=_pages(art),
        doi=doi,
        pmid=pmid,
        pmcid=normalize_pmcid(ids.get("pmc", "")),
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else "",
        abstract=join_sections(sections),
        abstract_sections=sections if any(label for label, _ in sections) else (),
        keywords=mesh,
        publication_types=types,
        notices=merge_notices(notices),  # a link listed twice counts once
        verification=verification,
        verification_notes=dict.fromkeys(verification, note),
        provenance=(provenance,),
    )
    return only_present_marks(source), []


def _text(element: ET.Element | None) -> str:
    """All text inside *element*, inline markup (<i>, <sup>) included, whitespace collapsed."""
    return clean("".join(element.itertext())) if element is not None else ""


def _author(element: ET.Element) -> str:
    collective = _text(element.find("CollectiveName"))
    if collective:
        return collective
    given = _text(element.find("ForeName")) or _text(element.find("Initials"))
    return person(_text(element.find("LastName")), given)


def _year(art: ET.Element, issue: ET.Element | None) -> int | None:
    if issue is not None:
        year = year_from(_text(issue.find("PubDate/Year"))) or \
            year_from(_text(issue.find("PubDate/MedlineDate")))
        if year:
            return year
    return year_from(_text(art.find("ArticleDate/Year")))


def _pages(art: ET.Element) -> str:
    start, end = _text(art.find("Pagination/StartPage")), _text(art.find("Pagination/EndPage"))
    if start:
        return normalize_pages(f"{start}-{end}" if end and end != start else start)
    return normalize_pages(_text(art.find("Pagination/MedlinePgn")))


def _raw_document(element: ET.Element) -> str:
    """The article re-serialised inside a PubmedArticleSet, so the raw file re-imports as is."""
    body = ET.tostring(element, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n<PubmedArticleSet>\n{body}\n</PubmedArticleSet>\n'


def _with_id(source: Source, key: str) -> Source:
    return source if source.id == key else replace(source, id=key)


def _defused_reason(error: DefusedXmlException) -> str:
    name = type(error).__name__
    if name == "EntitiesForbidden" and getattr(error, "sysid", None):
        return f"declares an external entity ({error.sysid})"  # type: ignore[attr-defined]
    if name == "EntitiesForbidden":
        return "declares entities (a possible entity-expansion attack)"
    if name == "ExternalReferenceForbidden":
        return "refers to an external entity"
    return f"uses a forbidden construct ({name})"
