"""The web app's open build: a rebuild is served live, and a superseded build closes when the
last request holding it ends (never under one, and not before)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kb.build import build
from kb.config import Settings
from kb.knowledge_base import KnowledgeBase
from kb.query import SearchRequest
from kb.web import create_app
from kb.web.state import AppState, knowledge_base

MINI_CORPUS = Path(__file__).parent / "data" / "corpus"


@pytest.fixture
def fresh(tmp_path: Path) -> Settings:
    shutil.copytree(MINI_CORPUS, tmp_path / "corpus")
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", verifier=False,
                        semantic=False, search_cache_size=0)
    build(settings)
    return settings


def _works(kb: KnowledgeBase) -> bool:
    """Open, and answering searches."""
    return not kb.build.closed and kb.search(SearchRequest(q="ketamine")).total > 0


def test_a_superseded_build_stays_open_for_its_reader_then_closes(fresh: Settings) -> None:
    state = AppState(fresh)
    first = state.acquire()
    build(fresh)  # a new build is swapped in while a request still holds the first
    second = state.acquire()
    assert second is not first and second.build_name != first.build_name
    assert first in state.retired and _works(first)  # the request that got it finishes with it
    state.release(first)
    assert first not in state.retired and first.build.closed  # its last reader is done
    assert _works(second)
    state.release(second)
    assert _works(second)  # the current build stays open with no reader


def test_a_superseded_build_without_readers_closes_at_once(fresh: Settings) -> None:
    state = AppState(fresh)
    first = state.acquire()
    state.release(first)
    build(fresh)
    second = state.acquire()
    assert second is not first and not state.retired and first.build.closed
    state.release(second)
    assert state.readers == {}


def test_a_request_reads_one_build_from_start_to_end_and_releases_it(fresh: Settings) -> None:
    app = create_app(fresh)
    state: AppState = app.extensions["kb_state"]
    with app.test_request_context("/api/v1/search?q=ketamine"):
        held = knowledge_base()
        build(fresh)
        assert knowledge_base() is held  # the same object for the whole request
        assert state.readers[held] == 1
    # The request ended and no other asked for the new build yet: the held one is still current.
    assert state.readers == {} and _works(held)
    client = app.test_client()
    assert client.get("/api/v1/search?q=ketamine").status_code == 200  # swaps in the new build
    assert state.readers == {} and held.build.closed and state.kb is not held
