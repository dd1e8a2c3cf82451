"""The search engine seam: the only package that imports Whoosh.

The rest of Evidence KB talks to an engine through ``SearchEngine`` (reading) and
``write_engine`` (building). A scale-out engine such as OpenSearch would implement the same two,
and nothing outside this package would change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from kb.models import Claim, Source
from kb.query import EngineQuery, EngineResult
from kb.vocabulary import Vocabulary


class SearchEngine(Protocol):
    """A read-only view of one built index."""

    def search_claims(self, query: EngineQuery) -> EngineResult:
        """Rank claims for *query*; raise kb.errors.BadQuery when it cannot run."""
        ...

    def search_sources(self, query: EngineQuery) -> EngineResult:
        """Rank sources (title, abstract, summary) for *query*."""
        ...

    def close(self) -> None: ...


def write_engine(build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim],
                 vocabulary: Vocabulary, progress: Callable[[int], None] | None = None) -> None:
    """Write the engine's files for *sources* and *claims* into *build_dir*.

    *claims* must be in the order the store keeps them: engines may rely on it.
    """
    from kb.search.whoosh_engine import write

    write(build_dir, sources, claims, vocabulary, progress)


def open_engine(build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim]) -> SearchEngine:
    """Open the engine files in *build_dir* read-only."""
    from kb.search.whoosh_engine import WhooshEngine

    return WhooshEngine(build_dir, sources, claims)
