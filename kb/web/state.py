"""The app's KnowledgeBase: opened on first use, reopened when a new build is swapped in.

Opening verifies the build against its manifest (kb.build.resolve_build): a damaged build is never
served, the newest intact one is, and ``served`` says so for /api/v1/health. While serving, the
files of the open build are stat-ed every few seconds; a build changed under a running server is
opened (and so verified) again rather than read half-damaged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, current_app, g, has_request_context

from kb.build import CURRENT, ServedBuild, build_signature, served_build
from kb.config import Settings
from kb.errors import KBError
from kb.knowledge_base import KnowledgeBase
from kb.search import published_build

log = logging.getLogger("kb.web")

RECHECK_SECONDS = 2.0  # how often requests stat the open build's files (microseconds per check)


@dataclass
class AppState:
    """Holds the open KnowledgeBase; checks index/CURRENT so a rebuild is picked up live."""

    settings: Settings
    kb: KnowledgeBase | None = None
    pointer_mtime: object = None  # index/CURRENT's stamp, or the build a database serves
    lock: threading.Lock = field(default_factory=threading.Lock)
    served: ServedBuild | None = None  # the open build and, when degraded, why
    signature: object = None  # build_signature of the open build when it was opened
    checked_at: float = 0.0  # time.monotonic() of the last stat of its files
    suspect: bool = False  # its files changed: reopen (and verify) before serving it again
    # Given to each KnowledgeBase opened (KnowledgeBase.search_gate): admission's search slot.
    search_gate: Callable[[], AbstractContextManager[object]] = nullcontext
    # Requests holding each KnowledgeBase (acquire/release); a superseded one waits in
    # `retired` until its last request ends, then its files, searchers and connections close.
    readers: Counter[KnowledgeBase] = field(default_factory=Counter)
    retired: set[KnowledgeBase] = field(default_factory=set)
    readers_lock: threading.Lock = field(default_factory=threading.Lock)

    def _pointer(self) -> Path:
        return self.settings.index_dir / CURRENT

    def _pointer_stamp(self) -> object:
        if self.settings.engine:
            return self._published_stamp()
        try:
            stat = self._pointer().stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns + stat.st_ino  # a replaced file has a new inode even in the same ns

    def _published_stamp(self) -> object:
        """The build a database engine serves, asked at most every RECHECK_SECONDS: a build
        published on the primary reaches a replica's readers within that of its replay."""
        now = time.monotonic()
        if self.kb is not None and now - self.checked_at < RECHECK_SECONDS:
            return self.pointer_mtime
        self.checked_at = now
        try:
            return published_build(self.settings.engine)
        except KBError as error:  # the database is unreachable: keep serving the open build
            log.warning("%s", error)
            return self.pointer_mtime

    def _files_changed(self, kb: KnowledgeBase, force: bool) -> bool:
        """Whether the open build's files changed since it was opened; stat-ed every few seconds.

        Once they have, the build stays suspect until a reopen succeeds, so no request in between
        is answered from it.
        """
        if self.suspect:
            return True
        if kb.build_dir is None:  # a database's builds never change once published
            return False
        now = time.monotonic()
        if not force and now - self.checked_at < RECHECK_SECONDS:
            return False
        self.checked_at = now
        if build_signature(kb.build_dir) != self.signature:
            self.suspect = True
        return self.suspect

    def knowledge_base(self, verify: bool = False) -> KnowledgeBase:
        """The current KnowledgeBase. A request keeps the object it got, so it never sees a mix.

        *verify* stats the open build's files now rather than at most every RECHECK_SECONDS.
        """
        stamp = self._pointer_stamp()
        kb = self.kb
        if kb is not None and stamp == self.pointer_mtime and not self._files_changed(kb, verify):
            return kb
        with self.lock:
            if self.kb is None or stamp != self.pointer_mtime or self.suspect:
                # Opening verifies the build and falls back to an intact one; IndexUnavailable
                # (503) when none is, and the next request tries again.
                opened = KnowledgeBase.open(self.settings)  # the old one stays valid for its readers
                opened.search_gate = self.search_gate
                if opened.build_dir is not None:
                    self.served = served_build(self.settings.index_dir, opened.build_dir)
                    self.signature = build_signature(opened.build_dir)
                else:
                    self.served = None
                self.checked_at = time.monotonic()
                if self.served is not None and self.served.degraded:
                    log.warning(self.served.reason())
                superseded = self.kb
                self.kb, self.pointer_mtime, self.suspect = opened, stamp, False
                if superseded is not None:
                    self._retire(superseded)
            return self.kb

    def acquire(self, verify: bool = False) -> KnowledgeBase:
        """The current KnowledgeBase, held for a request until ``release``: it stays open while held.

        The check that it is still current and the count are one step under ``readers_lock``, and
        a swap retires the old one under the same lock, so a build is never closed under a request
        that got it.
        """
        while True:
            kb = self.knowledge_base(verify)
            with self.readers_lock:
                if kb is self.kb:
                    self.readers[kb] += 1
                    return kb
            # a newer build was swapped in meanwhile: take that one

    def release(self, kb: KnowledgeBase) -> None:
        """A request is done with *kb*; the last one done with a superseded build closes it."""
        with self.readers_lock:
            self.readers[kb] -= 1
            if self.readers[kb] > 0:
                return
            del self.readers[kb]
            if kb not in self.retired:
                return
            self.retired.discard(kb)
        kb.close()

    def _retire(self, kb: KnowledgeBase) -> None:
        with self.readers_lock:
            if self.readers[kb] > 0:
                self.retired.add(kb)  # closed by the release of its last request
                return
            self.readers.pop(kb, None)
        kb.close()


def state() -> AppState:
    return current_app.extensions["kb_state"]  # type: ignore[no-any-return]


def knowledge_base() -> KnowledgeBase:
    """The KnowledgeBase a request reads: the same object for the whole request, held until it ends."""
    if not has_request_context():
        return state().knowledge_base()
    held: KnowledgeBase | None = g.get("kb_held")
    if held is None:
        held = state().acquire()
        g.kb_held = held
    return held


def install_release(app: Flask) -> None:
    """Release each request's KnowledgeBase when the request ends (see ``AppState.acquire``)."""
    @app.teardown_request
    def _release(_error: BaseException | None) -> None:
        held: KnowledgeBase | None = g.pop("kb_held", None)
        if held is not None:
            app.extensions["kb_state"].release(held)
