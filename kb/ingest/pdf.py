"""A paper's PDF: its full text by section, page and paragraph, and what metadata it carries.

Unlike the other parsers this one reads bytes (a PDF is binary) and is called by the importer
directly, not through ``kb.ingest.detect.FORMATS``. It stays pure: no disk, no network. The
importer may then replace the metadata with the Crossref record of the DOI found here
(``kb.corpus.importer``); offline, the PDF's own metadata stays, marked unverified.

Text comes from pypdf's text layer, page by page. A paragraph ends at a blank line, or at a line
ending a sentence that is clearly shorter than the page's usual line; lines inside a paragraph
are joined (a word hyphenated across lines is mended). A heading is a short line naming a
section, optionally numbered ("2. Methods", "III. RESULTS", "Abstract:" followed by text). Only
the sections whose sentences make claims are kept: abstract, methods, results, discussion and
conclusion; the title page before the abstract, the introduction, and everything from the
references (or acknowledgements, funding, ...) on are left out.

Refusals are one problem naming the file and the fix, and the file gives no source: encrypted
(with a password), damaged, or without a text layer (scanned). The cost is bounded: at most
``MAX_PAGES`` pages and ``MAX_TEXT_CHARS`` characters are read; a longer file imports its start,
with a warning saying so.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kb.ids import normalize_doi
from kb.ingest import ParseResult
from kb.ingest.common import clean, person_from_display, source_key, year_from
from kb.models import CorpusProblem, Provenance, Source

MAX_PDF_BYTES = 64 * 1024 * 1024
MAX_PAGES = 300  # a long paper with its supplement; a book would take minutes and belongs elsewhere
MAX_TEXT_CHARS = 2_000_000  # about 300,000 words
MIN_TEXT_CHARS = 200  # less text than this in the whole file: there is no text layer to read
KEPT_SECTIONS = ("abstract", "methods", "results", "discussion", "conclusion")

# Heading words -> the section they open; None: a section whose sentences are not claims.
_SECTION_NAMES: dict[str, str | None] = {
    "abstract": "abstract", "summary": "abstract",
    "background": None, "introduction": None,
    "methods": "methods", "method": "methods", "materials and methods": "methods",
    "methods and materials": "methods", "patients and methods": "methods",
    "subjects and methods": "methods", "study design": "methods", "experimental procedures": "methods",
    "results": "results", "findings": "results", "results and discussion": "results",
    "discussion": "discussion", "general discussion": "discussion",
    "conclusion": "conclusion", "conclusions": "conclusion", "concluding remarks": "conclusion",
}
# Headings after which nothing is read: the back matter is no part of the argument.
_END_NAMES = ("references", "bibliography", "literature cited", "acknowledgements", "acknowledgments",
              "acknowledgement", "acknowledgment", "funding", "conflict of interest",
              "conflicts of interest", "competing interests", "declaration of competing interest",
              "supplementary material", "supplementary materials", "author contributions",
              "data availability", "data availability statement", "appendix")
_NUMBERING = r"(?:(?:\d{1,2}(?:\.\d{1,2})*|[IVX]{1,4})[.)]?\s+)?"
_HEADING = re.compile(
    rf"^{_NUMBERING}(?P<name>{'|'.join(sorted(map(re.escape, [*_SECTION_NAMES, *_END_NAMES]), key=len, reverse=True))})"
    r"\s*(?P<sep>[:.\u2014]|\s-\s)?\s*(?P<rest>.*)$", re.IGNORECASE)
# "2 Structure of the Graph", "IV. Experimental Setup": a numbered top-level heading; the words
# after the number are a title (capitalised, no sentence punctuation), not a numbered list item.
_NUMBERED_HEADING = re.compile(r"^(?:\d{1,2}|[IVX]{1,4})\.?\s+(?P<title>[A-Z][^.:;!?]{2,80})$")
_PAGE_NUMBER = re.compile(r"^\d{1,4}$")
# Typeset ligatures ("scientiﬁc") as the letters they join, so words match when searched.
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi",
                            "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"})
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?:][\"')\]\u201d]?$")
_UNHELPFUL_TITLE = re.compile(r"^(?:microsoft word|untitled|document\d*|.*\.(?:docx?|tex|pdf|dvi))\b",
                              re.IGNORECASE)


@dataclass(slots=True)
class PdfText:
    """What pypdf read: each page's text, the document info, and how much was left out."""

    pages: list[str] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)
    total_pages: int = 0
    truncated: str = ""  # "" or the warning saying what was not read


def _refusal(origin: str, message: str) -> ParseResult:
    return ParseResult(problems=[CorpusProblem(origin, None, message)])


def read_pdf(data: bytes, origin: str) -> PdfText | CorpusProblem:
    """The text of *data* page by page, or the one problem that stops it being read."""
    if len(data) > MAX_PDF_BYTES:
        return CorpusProblem(origin, None, f"the PDF is {len(data) // 2**20} MB, over the "
                             f"{MAX_PDF_BYTES // 2**20} MB limit; import a copy without embedded "
                             "images or supplements")
    if not data.lstrip()[:1024].startswith(b"%PDF-") and b"%PDF-" not in data[:1024]:
        return CorpusProblem(origin, None, "not a PDF (no %PDF- header); import the PDF itself, "
                             "or export the record as BibTeX, RIS or CSL-JSON")
    from pypdf import PdfReader  # imported here: only an import of a PDF pays for it
    from pypdf.errors import PyPdfError

    # pypdf logs each repair it makes to a damaged file; the user gets our one line instead.
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    damaged = ("the PDF is damaged and cannot be read; download it again, or re-save it "
               "(e.g. Print to PDF) and import the copy")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:  # many PDFs are encrypted with an empty password only to set permissions
                opened = bool(reader.decrypt(""))
            except (PyPdfError, NotImplementedError, ValueError, KeyError):
                opened = False
            if not opened:
                return CorpusProblem(origin, None, "the PDF is encrypted with a password; save an "
                                     "unencrypted copy (open it and Print to PDF) and import that")
        found = PdfText(total_pages=len(reader.pages))
        size = 0
        for number, page in enumerate(reader.pages, start=1):
            if number > MAX_PAGES:
                found.truncated = (f"read the first {MAX_PAGES} of {found.total_pages} pages (the limit); "
                                   "the rest was left out; split the PDF to import more")
                break
            text = page_text(page).translate(_LIGATURES)
            if size + len(text) > MAX_TEXT_CHARS:
                found.truncated = (f"stopped at page {number} of {found.total_pages}: the text passed "
                                   f"{MAX_TEXT_CHARS:,} characters (the limit); the rest was left out")
                break
            size += len(text)
            found.pages.append(text)
        metadata: dict[Any, Any] = dict(reader.metadata or {})
        found.info = {str(k).lstrip("/"): str(v) for k, v in metadata.items() if isinstance(v, str)}
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError,
            OSError, ZeroDivisionError, AssertionError):
        # pypdf meets broken files with many kinds of error; each means the same to the user
        return CorpusProblem(origin, None, damaged)
    except Exception as error:  # noqa: BLE001 - e.g. a missing 'cryptography' for AES
        if "cryptograph" in str(error).lower():
            return CorpusProblem(origin, None, "the PDF is encrypted (AES) and the 'cryptography' package "
                                 "is not installed; pip install cryptography, or save an unencrypted copy")
        return CorpusProblem(origin, None, damaged)
    if sum(len(p.strip()) for p in found.pages) < MIN_TEXT_CHARS:
        return CorpusProblem(origin, None, "the PDF has no text layer (a scan or images of pages); run "
                             "OCR on it (e.g. ocrmypdf paper.pdf paper-ocr.pdf) and import the result")
    return found


def page_text(page: Any) -> str:
    """A page's text, with a blank line where the layout leaves a gap taller than a line.

    pypdf's plain extraction drops vertical space, so paragraphs would run together; its text
    visitor reports where each piece is drawn, and a gap over 1.5 times the page's usual line
    spacing (or a jump back up, as to the next column) marks a new paragraph.
    """
    pieces: list[tuple[float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], _font: object, _size: object) -> None:
        if text:
            pieces.append((tm[4] * cm[1] + tm[5] * cm[3] + cm[5], text))

    plain = page.extract_text(visitor_text=visit) or ""
    starts, at_start = [], True
    for y, text in pieces:
        if at_start:
            starts.append(y)
        at_start = text.endswith("\n")
    gaps = [a - b for a, b in itertools.pairwise(starts) if a - b > 0]
    usual = statistics.median(gaps) if gaps else 0.0
    out: list[str] = []
    previous: float | None = None
    at_start = True
    for y, text in pieces:
        if at_start:
            if previous is not None and usual and (previous - y > 1.5 * usual or y - previous > 3 * usual):
                out.append("\n")
            previous = y
        out.append(text)
        at_start = text.endswith("\n")
    joined = "".join(out)
    # The visitor's pieces should be the whole text; if pypdf gave it differently, trust its text.
    if len(re.sub(r"\s", "", joined)) < 0.9 * len(re.sub(r"\s", "", plain)):
        return plain
    return joined


def paragraphs(page: str) -> Iterator[str]:
    """The paragraphs of one page's text: lines joined, hyphenation across lines mended.

    >>> list(paragraphs("A first line that is long enough to be\\nordinary and it treat-\\nments "
    ...                 "go on here.\\nShort end.\\n\\nNext one."))
    ['A first line that is long enough to be ordinary and it treatments go on here.', 'Short end.', 'Next one.']
    """
    lines = [line.strip() for line in page.splitlines()]
    widths = [len(line) for line in lines if len(line) > 20]
    usual = statistics.median(widths) if widths else 0
    current: list[str] = []
    for index, line in enumerate(lines):
        if not line:
            if current:
                yield _joined(current)
                current = []
            continue
        heading = _heading(line)
        if heading and current:  # a heading always starts a paragraph of its own
            yield _joined(current)
            current = []
        current.append(line)
        nxt = lines[index + 1] if index + 1 < len(lines) else ""
        ends = bool(_SENTENCE_END.search(line)) and usual and len(line) < 0.7 * usual \
            and nxt[:1].isupper()
        if ends or (heading and not heading[1]):  # "Abstract: We ..." runs on to the next line
            yield _joined(current)
            current = []
    if current:
        yield _joined(current)


def _joined(lines: list[str]) -> str:
    text = ""
    for line in lines:
        if text.endswith("-") and line[:1].islower() and text[-2:-1].isalpha():
            text = text[:-1] + line
        else:
            text = f"{text} {line}" if text else line
    return clean(text)


def _heading(line: str) -> tuple[str | None, str] | None:
    """(section or None for an unkept one, text after the heading) when *line* opens a section.

    >>> _heading("6 Conclusion and Future Work"), _heading("2 Structure of The Literature Graph")
    (('conclusion', ''), (None, ''))
    >>> _heading("Results were mixed"), _heading("2 Patients were excluded because they had")
    (None, None)
    """
    line = line.strip()
    match = _HEADING.match(line)
    numbered = _NUMBERED_HEADING.match(line)
    titled = numbered is not None and _reads_as_title(numbered.group("title"))
    if not match:
        # A numbered section this reader does not name ("4 Entity Extraction and Linking") ends
        # the one before it, so its text is not read as that section's.
        return (None, "") if titled else None
    name, rest = match.group("name").lower(), match.group("rest").strip()
    if rest and not match.group("sep"):
        if not titled:
            return None  # "Results were ..." is a sentence, not a heading; "Results: ..." is one
        rest = ""  # "6 Conclusion and Future Work": the words after the name are the heading's
    if name in _END_NAMES:
        return "", rest
    return _SECTION_NAMES[name], rest


def _reads_as_title(text: str) -> bool:
    """Up to ten words, every word of four letters or more capitalised: a heading, not a sentence."""
    words = re.findall(r"[^\W\d_][\w'-]*", text)
    return 1 <= len(words) <= 10 and all(w[0].isupper() for w in words if len(w) >= 4)


def sections(pages: list[str]) -> list[tuple[str, int, int, str]]:
    """(section, page, paragraph on that page, text) of every paragraph in a kept section.

    Paragraphs are counted on each page as a reader counts them: headings are not paragraphs.

    >>> sections(["Title\\n\\nAbstract\\nWe found X.\\n\\n1. Introduction\\nOld news.",
    ...           "2 Results\\nX rose by 5%.\\n\\nReferences\\n[1] A. B. 2020."])
    [('abstract', 1, 2, 'We found X.'), ('results', 2, 1, 'X rose by 5%.')]
    """
    found: list[tuple[str, int, int, str]] = []
    current: str | None = None
    for page_number, page in enumerate(pages, start=1):
        paragraph_number = 0
        for text in paragraphs(page):
            heading = _heading(text)
            if heading is not None:
                section, rest = heading
                if section == "":
                    return found  # the back matter: nothing after it is read
                current = section
                text = rest
            if not text or _PAGE_NUMBER.match(text):
                continue  # a page number printed in the margin is no paragraph
            paragraph_number += 1
            if current in KEPT_SECTIONS and len(text) >= 3:
                found.append((current, page_number, paragraph_number, text))
    return found


def find_doi(pages: list[str], info: dict[str, str]) -> str:
    """The paper's own DOI: the first printed on its first two pages, else its metadata's."""
    for text in (*pages[:2], info.get("doi", ""), info.get("Subject", "")):
        match = _DOI.search(text.replace("\n", " "))
        if match:
            doi = normalize_doi(match.group(1).rstrip(".,;)]}"))
            if doi:
                return doi
    return ""


def _title(info: dict[str, str], first_page: str) -> tuple[str, str]:
    """(title, where it came from): the metadata's, unless it is a file name; else the first page's."""
    title = clean(info.get("Title", ""))
    if title and len(title) > 8 and not _UNHELPFUL_TITLE.match(title):
        return title, "the PDF's metadata (Title)"
    # The first line that reads like a title, not a running head: a title wrapped onto a second
    # line is cut there, which the "unverified" mark (and a later kb add doi:...) covers.
    for line in first_page.splitlines():
        line = clean(line)
        if _heading(line):
            break  # past the title block
        if 15 <= len(line) <= 300 and not _DOI.search(line) \
                and not re.search(r"journal|volume|vol\.|issn|©|copyright|http|www\.", line, re.IGNORECASE):
            return line, "the PDF's first page"
    return "", ""


def _authors(info: dict[str, str]) -> tuple[str, ...]:
    raw = clean(info.get("Author", ""))
    if not raw:
        return ()
    parts = re.split(r"\s*(?:;|\band\b|&)\s*", raw) if ";" in raw or " and " in raw or "&" in raw \
        else re.split(r"\s*,\s*", raw) if raw.count(",") != 1 else [raw]
    return tuple(person_from_display(p) for p in parts if p.strip())


def parse(data: bytes, origin: str) -> ParseResult:
    """Read a paper's PDF into one Source with its full text, or one problem saying why not."""
    read = read_pdf(data, origin)
    if isinstance(read, CorpusProblem):
        return ParseResult(problems=[read])
    result = ParseResult()
    if read.truncated:
        result.problems.append(CorpusProblem(origin, None, read.truncated, "warning"))
    paragraphs_found = sections(read.pages)
    if not paragraphs_found:
        result.problems.append(CorpusProblem(
            origin, None, "no abstract, methods, results, discussion or conclusion heading was found; "
            "the source is imported without full-text claims", "warning"))
    title, title_from = _title(read.info, read.pages[0] if read.pages else "")
    if not title:
        return _refusal(origin, "no title in the PDF's metadata or on its first page; import its "
                        "record (BibTeX, RIS, or kb add doi:...) instead")
    authors = _authors(read.info)
    year = year_from(read.info.get("CreationDate", "")[2:6] if read.info.get("CreationDate", "")
                     .startswith("D:") else read.info.get("CreationDate", ""))
    doi = find_doi(read.pages, read.info)
    marks = {name: "unverified" for name, value in
             (("title", title), ("authors", authors), ("year", year), ("doi", doi)) if value}
    notes = {"title": f"read from {title_from}", "authors": "read from the PDF's metadata (Author)",
             "year": "the PDF's creation date, which may be later than publication",
             "doi": "printed in the PDF; not looked up"}
    abstract = " ".join(text for section, _, _, text in paragraphs_found if section == "abstract")
    source = Source(
        id=source_key(authors, year, title), type="article", title=title, authors=authors, year=year,
        doi=doi, abstract=abstract, full_text=tuple(paragraphs_found),
        verification=marks, verification_notes={k: v for k, v in notes.items() if k in marks},
        provenance=(Provenance(origin),),
    )
    result.sources.append(source)
    result.raw[source.id] = raw_text(data, read)
    return result


def raw_text(data: bytes, read: PdfText) -> str:
    """The raw payload kept beside the record: the PDF's checksum and its text, page by page, so a
    later reader can see exactly what the claims were cut from without the PDF itself."""
    header = [(f"# text extracted with pypdf from a PDF of {len(data):,} bytes, "
               f"sha256 {hashlib.sha256(data).hexdigest()}, {read.total_pages} page(s)")]
    if read.truncated:
        header.append(f"# {read.truncated}")
    return "\n".join(header) + "\n" + "".join(
        f"\n--- page {number} ---\n{text}\n" for number, text in enumerate(read.pages, start=1))

