"""Reports of a check: Markdown (the article with footnote citations added, then the problems) and
HTML (each sentence coloured by verdict, opening its evidence on click with <details>).

The HTML is rendered from the web app's templates (``check_report.html`` holds the report body),
so the page at /check and ``kb check --format html`` show the same thing. It needs no JavaScript
and no inline style: classes only, styled by ``static/check.css``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

from kb.check.result import VERDICTS, CheckResult, EvidenceSource, SentenceResult

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
STYLESHEET = Path(__file__).resolve().parent.parent / "web" / "static" / "check.css"

VERDICT_LABELS = {
    "supported": "Supported",
    "partly_supported": "Partly supported",
    "contradicted": "Contradicted",
    "unsupported": "Not enough evidence",
}


@dataclass(frozen=True, slots=True)
class Piece:
    """A stretch of the analysed text: a unit the checker read (with its result) or the text between."""

    text: str
    result: SentenceResult | None = None
    index: int | None = None  # the unit's index in CheckResult.sentences


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph, heading or list item of the article, as pieces."""

    kind: str  # "paragraph", "heading", "item" or "references"
    pieces: tuple[Piece, ...]
    level: int = 0


def blocks(result: CheckResult) -> list[Block]:
    """The article as blocks of pieces, so every character of the analysed text is shown once."""
    text = result.text
    ref_start, ref_end = result.reference_section or (len(text) + 1, len(text) + 1)
    found: list[Block] = []
    cursor = 0
    current: list[Piece] = []
    current_kind = "paragraph"

    def close() -> None:
        nonlocal current
        if any(p.text.strip() for p in current):
            found.append(Block(current_kind, tuple(current)))
        current = []

    for index, unit in enumerate(result.sentences):
        gap = text[cursor:unit.start]
        if "\n\n" in gap or unit.kind in {"heading", "item"} or "\n" in gap and current_kind != "paragraph":
            close()
            current_kind = "paragraph"
        elif gap:
            current.append(Piece(gap))
        if unit.start >= ref_start:
            continue
        if unit.kind == "heading":
            found.append(Block("heading", (Piece(unit.text, unit, index),), 2))
            cursor = unit.end
            continue
        if unit.kind == "item":
            current_kind = "item"
        current.append(Piece(unit.text, unit, index))
        cursor = unit.end
    close()
    if result.truncated is not None:
        # The part a capped check did not reach is still shown, as plain text, after the rest.
        rest = text[cursor:min(ref_start, len(text))].strip()
        if rest:
            found.append(Block("unchecked", (Piece(rest),)))
    if result.reference_section:
        found.append(Block("references", (Piece(text[ref_start:ref_end].strip()),)))
    return found


# Markdown that user text must not carry into a report: raw HTML (<script>, <img onerror>),
# entities, and link or image syntax ([x](javascript:...), ![](https://tracker/)); a backslash is
# escaped first so that "\[" in the article cannot undo the escape of its bracket.
_MD_ESCAPES = {"\\": "\\\\", "[": "\\[", "]": "\\]", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_SPECIAL = re.compile(r"[\\\[\]&<>]")
_QUOTE_MARKS = re.compile(r"^[ \t]{0,3}(?:>[ \t]?)+")  # a line's blockquote markers stay Markdown


def escape_markdown(text: str) -> str:
    """*text* safe to embed in a Markdown report: no HTML, no links or images, no entities.

    Headings, lists, emphasis and blockquotes keep working; only what could inject is escaped.

    >>> escape_markdown("<script>alert(1)</script> [x](javascript:alert(1)) ![i](http://t/p.png)")
    '&lt;script&gt;alert(1)&lt;/script&gt; \\\\[x\\\\](javascript:alert(1)) !\\\\[i\\\\](http://t/p.png)'
    >>> escape_markdown("> quoted a > b")
    '> quoted a &gt; b'
    """
    lines = []
    for line in text.split("\n"):
        marks = _QUOTE_MARKS.match(line)
        keep = marks.group() if marks else ""
        lines.append(keep + _MD_SPECIAL.sub(lambda m: _MD_ESCAPES[m.group()], line[len(keep):]))
    return "\n".join(lines)


def doi_url(doi: str) -> str:
    """The resolver link of a DOI, percent-encoded so that no DOI can end a link or add to it."""
    return "https://doi.org/" + quote(doi, safe="/")


def pubmed_url(pmid: str) -> str:
    return f"https://pubmed.ncbi.nlm.nih.gov/{quote(pmid, safe='')}/"


@dataclass(frozen=True, slots=True)
class SourceReference:
    """A source's citation without its identifiers, and each identifier once, with its link."""

    text: str
    doi: str | None
    doi_url: str | None
    pmid: str | None
    pubmed_url: str | None


def source_reference(source: EvidenceSource, apa: bool = False) -> SourceReference:
    """Split a source's citation (Vancouver, or APA when *apa* and there is one) into its text and
    its identifiers. The styles write the DOI into the citation ("doi:10.x", APA's
    "https://doi.org/10.x") and reports added it again; taking it out of the text and showing it
    once, as a link, prints each identifier once."""
    text = source.apa if apa and source.apa else source.citation
    for identifier, patterns in ((source.doi, (r"https?://(?:dx\.)?doi\.org/", r"doi:\s*")),
                                 (source.pmid, (r"PMID:\s*",))):
        if identifier:
            for prefix in patterns:
                text = re.sub(rf"\s*{prefix}{re.escape(identifier)}\.?", "", text, flags=re.IGNORECASE)
    return SourceReference(
        text=text.strip(), doi=source.doi, doi_url=doi_url(source.doi) if source.doi else None,
        pmid=source.pmid, pubmed_url=pubmed_url(source.pmid) if source.pmid else None)


def _footnote_text(source: EvidenceSource) -> str:
    ref = source_reference(source)
    # Sources can come from imports and the write API: their text is escaped like the article's;
    # link targets are percent-encoded (doi_url), so they cannot close the link early.
    parts = [escape_markdown(ref.text)]
    if ref.doi and ref.doi_url:
        parts.append(f"[doi:{escape_markdown(ref.doi)}]({ref.doi_url})")
    if ref.pmid and ref.pubmed_url:
        parts.append(f"[PMID: {escape_markdown(ref.pmid)}]({ref.pubmed_url})")
    return " ".join(p for p in parts if p)


def to_markdown(result: CheckResult) -> str:
    """The article with footnote citations added where a backed sentence cites nothing, then the
    verdict counts and every problem, each with what to do."""
    notes: dict[str, int] = {}
    note_sources: dict[str, EvidenceSource] = {}
    insertions: list[tuple[int, str]] = []
    for sentence in result.sentences:
        if not sentence.suggestions:
            continue
        marks = []
        for source in sentence.suggestions[:2]:
            number = notes.setdefault(source.id, len(notes) + 1)
            note_sources[source.id] = source
            marks.append(f"[^kb{number}]")
        # Before the closing punctuation, so "... 72 hours[^kb1]." reads as a citation.
        end = sentence.end
        while end > sentence.start and result.text[end - 1] in ".!?;:":
            end -= 1
        insertions.append((end, "".join(marks)))
    # The article is escaped piece by piece between the footnote marks, so the offsets the marks
    # were placed at still hold and the marks themselves stay Markdown.
    pieces: list[str] = []
    cursor = 0
    for position, mark in sorted(insertions):
        pieces += [escape_markdown(result.text[cursor:position]), mark]
        cursor = position
    pieces.append(escape_markdown(result.text[cursor:]))
    text = "".join(pieces)
    lines = [text.rstrip(), ""]
    if notes:
        lines.append("")
        for source_id, number in notes.items():
            lines.append(f"[^kb{number}]: {_footnote_text(note_sources[source_id])}")
    lines += ["", "---", "", "## Evidence check", ""]
    if result.truncated is not None:
        lines += [f"> **{result.truncated.message}**", ""]
    counts = result.counts
    lines.append(f"{counts.get('checkworthy', 0)} of {counts.get('units', 0)} sentences make a checkable "
                 "claim: " + ", ".join(f"{counts.get(v, 0)} {VERDICT_LABELS[v].lower()}" for v in VERDICTS)
                 + f". {counts.get('references_resolved', 0)} of {counts.get('references', 0)} references "
                 "found in the knowledge base.")
    sections = [
        ("Contradicted", lambda s: s.verdict == "contradicted"),
        ("Not enough evidence", lambda s: s.verdict == "unsupported"),
        ("Partly supported", lambda s: s.verdict == "partly_supported"),
    ]
    for title, wanted in sections:
        chosen = [s for s in result.sentences if wanted(s)]
        if chosen:
            lines += ["", f"### {title}", ""]
            lines += [f"- \u201c{_one_line(s.text)}\u201d \u2014 {escape_markdown(s.reason)}" for s in chosen]
    citation_lines = []
    for sentence in result.sentences:
        for check in sentence.citations:
            if check.outcome in {"does_not_back", "contradicts"}:
                citation_lines.append(f"- \u201c{_one_line(sentence.text)}\u201d cites "
                                      f"\\[{escape_markdown(check.reference)}\\]: {escape_markdown(check.reason)}")
        for problem in sentence.problems:
            citation_lines.append(f"- \u201c{_one_line(sentence.text)}\u201d: {escape_markdown(problem)}")
    if citation_lines:
        lines += ["", "### Citations", ""] + citation_lines
    reference_lines = [f"- \\[{escape_markdown(r.id)}\\] {_one_line(r.text)} \u2014 {r.problem}: "
                       f"{escape_markdown(r.detail or '')}" for r in result.references if r.problem]
    if reference_lines:
        lines += ["", "### References", ""] + reference_lines
    return "\n".join(lines).rstrip() + "\n"


def _one_line(text: str, limit: int = 160) -> str:
    """User text shortened to one line of a Markdown list item, escaped (``escape_markdown``)."""
    text = " ".join(text.split())
    return escape_markdown(text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026")


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)),
                       autoescape=select_autoescape(default=True, default_for_string=True))


def report_context(result: CheckResult) -> dict[str, object]:
    """What the report templates need: the result, its blocks and the labels."""
    return {"result": result, "blocks": blocks(result), "labels": VERDICT_LABELS, "verdicts": VERDICTS,
            "source_reference": source_reference}


def to_html(result: CheckResult) -> str:
    """A standalone HTML document of the report, for ``kb check --format html``.

    A file opened from disk cannot fetch the server's stylesheet, so this document carries
    check.css in its head; the page served at /check links the same file instead (its Content
    Security Policy allows no inline style).
    """
    template = _environment().get_template("check_standalone.html")
    return template.render(stylesheet=STYLESHEET.read_text(encoding="utf-8"), **report_context(result))
