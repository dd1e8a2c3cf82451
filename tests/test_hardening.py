"""Hardening: every request bounded in cost, every bad input a clear 4xx in the one error shape.

Each test reproduces a probe that once got a 500, a plain-text answer, an open connection or a
dropped request, against a real server on a real port (waitress, server.py) where the behaviour
lives in the server, and through the app where it lives in the app.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests
from conftest import ROOT, free_port, wait_for_port

from kb.web import create_app
from kb.web.inputs import too_deep

TOKEN = "s3cret-token"
CLAIM = "One ketamine infusion reduced PTSD symptom severity 24 hours later more than midazolam."
SENTENCES = ("Ketamine reduced depressive symptoms within 24 hours in treatment-resistant depression. "
             "Esketamine nasal spray was approved by the FDA in 2019. ")


def start_server(settings, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "server.py"), "--port", str(port),
         "--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "KB_VERIFIER": "0", **env})
    wait_for_port(port, process)
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def edge(settings) -> Iterator[str]:
    """A real server with a write token and a 2 s channel timeout (stalled uploads close fast)."""
    process, url = start_server(settings, KB_API_TOKEN=TOKEN, KB_CHANNEL_TIMEOUT="2")
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def raw(url: str, head: bytes, timeout: float = 5.0) -> tuple[float, bytes]:
    """Send *head* on a fresh connection; (seconds until the server closed it, all it sent)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return time.monotonic() - started, data


def read_answer(sock: socket.socket) -> bytes:
    """One HTTP answer: its headers and as many body bytes as its Content-Length says."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _length(data: bytes) -> int:
    match = re.search(rb"\r\nContent-Length: (\d+)", data.split(b"\r\n\r\n", 1)[0], re.IGNORECASE)
    return int(match.group(1)) if match else 0


def body_of(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


# --- 1. rate limits: search limited, the checker's two routes one bucket, Retry-After = message ---


def test_search_is_rate_limited_across_the_api_and_the_page(settings):
    client = create_app(replace(settings, search_rate_limit="3 per minute")).test_client()
    assert client.get("/").status_code == 200  # the bare home page runs no search: not counted
    assert client.get("/api/v1/search?q=ketamine").status_code == 200
    assert client.get("/search?q=ketamine").status_code == 200
    assert client.get("/api/v1/search?q=ptsd").status_code == 200
    for path in ("/api/v1/search?q=ketamine", "/search?q=ketamine"):
        refused = client.get(path)
        assert refused.status_code == 429
        seconds = re.search(r"retry in (\d+) seconds", refused.get_data(as_text=True)).group(1)
        assert refused.headers["Retry-After"] == seconds
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert client.get("/api/v1/search?q=ketamine").get_json()["status"] == 429


def test_the_checker_api_and_page_share_one_bucket(settings):
    client = create_app(replace(settings, check_rate_limit="2 per minute")).test_client()
    assert client.post("/api/v1/check", json={"text": CLAIM}).status_code == 200
    assert client.post("/check", data={"text": CLAIM}).status_code == 200
    assert client.get("/check").status_code == 200  # showing the form costs nothing
    for path in ("/api/v1/check", "/check"):
        refused = client.post(path, json={"text": CLAIM})
        assert refused.status_code == 429
        seconds = re.search(r"retry in (\d+) seconds", refused.get_data(as_text=True)).group(1)
        assert refused.headers["Retry-After"] == seconds and 1 <= int(seconds) <= 60
    assert "article checks" in client.post("/api/v1/check", json={"text": CLAIM}).get_json()["error"]


# --- 2. the checker's work is capped: units, time; partial results say so ------------------------


def test_a_long_article_is_checked_up_to_the_unit_cap_and_says_so(settings):
    client = create_app(replace(settings, max_check_units=3, check_rate_limit="")).test_client()
    article = SENTENCES * 5  # ten sentences
    data = client.post("/api/v1/check", json={"text": article}).get_json()
    assert len(data["claims"]) == 3 and data["counts"]["units"] == 3
    assert "truncated" in data, data
    truncated = data["truncated"]
    assert truncated["reason"] == "max_units"
    assert (truncated["units_checked"], truncated["units_total"]) == (3, 10)
    assert "checked the first 3 of 10 sentences" in truncated["message"]
    assert "split the article" in truncated["message"]
    markdown = client.post("/api/v1/check?format=md", json={"text": article}).get_data(as_text=True)
    assert "checked the first 3 of 10 sentences" in markdown
    page = client.post("/check", data={"text": article}).get_data(as_text=True)
    assert 'class="check-truncated"' in page and "checked the first 3 of 10 sentences" in page
    assert 'class="check-unchecked"' in page  # the unread rest is still shown, as plain text
    # an article under the cap is whole, and says so with null
    assert client.post("/api/v1/check", json={"text": CLAIM}).get_json()["truncated"] is None


def test_the_time_budget_gives_a_partial_result_in_time(settings):
    # Reading and splitting 1,200 sentences comes before the first is checked (about 0.5 s here),
    # so the budget is well above that.
    budget = 1.5
    client = create_app(replace(settings, max_check_units=0, check_time_budget_s=budget,
                                check_rate_limit="")).test_client()
    article = SENTENCES * 600  # 1,200 sentences: several seconds of work without the budget
    # One sentence first: opening the build and loading the matcher (first use) is not the work
    # the budget bounds, and on a busy machine it alone can take longer than 0.5 s.
    client.post("/api/v1/check", json={"text": CLAIM})
    started = time.monotonic()
    data = client.post("/api/v1/check", json={"text": article}).get_json()
    took = time.monotonic() - started
    assert "truncated" in data, data
    truncated = data["truncated"]
    assert truncated["reason"] == "time_budget"
    assert 0 < truncated["units_checked"] < truncated["units_total"] == 1200
    assert "time budget of 1.5 s" in truncated["message"]
    assert took < budget + 2.0, took  # the budget, plus the JSON and a loaded machine's slack


def test_no_time_for_a_single_sentence_is_a_503_with_retry_after(settings):
    client = create_app(replace(settings, check_time_budget_s=1e-9, check_rate_limit="")).test_client()
    response = client.post("/api/v1/check", json={"text": CLAIM})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    body = response.get_json()
    assert body["ok"] is False and body["status"] == 503 and "retry in 1 seconds" in body["error"]


def test_a_sentence_citing_dozens_of_references_is_compared_with_ten(client):
    references = "\n".join(f"{n}. Author {n}. Some title number {n}. J Test. 2001." for n in range(1, 41))
    article = f"Ketamine reduced depressive symptoms within 24 hours [1-40].\n\n## References\n\n{references}\n"
    claim = client.post("/api/v1/check", json={"text": article}).get_json()["claims"][0]
    assert len(claim["cited"]) == 40 and len(claim["citations"]) == 10
    assert any("the first 10 were compared" in problem for problem in claim["problems"])


# --- 3. bodies bounded on their headers; waitress's refusals in the error shape --------------------


def test_a_declared_huge_body_is_refused_at_once_in_json(edge):
    took, answer = raw(edge, b"POST /api/v1/check HTTP/1.1\r\nHost: kb\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 999999999\r\n\r\n")
    assert took < 2.0, took  # answered on the headers alone, and the connection closed
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"Content-Type: application/json" in answer and b"Connection: close" in answer
    body = body_of(answer)
    assert body["ok"] is False and body["status"] == 413
    assert "999,999,999 bytes" in body["error"] and "limit" in body["error"]


def test_a_refused_page_upload_gets_the_html_error_page(edge):
    _, answer = raw(edge, b"POST /check HTTP/1.1\r\nHost: kb\r\nContent-Length: 999999999\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413") and b"text/html" in answer
    assert b"<!doctype html>" in answer.lower() and b"X-Frame-Options: DENY" in answer


def test_a_5_mb_body_is_refused_before_it_is_read(edge):
    host, port = edge.removeprefix("http://").split(":")
    total = 5 * 1024 * 1024
    sent = [0]
    failure: list[BaseException] = []
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sock.sendall(f"POST /api/v1/check HTTP/1.1\r\nHost: kb\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {total}\r\n\r\n".encode())

        def upload() -> None:  # paced like a real upload, so the answer can overtake it
            chunk = b"x" * 65536
            try:
                while sent[0] < total:
                    sock.sendall(chunk)
                    sent[0] += len(chunk)
                    time.sleep(0.002)
            except OSError as error:
                failure.append(error)

        uploader = threading.Thread(target=upload)
        uploader.start()
        started = time.monotonic()
        answer = read_answer(sock)
        took = time.monotonic() - started
        uploader.join(timeout=10)
    assert answer.startswith(b"HTTP/1.1 413") and b'"status":413' in answer
    assert took < 2.0, took
    assert failure and sent[0] < total, (failure, sent[0])  # the server hung up mid-upload


def test_a_stalled_upload_is_closed_after_the_channel_timeout(edge):
    took, answer = raw(edge, b"POST /api/v1/check HTTP/1.1\r\nHost: kb\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 1000\r\n\r\n{\"text\": \"Ket", timeout=10)
    assert answer == b"" and 1.5 < took < 6.0, took  # KB_CHANNEL_TIMEOUT=2, swept every second


# --- 4. integers range-checked at the edge ---------------------------------------------------------


@pytest.mark.parametrize(("query", "name"), [
    ("q=ketamine&year_to=2147483648", "year_to"), ("q=ketamine&year_from=-1", "year_from"),
    ("q=ketamine&year_from=99999999999999999999999", "year_from"), ("q=ketamine&page=10001", "page"),
    ("q=ketamine&page=0", "page"), ("q=ketamine&limit=101", "limit"),
])
def test_out_of_range_integers_are_a_400_naming_the_range(edge, query, name):
    api = requests.get(f"{edge}/api/v1/search?{query}", timeout=10)
    assert api.status_code == 400
    error = api.json()["error"]
    assert error.startswith(f"{name} must be between") and " and " in error
    page = requests.get(f"{edge}/search?{query}", timeout=10)
    assert page.status_code == 400 and f"{name} must be between" in page.text


def test_the_cli_prints_one_line_for_an_out_of_range_year(run_cli):
    result = run_cli("search", "ketamine", "--year-to", "2147483648")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["Error: year_to must be between 0 and 9999, not 2147483648"]


# --- 5. text decoded strictly: lone surrogates and broken UTF-8 are a 400 naming the place -----------


@pytest.mark.parametrize("path", ["/api/v1/check", "/api/v1/check?format=md", "/check"])
def test_a_lone_surrogate_in_json_is_a_400_with_its_position(edge, path):
    response = requests.post(f"{edge}{path}", data=b'{"text": "a \\ud800 b"}',
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400
    message = response.json()["error"] if path.startswith("/api/") else response.text
    assert "lone surrogate (U+D800)" in message and "at character 2" in message


@pytest.mark.parametrize(("kwargs", "where"), [
    ({"data": b"text=a%ED%A0%80b", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
     "the value of &#39;text&#39;"),
    ({"files": {"text": (None, b"ab\xed\xa0\x80")}}, "form field &#39;text&#39;"),
])
def test_broken_utf8_in_a_form_is_a_400_with_its_position(edge, kwargs, where):
    response = requests.post(f"{edge}/check", timeout=10, **kwargs)
    assert response.status_code == 400
    assert where in response.text and "not valid UTF-8" in response.text


def test_broken_utf8_in_a_query_string_is_a_400(edge):
    response = requests.get(f"{edge}/api/v1/search?q=ket%ED%A0%80amine", timeout=10)
    assert response.status_code == 400
    assert "the value of 'q'" in response.json()["error"] and "at character 3" in response.json()["error"]


def test_invalid_utf8_bytes_in_json_are_a_400(edge):
    response = requests.post(f"{edge}/api/v1/check", data=b'{"text": "a \xff"}',
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400 and "not valid UTF-8 at character 12" in response.json()["error"]


# --- 6. JSON depth limited before parsing ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/check", "/api/v1/sources"])
def test_deeply_nested_json_is_a_400(edge, path):
    response = requests.post(f"{edge}{path}", data=b"[" * 100_000, timeout=10,
                             headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400
    assert "nested more than 32 levels" in response.json()["error"]


def test_brackets_inside_strings_do_not_count_as_nesting(edge):
    response = requests.post(f"{edge}/api/v1/check", json={"text": "[" * 1000 + " " + CLAIM}, timeout=30)
    assert response.status_code == 200


def test_malformed_json_names_the_position(edge):
    response = requests.post(f"{edge}/api/v1/check", data=b'{"text": }',
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400 and "line 1, column 10 (character 9)" in response.json()["error"]


# --- 7. enums enforced --------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "query", "message"), [
    ({"text": CLAIM, "content_type": "pdf"}, "", "Unknown content_type 'pdf': use one of text, markdown, html"),
    ({"text": CLAIM, "content_type": 5}, "", "Unknown content_type 5"),
    ({"text": CLAIM}, "?format=pdf", "Unknown format 'pdf': use one of json, md, html"),
])
def test_unknown_enum_values_are_a_400_listing_the_valid_ones(edge, body, query, message):
    response = requests.post(f"{edge}/api/v1/check{query}", json=body, timeout=10)
    assert response.status_code == 400 and message in response.json()["error"]


def test_unknown_expand_and_dry_run_are_a_400(edge):
    response = requests.get(f"{edge}/api/v1/search?q=ketamine&expand=maybe", timeout=10)
    assert response.status_code == 400 and "Unknown expand 'maybe'" in response.json()["error"]
    response = requests.post(f"{edge}/api/v1/sources?dry_run=perhaps", json={"identifiers": ["doi:10.1/x"]},
                             headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 400 and "Unknown dry_run 'perhaps'" in response.json()["error"]


# --- 8. 401 carries the Bearer challenge -------------------------------------------------------------


def test_401_without_a_token_carries_the_bearer_challenge(edge):
    response = requests.post(f"{edge}/api/v1/sources", json={"identifiers": ["doi:10.1/x"]}, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="evidence-kb"'
    assert response.json()["status"] == 401


def test_401_with_a_wrong_token_says_invalid_token(edge):
    response = requests.post(f"{edge}/api/v1/sources", json={"identifiers": ["doi:10.1/x"]},
                             headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="evidence-kb", error="invalid_token"')


# --- 9. the Markdown report escapes the article --------------------------------------------------------


def test_the_markdown_report_escapes_html_and_links_from_the_article(edge):
    article = (f"{CLAIM} <script>alert(1)</script> [click](javascript:alert(1)) "
               "![x](https://tracker.example/p.png) \\[still escaped](javascript:x)")
    report = requests.post(f"{edge}/api/v1/check?format=md", json={"text": article}, timeout=10).text
    assert "<script>" not in report and "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert "[click](" not in report and "\\[click\\](javascript:alert(1))" in report
    assert "![x](" not in report
    assert "\\\\\\[still escaped\\]" in report  # the article's own backslash cannot undo the escape


# --- 10. SIGTERM drains in-flight requests and exits 0 -------------------------------------------------


def test_sigterm_answers_every_request_in_flight_then_exits_0(settings):
    process, url = start_server(settings, KB_CHECK_RATE_LIMIT="", KB_SHUTDOWN_GRACE="10",
                                   KB_CHECK_SLOTS="0")  # every request in flight at once
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"text": SENTENCES * 50}).encode()  # a hundred sentences: well under a second
    answers: list[bytes] = []
    lock = threading.Lock()

    def post(split: bool) -> None:
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(b"POST /api/v1/check HTTP/1.1\r\nHost: kb\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body))
            if split:  # half the body now, the rest after SIGTERM: a request still being uploaded
                sock.sendall(body[:len(body) // 2])
                time.sleep(0.8)
                sock.sendall(body[len(body) // 2:])
            else:
                sock.sendall(body)
            data = read_answer(sock)
        with lock:
            answers.append(data)

    clients = [threading.Thread(target=post, args=(n % 2 == 0,)) for n in range(6)]
    for thread in clients:
        thread.start()
    time.sleep(0.3)  # all six connected: three uploading, three being checked
    stopped = time.monotonic()
    process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(OSError):  # no new connections once the signal is in
        socket.create_connection((host, int(port)), timeout=2).close()
    for thread in clients:
        thread.join(timeout=20)
    code = process.wait(timeout=15)
    took = time.monotonic() - stopped
    stderr = process.stderr.read().decode() if process.stderr else ""
    assert code == 0, stderr
    assert took < 10, took  # within the grace period
    assert "Traceback" not in stderr and "EBADF" not in stderr, stderr
    assert len(answers) == 6
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["ok"] is True
    assert "draining" in stderr



@pytest.mark.parametrize(("body", "deep"), [
    (b"[" * 32 + b"]" * 32, False), (b"[" * 33 + b"]" * 33, True), (b"[{" * 16 + b"}]" * 16, False),
    (b"[{" * 17 + b"}]" * 17, True), (b'{"a":' * 33 + b"1" + b"}" * 33, True), (b"[]" * 100_000, False),
    (b'["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]', False),
    (b"[" * 100_000, True), (b"]]]" + b"[" * 40, True), (b'{"a": [1, 2}', False), (b"[[[]]" * 1000, True),
])
def test_the_depth_scan_counts_brackets_outside_strings_only(body, deep):
    assert too_deep(body) is deep
