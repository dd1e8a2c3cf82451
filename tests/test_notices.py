"""Retraction, correction and expression-of-concern notices: read, kept, shown and obeyed.

Records: tests/data/notices/ (README there says which are trimmed real records and which are
synthetic). Two small builds of the mini corpus serve the end-to-end tests: one with the notice
fixtures imported as they are, one with the synthetic retraction left out (the control).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kb.build import build
from kb.check.report import to_html
from kb.check.verified import decide_verified, is_retracted, judge, verified_citation_check
from kb.config import Settings
from kb.corpus.importer import import_files
from kb.corpus.records import StoredRecord, record_from_dict
from kb.errors import BadQuery
from kb.ingest import bibtex, crossref, medline, pubmed_xml
from kb.knowledge_base import KnowledgeBase
from kb.matching import ClaimMatch
from kb.models import Notice, Source
from kb.responses import search_request
from kb.store import Store
from kb.verify import Thresholds, Verifier
from kb.web import create_app

DATA = Path(__file__).parent / "data" / "notices"
MINI_CORPUS = Path(__file__).parent / "data" / "corpus"
WAKEFIELD_XML = DATA / "pubmed_9500320_wakefield1998.xml"
NOTICE_XML = DATA / "pubmed_20137807_retraction_notice.xml"
WAKEFIELD_NBIB = DATA / "medline_9500320_wakefield1998.nbib"
CROSSREF = DATA / "crossref_synthetic_retraction.json"
WAKEFIELD = "wakefield1998ileallymphoidnodular"
SUNLIGHT = "example2019synthetic"  # the synthetic retracted work (Crossref updated-by)
FINDING = "Twenty minutes of daily sunlight exposure reversed chronic tinnitus in older adults"
ARTICLE = (f"{FINDING} [1].\n\nReferences\n\n1. Example A. Synthetic study of daily sunlight and chronic "
           "tinnitus, later retracted. Journal of Synthetic Fixtures. 2019. doi:10.5555/notices.work.2019\n")


def _parse(module: Any, path: Path) -> list[Source]:
    result = module.parse(path.read_text(encoding="utf-8"), path.name)
    assert result.problems == []
    return list(result.sources)


# --- parsers ---------------------------------------------------------------------------------


def test_pubmed_xml_reads_the_retraction_and_concern_of_a_retracted_paper() -> None:
    (source,) = _parse(pubmed_xml, WAKEFIELD_XML)
    assert source.pmid == "9500320" and source.retracted
    kinds = [(n.kind, n.role, n.pmid) for n in source.notices]
    # CommentIn (a letter about it) is no notice; the retraction and the concern are
    assert kinds == [("retraction", "in", "20137807"), ("expression_of_concern", "in", "21971344")]
    retraction = source.notices[0]
    assert retraction.doi == "10.1016/s0140-6736(10)60175-4"
    assert retraction.citation.startswith("Lancet. 2010 Feb 6;375(9713):445.")
    assert retraction.date == "2010-02-06"
    assert retraction.provenance == f"{WAKEFIELD_XML.name}:4 CommentsCorrections RetractionIn"


def test_the_retraction_notice_itself_is_not_retracted() -> None:
    (notice,) = _parse(pubmed_xml, NOTICE_XML)
    assert notice.publication_types == ("Retraction of Publication",)
    assert not notice.retracted and not is_retracted(notice)
    assert [(n.kind, n.role, n.pmid) for n in notice.notices] == [("retraction", "of", "9500320")]


def test_medline_reads_the_same_notices_as_the_xml() -> None:
    (xml,) = _parse(pubmed_xml, WAKEFIELD_XML)
    (nbib,) = _parse(medline, WAKEFIELD_NBIB)
    def strip(n: Notice) -> tuple[str, ...]:
        return (n.kind, n.role, n.pmid, n.doi, n.date)
    assert [strip(n) for n in nbib.notices] == [strip(n) for n in xml.notices]
    assert nbib.retracted
    assert nbib.notices[0].provenance == f"{WAKEFIELD_NBIB.name}:1 RIN"
    # the value went on over two lines: joined before the PMID was read
    assert nbib.notices[0].citation == "Lancet. 2010 Feb 6;375(9713):445. doi: 10.1016/S0140-6736(10)60175-4."


def test_crossref_reads_updated_by_on_the_work_and_update_to_on_the_notice() -> None:
    work, notice, corrected = _parse(crossref, CROSSREF)
    assert work.retracted and [(n.kind, n.role, n.doi, n.date) for n in work.notices] == [
        ("retraction", "in", "10.5555/notices.retraction.2021", "2021-05-17")]
    assert not notice.retracted
    assert [(n.kind, n.role, n.doi) for n in notice.notices] == [("retraction", "of", "10.5555/notices.work.2019")]
    assert not corrected.retracted
    assert [(n.kind, n.date) for n in corrected.notices] == [("correction", "2020-11"),
                                                             ("expression_of_concern", "2022-01-04")]
    assert corrected.notices[0].provenance == f"{CROSSREF.name}:3 updated-by"


def test_bibtex_curator_fields() -> None:
    text = """@article{x2000trial,
  title = {A trial}, year = {2000},
  retraction = {pmid: 20137807; doi: https://doi.org/10.1016/S0140-6736(10)60175-4; date: 2010-02-06; citation: Lancet. 2010;375(9713):445},
  erratum = {Retracted figure 2; see the journal | pmid: 12345},
  concern = {pmid: 12ab; date: Feb 2011},
}"""
    result = bibtex.parse(text, "references/x.bib")
    (source,) = result.sources
    assert source.retracted
    retraction, first, second, concern = source.notices
    assert (retraction.pmid, retraction.doi, retraction.date) == ("20137807", "10.1016/s0140-6736(10)60175-4",
                                                                  "2010-02-06")
    assert retraction.citation == "Lancet. 2010;375(9713):445"  # the citation takes the rest, ";" and all
    assert retraction.provenance == "references/x.bib:1 retraction"
    assert (first.kind, first.citation) == ("correction", "Retracted figure 2; see the journal")
    assert (second.kind, second.pmid) == ("correction", "12345")
    assert (concern.kind, concern.pmid, concern.date) == ("expression_of_concern", "", "")
    messages = [p.message for p in result.problems]
    assert all(p.severity == "warning" for p in result.problems)
    assert any("pmid '12ab' is not a PubMed id" in m for m in messages)
    assert any("date 'Feb 2011' is not YYYY" in m and "corpus/README.md" in m for m in messages)


def test_only_a_retraction_about_the_work_makes_it_retracted() -> None:
    base = Source(id="a2000b", type="article", title="T")
    assert not base.retracted
    assert Source(id="a", type="article", title="T", publication_types=("Retracted Publication",)).retracted
    assert not Source(id="a", type="article", title="T", notices=(Notice("correction"),)).retracted
    assert not Source(id="a", type="article", title="T", notices=(Notice("retraction", "of", pmid="1"),)).retracted


# --- kept through records and the store ------------------------------------------------------


def test_notices_survive_a_record_file_and_the_store(tmp_path: Path) -> None:
    (source,) = _parse(pubmed_xml, WAKEFIELD_XML)
    record = StoredRecord(source=source, format="pubmed-xml", origin="pubmed:9500320")
    again = record_from_dict(json.loads(json.dumps(record.to_dict())), source.provenance[0])
    assert again.source.notices == source.notices
    Store([source], [], _vocabulary()).write(tmp_path)
    assert Store.read(tmp_path).sources[0].notices == source.notices


def test_a_malformed_notice_in_a_record_names_the_fix() -> None:
    (source,) = _parse(pubmed_xml, WAKEFIELD_XML)
    data = StoredRecord(source=source).to_dict()
    data["source"]["notices"] = [{"kind": "withdrawn"}]
    with pytest.raises(ValueError, match="notice kind 'withdrawn' is not one of retraction, correction"):
        record_from_dict(data, source.provenance[0])
    data["source"]["notices"] = [{"kind": "retraction", "doi": "https://doi.org/10.1016/S0140-6736(10)60175-4",
                                  "pmid": "PMID: 20137807"}]
    (notice,) = record_from_dict(data, source.provenance[0]).source.notices
    assert (notice.doi, notice.pmid) == ("10.1016/s0140-6736(10)60175-4", "20137807")  # a hand edit, normalised


def _vocabulary() -> Any:
    from kb.vocabulary import Vocabulary

    vocabulary, problems = Vocabulary.load(MINI_CORPUS / "vocabulary.toml", "vocabulary.toml")
    assert problems == []
    return vocabulary


# --- two builds: with the notices, and the control without the synthetic retraction -----------


def _build(root: Path, files: list[Path]) -> Settings:
    corpus = root / "corpus"
    shutil.copytree(MINI_CORPUS, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", verifier=False, search_rate_limit="")
    report = import_files(files, settings, progress=False)
    assert report.problems == []
    build(settings)
    return settings


@pytest.fixture(scope="module")
def notices_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return _build(tmp_path_factory.mktemp("notices"), [WAKEFIELD_XML, NOTICE_XML, WAKEFIELD_NBIB, CROSSREF])


@pytest.fixture(scope="module")
def notices_kb(notices_settings: Settings) -> Iterator[KnowledgeBase]:
    kb = KnowledgeBase.open(notices_settings)
    yield kb
    kb.close()


@pytest.fixture(scope="module")
def control_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    """The same works with no retraction recorded: Wakefield as PubMed held it before 2010 (its
    retraction only in the separate notice record), and the synthetic work without its notice."""
    root = tmp_path_factory.mktemp("control")
    data = json.loads(CROSSREF.read_text(encoding="utf-8"))
    items = data["message"]["items"]
    del items[0]["updated-by"]
    del items[1]  # the notice that retracts it
    unretracted = root / "crossref_unretracted.json"
    unretracted.write_text(json.dumps(data), encoding="utf-8")
    xml = WAKEFIELD_XML.read_text(encoding="utf-8")
    before = xml[:xml.index("<CommentsCorrectionsList>")] + xml[xml.index("</CommentsCorrectionsList>") + 26:]
    before = before.replace('<PublicationType UI="D016441">Retracted Publication</PublicationType>\n', "")
    old_record = root / "pubmed_9500320_before_2010.xml"
    old_record.write_text(before, encoding="utf-8")
    kb = KnowledgeBase.open(_build(root, [old_record, NOTICE_XML, unretracted]))
    yield kb
    kb.close()


def test_the_build_copies_a_notice_record_onto_the_work_it_retracts(control_kb: KnowledgeBase) -> None:
    work = control_kb.source(WAKEFIELD)
    assert work.publication_types == ("Journal Article",)  # its own record says nothing
    assert work.retracted
    (notice,) = work.notices
    assert (notice.kind, notice.role, notice.pmid) == ("retraction", "in", "20137807")
    assert "RetractionOf" in notice.provenance and "lancet2010retraction" in notice.provenance
    assert notice.citation.startswith("Retraction--Ileal-lymphoid-nodular hyperplasia")


def test_the_store_keeps_notices_across_a_build(notices_kb: KnowledgeBase, notices_settings: Settings) -> None:
    work = notices_kb.source(WAKEFIELD)
    # the XML, the MEDLINE record and the notice record name one retraction: it is kept once
    assert [(n.kind, n.pmid) for n in work.notices] == [("retraction", "20137807"),
                                                        ("expression_of_concern", "21971344")]
    assert notices_kb.source(SUNLIGHT).retracted


# --- API ---------------------------------------------------------------------------------------


def test_api_source_and_search_cards_carry_notices(notices_kb: KnowledgeBase, kb: KnowledgeBase) -> None:
    view = notices_kb.source_view(WAKEFIELD)
    assert view["retracted"] is True
    assert view["notices"][0]["kind"] == "retraction" and view["notices"][0]["pmid"] == "20137807"
    card = notices_kb.card(notices_kb.source("lancet2010retractionileallymphoidnodular"))
    assert card["retracted"] is False and card["notices"] == []  # a notice issues, it is not about it
    page = notices_kb.search(search_request({"q": ["sunlight tinnitus"]}))
    assert [h.source["id"] for h in page.hits] == [SUNLIGHT]
    assert page.hits[0].source["retracted"] is True
    assert page.hits[0].source["notices"][0]["doi"] == "10.5555/notices.retraction.2021"
    # a source of the ordinary corpus says so too
    assert kb.card(kb.store.sources[0])["retracted"] is False


def test_openapi_documents_notices_and_the_filter(notices_settings: Settings) -> None:
    client = create_app(notices_settings).test_client()
    spec = client.get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    assert {"retracted", "notices"} <= set(schemas["SourceCard"]["required"])
    assert schemas["Notice"]["properties"]["kind"]["enum"] == ["retraction", "correction", "expression_of_concern"]
    assert "exclude_retracted" in spec["components"]["parameters"]
    assert {"$ref": "#/components/parameters/exclude_retracted"} in spec["paths"]["/api/v1/search"]["get"]["parameters"]


# --- the search filter -------------------------------------------------------------------------


def test_exclude_retracted_leaves_out_retracted_sources_only(notices_kb: KnowledgeBase) -> None:
    def ids(**params: str) -> list[str]:
        request = search_request({name: [value] for name, value in params.items()})
        return [h.source["id"] for h in notices_kb.search(request).hits]

    assert ids(q="children enterocolitis developmental") == [WAKEFIELD]
    assert ids(q="children enterocolitis developmental", exclude_retracted="1") == []
    assert ids(q="sunlight tinnitus", exclude_retracted="true") == []
    everything = ids(q="ketamine", limit="100")
    assert everything and ids(q="ketamine", limit="100", exclude_retracted="1") == everything
    page = notices_kb.search(search_request({"q": ["sunlight"], "exclude_retracted": ["1"]}))
    assert page.filters["exclude_retracted"] is True
    with pytest.raises(BadQuery, match="Unknown exclude_retracted 'maybe': use 1"):
        search_request({"q": ["x"], "exclude_retracted": ["maybe"]})


def test_exclude_retracted_through_the_api(notices_settings: Settings) -> None:
    client = create_app(notices_settings).test_client()
    kept = client.get("/api/v1/search?q=sunlight+tinnitus").get_json()
    assert kept["total"] == 1 and kept["hits"][0]["source"]["retracted"] is True
    left_out = client.get("/api/v1/search?q=sunlight+tinnitus&exclude_retracted=1").get_json()
    assert left_out["total"] == 0
    bad = client.get("/api/v1/search?q=sunlight&exclude_retracted=perhaps")
    assert bad.status_code == 400


# --- the checker -------------------------------------------------------------------------------


def test_a_retracted_source_backs_nothing_and_citing_it_is_a_problem(notices_kb: KnowledgeBase,
                                                                     control_kb: KnowledgeBase) -> None:
    control = control_kb.check(ARTICLE, "text")
    (sentence,) = [s for s in control.sentences if s.checkworthy]
    assert sentence.verdict == "supported"  # the same claim, not retracted, backs it
    assert sentence.citations[0].outcome == "backs"

    result = notices_kb.check(ARTICLE, "text")
    (sentence,) = [s for s in result.sentences if s.checkworthy]
    assert sentence.verdict == "unsupported"
    assert all(e.source.id != SUNLIGHT for e in sentence.evidence)  # left out by default
    (check,) = sentence.citations
    assert check.outcome == "does_not_back"
    assert "is retracted (doi:10.5555/notices.retraction.2021)" in check.reason
    assert "It cites [1], which is retracted" in sentence.problems
    problem = next(p for p in result.problems if p.kind == "citation_retracted")
    assert problem.reference == "1" and problem.sentence == 0


def test_with_exclude_off_the_retracted_evidence_is_shown_flagged_but_never_counts(
        notices_kb: KnowledgeBase) -> None:
    result = notices_kb.check(FINDING + ".", "text", exclude_retracted=False)
    (sentence,) = [s for s in result.sentences if s.checkworthy]
    assert sentence.verdict == "unsupported"
    assert sentence.evidence[0].source.id == SUNLIGHT and sentence.evidence[0].source.retracted
    assert "A retracted source states it" in (sentence.reason or "")
    assert sentence.to_dict()["evidence"][0]["source"]["retracted"] is True
    html = to_html(result)
    assert 'class="flag-badge retracted-badge"' in html


def test_the_api_and_the_page_take_exclude_retracted(notices_settings: Settings) -> None:
    client = create_app(notices_settings).test_client()

    def evidence_sources(response) -> list[str]:
        (sentence,) = [s for s in response.get_json()["claims"] if s["checkworthy"]]
        return [e["source"]["id"] for e in sentence["evidence"]]

    assert SUNLIGHT not in evidence_sources(client.post("/api/v1/check", json={"text": FINDING + "."}))
    shown = client.post("/api/v1/check", json={"text": FINDING + ".", "exclude_retracted": False})
    assert SUNLIGHT in evidence_sources(shown)
    assert SUNLIGHT in evidence_sources(client.post("/api/v1/check?exclude_retracted=0",
                                                    data={"text": FINDING + "."}))
    bad = client.post("/api/v1/check", json={"text": FINDING + ".", "exclude_retracted": "no"})
    assert bad.status_code == 400 and "true or false" in bad.get_json()["error"]
    page = client.get("/check").get_data(as_text=True)
    assert 'name="exclude_retracted" value="1" checked' in page
    # The page's hidden "0" comes first; a ticked box's "1" after it wins.
    unticked = client.post("/check", data={"text": FINDING + ".", "exclude_retracted": "0"})
    assert 'name="exclude_retracted" value="1">' in unticked.get_data(as_text=True)
    assert "retracted-badge" in unticked.get_data(as_text=True)
    ticked = client.post("/check", data={"text": FINDING + ".", "exclude_retracted": ["0", "1"]})
    assert 'value="1" checked' in ticked.get_data(as_text=True)


class _AlwaysSupports:
    """A stand-in for the ONNX model (absent from a source checkout): every pair reads as support.
    It replaces the model only; Verifier, judge and the verdict rules run as shipped."""

    def probabilities(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        return np.array([[0.02, 0.97, 0.01]] * len(pairs))


def test_the_verifier_path_never_counts_a_retracted_source(notices_kb: KnowledgeBase) -> None:
    thresholds = Thresholds.load()
    verifier = Verifier(_AlwaysSupports(), thresholds)  # type: ignore[arg-type]
    matches = [m for m in notices_kb.matcher.match_claims(FINDING, limit=10) if m.source.id == SUNLIGHT]
    assert matches and all(isinstance(m, ClaimMatch) for m in matches)
    assert judge(verifier, FINDING, matches) == []  # read as saying nothing
    verdict = decide_verified(FINDING, judge(verifier, FINDING, matches), thresholds, notices_kb.vocabulary)
    assert verdict.verdict == "unsupported"
    check = verified_citation_check("1", notices_kb.source(SUNLIGHT), [], thresholds, FINDING,
                                    notices_kb.vocabulary)
    assert check.outcome == "does_not_back" and "is retracted" in check.reason


# --- pages ---------------------------------------------------------------------------------------


def test_source_page_banner_and_search_badge(notices_settings: Settings) -> None:
    client = create_app(notices_settings).test_client()
    page = client.get(f"/sources/{WAKEFIELD}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'class="notice-banner retracted" role="alert"' in html
    assert "Lancet. 2010 Feb 6;375(9713):445." in html and "PMID 20137807" in html
    assert "Expression of concern" in html
    corrected = client.get("/sources/sample2020synthetic").get_data(as_text=True)
    assert 'class="notice-banner"' in corrected and "Correction" in corrected
    plain = client.get("/sources/lancet2010retractionileallymphoidnodular").get_data(as_text=True)
    assert "notice-banner" not in plain
    hits = client.get("/search?q=sunlight+tinnitus").get_data(as_text=True)
    assert "retracted-badge" in hits
    none = client.get("/search?q=sunlight+tinnitus&exclude_retracted=1").get_data(as_text=True)
    assert "retracted-badge" not in none


def test_cli_search_flags_and_leaves_out_retracted_sources(notices_settings: Settings) -> None:
    from click.testing import CliRunner

    from kb.cli import cli

    base = ["--corpus-dir", str(notices_settings.corpus_dir), "--index-dir", str(notices_settings.index_dir)]
    runner = CliRunner()
    shown = runner.invoke(cli, [*base, "search", "sunlight tinnitus"], catch_exceptions=False)
    assert shown.exit_code == 0 and "RETRACTED: this source was retracted" in shown.output
    left_out = runner.invoke(cli, [*base, "search", "sunlight tinnitus", "--exclude-retracted"],
                             catch_exceptions=False)
    assert left_out.exit_code == 0 and left_out.output.startswith("0 claims match")


def test_the_filter_alone_is_no_search_on_the_page(notices_settings: Settings) -> None:
    client = create_app(notices_settings).test_client()
    page = client.get("/search?exclude_retracted=1")
    assert page.status_code == 200 and "Empty search" not in page.get_data(as_text=True)
