"""Property-based requests against the real server: every generated input gets a 2xx or a clear
4xx in the JSON error shape, never a 5xx, and within a time bound.

Queries come from the query language's own parts (words, phrases, operators, prefixes, typos,
filters) mixed with arbitrary text; check bodies from valid shapes mixed with wrong types, deep
nesting and undecodable text. The default run sends a few hundred requests; the slow suite
(.ci/run) sends 10,000 and prints the figures: requests, statuses, slowest request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from conftest import ROOT, free_port, wait_for_port
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

TIME_BOUND_S = 2.0
OK_STATUSES = {200, 400, 404, 413, 415, 422}

WORDS = st.sampled_from(["ketamine", "esketamine", "depression", "placebo", "PTSD", "TRD", "saline",
                         "infusion", "suicidal", "ideation", "the", "of", "α", "Müller", "5-HT2A",
                         "0.5", "mg/kg", "NMDA-receptor", "x", "qwertyuiop"])
ATOMS = st.one_of(
    WORDS,
    WORDS.map(lambda w: f"-{w}"), WORDS.map(lambda w: f"+{w}"),
    WORDS.map(lambda w: f"{w[:3]}*"), WORDS.map(lambda w: f"{w[:1]}*"),
    st.tuples(WORDS, st.integers(0, 12)).map(lambda p: f"{p[0]}~{p[1]}"),
    st.lists(WORDS, min_size=1, max_size=14).map(lambda ws: '"' + " ".join(ws) + '"'),
    st.sampled_from(["AND", "OR", "NOT", "(", ")", '"', "*", "~", ":", "-", "+", "?", "\\"]),
    st.tuples(st.sampled_from(["condition", "design", "mechanism", "source", "stance", "year", "note"]),
              st.sampled_from(["ptsd", "rct", "nmda", "trd", "2010-2015", "99999999999", "x", ""]))
    .map(lambda p: f"{p[0]}:{p[1]}"),
    st.text(max_size=12),
)
QUERIES = st.one_of(st.lists(ATOMS, max_size=40).map(" ".join), st.text(max_size=1200))
INTEGERS = st.one_of(st.integers(-3, 200), st.integers(-(2**70), 2**70), st.sampled_from(
    ["", "two", "1e3", "0x10", "٣", "1.5", "2147483648"])).map(str)
SEARCH_PARAMS = st.fixed_dictionaries({"q": QUERIES}, optional={
    "sort": st.sampled_from(["relevance", "newest", "oldest", "evidence", "random", ""]),
    "page": INTEGERS, "limit": INTEGERS, "year_from": INTEGERS, "year_to": INTEGERS,
    "condition": st.sampled_from(["ptsd", "trd", "nonsense", ""]),
    "stance": st.sampled_from(["supports", "limits", "none", "bogus"]),
})

TEXTS = st.one_of(
    st.lists(st.sampled_from([
        "Ketamine reduces depressive symptoms within 24 hours (Berman et al., 2000).",
        "A single infusion of 0.5 mg/kg was used.", "Esketamine nasal spray is approved.",
        "Ketamine cures everyone.", "References", "1. Berman RM. Biol Psychiatry. 2000;47:351-4.",
        "# Heading", "<script>alert(1)</script>"]), max_size=12).map("\n".join),
    st.text(max_size=2000),
)
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
CHECK_BODIES = st.one_of(
    st.fixed_dictionaries({"text": TEXTS}, optional={
        "content_type": st.sampled_from(["text/plain", "text/markdown", "text/html", "pdf", "", "x" * 300]),
        "format": st.sampled_from(["json", "md", "html", "xml"]),
    }).map(lambda body: json.dumps(body).encode()),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.integers(1, 200_000).map(lambda depth: b"[" * depth + b"]" * (depth % 3)),
    st.sampled_from([b'{"text": "a \\ud800 b"}', b'{"text": "\\udfff"}', b'{"text": 5}', b"",
                     b'{"text": "ok"', b"\xff\xfe{}", b'{"text": "' + b"\xc3\x28" + b'"}', b"null"]),
    st.binary(max_size=300),
)


@pytest.fixture(scope="module")
def server(settings, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    port = free_port()
    # Rate limits off: the property is about what each request costs, not about the limiter.
    env = {**os.environ, "KB_VERIFIER": "0", "KB_CHECK_RATE_LIMIT": "", "KB_SEARCH_RATE_LIMIT": ""}
    log = tmp_path_factory.mktemp("server") / "server.log"  # a file: a full pipe would block it
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "server.py"), "--port", str(port), "--corpus-dir",
             str(settings.corpus_dir), "--index-dir", str(settings.index_dir)],
            stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for_port(port, process)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.slowest = (0.0, "")

    def record(self, status: int, seconds: float, what: str) -> None:
        self.statuses[status] += 1
        if seconds > self.slowest[0]:
            self.slowest = (seconds, what[:160])

    def report(self) -> str:
        return (f"{sum(self.statuses.values())} requests; statuses "
                f"{dict(sorted(self.statuses.items()))}; slowest {self.slowest[0]:.3f} s: {self.slowest[1]!r}")


def _judge(response: requests.Response, seconds: float, what: str, tally: Tally) -> None:
    tally.record(response.status_code, seconds, what)
    assert response.status_code in OK_STATUSES, (response.status_code, what, response.text[:500])
    assert seconds < TIME_BOUND_S, (seconds, what)
    if response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        assert body["ok"] is False and body["error"] and body["status"] == response.status_code, body


def _search(base: str, params: dict[str, str], tally: Tally) -> None:
    started = time.perf_counter()
    response = requests.get(f"{base}/api/v1/search", params=params, timeout=30)
    _judge(response, time.perf_counter() - started, f"search {params}", tally)
    if response.status_code == 400:
        assert "application/json" in response.headers["Content-Type"]


def _check(base: str, body: bytes, tally: Tally) -> None:
    started = time.perf_counter()
    response = requests.post(f"{base}/api/v1/check", data=body, timeout=30,
                             headers={"Content-Type": "application/json"})
    _judge(response, time.perf_counter() - started, f"check {body[:120]!r} ({len(body)} bytes)", tally)


def _run(base: str, examples: int) -> Tally:
    tally = Tally()

    @given(SEARCH_PARAMS, CHECK_BODIES)
    # No shrinking: each step is a real request, and the failing input is in the message.
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def property_(params: dict[str, str], body: bytes) -> None:
        _search(base, params, tally)
        _check(base, body, tally)

    property_()
    return tally


def test_generated_queries_and_bodies_get_a_clear_answer_in_time(server):
    tally = _run(server, 150)
    print(tally.report())
    assert tally.statuses[200] and tally.statuses[400]


@pytest.mark.slow
def test_ten_thousand_generated_requests_get_a_clear_answer_in_time(server):
    tally = _run(server, 5_000)
    print(tally.report())
    assert sum(tally.statuses.values()) >= 10_000
