"""Imported records on disk: ``records/<id>.json`` (or a ``records/<batch>.jsonl`` batch) and
the raw payload each came from under ``records/raw/``.

A record file holds the normalised Source and where it came from, so ``kb build`` never needs the
network, and the raw payload lets anyone re-check (or re-import) what a service returned::

    {
      "schema": 1,
      "source": {...Source.to_dict() without provenance...},
      "format": "pubmed-xml",                 # the parser that read the payload
      "origin": "pubmed:38011560",            # the file:record or service:id it came from
      "raw": "raw/krystal2023ketamine.xml",   # relative to records/
      "merged": [{"origin": ..., "format": ..., "raw": ..., "fields": ["abstract", ...]}],
      "conflicts": ["year: 2019 (pubmed:1) vs 2020 (crossref:10.1/x); kept 2019"]
    }

Small imports write one file per record, which reads well in ``git diff``. A large import (a
benchmark corpus such as SciFact's 5,183 abstracts) writes one JSON Lines batch, one record per
line, with its raw payloads in ``records/raw/<batch>.raw.jsonl`` as ``{"id", "raw"}`` lines: ten
thousand tiny files would slow every build's fingerprint and every checkout for no reviewer's
benefit.

An import is all-or-nothing, even when it writes several files (per-record files, a batch and its
raw file, updates to records already there) and is killed between two of them. ``write_records``
runs one transaction under the records lock:

1. stage: each new file is written as ``.<name>.<random>.tmp`` in its final folder and fsynced;
2. commit point: ``records/.journal`` (JSON: the list of temporary -> final renames) is written
   atomically and the folder fsynced;
3. the renames are done (``os.replace``), the folders fsynced, and the journal removed.

``recover`` runs before anything reads or writes records (``load_corpus``, the importer): a
journal left behind is rolled forward (the import happened), and temporary files without one
are deleted (it did not). Nothing a reader globs ever has a half-written name: temporary files
end in ``.tmp`` and the journal has no ``.json`` suffix.

The lock is ``flock`` on the records folder itself (a ``records/.lock`` file where a file system
cannot lock folders), held by writers for a whole transaction and by recovery, so a reader that
finds a journal never replays it while its writer is still renaming, and two readers never
replay it at once. Within one process a re-entrant lock per folder serialises threads (the web
service adds sources from request threads).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path, PurePosixPath
from typing import Any

from kb.errors import CorpusError
from kb.files import atomic_write, new_file_mode, storing
from kb.ids import is_source_id, normalize_doi, normalize_pmcid, normalize_pmid
from kb.ingest import ParseResult
from kb.ingest.common import load_json
from kb.models import TAG_KINDS, VERIFICATION_MARKS, CorpusProblem, Notice, Provenance, Source

SCHEMA = 1
RETRY = "the import"  # what a storage error tells the user to run again once fixed
RECORDS_DIR = "records"
RAW_DIR = "raw"
JOURNAL = ".journal"  # no .json suffix: the loaders read records/*.json, and this is not one
LOCK_FILE = ".lock"  # only where the file system cannot flock a folder
TEMP_SUFFIX = ".tmp"
_TUPLE_FIELDS = {"authors", "keywords", "publication_types"}
_SOURCE_FIELDS = {f.name for f in fields(Source)}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(slots=True)
class StoredRecord:
    """One imported record as kept on disk: the Source plus where it and its parts came from."""

    source: Source
    format: str = ""
    origin: str = ""
    raw: str = ""  # the raw payload's path relative to records/
    merged: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    path: Path | None = None  # the file it was read from (None until written)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written for this record."""
        data = self.source.to_dict()
        data.pop("provenance", None)
        # Curated-only fields stay out of imported records: summaries own them.
        for name in ("summary", "design", "evidence_level", "population", "sample_size",
                     "intervention", "comparator", "primary_outcome", "tags"):
            data.pop(name, None)
        return {"schema": SCHEMA, "source": data, "format": self.format, "origin": self.origin,
                "raw": self.raw, "merged": self.merged, "conflicts": self.conflicts}


def source_from_dict(data: Mapping[str, Any], provenance: Provenance | None = None) -> Source:
    """Rebuild a Source from ``Source.to_dict()`` output; raise ValueError when it is not one.

    Identifiers are normalised again on the way in, so a hand-edited record cannot smuggle in a
    DOI with a resolver prefix or a PMID with letters.
    """
    if not isinstance(data, Mapping):
        # ValueError, not TypeError: every malformed-record case is one kind for the caller
        raise ValueError("'source' is not a JSON object")  # noqa: TRY004
    unknown = set(data) - _SOURCE_FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    key, title = str(data.get("id", "")), str(data.get("title", "")).strip()
    if not is_source_id(key):
        raise ValueError(f"id {key!r} is not a valid source id")
    if not title:
        raise ValueError(f"{key}: no title")
    values: dict[str, Any] = {}
    for name in _SOURCE_FIELDS - {"provenance"}:
        if name not in data or data[name] is None:
            continue
        value = data[name]
        if name in _TUPLE_FIELDS:
            if not isinstance(value, list):
                raise ValueError(f"{key}: {name} must be a list")
            value = tuple(str(v) for v in value)
        elif name == "abstract_sections":
            value = tuple(_section(v) for v in value)
        elif name == "full_text":
            value = tuple(_paragraph(v) for v in value)
        elif name == "notices":
            if not isinstance(value, list):
                raise ValueError(f"{key}: notices must be a list")
            # identifiers normalised again, as the source's own are below
            value = tuple(replace(n, doi=normalize_doi(n.doi), pmid=normalize_pmid(n.pmid))
                          for n in map(Notice.from_dict, value))
        elif name in {"verification", "verification_notes"}:
            if not isinstance(value, dict):
                raise ValueError(f"{key}: {name} must be an object")
            value = {str(k): str(v) for k, v in value.items()}
            if name == "verification":
                bad = sorted(v for v in value.values() if v not in VERIFICATION_MARKS)
                if bad:
                    raise ValueError(f"{key}: unknown verification mark(s) {', '.join(bad)}")
        elif name == "tags":
            value = {k: tuple(v) for k, v in value.items() if k in TAG_KINDS}
        elif name == "added":
            value = str(value)
            if value and not _ISO_DATE.fullmatch(value):
                raise ValueError(f"{key}: added must be a date YYYY-MM-DD, not {value!r}")
        elif name in {"year", "evidence_level"}:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{key}: {name} must be a whole number or null")
        else:
            value = str(value)
        values[name] = value
    values["doi"] = normalize_doi(values.get("doi", ""))
    values["pmid"] = normalize_pmid(values.get("pmid", ""))
    values["pmcid"] = normalize_pmcid(values.get("pmcid", ""))
    values["provenance"] = (provenance,) if provenance else ()
    return Source(**values)


def record_from_dict(data: Any, provenance: Provenance) -> StoredRecord:
    """Read one record object (the ``to_dict`` form); raise ValueError when it is malformed."""
    if not isinstance(data, dict) or "source" not in data:
        raise ValueError("not an imported record (expected an object with a 'source')")
    if data.get("schema", SCHEMA) != SCHEMA:
        raise ValueError(f"record schema {data.get('schema')!r} is not {SCHEMA}; "
                         "re-import it with this version")
    return StoredRecord(
        source=source_from_dict(data["source"], provenance),
        format=str(data.get("format", "")),
        origin=str(data.get("origin", "")),
        raw=str(data.get("raw", "")),
        merged=list(data.get("merged") or []),
        conflicts=[str(c) for c in data.get("conflicts") or []],
    )


def read_records(text: str, origin: str) -> tuple[list[StoredRecord], list[CorpusProblem]]:
    """Read a records/*.json or *.jsonl file's records; *origin* is its path in the corpus."""
    found: list[StoredRecord] = []
    problems: list[CorpusProblem] = []
    if origin.endswith(".jsonl"):
        lines: Iterable[tuple[int, str]] = enumerate(io.StringIO(text), start=1)
    else:
        lines = [(1, text)]
    for number, chunk in lines:
        if not chunk.strip():
            continue
        try:
            data = load_json(chunk)
        except json.JSONDecodeError as error:
            line = number if origin.endswith(".jsonl") else error.lineno
            problems.append(CorpusProblem(origin, line, f"malformed JSON ({error.msg}); record "
                                          "skipped: restore it from git or re-import it"))
            continue
        try:
            found.append(record_from_dict(data, Provenance(origin, number)))
        except (ValueError, TypeError) as error:
            problems.append(CorpusProblem(origin, number, f"bad imported record: {error}; skipped"))
    return found, problems


def parse(text: str, origin: str) -> ParseResult:
    """Parse a records/*.json (one record) or records/*.jsonl (one per line) file into Sources."""
    found, problems = read_records(text, origin)
    return ParseResult(sources=[r.source for r in found], problems=problems)


def load_all(corpus_dir: Path) -> tuple[list[StoredRecord], list[CorpusProblem]]:
    """Every imported record of a corpus, each knowing the file it lives in."""
    records_dir = corpus_dir / RECORDS_DIR
    found: list[StoredRecord] = []
    problems: list[CorpusProblem] = []
    if not records_dir.is_dir():
        return found, problems
    for path in sorted(p for p in records_dir.glob("*") if p.suffix in {".json", ".jsonl"}):
        rel = path.relative_to(corpus_dir).as_posix()
        records, bad = read_records(path.read_text(encoding="utf-8"), rel)
        for record in records:
            record.path = path
        found.extend(records)
        problems.extend(bad)
    return found, problems


def write_records(corpus_dir: Path, sources: Iterable[Source | StoredRecord],
                  raw: Mapping[str, str], batch: str | None = None,
                  raw_extension: str = "txt") -> list[Path]:
    """Write records and their raw payloads in one transaction; return the record files written.

    *sources* are new records (Sources or StoredRecords) or updated ones (StoredRecords that
    know their ``path``; a batch file holding one is rewritten whole). *raw* maps a source id to
    its payload text. With *batch*, new records go to ``records/<batch>.jsonl``. Every file,
    raw payloads included, appears at once or not at all (see the module docstring), so a record
    never points at a missing payload and a killed import leaves the corpus as it was.
    """
    records_dir = corpus_dir / RECORDS_DIR
    raw_dir = records_dir / RAW_DIR
    records = [s if isinstance(s, StoredRecord) else StoredRecord(source=s) for s in sources]
    new = [r for r in records if r.path is None]
    updated = [r for r in records if r.path is not None]
    written: list[Path] = []
    # Each staged write names its own file; this names records/ for the lock, journal, renames.
    with storing(records_dir, RETRY), transaction(corpus_dir) as tx:
        if batch:
            batch_raw = raw_dir / f"{batch}.raw.jsonl"
            lines = [json.dumps({"id": r.source.id, "raw": raw[r.source.id]}, ensure_ascii=False)
                     for r in new if r.source.id in raw]
            if lines:
                tx.write(batch_raw, "\n".join(lines) + "\n")
            for record in new:
                if record.source.id in raw:
                    record.raw = f"{RAW_DIR}/{batch_raw.name}"
        for record in records:
            payload = raw.get(record.source.id)
            if payload is None or (batch and record.path is None):
                continue
            if record.path is not None and record.merged:  # an update: the merged-in payload
                target = str(record.merged[-1].get("raw") or "")
            else:
                target = record.raw
            name = PurePosixPath(target).name or f"{record.source.id}.{raw_extension}"
            tx.write(raw_dir / name, payload)
            if record.path is not None and record.merged:
                record.merged[-1]["raw"] = f"{RAW_DIR}/{name}"
            else:
                record.raw = f"{RAW_DIR}/{name}"
        if batch and new:
            path = records_dir / f"{batch}.jsonl"
            tx.write(path, "".join(_line(r) for r in new))
            written.append(path)
        else:
            for record in new:
                path = records_dir / f"{record.source.id}.json"
                tx.write(path, json.dumps(record.to_dict(), ensure_ascii=False, indent=2) + "\n")
                written.append(path)
        written.extend(_rewrite(updated, corpus_dir, tx))
    # Only now, with the transaction committed, do the new records know their files.
    for record in new:
        record.path = records_dir / (f"{batch}.jsonl" if batch else f"{record.source.id}.json")
    return written


def _rewrite(updated: list[StoredRecord], corpus_dir: Path, tx: Transaction) -> list[Path]:
    """Stage the files holding *updated* records, keeping the other records of a batch."""
    by_file: dict[Path, dict[str, StoredRecord]] = {}
    for record in updated:
        assert record.path is not None
        by_file.setdefault(record.path, {})[record.source.id] = record
    written = []
    for path, changes in by_file.items():
        if path.suffix == ".jsonl":
            # Read under the transaction's lock, so a concurrent import's lines are kept.
            rel = path.relative_to(corpus_dir).as_posix()
            current, _ = read_records(path.read_text(encoding="utf-8"), rel)
            merged = [changes.get(r.source.id, r) for r in current]
            tx.write(path, "".join(_line(r) for r in merged))
        else:
            (record,) = changes.values()
            tx.write(path, json.dumps(record.to_dict(), ensure_ascii=False, indent=2) + "\n")
        written.append(path)
    return written


def _line(record: StoredRecord) -> str:
    return json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"


def _section(value: Any) -> tuple[str, str]:
    if isinstance(value, dict):
        return str(value.get("label", "")), str(value.get("text", ""))
    if isinstance(value, list | tuple) and len(value) == 2:
        return str(value[0]), str(value[1])
    raise ValueError(f"abstract section {value!r} is not {{'label', 'text'}}")


def _paragraph(value: Any) -> tuple[str, int, int, str]:
    """A full-text paragraph, {"section", "page", "paragraph", "text"}, with whole-number places."""
    if isinstance(value, dict):
        page, number = value.get("page"), value.get("paragraph")
        if isinstance(page, int) and isinstance(number, int) and not isinstance(page, bool) \
                and not isinstance(number, bool):
            return str(value.get("section", "")), page, number, str(value.get("text", ""))
    raise ValueError(f"full-text paragraph {str(value)[:80]!r} is not {{'section', 'page', 'paragraph', "
                     "'text'}} with whole-number page and paragraph")


def _fsync_dir(folder: Path) -> None:
    # Makes the renames themselves durable; not possible on every platform, hence best effort.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)



# --- transactions, recovery and the records lock -------------------------------------------


class _FolderLock:
    """One records folder's lock in this process: a thread lock plus the flock it guards."""

    def __init__(self) -> None:
        self.threads = threading.RLock()  # re-entrant: a transaction inside Importer.commit
        self.depth = 0
        self.fd: int | None = None


_LOCKS: dict[Path, _FolderLock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def locked(corpus_dir: Path) -> Iterator[Path]:
    """Hold the exclusive records lock of *corpus_dir* (creating ``records/``); yield that folder.

    Writers hold it for a whole transaction and recovery holds it while it repairs, so nobody
    replays or deletes the files of a transaction that is still running. Re-entrant within a
    thread; other threads and other processes wait.
    """
    records_dir = corpus_dir / RECORDS_DIR
    records_dir.mkdir(parents=True, exist_ok=True)
    key = records_dir.resolve()
    with _LOCKS_GUARD:
        held = _LOCKS.setdefault(key, _FolderLock())
    with held.threads:
        if held.depth == 0:
            held.fd = _flock(records_dir)
        held.depth += 1
        try:
            yield records_dir
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd is not None:
                os.close(held.fd)  # closing the descriptor releases the flock
                held.fd = None


def _flock(records_dir: Path) -> int:
    """An fd holding an exclusive flock on *records_dir* (or on its .lock file as a fallback).

    Locking the folder itself leaves no lock file in the corpus for git to see; some network
    file systems refuse flock on a folder opened read-only, hence the fallback.
    """
    fd = os.open(records_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
    except OSError:
        os.close(fd)
    fd = os.open(records_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


class Transaction:
    """Files staged for one all-or-nothing change under ``records/``; see the module docstring."""

    def __init__(self, records_dir: Path) -> None:
        self.records_dir = records_dir
        self._staged: dict[Path, Path] = {}  # final path -> its staged temporary file

    def write(self, path: Path, text: str) -> None:
        """Stage *text* as the new content of *path*; nobody sees it until the commit."""
        path = Path(path)
        _relative(path, self.records_dir)  # refuses a path outside records/
        with storing(path, RETRY):  # a full disk names the record file, not a traceback
            path.parent.mkdir(parents=True, exist_ok=True)
            # In the final folder, because os.replace is only atomic within one file system.
            handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX,
                                            dir=path.parent)
            try:
                # mkstemp makes 0600 files; a record must be as readable as the rest of the
                # corpus (0644 under the usual umask) for git, a web server and other curators.
                os.fchmod(handle, new_file_mode())
                with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
                    out.write(text)
                    out.flush()
                    os.fsync(out.fileno())
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        previous = self._staged.pop(path, None)
        if previous is not None:
            previous.unlink(missing_ok=True)
        self._staged[path] = Path(temp)

    def discard(self) -> None:
        """Delete every staged file: the transaction never happened."""
        for temp in self._staged.values():
            temp.unlink(missing_ok=True)
        self._staged.clear()

    def commit(self) -> None:
        """Make every staged file visible: journal (the commit point), renames, journal removed."""
        if not self._staged:
            return
        for folder in {temp.parent for temp in self._staged.values()}:
            _fsync_dir(folder)  # the staged names must survive a crash before the journal names them
        # Raw payloads first, records last, so even a reader racing the renames never finds a
        # record whose payload is missing.
        order = sorted(self._staged.items(), key=lambda item: item[0].parent == self.records_dir)
        renames = [[_relative(temp, self.records_dir), _relative(final, self.records_dir)]
                   for final, temp in order]
        journal = self.records_dir / JOURNAL
        try:
            atomic_write(journal, json.dumps({"schema": SCHEMA, "renames": renames}) + "\n")
        except BaseException:  # no journal: the transaction never happened
            self.discard()
            raise
        _fsync_dir(self.records_dir)
        # Committed: from here a crash is finished by recover(), never undone.
        _apply(self.records_dir, renames)
        self._staged.clear()


@contextmanager
def transaction(corpus_dir: Path) -> Iterator[Transaction]:
    """Stage files under ``records/`` with ``tx.write``; commit them together when the block ends.

    The records lock is held throughout, and an earlier crash is repaired first. An exception
    inside the block discards everything staged.
    """
    with locked(corpus_dir) as records_dir:
        _recover_locked(records_dir)
        tx = Transaction(records_dir)
        try:
            yield tx
        except BaseException:
            tx.discard()
            raise
        tx.commit()


def recover(corpus_dir: Path) -> bool:
    """Finish or undo a write that a crash interrupted; return True when something was repaired.

    A journal means the import had committed: its renames are done again (each is idempotent)
    and the journal removed. Temporary files without a journal belong to an import that had not
    committed: they are deleted. Cheap when there is nothing to do (no lock is taken), so every
    reader calls it first; a read-only corpus with nothing to repair is never written to.
    """
    records_dir = corpus_dir / RECORDS_DIR
    if not records_dir.is_dir() or not _leftovers(records_dir):
        return False
    with locked(corpus_dir):
        return _recover_locked(records_dir)


def snapshot(corpus_dir: Path) -> tuple[tuple[str, int, int, int], ...]:
    """A cheap token of the record files (name, size, mtime, inode) that changes with any write.

    The importer compares it before committing, to notice an import that ran in between.
    """
    records_dir = corpus_dir / RECORDS_DIR
    if not records_dir.is_dir():
        return ()
    found = []
    with os.scandir(records_dir) as entries:
        for entry in entries:
            if entry.name.endswith((".json", ".jsonl")) and entry.is_file():
                info = entry.stat()
                found.append((entry.name, info.st_size, info.st_mtime_ns, info.st_ino))
    return tuple(sorted(found))


def _leftovers(records_dir: Path) -> bool:
    if (records_dir / JOURNAL).exists():
        return True
    return any(True for _ in _temporaries(records_dir))


def _temporaries(records_dir: Path) -> Iterator[Path]:
    """Staged or half-written files: ``.<name>.<random>.tmp`` in records/ and records/raw/."""
    for folder in (records_dir, records_dir / RAW_DIR):
        if not folder.is_dir():
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
                    yield Path(entry.path)


def _recover_locked(records_dir: Path) -> bool:
    """``recover`` with the lock already held."""
    journal = records_dir / JOURNAL
    repaired = False
    if journal.exists():
        _apply(records_dir, _read_journal(journal, records_dir))
        repaired = True
    for temp in list(_temporaries(records_dir)):
        temp.unlink(missing_ok=True)
        repaired = True
    if repaired:
        _fsync_dir(records_dir / RAW_DIR)
        _fsync_dir(records_dir)
    return repaired


def _apply(records_dir: Path, renames: list[list[str]]) -> None:
    """Do a committed journal's renames, then remove it. Safe to run again after a crash.

    A temporary file that is gone was renamed by an earlier attempt; its final file is in place.
    """
    for temp, final in renames:
        source = records_dir / temp
        if source.exists():
            os.replace(source, records_dir / final)
    _fsync_dir(records_dir / RAW_DIR)
    _fsync_dir(records_dir)
    (records_dir / JOURNAL).unlink(missing_ok=True)
    _fsync_dir(records_dir)


def _read_journal(journal: Path, records_dir: Path) -> list[list[str]]:
    """The renames of a journal, each checked to stay inside records/; CorpusError otherwise."""
    rel = f"{RECORDS_DIR}/{JOURNAL}"
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
        renames = data["renames"]
        for temp, final in renames:
            _relative(records_dir / temp, records_dir)
            _relative(records_dir / final, records_dir)
            if not PurePosixPath(temp).name.endswith(TEMP_SUFFIX):
                raise ValueError(f"{temp!r} is not a staged file")
    except (OSError, ValueError, KeyError, TypeError) as error:
        # The journal is written atomically, so this is a hand edit or disk damage: guessing
        # could leave half an import, so stop and say what to do.
        raise CorpusError([CorpusProblem(rel, None, f"unreadable import journal ({error}); "
                                         "restore records/ from git, delete the journal and "
                                         "re-run the import")]) from None
    return [[str(temp), str(final)] for temp, final in renames]


def _relative(path: Path, records_dir: Path) -> str:
    """*path* relative to *records_dir* as a POSIX string; ValueError when it lies outside."""
    rel = PurePosixPath(os.path.relpath(path, records_dir))
    if rel.is_absolute() or ".." in rel.parts or rel == PurePosixPath("."):
        raise ValueError(f"{path} is not inside {records_dir}")
    return rel.as_posix()
