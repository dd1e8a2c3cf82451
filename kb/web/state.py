"""The app's KnowledgeBase: opened on first use, reopened when a new build is swapped in."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from kb.build import CURRENT
from kb.config import Settings
from kb.knowledge_base import KnowledgeBase


@dataclass
class AppState:
    """Holds the open KnowledgeBase; checks index/CURRENT so a rebuild is picked up live."""

    settings: Settings
    kb: KnowledgeBase | None = None
    pointer_mtime: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _pointer(self) -> Path:
        return self.settings.index_dir / CURRENT

    def _pointer_stamp(self) -> float | None:
        try:
            stat = self._pointer().stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns + stat.st_ino  # a replaced file has a new inode even in the same ns

    def knowledge_base(self) -> KnowledgeBase:
        """The current KnowledgeBase. A request keeps the object it got, so it never sees a mix."""
        stamp = self._pointer_stamp()
        kb = self.kb
        if kb is not None and stamp == self.pointer_mtime:
            return kb
        with self.lock:
            if self.kb is None or stamp != self.pointer_mtime:
                self.kb = KnowledgeBase.open(self.settings)  # the old one stays valid for its readers
                self.pointer_mtime = stamp
            return self.kb


def state() -> AppState:
    return current_app.extensions["kb_state"]  # type: ignore[no-any-return]


def knowledge_base() -> KnowledgeBase:
    return state().knowledge_base()
