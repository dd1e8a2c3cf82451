"""Sentence splitting with character offsets, shared by claim extraction and the article checker.

pysbd's rules handle abbreviations ("et al.", "Dr.", "vs.", "e.g."), decimals and symbols; it is
slow, so text with no possible boundary inside is returned whole without calling it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pysbd

# A full stop, question or exclamation mark followed by space and something that could start a
# sentence. Without one of these there is nothing for pysbd to split.
_POSSIBLE_BOUNDARY = re.compile(r"[.!?;][\"')\]\u201d\u2019]*\s+[\"'(\[\u201c\u2018]?[A-Z0-9]")


@dataclass(frozen=True, slots=True)
class Span:
    """A sentence and where it stands in the text it came from (``text[start:end]``)."""

    text: str
    start: int
    end: int


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False, char_span=False)


def split_sentences(text: str, offset: int = 0) -> list[Span]:
    """Split *text* into sentences, each with its offsets into *text* (plus *offset*).

    >>> [s.text for s in split_sentences("Berman et al. gave 0.5 mg/kg vs. saline. Mood improved.")]
    ['Berman et al. gave 0.5 mg/kg vs. saline.', 'Mood improved.']
    """
    stripped = text.strip()
    if not stripped:
        return []
    if not _POSSIBLE_BOUNDARY.search(stripped):
        start = text.index(stripped)
        return [Span(stripped, offset + start, offset + start + len(stripped))]
    spans: list[Span] = []
    cursor = 0
    for piece in _segmenter().segment(text):
        sentence = piece.strip()
        if not sentence:
            continue
        start = text.find(sentence, cursor)
        if start < 0:  # pysbd normalised something; fall back to the running cursor
            start = cursor
        end = start + len(sentence)
        spans.append(Span(text[start:end], offset + start, offset + end))
        cursor = end
    return spans


def split_lines_then_sentences(text: str) -> list[Span]:
    """Treat each line as a hard boundary, then split lines into sentences.

    Importers that know a source's sentence boundaries (SciFact gives them) write one sentence
    per line, so no splitter can second-guess them.
    """
    spans: list[Span] = []
    position = 0
    for line in text.split("\n"):
        spans.extend(split_sentences(line, offset=position))
        position += len(line) + 1
    return spans
