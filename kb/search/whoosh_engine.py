"""Whoosh implementation of the search engine: schema, writing and BM25F ranking.

Two Whoosh indexes live in a build folder: ``claims`` (one document per claim) and ``sources``
(one per source). Documents are written in the store's order in a single segment, so a Whoosh
document number is the position of the record in the store: facets and hit look-ups need no
stored fields. Claims are stored strongest evidence first, so equal scores lean to stronger
evidence.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from whoosh import collectors, highlight, index, query, scoring
from whoosh.analysis import (
    CharsetFilter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.fields import ID, KEYWORD, NUMERIC, TEXT, Schema
from whoosh.support.charset import accent_map

from kb import grammar
from kb.errors import BadQuery
from kb.models import TAG_KINDS, Claim, Source
from kb.parallel import beside
from kb.query import EngineHit, EngineQuery, EngineResult
from kb.search import MatchSignals, array_search, claimindex, matchindex
from kb.search import semantic as semantic_module
from kb.search.analysis import index_terms
from kb.search.weights import (
    CLAIM_FIELD_BOOSTS,
    COORDINATION_SCALE,
    EVIDENCE_PRIOR,
    EXPANSION_BOOST,
    SOURCE_FIELD_BOOSTS,
    SOURCE_REPEAT_DECAY,
    TAG_BOOST,
    TERM_EVIDENCE_PRIOR,
    TERM_TEXT_BOOST,
    TERM_TITLE_BOOST,
    UNRANKED_LEVEL,
    prior,
)
from kb.store import claims_at
from kb.vocabulary import Vocabulary

CLAIMS = "claims"
SOURCES = "sources"

# Words keep inner hyphens' parts apart ("NMDA-receptor" -> nmda, receptor) but numbers with
# decimals and Greek letters stay whole; accents fold so "Müller" finds "Muller".
_TOKENS = r"\w+(?:\.\d+)*"
_STEMMED = (RegexTokenizer(_TOKENS) | LowercaseFilter() | CharsetFilter(accent_map)
            | StopFilter(minsize=1) | StemFilter(cachesize=50000))
_PLAIN = RegexTokenizer(_TOKENS) | LowercaseFilter() | CharsetFilter(accent_map)

# From this many claims, claim searches run over the build's arrays (kb.search.array_search):
# Whoosh scores each match in Python, which is exact and quick for a few thousand claims but took
# seconds a search past a few hundred thousand. KB_ARRAY_SEARCH_FROM overrides it (0: always).
ARRAY_SEARCH_FROM = 20_000


def array_search_from() -> int:
    """The claim count from which claim searches run over arrays (KB_ARRAY_SEARCH_FROM)."""
    return int(os.environ.get("KB_ARRAY_SEARCH_FROM", ARRAY_SEARCH_FROM))


def slim_claim_schema() -> Schema:
    """The claims index of a build searched over arrays: what only Whoosh does there is expand
    prefixes and typos against the words of the text, find quoted phrases by position and
    spell suggestions; titles are matched in the sources index, each analysed once."""
    return Schema(id=ID(stored=True, unique=True), text=TEXT(analyzer=_STEMMED),
                  spell=TEXT(analyzer=_PLAIN, spelling=True))


def claim_schema() -> Schema:
    fields = {
        "id": ID(stored=True, unique=True),
        "source_id": ID,
        "text": TEXT(analyzer=_STEMMED),
        "title": TEXT(analyzer=_STEMMED),
        "terms": TEXT(analyzer=_STEMMED),  # labels and synonyms of the claim's tags
        "spell": TEXT(analyzer=_PLAIN, spelling=True),  # unstemmed words, for "did you mean"
        "stance": ID,
        "section": ID,
        "year": NUMERIC(int, sortable=True),
        "level": NUMERIC(int, sortable=True),
        "retracted": ID,  # "yes" or "no": exclude_retracted is one term filter, no source look-up
    }
    for kind in TAG_KINDS:
        fields[kind] = KEYWORD(commas=True)  # the claim's own tags
        fields[f"{kind}_all"] = KEYWORD(commas=True)  # tags and their ancestors, for filters
    return Schema(**fields)


def source_schema() -> Schema:
    return Schema(
        id=ID(stored=True, unique=True),
        title=TEXT(analyzer=_STEMMED),
        text=TEXT(analyzer=_STEMMED),
        terms=TEXT(analyzer=_STEMMED),
        year=NUMERIC(int, sortable=True),
        level=NUMERIC(int, sortable=True),
    )


def _with_ancestors(ids: Iterable[str], vocabulary: Vocabulary) -> str:
    found = set(ids)
    for term_id in list(found):
        found |= vocabulary.ancestors(term_id)
    return ",".join(sorted(found))


def write(build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim],
          vocabulary: Vocabulary, progress: Callable[[int], None] | None = None,
          semantic: bool | None = None) -> None:
    """Write both Whoosh indexes and the matcher's and the claim search's arrays into *build_dir*.

    *semantic* (default: KB_SEMANTIC) also stores sentence embeddings of claims and sources.
    The claims index (and the embeddings, which report progress) are written here while a
    second process writes the rest (kb.parallel.beside), so a build uses two cores.
    """
    if semantic is None:
        semantic = semantic_module.requested()
    with beside(_write_side, build_dir, sources, claims, vocabulary):
        _write_claims(build_dir, sources, claims, vocabulary, progress)
        if semantic:
            matchindex.write_semantic(build_dir, sources, claims, progress)


def _write_side(build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim],
                vocabulary: Vocabulary) -> None:
    """What needs no progress display: the sources index and the arrays."""
    matchindex.write_lexical(build_dir, sources, claims)
    claimindex.write(build_dir, sources, claims, vocabulary)
    _write_sources(build_dir, sources, vocabulary)


def _write_claims(build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim],
                  vocabulary: Vocabulary, progress: Callable[[int], None] | None) -> None:
    by_id = {source.id: source for source in sources}
    slim = len(claims) >= array_search_from()
    claims_ix = index.create_in(str(build_dir), slim_claim_schema() if slim else claim_schema(),
                                indexname=CLAIMS)
    # Several writer processes do not pay on 2 cores with this document size; one big buffer does.
    with claims_ix.writer(limitmb=256) as writer:
        for number, claim in enumerate(claims, start=1):
            if slim:
                writer.add_document(id=claim.id, text=claim.text, spell=claim.text)
                if progress and number % 500 == 0:
                    progress(500)
                continue
            source = by_id[claim.source_id]
            document: dict[str, object] = {
                "id": claim.id, "source_id": claim.source_id, "text": claim.text, "title": source.title,
                "terms": claimindex.terms_text(claim.tags, vocabulary), "spell": f"{claim.text} {source.title}",
                "stance": claim.stance or "none", "section": claim.locator.section,
                "year": source.year or 0, "level": source.evidence_level or UNRANKED_LEVEL,
                "retracted": "yes" if source.retracted else "no",
            }
            for kind in TAG_KINDS:
                ids = claim.tags.get(kind, ())
                document[kind] = ",".join(ids)
                document[f"{kind}_all"] = _with_ancestors(ids, vocabulary)
            writer.add_document(**document)
            if progress and number % 500 == 0:
                progress(500)
        if progress:
            progress(len(claims) % 500)


def _write_sources(build_dir: Path, sources: Sequence[Source], vocabulary: Vocabulary) -> None:
    sources_ix = index.create_in(str(build_dir), source_schema(), indexname=SOURCES)
    with sources_ix.writer(limitmb=128) as writer:
        for source in sources:
            writer.add_document(
                id=source.id, title=source.title,
                text="\n".join(filter(None, (source.abstract, source.summary))),
                terms=" ; ".join([claimindex.terms_text(source.tags, vocabulary), *source.keywords]),
                year=source.year or 0, level=source.evidence_level or UNRANKED_LEVEL,
            )


class WhooshEngine:
    """Read-only searching over one build folder; safe to share between threads."""

    def __init__(self, build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim]) -> None:
        self._claims_ix = index.open_dir(str(build_dir), indexname=CLAIMS, readonly=True)
        self._sources_ix = index.open_dir(str(build_dir), indexname=SOURCES, readonly=True)
        self._source_ids = [source.id for source in sources]
        self._source_levels = [source.evidence_level or UNRANKED_LEVEL for source in sources]
        self._whoosh = threading.RLock()
        self._searchers: dict[str, object] = {}
        self._build_dir = build_dir
        self._sources = sources
        self._claims = claims
        self._match: matchindex.MatchIndex | None = None
        self._match_lock = threading.Lock()
        self._check_order(self._claims_ix, len(claims), claims[-1].id if len(claims) else None)
        self._check_order(self._sources_ix, len(sources), sources[-1].id if sources else None)
        # A slim claims index (slim_claim_schema) is only ever searched over the arrays.
        self._slim = "title" not in self._claims_ix.schema.names()
        self._arrays: claimindex.ClaimIndex | None = None
        has_arrays = all((build_dir / f).is_file() for f in claimindex.FILES)
        if self._slim and not has_arrays:
            raise RuntimeError("claim search arrays are missing; rebuild with: kb build")
        if has_arrays and (self._slim or len(claims) >= array_search_from()):
            self._arrays = claimindex.ClaimIndex(build_dir)
        self._source_position = {source_id: n for n, source_id in enumerate(self._source_ids)}
        self._source_title = {source.id: source.title for source in sources}
        # Whoosh's own scoring (a small knowledge base) reads per-claim lists; the array search
        # has its columns in the arrays and reads a claim only when it is a hit, so a store that
        # keeps its claims on disk (kb.store) is never read whole.
        self._claim_ids: list[str] = []
        self._claim_tags: list[dict[str, tuple[str, ...]]] = []
        self._claim_texts: list[str] = []
        self._claim_levels: list[int] = []
        self._claim_years: list[int] = []
        if self._arrays is None:
            level_of = {source.id: source.evidence_level or UNRANKED_LEVEL for source in sources}
            years = {source.id: source.year or 0 for source in sources}
            for claim in claims:
                self._claim_ids.append(claim.id)
                self._claim_tags.append(claim.tags)
                self._claim_texts.append(claim.text)
                self._claim_levels.append(level_of.get(claim.source_id, UNRANKED_LEVEL))
                self._claim_years.append(years.get(claim.source_id, 0))

    @staticmethod
    def _check_order(ix: index.Index, count: int, last_id: str | None) -> None:
        with ix.searcher() as searcher:
            if searcher.doc_count_all() != count:
                raise RuntimeError("search index and store disagree; rebuild with: kb build")
            if count and searcher.stored_fields(count - 1)["id"] != last_id:
                raise RuntimeError("search index order differs from the store; rebuild with: kb build")

    def _searcher(self, ix: index.Index, name: str) -> object:
        # One searcher per index, shared by every thread: Whoosh searchers are not thread-safe,
        # so each use holds self._whoosh. A searcher per thread multiplied its caches by the
        # thread count (3.3 GB for a server of 8 threads at 180,000 claims). Searches are
        # admitted one at a time by default (kb.web.admission), so the lock costs no parallelism
        # there, and the array search holds it only for Whoosh's own steps.
        with self._whoosh:
            searcher = self._searchers.get(name)
            if searcher is None:
                searcher = ix.searcher(weighting=scoring.BM25F(B=0.75, K1=1.2))
                self._searchers[name] = searcher
            return searcher

    def close(self) -> None:
        with self._whoosh:
            for searcher in self._searchers.values():
                searcher.close()  # type: ignore[attr-defined]
            self._searchers.clear()

    # --- matching -------------------------------------------------------------------------

    def match_index(self) -> matchindex.MatchIndex:
        """The matcher's indexes, loaded on first use (pages and search never need them)."""
        with self._match_lock:
            if self._match is None:
                self._match = matchindex.MatchIndex(self._build_dir, self._sources, self._claims)
            return self._match

    def match_signals(self, text: str, claim_limit: int, source_limit: int,
                      sources: Sequence[str] = (), semantic: bool = True,
                      expansions: Sequence[str] = ()) -> MatchSignals:
        return self.match_index().signals(text, claim_limit, source_limit, sources, semantic,
                                          expansions)

    # --- query construction -----------------------------------------------------------

    def _text_query(self, searcher: object, q: EngineQuery, boosts: dict[str, float],
                    tag_field: str | None) -> query.Query | None:
        """Compile the parsed query (kb.grammar) into a Whoosh query over *boosts*' fields.

        Prefix and fuzzy terms are expanded here, against this index's own word list, so their
        cost is the number of index words they stand for; past ``limits.max_expansion`` the
        query is refused rather than run.
        """
        from whoosh.searching import Searcher

        assert isinstance(searcher, Searcher)
        parsed = q.parsed if q.parsed is not None else grammar.parse(q.text)
        if not parsed.clauses:
            return None
        reader = searcher.reader()
        parts: dict[str, list[query.Query]] = {"should": [], "must": [], "must_not": []}
        for clause in parsed.clauses:
            compiled = self._clause_query(reader, clause, boosts, parsed.limits)
            if compiled is not None:
                parts[clause.occur].append(compiled)
        if not parts["should"] and not parts["must"]:
            raise BadQuery(f"Nothing searchable in {q.text!r}: use content words, for example: "
                           "ketamine")
        # Alternatives are ranked by how many of them match (coordination, as Whoosh's OrGroup).
        optional = list(parts["should"])
        one_term = _one_term(q)
        for term_id, phrases in q.expansions:
            options: list[query.Query] = []
            if tag_field is not None:
                # Claims are tagged at build time from the same synonyms (and the hierarchy is in
                # the *_all fields), so one term look-up per kind stands for every synonym and
                # narrower term; positional phrase matching over each synonym cost up to seconds.
                options.extend(query.Term(f"{kind}_all", term_id, boost=TAG_BOOST) for kind in TAG_KINDS)
                if one_term:
                    # A query that is one vocabulary term ("TRD") asks for the studies about it.
                    # The tag scores every tagged claim alike, so the literal word decided the
                    # order, and a title that spells the abbreviation (one source's claims)
                    # outranked the trials whose titles spell the term out ("... in
                    # treatment-resistant major depression"). The synonyms are matched in the
                    # title too, as the word itself is: a handful of phrases over one short field.
                    options.extend(_spelled_out(phrases))
            else:
                for phrase in phrases:
                    words = [t.text for t in _STEMMED(phrase)]
                    if len(words) == 1:
                        options.append(query.Term("terms", words[0]))
                    elif words:
                        options.append(query.Phrase("terms", words))
            if options:
                optional.append(query.Or(options, boost=EXPANSION_BOOST))
        wanted: query.Query
        if parts["must"]:
            required = parts["must"][0] if len(parts["must"]) == 1 else query.And(parts["must"])
            wanted = query.AndMaybe(required, query.Or(optional, scale=COORDINATION_SCALE)) if optional else required
        else:
            wanted = optional[0] if len(optional) == 1 else query.Or(optional, scale=COORDINATION_SCALE)
        if parts["must_not"]:
            # Applied as a mask by _run (a FilterCollector's restrict), not as AndNot: Whoosh's
            # AndNot matcher let excluded claims through when the kept side was an Or of boosted
            # tag terms ("-ketamine depression" returned claims saying "Ketamine ...").
            wanted = _Excluding(wanted, query.Or(parts["must_not"]))
        return wanted

    def _clause_query(self, reader: object, clause: grammar.Clause, boosts: dict[str, float],
                      limits: grammar.QueryLimits) -> query.Query | None:
        """One clause over every field, or None when it has no index words (a stop word)."""
        per_field: list[query.Query] = []
        if clause.kind in ("word", "phrase"):
            words = [t.text for t in _STEMMED(clause.text)]
            if not words:
                return None
            for name, boost in boosts.items():
                per_field.append(query.Term(name, words[0], boost=boost) if len(words) == 1
                                 else query.Phrase(name, words, boost=boost))
            return query.Or(per_field)
        expanded = self._expand(reader, clause, boosts, limits)
        if expanded is None:
            return None
        for name, boost in boosts.items():
            per_field.extend(query.Term(name, term, boost=boost) for term in sorted(expanded[name]))
        plain = [t.text for t in _PLAIN(clause.text)]
        if len(plain) > 1:  # "nmda-rec*": the words before the prefix are ordinary words
            for name, boost in boosts.items():
                per_field.extend(query.Term(name, t.text, boost=boost)
                                 for t in _STEMMED(" ".join(plain[:-1])))
        return query.Or(per_field) if per_field else query.NullQuery

    @staticmethod
    def _expand(reader: object, clause: grammar.Clause, fields: Iterable[str],
                limits: grammar.QueryLimits) -> dict[str, set[str]] | None:
        """A prefix or fuzzy clause's index words in each field, or None when it has no word.

        Expanded against this index's own word lists, so the cost is the number of words it
        stands for; past ``limits.max_expansion`` the query is refused rather than run.
        """
        plain = [t.text for t in _PLAIN(clause.text)]
        if not plain:
            return None
        word = plain[-1]
        stems = [t.text for t in _STEMMED(word)] or [word]
        words: dict[str, set[str]] = {}
        for name in fields:
            found: set[str] = set()
            for candidate in dict.fromkeys((word, stems[-1])):
                if clause.kind == "prefix":
                    expanded = reader.expand_prefix(name, candidate)  # type: ignore[attr-defined]
                else:
                    expanded = reader.terms_within(name, candidate, clause.edits,  # type: ignore[attr-defined]
                                                   prefix=1)
                for term in itertools.islice(expanded, limits.max_expansion + 1):
                    found.add(_as_str(term))
                if len(found) > limits.max_expansion:
                    sign = "*" if clause.kind == "prefix" else f"~{clause.edits}"
                    raise BadQuery(f"{clause.text}{sign} stands for more than {limits.max_expansion} "
                                   "words in the index: type more letters"
                                   + (" or allow fewer typos" if clause.kind == "fuzzy" else "")
                                   + ", for example: ketam*")
            words[name] = found
        return words

    def _filter(self, q: EngineQuery, claims: bool) -> query.Query | None:
        parts: list[query.Query] = []
        for kind, ids in q.filters.items():
            if ids:
                field_name = f"{kind}_all" if claims else "terms"
                if claims:
                    parts.append(query.Or([query.Term(field_name, i) for i in ids]))
        if q.sources:
            field_name = "source_id" if claims else "id"
            parts.append(query.Or([query.Term(field_name, s) for s in q.sources]))
        if claims and q.stance:
            parts.append(query.Or([query.Term("stance", s) for s in q.stance]))
        if q.year_from is not None or q.year_to is not None:
            parts.append(query.NumericRange("year", q.year_from, q.year_to))
        if claims and q.exclude_retracted:
            parts.append(query.Term("retracted", "no"))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else query.And(parts)

    # --- searching --------------------------------------------------------------------

    def search_claims(self, q: EngineQuery) -> EngineResult:
        searcher = self._searcher(self._claims_ix, CLAIMS)
        if self._arrays is not None:
            return self._search_arrays(searcher, q, self._arrays)
        with self._whoosh:
            text_query = self._text_query(searcher, q, CLAIM_FIELD_BOOSTS, "tags")
            filter_query = self._filter(q, claims=True)
            return self._run(searcher, text_query, filter_query, q, self._claim_ids, facets=q.facets)

    def _search_arrays(self, searcher: object, q: EngineQuery,
                       arrays: claimindex.ClaimIndex) -> EngineResult:
        """The claim search over the build's arrays; Whoosh expands words and finds phrases."""
        from whoosh.searching import Searcher

        assert isinstance(searcher, Searcher)
        parsed = q.parsed if q.parsed is not None else grammar.parse(q.text)
        reader = searcher.reader()
        # A slim claims index holds the claim text only; titles and tag words are the sources'.
        sources = self._searcher(self._sources_ix, SOURCES) if self._slim else None

        def expand(clause: grammar.Clause) -> set[str] | None:
            with self._whoosh:
                if sources is None:
                    found = self._expand(reader, clause, CLAIM_FIELD_BOOSTS, parsed.limits)
                else:
                    found = self._expand(reader, clause, ("text",), parsed.limits)
                    titles = self._expand(sources.reader(), clause, ("title", "terms"),  # type: ignore[attr-defined]
                                          parsed.limits)
                    if found is not None and titles is not None:
                        found.update(titles)
            return None if found is None else set().union(*found.values())

        def phrase_claims(text: str) -> claimindex.Ints:
            words = [t.text for t in _STEMMED(text)]
            with self._whoosh:
                if sources is None:
                    phrase = query.Or([query.Phrase(name, words) for name in CLAIM_FIELD_BOOSTS])
                    return np.fromiter(phrase.docs(searcher), dtype=np.int32)
                in_text = np.fromiter(query.Phrase("text", words).docs(searcher), dtype=np.int32)
                titled = np.fromiter(query.Phrase("title", words).docs(sources), dtype=np.int32)  # type: ignore[attr-defined]
            in_title = np.flatnonzero(np.isin(arrays.claim_source, titled)).astype(np.int32)
            return np.union1d(in_text, in_title).astype(np.int32)

        result = array_search.search(arrays, q, parsed, expand, phrase_claims, self._doc_words,
                                     self._source_position, _one_term(q))
        hits = []
        for hit, claim in zip(result.hits, claims_at(self._claims, [h.docnum for h in result.hits]),
                              strict=True):
            hits.append(EngineHit(id=claim.id, score=_score(hit.score),
                                  highlight=highlight_html(claim.text, hit.stems), terms=hit.stems))
        suggestion = None
        if q.suggest and q.text.strip():
            with self._whoosh:
                suggestion = self._suggest(searcher, q.text)
        return EngineResult(total=result.total, hits=tuple(hits), facets=result.facets, years=result.years,
                            year_levels=result.year_levels, suggestion=suggestion,
                            content_words=result.content_words, best_coverage=result.best_coverage)

    def _doc_words(self, docnums: Sequence[int]) -> list[set[str]]:
        return [set(index_terms(f"{claim.text}\n{self._source_title.get(claim.source_id, '')}"))
                for claim in claims_at(self._claims, docnums)]

    def search_sources(self, q: EngineQuery) -> EngineResult:
        searcher = self._searcher(self._sources_ix, SOURCES)
        with self._whoosh:
            text_query = self._text_query(searcher, q, SOURCE_FIELD_BOOSTS, None)
            filter_query = self._filter(q, claims=False)
            return self._run(searcher, text_query, filter_query, q, self._source_ids, facets=False)

    def _run(self, searcher: object, text_query: query.Query | None, filter_query: query.Query | None,
             q: EngineQuery, ids: list[str], facets: bool) -> EngineResult:
        from whoosh.searching import Searcher

        assert isinstance(searcher, Searcher)
        if text_query is None and filter_query is None:
            raise BadQuery("Empty search: type some words or choose a filter, for example: ketamine")
        main = text_query if text_query is not None else query.Every()
        sortedby = _sort_facets(q.sort, scored=text_query is not None)
        # Score every match once (no limit): the same pass gives the page, the total and the
        # facet counts. No block-quality skipping (TopCollector's): it can loop forever on
        # boosted OR queries (seen with a tag-expanded "PTSD") and saves nothing when every match
        # is needed. The deadline bounds the pass; what it cut is marked partial.
        collector: collectors.Collector = (collectors.SortingCollector(sortedby, limit=None)
                                           if sortedby is not None else collectors.UnlimitedCollector())
        collector = collectors.TermsCollector(collector)
        if q.time_budget is not None:
            collector = _DeadlineCollector(collector, time.monotonic() + q.time_budget)
        excluded = None
        if isinstance(main, _Excluding):
            main, excluded = main.kept, main.excluded
        if filter_query is not None or excluded is not None:
            # outermost, as Searcher.collector does, so it sees docs first
            collector = collectors.FilterCollector(collector, filter_query, excluded)
        partial = False
        try:
            searcher.search_with_collector(main, collector)
        except collectors.TimeLimit:
            partial = True  # what was collected so far is ranked and counted, and marked so
        results = collector.results()
        ranked: list[tuple[object, int]] = list(results.top_n)
        if sortedby is None and text_query is not None:
            one_term = ids is self._claim_ids and _one_term(q)
            levels = self._claim_levels if facets or ids is self._claim_ids else self._source_levels
            # Relevance leans to stronger evidence: a mild prior by evidence level (x1.15 for
            # level 1 down to x1 for unranked), so a trial outranks an opinion piece that says
            # the same words, while a much better textual match still wins.
            # A one-term query asks which studies are about the term; every tagged claim
            # matches it alike, so the evidence level weighs more (TERM_EVIDENCE_PRIOR).
            strength = TERM_EVIDENCE_PRIOR if one_term else EVIDENCE_PRIOR
            prior_ranked = sorted(((float(score) * prior(levels[docnum], strength), docnum)  # type: ignore[arg-type]
                                   for score, docnum in ranked), key=lambda pair: (-pair[0], pair[1]))
            if one_term:
                prior_ranked = self._spread_sources(prior_ranked)
            ranked = list(prior_ranked)
        total = len(ranked)
        matched = {docnum for _, docnum in ranked} if facets else None
        texts = self._claim_texts if facets else None
        hits: list[EngineHit] = []
        for score, docnum in ranked[q.offset:q.offset + q.limit]:
            stems = {_as_str(term) for field_name, term in (results.docterms.get(docnum) or [])
                     if field_name in {"text", "terms", "title"}}
            html = highlight_html(texts[docnum], stems) if texts is not None else ""
            hits.append(EngineHit(id=ids[docnum], score=_score(score), highlight=html,
                                  terms=tuple(sorted(stems))))
        facet_counts: dict[str, dict[str, int]] = {}
        years: dict[int, int] = {}
        year_levels: dict[int, dict[int | None, int]] = {}
        if facets and matched is not None:
            counters = {kind: Counter[str]() for kind in TAG_KINDS}
            year_counter: Counter[int] = Counter()
            level_counter: Counter[tuple[int, int]] = Counter()
            for docnum in matched:
                for kind, tag_ids in self._claim_tags[docnum].items():
                    counters[kind].update(tag_ids)
                year = self._claim_years[docnum]
                if year:
                    year_counter[year] += 1
                    level_counter[year, self._claim_levels[docnum]] += 1
            facet_counts = {kind: dict(counter) for kind, counter in counters.items() if counter}
            years = dict(year_counter)
            for (year, level), count in level_counter.items():
                year_levels.setdefault(year, {})[None if level == UNRANKED_LEVEL else level] = count
        suggestion = self._suggest(searcher, q.text) if q.suggest and q.text.strip() else None
        content, best = (_coverage(q, ranked, results.docterms) if text_query is not None
                         else (0, 0))
        return EngineResult(total=total, hits=tuple(hits), facets=facet_counts, years=years,
                            year_levels=year_levels,
                            suggestion=suggestion, partial=partial,
                            content_words=content, best_coverage=best)

    def _spread_sources(self, ranked: list[tuple[float, int]]) -> list[tuple[float, int]]:
        """Each further claim of a source already ranked counts SOURCE_REPEAT_DECAY less.

        For a one-term query ("TRD") every tagged claim of a study about the term matches
        alike, so the first page filled with one trial's claims and left other primary studies
        (Zarate 2006, the first randomised trial in TRD) past it. Scores only shrink, so the
        order within a source and the best claim of each source are unchanged.
        """
        seen: Counter[str] = Counter()
        spread: list[tuple[float, int]] = []
        for score, docnum in ranked:
            source_id = self._claims[docnum].source_id
            spread.append((score * SOURCE_REPEAT_DECAY ** seen[source_id], docnum))
            seen[source_id] += 1
        return sorted(spread, key=lambda pair: (-pair[0], pair[1]))

    def _suggest(self, searcher: object, text: str) -> str | None:
        """Respell words that are not in the index; None when every word is known."""
        from whoosh.searching import Searcher

        assert isinstance(searcher, Searcher)
        reader = searcher.reader()
        changed = False
        out: list[str] = []
        # Whole space-separated words only: "condition:ptsd", "-word", "ketam*" and phrases stay
        # as typed, so a suggestion never rewrites the query's syntax.
        titles = self._searcher(self._sources_ix, SOURCES).reader() if self._slim else None  # type: ignore[attr-defined]
        for token in text.split():
            word = token.lower()
            if not re.fullmatch(r"[^\W\d_]{4,}", word) or reader.frequency("spell", word) > 0:
                out.append(token)
                continue
            if titles is not None and any(titles.frequency("title", t.text) > 0 for t in _STEMMED(word)):
                out.append(token)  # a slim index spells from claim text; titles are the sources'
                continue
            # Two edits turn most short words into some other word ("cures" -> "care",
            # "cancer" -> "center"): a respelling of a word the index lacks on purpose, not a
            # typo. Short words get one edit, words of 8 letters or more two.
            maxdist = 1 if len(word) < 8 else 2
            suggestions = searcher.suggest("spell", word, limit=1, maxdist=maxdist, prefix=1)
            if suggestions and suggestions[0] != word:
                out.append(suggestions[0])
                changed = True
            else:
                out.append(token)
        return " ".join(out) if changed else None


class _Excluding(query.WrappingQuery):  # type: ignore[misc]
    """A query and the matches to leave out of it, which _run applies as a mask."""

    def __init__(self, kept: query.Query, excluded: query.Query) -> None:
        super().__init__(kept)
        self.kept = kept
        self.excluded = excluded


class _DeadlineCollector(collectors.WrappingCollector):  # type: ignore[misc]
    """Stop collecting at a deadline; the matches collected so far stay readable as results.

    Whoosh's own TimeLimitCollector starts a timer thread per search (or uses SIGALRM, which
    only the main thread may); reading the clock every few hundred matches costs nothing.
    """

    CHECK_EVERY = 256

    def __init__(self, child: collectors.Collector, deadline: float) -> None:
        self.child = child
        self.deadline = deadline
        self.collected = 0

    def collect(self, sub_docnum: int) -> object:
        # A FilterCollector above calls collect() for each allowed match; without one, the
        # inherited collect_matches() does.
        found = self.child.collect(sub_docnum)
        self.collected += 1
        if self.collected % self.CHECK_EVERY == 1 and time.monotonic() > self.deadline:
            raise collectors.TimeLimit
        return found


def _one_term(q: EngineQuery) -> bool:
    """Whether the query is one vocabulary term: one positive clause, expanded to one term."""
    parsed = q.parsed if q.parsed is not None else grammar.parse(q.text)
    return len(parsed.positive) == 1 and len(q.expansions) == 1


def _spelled_out(phrases: Sequence[str]) -> list[query.Query]:
    """A one-term query's synonyms in the claim text and in its source title, as if each were
    the word typed: "TRD" finds "... in treatment-resistant depression" as it finds "TRD".

    Each field is scored by its best synonym: a title that spells the term out ("nonpsychotic
    treatment-resistant major depression") matches several overlapping synonyms, and summing
    them would rank it by how many synonyms the vocabulary lists. The boosts are divided by
    EXPANSION_BOOST because these sit inside the expansion's Or, which that boost scales.
    """
    found: list[query.Query] = []
    for name, boost in (("text", TERM_TEXT_BOOST), ("title", TERM_TITLE_BOOST)):
        options: list[query.Query] = []
        for phrase in phrases:
            words = [t.text for t in _STEMMED(phrase)]
            if len(words) == 1:
                options.append(query.Term(name, words[0]))
            elif words:
                options.append(query.Phrase(name, words))
        if options:
            found.append(query.DisjunctionMax(options, boost=boost / EXPANSION_BOOST))
    return found


_WORD_FIELDS = frozenset({"text", "terms", "title"})


def _coverage(q: EngineQuery, ranked: Sequence[tuple[object, int]],
              docterms: dict[int, list[tuple[str, object]]]) -> tuple[int, int]:
    """(content words of the query, the most of them any one match has), for EngineResult.weak.

    Content words are the positive word and phrase clauses with an index word (stop words
    drop out); a phrase counts as one. A match has a clause when it matched all of the
    clause's stems in the claim, its title or its tag labels, or when the clause is (part of) a
    vocabulary term the query was expanded with and the match carries that tag: "TRD" is had
    by a claim tagged treatment-resistant depression. Prefix and fuzzy clauses are left out:
    what they stand for is only known after expansion. Scanning stops at the first match that
    has every clause, so a strong query costs one document; a weak one scans every match, which
    TermsCollector has already gathered.
    """
    parsed = q.parsed if q.parsed is not None else grammar.parse(q.text)
    clauses = [frozenset(t.text for t in _STEMMED(c.text)) for c in parsed.positive
               if c.kind in ("word", "phrase")]
    clauses = [c for c in clauses if c]
    if not clauses:
        return 0, 0
    expansion_stems = {term_id: frozenset(t.text for p in phrases for t in _STEMMED(p))
                       for term_id, phrases in q.expansions}
    tag_fields = {f"{kind}_all" for kind in TAG_KINDS}
    best = 0
    for _, docnum in ranked:
        stems: set[str] = set()
        tags: set[str] = set()
        for field_name, term in docterms.get(docnum) or ():
            if field_name in _WORD_FIELDS:
                stems.add(_as_str(term))
            elif field_name in tag_fields:
                tags.add(_as_str(term))
        had = sum(1 for clause in clauses
                  if clause <= stems or any(clause <= expansion_stems.get(t, frozenset())
                                            for t in tags))
        best = max(best, had)
        if best == len(clauses):
            break
    return len(clauses), best


def _sort_facets(sort: str, scored: bool) -> object:
    from whoosh import sorting

    if sort == "evidence":
        return [sorting.FieldFacet("level"), sorting.ScoreFacet()] if scored else "level"
    if sort == "newest":
        return [sorting.FieldFacet("year", reverse=True), sorting.ScoreFacet()] if scored else \
            sorting.FieldFacet("year", reverse=True)
    if sort == "oldest":
        return [sorting.FieldFacet("year"), sorting.ScoreFacet()] if scored else "year"
    return None  # relevance; documents are stored strongest evidence first, so ties lean to it


def _score(value: object) -> float:
    """A hit's relevance score; sorted searches give a sort key whose last part is -score."""
    if isinstance(value, tuple):
        value = -value[-1] if value and isinstance(value[-1], int | float) else 0.0
    return round(float(value or 0.0), 4)  # type: ignore[arg-type]


def _as_str(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def highlight_html(text: str, words: Iterable[str]) -> str:
    """Return *text* HTML-escaped with <mark> around words whose stems match *words*."""
    formatter = _MarkFormatter(between=" … ")
    fragmenter = highlight.WholeFragmenter()
    result = highlight.highlight(text, frozenset(words), _STEMMED, fragmenter,
                                 formatter, top=1)
    if not result:
        from html import escape

        return escape(text)
    return result


class _MarkFormatter(highlight.HtmlFormatter):  # type: ignore[misc]
    """Escape the text (HtmlFormatter does) and wrap matches in a plain <mark>."""

    def format_token(self, text: str, token: object, replace: bool = False) -> str:
        from html import escape

        return f"<mark>{escape(highlight.get_text(text, token, replace))}</mark>"
