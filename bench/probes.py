"""Hardening probes: costly and malformed requests against the real server, with status and cost.

Starts `server.py` twice on free ports against a corpus (default: the bundled one): one with the
default rate limits, for the limiter probes, and one with them off, for the cost probes. Each
probe prints its HTTP status, wall time and the server's CPU seconds (from /proc, the server being
otherwise idle). The baseline in the same run is GET /api/v1/health. The last probe sends the most
expensive accepted queries from 8 clients and reports /api/v1/health's latency meanwhile.

    python bench/probes.py
    python bench/probes.py --corpus-dir corpus --index-dir /tmp/probe-index --load-seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.check_speed import generate
from kb.config import Settings
from kb.knowledge_base import KnowledgeBase
from kb.server import ensure_index

TOKEN = "probe-token"
# The most expensive queries the grammar accepts: its caps in prefixes and typos, plus words.
EXPENSIVE = [
    ("ke* de* pa* re* ketamin~2 depresion~2 antidepresant~2 placebo~2 patients study effect dose "
     "treatment placebo trial response symptoms week group clinical severe infusion single rapid "
     "significant associated results scores compared"),
    "co* in* st* tr* esketamin~2 suicidl~2 ideatin~2 infuson~2 " + " ".join(["patients"] * 22),
    ('"ketamine infusion" "placebo controlled" "treatment resistant" "suicidal ideation" '
     "ketamine depression patients dose response week"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _server(settings: Settings, log: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = _free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "server.py"), "--port", str(port), "--corpus-dir",
             str(settings.corpus_dir), "--index-dir", str(settings.index_dir)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if process.poll() is not None:
                    raise SystemExit(f"the server exited; see {log}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            process.terminate()
            process.wait(timeout=30)


def _raw(base: str, request: bytes, wait: float = 10.0) -> tuple[int, bytes]:
    """Send raw bytes; return the status code and the body of whatever comes back."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(request)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


class Probes:
    def __init__(self, base: str, pid: int) -> None:
        self.base, self.pid = base, pid
        self.rows: list[tuple[str, str, float, float, str]] = []

    def run(self, name: str, send: Callable[[], tuple[int | str, str]]) -> None:
        cpu, wall = _cpu_seconds(self.pid), time.perf_counter()
        status, note = send()
        wall, cpu = time.perf_counter() - wall, _cpu_seconds(self.pid) - cpu
        self.rows.append((name, str(status), wall, cpu, note))
        print(f"{name:<58} {status!s:>5} {wall:8.3f} s {cpu:7.2f} s CPU  {note[:110]}", flush=True)

    def get(self, path: str, **kwargs: object) -> tuple[int, str]:
        response = requests.get(self.base + path, timeout=60, **kwargs)  # type: ignore[arg-type]
        return response.status_code, _message(response)

    def post(self, path: str, **kwargs: object) -> tuple[int, str]:
        response = requests.post(self.base + path, timeout=120, **kwargs)  # type: ignore[arg-type]
        return response.status_code, _message(response)


def _message(response: requests.Response) -> str:
    if response.headers.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and body.get("ok") is False:
            return str(body.get("error"))
        if isinstance(body, dict) and "truncated" in body:
            return f"truncated: {body.get('truncated')}"
        if isinstance(body, dict) and "total" in body:
            return f"total {body['total']}, partial {body.get('partial')}"
    return response.headers.get("Content-Type", "")


def cost_probes(p: Probes, article: str) -> None:
    p.run("baseline: GET /api/v1/health", lambda: p.get("/api/v1/health"))
    fuzzy160 = " ".join(f"t{i}~9" for i in range(160))[:1000]
    p.run("search: 160 terms t0~9 t1~9 ... (1,000 chars)", lambda: p.get("/api/v1/search", params={"q": fuzzy160}))
    p.run("search: u00~9 u01~9 u02~9", lambda: p.get("/api/v1/search", params={"q": "u00~9 u01~9 u02~9"}))
    p.run("search: ketamine~5", lambda: p.get("/api/v1/search", params={"q": "ketamine~5"}))
    p.run("search: ketamine~2 (accepted)", lambda: p.get("/api/v1/search", params={"q": "ketamine~2"}))
    for number, q in enumerate(EXPENSIVE, 1):
        p.run(f"search: most expensive accepted query {number}", lambda q=q: p.get(  # type: ignore[misc]
            "/api/v1/search", params={"q": q, "sort": "relevance"}))
    p.run("search: year_to=2147483648", lambda: p.get("/api/v1/search", params={"q": "ketamine", "year_to": "2147483648"}))
    p.run("page: /search?year_to=2147483648", lambda: p.get("/search", params={"q": "ketamine", "year_to": "2147483648"}))
    size = len(article.encode())
    p.run(f"check: {size // 1024} KB article", lambda: p.post("/api/v1/check", json={"text": article}))
    surrogate = b'{"text": "a \\ud800"}'
    for path in ("/api/v1/check", "/api/v1/check?format=md"):
        p.run(f"check: lone surrogate in JSON, {path}", lambda path=path: p.post(  # type: ignore[misc]
            path, data=surrogate, headers={"Content-Type": "application/json"}))
    p.run("page: /check form with a lone surrogate (%ED%A0%80)", lambda: p.post(
        "/check", data=b"text=a%ED%A0%80", headers={"Content-Type": "application/x-www-form-urlencoded"}))
    nested = b"[" * 100_000
    for path in ("/api/v1/check", "/api/v1/sources"):
        p.run(f"{path}: [ x 100,000", lambda path=path: p.post(  # type: ignore[misc]
            path, data=nested, headers={"Content-Type": "application/json",
                                        "Authorization": f"Bearer {TOKEN}"}))
    p.run("check: content_type=pdf", lambda: p.post("/api/v1/check", json={"text": "Ketamine works.",
                                                                            "content_type": "pdf"}))
    def unauthorised() -> tuple[int, str]:
        response = requests.post(p.base + "/api/v1/sources", json={}, timeout=10)
        return response.status_code, response.headers.get("WWW-Authenticate", "no WWW-Authenticate")
    p.run("write: no token (WWW-Authenticate?)", unauthorised)

    def markdown() -> tuple[int, str]:
        response = requests.post(p.base + "/api/v1/check?format=md", timeout=60,
                                 json={"text": "Ketamine relieves depression. <script>alert(1)</script>"})
        return response.status_code, "raw <script> in report" if "<script>" in response.text else "escaped"
    p.run("check: Markdown report of an article with <script>", markdown)
    host = urllib.parse.urlsplit(p.base).netloc
    def declared_only() -> tuple[int, str]:
        status, body = _raw(p.base, f"POST /api/v1/check HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                            "application/json\r\nContent-Length: 999999999\r\n\r\n".encode())
        return status, body[:90].decode(errors="replace")
    p.run("POST declaring Content-Length 999999999, no body", declared_only)

    def big_upload() -> tuple[int | str, str]:
        try:
            response = requests.post(p.base + "/api/v1/check", data=b"x" * (200 * 2**20), timeout=60,
                                     headers={"Content-Type": "application/json"})
        except requests.ConnectionError:
            return "closed", "the server hung up mid-upload"
        return response.status_code, _message(response)
    p.run("POST of 200 MB", big_upload)
    p.run("baseline: GET /api/v1/health (after)", lambda: p.get("/api/v1/health"))


def limit_probes(p: Probes) -> None:
    def shared_bucket() -> tuple[int, str]:
        status = 0
        for number in range(40):  # alternate the API and the page: one bucket of 30 per minute
            if number % 2:
                response = requests.post(p.base + "/check", data={"text": "Ketamine works."}, timeout=60)
            else:
                response = requests.post(p.base + "/api/v1/check", json={"text": "Ketamine works."}, timeout=60)
            status = response.status_code
            if status == 429:
                retry = response.headers.get("Retry-After")
                return status, f"refused at request {number + 1}; Retry-After {retry}; {_message(response)}"
        return status, "never limited"
    p.run("checker: API and page alternated", shared_bucket)

    def search_limit() -> tuple[int, str]:
        for number in range(200):
            response = requests.get(p.base + "/api/v1/search", params={"q": f"ketamine {number % 7}"}, timeout=60)
            if response.status_code == 429:
                return 429, f"refused at search {number + 1}; Retry-After {response.headers.get('Retry-After')}"
        return response.status_code, "never limited"
    p.run("search: 200 searches in a row", search_limit)


def health_under_load(p: Probes, clients: int, seconds: float) -> None:
    stop = time.monotonic() + seconds
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def client(number: int) -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            q = EXPENSIVE[number % len(EXPENSIVE)] + f" w{number}x{int(time.monotonic() * 1000) % 997}"
            status = session.get(p.base + "/api/v1/search", params={"q": q}, timeout=60).status_code
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    cpu = _cpu_seconds(p.pid)
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    latencies: list[float] = []
    while time.monotonic() < stop - 0.5:
        started = time.perf_counter()
        requests.get(p.base + "/api/v1/health", timeout=60)
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    cpu = _cpu_seconds(p.pid) - cpu
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"\nhealth while {clients} clients send the most expensive accepted queries for {seconds:.0f} s: "
          f"{len(latencies)} probes, p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, "
          f"max {latencies[-1]:.1f} ms; searches by status {dict(sorted(statuses.items()))}; "
          f"server CPU {cpu:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-dir", type=Path, default=ROOT / "corpus")
    parser.add_argument("--index-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--article-kb", type=int, default=199, help="size of the generated article")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--load-seconds", type=float, default=15.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-probes-") as scratch:
        settings = Settings.from_env().with_dirs(args.corpus_dir, args.index_dir or Path(scratch) / "index")
        ensure_index(settings)
        kb = KnowledgeBase.open(settings)
        article = generate(kb, args.article_kb * 1024 // 7)
        article = article.encode()[: args.article_kb * 1024].decode(errors="ignore")
        kb.close()
        log = Path(scratch) / "server.log"
        print(f"{'probe':<58} {'status':>5} {'wall':>10} {'server CPU':>11}  note")
        env = {"KB_API_TOKEN": TOKEN, "KB_CHECK_RATE_LIMIT": "", "KB_SEARCH_RATE_LIMIT": ""}
        with _server(settings, log, env) as (base, pid):
            probes = Probes(base, pid)
            cost_probes(probes, article)
            health_under_load(probes, args.clients, args.load_seconds)
        with _server(settings, log, {"KB_API_TOKEN": TOKEN}) as (base, pid):
            limit_probes(Probes(base, pid))
        text = log.read_text(errors="replace")
        print(f"\nserver log: {text.count('Traceback')} tracebacks, "
              f"{sum(1 for line in text.splitlines() if json_status(line) >= 500)} responses 5xx")


def json_status(line: str) -> int:
    try:
        return int(json.loads(line).get("status") or 0)
    except (ValueError, AttributeError):
        return 0


if __name__ == "__main__":
    main()
