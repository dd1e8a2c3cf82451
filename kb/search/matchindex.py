"""The matcher's indexes in a build folder: BM25 over claims and over sources, and (optionally)
their sentence embeddings. Written at build time beside the Whoosh indexes, loaded on first use.

Claims are indexed with their source's title: a sentence of an abstract rarely repeats the
subject its title names, and on SciFact the title lifts claim-level nDCG@10 from 0.58 to 0.65.
Sources are indexed on title, abstract and summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from kb.models import Claim, Source
from kb.search import MatchSignals, Ranked
from kb.search import semantic as semantic_module
from kb.search.lexical import ImpactIndex, top
from kb.store import claim_ids, claim_source_ids

EXPANSION_WEIGHT = 0.6  # a synonym's word counts this much of a word the sentence has (as in search)
CLAIMS_FILE = "match-claims.npz"
SOURCES_FILE = "match-sources.npz"


def claim_text(claim: Claim, source: Source | None) -> str:
    """What the claim index reads for a claim: its text, then its source's title."""
    return f"{claim.text}\n{source.title}" if source is not None else claim.text


def source_text(source: Source) -> str:
    """What the source index reads for a source: title, abstract and summary."""
    return "\n".join(filter(None, (source.title, source.abstract, source.summary)))


def write_lexical(build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim]) -> None:
    """Write the BM25 indexes of claims and sources into *build_dir*."""
    by_id = {source.id: source for source in sources}
    ImpactIndex.build(claim_text(c, by_id.get(c.source_id)) for c in claims).save(build_dir / CLAIMS_FILE)
    ImpactIndex.build(source_text(s) for s in sources).save(build_dir / SOURCES_FILE)


def write_semantic(build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim],
                   progress: Callable[[int], None] | None = None) -> None:
    """Write the sentence embeddings of claims and sources into *build_dir*.

    Without the encoder's files (a trimmed install) nothing is written and the build is
    lexical, as with KB_SEMANTIC=0.
    """
    if not semantic_module.available():
        return
    by_id = {source.id: source for source in sources}
    semantic_module.write(build_dir, [claim_text(c, by_id.get(c.source_id)) for c in claims],
                          [source_text(s) for s in sources], progress)


class MatchIndex:
    """Scores a sentence against every claim and source of one build; thread-safe once loaded."""

    def __init__(self, build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim]) -> None:
        self.source_ids = [s.id for s in sources]
        self.claim_ids = claim_ids(claims)  # from the store's index: the claims are not read
        position = {sid: n for n, sid in enumerate(self.source_ids)}
        self.claim_source = np.asarray([position.get(sid, -1) for sid in claim_source_ids(claims)],
                                       dtype=np.int64)
        # Claims grouped by source (stable), so a source's best claim is one reduceat away.
        self._grouped = np.argsort(self.claim_source, kind="stable")
        grouped_sources = self.claim_source[self._grouped]
        self._group_starts = np.flatnonzero(np.r_[True, grouped_sources[1:] != grouped_sources[:-1]]) \
            if len(grouped_sources) else np.zeros(0, dtype=np.int64)
        self._group_source = grouped_sources[self._group_starts] if len(grouped_sources) else \
            np.zeros(0, dtype=np.int64)
        started = time.perf_counter()
        if (build_dir / CLAIMS_FILE).is_file() and (build_dir / SOURCES_FILE).is_file():
            self.claims = ImpactIndex.load(build_dir / CLAIMS_FILE)
            self.sources = ImpactIndex.load(build_dir / SOURCES_FILE)
        else:  # a build from before these files existed: index in memory (seconds, not minutes)
            by_id = {s.id: s for s in sources}
            self.claims = ImpactIndex.build(claim_text(c, by_id.get(c.source_id)) for c in claims)
            self.sources = ImpactIndex.build(source_text(s) for s in sources)
        if self.claims.size != len(claims) or self.sources.size != len(sources):
            raise RuntimeError("matching index and store disagree; rebuild with: kb build")
        self.vectors: tuple[np.ndarray, np.ndarray] | None = None
        if semantic_module.has_vectors(build_dir) and semantic_module.available():
            self.vectors = semantic_module.load(build_dir)
            if self.vectors[0].shape[0] != len(claims) or self.vectors[1].shape[0] != len(sources):
                raise RuntimeError("embeddings and store disagree; rebuild with: kb build")
        self.load_seconds = time.perf_counter() - started

    def best_per_source(self, claim_scores: np.ndarray) -> np.ndarray:
        """Each source's best claim score (0 for a source without claims)."""
        best = np.zeros(len(self.source_ids), dtype=np.float32)
        if len(self._group_starts):
            pooled = np.maximum.reduceat(claim_scores[self._grouped], self._group_starts)
            valid = self._group_source >= 0
            best[self._group_source[valid]] = pooled[valid]
        return best

    def signals(self, text: str, claim_limit: int, source_limit: int,
                sources: Sequence[str] = (), semantic: bool = True,
                expansions: Sequence[str] = ()) -> MatchSignals:
        """Top claims and sources for *text* by BM25 and, when embeddings exist, by cosine."""
        allowed_sources: list[int] | None = None
        allowed_claims: list[int] | None = None
        if sources:
            wanted = set(sources)
            allowed_sources = [n for n, sid in enumerate(self.source_ids) if sid in wanted]
            mask = np.isin(self.claim_source, np.asarray(allowed_sources, dtype=np.int64))
            allowed_claims = np.flatnonzero(mask).tolist()
        claim_weights = _with_expansions(self.claims, text, expansions)
        source_weights = _with_expansions(self.sources, text, expansions)
        claim_scores = self.claims.score(claim_weights)
        ranked: dict[str, Ranked] = {
            "claims": self._ranked(top(claim_scores, claim_limit, allowed_claims), self.claim_ids),
            "sources": self._ranked(top(self.sources.score(source_weights), source_limit,
                                        allowed_sources), self.source_ids),
            "best_claims": self._ranked(top(self.best_per_source(claim_scores), source_limit,
                                            allowed_sources), self.source_ids),
        }
        if semantic and self.vectors is not None and text.strip():
            query = semantic_module.encode([text])[0]
            claim_vectors, source_vectors = self.vectors
            cosines = _cosine(claim_vectors, query)
            ranked["claims_semantic"] = self._ranked(top(cosines, claim_limit, allowed_claims),
                                                     self.claim_ids)
            ranked["sources_semantic"] = self._ranked(
                top(_cosine(source_vectors, query), source_limit, allowed_sources), self.source_ids)
            ranked["best_claims_semantic"] = self._ranked(
                top(self.best_per_source(cosines), source_limit, allowed_sources), self.source_ids)
        return MatchSignals(**ranked, terms=tuple(sorted(set(claim_weights) | set(source_weights))))

    @staticmethod
    def _ranked(hits: list[tuple[int, float]], ids: list[str]) -> Ranked:
        return tuple([(ids[n], score) for n, score in hits])


def _with_expansions(index: ImpactIndex, text: str, expansions: Sequence[str]) -> dict[str, float]:
    """Query term weights: the sentence's words by count, synonyms' other words at a discount."""
    weights: dict[str, float] = dict(index.query_terms(text))
    for phrase in expansions:
        for word in index.query_terms(phrase):
            if word not in weights:
                weights[word] = EXPANSION_WEIGHT
    return weights


def _cosine(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit rows with a unit query, clipped at 0 (unrelated is unrelated)."""
    return np.maximum(vectors @ query, 0.0).astype(np.float32)
