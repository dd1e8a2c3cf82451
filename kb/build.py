"""Build the index from the corpus, atomically, and tell whether a built index is current.

Layout of an index folder::

    index/
      CURRENT              name of the build being served (replaced atomically)
      builds/<name>/       a complete, immutable build: manifest.json, store.json, engine files
      .tmp-<name>/         a build in progress; never read, removed by the next build
      .lock                held while a build runs, so two builds never interleave

A reader resolves CURRENT once and then reads only that build, so it never sees a mixed index.
An interrupted build leaves CURRENT pointing at the previous build, which keeps serving.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kb import __version__
from kb.config import Settings
from kb.corpus.loader import Corpus, corpus_fingerprint, load_corpus
from kb.corpus.records import locked as records_locked
from kb.corpus.records import recover as recover_records
from kb.errors import CorpusError, IndexUnavailable
from kb.search import write_engine
from kb.store import Store, order_for_index

SCHEMA_VERSION = 1  # bump whenever the engine schema or the store format changes
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
BUILDS = "builds"
KEEP_BUILDS = 2  # the served build and the one before it, for readers still holding it

ProgressFactory = Callable[[str, int], Callable[[int], None]]  # (stage, total) -> advance(n)


@dataclass(frozen=True, slots=True)
class BuildReport:
    manifest: dict[str, Any]
    corpus: Corpus


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


@contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on *index_dir* for the duration of a build."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_build(index_dir: Path) -> Path | None:
    """The folder of the build being served, or None when there is none."""
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    folder = index_dir / BUILDS / name
    return folder if name and (folder / MANIFEST).is_file() else None


def read_manifest(build_dir: Path) -> dict[str, Any]:
    return json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def index_state(settings: Settings) -> tuple[str, dict[str, Any] | None]:
    """Return ("missing" | "stale" | "current", manifest) for the served build."""
    build_dir = current_build(settings.index_dir)
    if build_dir is None:
        return "missing", None
    manifest = read_manifest(build_dir)
    if manifest.get("schema_version") != SCHEMA_VERSION:
        return "stale", manifest
    if manifest.get("corpus_fingerprint") != corpus_fingerprint(settings.corpus_dir):
        return "stale", manifest
    return "current", manifest


def check_corpus(settings: Settings) -> Corpus:
    """Load and validate the corpus without writing anything."""
    return load_corpus(settings.corpus_dir)


def build(settings: Settings, *, strict: bool = False,
          progress: ProgressFactory | None = None) -> BuildReport:
    """Parse the corpus and write a new build, then make it the served one.

    Errors in single records are reported in the manifest and skipped; with *strict*, or when the
    corpus cannot be read at all, nothing is written and CorpusError is raised.
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    with build_lock(index_dir):
        if settings.corpus_dir.is_dir():
            # Finish (or undo) an interrupted import first, so the fingerprint describes the
            # corpus this build reads; then hold the records lock while reading, so an import
            # cannot commit halfway through the scan.
            recover_records(settings.corpus_dir)
        has_records = (settings.corpus_dir / "records").is_dir()
        with records_locked(settings.corpus_dir) if has_records else nullcontext():
            fingerprint = corpus_fingerprint(settings.corpus_dir) if settings.corpus_dir.is_dir() else ""
            corpus = load_corpus(settings.corpus_dir)
        fatal = [p for p in corpus.errors if p.message.startswith("corpus folder does not exist")
                 or "vocabulary" in p.file and p.severity == "error"]
        if (strict and corpus.errors) or fatal or not corpus.sources:
            problems = corpus.errors or corpus.problems
            if not problems:
                from kb.models import CorpusProblem

                problems = [CorpusProblem(str(settings.corpus_dir), None,
                                          "the corpus has no sources: add BibTeX under references/")]
            raise CorpusError(problems)
        sources, claims = order_for_index(list(corpus.sources.values()), corpus.claims)
        name = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + f"-{fingerprint[:8]}"
        (index_dir / BUILDS).mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(index_dir)
        staging = index_dir / f".tmp-{name}"
        staging.mkdir()
        try:
            advance = progress("indexing claims", len(claims)) if progress else None
            write_engine(staging, sources, claims, corpus.vocabulary, advance,
                         semantic=settings.semantic)
            Store(sources, claims, corpus.vocabulary).write(staging)
            manifest = {
                "schema_version": SCHEMA_VERSION,
                "kb_version": __version__,
                "corpus_fingerprint": fingerprint,
                "counts": {"sources": len(sources), "claims": len(claims),
                           "terms": len(corpus.vocabulary)},
                "problems": {"errors": len(corpus.errors),
                             "warnings": len(corpus.problems) - len(corpus.errors)},
                "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "build_seconds": round(time.perf_counter() - started, 2),
                "build": name,
            }
            _write_atomic(staging / MANIFEST, json.dumps(manifest, indent=2) + "\n")
            for path in staging.iterdir():
                if path.is_file():
                    with path.open("rb") as handle:
                        os.fsync(handle.fileno())
            final = index_dir / BUILDS / name
            os.rename(staging, final)
            _fsync_dir(final.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _write_atomic(index_dir / CURRENT, name + "\n")
        _prune_old_builds(index_dir, keep=name)
    return BuildReport(manifest=manifest, corpus=corpus)


def _remove_stale_temporaries(index_dir: Path) -> None:
    for path in index_dir.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)


def _prune_old_builds(index_dir: Path, keep: str) -> None:
    builds = sorted((p for p in (index_dir / BUILDS).iterdir() if p.is_dir()), key=lambda p: p.name)
    survivors = [p for p in builds if p.name != keep][-(KEEP_BUILDS - 1):] if KEEP_BUILDS > 1 else []
    for path in builds:
        if path.name != keep and path not in survivors:
            shutil.rmtree(path, ignore_errors=True)


def require_build(index_dir: Path) -> Path:
    """The served build's folder, or IndexUnavailable saying how to make one."""
    build_dir = current_build(index_dir)
    if build_dir is None:
        raise IndexUnavailable(f"No search index in {index_dir.name}/: build one with: kb build")
    manifest = read_manifest(build_dir)
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise IndexUnavailable(f"The index was built by another version (schema "
                               f"{manifest.get('schema_version')}, this code reads {SCHEMA_VERSION}): "
                               "rebuild it with: kb build")
    return build_dir
