"""Load: the real server under wrk; no errors even at 64 concurrent clients (figures: bench/load.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_no_errors_at_64_clients_for_search_source_pages_and_checks(fresh_corpus, tmp_path):
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk; .ci/run installs it)")
    figures = tmp_path / "load.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"),
                    "--corpus-dir", str(fresh_corpus.corpus_dir),
                    "--index-dir", str(fresh_corpus.index_dir),
                    "--duration", "4", "--clients", "1,8,64", "--workloads", "search,source,check",
                    "--soak", "20", "--json", str(figures)], check=True, timeout=600)
    data = json.loads(figures.read_text())
    rows = data["rows"]
    assert {(r["workload"], r["clients"]) for r in rows} == {
        (w, c) for w in ("search", "source", "check") for c in (1, 8, 64)}
    for row in rows:
        assert row["errors"] == 0, row
        assert row["requests"] > 0, row
    memory = [rss for _, rss in data["memory"]]
    assert len(memory) >= 2 and memory[-1] < 2 * memory[1]  # no runaway growth under load
