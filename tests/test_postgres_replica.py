"""End to end on PostgreSQL: a primary and a streaming replica on loopback, the real CLI builds
on the primary, the real server (server.py, waitress, a real port) reads the replica, and a new
build published on the primary reaches the running server without a restart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import postgres_server
import pytest
from conftest import MINI_CORPUS, ROOT, free_port, wait_for_port

pytestmark = pytest.mark.slow

EXTRA = """
@article{replica2024new,
  title = {A replicated trial of ketamine for replica-visible depression outcomes},
  author = {Nova, Ada},
  journal = {Journal of Tests},
  year = {2024},
  doi = {10.5555/replica.2024.1},
  abstract = {Ketamine improved replica-visible outcomes in this test record.},
}
"""


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def _kb(engine: str, corpus: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "kb", "--corpus-dir", str(corpus), "--engine", engine, *args],
                   check=True, capture_output=True, timeout=300, env={**os.environ, "KB_SEMANTIC": "0"})


def test_reads_go_to_the_replica_and_a_new_build_reaches_them(postgres: postgres_server.Server,
                                                              tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(MINI_CORPUS, corpus)
    _kb(postgres.url, corpus, "build", "-q")
    replica = postgres.replica()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "server.py"), "--port", str(port), "--corpus-dir", str(corpus),
         "--engine", replica.url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "KB_VERIFIER": "0", "KB_SEMANTIC": "0", "KB_SEARCH_CACHE": "0"})
    try:
        wait_for_port(port, server)
        base = f"http://127.0.0.1:{port}"
        first = _get(f"{base}/api/v1/health")
        found = _get(f"{base}/api/v1/search?q=ketamine")
        assert found["total"] and found["hits"]
        assert not _get(f"{base}/api/v1/search?q=replica-visible")["total"]
        # The replica is read-only: a write sent to it fails, so the server cannot have built there.
        with pytest.raises(subprocess.CalledProcessError):
            _kb(replica.url, corpus, "build", "-q")

        (corpus / "references" / "extra.bib").write_text(EXTRA, encoding="utf-8")
        _kb(postgres.url, corpus, "build", "-q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            health = _get(f"{base}/api/v1/health")
            if health["build"] != first["build"]:
                break
            time.sleep(0.5)
        assert health["build"] != first["build"]
        assert health["counts"]["sources"] == first["counts"]["sources"] + 1  # type: ignore[index]
        hits = _get(f"{base}/api/v1/search?q=replica-visible")["hits"]
        assert hits and hits[0]["source"]["id"] == "replica2024new"  # type: ignore[index]
        assert "10.5555/replica.2024.1" in json.dumps(_get(f"{base}/api/v1/sources/replica2024new"))
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        postgres_server.remove(replica)
