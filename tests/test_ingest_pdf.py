"""`kb import paper.pdf`: full text by section, page and paragraph; metadata; refusals and caps.

The PDFs are generated here from text written for the tests (tests/data/pdf/README.md says why
and what that leaves untested): ``_pdf`` writes a minimal but valid PDF 1.4 file by hand.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader, PdfWriter

from kb.cli_ingest import import_command
from kb.config import Settings
from kb.corpus import records
from kb.corpus.importer import import_files
from kb.corpus.loader import load_corpus
from kb.ingest import pdf

DATA = Path(__file__).parent / "data"
TRIAL = (DATA / "pdf" / "trial.txt").read_text(encoding="utf-8")
MINI_CORPUS = DATA / "corpus"
DOI = "10.5555/kb.test.2021.001"


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _pdf(text: str, info: dict[str, str] | None = None) -> bytes:
    """A PDF with *text* in Helvetica, one line per text line; a line reading \\f starts a new page."""
    pages = [page.strip("\n").split("\n") for page in text.split("\n\\f\n")]
    objects: list[bytes] = []
    kids = []
    first_page = 4  # 1 catalog, 2 pages, 3 font; then page, content, page, content ...
    for number, lines in enumerate(pages):
        ops = ["BT", "/F1 10 Tf", "14 TL", "72 760 Td"]
        for line in lines:
            ops.append(f"({_escape(line)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        page_id, content_id = first_page + 2 * number, first_page + 2 * number + 1
        kids.append(f"{page_id} 0 R")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    head = [b"<< /Type /Catalog /Pages 2 0 R >>",
            f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    everything = head + objects
    info_id = None
    if info:
        everything.append(("<< " + " ".join(f"/{k} ({_escape(v)})" for k, v in info.items()) + " >>")
                          .encode("latin-1"))
        info_id = len(everything)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(everything, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(everything) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    trailer = f"<< /Size {len(everything) + 1} /Root 1 0 R"
    trailer += f" /Info {info_id} 0 R >>" if info_id else " >>"
    out.write(f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


INFO = {"Title": "Ketamine infusions for chronic PTSD: a small randomized trial",
        "Author": "Alice Example; Bob Sample", "CreationDate": "D:20210304120000Z"}


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    shutil.copytree(MINI_CORPUS, corpus)
    # An address where nothing listens: an import that tries the network fails at once, offline.
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", crossref_url="http://127.0.0.1:9")


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_sections_pages_and_paragraphs():
    result = pdf.parse(_pdf(TRIAL, INFO), "paper.pdf")
    assert result.problems == []
    (source,) = result.sources
    located = [(s, page, par) for s, page, par, _ in source.full_text]
    # page 1: the title block is paragraph 1, then the abstract, the introduction, the methods
    assert located == [("abstract", 1, 2), ("methods", 1, 4), ("results", 2, 1), ("results", 2, 2),
                       ("discussion", 2, 3), ("conclusion", 2, 4)]
    texts = [t for *_, t in source.full_text]
    assert texts[2].startswith("Ketamine reduced PTSD symptom severity at 24 hours")
    assert not any("Introduction" in t or "older paper" in t for t in texts)  # left out
    assert source.abstract.startswith("We randomized 41 adults")


def test_offline_metadata_is_the_pdfs_own_and_unverified():
    (source,) = pdf.parse(_pdf(TRIAL, INFO), "paper.pdf").sources
    assert source.title == INFO["Title"]
    assert source.authors == ("Example, Alice", "Sample, Bob")
    assert source.year == 2021 and source.doi == DOI
    assert source.verification == dict.fromkeys(("title", "authors", "year", "doi"), "unverified")
    assert not source.is_confirmed("doi")
    assert "printed in the PDF" in source.verification_notes["doi"]


def test_without_metadata_the_first_page_gives_the_title():
    (source,) = pdf.parse(_pdf(TRIAL), "paper.pdf").sources
    assert source.title.startswith("Ketamine infusions for chronic post-traumatic")
    assert source.verification_notes["title"] == "read from the PDF's first page"
    assert source.authors == () and source.year is None


def test_a_real_two_column_paper_reads_by_section_without_ligatures_or_page_numbers():
    # A publisher's PDF (ACL Anthology N18-3011, CC BY 4.0; tests/data/pdf/README.md): pdfTeX,
    # two columns, ligatures, page numbers in the margin and numbered headings.
    real = (DATA / "pdf" / "N18-3011-trimmed.pdf").read_bytes()
    result = pdf.parse(real, "N18-3011-trimmed.pdf")
    assert result.problems == []
    (source,) = result.sources
    assert source.title == "Construction of the Literature Graph in Semantic Scholar"
    assert source.authors[0] == "Ammar, Waleed" and source.year == 2018 and source.doi == ""
    assert source.verification["title"] == "unverified"
    places = [(section, page) for section, page, _, _ in source.full_text]
    # The introduction on page 1 is not read as the abstract, nor "4 Entity Extraction and
    # Linking" on page 2 as the results before it; "6 Conclusion and Future Work" is found.
    assert [place for place in places if place[1] == 1] == [("abstract", 1)]
    assert places.count(("results", 2)) == 1 and ("conclusion", 3) in places
    texts = [source.abstract, *(text for *_, text in source.full_text)]
    assert "published scientific literature" in source.abstract
    assert not any(ligature in text for text in texts for ligature in "\ufb00\ufb01\ufb02\ufb03\ufb04")
    assert not any(text.strip().isdigit() for text in texts)  # page numbers are no paragraphs
    assert not any("Frustratingly easy" in text for text in texts)  # nothing after References


def test_import_offline_makes_claims_located_by_page_and_paragraph(settings, tmp_path):
    path = _write(tmp_path, "paper.pdf", _pdf(TRIAL, INFO))
    report = import_files([path], settings, progress=False)
    assert [i.title for i in report.added] == [INFO["Title"]]
    assert len(report.problems) == 1 and "could not look up DOI" in report.problems[0]
    assert "warning" in report.problems[0]
    stored, problems = records.load_all(settings.corpus_dir)
    assert problems == []
    (record,) = [r for r in stored if r.format == "pdf"]
    assert record.source.full_text and record.raw.endswith(".txt")
    raw = (settings.corpus_dir / "records" / record.raw).read_text(encoding="utf-8")
    assert "sha256" in raw and "--- page 2 ---" in raw  # provenance: what the claims were cut from

    corpus = load_corpus(settings.corpus_dir)
    claims = [c for c in corpus.claims if c.source_id == record.source.id]
    result = next(c for c in claims if c.text.startswith("Ketamine reduced PTSD symptom severity at"))
    assert (result.locator.section, result.locator.page, result.locator.paragraph,
            result.locator.index) == ("results", 2, 1, 1)
    assert str(result.locator) == "results, page 2, paragraph 1, sentence 1"
    assert "ketamine" in result.tags.get("intervention", ())  # tagged like any other claim
    assert result.to_dict()["locator"]["page"] == 2
    # The abstract's sentences are claims once, with their page locator.
    abstract = [c for c in claims if c.locator.section == "abstract"]
    assert len(abstract) == 2 and all(c.locator.page == 1 for c in abstract)
    again = import_files([path], settings, progress=False, lookup=False)
    assert again.added == [] and [i.id for i in again.skipped] == [record.source.id]


def test_doi_lookup_replaces_metadata_with_the_crossref_record(settings, tmp_path, httpserver):
    work = {"status": "ok", "message-type": "work", "message": {
        "DOI": DOI, "type": "journal-article", "title": ["Ketamine for chronic PTSD: a randomized trial"],
        "author": [{"family": "Example", "given": "Alice"}], "issued": {"date-parts": [[2020, 5]]},
        "container-title": ["Journal of Test Fixtures"]}}
    httpserver.expect_request(f"/works/{DOI}").respond_with_json(work)
    online = Settings(corpus_dir=settings.corpus_dir, index_dir=settings.index_dir,
                      crossref_url=httpserver.url_for("/"))
    path = _write(tmp_path, "paper.pdf", _pdf(TRIAL, INFO))
    report = import_files([path], online, progress=False)
    assert report.problems == []
    (record,) = [r for r in records.load_all(settings.corpus_dir)[0] if r.format == "pdf"]
    source = record.source
    assert source.title == "Ketamine for chronic PTSD: a randomized trial" and source.year == 2020
    assert source.is_confirmed("doi") and source.is_confirmed("title")
    assert source.full_text  # the PDF's text stays
    assert record.raw and (settings.corpus_dir / "records" / record.raw).is_file()


def _encrypted() -> bytes:
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(_pdf(TRIAL, INFO))))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _image_only() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("name,data,needle", [
    ("locked.pdf", _encrypted(), "encrypted with a password; save an unencrypted copy"),
    ("scan.pdf", _image_only(), "no text layer"),
    ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> garbage", "damaged"),
    ("empty.pdf", b"", "not a PDF"),
])
def test_bad_pdfs_are_refused_in_one_line_and_the_rest_imports(settings, tmp_path, name, data, needle):
    bad = _write(tmp_path, name, data)
    good = _write(tmp_path, "paper.pdf", _pdf(TRIAL, INFO))
    report = import_files([bad, good], settings, progress=False, lookup=False)
    assert report.refused == [str(bad)]
    assert [i.title for i in report.added] == [INFO["Title"]]
    (line,) = [p for p in report.problems if p.startswith(str(bad))]
    assert needle in line and "\n" not in line


def test_page_and_text_caps_import_the_start_with_a_warning(monkeypatch):
    monkeypatch.setattr(pdf, "MAX_PAGES", 1)  # a setting of the code under test, not its logic
    result = pdf.parse(_pdf(TRIAL, INFO), "paper.pdf")
    assert [p.severity for p in result.problems] == ["warning"]
    assert "read the first 1 of 2 pages" in result.problems[0].message
    assert {page for _, page, _, _ in result.sources[0].full_text} == {1}


def test_oversized_pdf_is_refused(monkeypatch):
    monkeypatch.setattr(pdf, "MAX_PDF_BYTES", 100)
    (problem,) = pdf.parse(_pdf(TRIAL, INFO), "big.pdf").problems
    assert "over the 0 MB limit" in problem.message or "limit" in problem.message


def test_cli_imports_a_pdf_and_refuses_a_broken_one(settings, tmp_path):
    good = _write(tmp_path, "paper.pdf", _pdf(TRIAL, INFO))
    bad = _write(tmp_path, "scan.pdf", _image_only())
    runner = CliRunner()
    result = runner.invoke(import_command, [str(good), str(bad), "--offline", "--json", "--corpus-dir",
                                            str(settings.corpus_dir)], obj=settings, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["counts"]["added"] == 1 and report["refused"] == [str(bad)]
    alone = runner.invoke(import_command, [str(bad), "--offline", "--corpus-dir", str(settings.corpus_dir)],
                          obj=settings, catch_exceptions=False)
    assert alone.exit_code == 1
    assert f"{bad}: error: the PDF has no text layer" in alone.output
