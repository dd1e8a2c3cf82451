"""Curated summary files: TOML front matter, our summary in prose, key results and claims.

The format is documented in corpus/README.md. Parsing is pure: text in, a ``Summary`` and the
problems found out, each problem naming its line.
"""

from __future__ import annotations

import datetime
import re
import tomllib
from dataclasses import dataclass, field

from kb.models import STANCES, CorpusProblem

_FENCE = "+++"
# Sections whose list items become claims, and the locator section name each one gets.
CLAIM_SECTIONS = {"key results": "key results", "claims": "claims"}
_ITEM = re.compile(r"^\s*[-*]\s+(.*\S)\s*$")
_MARKS = re.compile(r"^\[([^\]]*)\]\s*")
_TAG_EDITS = re.compile(r"\s*\{([^{}]*)\}\s*$")
_FRONT_MATTER_TEXT = ("source", "design", "population", "sample_size", "intervention",
                      "comparator", "primary_outcome")


@dataclass(frozen=True, slots=True)
class SummaryItem:
    """One list item under "Key results" or "Claims": a claim as the curator wrote it."""

    section: str  # "key results" or "claims"
    index: int  # 1-based item number within its section
    text: str
    stance: str | None
    confirmed: bool
    add_tags: tuple[str, ...]
    remove_tags: tuple[str, ...]
    line: int


@dataclass(slots=True)
class Summary:
    """One parsed summary file."""

    origin: str
    source: str  # citation key, or "doi:10..."
    line: int  # line of the `source =` key, for problem reports
    facts: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    verification_notes: dict[str, str] = field(default_factory=dict)
    evidence_level: int | None = None
    paragraphs: list[str] = field(default_factory=list)
    items: list[SummaryItem] = field(default_factory=list)


def parse(text: str, origin: str) -> tuple[Summary | None, list[CorpusProblem]]:
    """Parse one summary file; *origin* names it in problems."""
    problems: list[CorpusProblem] = []
    lines = text.splitlines()
    if not lines or lines[0].strip() != _FENCE:
        return None, [CorpusProblem(origin, 1, f"a summary starts with a '{_FENCE}' line, then TOML "
                                    "front matter (source = \"<citation key>\"), then '+++'")]
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == _FENCE)
    except StopIteration:
        return None, [CorpusProblem(origin, 1, f"front matter is not closed: add a '{_FENCE}' line")]
    try:
        meta = tomllib.loads("\n".join(lines[1:end]))
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        line = int(match.group(1)) + 1 if match else 1
        return None, [CorpusProblem(origin, line, f"front matter is not valid TOML: {error}")]
    source_line = next((i + 1 for i in range(1, end) if lines[i].lstrip().startswith("source")), 1)
    source = meta.get("source")
    if not isinstance(source, str) or not source.strip():
        return None, [CorpusProblem(origin, 1, 'front matter needs source = "<citation key or doi:...>"')]
    summary = Summary(origin=origin, source=source.strip(), line=source_line)
    for key in _FRONT_MATTER_TEXT[1:]:
        value = meta.get(key)
        if value is not None:
            summary.facts[key] = str(value).strip()
    tags = meta.get("tags", [])
    summary.tags = tuple(str(t) for t in tags) if isinstance(tags, list) else ()
    notes = meta.get("verification_notes", {})
    summary.verification_notes = {str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {}
    level = meta.get("evidence_level")
    summary.evidence_level = level if isinstance(level, int) else None
    added = meta.get("added")
    if added is not None:
        # A TOML date (added = 2025-03-01) or the same as a string: the day the curator added the
        # work, which the search feeds sort by.
        if isinstance(added, datetime.datetime):
            added = added.date()
        text = added.isoformat() if isinstance(added, datetime.date) else str(added).strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            summary.facts["added"] = text
        else:
            problems.append(CorpusProblem(origin, source_line, f"added {added!r} is not a date: "
                                          "write added = YYYY-MM-DD", "warning"))
    known = {*_FRONT_MATTER_TEXT, "tags", "verification_notes", "evidence_level", "added"}
    for key in sorted(set(meta) - known):
        problems.append(CorpusProblem(origin, source_line, f"unknown front matter key {key!r} "
                                      f"(known: {', '.join(sorted(known))})", "warning"))
    _parse_body(lines, end + 1, summary, problems)
    return summary, problems


def _parse_body(lines: list[str], start: int, summary: Summary, problems: list[CorpusProblem]) -> None:
    section = ""
    paragraph: list[str] = []
    counters = dict.fromkeys(CLAIM_SECTIONS.values(), 0)

    def flush() -> None:
        if paragraph:
            summary.paragraphs.append(" ".join(paragraph))
            paragraph.clear()

    for number in range(start, len(lines)):
        line = lines[number]
        line_no = number + 1
        heading = re.match(r"^#{1,6}\s+(.*\S)\s*$", line)
        if heading:
            flush()
            section = heading.group(1).strip().lower()
            continue
        if section in CLAIM_SECTIONS:
            if not line.strip():
                continue
            item = _ITEM.match(line)
            if not item:
                problems.append(CorpusProblem(summary.origin, line_no,
                                              f"under '## {section}' every line is a list item '- ...'"))
                continue
            name = CLAIM_SECTIONS[section]
            counters[name] += 1
            parsed = _parse_item(item.group(1), name, counters[name], line_no, summary.origin, problems)
            if parsed:
                summary.items.append(parsed)
        elif section == "":
            if line.strip():
                paragraph.append(line.strip())
            else:
                flush()
        # other sections (notes for curators) are kept out of the index on purpose
    flush()


def _parse_item(text: str, section: str, index: int, line: int, origin: str,
                problems: list[CorpusProblem]) -> SummaryItem | None:
    stance: str | None = "supports"
    confirmed = True
    marks = _MARKS.match(text)
    if marks:
        text = text[marks.end():]
        for mark in filter(None, (m.strip().lower() for m in marks.group(1).split(","))):
            if mark in STANCES:
                stance = mark
            elif mark == "unverified":
                confirmed = False
            elif mark == "none":
                stance = None
            else:
                problems.append(CorpusProblem(origin, line, f"unknown mark [{mark}]: use "
                                              f"{', '.join(STANCES)}, none or unverified"))
    add: list[str] = []
    remove: list[str] = []
    edits = _TAG_EDITS.search(text)
    if edits:
        text = text[:edits.start()]
        for token in edits.group(1).split():
            if token.startswith("+"):
                add.append(token[1:])
            elif token.startswith("-"):
                remove.append(token[1:])
            else:
                problems.append(CorpusProblem(origin, line, f"tag edit {token!r} must start with + or -"))
    text = text.strip()
    if not text:
        problems.append(CorpusProblem(origin, line, "empty claim"))
        return None
    return SummaryItem(section, index, text, stance, confirmed, tuple(add), tuple(remove), line)
