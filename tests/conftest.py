"""Shared fixtures: a mini corpus built into a real Whoosh index once per session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import postgres_server
import pytest
from click.testing import CliRunner, Result

from kb.build import build
from kb.cli import cli
from kb.config import Settings
from kb.knowledge_base import KnowledgeBase
from kb.web import create_app

DATA = Path(__file__).parent / "data"
MINI_CORPUS = DATA / "corpus"
ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow")


def run_slow(config: pytest.Config) -> bool:
    """Slow suites run with --run-slow, or in CI (CI=true), so .ci/run needs no extra flag."""
    return bool(config.getoption("--run-slow")) or os.environ.get("CI", "").lower() in {"1", "true"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if run_slow(config):
        return
    skip = pytest.mark.skip(reason="slow suite: run with --run-slow (.ci/run does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a copy of the mini corpus, with its index built once for the run."""
    root = tmp_path_factory.mktemp("kb")
    corpus = root / "corpus"
    shutil.copytree(MINI_CORPUS, corpus)
    # The mini corpus's verdict tests pin the lexical rules (KB_VERIFIER=0), which stay the
    # fallback; tests/test_verifier.py runs the trained verifier on the bundled corpus.
    # The session app answers hundreds of searches and checks a minute from one address: its rate
    # limits are off (tests/test_security.py and test_hardening.py check them on apps of their own).
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", verifier=False,
                        search_rate_limit="", check_rate_limit="")
    build(settings)
    return settings


@pytest.fixture(scope="session")
def postgres() -> Iterator[postgres_server.Server]:
    """A real PostgreSQL server on loopback for the run; in CI its absence is a failure."""
    if postgres_server.binaries() is None:
        if os.environ.get("CI", "").lower() in {"1", "true"}:
            pytest.fail("PostgreSQL is not installed: .ci/run installs it (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = postgres_server.start_primary()
    yield server
    postgres_server.remove(server)


@pytest.fixture(scope="session")
def pg_settings(settings: Settings, postgres: postgres_server.Server) -> Settings:
    """The session's settings with the mini corpus built into and served from PostgreSQL."""
    published = replace(settings, engine=postgres.url)
    build(published)
    return published


@pytest.fixture(scope="session")
def kb(settings: Settings) -> Iterator[KnowledgeBase]:
    knowledge_base = KnowledgeBase.open(settings)
    yield knowledge_base
    knowledge_base.close()


@pytest.fixture(scope="session")
def app(settings: Settings):
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run_cli(settings: Settings) -> Callable[..., Result]:
    """Run `kb ARGS...` in process against the test index."""
    runner = CliRunner()
    base = ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]
    # KB_VERIFIER=0 as in the settings fixture: these tests pin the lexical rules' verdicts.
    return lambda *args: runner.invoke(cli, [*base, *args], catch_exceptions=False, env={"KB_VERIFIER": "0"})


@pytest.fixture
def fresh_corpus(tmp_path: Path) -> Settings:
    """A writable copy of the mini corpus with no index yet."""
    corpus = tmp_path / "corpus"
    shutil.copytree(MINI_CORPUS, corpus)
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"server did not listen on {port} within {timeout} s")


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[str]:
    """The real server (server.py, waitress) on a free port, serving the mini corpus."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "server.py"), "--port", str(port),
         "--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "KB_VERIFIER": "0"},
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
