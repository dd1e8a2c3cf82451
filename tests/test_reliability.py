"""The service holds up: killed builds, rebuilds under load, clean shutdown."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, free_port, wait_for_port

from kb.build import CURRENT, build, current_build
from kb.corpus.loader import corpus_fingerprint

KB = [sys.executable, "-m", "kb"]


def _grow(corpus: Path, n: int, tag: str = "") -> None:
    """Add *n* synthetic sources with summaries, so a build takes long enough to interrupt."""
    bib = corpus / "references" / f"generated{tag}.bib"
    entries = []
    for i in range(n):
        key = f"synthetic{tag}{i:04d}"
        entries.append(f"@article{{{key},\n  title = {{Synthetic trial {i} of ketamine in depression}},\n"
                       f"  author = {{Doe, J.}},\n  year = {{{2000 + i % 20}}},\n"
                       f"  journal = {{Journal of Tests}}\n}}\n")
        (corpus / "summaries" / f"{key}.md").write_text(
            f'+++\nsource = "{key}"\ndesign = "rct"\n+++\n\nSynthetic summary {i}.\n\n## Claims\n\n'
            + "".join(f"- Ketamine improved depressive symptoms by {i + j} points in trial {i}.\n"
                      for j in range(8)), encoding="utf-8")
    bib.write_text("\n".join(entries), encoding="utf-8")


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _start_server(settings) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--port", str(port),
                                "--corpus-dir", str(settings.corpus_dir),
                                "--index-dir", str(settings.index_dir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               # the hammering below is the point: the search rate limit is off
                               env={**os.environ, "KB_SEARCH_RATE_LIMIT": ""})
    wait_for_port(port, process)
    return process, f"http://127.0.0.1:{port}"


@pytest.mark.slow
def test_builds_killed_at_random_points_never_break_the_served_index(fresh_corpus):
    _grow(fresh_corpus.corpus_dir, 150)
    build(fresh_corpus)
    served = (fresh_corpus.index_dir / CURRENT).read_text()
    fingerprint = corpus_fingerprint(fresh_corpus.corpus_dir)
    server, url = _start_server(fresh_corpus)
    expected_total = _get(f"{url}/api/v1/search?q=ketamine&limit=1")["total"]
    rng = random.Random(20261126)
    outcomes = {"killed": 0, "finished": 0}
    try:
        for _ in range(50):
            process = subprocess.Popen([*KB, "--corpus-dir", str(fresh_corpus.corpus_dir),
                                        "--index-dir", str(fresh_corpus.index_dir), "build", "-q"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.05, 2.0))
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                outcomes["killed"] += 1
            else:
                outcomes["finished"] += 1
            process.wait()
            # the pointer always names a complete build, and the server keeps answering
            assert current_build(fresh_corpus.index_dir) is not None
            assert _get(f"{url}/api/v1/search?q=ketamine&limit=1")["total"] == expected_total
            assert corpus_fingerprint(fresh_corpus.corpus_dir) == fingerprint
        assert outcomes["killed"] >= 10, outcomes  # the kills really interrupted builds
        result = subprocess.run([*KB, "--corpus-dir", str(fresh_corpus.corpus_dir), "--index-dir",
                                 str(fresh_corpus.index_dir), "build", "-q"], capture_output=True, check=False)
        assert result.returncode == 0
        assert not list(fresh_corpus.index_dir.glob(".tmp-*"))
        assert (fresh_corpus.index_dir / CURRENT).read_text() != served
        assert _get(f"{url}/api/v1/search?q=ketamine&limit=1")["total"] == expected_total
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_searches_during_rebuilds_never_fail_or_see_a_mixed_index(fresh_corpus):
    _grow(fresh_corpus.corpus_dir, 40, tag="a")
    build(fresh_corpus)
    server, url = _start_server(fresh_corpus)
    first = _get(f"{url}/api/v1/search?q=ketamine&limit=1")["total"]
    errors: list[str] = []
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                body = _get(f"{url}/api/v1/search?q=ketamine&limit=1")
                seen.append((body["total"], body["hits"][0]["source"]["id"]))
            except (urllib.error.URLError, OSError, KeyError, ValueError) as error:
                errors.append(repr(error))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        _grow(fresh_corpus.corpus_dir, 20, tag="b")  # the second corpus has more matching claims
        for _ in range(3):
            build(fresh_corpus)
            time.sleep(0.3)
        second = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            second = _get(f"{url}/api/v1/search?q=ketamine&limit=1")["total"]
            if second != first:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        server.terminate()
        server.wait(timeout=10)
    assert errors == []
    assert second is not None and second > first  # picked up without a restart
    assert len(seen) > 20
    assert {total for total, _ in seen} <= {first, second}  # every answer came from one build


def test_sigterm_shuts_the_server_down_cleanly(settings):
    server, url = _start_server(settings)
    assert _get(f"{url}/api/v1/health")["ok"] is True
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0


def test_health_reports_index_age_and_counts(client):
    response = client.get("/api/v1/health")
    body = response.get_json()
    assert response.status_code == 200
    assert body["ok"] is True and body["counts"]["sources"] == 5
    assert 0 <= body["index_age_seconds"] < 3600
    assert response.headers["Cache-Control"] == "no-store"
