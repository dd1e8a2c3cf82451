"""Claim search over the build's arrays (``kb.search.claimindex``): cost bounded by postings.

The same query as the Whoosh path compiles (``WhooshEngine._text_query``), scored the same
way: BM25F over the claim text (x3), its source's title (x1) and its tags' labels (x1.2); a
vocabulary term in the query adds its tag (x2, then x0.6 as an expansion); alternatives are
coordinated as Whoosh's ``Or(scale=0.9)`` does (a claim matching more of the query's words gains
a little); ``+word`` is required and ``-word`` excluded. The evidence prior and the sort run over
arrays, the page is a partial sort of the matches, and facets are counted from the per-tag claim
lists of the matched claims: no per-match Python, so a search costs a few passes over arrays
of the claim count, not a scored loop over every match.

Whoosh still serves what it keeps that the arrays do not: prefix and typo expansion against its
word lists and positions for quoted phrases (the caller passes them in as *words*).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kb import grammar
from kb.errors import BadQuery
from kb.models import TAG_KINDS
from kb.query import EngineQuery
from kb.search.analysis import index_terms
from kb.search.claimindex import STANCES, ClaimIndex, Floats, Ints, Mask
from kb.search.weights import (
    CLAIM_FIELD_BOOSTS,
    COORDINATION_SCALE,
    EVIDENCE_PRIOR,
    EXPANSION_BOOST,
    SOURCE_REPEAT_DECAY,
    TAG_BOOST,
    TERM_EVIDENCE_PRIOR,
    TERM_TEXT_BOOST,
    TERM_TITLE_BOOST,
    UNRANKED_LEVEL,
    prior_array,
)

SPREAD_CANDIDATES = 400  # a one-term query spreads sources over this many best claims
COVERAGE_CANDIDATES = 50  # "weak match" is judged on this many best claims


@dataclass(frozen=True, slots=True)
class ArrayHit:
    docnum: int
    score: float
    stems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ArrayResult:
    total: int
    hits: tuple[ArrayHit, ...]
    facets: dict[str, dict[str, int]]
    years: dict[int, int]
    year_levels: dict[int, dict[int | None, int]]
    content_words: int
    best_coverage: int


# What the engine supplies: a prefix or fuzzy clause's index words (None: no word), and the
# claims in which a quoted phrase occurs, found by position.
Expand = Callable[[grammar.Clause], set[str] | None]
PhraseClaims = Callable[[str], Ints]
# The index words (text and title) of each claim at these positions, read in one go.
DocWords = Callable[[Sequence[int]], list[set[str]]]


def search(ix: ClaimIndex, q: EngineQuery, parsed: grammar.ParsedQuery, expand: Expand,
           phrase_claims: PhraseClaims, doc_words: DocWords, source_position: dict[str, int],
           one_term: bool) -> ArrayResult:
    """Rank, count and page the claims for *q*; raise BadQuery as the Whoosh path does."""
    filter_mask = _filters(ix, q, source_position)
    has_text = bool(parsed.clauses)
    if not has_text and filter_mask is None:
        raise BadQuery("Empty search: type some words or choose a filter, for example: ketamine")
    size = ix.size
    shown_stems: set[str] = set()
    clause_stems: list[frozenset[str]] = []
    if has_text:
        optional = np.zeros(size, dtype=np.float32)
        coordinated = np.zeros(size, dtype=np.int32)
        leaves = 0
        options = 0
        should_words: list[str] = []
        required: list[Floats] = []
        excluded = np.zeros(size, dtype=np.bool_)
        searchable = False
        for clause in parsed.clauses:
            resolved = _resolve(clause, expand)
            if resolved is None:
                continue
            how, words = resolved
            if clause.occur != "must_not":
                shown_stems.update(words)
                if clause.kind in ("word", "phrase"):
                    clause_stems.append(frozenset(words))
            if clause.occur == "should" and how == "any":
                should_words.extend(words)
                options += 1
                searchable = True
                continue
            if how == "any":
                score, _ = ix.word_scores(words, CLAIM_FIELD_BOOSTS)
            else:
                score = ix.all_words(words, CLAIM_FIELD_BOOSTS)
                if how == "phrase":
                    inside = np.zeros(size, dtype=np.bool_)
                    inside[phrase_claims(clause.text)] = True
                    score = np.where(inside, score, 0.0).astype(np.float32)
            if clause.occur == "must_not":
                excluded |= score > 0
            elif clause.occur == "must":
                required.append(score)
                searchable = True
            else:
                optional += score
                coordinated += (score > 0).astype(np.int32) * len(CLAIM_FIELD_BOOSTS)
                leaves += len(CLAIM_FIELD_BOOSTS)
                options += 1
                searchable = True
        if not searchable:
            raise BadQuery(f"Nothing searchable in {q.text!r}: use content words, for example: "
                           "ketamine")
        if should_words:
            score, leaves_matched = ix.word_scores(list(dict.fromkeys(should_words)), CLAIM_FIELD_BOOSTS)
            optional += score
            coordinated += leaves_matched
            leaves += len(CLAIM_FIELD_BOOSTS) * len(set(should_words))
        tagged: list[Ints] = []
        for term_id, phrases in q.expansions:
            with_tag = ix.with_tag(term_id)
            tagged.append(with_tag)
            extra = np.zeros(size, dtype=np.float32)
            extra[with_tag] = TAG_BOOST * ix.tag_idf(len(with_tag))
            if one_term:
                for name, boost in (("text", TERM_TEXT_BOOST), ("title", TERM_TITLE_BOOST)):
                    strongest = np.zeros(size, dtype=np.float32)
                    for phrase in phrases:
                        words = index_terms(phrase)
                        if words:
                            np.maximum(strongest, ix.all_words(words, {name: boost / EXPANSION_BOOST}),
                                       out=strongest)
                    extra += strongest
            optional += EXPANSION_BOOST * extra
            coordinated += (extra > 0).astype(np.int32)
            leaves += len(TAG_KINDS)
            options += 1
        if options > 1 and leaves > 1:
            # Whoosh's Or(scale=0.9): each matched leaf beyond the first adds 1/(T - 0.9)^2.
            bonus = np.maximum(coordinated - 1, 0) / (leaves - COORDINATION_SCALE) ** 2
            optional = np.where(optional > 0, (optional + bonus) * (leaves - 1) / leaves,
                                0.0).astype(np.float32)
        if required:
            matched = np.logical_and.reduce([score > 0 for score in required])
            scores = np.sum(required, axis=0) + optional
            scores = np.where(matched, scores, 0.0).astype(np.float32)
        else:
            matched = optional > 0
            scores = optional
        matched &= ~excluded
    else:
        matched = np.ones(size, dtype=np.bool_)
        scores = np.zeros(size, dtype=np.float32)
        tagged = []
    if filter_mask is not None:
        matched &= filter_mask
    candidates = np.flatnonzero(matched).astype(np.int64)
    if has_text and q.sort == "relevance":
        scores = scores * prior_array(ix.level, TERM_EVIDENCE_PRIOR if one_term else EVIDENCE_PRIOR)
    wanted = q.offset + q.limit
    ordered = _order(ix, candidates, scores, q.sort, has_text,
                     max(wanted, SPREAD_CANDIDATES) if one_term else wanted)
    values = scores[ordered].astype(np.float64) if len(ordered) else np.zeros(0)
    if one_term and has_text and q.sort == "relevance" and len(ordered):
        values, ordered = _spread(values, ordered, ix.claim_source)
    page = list(zip(ordered[q.offset:wanted].tolist(), values[q.offset:wanted].tolist(), strict=True))
    page_words = doc_words([d for d, _ in page])
    hits = tuple(ArrayHit(d, v, tuple(sorted(shown_stems & words)))
                 for (d, v), words in zip(page, page_words, strict=True))
    facets: dict[str, dict[str, int]] = {}
    years: dict[int, int] = {}
    year_levels: dict[int, dict[int | None, int]] = {}
    if q.facets and len(candidates):
        for kind in TAG_KINDS:
            counts = ix.own[kind].counts(matched)
            if counts:
                facets[kind] = counts
        year = ix.year[candidates].astype(np.int64)
        level = ix.level[candidates].astype(np.int64)
        dated = year > 0
        key = np.bincount(year[dated] * 16 + level[dated])
        for code in np.flatnonzero(key).tolist():
            y, lv = divmod(code, 16)
            years[y] = years.get(y, 0) + int(key[code])
            year_levels.setdefault(y, {})[None if lv == UNRANKED_LEVEL else lv] = int(key[code])
    best = _coverage(clause_stems, ordered[:COVERAGE_CANDIDATES], tagged, q.expansions, doc_words) \
        if clause_stems else 0
    return ArrayResult(total=len(candidates), hits=hits, facets=facets, years=years,
                       year_levels=year_levels, content_words=len(clause_stems), best_coverage=best)


def _resolve(clause: grammar.Clause, expand: Expand) -> tuple[str, list[str]] | None:
    """("any", words): one of them; ("all", words): all in one field; ("phrase", words)."""
    if clause.kind in ("word", "phrase"):
        words = index_terms(clause.text)
        if not words:
            return None
        if len(words) == 1:
            return "any", words
        return ("phrase" if clause.kind == "phrase" else "all"), words
    found = expand(clause)
    if found is None:
        return None
    before = index_terms(clause.text)[:-1]  # "nmda-rec*": the words before the prefix
    return "any", sorted(found) + before


def _filters(ix: ClaimIndex, q: EngineQuery, source_position: dict[str, int]) -> Mask | None:
    masks: list[Mask] = []
    for kind, ids in q.filters.items():
        if ids and kind in ix.every:
            mask = np.zeros(ix.size, dtype=np.bool_)
            for term_id in ids:
                mask[ix.every[kind].claims(term_id)] = True
            masks.append(mask)
    if q.sources:
        allowed = np.zeros(len(ix.source_level), dtype=np.bool_)
        allowed[[source_position[s] for s in q.sources if s in source_position]] = True
        masks.append(allowed[ix.claim_source])
    if q.stance:
        codes = [STANCES.index(s) for s in q.stance if s in STANCES]
        masks.append(np.isin(ix.stance, np.asarray(codes, dtype=np.int8)))
    if q.year_from is not None:
        masks.append(ix.year >= q.year_from)
    if q.year_to is not None:
        masks.append(ix.year <= q.year_to)
    if q.exclude_retracted:
        masks.append(~ix.source_retracted[ix.claim_source])
    if not masks:
        return None
    return np.logical_and.reduce(masks)


def _order(ix: ClaimIndex, candidates: npt.NDArray[np.int64], scores: Floats, sort: str,
           has_text: bool, wanted: int) -> npt.NDArray[np.int64]:
    """The best *wanted* candidates in order; ties keep the store's order (strongest first)."""
    if not len(candidates) or wanted <= 0:
        return np.zeros(0, dtype=np.int64)
    score = scores[candidates].astype(np.float64)
    if sort == "evidence":
        keys: tuple[npt.NDArray[np.float64], ...] = (candidates.astype(np.float64), -score,
                                                     ix.level[candidates].astype(np.float64))
    elif sort in ("newest", "oldest"):
        year = ix.year[candidates].astype(np.float64)
        keys = (candidates.astype(np.float64), -score, -year if sort == "newest" else year)
    elif has_text:
        keys = (candidates.astype(np.float64), -score)
    else:
        return candidates[:wanted]
    if wanted < len(candidates):
        # Narrow by the first key to the candidates that can be in the page, then sort those.
        primary = keys[-1]
        cut = np.partition(primary, wanted - 1)[wanted - 1]
        keep = primary <= cut
        candidates = candidates[keep]
        keys = tuple(k[keep] for k in keys)
    ordered = candidates[np.lexsort(keys)]
    return ordered[:wanted]


def _spread(values: npt.NDArray[np.float64], ordered: npt.NDArray[np.int64], claim_sources: Ints
            ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Each further claim of a source already ranked counts SOURCE_REPEAT_DECAY less (as the
    Whoosh path's _spread_sources)."""
    seen: dict[int, int] = {}
    spread = np.empty(len(values), dtype=np.float64)
    for n, (value, docnum) in enumerate(zip(values.tolist(), ordered.tolist(), strict=True)):
        source = int(claim_sources[docnum])
        spread[n] = value * SOURCE_REPEAT_DECAY ** seen.get(source, 0)
        seen[source] = seen.get(source, 0) + 1
    order = np.lexsort((ordered, -spread))
    return spread[order], ordered[order]


def _coverage(clauses: Sequence[frozenset[str]], best_claims: npt.NDArray[np.int64],
              tagged: Sequence[Ints], expansions: Sequence[tuple[str, tuple[str, ...]]],
              doc_words: DocWords) -> int:
    """The most content clauses any of *best_claims* has (see ``EngineResult.weak``).

    A claim has a clause when its text or title holds all of the clause's words, or when it
    carries a vocabulary term the query was expanded with whose synonyms hold them.
    """
    expansion_stems = [frozenset(w for p in phrases for w in index_terms(p)) for _, phrases in expansions]
    carries = [np.isin(best_claims, claims) for claims in tagged]
    best = 0
    for n, words in enumerate(doc_words(best_claims.tolist())):
        terms = [expansion_stems[i] for i, has in enumerate(carries) if has[n]]
        had = sum(1 for clause in clauses if clause <= words or any(clause <= t for t in terms))
        best = max(best, had)
        if best == len(clauses):
            break
    return best
