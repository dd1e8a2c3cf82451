"""SciFact-style corpus (JSON Lines: ``doc_id``, ``title``, ``abstract`` as a list of sentences,
``structured``): one Source per line, with id ``scifact-<doc_id>``.

The id keeps the benchmark's ``doc_id`` recoverable, so an evaluation can map search results
back to its relevance judgements. A structured abstract's sentences start with their section
label ("RESULTS In 30 obese subjects ..."); the label is lifted into ``abstract_sections``.
SciFact lines carry no authors, year, venue or identifiers, so none are set or verified.
The text is read line by line, so memory stays bounded by the longest line.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kb.ingest import ParseResult
from kb.ingest.common import clean, iter_lines, join_sections, load_json, problem, sections_from_sentences
from kb.models import CorpusProblem, Provenance, Source

ID_PREFIX = "scifact-"


def parse(text: str, origin: str) -> ParseResult:
    """Parse SciFact corpus.jsonl text; a bad line is reported with its number and skipped."""
    result = ParseResult()
    seen: set[str] = set()
    for number, line in enumerate(iter_lines(text.lstrip("\ufeff")), start=1):
        if not line.strip():
            continue
        provenance = Provenance(origin, number)
        try:
            record = load_json(line)
        except json.JSONDecodeError as error:
            result.problems.append(problem(provenance, f"malformed JSON line ({error.msg}); skipped"))
            continue
        source, problems = source_from_line(record, provenance)
        result.problems.extend(problems)
        if source is None:
            continue
        if source.id in seen:
            result.problems.append(problem(provenance, f"doc_id {source.id[len(ID_PREFIX):]} "
                                           "appears twice; the later line is skipped", "warning"))
            continue
        seen.add(source.id)
        result.sources.append(source)
        result.raw[source.id] = line.rstrip("\r\n") + "\n"
    if not result.sources and not result.problems:
        result.problems.append(CorpusProblem(origin, None, "no SciFact record found"))
    return result


def source_from_line(record: Any, provenance: Provenance
                     ) -> tuple[Source | None, list[CorpusProblem]]:
    """Build a Source from one decoded corpus line, or report what is missing."""
    if not isinstance(record, dict):
        return None, [problem(provenance, "line is not a JSON object; skipped")]
    doc_id = record.get("doc_id")
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses; and at most 20 of
    # them, so the id stays a short file name.
    if isinstance(doc_id, bool) or not isinstance(doc_id, int | str) or \
            not re.fullmatch(r"[0-9]{1,20}", str(doc_id).strip()):
        return None, [problem(provenance, f"doc_id {str(doc_id)[:40]!r} is not a document "
                              "number (up to 20 digits); skipped")]
    title = clean(record.get("title"))
    if not title:
        return None, [problem(provenance, f"doc_id {doc_id} has no title; skipped")]
    sentences = record.get("abstract") or []
    if isinstance(sentences, str):
        sentences = [sentences]
    if not isinstance(sentences, list):
        return None, [problem(provenance, f"doc_id {doc_id}: abstract is not a list of "
                              "sentences; skipped")]
    structured = bool(record.get("structured"))
    # SciFact gives its sentences: keep them one a line (see sections_from_sentences).
    sections = sections_from_sentences((str(s) for s in sentences), structured, separator="\n")
    if not structured and sections:
        sections = (("", "\n".join(text for _, text in sections)),)
    return Source(
        id=f"{ID_PREFIX}{int(str(doc_id).strip())}",
        type="article",
        title=title,
        abstract=join_sections(sections),
        abstract_sections=sections,
        provenance=(provenance,),
    ), []
