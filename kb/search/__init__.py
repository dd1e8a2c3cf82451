"""The search engine seam: the only package that imports Whoosh or a database driver.

The rest of Evidence KB talks to an engine through ``SearchEngine`` (reading) and
``write_engine`` (building). Two engines implement them: Whoosh with the build's arrays, in the
index folder (embedded, the default), and PostgreSQL (``kb.search.postgres``), chosen by an
engine URL (``Settings.engine``): a build is made as for the embedded engine, then published
into the database (``publish_build``) and served from it (``open_published``). A scale-out engine
such as OpenSearch would implement the same functions, and nothing outside this package would
change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kb.models import Claim, Source
from kb.query import EngineQuery, EngineResult
from kb.store import Store
from kb.vocabulary import Vocabulary

Ranked = tuple[tuple[str, float], ...]  # (claim or source id, score), best first


@dataclass(frozen=True, slots=True)
class MatchSignals:
    """What each of an engine's matching indexes says about one sentence, for the matcher to fuse.

    Lexical scores are BM25 (claims are scored on their text and their source's title; sources on
    title, abstract and summary). Semantic scores are cosine similarities of sentence embeddings,
    present only for a build made with them; otherwise the semantic lists are empty. The
    ``best_claims`` lists rank sources by the score of their best claim.
    """

    claims: Ranked  # claim ids
    sources: Ranked  # source ids
    best_claims: Ranked = ()  # source ids, by their best claim's lexical score
    claims_semantic: Ranked = ()
    sources_semantic: Ranked = ()
    best_claims_semantic: Ranked = ()
    terms: tuple[str, ...] = ()  # the sentence's index terms that occur in the knowledge base


class SearchEngine(Protocol):
    """A read-only view of one built index."""

    def search_claims(self, query: EngineQuery) -> EngineResult:
        """Rank claims for *query*; raise kb.errors.BadQuery when it cannot run."""
        ...

    def search_sources(self, query: EngineQuery) -> EngineResult:
        """Rank sources (title, abstract, summary) for *query*."""
        ...

    def match_signals(self, text: str, claim_limit: int, source_limit: int,
                      sources: Sequence[str] = (), semantic: bool = True,
                      expansions: Sequence[str] = ()) -> MatchSignals:
        """Score every claim and source against free *text* (no query syntax) for the matcher.

        *sources* restricts both lists to those source ids; *semantic* False skips embeddings;
        *expansions* are phrases (vocabulary synonyms) whose words count at a lower weight.
        """
        ...

    def close(self) -> None: ...


def write_engine(build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim],
                 vocabulary: Vocabulary, progress: Callable[[int], None] | None = None,
                 semantic: bool | None = None) -> None:
    """Write the engine's files for *sources* and *claims* into *build_dir*.

    *claims* must be in the order the store keeps them: engines may rely on it. *semantic*
    (default: the KB_SEMANTIC environment variable) also stores sentence embeddings for the
    matcher; it needs the semantic extra installed.
    """
    from kb.search.whoosh_engine import write

    write(build_dir, sources, claims, vocabulary, progress, semantic=semantic)


def open_engine(build_dir: Path, sources: Sequence[Source], claims: Sequence[Claim]) -> SearchEngine:
    """Open the engine files in *build_dir* read-only."""
    from kb.search.whoosh_engine import WhooshEngine

    return WhooshEngine(build_dir, sources, claims)


def is_published_engine(engine: str) -> bool:
    """Whether *engine* (``Settings.engine``) names a database engine rather than the index folder."""
    from kb.search import postgres

    return postgres.is_engine_url(engine)


def engine_label(engine: str) -> str:
    """*engine* as it may be shown: a database URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(engine)
    if parts.password is None:
        return engine
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def check_engine(engine: str) -> None:
    """Refuse an engine setting no engine understands, with the fix."""
    from kb.errors import BadRequest

    if engine and not is_published_engine(engine):
        raise BadRequest(f"Unknown engine {engine!r}: leave it empty for the embedded engine or give a "
                         "postgresql://user@host:port/database URL")


def publish_build(engine: str, build_dir: Path, progress: Callable[[int], None] | None = None) -> str:
    """Publish the finished build in *build_dir* into *engine* and serve it there; its name."""
    from kb.search import postgres

    return postgres.publish(engine, build_dir, progress)


def published_build(engine: str) -> str | None:
    """The name of the build *engine* serves now (None when it holds none); cheap, for polling."""
    from kb.search import postgres

    return postgres.served_schema(engine)


def published_manifest(engine: str) -> dict[str, Any] | None:
    """The manifest of the build *engine* serves now (None when it holds none)."""
    from kb.search import postgres

    return postgres.served_manifest(engine)


def open_published(engine: str) -> tuple[str, Store, SearchEngine, dict[str, Any]]:
    """(build name, store, engine, manifest) of the build *engine* serves; IndexUnavailable if none."""
    from kb.search import postgres

    opened = postgres.open_build(engine)
    return opened.schema, opened.store, opened.engine, opened.manifest
