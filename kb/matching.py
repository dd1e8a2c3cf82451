"""Claim -> evidence matching: the one matcher behind search-by-sentence, the article checker and
the retrieval benchmark.

Given a sentence, it ranks claims (each with its source) and sources (a source's score fuses its
best claims with its title, abstract and summary).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kb.models import Claim, Source
from kb.query import EngineQuery

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase

_WORD = re.compile(r"[^\W_]+(?:[.\-][^\W_]+)*")
_OPERATORS = {"and", "or", "not", "to"}


def as_query_text(sentence: str) -> str:
    """Free text made safe to run as a query: words and numbers only, no query syntax.

    >>> as_query_text('Ketamine (0.5 mg/kg) AND "esketamine" reduce SI?')
    'Ketamine 0.5 mg kg esketamine reduce SI'
    """
    return " ".join(w for w in _WORD.findall(sentence) if w.lower() not in _OPERATORS)


@dataclass(frozen=True, slots=True)
class ClaimMatch:
    """A claim that may back a sentence, with its source and the terms they share."""

    claim: Claim
    source: Source
    score: float
    shared_terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceMatch:
    """A source ranked for a sentence, with the claims that earned its score."""

    source: Source
    score: float
    claims: tuple[ClaimMatch, ...]


class Matcher:
    """Ranks a knowledge base's claims and sources for a free-text sentence."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def match_claims(self, sentence: str, limit: int = 10,
                     sources: Sequence[str] = ()) -> list[ClaimMatch]:
        """The claims most likely to back *sentence*, best first."""
        text = as_query_text(sentence)
        if not text:
            return []
        vocab = self.kb.vocabulary
        expansions = tuple((t.id, tuple(vocab.phrases(t.id))) for t in
                           {term.id: term for term, _, _ in vocab.find(sentence)}.values())
        result = self.kb.engine.search_claims(EngineQuery(text=text, expansions=expansions,
                                                          sources=tuple(sources), limit=limit,
                                                          facets=False))
        mine = {t for ids in vocab.match(sentence).values() for t in ids}
        matches = []
        for hit in result.hits:
            claim = self.kb.store.claim_by_id[hit.id]
            tags = {t for ids in claim.tags.values() for t in ids}
            matches.append(ClaimMatch(claim, self.kb.store.source_by_id[claim.source_id], hit.score,
                                      tuple(sorted(mine & tags))))
        return matches

    def match_sources(self, sentence: str, limit: int = 10) -> list[SourceMatch]:
        """The sources most likely to back *sentence*: best claim score plus source text score."""
        claims = self.match_claims(sentence, limit=max(limit * 5, 50))
        by_source: dict[str, list[ClaimMatch]] = {}
        for match in claims:
            by_source.setdefault(match.source.id, []).append(match)
        text = as_query_text(sentence)
        source_scores: dict[str, float] = {}
        if text:
            result = self.kb.engine.search_sources(EngineQuery(text=text, limit=max(limit * 5, 50),
                                                               facets=False))
            source_scores = {hit.id: hit.score for hit in result.hits}
        best_claim = max((m.score for m in claims), default=1.0) or 1.0
        best_source = max(source_scores.values(), default=1.0) or 1.0
        fused: dict[str, float] = {}
        for source_id in set(by_source) | set(source_scores):
            claim_part = max((m.score for m in by_source.get(source_id, [])), default=0.0) / best_claim
            source_part = source_scores.get(source_id, 0.0) / best_source
            fused[source_id] = 0.5 * claim_part + 0.5 * source_part
        ranked = sorted(fused.items(), key=lambda kv: -kv[1])[:limit]
        return [SourceMatch(self.kb.store.source_by_id[sid], round(score, 4),
                            tuple(by_source.get(sid, ()))) for sid, score in ranked]
