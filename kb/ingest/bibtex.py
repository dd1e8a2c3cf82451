"""BibTeX parser (bibtexparser v2): one Source per entry; malformed entries become problems."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import bibtexparser
from bibtexparser import middlewares
from bibtexparser.middlewares.names import InvalidNameError, parse_single_name_into_parts
from bibtexparser.model import DuplicateBlockKeyBlock
from pylatexenc.latex2text import LatexNodes2Text

from kb.ids import is_source_id, normalize_doi, normalize_pmcid, normalize_pmid
from kb.ingest import ParseResult
from kb.ingest.notices import bibtex_notices
from kb.models import VERIFICATION_MARKS, CorpusProblem, Provenance, Source

# Fields holding prose, decoded from LaTeX; identifiers and URLs are left exactly as written.
_TEXT_FIELDS = {"title", "journal", "booktitle", "publisher", "institution", "organization",
                "abstract", "keywords", "note", "howpublished", "series"}
_CONTAINER_FIELDS = ("journal", "journaltitle", "booktitle", "publisher", "institution",
                     "organization", "howpublished")
_VENUE_FIELDS = ("container", "year", "volume", "issue", "pages")
_LATEX = LatexNodes2Text(math_mode="verbatim", strict_latex_spaces=True)
_DASHES = re.compile(r"\s*[-\u2010-\u2015]+\s*")


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


# bibtexparser logs every block it gives up on as a multi-line WARNING (with a 0-based line
# number) and an INFO; each such block is already one `file:line` problem of ours, so only its
# ERRORs (bugs in bibtexparser itself) still get through.
logging.getLogger("bibtexparser.splitter").addFilter(_errors_only)


def parse(text: str, origin: str) -> ParseResult:
    """Parse a .bib file; *origin* names it in problems and provenance."""
    result = ParseResult()
    library = bibtexparser.parse_string(
        text, append_middleware=[middlewares.SeparateCoAuthors(), middlewares.MonthIntMiddleware(True)]
    )
    for block in library.failed_blocks:
        line = _file_line(block.start_line)
        key = getattr(block, "key", "") or _guess_key(getattr(block, "raw", ""))
        if isinstance(block, DuplicateBlockKeyBlock):
            first = f"{origin}:{_file_line(block.previous_block.start_line) or '?'}"
            result.problems.append(CorpusProblem(origin, line, duplicate_key_message(key, first),
                                                 fatal=True))
            continue
        result.problems.append(CorpusProblem(origin, line,
                                             f"malformed entry {key!r} skipped: {_first_line(block)}"))
    for entry in library.entries:
        line = _file_line(entry.start_line)
        fields = {name.lower(): f.value for name, f in entry.fields_dict.items()}
        source, problems = source_from_fields(entry.key, entry.entry_type.lower(), fields,
                                              Provenance(origin, line))
        result.problems.extend(problems)
        if source is not None:
            result.sources.append(source)
            result.raw[source.id] = entry.raw or ""
    return result


def _file_line(start_line: int | None) -> int | None:
    """bibtexparser v2 counts lines from 0 (its own log messages say "line 60" for line 61);
    editors, and our problems, count from 1."""
    return None if start_line is None else start_line + 1


def duplicate_key_message(key: str, first: str) -> str:
    """The error for a second entry with *key*; *first* is the ``file:line`` of the first one."""
    return (f"duplicate source key {key!r}, first defined at {first}: one key would silently "
            "replace the other's verified record, so nothing is built until one of them is "
            "renamed (with its summary's `source =`) or the copy is deleted")


def source_from_fields(key: str, entry_type: str, fields: dict[str, object],
                       provenance: Provenance) -> tuple[Source | None, list[CorpusProblem]]:
    """Build a Source from BibTeX-style fields, reporting what is missing or malformed."""
    problems: list[CorpusProblem] = []

    def problem(message: str, severity: str = "error") -> None:
        problems.append(CorpusProblem(provenance.file, provenance.line, message, severity))  # type: ignore[arg-type]

    if not is_source_id(key):
        problem(f"entry key {key!r} is not a valid id: use letters, digits and _ . : + -")
        return None, problems
    text = {name: _decode(value) if name in _TEXT_FIELDS else _plain(value)
            for name, value in fields.items() if name != "author" and name != "editor"}
    authors: list[str] = []
    for name in _authors(fields.get("author") or fields.get("editor")):
        try:
            authors.append(normalize_name(name))
        except InvalidNameError as error:  # "A, B, C" (authors not joined by "and"), a stray "{"
            problem(f"{key}: author {name[:80]!r} is not a name BibTeX can split "
                    f"({error.reason.lower()}); kept as written: separate authors with ' and '",
                    "warning")
            if _plain(name):
                authors.append(_plain(name))
    title = text.get("title", "")
    if not title:
        problem(f"@{entry_type}{{{key}}} has no title: add title = {{...}}")
        return None, problems
    year_text = text.get("year", "") or text.get("date", "")[:4]
    year = int(year_text) if re.fullmatch(r"\d{4}", year_text) else None
    if year is None:
        problem(f"@{entry_type}{{{key}}} has no year (or it is not 4 digits): add year = {{YYYY}}")
        return None, problems
    raw_doi = text.get("doi", "")
    doi = normalize_doi(raw_doi)
    if raw_doi and not doi:
        problem(f"{key}: doi {raw_doi!r} is not a DOI (expected 10.NNNN/...); left empty", "warning")
    raw_pmid = text.get("pmid", "")
    pmid = normalize_pmid(raw_pmid)
    if raw_pmid and not pmid:
        problem(f"{key}: pmid {raw_pmid!r} is not a PubMed id (digits only); left empty", "warning")
    verification, bad_marks = parse_verification(text.get("verification", ""))
    for bad in bad_marks:
        problem(f"{key}: verification {bad!r} is not 'field: mark' with a mark from "
                f"{', '.join(VERIFICATION_MARKS)}", "warning")
    notices, bad_notices = bibtex_notices(text, str(provenance))
    for message in bad_notices:
        problem(f"{key}: {message}; see corpus/README.md, 'Retractions and other notices'", "warning")
    container = next((text[name] for name in _CONTAINER_FIELDS if text.get(name)), "")
    keywords = tuple(k.strip() for k in re.split(r"[;,]", text.get("keywords", "")) if k.strip())
    source = Source(
        id=key,
        type=entry_type,
        title=title,
        authors=tuple(authors),
        year=year,
        container=container,
        volume=text.get("volume", ""),
        issue=text.get("number", "") or text.get("issue", ""),
        pages=_DASHES.sub("-", text.get("pages", "")),
        doi=doi,
        pmid=pmid,
        pmcid=normalize_pmcid(text.get("pmcid", "")),
        url=text.get("url", ""),
        abstract=text.get("abstract", ""),
        keywords=keywords,
        notices=notices,
        verification=verification,
        provenance=(provenance,),
    )
    return source, problems


def parse_verification(value: str) -> tuple[dict[str, str], list[str]]:
    """Read ``title: verified; venue: unverified`` into a per-field map.

    ``venue`` expands to container, year, volume, issue and pages; a field named on its own
    overrides it. Parts that are not ``field: mark`` are returned as the second item.

    >>> parse_verification("title: verified; venue: partial; pages: unverified")[0]["pages"]
    'unverified'
    """
    marks: dict[str, str] = {}
    single: dict[str, str] = {}
    bad: list[str] = []
    for part in filter(None, (p.strip() for p in value.split(";"))):
        name, _, mark = (s.strip() for s in part.partition(":"))
        if mark not in VERIFICATION_MARKS or not name:
            bad.append(part)
            continue
        name = {"number": "issue", "journal": "container", "author": "authors"}.get(name, name)
        if name == "venue":
            marks.update(dict.fromkeys(_VENUE_FIELDS, mark))
        else:
            single[name] = mark
    return marks | single, bad


def with_provenance(source: Source, provenance: Provenance) -> Source:
    """Return *source* with *provenance* appended."""
    return replace(source, provenance=(*source.provenance, provenance))


def normalize_name(raw: str) -> str:
    """Return a person as "Family, Given" and an organisation (fully braced in BibTeX) unchanged.

    >>> normalize_name("Marije aan het Rot"), normalize_name("Zarate, Jr., C. A.")
    ('aan het Rot, Marije', 'Zarate Jr., C. A.')
    >>> normalize_name("{U.S. Food and Drug Administration}")
    'U.S. Food and Drug Administration'
    """
    text = raw.strip()
    if text.startswith("{") and text.endswith("}") and _balanced(text[1:-1]):
        return _decode(text[1:-1])  # an organisation: no family/given split
    parts = parse_single_name_into_parts(text)
    family = " ".join([*parts.von, *parts.last])
    if parts.jr:
        family += " " + " ".join(parts.jr)
    given = " ".join(parts.first)
    family, given = _decode(family), _decode(given)
    return f"{family}, {given}" if given else family


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _authors(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [a.strip() for a in re.split(r"\s+and\s+", value) if a.strip()]
    return []


def _decode(value: object) -> str:
    text = str(value)
    if "\\" in text or "{" in text or "$" in text:
        try:
            text = _LATEX.latex_to_text(text)
        except RecursionError:  # groups nested thousands deep: keep the text, drop the braces
            return _plain(text)
    return " ".join(text.split())


def _plain(value: object) -> str:
    return " ".join(str(value).replace("{", "").replace("}", "").split())


def _guess_key(raw: str) -> str:
    match = re.search(r"@\w+\s*[{(]\s*([^,\s]+)", raw)
    return match.group(1) if match else "?"


def _first_line(block: object) -> str:
    error = getattr(block, "error", None)
    # BlockAbortedException keeps its reason in abort_reason; its str() is empty
    text = str(getattr(error, "abort_reason", "") or error or "") or "could not be parsed"
    return text.strip().splitlines()[0][:160] if text.strip() else "could not be parsed"
