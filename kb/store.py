"""The record store of a build: every source, claim and vocabulary term, in SQLite beside the index.

Engines rank; the store answers "what is source X" and "which claims has it", so pages, facets
and exports never depend on the engine's stored fields. Sources and the vocabulary are read into
memory when a build is opened; claims stay on disk (``store.sqlite``, one JSON row per claim,
numbered in the store's order) and are read by position, id or source when asked for: a
knowledge base of a million claims opens in seconds and its memory does not grow with them.
SQLite is in the standard library; the file is opened read-only and immutable (a build never
changes), so readers take no locks.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

from kb.models import Claim, Locator, Notice, Provenance, Source, Term
from kb.vocabulary import Vocabulary

STORE_FILE = "store.sqlite"
ClaimFacts = tuple[str, str | None, dict[str, tuple[str, ...]]]  # source id, stance, tags
_SCHEMA = """
CREATE TABLE sources (pos INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
CREATE TABLE claims (pos INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, source_id TEXT NOT NULL,
                     stance TEXT, tags TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX claims_by_source ON claims (source_id, pos);
CREATE TABLE terms (pos INTEGER PRIMARY KEY, data TEXT NOT NULL);
"""


def _provenance(text: str | None) -> Provenance | None:
    if not text:
        return None
    file, _, line = text.rpartition(":")
    if file and line.isdigit():
        return Provenance(file, int(line))
    return Provenance(text)


def source_from_dict(data: dict[str, Any]) -> Source:
    """Rebuild a Source from ``Source.to_dict()`` output."""
    values = dict(data)
    values["authors"] = tuple(values.get("authors", ()))
    values["keywords"] = tuple(values.get("keywords", ()))
    values["publication_types"] = tuple(values.get("publication_types", ()))
    values["abstract_sections"] = tuple((s["label"], s["text"]) for s in values.get("abstract_sections", ()))
    values["full_text"] = tuple((p["section"], p["page"], p["paragraph"], p["text"])
                                for p in values.get("full_text", ()))
    values["notices"] = tuple(Notice.from_dict(n) for n in values.get("notices", ()))
    values["tags"] = {kind: tuple(ids) for kind, ids in values.get("tags", {}).items()}
    values["provenance"] = tuple(p for p in map(_provenance, values.get("provenance", ())) if p)
    return Source(**values)


def claim_from_dict(data: dict[str, Any]) -> Claim:
    """Rebuild a Claim from ``Claim.to_dict()`` output."""
    locator = {k: v for k, v in data["locator"].items() if k != "text"}
    return Claim(
        id=data["id"], source_id=data["source_id"], text=data["text"], locator=Locator(**locator),
        stance=data.get("stance"), tags={k: tuple(v) for k, v in data.get("tags", {}).items()},
        confirmed=data.get("confirmed", True), provenance=_provenance(data.get("provenance")),
    )


def term_from_dict(data: dict[str, Any]) -> Term:
    values = dict(data)
    values["synonyms"] = tuple(values.get("synonyms", ()))
    values["parents"] = tuple(values.get("parents", ()))
    values["provenance"] = _provenance(values.get("provenance"))
    return Term(**values)


class RowReader:
    """Read-only access to a store's tables, shared by threads, and the claims read last (a
    search reads its hits' claims, then the page reads them again by id).

    Subclasses run one SQL statement (``?`` placeholders); this one reads ``store.sqlite``, the
    PostgreSQL engine's reads the same tables from its database.
    """

    CACHED = 4096
    BATCH_KEYS = 500  # keys per IN (...) query

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: OrderedDict[object, Claim] = OrderedDict()  # ("pos", n) or ("id", id)

    def execute(self, sql: str, args: Sequence[object]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def claims(self, column: str, keys: Sequence[object]) -> dict[object, Claim]:
        """The claims whose *column* ("pos" or "id") is one of *keys*, read in one query."""
        found: dict[object, Claim] = {}
        with self._lock:
            for key in keys:
                claim = self._recent.get((column, key))
                if claim is not None:
                    self._recent.move_to_end((column, key))
                    found[key] = claim
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        for start in range(0, len(missing), self.BATCH_KEYS):
            part = missing[start:start + self.BATCH_KEYS]
            marks = ",".join("?" * len(part))
            rows = self.execute(f"SELECT pos, data FROM claims WHERE {column} IN ({marks})", part)
            with self._lock:
                for pos, data in rows:
                    claim = _claim(data)
                    found[pos if column == "pos" else claim.id] = claim
                    self._remember(pos, claim)
        return found

    def _remember(self, pos: int, claim: Claim) -> None:
        self._recent[("pos", pos)] = claim
        self._recent[("id", claim.id)] = claim
        while len(self._recent) > 2 * self.CACHED:
            self._recent.popitem(last=False)

    def all(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        return self.execute(sql, args)

    def one(self, sql: str, *args: object) -> tuple[Any, ...] | None:
        rows = self.execute(sql, args)
        return rows[0] if rows else None

    def close(self) -> None:
        pass


class _SQLiteRows(RowReader):
    """One read-only connection to a store file under a lock."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        # immutable: the file never changes once built, so SQLite skips locking and change checks.
        self._connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                                           check_same_thread=False)
        self._sql_lock = threading.Lock()

    def execute(self, sql: str, args: Sequence[object]) -> list[tuple[Any, ...]]:
        with self._sql_lock:
            return self._connection.execute(sql, tuple(args)).fetchall()

    def close(self) -> None:
        with self._sql_lock:
            self._connection.close()


def _claim(data: str) -> Claim:
    return claim_from_dict(json.loads(data))


class ClaimRows(Sequence[Claim]):
    """The claims of a store in its order, read from disk by position (claims[n]) on demand."""

    BATCH = 2000  # rows read at a time when iterating

    def __init__(self, rows: RowReader) -> None:
        self._rows = rows
        found = rows.one("SELECT count(*) FROM claims")
        self._count = int(found[0]) if found else 0

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Claim: ...
    @overload
    def __getitem__(self, index: slice) -> list[Claim]: ...
    def __getitem__(self, index: int | slice) -> Claim | list[Claim]:
        if isinstance(index, slice):
            return self.many(range(*index.indices(self._count)))
        position = index + self._count if index < 0 else index
        if not 0 <= position < self._count:
            raise IndexError(f"claim {index} of {self._count}")
        return self._rows.claims("pos", [position])[position]

    def many(self, positions: Sequence[int]) -> list[Claim]:
        """The claims at *positions*, in that order, read in one query."""
        found = self._rows.claims("pos", positions)
        return [found[p] for p in positions]

    def __iter__(self) -> Iterator[Claim]:
        for start in range(0, self._count, self.BATCH):
            rows = self._rows.all("SELECT data FROM claims WHERE pos >= ? AND pos < ? ORDER BY pos",
                                  start, start + self.BATCH)
            for (data,) in rows:
                yield _claim(data)

    def ids(self) -> list[str]:
        """Every claim's id in order, without reading the claims."""
        return [row[0] for row in self._rows.all("SELECT id FROM claims ORDER BY pos")]

    def source_ids(self) -> list[str]:
        """Every claim's source id in order, without reading the claims."""
        return [row[0] for row in self._rows.all("SELECT source_id FROM claims ORDER BY pos")]

    def facts(self) -> Iterator[ClaimFacts]:
        """(source id, stance, tags) of every claim in order, reading only those columns."""
        for start in range(0, self._count, self.BATCH * 10):
            rows = self._rows.all("SELECT source_id, stance, tags FROM claims WHERE pos >= ? AND "
                                  "pos < ? ORDER BY pos", start, start + self.BATCH * 10)
            for source_id, stance, tags in rows:
                yield source_id, stance, {kind: tuple(ids) for kind, ids in json.loads(tags).items()}


class _ClaimsById(Mapping[str, Claim]):
    def __init__(self, rows: RowReader, count: int) -> None:
        self._rows = rows
        self._count = count

    def __getitem__(self, claim_id: str) -> Claim:
        found = self._rows.claims("id", [claim_id])
        if claim_id not in found:
            raise KeyError(claim_id)
        return found[claim_id]

    def __contains__(self, claim_id: object) -> bool:
        return isinstance(claim_id, str) and \
            self._rows.one("SELECT 1 FROM claims WHERE id = ?", claim_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter([row[0] for row in self._rows.all("SELECT id FROM claims ORDER BY pos")])

    def __len__(self) -> int:
        return self._count


class _ClaimsBySource(Mapping[str, list[Claim]]):
    def __init__(self, rows: RowReader) -> None:
        self._rows = rows

    def __getitem__(self, source_id: str) -> list[Claim]:
        rows = self._rows.all("SELECT data FROM claims WHERE source_id = ? ORDER BY pos", source_id)
        if not rows:
            raise KeyError(source_id)
        return [_claim(data) for (data,) in rows]

    def __iter__(self) -> Iterator[str]:
        return iter([row[0] for row in self._rows.all("SELECT DISTINCT source_id FROM claims")])

    def __len__(self) -> int:
        found = self._rows.one("SELECT count(DISTINCT source_id) FROM claims")
        return int(found[0]) if found else 0


class Store:
    """Sources, claims and vocabulary of one build, with the look-ups pages need.

    Made from lists (a build about to be written, a test) it holds everything in memory;
    ``Store.read`` opens a written store with the claims left on disk. Both answer alike.
    """

    def __init__(self, sources: list[Source], claims: Sequence[Claim], vocabulary: Vocabulary,
                 claim_by_id: Mapping[str, Claim] | None = None,
                 claims_by_source: Mapping[str, list[Claim]] | None = None) -> None:
        self.sources = sources
        self.claims = claims
        self.vocabulary = vocabulary
        self.source_by_id = {s.id: s for s in sources}
        self.source_by_doi = {s.doi: s for s in sources if s.doi}
        self.source_by_pmid = {s.pmid: s for s in sources if s.pmid}
        if claim_by_id is None or claims_by_source is None:
            by_source: dict[str, list[Claim]] = {}
            for claim in claims:
                by_source.setdefault(claim.source_id, []).append(claim)
            claim_by_id = {c.id: c for c in claims}
            claims_by_source = by_source
        self.claim_by_id: Mapping[str, Claim] = claim_by_id
        self.claims_by_source: Mapping[str, list[Claim]] = claims_by_source
        self._rows: RowReader | None = None

    def write(self, folder: Path) -> None:
        """Write the store as ``folder/store.sqlite`` (a new file)."""
        path = folder / STORE_FILE
        path.unlink(missing_ok=True)
        connection = sqlite3.connect(path)
        try:
            # One transaction, no journal: a build folder is written once and published whole
            # (kb.build), so an interrupted write is a staging folder that is thrown away.
            connection.execute("PRAGMA journal_mode = OFF")
            connection.execute("PRAGMA synchronous = OFF")
            connection.executescript(_SCHEMA)
            with connection:
                connection.executemany(
                    "INSERT INTO sources VALUES (?, ?, ?)",
                    ((n, s.id, _json(s.to_dict())) for n, s in enumerate(self.sources)))
                connection.executemany(
                    "INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                    ((n, c.id, c.source_id, c.stance, _json(dict(c.tags)), _json(c.to_dict()))
                     for n, c in enumerate(self.claims)))
                connection.executemany(
                    "INSERT INTO terms VALUES (?, ?)",
                    ((n, _json(t.to_dict())) for n, t in enumerate(self.vocabulary.terms.values())))
        finally:
            connection.close()

    @classmethod
    def read(cls, folder: Path) -> Store:
        """Open the store in *folder*: sources and vocabulary in memory, claims on disk."""
        rows = _SQLiteRows(folder / STORE_FILE)
        try:
            return cls.over(rows)
        except sqlite3.DatabaseError as error:
            rows.close()
            raise OSError(f"{folder / STORE_FILE} cannot be read ({error}); rebuild with: kb build") \
                from error

    @classmethod
    def over(cls, rows: RowReader) -> Store:
        """A store read through *rows*: sources and vocabulary in memory, claims where they are."""
        sources = [source_from_dict(json.loads(data))
                   for (data,) in rows.all("SELECT data FROM sources ORDER BY pos")]
        vocabulary = Vocabulary(term_from_dict(json.loads(data))
                                for (data,) in rows.all("SELECT data FROM terms ORDER BY pos"))
        claims = ClaimRows(rows)
        store = cls(sources, claims, vocabulary, _ClaimsById(rows, len(claims)), _ClaimsBySource(rows))
        store._rows = rows
        return store

    def close(self) -> None:
        if self._rows is not None:
            self._rows.close()


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def claim_facts(claims: Sequence[Claim]) -> Iterator[ClaimFacts]:
    """(source id, stance, tags) of every claim: what counts and maps need, read cheaply."""
    if isinstance(claims, ClaimRows):
        return claims.facts()
    return ((c.source_id, c.stance, c.tags) for c in claims)


def claims_at(claims: Sequence[Claim], positions: Sequence[int]) -> list[Claim]:
    """The claims at *positions*; a store's claims are read in one query."""
    return claims.many(positions) if isinstance(claims, ClaimRows) else [claims[p] for p in positions]


def claim_ids(claims: Sequence[Claim]) -> list[str]:
    """The claims' ids in order; a store's claims answer without being read."""
    return claims.ids() if isinstance(claims, ClaimRows) else [c.id for c in claims]


def claim_source_ids(claims: Sequence[Claim]) -> list[str]:
    """The claims' source ids in order; a store's claims answer without being read."""
    return claims.source_ids() if isinstance(claims, ClaimRows) else [c.source_id for c in claims]


def order_for_index(sources: Sequence[Source], claims: Sequence[Claim]) -> tuple[list[Source], list[Claim]]:
    """Strongest evidence first, then newest: engines rank equal scores in this order."""
    def rank(source: Source | None) -> tuple[int, int]:
        if source is None:
            return (99, 0)
        return (source.evidence_level or 9, -(source.year or 0))

    by_id = {s.id: s for s in sources}
    ordered_sources = sorted(sources, key=lambda s: (*rank(s), s.id))
    position = {s.id: n for n, s in enumerate(ordered_sources)}
    ordered_claims = sorted(claims, key=lambda c: (*rank(by_id.get(c.source_id)),
                                                   position.get(c.source_id, 0)))
    return ordered_sources, ordered_claims
