"""Claim -> evidence matching: the one matcher behind search-by-sentence, the article checker and
the retrieval benchmark.

Given a sentence, it ranks claims (each with its source) and sources. The engine scores the
sentence against every claim and every source (BM25 and, for a build with embeddings, cosine
similarity; see ``kb.search.MatchSignals``); the matcher fuses those signals:

* each signal keeps its best ``depth`` candidates, min-max normalised to 0..1 over them, so
  scores on different scales (BM25 is unbounded, cosines sit in a narrow band) can be added;
* a claim's score is its lexical score plus its weighted semantic score;
* a source's score adds its own text's scores (title, abstract, summary) to those of its best
  claim, each weighted as in ``Fusion``.

The weights were cross-validated on SciFact's training claims (``bench/scifact.py`` prints the
per-fold figures). They are few on purpose: a handful of weights generalises to new claims, a
tuned table of many would fit the training set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kb.models import Claim, Source
from kb.opened_build import OpenedBuild
from kb.search import MatchSignals, Ranked

_WORD = re.compile(r"[^\W_]+(?:[.\-][^\W_]+)*")
_OPERATORS = {"and", "or", "not", "to"}


def as_query_text(sentence: str) -> str:
    """Free text made safe to run as a query: words and numbers only, no query syntax.

    >>> as_query_text('Ketamine (0.5 mg/kg) AND "esketamine" reduce SI?')
    'Ketamine 0.5 mg kg esketamine reduce SI'
    """
    return " ".join(w for w in _WORD.findall(sentence) if w.lower() not in _OPERATORS)


@dataclass(frozen=True, slots=True)
class Fusion:
    """How the matcher weighs its signals. Lexical source text is the unit (weight 1)."""

    claim_lexical: float = 0.35  # the source's best claim (sentence + title), BM25
    source_semantic: float = 1.0  # the source's embedding, cosine
    claim_semantic: float = 0.5  # the source's best claim's embedding, cosine
    depth: int = 200  # candidate sources kept per signal
    claim_depth: int = 300  # candidate claims kept per signal (for the claims shown)
    claims_per_source: int = 3  # claims shown with each source


DEFAULT_FUSION = Fusion()
# For builds with embeddings: the weights 5-fold cross-validation on the SciFact train claims
# chose in 4 of 5 folds (bench/scifact.py --semantic --folds 5); lexical builds keep the above.
SEMANTIC_FUSION = Fusion(claim_lexical=0.2, source_semantic=0.5, claim_semantic=0.75)


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


def _normalised(ranked: Ranked) -> dict[str, float]:
    """Min-max over the candidates: the best gets 1, the last kept gets a small positive floor.

    The floor keeps "was a candidate" above "was not", whatever the candidate list's length.
    """
    if not ranked:
        return {}
    high, low = ranked[0][1], ranked[-1][1]
    span = high - low
    if span <= 0:
        return {key: 1.0 for key, _ in ranked}
    return {key: 0.05 + 0.95 * (score - low) / span for key, score in ranked}


def fuse_claims(signals: MatchSignals, fusion: Fusion = DEFAULT_FUSION) -> dict[str, float]:
    """Each candidate claim's fused score: lexical plus weighted semantic, both normalised."""
    scores = _normalised(signals.claims)
    if signals.claims_semantic:
        # The claim-level semantic weight relative to the claim-level lexical one.
        weight = fusion.claim_semantic / max(fusion.claim_lexical, 1e-9)
        for key, value in _normalised(signals.claims_semantic).items():
            scores[key] = scores.get(key, 0.0) + weight * value
    return scores


def fuse_sources(signals: MatchSignals, fusion: Fusion = DEFAULT_FUSION) -> dict[str, float]:
    """Each candidate source's fused score from its own text and its best claim."""
    fused = dict(_normalised(signals.sources))
    parts = ((signals.best_claims, fusion.claim_lexical),
             (signals.sources_semantic, fusion.source_semantic),
             (signals.best_claims_semantic, fusion.claim_semantic))
    for ranked, weight in parts:
        if not ranked or weight == 0:
            continue
        for key, value in _normalised(ranked).items():
            fused[key] = fused.get(key, 0.0) + weight * value
    return fused


def rank(scores: dict[str, float], limit: int) -> list[tuple[str, float]]:
    """The *limit* best (id, score) pairs; ties by id so results are stable between runs."""
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


class Matcher:
    """Ranks a build's claims and sources for a free-text sentence."""

    def __init__(self, build: OpenedBuild, fusion: Fusion = DEFAULT_FUSION,
                 semantic: bool = True) -> None:
        self.build = build
        self.fusion = fusion
        self.semantic = semantic  # use embeddings when the build has them

    def signals(self, sentence: str, sources: Sequence[str] = ()) -> MatchSignals:
        """What the engine's matching indexes say about *sentence* (see ``MatchSignals``)."""
        vocabulary = self.build.vocabulary
        found = {term.id for term, _, _ in vocabulary.find(sentence)}
        expansions = tuple(p for term_id in sorted(found) for p in vocabulary.phrases(term_id))
        return self.build.engine.match_signals(sentence, claim_limit=self.fusion.claim_depth,
                                            source_limit=self.fusion.depth,
                                            sources=tuple(sources), semantic=self.semantic,
                                            expansions=expansions)

    def _fusion_for(self, signals: MatchSignals) -> Fusion:
        """The weights for these signals: the semantic defaults when embeddings took part."""
        if self.fusion is DEFAULT_FUSION and (signals.sources_semantic or signals.claims_semantic):
            return SEMANTIC_FUSION
        return self.fusion

    def _claim_match(self, claim_id: str, score: float, mine: set[str]) -> ClaimMatch:
        claim = self.build.store.claim_by_id[claim_id]
        tags = {t for ids in claim.tags.values() for t in ids}
        return ClaimMatch(claim, self.build.store.source_by_id[claim.source_id], round(score, 4),
                          tuple(sorted(mine & tags)))

    def _vocabulary_terms(self, sentence: str) -> set[str]:
        return {t for ids in self.build.vocabulary.match(sentence).values() for t in ids}

    def match_claims(self, sentence: str, limit: int = 10,
                     sources: Sequence[str] = ()) -> list[ClaimMatch]:
        """The claims most likely to back *sentence*, best first (only of *sources*, if given)."""
        if not as_query_text(sentence):
            return []
        signals = self.signals(sentence, sources)
        scores = fuse_claims(signals, self._fusion_for(signals))
        mine = self._vocabulary_terms(sentence)
        return [self._claim_match(cid, score, mine) for cid, score in rank(scores, limit)]

    def match_sources(self, sentence: str, limit: int = 10) -> list[SourceMatch]:
        """The sources most likely to back *sentence*, each with its best-matching claims."""
        if not as_query_text(sentence):
            return []
        signals = self.signals(sentence)
        fusion = self._fusion_for(signals)
        ranked = rank(fuse_sources(signals, fusion), limit)
        wanted = {sid for sid, _ in ranked}
        claim_scores = fuse_claims(signals, fusion)
        per_source: dict[str, list[tuple[str, float]]] = {}
        for claim_id, score in rank(claim_scores, len(claim_scores)):
            source_id = self.build.store.claim_by_id[claim_id].source_id
            if source_id in wanted:
                kept = per_source.setdefault(source_id, [])
                if len(kept) < self.fusion.claims_per_source:
                    kept.append((claim_id, score))
        mine = self._vocabulary_terms(sentence)
        return [SourceMatch(self.build.store.source_by_id[sid], round(score, 4),
                            tuple(self._claim_match(cid, s, mine) for cid, s in per_source.get(sid, ())))
                for sid, score in ranked]


def matcher_for(build: OpenedBuild) -> Matcher:
    """The build's matcher, made on first use and shared by search and the checker."""
    return build.derived("matcher", lambda: Matcher(build))
