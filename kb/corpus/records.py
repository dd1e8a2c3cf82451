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
benefit. Every write is atomic (temporary file in the same folder, fsync, ``os.replace``), so an
interrupted import leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

from kb.ids import is_source_id, normalize_doi, normalize_pmcid, normalize_pmid
from kb.ingest import ParseResult
from kb.models import TAG_KINDS, VERIFICATION_MARKS, CorpusProblem, Provenance, Source

SCHEMA = 1
RECORDS_DIR = "records"
RAW_DIR = "raw"
_TUPLE_FIELDS = {"authors", "keywords", "publication_types"}
_SOURCE_FIELDS = {f.name for f in fields(Source)}


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
            data = json.loads(chunk)
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
    """Write records and their raw payloads atomically; return the record files written.

    *sources* are new records (Sources or StoredRecords) or updated ones (StoredRecords that
    know their ``path``; a batch file holding one is rewritten whole). *raw* maps a source id to
    its payload text. With *batch*, new records go to ``records/<batch>.jsonl``. Raw payloads are
    written before the records that name them, so a record never points at a missing file.
    """
    records_dir = corpus_dir / RECORDS_DIR
    raw_dir = records_dir / RAW_DIR
    records = [s if isinstance(s, StoredRecord) else StoredRecord(source=s) for s in sources]
    new = [r for r in records if r.path is None]
    updated = [r for r in records if r.path is not None]
    raw_dir.mkdir(parents=True, exist_ok=True)

    if batch:
        batch_raw = raw_dir / f"{batch}.raw.jsonl"
        lines = [json.dumps({"id": r.source.id, "raw": raw[r.source.id]}, ensure_ascii=False)
                 for r in new if r.source.id in raw]
        if lines:
            atomic_write(batch_raw, "\n".join(lines) + "\n")
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
        atomic_write(raw_dir / name, payload)
        if record.path is not None and record.merged:
            record.merged[-1]["raw"] = f"{RAW_DIR}/{name}"
        else:
            record.raw = f"{RAW_DIR}/{name}"
    written: list[Path] = []
    if batch and new:
        path = records_dir / f"{batch}.jsonl"
        atomic_write(path, "".join(_line(r) for r in new))
        for record in new:
            record.path = path
        written.append(path)
    else:
        for record in new:
            path = records_dir / f"{record.source.id}.json"
            atomic_write(path, json.dumps(record.to_dict(), ensure_ascii=False, indent=2) + "\n")
            record.path = path
            written.append(path)
    written.extend(_rewrite(updated, corpus_dir))
    _fsync_dir(raw_dir)
    _fsync_dir(records_dir)
    return written


def _rewrite(updated: list[StoredRecord], corpus_dir: Path) -> list[Path]:
    """Rewrite the files holding *updated* records, keeping the other records of a batch."""
    by_file: dict[Path, dict[str, StoredRecord]] = {}
    for record in updated:
        assert record.path is not None
        by_file.setdefault(record.path, {})[record.source.id] = record
    written = []
    for path, changes in by_file.items():
        if path.suffix == ".jsonl":
            rel = path.relative_to(corpus_dir).as_posix()
            current, _ = read_records(path.read_text(encoding="utf-8"), rel)
            merged = [changes.get(r.source.id, r) for r in current]
            atomic_write(path, "".join(_line(r) for r in merged))
        else:
            (record,) = changes.values()
            atomic_write(path, json.dumps(record.to_dict(), ensure_ascii=False, indent=2) + "\n")
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


def atomic_write(path: Path, text: str) -> None:
    """Replace *path* with *text* so readers see the old file or the new one, never a mix.

    The temporary file sits in the same folder because ``os.replace`` is only atomic within
    one file system; the fsync makes the bytes durable before the name points at them.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


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

