"""Time to first byte of the HTML pages, against the real server, with an API baseline.

Builds the index of a corpus (or reuses a current one), starts server.py on a free port, then
requests each route many times over one keep-alive connection and prints percentiles of the
time to first byte (request sent -> status line received) and of the whole response, for:
GET /api/v1/status (baseline: the cheapest route, so the server's own overhead is visible),
/, /search?q=..., a source page and /map. The first request of each route is reported on its
own: it is the one that formats citations and fills caches.

    python bench/page_timing.py [--corpus-dir corpus] [--index-dir DIR] [--requests 200]
                                [--query "words"] [--target-ms 100] [--search-cache]

The server's search result cache is off unless --search-cache: every search is really run.

Exit status 1 when the search page's median time to first byte is over --target-ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so a checkout runs as is, installed or not

from kb.config import Settings
from kb.server import ensure_index


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(port: int, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Wait until the server accepts connections (it may build the index first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"the server did not listen on port {port} within {timeout} s")


def timed_get(connection: http.client.HTTPConnection, path: str) -> tuple[int, float, float, int]:
    """(status, ms to first byte, ms to the last byte, body bytes) of one GET."""
    started = time.perf_counter()
    connection.request("GET", path, headers={"Accept": "text/html,application/json"})
    response = connection.getresponse()  # returns once the status line and headers arrived
    first_byte = time.perf_counter()
    body = response.read()
    done = time.perf_counter()
    return response.status, (first_byte - started) * 1000, (done - started) * 1000, len(body)


def percentile(values: list[float], share: float) -> float:
    """The value below which *share* of *values* fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def get_json(port: int, path: str) -> dict[str, object]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())  # type: ignore[no-any-return]
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    """Build or reuse the index, serve it, time the pages, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-dir", type=Path, default=ROOT / "corpus")
    parser.add_argument("--index-dir", type=Path, default=None,
                        help="default: as server.py chooses (index/ beside corpus/, or CORPUS-index)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per route")
    parser.add_argument("--query", default=None,
                        help="search words (default: the label of the condition with most claims)")
    parser.add_argument("--target-ms", type=float, default=100.0)
    parser.add_argument("--search-cache", action="store_true",
                        help="keep the server's search result cache on (default: off, so every "
                             "search is run, not looked up)")
    args = parser.parse_args(argv)

    corpus_dir = args.corpus_dir.resolve()
    index_dir = args.index_dir or corpus_dir.parent / (
        "index" if corpus_dir.name == "corpus" else f"{corpus_dir.name}-index")
    settings = Settings.from_env().with_dirs(corpus_dir, index_dir)
    started = time.perf_counter()
    ensure_index(settings)  # prints what it builds; silent when the index is current
    print(f"index: {index_dir} (ready in {time.perf_counter() - started:.1f} s)")

    port = free_port()
    environment = {**os.environ, "KB_SEARCH_CACHE": os.environ.get("KB_SEARCH_CACHE", "2048")
                   if args.search_cache else "0"}
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "server.py"), "--port", str(port), "--corpus-dir", str(corpus_dir),
         "--index-dir", str(index_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=environment)
    try:
        wait_for(port, server)
        stats = get_json(port, "/api/v1/stats")
        conditions = stats.get("claims_per_condition") or {}
        query = args.query or next((v["label"] for v in conditions.values()), "study")  # type: ignore[union-attr]
        found = get_json(port, "/api/v1/search?" + urlencode({"q": query, "limit": 1}))
        hits = found.get("hits") or []
        source_id = hits[0]["source"]["id"] if hits else None  # type: ignore[index]
        routes = {
            "baseline /api/v1/status": "/api/v1/status",
            "home /": "/",
            f"search /search?q={query}": "/search?" + urlencode({"q": query}),
            "search + facet + sort": "/search?" + urlencode({"q": query, "sort": "evidence",
                                                             "design": "rct"}),
            "map /map": "/map",
        }
        if source_id:
            routes[f"source /sources/{source_id}"] = f"/sources/{quote(source_id)}"
        if conditions:
            first_condition = next(iter(conditions))
            routes["search + facet + sort"] = "/search?" + urlencode(
                {"q": query, "sort": "evidence", "condition": first_condition})

        print(f"server: http://127.0.0.1:{port}/ ({stats.get('sources')} sources, {stats.get('claims')} "
              f"claims); {args.requests} timed requests per route, one keep-alive connection; search "
              f"cache {'on' if args.search_cache else 'off'}\n")
        header = (f"{'route':<44} {'first':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} "
                  f"{'full p50':>9} {'KB':>6}")
        print("time to first byte, ms (first = the route's first request, before any cache)")
        print(header)
        print("-" * len(header))
        medians: dict[str, float] = {}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for name, path in routes.items():
            status, first, _, _ = timed_get(connection, path)
            if status != 200:
                print(f"{name:<44} HTTP {status}")
                continue
            ttfb: list[float] = []
            full: list[float] = []
            size = 0
            for _ in range(args.requests):
                _, to_first, to_last, size = timed_get(connection, path)
                ttfb.append(to_first)
                full.append(to_last)
            medians[name] = statistics.median(ttfb)
            print(f"{name:<44} {first:7.1f} {percentile(ttfb, 0.5):7.1f} {percentile(ttfb, 0.9):7.1f} "
                  f"{percentile(ttfb, 0.99):7.1f} {max(ttfb):7.1f} {statistics.median(full):9.1f} "
                  f"{size / 1024:6.1f}")
        connection.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()

    search = next((v for k, v in medians.items() if k.startswith("search /search")), None)
    if search is None:
        print("\nthe search page did not answer 200")
        return 1
    verdict = "within" if search <= args.target_ms else "OVER"
    print(f"\nsearch page median time to first byte: {search:.1f} ms ({verdict} the {args.target_ms:.0f} ms "
          f"target; baseline {medians.get('baseline /api/v1/status', float('nan')):.1f} ms)")
    return 0 if search <= args.target_ms else 1


if __name__ == "__main__":
    raise SystemExit(main())
