"""API fuzzing: schemathesis against the OpenAPI document of the real running server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, free_port, wait_for_port

MIN_REQUESTS = 10_000


@pytest.mark.slow
def test_ten_thousand_generated_requests_find_no_5xx_schema_break_or_hang(fresh_corpus, tmp_path):
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None:
        pytest.skip("schemathesis is not installed: pip install -e '.[test]'")
    port = free_port()
    log = tmp_path / "server.log"
    # A token makes the write endpoint answer 401 to the fuzzer (it never has the token), and the
    # rate limits are off so the fuzzer reaches the checker and the search themselves.
    env = {**os.environ, "KB_API_TOKEN": "never-sent-by-the-fuzzer", "KB_CHECK_RATE_LIMIT": "",
           "KB_SEARCH_RATE_LIMIT": ""}
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--port", str(port),
                                   "--corpus-dir", str(fresh_corpus.corpus_dir),
                                   "--index-dir", str(fresh_corpus.index_dir)],
                                  stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for_port(port, server)
            report = tmp_path / "report.json"
            result = subprocess.run(
                [st, "run", f"http://127.0.0.1:{port}/api/v1/openapi.json",
                 "--max-examples", "700", "--seed", "20261126", "--checks", "all",
                 # these two judge input validation against the schema's looseness, not failures
                 "--exclude-checks", "positive_data_acceptance,negative_data_rejection,ignored_auth",
                 "--request-timeout", "20", "--max-response-time", "10", "--workers", "1",
                 "--no-color", "--report", "json", "--report-json-path", str(report)],
                capture_output=True, text=True, timeout=1800, cwd=tmp_path, check=False)
        finally:
            server.terminate()
            server.wait(timeout=20)
    summary = json.loads(report.read_text())
    assert result.returncode == 0, result.stdout[-4000:]
    assert summary["failures"] == [] and summary["errors"] == []
    assert summary["operations"]["tested"] == summary["operations"]["total"] >= 12
    requests = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    fuzzed = [r for r in requests if r.get("path", "").startswith("/api/")]
    assert len(fuzzed) >= MIN_REQUESTS, len(fuzzed)
    assert not [r for r in fuzzed if r["status"] >= 500]
    print(f"\nfuzzing: {len(fuzzed)} requests, {summary['test_cases']['generated']} test cases, "
          f"statuses {sorted({r['status'] for r in fuzzed})}, {summary['running_time']:.0f} s")
