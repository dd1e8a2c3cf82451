"""One build opened for reading: its record store, search engine and manifest, as one object.

Everything that reads a build (the matcher, the article checker, the facade's views) takes an
``OpenedBuild``. A build never changes once written, so what is computed from it (the matcher
with its match index, the checker's scorer and source index, counts over every claim) is kept on
the build itself by ``derived``: it lives exactly as long as the build is open, and a server that
swaps builds drops it with the old build instead of keeping module-level caches keyed by id().
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kb.build import read_manifest, require_build
from kb.config import Settings
from kb.ids import normalize_doi, normalize_pmid
from kb.models import Source
from kb.search import SearchEngine, check_engine, open_engine, open_published
from kb.store import Store
from kb.vocabulary import Vocabulary

T = TypeVar("T")


class OpenedBuild:
    """A build's store and engine, opened and closed together, with what is derived from them."""

    def __init__(self, settings: Settings, build_dir: Path | None, store: Store, engine: SearchEngine,
                 manifest: dict[str, Any] | None = None) -> None:
        self.settings = settings
        # The build folder of the embedded engine; None for a build a database serves.
        self.build_dir = build_dir
        self.store = store
        self.engine = engine
        if manifest is None:
            assert build_dir is not None, "a build without a folder brings its manifest"
            manifest = read_manifest(build_dir)
        self.manifest = manifest
        self.name: str = str(manifest.get("build") or (build_dir.name if build_dir else ""))
        self.closed = False  # set by close()
        self._derived: dict[str, Any] = {}
        # Reentrant: one derived value may be computed from another (a source index from which
        # title frequencies are counted) on the same thread.
        self._derived_lock = threading.RLock()

    @classmethod
    def open(cls, settings: Settings) -> OpenedBuild:
        """Open the build that index/CURRENT (or the engine's database) names; IndexUnavailable
        when there is none."""
        if settings.engine:
            check_engine(settings.engine)
            _, store, engine, manifest = open_published(settings.engine)
            return cls(settings, None, store, engine, manifest)
        build_dir = require_build(settings.index_dir)
        store = Store.read(build_dir)
        engine = open_engine(build_dir, store.sources, store.claims)
        return cls(settings, build_dir, store, engine)

    def close(self) -> None:
        """Close the engine and the store; what was derived from them goes with them."""
        with self._derived_lock:
            self._derived.clear()
            self.closed = True
        self.engine.close()
        self.store.close()

    @property
    def vocabulary(self) -> Vocabulary:
        return self.store.vocabulary

    def derived(self, key: str, compute: Callable[[], T]) -> T:
        """The value *compute* gives for this build, computed on first use and kept while it is open."""
        with self._derived_lock:
            if key not in self._derived:
                self._derived[key] = compute()
            value: T = self._derived[key]
            return value

    def find_source(self, identifier: str) -> Source | None:
        """Look a source up by id, "doi:...", a bare DOI, or "pmid:..."; None if unknown."""
        if len(identifier) > 300:
            return None
        if identifier in self.store.source_by_id:
            return self.store.source_by_id[identifier]
        doi = normalize_doi(identifier)
        if doi:
            return self.store.source_by_doi.get(doi)
        if identifier.lower().startswith("pmid:"):
            return self.store.source_by_pmid.get(normalize_pmid(identifier))
        return None
