"""The PostgreSQL engine: a build published into its own schema, searched with SQL.

A build is made as for the embedded engine (``kb.build``: parse, extract, tag, order) and then
published: one transaction creates a schema ``kb_build_<name>`` with the record store (the same
``sources``, ``claims`` and ``terms`` tables as ``store.sqlite``), a ``tsvector`` per claim and
per source with a GIN index, the per-field term statistics BM25 needs, the tag columns facets and
filters read, and the matcher's arrays as blobs; the same transaction switches the one pointer
row (``kb_served``) to the new schema and drops schemas older than the one it replaced. Readers
resolve the pointer once per opened build, so they never see a mixed index, and a streaming
replica serves the same builds as soon as the commit reaches it.

The analyzer is the project's own (``kb.search.analysis``): the tsvectors hold its stems, written
as literals, so PostgreSQL's text-search configurations play no part and both engines match the
same words. Searching has two steps. SQL finds every match (the GIN index), counts the total, the
facets and the years over all of them, and orders them by ``ts_rank`` with the field weights to
a candidate set (``PRESELECT``); Python then scores those candidates with BM25F from the stored
term statistics (the classic idf, k1 1.2, b 0.75: the embedded array search's numbers), with the
same coordination, vocabulary expansion and evidence prior, and pages them. ``ts_rank`` knows no
idf, so the candidate set is the one approximation: bench/scale.py measures what it costs on
SciFact beside the embedded engine.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb import grammar
from kb.errors import BadQuery, Busy, IndexUnavailable
from kb.models import TAG_KINDS, Claim, Source
from kb.query import EngineHit, EngineQuery, EngineResult
from kb.search import MatchSignals, matchindex
from kb.search import semantic as semantic_module
from kb.search.analysis import index_terms
from kb.search.claimindex import terms_text
from kb.search.lexical import K1, B
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
from kb.store import RowReader, Store
from kb.vocabulary import Vocabulary

URL_SCHEMES = ("postgresql://", "postgres://")
POINTER = "kb_served"  # one row: the schema readers serve
PREFIX = "kb_build_"
KEEP_SCHEMAS = 2  # the served build and the one before it, for readers still holding it
MATCH_FILES = (matchindex.CLAIMS_FILE, matchindex.SOURCES_FILE, semantic_module.CLAIM_VECTORS,
               semantic_module.SOURCE_VECTORS)
PRESELECT = 1000  # candidates ts_rank passes to BM25F scoring
SPREAD_CANDIDATES = 400  # as the array search: a one-term query spreads sources over these
COVERAGE_CANDIDATES = 50
POOL_SIZE = 8  # connections per opened build: one per server thread
# Where each field's positions start in a tsvector, so a phrase never runs from one into the next.
FIELD_START = {"A": 1, "B": 4001, "C": 8001}
MAX_POSITION = 16383  # PostgreSQL's largest tsvector position
_SCHEMA_NAME = re.compile(r"[^a-z0-9_]")

# Each engine field as a tsvector weight: A the claim text (or a source's title), B its title (a
# source's abstract and summary), C its tags' words.
CLAIM_FIELDS = {"A": ("text", CLAIM_FIELD_BOOSTS["text"]), "B": ("title", CLAIM_FIELD_BOOSTS["title"]),
                "C": ("terms", CLAIM_FIELD_BOOSTS["terms"])}
SOURCE_FIELDS = {"A": ("title", SOURCE_FIELD_BOOSTS["title"]), "B": ("text", SOURCE_FIELD_BOOSTS["text"]),
                 "C": ("terms", SOURCE_FIELD_BOOSTS["terms"])}

_TABLES = """
CREATE TABLE sources (pos integer PRIMARY KEY, id text NOT NULL UNIQUE, data text NOT NULL,
                      level smallint NOT NULL, year smallint NOT NULL, retracted boolean NOT NULL,
                      len_a integer NOT NULL, len_b integer NOT NULL, len_c integer NOT NULL,
                      tsv tsvector NOT NULL);
CREATE TABLE claims (pos integer PRIMARY KEY, id text NOT NULL UNIQUE, source_id text NOT NULL,
                     source_pos integer NOT NULL, stance text, tags text NOT NULL, data text NOT NULL,
                     level smallint NOT NULL, year smallint NOT NULL, retracted boolean NOT NULL,
                     own_tags text[] NOT NULL, all_tags text[] NOT NULL,
                     len_a integer NOT NULL, len_b integer NOT NULL, len_c integer NOT NULL,
                     tsv tsvector NOT NULL);
CREATE TABLE terms (pos integer PRIMARY KEY, data text NOT NULL);
CREATE TABLE lexicon (scope text NOT NULL, lexeme text NOT NULL, df_a integer NOT NULL,
                      df_b integer NOT NULL, df_c integer NOT NULL, PRIMARY KEY (scope, lexeme));
CREATE TABLE field_stats (scope text PRIMARY KEY, records integer NOT NULL, avg_a float8 NOT NULL,
                          avg_b float8 NOT NULL, avg_c float8 NOT NULL);
CREATE TABLE tag_claims (tag text PRIMARY KEY, claims integer NOT NULL);
CREATE TABLE spelling (word text PRIMARY KEY, frequency integer NOT NULL);
CREATE TABLE blobs (name text PRIMARY KEY, data bytea NOT NULL);
CREATE TABLE manifest (data text NOT NULL);
"""
_INDEXES = """
CREATE INDEX claims_tsv ON claims USING gin (tsv);
CREATE INDEX claims_tags ON claims USING gin (all_tags);
CREATE INDEX claims_by_source ON claims (source_id, pos);
CREATE INDEX sources_tsv ON sources USING gin (tsv);
CREATE INDEX lexicon_prefix ON lexicon (scope, lexeme text_pattern_ops);
"""


def is_engine_url(value: str) -> bool:
    """Whether *value* names a PostgreSQL database (``postgresql://…``)."""
    return value.startswith(URL_SCHEMES)


def schema_name(build: str) -> str:
    """The schema a build is published into: its name folded to a plain identifier."""
    return (PREFIX + _SCHEMA_NAME.sub("_", build.lower()))[:63]


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as error:  # pragma: no cover - the extra is installed with the engine
        raise IndexUnavailable("the PostgreSQL engine needs psycopg: pip install 'evidence-kb[postgresql]'") \
            from error
    return psycopg


def _connect(url: str, **kwargs: Any) -> Any:
    psycopg = _psycopg()
    try:
        return psycopg.connect(url, connect_timeout=10, **kwargs)
    except psycopg.OperationalError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise IndexUnavailable(f"cannot reach the PostgreSQL engine ({first}); check --engine / KB_ENGINE") \
            from error


# --- publishing ---------------------------------------------------------------------------

def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _tsvector(fields: Iterable[tuple[str, Sequence[str]]]) -> str:
    """A tsvector literal of (weight, stems) fields, each from its own start position."""
    positions: dict[str, list[str]] = {}
    for weight, stems in fields:
        start = FIELD_START[weight]
        for n, stem in enumerate(stems):
            slots = positions.setdefault(stem, [])
            if len(slots) < 256:  # PostgreSQL keeps at most 256 positions per lexeme
                slots.append(f"{min(start + n, MAX_POSITION)}{weight}")
    return " ".join(f"{_quote(stem)}:{','.join(slots)}" for stem, slots in positions.items())


class _FieldCounts:
    """Document frequencies per field and total lengths, for one scope (claims or sources)."""

    def __init__(self) -> None:
        self.df: dict[str, list[int]] = {}
        self.lengths = [0, 0, 0]
        self.records = 0

    def add(self, fields: Sequence[Sequence[str]]) -> None:
        self.records += 1
        for n, stems in enumerate(fields):
            self.lengths[n] += len(stems)
            for stem in set(stems):
                counts = self.df.get(stem)
                if counts is None:
                    counts = self.df[stem] = [0, 0, 0]
                counts[n] += 1

    def averages(self) -> list[float]:
        return [(length / self.records if self.records else 0.0) or 1.0 for length in self.lengths]


def _with_ancestors(ids: Iterable[str], vocabulary: Vocabulary, cache: dict[str, tuple[str, ...]]
                    ) -> set[str]:
    found: set[str] = set()
    for term_id in ids:
        if term_id not in cache:
            cache[term_id] = (term_id, *sorted(vocabulary.ancestors(term_id)))
        found.update(cache[term_id])
    return found


_SPELL_WORD = re.compile(r"[^\W\d_]{4,}")


def publish(url: str, build_dir: Path, progress: Callable[[int], None] | None = None) -> str:
    """Publish the build in *build_dir* into the database at *url* and serve it; return its schema.

    Everything happens in one transaction: an interrupted publish leaves nothing behind and the
    build served before it stays served.
    """
    from psycopg import sql

    manifest = json.loads((build_dir / "manifest.json").read_text(encoding="utf-8"))
    schema = schema_name(str(manifest["build"]))
    store = Store.read(build_dir)
    try:
        with _connect(url) as connection:
            _ensure_pointer(connection)
            connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            connection.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
            connection.execute(_TABLES)
            _copy_store(connection, store, build_dir, progress)
            with connection.cursor().copy("COPY blobs (name, data) FROM STDIN") as copy:
                for name in MATCH_FILES:
                    if (build_dir / name).is_file():
                        copy.write_row((name, (build_dir / name).read_bytes()))
            connection.execute("INSERT INTO manifest VALUES (%s)", (json.dumps(manifest),))
            connection.execute(_INDEXES)
            connection.execute("ANALYZE")
            connection.execute("SET LOCAL search_path TO public")
            previous = _pointer(connection)
            connection.execute(
                f"INSERT INTO {POINTER} (singleton, schema_name, build, switched_at) "
                "VALUES (true, %s, %s, now()) ON CONFLICT (singleton) DO UPDATE SET "
                "schema_name = excluded.schema_name, build = excluded.build, switched_at = now()",
                (schema, manifest["build"]))
            keep = {schema, previous}
            for (old,) in connection.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY nspname",
                    (PREFIX.replace("_", r"\_") + "%",)).fetchall():
                if old not in keep:
                    connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(old)))
    finally:
        store.close()
    return schema


def _copy_store(connection: Any, store: Store, build_dir: Path,
                progress: Callable[[int], None] | None) -> None:
    vocabulary = store.vocabulary
    ancestors: dict[str, tuple[str, ...]] = {}
    source_counts, claim_counts = _FieldCounts(), _FieldCounts()
    spelling: Counter[str] = Counter()
    titles: dict[str, list[str]] = {}
    with connection.cursor().copy(
            "COPY sources (pos, id, data, level, year, retracted, len_a, len_b, len_c, tsv) FROM STDIN"
    ) as copy:
        for pos, source in enumerate(store.sources):
            title = index_terms(source.title)
            titles[source.id] = title
            text = index_terms("\n".join(filter(None, (source.abstract, source.summary))))
            tags = index_terms(" ; ".join([terms_text(source.tags, vocabulary), *source.keywords]))
            source_counts.add((title, text, tags))
            spelling.update(_SPELL_WORD.findall(source.title.lower()))
            copy.write_row((pos, source.id, _json(source.to_dict()), source.evidence_level or UNRANKED_LEVEL,
                            source.year or 0, bool(source.retracted), len(title), len(text), len(tags),
                            _tsvector((("A", title), ("B", text), ("C", tags)))))
    by_id = store.source_by_id
    position = {source.id: n for n, source in enumerate(store.sources)}
    tag_words: dict[tuple[tuple[str, tuple[str, ...]], ...], list[str]] = {}
    tag_claims: Counter[str] = Counter()
    with connection.cursor().copy(
            "COPY claims (pos, id, source_id, source_pos, stance, tags, data, level, year, retracted, "
            "own_tags, all_tags, len_a, len_b, len_c, tsv) FROM STDIN") as copy:
        for pos, claim in enumerate(store.claims):
            source = by_id[claim.source_id]
            text = index_terms(claim.text)
            key = tuple(sorted(claim.tags.items()))
            if key not in tag_words:
                tag_words[key] = index_terms(terms_text(claim.tags, vocabulary))
            tags = tag_words[key]
            title = titles[claim.source_id]
            claim_counts.add((text, title, tags))
            spelling.update(_SPELL_WORD.findall(claim.text.lower()))
            own = [f"{kind}:{term}" for kind, ids in claim.tags.items() for term in ids]
            every = sorted(f"{kind}:{term}" for kind, ids in claim.tags.items()
                           for term in _with_ancestors(ids, vocabulary, ancestors))
            tag_claims.update({tag.partition(":")[2] for tag in every})
            copy.write_row((pos, claim.id, claim.source_id, position[claim.source_id], claim.stance,
                            _json(dict(claim.tags)), _json(claim.to_dict()),
                            source.evidence_level or UNRANKED_LEVEL, source.year or 0,
                            bool(source.retracted), own, every, len(text), len(title), len(tags),
                            _tsvector((("A", text), ("B", title), ("C", tags)))))
            if progress and pos % 1000 == 999:
                progress(1000)
        if progress:
            progress(len(store.claims) % 1000)
    with connection.cursor().copy("COPY terms (pos, data) FROM STDIN") as copy:
        for pos, term in enumerate(vocabulary.terms.values()):
            copy.write_row((pos, _json(term.to_dict())))
    with connection.cursor().copy("COPY lexicon (scope, lexeme, df_a, df_b, df_c) FROM STDIN") as copy:
        for scope, counts in (("claims", claim_counts), ("sources", source_counts)):
            for lexeme, (a, b, c) in counts.df.items():
                copy.write_row((scope, lexeme, a, b, c))
    for scope, counts in (("claims", claim_counts), ("sources", source_counts)):
        connection.execute("INSERT INTO field_stats VALUES (%s, %s, %s, %s, %s)",
                           (scope, counts.records, *counts.averages()))
    with connection.cursor().copy("COPY tag_claims (tag, claims) FROM STDIN") as copy:
        for tag, count in tag_claims.items():
            copy.write_row((tag, count))
    with connection.cursor().copy("COPY spelling (word, frequency) FROM STDIN") as copy:
        for word, count in spelling.items():
            copy.write_row((word, count))


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _ensure_pointer(connection: Any) -> None:
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS public.{POINTER} (singleton boolean PRIMARY KEY DEFAULT true "
        "CHECK (singleton), schema_name text NOT NULL, build text NOT NULL, switched_at timestamptz NOT NULL)")


def _pointer(connection: Any) -> str | None:
    found = connection.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"public.{POINTER}",)).fetchone()
    if not found or not found[0]:
        return None
    row = connection.execute(f"SELECT schema_name FROM public.{POINTER}").fetchone()
    return str(row[0]) if row else None


def served_schema(url: str) -> str | None:
    """The schema the database serves now (None before the first publish)."""
    with _connect(url, autocommit=True) as connection:
        return _pointer(connection)


def served_manifest(url: str) -> dict[str, Any] | None:
    """The manifest of the build the database serves now (None before the first publish)."""
    from psycopg import sql

    with _connect(url, autocommit=True) as connection:
        schema = _pointer(connection)
        if schema is None:
            return None
        row = connection.execute(sql.SQL("SELECT data FROM {}.manifest").format(sql.Identifier(schema))
                                 ).fetchone()
        return json.loads(row[0]) if row else None


# --- reading ------------------------------------------------------------------------------

class _PostgresRows(RowReader):
    """The store's tables of one schema, read through the build's connection pool."""

    def __init__(self, pool: Any) -> None:
        super().__init__()
        self._pool = pool

    def execute(self, sql: str, args: Sequence[object]) -> list[tuple[Any, ...]]:
        with self._pool.connection() as connection:
            return list(connection.execute(sql.replace("?", "%s"), tuple(args)).fetchall())


@dataclass(frozen=True, slots=True)
class PostgresBuild:
    """One published build opened for reading: its store, its engine and its manifest."""

    schema: str
    store: Store
    engine: PostgresEngine
    manifest: dict[str, Any]


def open_build(url: str) -> PostgresBuild:
    """Open the build the database at *url* serves; IndexUnavailable when there is none."""
    from psycopg_pool import ConnectionPool

    schema = served_schema(url)
    if schema is None:
        raise IndexUnavailable("the PostgreSQL engine holds no build yet: run kb --engine URL build")
    pool = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=True, timeout=30,
                          kwargs={"autocommit": True, "options": f"-c search_path={schema}",
                                  "connect_timeout": 10})
    try:
        rows = _PostgresRows(pool)
        found = rows.one("SELECT data FROM manifest")
        if found is None:
            raise IndexUnavailable(f"build schema {schema} has no manifest: run kb --engine URL build")
        store = Store.over(rows)
        engine = PostgresEngine(pool, schema, store.sources, store.claims)
    except Exception as error:
        pool.close()
        if isinstance(error, IndexUnavailable):
            raise
        raise IndexUnavailable(f"build schema {schema} cannot be read ({error}); run kb --engine URL build") \
            from error
    return PostgresBuild(schema, store, engine, json.loads(found[0]))


@dataclass(frozen=True, slots=True)
class _Table:
    name: str  # claims or sources
    fields: dict[str, tuple[str, float]]  # tsvector weight -> (engine field, boost)
    claims: bool


_CLAIMS = _Table("claims", CLAIM_FIELDS, True)
_SOURCES = _Table("sources", SOURCE_FIELDS, False)


@dataclass(slots=True)
class _Clause:
    how: str  # any, all, phrase
    words: list[str]
    occur: str
    kind: str  # the grammar's clause kind


@dataclass(slots=True)
class _Candidate:
    pos: int
    level: int
    year: int
    source_pos: int
    lengths: tuple[int, int, int]
    tags: frozenset[str]  # expansion tags it carries
    tf: dict[str, tuple[int, int, int]]  # lexeme -> occurrences in fields A, B, C


class PostgresEngine:
    """Read-only searching over one published build; safe to share between threads."""

    def __init__(self, pool: Any, schema: str, sources: Sequence[Source], claims: Sequence[Claim]) -> None:
        self._pool = pool
        self.schema = schema
        self._sources = sources
        self._claims = claims
        self._source_ids = [source.id for source in sources]
        self._match: matchindex.MatchIndex | None = None
        self._lock = threading.Lock()
        self._spelling: dict[str, list[tuple[str, int]]] | None = None
        self._stats: dict[str, tuple[int, tuple[float, float, float]]] = {}
        for scope, records, a, b, c in self._query("SELECT scope, records, avg_a, avg_b, avg_c "
                                                   "FROM field_stats"):
            self._stats[scope] = (int(records), (float(a), float(b), float(c)))
        count = self._query("SELECT count(*) FROM claims")[0][0]
        if count != len(claims):
            raise RuntimeError("search tables and store disagree; rebuild with: kb build")

    def _query(self, sql: str, params: Sequence[object] | dict[str, object] = (),
               timeout_s: float | None = None) -> list[tuple[Any, ...]]:
        psycopg = _psycopg()
        with self._pool.connection() as connection:
            try:
                if timeout_s is None:
                    return list(connection.execute(sql, params).fetchall())
                with connection.transaction():
                    connection.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
                    return list(connection.execute(sql, params).fetchall())
            except psycopg.errors.QueryCanceled as error:
                raise Busy("The search took longer than its time budget; add words or filters to "
                           "narrow it, or retry in a few seconds", headers={"Retry-After": "5"}) from error

    def close(self) -> None:
        self._pool.close()

    # --- matching ---------------------------------------------------------------------

    def match_index(self) -> matchindex.MatchIndex:
        """The matcher's arrays, read from the build's blobs on first use."""
        with self._lock:
            if self._match is None:
                folder = Path(tempfile.mkdtemp(prefix="kb-match-"))
                try:
                    for name, data in self._query("SELECT name, data FROM blobs"):
                        (folder / name).write_bytes(bytes(data))
                    self._match = matchindex.MatchIndex(folder, self._sources, self._claims)
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
            return self._match

    def match_signals(self, text: str, claim_limit: int, source_limit: int,
                      sources: Sequence[str] = (), semantic: bool = True,
                      expansions: Sequence[str] = ()) -> MatchSignals:
        return self.match_index().signals(text, claim_limit, source_limit, sources, semantic, expansions)

    # --- searching --------------------------------------------------------------------

    def search_claims(self, q: EngineQuery) -> EngineResult:
        return self._search(_CLAIMS, q)

    def search_sources(self, q: EngineQuery) -> EngineResult:
        return self._search(_SOURCES, q)

    def _search(self, table: _Table, q: EngineQuery) -> EngineResult:
        parsed = q.parsed if q.parsed is not None else grammar.parse(q.text)
        scope = table.name
        clauses = [c for c in (self._resolve(scope, clause, parsed.limits) for clause in parsed.clauses)
                   if c is not None]
        has_text = bool(parsed.clauses)
        filters, params = self._filters(table, q)
        if not has_text and not filters:
            raise BadQuery("Empty search: type some words or choose a filter, for example: ketamine")
        one_term = table.claims and len(parsed.positive) == 1 and len(q.expansions) == 1
        expansion_tags = sorted({f"{kind}:{term_id}" for term_id, _ in q.expansions for kind in TAG_KINDS}) \
            if table.claims else []
        synonym_words: list[list[str]] = []
        if one_term:
            synonym_words = [w for _, phrases in q.expansions for p in phrases if (w := index_terms(p))]
        where = list(filters)
        rank = "0::float4"
        if has_text:
            positive = [c for c in clauses if c.occur != "must_not"]
            if not positive and not expansion_tags:
                raise BadQuery(f"Nothing searchable in {q.text!r}: use content words, for example: ketamine")
            musts = [_tsquery(c) for c in clauses if c.occur == "must"]
            shoulds = [_tsquery(c) for c in clauses if c.occur == "should"]
            shoulds += [_tsquery(_Clause("all" if len(w) > 1 else "any", w, "should", "phrase"))
                        for w in synonym_words]
            nots = [_tsquery(c) for c in clauses if c.occur == "must_not"]
            options: list[str] = []
            if musts:
                where.append("tsv @@ %(must)s::tsquery")
                params["must"] = " & ".join(musts)
            else:
                if shoulds:
                    options.append("tsv @@ %(should)s::tsquery")
                    params["should"] = " | ".join(shoulds)
                if expansion_tags:
                    options.append("all_tags && %(expansion)s::text[]")
                if not options:
                    raise BadQuery(f"Nothing searchable in {q.text!r}: use content words, for example: "
                                   "ketamine")
                where.append("(" + " OR ".join(options) + ")")
            if expansion_tags:
                params["expansion"] = expansion_tags
            if nots:
                where.append("NOT (tsv @@ %(not)s::tsquery)")
                params["not"] = " | ".join(nots)
            ranked = [_tsquery(_Clause("any", [w], "should", "word"))
                      for w in sorted({w for c in positive for w in c.words} |
                                      {w for words in synonym_words for w in words})]
            if ranked:
                weights = {letter: boost / 3.0 for letter, (_, boost) in table.fields.items()}
                rank = (f"ts_rank('{{0.1,{weights['C']:.3f},{weights['B']:.3f},{weights['A']:.3f}}}', "
                        "tsv, %(rank)s::tsquery)")
                params["rank"] = " | ".join(ranked)
            if expansion_tags:
                rank = f"({rank} + CASE WHEN all_tags && %(expansion)s::text[] THEN 0.5 ELSE 0 END)"
        order = _sql_order(q.sort, has_text)
        wanted = q.offset + q.limit
        preselect = max(PRESELECT, 2 * wanted, SPREAD_CANDIDATES if one_term else 0) if has_text else wanted
        params["preselect"] = preselect
        tag_column = "own_tags" if table.claims else "ARRAY[]::text[]"
        counted = q.facets and table.claims
        parts = ["SELECT 0, NULL::text, (year::bigint * 16 + level), count(*) FROM m GROUP BY year, level"]
        if counted:
            parts.append("SELECT 1, tag, NULL::bigint, count(*) FROM m, unnest(m.tags) tag GROUP BY tag")
        parts.append(f"(SELECT 2, NULL::text, pos::bigint, NULL::bigint FROM m ORDER BY {order} "
                     "LIMIT %(preselect)s)")
        sql = (f"WITH m AS MATERIALIZED (SELECT pos, year, level, {tag_column} AS tags, {rank} AS rank "
               f"FROM {table.name} WHERE {' AND '.join(where) or 'true'}) " + " UNION ALL ".join(parts))
        rows = self._query(sql, params, q.time_budget and max(2.0, 3 * q.time_budget))
        total = 0
        years: dict[int, int] = {}
        year_levels: dict[int, dict[int | None, int]] = {}
        facets: dict[str, dict[str, int]] = {}
        positions: list[int] = []
        for part, tag, number, count in rows:
            if part == 0:
                total += int(count)
                year, level = divmod(int(number), 16)
                if year > 0:
                    years[year] = years.get(year, 0) + int(count)
                    year_levels.setdefault(year, {})[None if level == UNRANKED_LEVEL else level] = int(count)
            elif part == 1:
                kind, _, term_id = str(tag).partition(":")
                facets.setdefault(kind, {})[term_id] = int(count)
            else:
                positions.append(int(number))
        if not has_text:
            return self._result(table, q, [(p, 0.0) for p in positions[q.offset:wanted]], set(), total,
                                facets, years, year_levels, [], 0)
        scored = self._score(table, q, clauses, positions, expansion_tags, synonym_words, one_term)
        ordered = _python_order(scored, q.sort)
        if one_term and q.sort == "relevance":
            ordered = _spread(ordered, {pos: c.source_pos for pos, (c, _) in scored.items()})
        shown = {w for c in clauses if c.occur != "must_not" for w in c.words}
        clause_stems = [frozenset(c.words) for c in clauses
                        if c.occur != "must_not" and c.kind in ("word", "phrase")]
        best = self._coverage(table, clause_stems, [p for p, _ in ordered[:COVERAGE_CANDIDATES]],
                              scored, q.expansions) if clause_stems else 0
        return self._result(table, q, ordered[q.offset:wanted], shown, total, facets, years, year_levels,
                            clause_stems, best)

    def _result(self, table: _Table, q: EngineQuery, page: list[tuple[int, float]], shown: set[str],
                total: int, facets: dict[str, dict[str, int]], years: dict[int, int],
                year_levels: dict[int, dict[int | None, int]], clause_stems: list[frozenset[str]],
                best: int) -> EngineResult:
        from kb.search.whoosh_engine import highlight_html

        words = self._doc_words(table, [p for p, _ in page]) if shown else {}
        hits: list[EngineHit] = []
        if table.claims:
            from kb.store import claims_at

            for (pos, score), claim in zip(page, claims_at(self._claims, [p for p, _ in page]), strict=True):
                stems = tuple(sorted(shown & words.get(pos, set())))
                hits.append(EngineHit(id=claim.id, score=round(score, 4),
                                      highlight=highlight_html(claim.text, stems), terms=stems))
        else:
            for pos, score in page:
                stems = tuple(sorted(shown & words.get(pos, set())))
                hits.append(EngineHit(id=self._source_ids[pos], score=round(score, 4), highlight="",
                                      terms=stems))
        suggestion = self._suggest(q.text) if q.suggest and q.text.strip() and table.claims else None
        return EngineResult(total=total, hits=tuple(hits), facets=facets, years=years,
                            year_levels=year_levels, suggestion=suggestion,
                            content_words=len(clause_stems), best_coverage=best)

    # --- query pieces -----------------------------------------------------------------

    def _resolve(self, scope: str, clause: grammar.Clause, limits: grammar.QueryLimits) -> _Clause | None:
        if clause.kind in ("word", "phrase"):
            words = index_terms(clause.text)
            if not words:
                return None
            how = "any" if len(words) == 1 else ("phrase" if clause.kind == "phrase" else "all")
            return _Clause(how, words, clause.occur, clause.kind)
        before = index_terms(clause.text)[:-1]  # "nmda-rec*": the words before the prefix
        if clause.kind == "prefix":
            stem = clause.text.lower().rsplit("-", 1)[-1]
            pattern = stem.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found = [row[0] for row in self._query(
                "SELECT lexeme FROM lexicon WHERE scope = %s AND lexeme LIKE %s "
                "ORDER BY df_a + df_b + df_c DESC, lexeme LIMIT %s", (scope, pattern, limits.max_expansion))]
        else:
            found = self._fuzzy(scope, clause, limits)
        if not found:
            return None
        return _Clause("any", sorted(found) + before, clause.occur, clause.kind)

    def _fuzzy(self, scope: str, clause: grammar.Clause, limits: grammar.QueryLimits) -> list[str]:
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        stems = index_terms(clause.text)
        if not stems:
            return []
        word = stems[-1]
        # The first letter stays (as Whoosh's fuzzy terms with prefix 1): it bounds the words read.
        candidates = [row[0] for row in self._query(
            "SELECT lexeme FROM lexicon WHERE scope = %s AND lexeme LIKE %s AND length(lexeme) "
            "BETWEEN %s AND %s", (scope, word[0].replace("%", "\\%").replace("_", "\\_") + "%",
                                  len(word) - clause.edits, len(word) + clause.edits))]
        matches = process.extract(word, candidates, scorer=Levenshtein.distance,
                                  score_cutoff=clause.edits, limit=limits.max_expansion)
        return [match for match, _, _ in matches]

    def _filters(self, table: _Table, q: EngineQuery) -> tuple[list[str], dict[str, object]]:
        where: list[str] = []
        params: dict[str, object] = {}
        if table.claims:
            for n, (kind, ids) in enumerate(sorted(q.filters.items())):
                if ids:
                    where.append(f"all_tags && %(filter{n})s::text[]")
                    params[f"filter{n}"] = [f"{kind}:{term_id}" for term_id in ids]
            if q.stance:
                stances = [s for s in q.stance if s != "none"]
                options = ["stance = ANY(%(stances)s::text[])"] if stances else []
                if "none" in q.stance:
                    options.append("stance IS NULL")
                where.append("(" + " OR ".join(options) + ")")
                params["stances"] = stances
            if q.exclude_retracted:
                where.append("NOT retracted")
        if q.sources:
            where.append(("source_id" if table.claims else "id") + " = ANY(%(sources)s::text[])")
            params["sources"] = list(q.sources)
        if q.year_from is not None:
            where.append("year >= %(year_from)s")
            params["year_from"] = max(-32768, min(32767, q.year_from))
        if q.year_to is not None:
            where.append("year <= %(year_to)s")
            params["year_to"] = max(-32768, min(32767, q.year_to))
        return where, params

    # --- scoring ----------------------------------------------------------------------

    def _score(self, table: _Table, q: EngineQuery, clauses: list[_Clause], positions: list[int],
               expansion_tags: list[str], synonym_words: list[list[str]], one_term: bool
               ) -> dict[int, tuple[_Candidate, float]]:
        """BM25F of the candidates at *positions*, as the array search scores claims."""
        lexemes = sorted({w for c in clauses if c.occur != "must_not" for w in c.words} |
                         {w for words in synonym_words for w in words})
        candidates = self._candidates(table, positions, lexemes, expansion_tags)
        records, averages = self._stats.get(table.name, (0, (1.0, 1.0, 1.0)))
        df = {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in self._query(
            "SELECT lexeme, df_a, df_b, df_c FROM lexicon WHERE scope = %s AND lexeme = ANY(%s)",
            (table.name, lexemes))} if lexemes else {}
        idf = {w: tuple(1.0 + math.log(records / (d + 1.0)) if records else 0.0 for d in counts)
               for w, counts in df.items()}
        boosts = [table.fields[letter][1] for letter in "ABC"]
        tag_idf = {}
        if expansion_tags:
            counts = dict(self._query("SELECT tag, claims FROM tag_claims WHERE tag = ANY(%s)",
                                      ([t.partition(":")[2] for t in expansion_tags],)))
            size = len(self._claims)
            tag_idf = {term_id: 1.0 + math.log(size / (counts.get(term_id, 0) + 1.0)) if size else 0.0
                       for term_id, _ in q.expansions}
        should = [c for c in clauses if c.occur == "should"]
        leaves_total = 3 * sum(len(c.words) if c.how == "any" else 1 for c in should) + \
            len(TAG_KINDS) * len(q.expansions)
        options = len(should) + len(q.expansions)
        strength = TERM_EVIDENCE_PRIOR if one_term else EVIDENCE_PRIOR
        out: dict[int, tuple[_Candidate, float]] = {}
        for candidate in candidates:
            def impact(word: str, field: int, c: _Candidate = candidate) -> float:
                tf = c.tf.get(word, (0, 0, 0))[field]
                if not tf or word not in idf:
                    return 0.0
                norm = K1 * (1.0 - B + B * c.lengths[field] / averages[field])
                return idf[word][field] * tf * (K1 + 1.0) / (tf + norm)

            optional = 0.0
            required = 0.0
            coordinated = 0
            for clause in clauses:
                if clause.occur == "must_not":
                    continue
                if clause.how == "any":
                    score = 0.0
                    for word in clause.words:
                        for field in range(3):
                            value = impact(word, field)
                            if value:
                                score += boosts[field] * value
                                coordinated += clause.occur == "should"
                else:
                    score = max((boosts[f] * sum(impact(w, f) for w in clause.words)
                                 for f in range(3) if all(candidate.tf.get(w, (0, 0, 0))[f]
                                                          for w in clause.words)), default=0.0)
                    coordinated += 3 * (clause.occur == "should" and score > 0)
                if clause.occur == "must":
                    required += score
                else:
                    optional += score
            for term_id, _ in q.expansions:
                carries = any(t.endswith(f":{term_id}") for t in candidate.tags)
                extra = TAG_BOOST * tag_idf.get(term_id, 0.0) if carries else 0.0
                if one_term:
                    for field, boost in ((0, TERM_TEXT_BOOST), (1, TERM_TITLE_BOOST)):
                        extra += max((boost / EXPANSION_BOOST * sum(impact(w, field) for w in words)
                                      for words in synonym_words
                                      if all(candidate.tf.get(w, (0, 0, 0))[field] for w in words)),
                                     default=0.0)
                optional += EXPANSION_BOOST * extra
                coordinated += extra > 0
            if options > 1 and leaves_total > 1 and optional > 0:
                bonus = max(coordinated - 1, 0) / (leaves_total - COORDINATION_SCALE) ** 2
                optional = (optional + bonus) * (leaves_total - 1) / leaves_total
            total = required + optional
            if q.sort == "relevance":
                total *= prior(candidate.level, strength)
            out[candidate.pos] = (candidate, total)
        return out

    def _candidates(self, table: _Table, positions: list[int], lexemes: list[str],
                    expansion_tags: list[str]) -> list[_Candidate]:
        if not positions:
            return []
        source_pos = "source_pos" if table.claims else "pos"
        tags = "ARRAY(SELECT t FROM unnest(all_tags) t WHERE t = ANY(%(tags)s::text[]))" if table.claims \
            else "ARRAY[]::text[]"
        rows = self._query(
            f"SELECT pos, level, year, {source_pos}, len_a, len_b, len_c, {tags}, "
            f"ARRAY(SELECT row(u.lexeme, array_to_string(u.weights, ''))::text FROM unnest(tsv) u "
            f"WHERE u.lexeme = ANY(%(lexemes)s::text[])) FROM {table.name} WHERE pos = ANY(%(pos)s)",
            {"tags": expansion_tags, "lexemes": lexemes, "pos": positions})
        by_pos: dict[int, _Candidate] = {}
        for pos, level, year, spos, a, b, c, carried, found in rows:
            tf: dict[str, tuple[int, int, int]] = {}
            for item in found:
                lexeme, _, weights = item[1:-1].rpartition(",")
                lexeme = lexeme.strip('"').replace('""', '"')
                tf[lexeme] = (weights.count("A"), weights.count("B"), weights.count("C"))
            by_pos[pos] = _Candidate(pos, level, year, spos, (a, b, c), frozenset(carried), tf)
        return [by_pos[p] for p in positions if p in by_pos]

    def _doc_words(self, table: _Table, positions: Sequence[int]) -> dict[int, set[str]]:
        """The text and title stems of the records at *positions*."""
        if not positions:
            return {}
        rows = self._query(
            f"SELECT pos, ARRAY(SELECT u.lexeme FROM unnest(tsv) u WHERE 'A' = ANY(u.weights) "
            f"OR 'B' = ANY(u.weights)) FROM {table.name} WHERE pos = ANY(%s)", (list(positions),))
        return {int(pos): set(words) for pos, words in rows}

    def _coverage(self, table: _Table, clauses: Sequence[frozenset[str]], best: Sequence[int],
                  scored: dict[int, tuple[_Candidate, float]], expansions: Sequence[tuple[str, tuple[str, ...]]]) -> int:
        """The most content clauses any of the *best* matches has (see ``EngineResult.weak``)."""
        expansion_stems = {term_id: frozenset(w for p in phrases for w in index_terms(p))
                           for term_id, phrases in expansions}
        words = self._doc_words(table, best)
        most = 0
        for pos in best:
            candidate = scored[pos][0]
            carried = [expansion_stems[t.partition(":")[2]] for t in candidate.tags
                       if t.partition(":")[2] in expansion_stems]
            have = words.get(pos, set())
            had = sum(1 for clause in clauses if clause <= have or any(clause <= t for t in carried))
            most = max(most, had)
            if most == len(clauses):
                break
        return most

    # --- suggestions ------------------------------------------------------------------

    def _suggest(self, text: str) -> str | None:
        """Respell words that no claim or title has; None when every word is known."""
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        spelling = self._spelling_words()
        changed = False
        out: list[str] = []
        for token in text.split():
            word = token.lower()
            if not re.fullmatch(r"[^\W\d_]{4,}", word) or any(w == word for w, _ in spelling.get(word[0], ())):
                out.append(token)
                continue
            maxdist = 1 if len(word) < 8 else 2  # as the embedded engine: see WhooshEngine._suggest
            options = spelling.get(word[0], [])
            matches = process.extract(word, [w for w, _ in options], scorer=Levenshtein.distance,
                                      score_cutoff=maxdist, limit=50)
            if matches:
                frequency = dict(options)
                best = min(matches, key=lambda m: (m[1], -frequency[m[0]], m[0]))[0]
                out.append(best)
                changed = changed or best != word
            else:
                out.append(token)
        return " ".join(out) if changed else None

    def _spelling_words(self) -> dict[str, list[tuple[str, int]]]:
        with self._lock:
            if self._spelling is None:
                grouped: dict[str, list[tuple[str, int]]] = {}
                for word, frequency in self._query("SELECT word, frequency FROM spelling"):
                    grouped.setdefault(word[0], []).append((word, int(frequency)))
                self._spelling = grouped
            return self._spelling


def _tsquery(clause: _Clause) -> str:
    words = [_quote(w) for w in clause.words]
    joiner = {"any": " | ", "all": " & ", "phrase": " <-> "}[clause.how]
    return "(" + joiner.join(words) + ")"


def _sql_order(sort: str, has_text: bool) -> str:
    score = "rank DESC, " if has_text else ""
    if sort == "evidence":
        return f"level, {score}pos"
    if sort == "newest":
        return f"year DESC, {score}pos"
    if sort == "oldest":
        return f"year, {score}pos"
    return f"{score}pos"


def _python_order(scored: dict[int, tuple[_Candidate, float]], sort: str) -> list[tuple[int, float]]:
    def key(item: tuple[int, tuple[_Candidate, float]]) -> tuple[float, ...]:
        pos, (candidate, score) = item
        if sort == "evidence":
            return (candidate.level, -score, pos)
        if sort == "newest":
            return (-candidate.year, -score, pos)
        if sort == "oldest":
            return (candidate.year, -score, pos)
        return (-score, pos)

    return [(pos, float(score)) for pos, (_, score) in sorted(scored.items(), key=key)]


def _spread(ordered: list[tuple[int, float]], source_of: dict[int, int]) -> list[tuple[int, float]]:
    """Each further claim of a source already ranked counts SOURCE_REPEAT_DECAY less."""
    seen: Counter[int] = Counter()
    spread: list[tuple[int, float]] = []
    for pos, score in ordered[:SPREAD_CANDIDATES]:
        source = source_of[pos]
        spread.append((pos, score * SOURCE_REPEAT_DECAY ** seen[source]))
        seen[source] += 1
    spread.sort(key=lambda item: (-item[1], item[0]))
    return spread + ordered[SPREAD_CANDIDATES:]

