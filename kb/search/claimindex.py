"""Arrays for searching claims at scale: BM25F impacts per field, and per-claim columns.

Whoosh is pure Python and scores every match of a query one by one: a claim-sentence query
matches most of a large knowledge base, so at a few hundred thousand claims a search took
seconds, and block-quality pruning did not help (measured: no faster at 45,000 claims). These
arrays, written at build time beside the Whoosh index, answer the same query with a handful of
numpy operations over postings:

- three impact indexes (``kb.search.lexical``), one per field of the claim documents Whoosh
  holds: the claim text; its source's title, indexed once per source; and the labels and
  synonyms of its tags, indexed once per distinct tag set. Titles and tag sets count as often as
  the claims that carry them, so document frequencies and lengths are the claims' own;
- per-claim columns for filters, facets and the evidence prior: source, evidence level, year,
  stance, retraction, and every tag (the claim's own, for facets; with ancestors, for filters),
  stored grouped by tag so a filter or a facet count is one slice and one ``bincount``.

The engine (``whoosh_engine``) decides which path a search takes; Whoosh still expands prefixes
and typos against its word lists, finds quoted phrases by position and spells suggestions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kb.models import TAG_KINDS, Claim, Source
from kb.search.lexical import ImpactIndex
from kb.search.weights import UNRANKED_LEVEL
from kb.vocabulary import Vocabulary

TEXT_FILE = "search-text.npz"
TITLES_FILE = "search-titles.npz"
TAGS_FILE = "search-tags.npz"
COLUMNS_FILE = "search-claims.npz"
FILES = (TEXT_FILE, TITLES_FILE, TAGS_FILE, COLUMNS_FILE)
STANCES = ("none", "supports", "limits", "contradicts")

Ints = npt.NDArray[np.int32]
Floats = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]


def terms_text(tags: dict[str, tuple[str, ...]], vocabulary: Vocabulary) -> str:
    """The words a claim's tags add to its document: every label and synonym of every tag."""
    return " ; ".join(p for ids in tags.values() for tid in ids for p in vocabulary.phrases(tid))


def _grouped(pairs: list[tuple[int, int]], codes: int) -> tuple[Ints, npt.NDArray[np.int64]]:
    """(claims, starts): the claims of code c are claims[starts[c]:starts[c + 1]], in order."""
    if not pairs:
        return np.zeros(0, dtype=np.int32), np.zeros(codes + 1, dtype=np.int64)
    array = np.asarray(pairs, dtype=np.int64)
    order = np.lexsort((array[:, 0], array[:, 1]))
    array = array[order]
    starts = np.searchsorted(array[:, 1], np.arange(codes + 1)).astype(np.int64)
    return array[:, 0].astype(np.int32), starts


def write(build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim],
          vocabulary: Vocabulary) -> None:
    """Write the claim search's arrays for *claims* (in the store's order) into *build_dir*."""
    position = {source.id: n for n, source in enumerate(sources)}
    claim_source = np.asarray([position[c.source_id] for c in claims], dtype=np.int32)
    per_source = np.bincount(claim_source, minlength=len(sources)) if len(claims) else \
        np.zeros(len(sources), dtype=np.int64)
    # Whoosh's idf (classic), so the arrays rank as the Whoosh path does.
    ImpactIndex.build((c.text for c in claims), idf="classic").save(build_dir / TEXT_FILE)
    ImpactIndex.build((s.title for s in sources), multiplicity=per_source.tolist(), idf="classic"
                      ).save(build_dir / TITLES_FILE)
    signature: dict[tuple[tuple[str, tuple[str, ...]], ...], int] = {}
    claim_tags = np.empty(len(claims), dtype=np.int32)
    for number, claim in enumerate(claims):
        key = tuple(sorted(claim.tags.items()))
        claim_tags[number] = signature.setdefault(key, len(signature))
    tag_sets = list(signature)
    counts = np.bincount(claim_tags, minlength=len(tag_sets)) if len(claims) else \
        np.zeros(0, dtype=np.int64)
    ImpactIndex.build((terms_text(dict(key), vocabulary) for key in tag_sets),
                      multiplicity=[int(c) for c in counts], idf="classic").save(build_dir / TAGS_FILE)
    columns: dict[str, npt.NDArray[np.generic]] = {
        "claim_source": claim_source, "claim_tags": claim_tags,
        "level": np.asarray([s.evidence_level or UNRANKED_LEVEL for s in sources], dtype=np.int8),
        "year": np.asarray([s.year or 0 for s in sources], dtype=np.int16),
        "retracted": np.asarray([bool(s.retracted) for s in sources], dtype=np.bool_),
        "stance": np.asarray([STANCES.index(c.stance) if c.stance in STANCES else 0
                              for c in claims], dtype=np.int8),
    }
    ancestors: dict[str, tuple[str, ...]] = {}
    for kind in TAG_KINDS:
        own: dict[str, int] = {}
        every: dict[str, int] = {}
        own_pairs: list[tuple[int, int]] = []
        every_pairs: list[tuple[int, int]] = []
        for number, claim in enumerate(claims):
            ids = claim.tags.get(kind, ())
            found: set[str] = set()
            for term_id in ids:
                own_pairs.append((number, own.setdefault(term_id, len(own))))
                if term_id not in ancestors:
                    ancestors[term_id] = (term_id, *sorted(vocabulary.ancestors(term_id)))
                found.update(ancestors[term_id])
            every_pairs.extend((number, every.setdefault(t, len(every))) for t in sorted(found))
        for name, codes, pairs in (("own", own, own_pairs), ("all", every, every_pairs)):
            docs, starts = _grouped(pairs, len(codes))
            columns[f"{name}_{kind}_ids"] = np.asarray(list(codes), dtype=np.str_)
            columns[f"{name}_{kind}_docs"] = docs
            columns[f"{name}_{kind}_starts"] = starts
    with (build_dir / COLUMNS_FILE).open("wb") as handle:
        np.savez(handle, **columns)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class TagColumn:
    """One tag kind over all claims: the claims of ids[c] are docs[starts[c]:starts[c + 1]]."""

    ids: list[str]
    code: dict[str, int]
    docs: Ints
    starts: npt.NDArray[np.int64]
    codes: Ints  # the tag code of each entry of docs

    def claims(self, term_id: str) -> Ints:
        code = self.code.get(term_id)
        if code is None:
            return np.zeros(0, dtype=np.int32)
        return self.docs[self.starts[code]:self.starts[code + 1]]

    def counts(self, matched: Mask) -> dict[str, int]:
        """How many matched claims carry each tag (tags no matched claim carries left out)."""
        if not len(self.docs):
            return {}
        counted = np.bincount(self.codes[matched[self.docs]], minlength=len(self.ids))
        return {self.ids[c]: int(counted[c]) for c in np.flatnonzero(counted)}


class ClaimIndex:
    """The loaded arrays; read-only, so one instance is safe to share between threads."""

    def __init__(self, build_dir: Path) -> None:
        self.text = ImpactIndex.load(build_dir / TEXT_FILE)
        self.titles = ImpactIndex.load(build_dir / TITLES_FILE)
        self.tags = ImpactIndex.load(build_dir / TAGS_FILE)
        with np.load(build_dir / COLUMNS_FILE, allow_pickle=False) as data:
            self.claim_source: Ints = data["claim_source"]
            self.claim_tags: Ints = data["claim_tags"]
            self.source_level = data["level"]
            self.source_year = data["year"]
            self.source_retracted = data["retracted"]
            self.stance = data["stance"]
            self.own: dict[str, TagColumn] = {}
            self.every: dict[str, TagColumn] = {}
            for kind in TAG_KINDS:
                for name, target in (("own", self.own), ("all", self.every)):
                    ids = data[f"{name}_{kind}_ids"].tolist()
                    starts = data[f"{name}_{kind}_starts"]
                    codes = np.repeat(np.arange(len(ids), dtype=np.int32), np.diff(starts))
                    target[kind] = TagColumn(ids, {t: n for n, t in enumerate(ids)},
                                             data[f"{name}_{kind}_docs"], starts, codes)
        self.size = len(self.claim_source)
        self.level = self.source_level[self.claim_source] if self.size else np.zeros(0, np.int8)
        self.year = self.source_year[self.claim_source] if self.size else np.zeros(0, np.int16)
        if self.text.size != self.size:
            raise RuntimeError("claim search arrays and store disagree; rebuild with: kb build")
        # Each field's index, and how its documents map to claims (None: one document per claim;
        # titles are per source, tag words per distinct tag set).
        self._fields: tuple[tuple[str, ImpactIndex, Ints | None], ...] = (
            ("text", self.text, None), ("title", self.titles, self.claim_source),
            ("terms", self.tags, self.claim_tags))

    # --- the word part of a query: scores and match masks ---------------------------------

    def word_scores(self, words: Sequence[str], boosts: dict[str, float]
                    ) -> tuple[Floats, npt.NDArray[np.int32]]:
        """Summed field-weighted BM25 of *words* (alternatives) per claim, and how many
        (word, field) pairs each claim matched, for coordination."""
        score = np.zeros(self.size, dtype=np.float32)
        matched = np.zeros(self.size, dtype=np.int32)
        for field_name, index, lift in self._fields:
            boost = boosts.get(field_name, 0.0)
            if not boost:
                continue
            docs: list[Ints] = []
            impacts: list[Floats] = []
            for word in words:
                found, weight = index.postings(word)
                if len(found):
                    docs.append(found)
                    impacts.append(weight)
            if not docs:
                continue
            every = np.concatenate(docs)
            part = np.bincount(every, weights=np.concatenate(impacts), minlength=index.size)
            hits = np.bincount(every, minlength=index.size)
            if lift is not None:
                part, hits = part[lift], hits[lift]
            score += (boost * part).astype(np.float32)
            matched += hits.astype(np.int32)
        return score, matched

    def all_words(self, words: Sequence[str], boosts: dict[str, float]) -> Floats:
        """Field-weighted BM25 of claims that hold every one of *words* in one field (0 elsewhere);
        a field's best, as Whoosh scores a phrase in one of several fields."""
        best = np.zeros(self.size, dtype=np.float32)
        for field_name, index, lift in self._fields:
            boost = boosts.get(field_name, 0.0)
            if not boost or not words:
                continue
            part = np.zeros(index.size, dtype=np.float64)
            have = np.ones(index.size, dtype=np.bool_)
            for word in words:
                found, weight = index.postings(word)
                present = np.zeros(index.size, dtype=np.bool_)
                present[found] = True
                have &= present
                part += np.bincount(found, weights=weight, minlength=index.size)
                if not have.any():
                    break
            part = np.where(have, part, 0.0)
            if lift is not None:
                part = part[lift]
            np.maximum(best, (boost * part).astype(np.float32), out=best)
        return best

    def with_tag(self, term_id: str) -> Ints:
        """Claims tagged *term_id* or a narrower term, of any kind."""
        parts = [column.claims(term_id) for column in self.every.values()]
        parts = [p for p in parts if len(p)]
        if not parts:
            return np.zeros(0, dtype=np.int32)
        return parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))

    def tag_idf(self, claims: int) -> float:
        """The (classic) idf of a tag that *claims* claims carry, as Whoosh weighs it."""
        return float(1.0 + np.log(self.size / (claims + 1.0))) if self.size else 0.0

