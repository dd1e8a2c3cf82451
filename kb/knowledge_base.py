"""KnowledgeBase: the one facade the CLI, the web app and the article checker use.

It opens the served build (store + engine), validates requests, expands queries through the
vocabulary, and returns plain data. Nothing above it knows which engine ranks.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.build import read_manifest, require_build
from kb.citations import (
    apa,
    confirmed_identifiers,
    links,
    short_authors,
    source_card,
    unconfirmed_fields,
    vancouver,
)
from kb.config import Settings
from kb.errors import BadQuery, NotFound
from kb.ids import is_claim_id, is_source_id, normalize_doi, normalize_pmid
from kb.matching import ClaimMatch, Matcher, SourceMatch
from kb.models import TAG_KINDS, Claim, Source
from kb.query import (
    FILTER_KINDS,
    SORTS,
    STANCE_FILTERS,
    ClaimHit,
    EngineQuery,
    EngineResult,
    FacetValue,
    SearchPage,
    SearchRequest,
)
from kb.search import SearchEngine, check_engine, grammar, open_engine, open_published
from kb.search.grammar import ParsedQuery
from kb.store import Store, claim_facts
from kb.vocabulary import Vocabulary

if TYPE_CHECKING:
    from kb.check import CheckLimits
    from kb.check.result import CheckResult

# Names that introduce a filter inside the query text ("condition:ptsd ketamine").
QUERY_FIELDS = frozenset({*FILTER_KINDS, "source", "stance", "year"})


class KnowledgeBase:
    """A read-only view of one build of the knowledge base."""

    def __init__(self, settings: Settings, build_dir: Path | None, store: Store, engine: SearchEngine,
                 manifest: dict[str, Any] | None = None) -> None:
        self.settings = settings
        # The build folder of the embedded engine; None for a build a database serves.
        self.build_dir = build_dir
        self.store = store
        self.engine = engine
        if manifest is None:
            assert build_dir is not None, "a build without a folder brings its manifest"
            manifest = read_manifest(build_dir)
        self.manifest = manifest
        self.build_name: str = str(manifest.get("build") or (build_dir.name if build_dir else ""))
        self._matcher: Matcher | None = None
        self._cache: OrderedDict[tuple[object, ...], SearchPage] = OrderedDict()
        self._cache_lock = threading.Lock()
        # Held around every search the cache does not answer: the web app's admission control
        # (kb.web.admission) puts its search slot here, so cached pages never wait for a slot.
        self.search_gate: Callable[[], AbstractContextManager[object]] = nullcontext
        self._views: dict[tuple[str, ...], Any] = {}
        self._views_lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> KnowledgeBase:
        """Open the build that index/CURRENT (or the engine's database) names; IndexUnavailable
        when there is none."""
        if settings.engine:
            check_engine(settings.engine)
            _, store, engine, manifest = open_published(settings.engine)
            return cls(settings, None, store, engine, manifest)
        build_dir = require_build(settings.index_dir)
        store = Store.read(build_dir)
        engine = open_engine(build_dir, store.sources, store.claims)
        return cls(settings, build_dir, store, engine)

    def close(self) -> None:
        self.engine.close()
        self.store.close()

    @property
    def vocabulary(self) -> Any:
        return self.store.vocabulary

    # --- status and browsing ----------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The manifest of the served build."""
        return dict(self.manifest)

    def _cached(self, key: tuple[str, ...], compute: Callable[[], Any]) -> Any:
        """A per-build view computed once: the counts and maps read every claim, which a store
        keeps on disk (seconds at a million claims), and a build never changes."""
        with self._views_lock:
            if key not in self._views:
                self._views[key] = compute()
            return self._views[key]

    def _tag_counts(self) -> tuple[dict[str, Counter[str]], int, Counter[str]]:
        """(claims per term of each kind, claims tagged with a condition or mechanism, stances)."""
        def count() -> tuple[dict[str, Counter[str]], int, Counter[str]]:
            per_kind: dict[str, Counter[str]] = {kind: Counter() for kind in TAG_KINDS}
            tagged = 0
            stances: Counter[str] = Counter()
            for _, stance, tags in claim_facts(self.store.claims):
                for kind, ids in tags.items():
                    per_kind.setdefault(kind, Counter()).update(ids)
                if tags.get("condition") or tags.get("mechanism"):
                    tagged += 1
                stances[stance or "none"] += 1
            return per_kind, tagged, stances

        return self._cached(("tag counts",), count)  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        """Counts of sources and claims, claims per term of each kind, and tagging coverage."""
        per_kind, tagged, stances = self._tag_counts()
        total = len(self.store.claims)
        vocab = self.store.vocabulary
        return {
            "sources": len(self.store.sources),
            "claims": total,
            "claims_tagged_condition_or_mechanism": tagged,
            "tagged_share": round(tagged / total, 4) if total else 0.0,
            "claims_by_stance": dict(sorted(stances.items())),
            **{f"claims_per_{kind}": {term: {"label": vocab.label(term), "claims": count}
                                      for term, count in per_kind[kind].most_common()}
               for kind in ("condition", "mechanism", "intervention", "design", "outcome")},
        }

    def vocabulary_terms(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every vocabulary term with the number of claims tagged with it or a descendant."""
        if kind is not None and kind not in TAG_KINDS:
            raise BadQuery(f"Unknown kind {kind!r}: use one of {', '.join(TAG_KINDS)}")
        vocab = self.store.vocabulary
        direct: Counter[str] = Counter()
        for counts in self._tag_counts()[0].values():
            direct.update(counts)
        result = []
        for term in vocab.terms.values():
            if kind and term.kind != kind:
                continue
            data = term.to_dict()
            data["claims"] = direct.get(term.id, 0)
            data["claims_including_narrower"] = sum(direct.get(t, 0) for t in vocab.descendants(term.id))
            result.append(data)
        return result

    def _map_cells(self, rows: str, columns: str) -> dict[tuple[str, str], dict[str, Any]]:
        cells: dict[tuple[str, str], dict[str, Any]] = {}
        for source_id, _, tags in claim_facts(self.store.claims):
            source = self.store.source_by_id[source_id]
            for row in tags.get(rows, ()):
                for column in tags.get(columns, ()):
                    cell = cells.setdefault((row, column), {"claims": 0, "best_level": None})
                    cell["claims"] += 1
                    level = source.evidence_level
                    if level is not None and (cell["best_level"] is None or level < cell["best_level"]):
                        cell["best_level"] = level
        return cells

    def evidence_map(self, rows: str = "condition", columns: str = "mechanism") -> dict[str, Any]:
        """Claim counts for every (row term, column term) pair, with the strongest evidence level."""
        for kind in (rows, columns):
            if kind not in TAG_KINDS:
                raise BadQuery(f"Unknown kind {kind!r} for the evidence map: use one of {', '.join(TAG_KINDS)}")
        if rows == columns:
            raise BadQuery("Choose two different kinds for the evidence map's rows and columns")
        cells: dict[tuple[str, str], dict[str, Any]] = self._cached(
            ("map", rows, columns), lambda: self._map_cells(rows, columns))
        vocab = self.store.vocabulary
        row_ids = sorted({r for r, _ in cells}, key=lambda t: -sum(c["claims"] for (r, _), c in cells.items() if r == t))
        col_ids = sorted({c for _, c in cells}, key=lambda t: -sum(v["claims"] for (_, c), v in cells.items() if c == t))
        return {
            "rows": [{"id": r, "label": vocab.label(r), "kind": rows} for r in row_ids],
            "columns": [{"id": c, "label": vocab.label(c), "kind": columns} for c in col_ids],
            "cells": [{"row": r, "column": c, **cells[(r, c)]} for r in row_ids for c in col_ids
                      if (r, c) in cells],
        }

    # --- records ----------------------------------------------------------------------

    def source(self, source_id: str) -> Source:
        """The source with this id (or a DOI/PMID as "doi:..."/"pmid:..."); NotFound otherwise."""
        found = self.find_source(source_id)
        if found is None:
            raise NotFound(f"No source {source_id!r}: search for it, or list sources with: kb stats")
        return found

    def find_source(self, identifier: str) -> Source | None:
        """Look a source up by id, "doi:...", a bare DOI, or "pmid:..."; None if unknown."""
        if len(identifier) > 300:
            return None
        if identifier in self.store.source_by_id:
            return self.store.source_by_id[identifier]
        doi = normalize_doi(identifier)
        if doi:
            return self.store.source_by_doi.get(doi)
        if identifier.lower().startswith("pmid:"):
            return self.store.source_by_pmid.get(normalize_pmid(identifier))
        return None

    def claims_for(self, source_id: str) -> list[Claim]:
        return list(self.store.claims_by_source.get(source_id, []))

    def claim(self, claim_id: str) -> Claim:
        if not is_claim_id(claim_id) or claim_id not in self.store.claim_by_id:
            raise NotFound(f"No claim {claim_id!r}: claim ids look like <source id>-<10 hex digits>")
        return self.store.claim_by_id[claim_id]

    def design_label(self, source: Source) -> str:
        return self.store.vocabulary.label(source.design) if source.design else ""

    def card(self, source: Source) -> dict[str, Any]:
        return source_card(source, self.design_label(source))

    def source_view(self, source_id: str) -> dict[str, Any]:
        """A source with its citations, verification, and its claims grouped by stance."""
        if not is_source_id(source_id) and not normalize_doi(source_id):
            raise NotFound(f"No source {source_id!r}: source ids are citation keys such as "
                           "berman2000antidepressant")
        source = self.source(source_id)
        claims = self.claims_for(source.id)
        data = source.to_dict()
        data.update({
            "citation": {"vancouver": vancouver(source), "apa": apa(source)},
            "identifiers": confirmed_identifiers(source),
            "unconfirmed_fields": unconfirmed_fields(source),
            "links": links(source),
            "design_label": self.design_label(source) or None,
            "retracted": source.retracted,
            "claims": [self._claim_dict(c) for c in claims],
        })
        if not source.is_confirmed("doi"):
            data["doi"] = None
        if not source.is_confirmed("pmid"):
            data["pmid"] = None
        data["unconfirmed_identifiers"] = {n: getattr(source, n) for n in ("doi", "pmid")
                                           if getattr(source, n) and not source.is_confirmed(n)}
        return data

    def _claim_dict(self, claim: Claim) -> dict[str, Any]:
        data = claim.to_dict()
        vocab = self.store.vocabulary
        data["tag_labels"] = {kind: [{"id": t, "label": vocab.label(t), "mesh": _mesh(vocab, t)} for t in ids]
                              for kind, ids in claim.tags.items()}
        return data

    def claim_view(self, claim_id: str, related: int = 10) -> dict[str, Any]:
        """A claim, its source, and claims of other sources that share its terms."""
        claim = self.claim(claim_id)
        source = self.store.source_by_id[claim.source_id]
        data = self._claim_dict(claim)
        data["source"] = self.card(source)
        data["related"] = [
            {**self._claim_dict(other), "source": self.card(self.store.source_by_id[other.source_id]),
             "shared_terms": shared}
            for other, shared in self.related_claims(claim, related)
        ]
        return data

    def related_claims(self, claim: Claim, limit: int = 10) -> list[tuple[Claim, list[str]]]:
        """Claims of other sources about the same subject: sharing a condition, mechanism,
        intervention or outcome tag, most shared tags first, then as the search engine ranks them
        on this claim's text and terms. The shared tags come with each (design tags never do).

        A study design ("randomized controlled trial") says how a claim was found, not what it is
        about: claims that shared only it were listed as related, so design never counts here.
        """
        mine = _subject_tags(claim)
        if not mine:
            return []
        request = EngineQuery(text=claim.text, parsed=ParsedQuery.of_words(claim.text),
                              limit=limit * 5, facets=False,
                              expansions=self._expansions(claim.text))
        result = self.engine.search_claims(request)
        found: list[tuple[int, int, Claim, list[str]]] = []
        for rank, hit in enumerate(result.hits):
            other = self.store.claim_by_id.get(hit.id)
            if other is None or other.source_id == claim.source_id:
                continue
            shared = sorted(mine & _subject_tags(other))
            if shared:
                found.append((-len(shared), rank, other, shared))
        found.sort(key=lambda item: (item[0], item[1]))
        return [(other, shared) for _, _, other, shared in found[:limit]]

    # --- search -----------------------------------------------------------------------

    def _expansions(self, text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        vocab = self.store.vocabulary
        seen: dict[str, tuple[str, ...]] = {}
        for term, _, _ in vocab.find(text):
            if term.id not in seen:
                seen[term.id] = tuple(vocab.phrases(term.id))
        return tuple(seen.items())

    def validate(self, request: SearchRequest) -> SearchRequest:
        """Check a request against limits and the vocabulary; BadQuery says how to fix it."""
        s = self.settings
        if len(request.q) > s.max_query_chars:
            raise BadQuery(f"The query is {len(request.q)} characters long; the limit is "
                           f"{s.max_query_chars}: shorten it to the key words")
        request = self._with_typed_filters(request)
        if request.sort not in SORTS:
            raise BadQuery(f"Unknown sort {request.sort!r}: use one of {', '.join(SORTS)}")
        check_numbers(request, s.max_page_size)
        vocab = self.store.vocabulary
        filters: dict[str, tuple[str, ...]] = {}
        for kind, values in request.filters.items():
            if kind not in FILTER_KINDS:
                raise BadQuery(f"Unknown filter {kind!r}: use one of {', '.join(FILTER_KINDS)}")
            resolved = []
            for value in values:
                term = vocab.resolve(value, kind)
                if term is None:
                    valid = ", ".join(t.id for t in vocab.of_kind(kind))
                    raise BadQuery(f"Unknown {kind} {value!r}: valid values are {valid}")
                resolved.append(term.id)
            if resolved:
                filters[kind] = tuple(dict.fromkeys(resolved))
        for stance in request.stance:
            if stance not in STANCE_FILTERS:
                raise BadQuery(f"Unknown stance {stance!r}: use one of {', '.join(STANCE_FILTERS)}")
        for source_id in request.sources:
            if source_id not in self.store.source_by_id:
                raise BadQuery(f"Unknown source {source_id!r}: use a source id such as "
                               f"{next(iter(self.store.source_by_id), 'key2020word')}")
        if request.year_from and request.year_to and request.year_from > request.year_to:
            raise BadQuery("year_from is after year_to: swap them")
        if not request.q.strip() and not filters and not request.sources:
            raise BadQuery("Empty search: type some words or choose a filter, for example: "
                           "q=ketamine or condition=" + next((t.id for t in vocab.of_kind("condition")), "..."))
        return replace(request, filters=filters)

    def _with_typed_filters(self, request: SearchRequest) -> SearchRequest:
        """Parse q (kb.search.grammar) and move the filters typed into it to the request's own."""
        parsed = grammar.parse(request.q, QUERY_FIELDS)
        filters = {kind: list(values) for kind, values in request.filters.items()}
        sources, stance = list(request.sources), list(request.stance)
        year_from, year_to = request.year_from, request.year_to
        for name, value in parsed.filters:
            if name in FILTER_KINDS:
                filters.setdefault(name, []).append(value)
            elif name == "source":
                sources.append(value)
            elif name == "stance":
                stance.append(value)
            elif name == "year":
                year_from, year_to = _year_range(value, year_from, year_to)
        return replace(request, parsed=parsed, filters={k: tuple(v) for k, v in filters.items()},
                       sources=tuple(dict.fromkeys(sources)), stance=tuple(dict.fromkeys(stance)),
                       year_from=year_from, year_to=year_to)

    def search(self, request: SearchRequest) -> SearchPage:
        """Search claims; every hit carries its source.

        Results are cached per build (a build never changes), keyed by the validated request:
        popular searches cost a dictionary look-up. ``settings.search_cache_size = 0`` disables it.
        """
        request = self.validate(request)
        if not self.settings.search_cache_size:
            with self.search_gate():
                return self._search(request)
        key = _request_key(request)
        with self._cache_lock:
            page = self._cache.get(key)
            if page is not None:
                self._cache.move_to_end(key)
                return page
        with self.search_gate():
            page = self._search(request)
        if page.partial:
            return page  # a busy moment cut it short; the next request may get it whole
        with self._cache_lock:
            self._cache[key] = page
            while len(self._cache) > self.settings.search_cache_size:
                self._cache.popitem(last=False)
        return page

    def _search(self, request: SearchRequest) -> SearchPage:
        parsed = request.parsed or grammar.parse(request.q, QUERY_FIELDS)
        expansions = self._expansions(parsed.positive_text()) if request.expand else ()
        engine_query = EngineQuery(
            text=request.q, parsed=parsed, expansions=expansions, filters=request.filters,
            sources=request.sources, stance=request.stance, year_from=request.year_from,
            year_to=request.year_to, exclude_retracted=request.exclude_retracted,
            sort=request.sort, offset=(request.page - 1) * request.limit,
            limit=request.limit, facets=True, suggest=True,
            time_budget=self.settings.search_time_budget_s or None,
        )
        result = self.engine.search_claims(engine_query)
        if result.suggestion and not self._suggestion_helps(engine_query, result, request.expand):
            result = replace(result, suggestion=None)
        return self._page(request, result, expansions)

    def _suggestion_helps(self, asked: EngineQuery, result: EngineResult, expand: bool) -> bool:
        """Whether the respelled query matches better than the one typed.

        The speller respells every word it does not know to the nearest index word, which for a
        query about something the knowledge base does not hold is noise ("ketamine cures cancer"
        -> "ketamine care center"). So the suggestion runs too, cheaply (one hit, no facets, no
        time budget beyond the asked one), and is kept only when it matches where the typed
        query matched nothing, or its best match has all of its content words and the typed
        query's best match had no larger share of its own.
        """
        text = result.suggestion or ""
        try:
            parsed = grammar.parse(text, QUERY_FIELDS)
        except BadQuery:
            return False
        trial = self.engine.search_claims(replace(
            asked, text=text, parsed=parsed, offset=0, limit=1, facets=False, suggest=False,
            expansions=self._expansions(parsed.positive_text()) if expand else ()))
        if not trial.total:
            return False
        if not result.total:
            return True

        def share(r: EngineResult) -> float:
            return r.best_coverage / r.content_words if r.content_words else 0.0

        # Whole, and no worse: some claim has every content word of the respelled query, so a
        # respelling that only swaps one unmatched word for another (2 of 3) is not offered;
        # "ketamin" -> "ketamine" (the same stem, so an equal match) still is: it is the word.
        return trial.best_coverage == trial.content_words and share(trial) >= share(result)

    def _page(self, request: SearchRequest, result: EngineResult,
              expansions: tuple[tuple[str, tuple[str, ...]], ...]) -> SearchPage:
        vocab = self.store.vocabulary
        hits = []
        for hit in result.hits:
            claim = self.store.claim_by_id[hit.id]
            source = self.store.source_by_id[claim.source_id]
            hits.append(ClaimHit(claim=self._claim_dict(claim), source=self.card(source),
                                 score=hit.score, highlight=hit.highlight))
        facets: dict[str, tuple[FacetValue, ...]] = {}
        for kind in FILTER_KINDS:
            counts = result.facets.get(kind, {})
            selected = set(request.filters.get(kind, ()))
            values = [FacetValue(t, vocab.label(t), n, t in selected)
                      for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], vocab.label(kv[0])))]
            facets[kind] = tuple(values)
        filters: dict[str, Any] = {k: list(v) for k, v in request.filters.items()}
        if request.sources:
            filters["source"] = list(request.sources)
        if request.stance:
            filters["stance"] = list(request.stance)
        if request.year_from is not None:
            filters["year_from"] = request.year_from
        if request.year_to is not None:
            filters["year_to"] = request.year_to
        if request.exclude_retracted:
            filters["exclude_retracted"] = True
        did_you_mean = result.suggestion if result.suggestion and result.suggestion != request.q else None
        return SearchPage(
            query=request.q, total=result.total, page=request.page, limit=request.limit,
            sort=request.sort, hits=tuple(hits), facets=facets, years=result.years, filters=filters,
            expanded_terms=tuple({"id": t, "label": vocab.label(t),
                                  "kind": vocab.get(t).kind if vocab.get(t) else ""}  # type: ignore[union-attr]
                                 for t, _ in expansions),
            did_you_mean=did_you_mean, partial=result.partial, year_levels=result.year_levels,
            weak_match=result.weak,
        )

    @property
    def matcher(self) -> Matcher:
        """The claim -> evidence matcher over this build (shared by search and the checker)."""
        if self._matcher is None:
            self._matcher = Matcher(self)
        return self._matcher

    def match_claims(self, sentence: str, limit: int = 10) -> list[ClaimMatch]:
        """Claims most likely to back *sentence*, each with its source and shared terms."""
        return self.matcher.match_claims(sentence, limit)

    def match_sources(self, sentence: str, limit: int = 10) -> list[SourceMatch]:
        """Sources most likely to back *sentence*, with the claims that earned their score."""
        return self.matcher.match_sources(sentence, limit)

    def search_sources(self, text: str, limit: int = 20) -> list[tuple[Source, float]]:
        """Rank sources by title, abstract and summary (no facets)."""
        result = self.engine.search_sources(EngineQuery(text=text, parsed=ParsedQuery.of_words(text),
                                                        limit=limit, facets=False,
                                                        expansions=self._expansions(text)))
        return [(self.store.source_by_id[h.id], h.score) for h in result.hits]

    # --- suggestions and exports (search page, source page) --------------------------------

    def suggest(self, prefix: str, limit: int = 8) -> list[dict[str, Any]]:
        """Vocabulary terms and source titles that complete *prefix*, for the search box.

        Terms match when their label or a synonym starts with the prefix (or one of their words
        does); titles when every word of the prefix starts a word of the title. Terms that tag
        no claim are left out: suggesting them would lead to an empty page. Best first: prefix
        of the whole phrase, then of a word; then terms before titles; then by claim count.
        """
        if len(prefix) > self.settings.max_query_chars:
            raise BadQuery(f"The text is {len(prefix)} characters long; the limit is "
                           f"{self.settings.max_query_chars}")
        if not 1 <= limit <= 20:
            raise BadQuery("limit must be between 1 and 20")
        wanted = _suggest_key(prefix)
        if not wanted:
            return []
        words = wanted.split()
        found: list[tuple[tuple[float, int, str], dict[str, Any]]] = []
        for entry in self._suggest_terms:
            best: tuple[int, str] | None = None
            for key, phrase in entry["phrases"]:
                rank = 0 if key.startswith(wanted) else 1 if f" {wanted}" in f" {key}" else None
                if rank is not None and (best is None or rank < best[0]):
                    best = (rank, phrase)
            if best is not None:
                found.append(((best[0], -entry["claims"], entry["label"].casefold()),
                              {"type": "term", "kind": entry["kind"], "id": entry["id"],
                               "label": entry["label"], "matched": best[1], "claims": entry["claims"]}))
        for key, source in self._suggest_titles:
            title_words = key.split()
            if key.startswith(wanted) or all(any(t.startswith(w) for t in title_words) for w in words):
                found.append(((2, -(source.year or 0), key),
                              {"type": "source", "id": source.id, "label": source.title,
                               "year": source.year, "authors": short_authors(source)}))
        found.sort(key=lambda pair: pair[0])
        return [item for _, item in found[:limit]]

    @cached_property
    def _suggest_terms(self) -> list[dict[str, Any]]:
        """Terms with the claims they tag (including narrower terms), and their match keys."""
        entries = []
        for term in self.vocabulary_terms():
            if not term["claims_including_narrower"]:
                continue
            phrases = [(_suggest_key(p), p) for p in (term["label"], *term["synonyms"])]
            entries.append({"id": term["id"], "kind": term["kind"], "label": term["label"],
                            "claims": term["claims_including_narrower"], "phrases": phrases})
        return entries

    @cached_property
    def _suggest_titles(self) -> list[tuple[str, Source]]:
        return [(_suggest_key(source.title), source) for source in self.store.sources]

    def export_source(self, source_id: str, fmt: str) -> tuple[Source, str]:
        """The source and its export in *fmt* (bibtex, ris, csl-json); BadQuery for other formats."""
        from kb.exports import EXPORT_FORMATS, export

        if fmt not in EXPORT_FORMATS:
            raise BadQuery(f"Unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
        source = self.source(source_id)
        return source, export(source, fmt)

    def check(self, text: str, content_type: str | None = None, limits: CheckLimits | None = None,
              exclude_retracted: bool = True) -> CheckResult:
        """Check every claim of an article (plain text, Markdown or HTML) against this build.

        See ``kb.check``: verdicts per sentence with evidence, references resolved to sources,
        and citation problems. BadRequest for empty text, PayloadTooLarge over the upload limit.
        *limits* caps the work (default: the settings' caps, ``kb.check.UNLIMITED`` for none).
        *exclude_retracted* off shows claims of retracted sources (flagged) among the evidence.
        """
        from kb.check import check_article  # the checker builds on this facade; import it late

        return check_article(text, self, content_type, limits, exclude_retracted)


# The valid range of every integer a search takes. Checked at the edge, because an integer the
# index cannot hold (a year of 2**31) fails deep in the engine instead of as a clear 400.
YEARS = (0, 9999)
MAX_PAGE = 10_000


def check_numbers(request: SearchRequest, max_page_size: int) -> None:
    """BadQuery naming the parameter and its valid range when a number of *request* is outside it."""
    bounds = {"page": (1, MAX_PAGE), "limit": (1, max_page_size), "year_from": YEARS, "year_to": YEARS}
    for name, (low, high) in bounds.items():
        value = getattr(request, name)
        if value is not None and not low <= value <= high:
            shown = str(value) if len(str(value)) <= 20 else str(value)[:20] + "..."
            raise BadQuery(f"{name} must be between {low} and {high}, not {shown}")


# Tag kinds that say what a claim is about; "design" says how it was studied (related_claims).
SUBJECT_KINDS: tuple[str, ...] = ("condition", "mechanism", "intervention", "outcome")


def _subject_tags(claim: Claim) -> set[str]:
    return {t for kind in SUBJECT_KINDS for t in claim.tags.get(kind, ())}


def _mesh(vocab: Vocabulary, term_id: str) -> str:
    """A term's MeSH descriptor id for pages and the API; "" when it has none."""
    term = vocab.get(term_id)
    return term.mesh if term is not None else ""


def _suggest_key(text: str) -> str:
    """Fold case and treat hyphens, dashes, slashes and punctuation as spaces, for prefix matching."""
    import re

    return " ".join(re.split(r"[\s\-\u2010-\u2015/,.;:()\[\]'\"]+", text.casefold())).strip()


def _request_key(request: SearchRequest) -> tuple[object, ...]:
    return (request.q, tuple(sorted(request.filters.items())), request.sources, request.stance,
            request.year_from, request.year_to, request.sort, request.page, request.limit,
            request.expand, request.exclude_retracted)


def _year_range(value: str, year_from: int | None, year_to: int | None) -> tuple[int | None, int | None]:
    """``year:2015``, ``year:2010-2015``, ``year:2010-`` or ``year:-2015`` as (from, to)."""
    low, dash, high = value.partition("-")
    try:
        first = int(low) if low.strip() else None
        last = (int(high) if high.strip() else None) if dash else first
    except ValueError:
        raise BadQuery(f"year:{value} is not a year or a range of years: write, for example, "
                       "year:2015 or year:2010-2015") from None
    for year in (first, last):
        if year is not None and not 0 <= year <= 9999:
            raise BadQuery(f"year:{value} is out of range: years run from 0 to 9999, for example: "
                           "year:2010-2015")
    return (first if first is not None else year_from), (last if last is not None else year_to)
