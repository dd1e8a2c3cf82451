"""Build the index from the corpus, atomically, and tell whether a built index is current.

Layout of an index folder::

    index/
      CURRENT              name of the build being served (replaced atomically)
      builds/<name>/       a complete, immutable build: manifest.json, store.sqlite, engine files
      .tmp-<name>/         a build in progress; never read, removed by the next build
      .lock                held while a build runs, so two builds never interleave

A reader resolves CURRENT once and then reads only that build, so it never sees a mixed index.
An interrupted build leaves CURRENT pointing at the previous build, which keeps serving.

Every build verifies itself: its manifest lists the size and SHA-256 of each of its files, and a
reader checks them before serving it (``resolve_build``). A damaged build (a truncated file, a
changed byte, a missing manifest) is never served: the newest intact build in builds/ is served
instead and reported as degraded, and ``kb build`` (or the server's start) makes a fresh one.
Hashing costs about 0.8 s per GB (SHA-256 with the CPU's SHA extensions), so builds up to
FULL_CHECK_BYTES are hashed at every open; a bigger one is hashed once and then trusted while none
of its files changed size, mtime or inode (``.verified.json`` in its folder records that).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kb import __version__
from kb.config import Settings
from kb.corpus.loader import Corpus, corpus_fingerprint, load_corpus
from kb.corpus.records import locked as records_locked
from kb.corpus.records import recover as recover_records
from kb.errors import CorpusError, IndexUnavailable, KBError
from kb.files import storing
from kb.search import check_engine, publish_build, published_manifest, write_engine
from kb.store import STORE_FILE, Store, order_for_index

# Bump whenever the engine schema, the store or the manifest changes meaningfully.
# 2: the manifest lists every file of the build with its size and SHA-256.
SCHEMA_VERSION = 5  # 5: store.sqlite; 4: claim search arrays (search-*.npz); 3: notices
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
BUILDS = "builds"
KEEP_BUILDS = 2  # the served build and the one before it, for readers still holding it
VERIFIED = ".verified.json"  # a big build's record of the file stats it was last hashed with
FULL_CHECK_BYTES = 256 * 2**20  # builds up to this size are hashed at every open (about 0.2 s)
RETRY = "kb build"  # what a storage error tells the user to run once fixed
_BUILD_NAME = re.compile(r"[A-Za-z0-9][\w.+-]*")

ProgressFactory = Callable[[str, int], Callable[[int], None]]  # (stage, total) -> advance(n)


@dataclass(frozen=True, slots=True)
class BuildReport:
    manifest: dict[str, Any]
    corpus: Corpus


@dataclass(frozen=True, slots=True)
class BuildProblem:
    """Why one build cannot be served: which build, which of its files, what is wrong."""

    build: str
    file: str  # relative to the build folder; "" for the folder itself
    reason: str

    def __str__(self) -> str:
        return f"build {self.build}: {self.file} {self.reason}" if self.file else \
            f"build {self.build}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        return {"build": self.build, "file": self.file, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ServedBuild:
    """The build a reader should serve, and why it is not the one CURRENT names (if it is not)."""

    build_dir: Path
    current: str  # the build CURRENT names
    problems: tuple[BuildProblem, ...] = ()  # what is wrong with that build; () when it is served

    @property
    def degraded(self) -> bool:
        return bool(self.problems)

    def reason(self) -> str:
        """One line for logs, health and the CLI; "" when the build CURRENT names is served."""
        if not self.problems:
            return ""
        details = "; ".join(str(p) for p in self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        return (f"the index is damaged ({details}{more}); serving the intact build "
                f"{self.build_dir.name} instead until a new build replaces it: run kb build")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with storing(path, RETRY):
        try:
            with temporary.open("w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)  # a full disk must not also leave a stray file
            raise
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


def _pointer(index_dir: Path) -> str:
    """The build name CURRENT holds, as written; "" when there is no CURRENT."""
    try:
        # bytes, decoded leniently: a damaged pointer must be reported, not crash the reader
        return (index_dir / CURRENT).read_bytes().decode("utf-8", "replace").strip()
    except FileNotFoundError:
        return ""


def _named_folder(index_dir: Path, name: str) -> Path | None:
    """builds/<name>, or None when *name* cannot be a build's name (a damaged pointer)."""
    return index_dir / BUILDS / name if _BUILD_NAME.fullmatch(name) else None


def current_build(index_dir: Path) -> Path | None:
    """The folder of the build CURRENT names, or None when there is none (or it has no manifest).

    It is not checked: ``resolve_build`` says which build may be served.
    """
    name = _pointer(index_dir)
    folder = _named_folder(index_dir, name) if name else None
    return folder if folder is not None and (folder / MANIFEST).is_file() else None


def read_manifest(build_dir: Path) -> dict[str, Any]:
    return json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _load_manifest(build_dir: Path) -> tuple[dict[str, Any] | None, BuildProblem | None]:
    """The manifest of *build_dir*, or the problem that keeps it from being read."""
    path = build_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, BuildProblem(build_dir.name, MANIFEST, "is missing: the build is incomplete")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, BuildProblem(build_dir.name, MANIFEST, f"cannot be read ({error})")
    if not isinstance(data, dict):
        return None, BuildProblem(build_dir.name, MANIFEST, "is not a JSON object")
    return data, None


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, streamed (hashlib reads it in blocks, never whole into memory)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _inventory(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file of a staged build, the manifest excepted, by relative name."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if name in {MANIFEST, VERIFIED} or not path.is_file():
            continue
        files[name] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
    return files


_Signature = tuple[tuple[str, int, int, int], ...]  # (file, size, mtime_ns, inode), manifest last
# Per build folder: the signature it was last checked with and what was found, so a process
# opening the same build again (the server on every swap, index_state then open) hashes it once.
_checked: dict[str, tuple[_Signature, tuple[BuildProblem, ...]]] = {}
_checked_lock = threading.Lock()


def _signature(build_dir: Path, files: dict[str, Any]) -> tuple[_Signature, int, list[BuildProblem]]:
    """Stat every listed file: the signature, the total size, and missing or mis-sized files."""
    name = build_dir.name
    problems: list[BuildProblem] = []
    stats: list[tuple[str, int, int, int]] = []
    total = 0
    for rel, entry in sorted(files.items()):
        expected = entry.get("bytes") if isinstance(entry, dict) else None
        if not isinstance(expected, int) or not isinstance(entry.get("sha256"), str):
            problems.append(BuildProblem(name, MANIFEST, f"has no size and checksum for {rel}"))
            continue
        if Path(rel).is_absolute() or ".." in Path(rel).parts:  # never look outside the build
            problems.append(BuildProblem(name, MANIFEST, f"lists {rel!r}, outside the build"))
            continue
        try:
            info = (build_dir / rel).stat()
        except FileNotFoundError:
            problems.append(BuildProblem(name, rel, "is missing"))
            continue
        except OSError as error:
            problems.append(BuildProblem(name, rel, f"cannot be read ({error.strerror})"))
            continue
        if info.st_size != expected:
            problems.append(BuildProblem(name, rel, f"is {info.st_size} bytes, the manifest says "
                                         f"{expected}: truncated or overwritten"))
        stats.append((rel, info.st_size, info.st_mtime_ns, info.st_ino))
        total += info.st_size
    info = (build_dir / MANIFEST).stat()
    stats.append((MANIFEST, info.st_size, info.st_mtime_ns, info.st_ino))
    return tuple(stats), total, problems


def verify_build(build_dir: Path, *, trust_marker_above: int = FULL_CHECK_BYTES) -> list[BuildProblem]:
    """Check a build against its manifest; return what is wrong ([] when it is intact).

    Sizes are always checked. Contents are hashed unless this process already hashed the files
    with the same stats, or the build is bigger than *trust_marker_above* bytes and its
    ``.verified.json`` records that they were hashed with these stats.
    """
    name = build_dir.name
    if not build_dir.is_dir():
        return [BuildProblem(name, "", "is missing (the folder CURRENT names does not exist)")]
    manifest, problem = _load_manifest(build_dir)
    if problem is not None or manifest is None:
        return [problem or BuildProblem(name, MANIFEST, "cannot be read")]
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return [BuildProblem(name, MANIFEST, "lists no files with checksums: the build was made by "
                             "an older version or damaged")]
    try:
        signature, total, problems = _signature(build_dir, files)
    except OSError as error:  # the manifest vanished between reading and stat: a build was pruned
        return [BuildProblem(name, MANIFEST, f"cannot be read ({error.strerror})")]
    if problems:
        return problems
    key = os.path.abspath(build_dir)
    with _checked_lock:
        cached = _checked.get(key)
    if cached is not None and cached[0] == signature:
        return list(cached[1])
    if total > trust_marker_above and _marker_vouches(build_dir, signature):
        found: tuple[BuildProblem, ...] = ()
    else:
        found = tuple(_hash_check(build_dir, files))
        if not found and total > trust_marker_above:
            _write_marker(build_dir, signature)
    with _checked_lock:
        _checked[key] = (signature, found)
    return list(found)


def build_signature(build_dir: Path) -> tuple[tuple[str, int, int, int], ...]:
    """A cheap token of a build's files (name, size, mtime, inode) that any change to one alters.

    A server compares it now and then with the one taken at open, to notice a build damaged or
    replaced under it without hashing anything.
    """
    try:
        with os.scandir(build_dir) as entries:
            found = [(e.name, info.st_size, info.st_mtime_ns, info.st_ino)
                     for e in entries if e.name != VERIFIED and e.is_file()
                     for info in (e.stat(),)]
    except FileNotFoundError:
        return ()
    return tuple(sorted(found))


def _hash_check(build_dir: Path, files: dict[str, Any]) -> Iterator[BuildProblem]:
    for rel, entry in sorted(files.items()):
        try:
            digest = file_sha256(build_dir / rel)
        except OSError as error:
            yield BuildProblem(build_dir.name, rel, f"cannot be read ({error.strerror})")
            continue
        if digest != entry["sha256"]:
            yield BuildProblem(build_dir.name, rel, "does not match its SHA-256 in the manifest: "
                               "changed or damaged since the build")


def _marker_vouches(build_dir: Path, signature: _Signature) -> bool:
    try:
        data = json.loads((build_dir / VERIFIED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("signature") == [list(s) for s in signature]


def _write_marker(build_dir: Path, signature: _Signature) -> None:
    """Record that *build_dir* was hashed intact with these file stats; best effort.

    A read-only index (a server without write access to it) simply hashes at every open.
    """
    with suppress(OSError, KBError):
        _write_atomic(build_dir / VERIFIED, json.dumps({"signature": [list(s) for s in signature]}))


def _newest_intact(index_dir: Path, exclude: str) -> Path | None:
    """The newest build in builds/ other than *exclude* that this code can read and that is intact."""
    try:
        candidates = sorted((p for p in (index_dir / BUILDS).iterdir()
                             if p.is_dir() and p.name != exclude), key=lambda p: p.name, reverse=True)
    except FileNotFoundError:
        return None
    for folder in candidates:
        manifest, problem = _load_manifest(folder)
        if problem is None and manifest is not None and \
                manifest.get("schema_version") == SCHEMA_VERSION and not verify_build(folder):
            return folder
    return None


def _problems_of(index_dir: Path, name: str) -> list[BuildProblem]:
    folder = _named_folder(index_dir, name)
    if folder is None:
        # ascii(): the damaged bytes are shown escaped, never written raw into a log line
        return [BuildProblem(ascii(name[:40]), CURRENT, "does not name a build: the pointer is damaged")]
    return verify_build(folder)


def current_problems(index_dir: Path) -> list[BuildProblem]:
    """What is wrong with the build CURRENT names; [] when it is intact or there is none."""
    name = _pointer(index_dir)
    return _problems_of(index_dir, name) if name else []


def resolve_build(index_dir: Path) -> ServedBuild:
    """The build to serve: the one CURRENT names when it is intact, else the newest intact one.

    IndexUnavailable when there is no index, when it was built by another schema version, or when
    no build is intact; each message says to run kb build.
    """
    name = _pointer(index_dir)
    if not name:
        raise IndexUnavailable(f"No search index in {index_dir.name}/: build one with: kb build")
    folder = _named_folder(index_dir, name)
    if folder is not None:
        manifest, _ = _load_manifest(folder)
        if manifest is not None and manifest.get("schema_version") != SCHEMA_VERSION:
            raise IndexUnavailable(f"The index was built by another version (schema "
                                   f"{manifest.get('schema_version')}, this code reads "
                                   f"{SCHEMA_VERSION}): rebuild it with: kb build")
    problems = _problems_of(index_dir, name)
    if folder is not None and not problems:
        return ServedBuild(folder, name)
    fallback = _newest_intact(index_dir, exclude=name)
    if fallback is None:
        raise IndexUnavailable(f"The index is damaged ({problems[0]}) and no other build is intact: "
                               "rebuild it with: kb build")
    return ServedBuild(fallback, name, tuple(problems))


def served_build(index_dir: Path, build_dir: Path) -> ServedBuild:
    """How *build_dir*, a build a reader opened, stands against the one CURRENT names now."""
    name = _pointer(index_dir)
    if build_dir.name == name:
        return ServedBuild(build_dir, name)
    return ServedBuild(build_dir, name, tuple(_problems_of(index_dir, name)) if name else ())


def index_state(settings: Settings) -> tuple[str, dict[str, Any] | None]:
    """Return ("missing" | "corrupt" | "stale" | "current", manifest) for the build CURRENT names.

    "corrupt": it is incomplete or fails its checksums (``current_problems`` says how), and a
    build repairs it; "stale": it was built by another schema version or from another corpus.
    """
    if settings.engine:
        return published_state(settings)
    name = _pointer(settings.index_dir)
    if not name:
        return "missing", None
    folder = _named_folder(settings.index_dir, name)
    if folder is None:
        return "corrupt", None
    manifest, problem = _load_manifest(folder)
    if manifest is None or problem is not None:
        return "corrupt", None
    if manifest.get("schema_version") != SCHEMA_VERSION:
        return "stale", manifest
    if verify_build(folder):
        return "corrupt", manifest
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
    if settings.engine:
        return _build_published(settings, strict=strict, progress=progress)
    started = time.perf_counter()
    index_dir = settings.index_dir
    # A full disk or a read-only index is one line naming the path, not a traceback; the
    # inner blocks name the file being written, this one the index for everything else.
    with storing(index_dir, RETRY), build_lock(index_dir):
        if settings.corpus_dir.is_dir():
            # Finish (or undo) an interrupted import first, so the fingerprint describes the
            # corpus this build reads; then hold the records lock while reading, so an import
            # cannot commit halfway through the scan.
            recover_records(settings.corpus_dir)
        has_records = (settings.corpus_dir / "records").is_dir()
        with records_locked(settings.corpus_dir) if has_records else nullcontext():
            fingerprint = corpus_fingerprint(settings.corpus_dir) if settings.corpus_dir.is_dir() else ""
            corpus = load_corpus(settings.corpus_dir)
        fatal = [p for p in corpus.errors if p.fatal]
        if (strict and corpus.errors) or fatal or not corpus.sources:
            # the errors that stop the build first, then the rest, so the message leads with them
            problems = [*fatal, *(p for p in corpus.errors if p not in fatal)] or corpus.problems
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
            with storing(staging, RETRY):
                write_engine(staging, sources, claims, corpus.vocabulary, advance,
                             semantic=settings.semantic)
            with storing(staging / STORE_FILE, RETRY):
                Store(sources, claims, corpus.vocabulary).write(staging)
            with storing(staging, RETRY):
                for path in staging.iterdir():
                    if path.is_file():
                        with path.open("rb") as handle:
                            os.fsync(handle.fileno())
                # Hashed after the fsync, so the manifest describes the bytes as stored.
                files = _inventory(staging)
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
                "files": files,
            }
            _write_atomic(staging / MANIFEST, json.dumps(manifest, indent=2) + "\n")
            final = index_dir / BUILDS / name
            os.rename(staging, final)
            _fsync_dir(final.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if sum(f["bytes"] for f in files.values()) > FULL_CHECK_BYTES:
            # just hashed: the first open of a big build need not read it all again
            _write_marker(final, _signature(final, files)[0])
        _write_atomic(index_dir / CURRENT, name + "\n")
        _prune_old_builds(index_dir, keep=name)
    return BuildReport(manifest=manifest, corpus=corpus)


def _build_published(settings: Settings, *, strict: bool, progress: ProgressFactory | None) -> BuildReport:
    """Build into a scratch index folder, then publish that build into the engine's database.

    The database switches to the new build in the publishing transaction, so readers see the
    build before or after it, never a part; the scratch folder goes either way.
    """
    import tempfile

    check_engine(settings.engine)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kb-publish-") as scratch:
        local = replace(settings, index_dir=Path(scratch), engine="")
        report = build(local, strict=strict, progress=progress)
        advance = progress("publishing to the database", report.manifest["counts"]["claims"]) \
            if progress else None
        publish_build(settings.engine, Path(scratch) / BUILDS / report.manifest["build"], advance)
    manifest = {**report.manifest, "build_seconds": round(time.perf_counter() - started, 2)}
    return BuildReport(manifest=manifest, corpus=report.corpus)


def published_state(settings: Settings) -> tuple[str, dict[str, Any] | None]:
    """``index_state`` for a database engine: "missing", "stale" or "current"."""
    manifest = published_manifest(settings.engine)
    if manifest is None:
        return "missing", None
    if manifest.get("schema_version") != SCHEMA_VERSION or \
            manifest.get("corpus_fingerprint") != corpus_fingerprint(settings.corpus_dir):
        return "stale", manifest
    return "current", manifest


def _remove_stale_temporaries(index_dir: Path) -> None:
    for path in index_dir.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)


def _damaged(build_dir: Path) -> bool:
    """A build of this schema that fails its checks (one of another schema is not damaged)."""
    manifest, problem = _load_manifest(build_dir)
    if problem is not None or manifest is None:
        return True
    return manifest.get("schema_version") == SCHEMA_VERSION and bool(verify_build(build_dir))


def _prune_old_builds(index_dir: Path, keep: str) -> None:
    """Keep *keep* and the newest KEEP_BUILDS - 1 other builds that are not damaged.

    A damaged build is of no use to a reader or as a fallback, so it never takes the place of an
    intact older one.
    """
    builds = sorted((p for p in (index_dir / BUILDS).iterdir() if p.is_dir() and p.name != keep),
                    key=lambda p: p.name, reverse=True)
    survivors: list[Path] = []
    for path in builds:
        if len(survivors) < KEEP_BUILDS - 1 and not _damaged(path):
            survivors.append(path)
        else:
            shutil.rmtree(path, ignore_errors=True)
            with _checked_lock:
                _checked.pop(os.path.abspath(path), None)


def require_build(index_dir: Path) -> Path:
    """The folder of the build to serve (see ``resolve_build``), or IndexUnavailable."""
    return resolve_build(index_dir).build_dir
