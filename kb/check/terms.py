"""Vocabulary mentions of a sentence, found once and shared by the checker's steps.

Matching every term's pattern is the costliest text work per sentence, and the worthiness rules,
the sentence profile and the reasons all need it; a small cache keyed by the vocabulary object
and the text makes it one pass per sentence.
"""

from __future__ import annotations

from functools import lru_cache

from kb.models import Term
from kb.vocabulary import Vocabulary


@lru_cache(maxsize=4096)
def mentions(vocabulary: Vocabulary, text: str) -> tuple[tuple[Term, int, int], ...]:
    """Every (term, start, end) mention in *text*, as ``Vocabulary.find`` yields them."""
    return tuple(vocabulary.find(text))


def most_specific(vocabulary: Vocabulary, text: str) -> frozenset[str]:
    """The ids of the terms *text* mentions, the most specific only (as ``Vocabulary.match``)."""
    found = {term.id for term, _, _ in mentions(vocabulary, text)}
    implied: set[str] = set()
    for term_id in found:
        implied |= vocabulary.ancestors(term_id)
    return frozenset(found - implied)


def masked(vocabulary: Vocabulary, text: str) -> str:
    """*text* with its vocabulary mentions blanked out (same length, so offsets hold)."""
    chars = list(text)
    for _, start, end in mentions(vocabulary, text):
        chars[start:end] = " " * (end - start)
    return "".join(chars)
