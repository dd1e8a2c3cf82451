"""Import records into a corpus: parse, deduplicate against what the corpus holds, write.

The corpus is the truth, so the importer reads every source already in it (``references/*.bib``
and ``records/``) before writing anything, and never writes a second source for a work it
already has: a duplicate either adds the fields the corpus lacks (merged) or changes nothing
(skipped). BibTeX files are the curators' and are never edited; what an import adds to a
curated source goes into ``records/<its id>.json``, which the corpus loader merges with it.
Nothing is written until every input has been read, and then everything is written in one
transaction (``kb.corpus.records.write_records``): a killed import leaves the corpus as it was
before or as it is after, never in between. An import that ran while this one was reading is
noticed at commit time, under the records lock, and this one is placed again against the corpus
as it now is, so two concurrent imports never add the same work twice.
"""

from __future__ import annotations

import gzip
import re
import sys
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kb.config import Settings
from kb.corpus import records as record_store
from kb.corpus.records import StoredRecord
from kb.errors import BadRequest, IngestError, KBError
from kb.fetch import crossref as crossref_service
from kb.fetch.client import HttpClient
from kb.ingest import ParseResult, bibtex, pdf
from kb.ingest import crossref as crossref_format
from kb.ingest.common import KeyAllocator, unique_key
from kb.ingest.detect import BINARY_FORMATS, FORMATS, PDF_MAGIC, RAW_EXTENSIONS, detect_format
from kb.ingest.merge import SourceIndex, merge_sources
from kb.models import CorpusProblem, Provenance, Source

BATCH_THRESHOLD = 200  # an import adding more records than this writes one JSON Lines batch
MAX_FILE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReportItem:
    """One record's fate: its source id, title, where it came from, and why (when skipped)."""

    id: str
    title: str
    origin: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "origin": self.origin, "detail": self.detail}


@dataclass(slots=True)
class ImportReport:
    """What an import or an add did: added, merged and skipped records, problems and conflicts."""

    added: list[ReportItem] = field(default_factory=list)
    merged: list[ReportItem] = field(default_factory=list)
    skipped: list[ReportItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "file:line: severity: message"
    conflicts: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # corpus-relative paths of record files
    # Input files nothing could be read from because of an error (an XML file declaring entities,
    # a file of the wrong format): when every input is refused, `kb import` exits 1.
    refused: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: counts first, then the items."""
        return {
            "dry_run": self.dry_run,
            "counts": {"added": len(self.added), "merged": len(self.merged),
                       "skipped": len(self.skipped), "problems": len(self.problems),
                       "conflicts": len(self.conflicts), "refused": len(self.refused)},
            "added": [i.to_dict() for i in self.added],
            "merged": [i.to_dict() for i in self.merged],
            "skipped": [i.to_dict() for i in self.skipped],
            "problems": self.problems,
            "conflicts": self.conflicts,
            "written": self.written,
            "refused": self.refused,
        }

    def summary(self) -> str:
        """One line: "added 3, merged 1, skipped 2; 1 problem" (with "would" on a dry run)."""
        verb = "would add" if self.dry_run else "added"
        text = (f"{verb} {len(self.added)}, merged {len(self.merged)}, "
                f"skipped {len(self.skipped)}")
        if self.problems:
            text += f"; {len(self.problems)} problem(s)"
        if self.conflicts:
            text += f"; {len(self.conflicts)} conflict(s)"
        if self.refused:
            text += f"; {len(self.refused)} file(s) refused"
        return text


@dataclass(slots=True)
class _Entry:
    """A work the corpus knows: its combined view and the imported record we may update."""

    source: Source
    record: StoredRecord | None = None
    curated: bool = False  # it has a BibTeX entry


class Importer:
    """Collects parsed records for one corpus, deduplicating as it goes; ``commit`` writes them."""

    def __init__(self, corpus_dir: Path, dry_run: bool = False) -> None:
        self.corpus_dir = corpus_dir
        self.dry_run = dry_run
        self.report = ImportReport(dry_run=dry_run)
        self.index = SourceIndex()
        self.entries: dict[str, _Entry] = {}
        self.keys = KeyAllocator(self.entries)
        self._snapshot: tuple[tuple[str, int, int, int], ...] = ()
        self.new: dict[str, StoredRecord] = {}
        self.updated: dict[str, StoredRecord] = {}
        self.raw: dict[str, str] = {}
        self.batch_hint = ""
        self._inputs: list[tuple[ParseResult, str, str]] = []  # replayed if the corpus moves
        self._load()

    def _load(self) -> None:
        """Read every source the corpus holds (after repairing an interrupted import)."""
        record_store.recover(self.corpus_dir)
        self._snapshot = record_store.snapshot(self.corpus_dir)
        self.index = SourceIndex()
        self.entries = {}
        references = self.corpus_dir / "references"
        for path in sorted(references.rglob("*.bib")) if references.is_dir() else []:
            rel = path.relative_to(self.corpus_dir).as_posix()
            for source in bibtex.parse(path.read_text(encoding="utf-8"), rel).sources:
                if source.id not in self.entries:
                    self.entries[source.id] = _Entry(source, curated=True)
                    self.index.put(source)
        stored, _problems = record_store.load_all(self.corpus_dir)
        for record in stored:
            entry = self.entries.get(record.source.id)
            if entry is None:
                self.entries[record.source.id] = _Entry(record.source, record)
                self.index.put(record.source)
            else:  # a supplement to a curated source: the loader merges them the same way
                entry.record = record
                entry.source = merge_sources(entry.source, record.source).source
                self.index.put(entry.source)
        self.keys = KeyAllocator(self.entries)

    def add(self, result: ParseResult, fmt: str, origin: str,
            advance: Callable[[int], None] | None = None) -> None:
        """Take in one parser's output: report its problems and place each of its records."""
        self._inputs.append((result, fmt, origin))
        self.report.problems.extend(str(p) for p in result.problems)
        for source in result.sources:
            self._place(source, result.raw.get(source.id), fmt, origin)
            if advance:
                advance(1)

    def _place(self, source: Source, raw: str | None, fmt: str, origin: str) -> None:
        where = str(source.provenance[0]) if source.provenance else origin
        match = self.index.find(source)
        extension = RAW_EXTENSIONS.get(fmt, "txt")
        if match is None:
            key = self.keys.allocate(source.id)
            source = replace(source, id=key) if key != source.id else source
            # The day it entered the knowledge base, for the search feeds (kb.web.feeds).
            source = replace(source, added=source.added or datetime.now(UTC).date().isoformat())
            record = StoredRecord(source=source, format=fmt, origin=where,
                                  raw=f"raw/{key}.{extension}" if raw is not None else "")
            self.entries[key] = _Entry(source, record)
            self.index.put(source)
            self.new[key] = record
            if raw is not None:
                self.raw[key] = raw
            self.report.added.append(ReportItem(key, source.title, where))
            return
        entry = self.entries[match.id]
        outcome = merge_sources(entry.source, source, _origin_of(entry), where)
        self.report.conflicts.extend(outcome.conflicts)
        if not outcome.changed:
            self.report.skipped.append(ReportItem(
                match.id, entry.source.title, where,
                f"already in the corpus (same {match.reason}); nothing new"))
            return
        entry.source = outcome.source
        self.index.put(outcome.source)
        stored = entry.record
        if stored is None:  # a curated source gains an imported supplement with its id
            record = StoredRecord(source=replace(source, id=match.id), format=fmt, origin=where,
                                  raw=f"raw/{match.id}.{extension}" if raw is not None else "",
                                  conflicts=list(outcome.conflicts))
            entry.record = record
            self.new[match.id] = record
            if raw is not None:
                self.raw[match.id] = raw
        else:
            record = stored
            own = merge_sources(record.source, replace(source, id=match.id),
                                record.origin, where)
            record.source = own.source
            record.conflicts.extend(outcome.conflicts)
            if match.id in self.new:  # a duplicate within this import: note it, keep the first raw
                record.merged.append({"origin": where, "format": fmt, "fields": outcome.changed,
                                      "raw": ""})
            else:
                number = len(record.merged) + 2
                record.merged.append({
                    "origin": where, "format": fmt, "fields": outcome.changed,
                    "raw": f"raw/{match.id}.{number}.{extension}" if raw is not None else ""})
                self.updated[match.id] = record
                if raw is not None:
                    self.raw[match.id] = raw
        self.report.merged.append(ReportItem(
            match.id, entry.source.title, where,
            f"same {match.reason}; added {', '.join(outcome.changed)}"))

    def commit(self) -> ImportReport:
        """Write the new and updated records (unless this is a dry run) and return the report."""
        if self.dry_run or not (self.new or self.updated):
            return self.report
        # The lock spans the check and the write, so no other import can slip in between.
        with record_store.locked(self.corpus_dir):
            if record_store.snapshot(self.corpus_dir) != self._snapshot:
                self._replay()
                if not (self.new or self.updated):
                    return self.report
            batch = None
            if len(self.new) > BATCH_THRESHOLD:
                batch = self._batch_name()
            written = record_store.write_records(
                self.corpus_dir, [*self.new.values(), *self.updated.values()], self.raw,
                batch=batch)
        self.report.written = sorted({p.relative_to(self.corpus_dir).as_posix() for p in written})
        self.new.clear()
        self.updated.clear()
        return self.report

    def _replay(self) -> None:
        """Another import changed records/ since we read it: place every input again."""
        inputs = self._inputs
        self.report = ImportReport(dry_run=self.dry_run)
        self.new, self.updated, self.raw, self._inputs = {}, {}, {}, []
        self._load()
        for result, fmt, origin in inputs:
            self.add(result, fmt, origin)

    def _batch_name(self) -> str:
        stem = re.sub(r"[^A-Za-z0-9_.+-]+", "-", self.batch_hint or "import").strip("-.") or "import"
        records_dir = self.corpus_dir / record_store.RECORDS_DIR
        taken = {p.stem for p in records_dir.glob("*.jsonl")} if records_dir.is_dir() else set()
        taken |= set(self.entries)  # keep clear of record file names too
        return unique_key(f"batch-{stem}", taken)


def import_files(paths: Iterable[str | Path], settings: Settings, fmt: str | None = None,
                 dry_run: bool = False, progress: bool = True, lookup: bool = True) -> ImportReport:
    """Import bibliographic files (and papers' PDFs) into ``settings.corpus_dir``; return what happened.

    The format of each file is told from its content unless *fmt* names it. A malformed record
    is reported (file and line or record number) and the rest of the file still imports. A PDF
    is always read as a PDF; with *lookup*, the DOI it prints is looked up at Crossref for its
    metadata (offline, or with *lookup* off, the PDF's own metadata is kept, marked unverified).
    """
    if fmt is not None and fmt not in FORMATS and fmt not in BINARY_FORMATS:
        raise BadRequest(f"unknown format {fmt!r}; use one of {', '.join([*FORMATS, *BINARY_FORMATS])}")
    files = [Path(p) for p in paths]
    for path in files:
        if not path.is_file():
            raise IngestError(str(path), None, "no such file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise IngestError(str(path), None, f"larger than {MAX_FILE_BYTES // 2**20} MB; split it")
    importer = Importer(settings.corpus_dir, dry_run=dry_run)
    refused: list[str] = []
    if len(files) == 1:
        importer.batch_hint = files[0].stem
    for path in files:
        if fmt == "pdf" or _is_pdf(path, named=fmt is None):
            result = pdf.parse(_read_bytes(path), str(path))
            if lookup:
                _metadata_by_doi(result, settings, str(path))
            importer.add(result, "pdf", str(path))
            if not result.sources:
                refused.append(str(path))
            continue
        text = _read(path)
        kind = fmt or detect_format(text, str(_inner_name(path)))
        result = FORMATS[kind](text, str(path))
        del text  # the parsed records are all we keep
        importer.add(result, kind, str(path), _progress(progress, len(result.sources), path.name))
        if not result.sources and any(p.severity == "error" for p in result.problems):
            refused.append(str(path))
    report = importer.commit()
    # After commit: a replay against a moved corpus starts a fresh report.
    report.refused = refused
    return report


GZIP_MAGIC = b"\x1f\x8b"


def _inner_name(path: Path) -> Path:
    """The name a compressed file's content goes by: pubmed25n0001.xml.gz -> pubmed25n0001.xml."""
    return path.with_suffix("") if path.suffix.lower() == ".gz" else path


def _gunzip(path: Path) -> bytes:
    """A gzip file's content (PubMed's baseline files are .xml.gz), refused past the size limit
    as it is read, so a small file that inflates without end costs no more than the limit."""
    chunks: list[bytes] = []
    size = 0
    try:
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise IngestError(str(path), None, f"inflates past {MAX_FILE_BYTES // 2**20} MB; "
                                      "split it")
                chunks.append(chunk)
    except (OSError, EOFError, zlib.error) as error:
        raise IngestError(str(path), None, f"not a readable gzip file ({error}); download it "
                          "again") from None
    return b"".join(chunks)


def _read(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            compressed = handle.read(2) == GZIP_MAGIC
        if compressed:
            return _gunzip(path).decode("utf-8-sig")
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise IngestError(str(path), None, f"not UTF-8 text (byte {error.start}); convert it "
                          "to UTF-8 and import again") from None
    except OSError as error:
        raise IngestError(str(path), None, f"cannot read: {error.strerror}") from None


def _is_pdf(path: Path, named: bool) -> bool:
    """A PDF by its first bytes (a misnamed one too), or by its name when no --format was given
    (so a damaged ``paper.pdf`` is refused as a PDF, not as text that is not UTF-8)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(1024)
    except OSError:
        head = b""
    return PDF_MAGIC in head or (named and path.suffix.lower() == ".pdf")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise IngestError(str(path), None, f"cannot read: {error.strerror}") from None


def _metadata_by_doi(result: ParseResult, settings: Settings, origin: str) -> None:
    """Give a PDF's source the Crossref record of the DOI it prints, keeping its full text.

    The PDF's own metadata is often missing or wrong (a file name as its title, the date it was
    made rather than published): the publisher's record is better and is marked verified. Any
    failure (offline, unknown DOI, a service down) keeps the PDF's metadata, marked unverified,
    with a warning: the paper still imports.
    """
    for index, source in enumerate(result.sources):
        if not source.doi:
            continue
        try:
            # One retry and short timeouts: an offline import must not hang on the lookup.
            client = HttpClient(settings, connect_timeout=3.0, read_timeout=15.0, retries=1)
            body = crossref_service.fetch_work(client, source.doi)
        except (KBError, OSError) as error:
            result.problems.append(CorpusProblem(
                origin, None, f"could not look up DOI {source.doi} at Crossref ({error}); kept the "
                "PDF's own metadata, marked unverified (kb add doi:... later confirms it)", "warning"))
            continue
        found = [s for s in crossref_format.parse(body, f"crossref:{source.doi}").sources
                 if s.doi == source.doi]
        if not found:
            result.problems.append(CorpusProblem(
                origin, None, f"Crossref's record for DOI {source.doi} could not be read; kept the "
                "PDF's own metadata, marked unverified", "warning"))
            continue
        record = found[0]
        abstract = (record.abstract, record.abstract_sections) if record.abstract \
            else (source.abstract, source.abstract_sections)
        merged = replace(record, abstract=abstract[0], abstract_sections=abstract[1],
                         full_text=source.full_text,
                         provenance=(Provenance(origin), Provenance(f"crossref:{source.doi}")))
        result.sources[index] = merged
        raw = result.raw.pop(source.id, None)
        if raw is not None:
            result.raw[merged.id] = raw


def _origin_of(entry: _Entry) -> str:
    if entry.source.provenance:
        return str(entry.source.provenance[0])
    return entry.record.origin if entry.record else "corpus"


def _progress(enabled: bool, total: int, name: str) -> Callable[[int], None] | None:
    """A tqdm bar (on a terminal only) for a file with many records; None otherwise."""
    if not enabled or total < 100 or not sys.stderr.isatty():
        return None
    from kb.progress import progress_bars

    return progress_bars()(f"import {name}", total)
