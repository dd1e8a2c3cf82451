"""Property-based tests of the format parsers: no input makes them crash.

Whatever text a user imports, a parser gives a ParseResult (sources, and problems that name the
file and a line or record number) or raises a KBError with a message; no other exception may
escape. Inputs are arbitrary text and near-valid records built field by field with hostile
values: any Unicode, braces and backslashes, entities, numbers too big for ``int()``, empty
fields, wrong JSON types, and documents cut off at a random point. Every source a parser
returns must also survive the trip through an imported record file (what ``kb import`` writes
and ``kb build`` reads back).
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.corpus import records
from kb.errors import KBError
from kb.ids import is_source_id
from kb.ingest import (
    ParseResult,
    bibtex,
    crossref,
    csl_json,
    medline,
    openalex,
    pubmed_xml,
    ris,
    scifact,
)
from kb.ingest.detect import FORMATS, detect_format
from kb.models import CorpusProblem, Provenance, Source

ORIGIN = "fuzz/input.txt"
HUGE = "__HUGE_NUMBER__"  # replaced by a 5,000-digit number after json.dumps
HUGE_DIGITS = "9" * 5000  # longer than int() converts from text by default (4,300 digits)

# Sized so the file runs in well under a minute; KB_FUZZ_EXAMPLES=5000 fuzzes for longer. No
# example database: a failure prints the input that caused it.
_EXAMPLES = int(os.environ.get("KB_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_EXAMPLES or 150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
QUICK = settings(max_examples=_EXAMPLES or 80, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(parse: Callable[[str, str], ParseResult], text: str) -> ParseResult | None:
    """Run *parse* on *text* and check the contract every parser keeps."""
    try:
        result = parse(text, ORIGIN)
    except KBError as error:
        assert str(error).strip(), "a KBError must say what is wrong"
        return None
    assert isinstance(result, ParseResult)
    for problem in result.problems:
        assert isinstance(problem, CorpusProblem)
        assert problem.file == ORIGIN and problem.message.strip()
        assert problem.line is None or (isinstance(problem.line, int) and problem.line >= 1)
        assert problem.severity in {"error", "warning"}
    ids = [source.id for source in result.sources]
    assert len(ids) == len(set(ids)), "keys are unique within one file"
    for source in result.sources:
        assert isinstance(source, Source)
        assert is_source_id(source.id), source.id
        assert source.title.strip()
        assert source.year is None or isinstance(source.year, int)
        assert source.provenance and source.provenance[0].file == ORIGIN
        line = source.provenance[0].line
        assert line is None or line >= 1
        assert isinstance(result.raw.get(source.id, ""), str)
        # what `kb import` writes, `kb build` must read back
        stored = json.dumps(records.StoredRecord(source=source, format="fuzz").to_dict(),
                            ensure_ascii=False)
        back = records.record_from_dict(json.loads(stored), Provenance("records/x.json", 1))
        assert back.source.id == source.id and back.source.title == source.title
    return result


# --- shared value strategies -----------------------------------------------------------------

NASTY = st.sampled_from([
    "", " ", "{", "}", "{{}", "}{", "\\", "\\'{e}", '\\"o', "{\\ss}", "$x^2$", "%", "#", "@", ",",
    "=", '"', "&amp;", "&#0;", "&#x110000;", "&#99999999999;", "&bogus;", "<i>x</i>", "<jats:p>",
    "\x00", "\x0b", "\u202e", "\u2028", "\ufeff", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "２０２０", "١٩٩٩", "²", "½",
    "9" * 40, "-1", "0", "NaN", "1e309", "\r\n", "\r", "\t", "10.1000/x", "10.", "doi:10.1/ä",
    "PMC", "PMC12a", "PMID- 1", "ER  - ", "TY  - JOUR", "@article{", "2020 Feb-Mar", "1999-2020",
    "e123", "351--4", "A" * 300,
])
VALUE = st.one_of(NASTY, st.text(max_size=40), st.integers().map(str),
                  st.lists(NASTY, min_size=1, max_size=4).map("".join))
LINE = VALUE.map(lambda v: v.replace("\n", " ").replace("\r", " "))
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from([HUGE]),
                        st.floats(allow_nan=False, allow_infinity=False), VALUE)
JSON_ANY = st.recursive(JSON_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


@st.composite
def cut(draw: st.DrawFn, text: str) -> str:
    """*text*, or (one time in three) *text* cut off at a random point."""
    if text and draw(st.integers(0, 2)) == 0:
        return text[:draw(st.integers(0, len(text)))]
    return text


def dumps(data: object) -> str:
    """JSON text, with HUGE placeholders turned into numbers too long for int()."""
    return json.dumps(data, ensure_ascii=False).replace(f'"{HUGE}"', HUGE_DIGITS)


# --- arbitrary text ------------------------------------------------------------------------

PARSERS = {"bibtex": bibtex.parse, "ris": ris.parse, "pubmed-xml": pubmed_xml.parse,
           "medline": medline.parse, "csl-json": csl_json.parse, "crossref": crossref.parse,
           "openalex": openalex.parse, "scifact": scifact.parse}
PREFIXES = ["", "PMID- 1\n", "TY  - JOUR\n", "@article{k,\n", "<PubmedArticleSet>", "{", "[",
            '{"doc_id": 1, ', "\ufeff"]


@FUZZ
@given(st.sampled_from(sorted(PARSERS)), st.sampled_from(PREFIXES), st.text(max_size=400))
def test_any_text_gives_a_result_or_a_clear_error(name: str, prefix: str, text: str) -> None:
    check(PARSERS[name], prefix + text)


@FUZZ
@given(st.sampled_from(PREFIXES), st.text(max_size=300))
def test_import_dispatch_on_any_text(prefix: str, text: str) -> None:
    """What ``kb import`` does with a file: tell the format, then parse it."""
    try:
        kind = detect_format(prefix + text, "upload.bin")
    except KBError as error:
        assert str(error).strip()
        return
    check(FORMATS[kind], prefix + text)


# --- BibTeX --------------------------------------------------------------------------------

BIB_FIELDS = ["title", "author", "editor", "year", "date", "journal", "booktitle", "volume",
              "number", "pages", "doi", "pmid", "pmcid", "url", "abstract", "keywords",
              "verification", "month", "publisher", "x-unknown"]


@st.composite
def bibtex_documents(draw: st.DrawFn) -> str:
    entries = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["article", "ARTICLE", "book", "inproceedings", "misc",
                                     "string", "comment", "preamble", "x"]))
        key = draw(st.one_of(st.from_regex(r"[A-Za-z][A-Za-z0-9_:.+-]{0,15}", fullmatch=True),
                             st.text(max_size=12), st.just("")))
        fields = []
        for name, value in draw(st.lists(st.tuples(st.sampled_from(BIB_FIELDS), VALUE),
                                         max_size=8)):
            style = draw(st.integers(0, 3))
            if style == 0:
                fields.append(f"  {name} = {{{value}}}")
            elif style == 1:
                fields.append(f'  {name} = "{value}"')
            elif style == 2:
                fields.append(f"  {name} = {value}")
            else:
                fields.append(f"  {name} = {{{{{value}}}}} # {{{value}}}")
        entries.append(f"@{kind}{{{key},\n" + ",\n".join(fields) + "\n}")
    return draw(cut("\n\n".join(entries)))


@FUZZ
@given(bibtex_documents())
def test_bibtex_near_valid_entries(text: str) -> None:
    check(bibtex.parse, text)


# --- RIS and MEDLINE -------------------------------------------------------------------------

RIS_TAGS = ["TY", "TI", "T1", "CT", "ST", "BT", "AU", "A1", "A2", "PY", "Y1", "DA", "JO", "JF",
            "T2", "VL", "IS", "SP", "EP", "DO", "AN", "AB", "N2", "N1", "KW", "UR", "SN", "PB",
            "ER", "XX", "Z9"]


@st.composite
def ris_documents(draw: st.DrawFn) -> str:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            kind = draw(st.one_of(st.sampled_from(["JOUR", "BOOK", "CHAP", "CONF", "x", ""]), LINE))
            out.append(f"TY  - {kind}")
        for tag, value in draw(st.lists(st.tuples(st.sampled_from(RIS_TAGS), LINE), max_size=10)):
            out.append(f"{tag}  - {value}" if draw(st.integers(0, 4)) else value)
        if draw(st.booleans()):
            out.append("ER  - ")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return draw(cut(newline.join(out)))


@FUZZ
@given(ris_documents())
def test_ris_near_valid_records(text: str) -> None:
    check(ris.parse, text)


MEDLINE_TAGS = ["PMID", "TI", "AB", "AU", "FAU", "DP", "JT", "TA", "VI", "IP", "PG", "LID", "AID",
                "PT", "MH", "OT", "PMC", "IS", "CN", "XYZ", "Q"]


@st.composite
def medline_documents(draw: st.DrawFn) -> str:
    records_out = []
    for _ in range(draw(st.integers(0, 4))):
        lines = []
        if draw(st.booleans()):
            lines.append(f"PMID- {draw(st.one_of(st.integers(-5, 10**12).map(str), LINE))}")
        for tag, value in draw(st.lists(st.tuples(st.sampled_from(MEDLINE_TAGS), LINE),
                                        max_size=10)):
            shape = draw(st.integers(0, 5))
            if shape == 0:
                lines.append(f"      {value}")  # a continuation line
            elif shape == 1:
                lines.append(value)  # a line with no tag
            else:
                lines.append(f"{tag:<4}- {value}")
        records_out.append("\n".join(lines))
    return draw(cut("\n\n".join(records_out)))


@FUZZ
@given(medline_documents())
def test_medline_near_valid_records(text: str) -> None:
    check(medline.parse, text)


# --- PubMed XML ------------------------------------------------------------------------------


@st.composite
def xml_text(draw: st.DrawFn) -> str:
    """Element text: usually escaped; sometimes raw, which may break the document."""
    value = draw(VALUE)
    return value if draw(st.integers(0, 9)) == 0 else escape(value)


@st.composite
def pubmed_documents(draw: st.DrawFn) -> str:
    def maybe(element: str) -> str:
        return element if draw(st.integers(0, 3)) else ""

    articles = []
    for _ in range(draw(st.integers(0, 3))):
        authors = "".join(
            f"<Author>{maybe(f'<LastName>{draw(xml_text())}</LastName>')}"
            f"{maybe(f'<ForeName>{draw(xml_text())}</ForeName>')}"
            f"{maybe(f'<CollectiveName>{draw(xml_text())}</CollectiveName>')}</Author>"
            for _ in range(draw(st.integers(0, 3))))
        abstract = "".join(
            f"<AbstractText Label={quoteattr(draw(VALUE))}>{draw(xml_text())}</AbstractText>"
            for _ in range(draw(st.integers(0, 3))))
        doi = f'<ELocationID EIdType="doi">{draw(xml_text())}</ELocationID>'
        article = (
            f"<Journal><JournalIssue>{maybe(f'<Volume>{draw(xml_text())}</Volume>')}"
            f"<PubDate>{maybe(f'<Year>{draw(xml_text())}</Year>')}"
            f"{maybe(f'<MedlineDate>{draw(xml_text())}</MedlineDate>')}</PubDate></JournalIssue>"
            f"{maybe(f'<Title>{draw(xml_text())}</Title>')}</Journal>"
            f"{maybe(f'<ArticleTitle>{draw(xml_text())}<i>{draw(xml_text())}</i></ArticleTitle>')}"
            f"{maybe(f'<Pagination><StartPage>{draw(xml_text())}</StartPage><EndPage>{draw(xml_text())}</EndPage><MedlinePgn>{draw(xml_text())}</MedlinePgn></Pagination>')}"
            f"{maybe(doi)}"
            f"<Abstract>{abstract}</Abstract><AuthorList>{authors}</AuthorList>"
            f"{maybe(f'<PublicationTypeList><PublicationType>{draw(xml_text())}</PublicationType></PublicationTypeList>')}")
        citation = (f"<MedlineCitation>{maybe(f'<PMID>{draw(xml_text())}</PMID>')}"
                    f"{maybe(f'<Article>{article}</Article>')}"
                    f"{maybe(f'<MeshHeadingList><MeshHeading><DescriptorName>{draw(xml_text())}</DescriptorName></MeshHeading></MeshHeadingList>')}"
                    "</MedlineCitation>")
        ids = "".join(f"<ArticleId IdType={quoteattr(kind)}>{draw(xml_text())}</ArticleId>"
                      for kind in draw(st.lists(st.sampled_from(["doi", "pmc", "pubmed", ""]),
                                                max_size=3)))
        tag = draw(st.sampled_from(["PubmedArticle"] * 5 + ["PubmedBookArticle"]))
        articles.append(f"<{tag}>{maybe(citation)}<PubmedData><ArticleIdList>{ids}"
                        f"</ArticleIdList></PubmedData></{tag}>")
    head = draw(st.sampled_from([
        '<?xml version="1.0"?>\n', "", ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE '
                                        'PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st '
                                        'January 2019//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/'
                                        'out/pubmed_190101.dtd">\n'),
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "boom">]>\n']))
    return draw(cut(f"{head}<PubmedArticleSet>{''.join(articles)}</PubmedArticleSet>\n"))


@FUZZ
@given(pubmed_documents())
def test_pubmed_xml_near_valid_articles(text: str) -> None:
    check(pubmed_xml.parse, text)


# --- JSON formats ----------------------------------------------------------------------------

NAME = st.dictionaries(st.sampled_from(["family", "given", "literal", "non-dropping-particle"]),
                       st.one_of(VALUE, JSON_ANY), max_size=4)
DATE = st.one_of(
    st.fixed_dictionaries({}, optional={
        "date-parts": st.one_of(JSON_ANY, st.lists(st.lists(st.one_of(
            st.integers(), VALUE, st.just(HUGE), st.none()), max_size=3), max_size=2)),
        "raw": st.one_of(VALUE, JSON_ANY), "literal": VALUE}),
    JSON_ANY)
CSL_FIELDS = {
    "title": st.one_of(VALUE, st.lists(VALUE, max_size=2), JSON_ANY),
    "subtitle": st.one_of(VALUE, st.lists(VALUE, max_size=2), JSON_ANY),
    "author": st.one_of(st.lists(st.one_of(NAME, JSON_ANY), max_size=3), JSON_ANY),
    "issued": DATE, "published-print": DATE, "published-online": DATE, "created": DATE,
    "year": st.one_of(VALUE, JSON_ANY),
    "DOI": st.one_of(VALUE, JSON_ANY), "page": st.one_of(VALUE, JSON_ANY),
    "volume": st.one_of(VALUE, JSON_ANY), "issue": st.one_of(VALUE, JSON_ANY),
    "abstract": st.one_of(VALUE, VALUE.map(lambda v: f"<jats:sec><jats:title>{v}</jats:title>"
                                                   f"<jats:p>{v}</jats:p></jats:sec>"), JSON_ANY),
    "type": st.one_of(st.sampled_from(["article-journal", "book", "chapter", "x"]), JSON_ANY),
    "container-title": st.one_of(VALUE, st.lists(VALUE, max_size=2), JSON_ANY),
    "keyword": st.one_of(VALUE, st.lists(VALUE, max_size=3), JSON_ANY),
    "PMID": st.one_of(VALUE, JSON_ANY), "PMCID": st.one_of(VALUE, JSON_ANY),
    "URL": st.one_of(VALUE, JSON_ANY), "id": JSON_ANY,
}
CSL_ITEM = st.fixed_dictionaries({}, optional=CSL_FIELDS)


@st.composite
def json_document(draw: st.DrawFn, item: st.SearchStrategy[object],
                  wrap: Callable[[list[object]], object]) -> str:
    items = draw(st.lists(st.one_of(item, item, item, JSON_ANY), max_size=3))
    return draw(cut(dumps(wrap(items))))


@FUZZ
@given(json_document(CSL_ITEM, lambda items: items if len(items) != 1 else items[0]))
def test_csl_json_near_valid_items(text: str) -> None:
    check(csl_json.parse, text)


@QUICK
@given(json_document(CSL_ITEM, lambda items: {"status": "ok", "message-type": "work",
                                              "message": items[0] if items else {"items": items}}))
def test_crossref_near_valid_works(text: str) -> None:
    check(crossref.parse, text)


INVERTED = st.one_of(
    st.dictionaries(VALUE, st.one_of(st.lists(st.one_of(
        st.integers(-3, 30), st.integers(), st.just(HUGE), VALUE, st.none()), max_size=3),
        JSON_ANY), max_size=6),
    JSON_ANY)
AUTHORSHIP = st.one_of(st.fixed_dictionaries({}, optional={
    "author": st.one_of(st.fixed_dictionaries({}, optional={"display_name": st.one_of(
        VALUE, JSON_ANY)}), JSON_ANY), "raw_author_name": st.one_of(VALUE, JSON_ANY)}), JSON_ANY)
OPENALEX_FIELDS = {
    "id": st.one_of(VALUE.map(lambda v: f"https://openalex.org/{v}"), JSON_ANY),
    "doi": st.one_of(VALUE, JSON_ANY),
    "title": st.one_of(VALUE, JSON_ANY), "display_name": st.one_of(VALUE, JSON_ANY),
    "publication_year": st.one_of(st.integers(), st.just(HUGE), JSON_ANY),
    "authorships": st.one_of(st.lists(AUTHORSHIP, max_size=3), JSON_ANY),
    "biblio": st.one_of(st.fixed_dictionaries({}, optional={
        k: st.one_of(VALUE, JSON_ANY) for k in ("volume", "issue", "first_page", "last_page")}),
        JSON_ANY),
    "primary_location": st.one_of(st.fixed_dictionaries({}, optional={"source": st.one_of(
        st.fixed_dictionaries({}, optional={"display_name": st.one_of(VALUE, JSON_ANY)}),
        JSON_ANY)}), JSON_ANY),
    "abstract_inverted_index": INVERTED,
    "mesh": st.one_of(st.lists(st.one_of(st.fixed_dictionaries({}, optional={
        "descriptor_name": st.one_of(VALUE, JSON_ANY)}), JSON_ANY), max_size=3), JSON_ANY),
    "ids": st.one_of(st.fixed_dictionaries({}, optional={
        k: st.one_of(VALUE, JSON_ANY) for k in ("doi", "pmid", "pmcid")}), JSON_ANY),
    "type": st.one_of(st.sampled_from(["article", "review", "book-chapter"]), JSON_ANY),
}
OPENALEX_WORK = st.fixed_dictionaries({}, optional=OPENALEX_FIELDS)


@FUZZ
@given(json_document(OPENALEX_WORK, lambda items: {"meta": {}, "results": items}
                     if len(items) != 1 else items[0]))
def test_openalex_near_valid_works(text: str) -> None:
    check(openalex.parse, text)


SCIFACT_LINE = st.fixed_dictionaries({}, optional={
    "doc_id": st.one_of(st.integers(), st.just(HUGE), st.integers(-10, 10**6).map(str),
                        st.sampled_from(["١٢٣", "²", "½", " 7 ", "0x1F", "", "1e3"]), JSON_ANY),
    "title": st.one_of(VALUE, JSON_ANY),
    "abstract": st.one_of(st.lists(VALUE, max_size=4), VALUE, JSON_ANY),
    "structured": st.one_of(st.booleans(), JSON_ANY),
})


@st.composite
def scifact_documents(draw: st.DrawFn) -> str:
    lines = [dumps(draw(st.one_of(SCIFACT_LINE, SCIFACT_LINE, JSON_ANY)))
             if draw(st.integers(0, 5)) else draw(LINE)
             for _ in range(draw(st.integers(0, 5)))]
    return draw(cut("\n".join(lines)))


@FUZZ
@given(scifact_documents())
def test_scifact_near_valid_lines(text: str) -> None:
    check(scifact.parse, text)


# --- the article checker's text input ---------------------------------------------------------

try:
    article_segment: Any = importlib.import_module("kb.check.segment")
except ImportError:  # the article checker is not part of every checkout
    article_segment = None

MARKDOWNISH = st.lists(st.one_of(
    st.text(max_size=80), VALUE,
    st.sampled_from(["# Heading", "Title\n=====", "Sub\n---", "- item", "* item", "1. item",
                     "[1] ref", "[^a]: note", "```", "~~~", "---", "| a | b |", "|---|---|",
                     "    indented", "<p>para</p>", "<h2>T</h2>", "<sup>1,2</sup>", "<script>x",
                     "Dr. Lee et al. found 1.5 vs. 2.0 e.g. here.", "\r\n", "\n\n"])),
    max_size=12).map("\n".join)


@pytest.mark.skipif(article_segment is None,
                    reason="kb.check.segment (the article checker) is not in this tree")
@QUICK
@given(MARKDOWNISH, st.sampled_from([None, "text", "markdown", "html"]))
def test_article_segmentation_on_any_text(text: str, content_type: str | None) -> None:
    try:
        analysed, _kind = article_segment.prepare(text, content_type)
    except KBError as error:
        assert str(error).strip()
        return
    for unit in article_segment.segment(analysed):
        assert 0 <= unit.start <= unit.end <= len(analysed)
        assert analysed[unit.start:unit.end] == unit.text
        assert unit.kind in {"sentence", "heading", "item"}


# --- inputs the fuzzing found or that it cannot reach ---------------------------------------

DEEP = 50_000
HOSTILE = {
    # json.loads raises ValueError (not JSONDecodeError) on a number over 4,300 digits
    "csl-json: huge number": (csl_json.parse, '[{"title": "T", "volume": ' + HUGE_DIGITS + "}]"),
    "crossref: huge number": (crossref.parse, '{"message": {"title": ["T"], "x": ' + HUGE_DIGITS + "}}"),
    "openalex: huge number": (openalex.parse, '{"title": "T", "publication_year": ' + HUGE_DIGITS + "}"),
    "scifact: huge number": (scifact.parse, '{"doc_id": ' + HUGE_DIGITS + ', "title": "T"}\n'),
    # ... and RecursionError on arrays nested thousands deep
    "csl-json: deep nesting": (csl_json.parse, "[" * DEEP + "]" * DEEP),
    "openalex: deep nesting": (openalex.parse, '{"title": ' + "[" * DEEP + "]" * DEEP + "}"),
    "scifact: deep nesting": (scifact.parse, "[" * DEEP + "]" * DEEP + "\n"),
    # str.isdigit() accepts "²", which int() refuses
    "scifact: superscript doc_id": (scifact.parse, '{"doc_id": "²", "title": "T"}\n'),
    # wrong JSON types where the parser expected a list or an object
    "openalex: authorships is a number": (openalex.parse, ('{"title": "T", "authorships": 3, '
                                                         '"mesh": 1}')),
    "openalex: author is a string": (openalex.parse, ('{"title": "T", "authorships": '
                                                     '[{"author": "Jo Bloggs"}]}')),
    "csl-json: date-parts is not a list of lists": (
        csl_json.parse, ('[{"title": "T", "issued": {"date-parts": {"0": 1}}}, '
                        '{"title": "U", "issued": {"date-parts": [2020]}}, '
                        '{"title": "V", "author": 5}]')),
    # a title of markup alone became an empty title, which the record loader refuses
    "crossref: a title of markup alone": (crossref.parse, ('{"message-type": "work", "message": '
                                                          '{"title": ["<jats:p>"]}}')),
    # a title opening with a 300-letter word made a key longer than a source id may be
    "ris: very long first title word": (ris.parse, "TY  - JOUR\nTI  - " + "a" * 300 + "\nER  - \n"),
    # LaTeX groups nested thousands deep overflowed the decoder's recursion
    "bibtex: deeply nested braces": (bibtex.parse, "@article{k, title = " + "{" * 5000 + "x"
                                     + "}" * 5000 + ", year = {2020}}"),
    # quadratic time before: each unclosed tag, and each continuation line, rescanned the rest
    "csl-json: unclosed tags in an abstract": (csl_json.parse, json.dumps(
        [{"title": "<i " * 100_000, "abstract": "<jats:sec>" * 50_000 + "<jats:title>" * 50_000}])),
    "medline: a value over 400,000 lines": (medline.parse, "PMID- 1\nTI  - T\nAB  - a\n"
                                            + "      more text\n" * 400_000),
    "ris: a value over 400,000 lines": (ris.parse, "TY  - JOUR\nTI  - T\nAB  - a\n"
                                        + "more text\n" * 400_000 + "ER  - \n"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_inputs_are_read_quickly_or_reported(name: str) -> None:
    parse, text = HOSTILE[name]
    started = time.monotonic()
    result = check(parse, text)
    assert time.monotonic() - started < 10  # each took from 30 s to minutes when quadratic
    assert result is None or result.sources or result.problems


def test_huge_numbers_do_not_break_format_detection() -> None:
    with pytest.raises(KBError, match="cannot tell"):
        detect_format("[" + HUGE_DIGITS + "]", "upload.json")
