"""Tell an input file's format from its content (the file name only breaks ties).

Content wins over the name because exports are often misnamed: PubMed saves MEDLINE records as
``.txt`` or ``.nbib``, Web of Science calls its own tagged format ``.ris``, and a ``.json``
file may hold CSL-JSON, a Crossref response or an OpenAlex work.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePath

from kb.errors import IngestError
from kb.ingest import (
    Parser,
    bibtex,
    crossref,
    csl_json,
    medline,
    openalex,
    pubmed_xml,
    ris,
    scifact,
)
from kb.ingest.common import load_json

# Format name -> parser. The names are what ``kb import --format`` accepts.
FORMATS: dict[str, Parser] = {
    "bibtex": bibtex.parse,
    "ris": ris.parse,
    "pubmed-xml": pubmed_xml.parse,
    "medline": medline.parse,
    "csl-json": csl_json.parse,
    "crossref": crossref.parse,
    "openalex": openalex.parse,
    "scifact": scifact.parse,
}

# Format name -> file extension of the raw payload kept beside each imported record.
RAW_EXTENSIONS: dict[str, str] = {
    "bibtex": "bib", "ris": "ris", "pubmed-xml": "xml", "medline": "nbib", "csl-json": "json",
    "crossref": "json", "openalex": "json", "scifact": "jsonl",
    "pdf": "txt",  # a PDF's extracted text, page by page, with the PDF's checksum (kb.ingest.pdf)
}
# Binary formats, read from bytes by the importer rather than from text by FORMATS' parsers.
BINARY_FORMATS: tuple[str, ...] = ("pdf",)
PDF_MAGIC = b"%PDF-"

_BY_EXTENSION = {".bib": "bibtex", ".ris": "ris", ".nbib": "medline", ".medline": "medline",
                 ".xml": "pubmed-xml", ".jsonl": "scifact"}
_PEEK = 64 * 1024  # enough to see the first record of any format


def detect_format(text: str, filename: str = "") -> str:
    """Return the FORMATS name for *text*; raise IngestError when it cannot be told.

    >>> detect_format("PMID- 123\\nTI  - A title.\\n")
    'medline'
    >>> detect_format('{"doc_id": 4983, "title": "T", "abstract": ["S."], "structured": false}')
    'scifact'
    """
    head = text[:_PEEK].lstrip("\ufeff \t\r\n")
    found = _from_content(head, text, filename)
    if found:
        return found
    suffix = PurePath(filename).suffix.lower()
    if suffix in _BY_EXTENSION and head:
        return _BY_EXTENSION[suffix]
    kinds = ", ".join(FORMATS)
    raise IngestError(filename or "<input>", None,
                      f"cannot tell the file's format from its content; pass --format (one of {kinds})")


def _from_content(head: str, text: str, filename: str) -> str:
    if head.startswith("<"):
        if re.search(r"<Pubmed(?:Book)?Article(?:Set)?\b", head):
            return "pubmed-xml"
        root = re.search(r"<([A-Za-z][\w.:-]*)[\s>]", re.sub(r"<[?!][^>]*>", "", head))
        hint = " (a list of PMIDs: import them with 'kb add pmid:...')" \
            if root and root.group(1) == "eSearchResult" else ""
        raise IngestError(filename or "<input>", None,
                          f"XML with root <{root.group(1) if root else '?'}> is not PubMed "
                          f"efetch XML (PubmedArticleSet){hint}; no other XML format is read")
    if re.match(r"PMID- ?\d", head) or re.search(r"^PMID- ?\d", head, re.MULTILINE):
        return "medline"
    if re.match(r"TY  - ", head) or re.search(r"^TY  - ", head[:4096], re.MULTILINE):
        return "ris"
    if re.search(r"^\s*@\s*[A-Za-z]+\s*[{(]", head, re.MULTILINE) and not head.startswith(("{", "[")):
        return "bibtex"
    if head.startswith(("{", "[")):
        return _json_kind(head, text)
    return ""


def _json_kind(head: str, text: str) -> str:
    first_line = head.split("\n", 1)[0]
    try:
        first = load_json(first_line)
        lines_mode = bool(head[len(first_line):].strip()) and isinstance(first, dict)
    except json.JSONDecodeError:
        first, lines_mode = None, False
    if lines_mode or (isinstance(first, dict) and "doc_id" in first):
        return "scifact" if isinstance(first, dict) and "doc_id" in first else ""
    data = first if first is not None else _load(text)
    if isinstance(data, dict) and ("message-type" in data or "message" in data):
        return "crossref"
    if isinstance(data, dict) and isinstance(data.get("results"), list) and "meta" in data:
        return "openalex"
    item = data[0] if isinstance(data, list) and data else data
    if not isinstance(item, dict):
        return ""
    if "abstract_inverted_index" in item or str(item.get("id", "")).startswith("https://openalex.org/"):
        return "openalex"
    if isinstance(item.get("title"), list) or "reference-count" in item and "DOI" in item \
            and not isinstance(item.get("title"), str):
        return "crossref"
    if "title" in item and ("type" in item or "author" in item or "issued" in item):
        return "csl-json"
    return ""


def _load(text: str) -> object:
    try:
        return load_json(text)
    except json.JSONDecodeError:
        return None
