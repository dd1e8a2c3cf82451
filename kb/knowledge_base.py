"""KnowledgeBase: the one facade the CLI, the web app and the article checker use.

It only delegates. The work lives where a newcomer would look for it: ``kb.opened_build`` (the
build's store and engine, opened and closed as one), ``kb.views`` (one data function per view),
``kb.searching`` (validation, the engine query, the page), ``kb.suggestions`` (the search box),
``kb.matching`` (sentence -> evidence) and ``kb.check`` (articles). What the facade adds is
what belongs to one served build and not to a view: the cache of search pages and the gate
that admission control holds around a search the cache does not answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from kb import searching, suggestions, views
from kb.check import CheckLimits, check_article
from kb.check.result import CheckResult
from kb.config import Settings
from kb.errors import BadQuery
from kb.exports import EXPORT_FORMATS, export
from kb.matching import ClaimMatch, Matcher, SourceMatch, matcher_for
from kb.models import Claim, Source
from kb.opened_build import OpenedBuild
from kb.query import SearchPage, SearchRequest
from kb.search import SearchEngine
from kb.searching import QUERY_FIELDS, check_numbers
from kb.store import Store
from kb.views import SUBJECT_KINDS
from kb.vocabulary import Vocabulary

__all__ = ["QUERY_FIELDS", "SUBJECT_KINDS", "KnowledgeBase", "check_numbers"]


class KnowledgeBase:
    """A read-only view of one build of the knowledge base."""

    def __init__(self, build: OpenedBuild) -> None:
        self.build = build
        # cachetools' LRU is not thread-safe: every use holds the lock.
        self._cache: LRUCache[tuple[object, ...], SearchPage] = LRUCache(max(1, build.settings.search_cache_size))
        self._cache_lock = threading.Lock()
        # Held around every search the cache does not answer: the web app's admission control
        # (kb.web.admission) puts its search slot here, so cached pages never wait for a slot.
        self.search_gate: Callable[[], AbstractContextManager[object]] = nullcontext

    @classmethod
    def open(cls, settings: Settings) -> KnowledgeBase:
        """Open the build that index/CURRENT (or the engine's database) names; IndexUnavailable
        when there is none."""
        return cls(OpenedBuild.open(settings))

    def close(self) -> None:
        self.build.close()

    # The build's parts, for the adapters (a page's cache key, the health view, the CLI).
    @property
    def settings(self) -> Settings:
        return self.build.settings

    @property
    def build_dir(self) -> Path | None:
        return self.build.build_dir

    @property
    def store(self) -> Store:
        return self.build.store

    @property
    def engine(self) -> SearchEngine:
        return self.build.engine

    @property
    def manifest(self) -> dict[str, Any]:
        return self.build.manifest

    @property
    def build_name(self) -> str:
        return self.build.name

    @property
    def vocabulary(self) -> Vocabulary:
        return self.build.vocabulary

    # --- views (kb.views) ---------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The manifest of the served build."""
        return dict(self.manifest)

    def stats(self) -> dict[str, Any]:
        """Counts of sources and claims, claims per term of each kind, and tagging coverage."""
        return views.stats(self.build)

    def vocabulary_terms(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every vocabulary term with the number of claims tagged with it or a descendant."""
        return views.vocabulary_terms(self.build, kind)

    def evidence_map(self, rows: str = "condition", columns: str = "mechanism") -> dict[str, Any]:
        """Claim counts for every (row term, column term) pair, with the strongest evidence level."""
        return views.evidence_map(self.build, rows, columns)

    def source(self, source_id: str) -> Source:
        """The source with this id (or a DOI/PMID as "doi:..."/"pmid:..."); NotFound otherwise."""
        return views.require_source(self.build, source_id)

    def find_source(self, identifier: str) -> Source | None:
        """Look a source up by id, "doi:...", a bare DOI, or "pmid:..."; None if unknown."""
        return self.build.find_source(identifier)

    def claims_for(self, source_id: str) -> list[Claim]:
        return views.claims_for(self.build, source_id)

    def claim(self, claim_id: str) -> Claim:
        return views.require_claim(self.build, claim_id)

    def design_label(self, source: Source) -> str:
        return views.design_label(self.build, source)

    def card(self, source: Source) -> dict[str, Any]:
        return views.card(self.build, source)

    def source_view(self, source_id: str) -> dict[str, Any]:
        """A source with its citations, verification, and its claims grouped by stance."""
        return views.source_view(self.build, source_id)

    def claim_view(self, claim_id: str, related: int = 10) -> dict[str, Any]:
        """A claim, its source, and claims of other sources that share its terms."""
        return views.claim_view(self.build, claim_id, related)

    def related_claims(self, claim: Claim, limit: int = 10) -> list[tuple[Claim, list[str]]]:
        """Claims of other sources about the same subject (see ``kb.views.related_claims``)."""
        return views.related_claims(self.build, claim, limit)

    # --- search (kb.searching) ------------------------------------------------------------

    def validate(self, request: SearchRequest) -> SearchRequest:
        """Check a request against limits and the vocabulary; BadQuery says how to fix it."""
        return searching.validate(self.build, request)

    def search(self, request: SearchRequest) -> SearchPage:
        """Search claims; every hit carries its source.

        Results are cached per build (a build never changes), keyed by the validated request:
        popular searches cost a dictionary look-up. ``settings.search_cache_size = 0`` disables it.
        """
        request = self.validate(request)
        if not self.settings.search_cache_size:
            with self.search_gate():
                return searching.run_search(self.build, request)
        key = searching.request_key(request)
        with self._cache_lock:
            page = self._cache.get(key)
            if page is not None:
                return page
        with self.search_gate():
            page = searching.run_search(self.build, request)
        if page.partial:
            return page  # a busy moment cut it short; the next request may get it whole
        with self._cache_lock:
            self._cache[key] = page
        return page

    def search_sources(self, text: str, limit: int = 20) -> list[tuple[Source, float]]:
        """Rank sources by title, abstract and summary (no facets)."""
        return searching.search_sources(self.build, text, limit)

    def suggest(self, prefix: str, limit: int = 8) -> list[dict[str, Any]]:
        """Vocabulary terms and source titles that complete *prefix*, for the search box."""
        return suggestions.suggest(self.build, prefix, limit)

    # --- evidence for sentences (kb.matching) and articles (kb.check) ----------------------

    @property
    def matcher(self) -> Matcher:
        """The claim -> evidence matcher over this build (shared by search and the checker)."""
        return matcher_for(self.build)

    def match_claims(self, sentence: str, limit: int = 10) -> list[ClaimMatch]:
        """Claims most likely to back *sentence*, each with its source and shared terms."""
        return self.matcher.match_claims(sentence, limit)

    def match_sources(self, sentence: str, limit: int = 10) -> list[SourceMatch]:
        """Sources most likely to back *sentence*, with the claims that earned their score."""
        return self.matcher.match_sources(sentence, limit)

    def check(self, text: str, content_type: str | None = None, limits: CheckLimits | None = None,
              exclude_retracted: bool = True) -> CheckResult:
        """Check every claim of an article (plain text, Markdown or HTML) against this build.

        See ``kb.check``: verdicts per sentence with evidence, references resolved to sources,
        and citation problems. BadRequest for empty text, PayloadTooLarge over the upload limit.
        *limits* caps the work (default: the settings' caps, ``kb.check.UNLIMITED`` for none).
        *exclude_retracted* off shows claims of retracted sources (flagged) among the evidence.
        """
        return check_article(text, self.build, content_type, limits, exclude_retracted)

    # --- exports (kb.exports) ---------------------------------------------------------------

    def export_source(self, source_id: str, fmt: str) -> tuple[Source, str]:
        """The source and its export in *fmt* (bibtex, ris, csl-json); BadQuery for other formats."""
        if fmt not in EXPORT_FORMATS:
            raise BadQuery(f"Unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
        source = self.source(source_id)
        return source, export(source, fmt)
