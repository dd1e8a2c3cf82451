"""Load benchmark: the real server under wrk at 1, 8, 32 and 64 concurrent clients.

Starts `server.py` (waitress, as the README runs it) on a free port against a corpus, then drives
it from a second process with wrk (Debian package `wrk`) for three workloads: search, source
pages and article checks. Prints throughput, p50/p95/p99 latency and error counts per workload
and concurrency, then, with --soak SECONDS, a sustained mixed run sampling the server's memory.

    python bench/load.py --corpus-dir corpus --duration 10
    python bench/load.py --corpus-dir /data/scifact-kb --duration 10 --soak 300

The rate limits of the article checker and of searching are switched off for the run
(KB_CHECK_RATE_LIMIT="", KB_SEARCH_RATE_LIMIT=""), since the point is to measure them, not the
limiter; admission control keeps its slots but its queues are opened to any length and the
per-address bound on checks is off (wrk's clients all share one address), so requests past the
slots wait their turn, as waitress's own queue would make them, instead of a 503. The baseline in the same run is GET
/api/v1/health, the cheapest route: ratios against it show what each workload costs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LUA = r"""
local paths = {}
local method = os.getenv("KB_METHOD") or "GET"
local body = os.getenv("KB_BODY")
for line in io.lines(os.getenv("KB_PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  if method == "POST" then
    return wrk.format("POST", paths[i], {["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("GET", paths[i])
end
local non2xx = 0
response = function(status, headers, body)
  if status >= 300 then non2xx = non2xx + 1 end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_s":%.3f,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_ms":%.2f,"p95_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""

CHECK_TEXT = (
    "A single intravenous infusion of ketamine improved depressive symptoms within a day. "
    "Esketamine nasal spray was approved for treatment-resistant depression in 2019. "
    "The effect of one infusion fades within a week for most patients. "
    "Ketamine blocks NMDA receptors and increases synapse formation in animal studies."
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_kb(pid: int) -> int:
    """Resident memory of a process in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_server(corpus_dir: Path, index_dir: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "KB_CHECK_RATE_LIMIT": "", "KB_SEARCH_RATE_LIMIT": "",
           "KB_HEAVY_QUEUE": "100000", "KB_CHECK_QUEUE": "100000", "KB_HEAVY_WAIT": "60",
           "KB_CHECKS_PER_CLIENT": "0"}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "server.py"), "--port", str(port), "--threads", str(threads),
         "--corpus-dir", str(corpus_dir), "--index-dir", str(index_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600  # a first start builds the index
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{url}/api/v1/health", timeout=2).read()
            return process, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def workload_paths(url: str) -> dict[str, list[str]]:
    """Paths for each workload, taken from the served index itself."""
    with urllib.request.urlopen(f"{url}/api/v1/vocabulary") as response:
        terms = json.loads(response.read())["terms"]
    queries = [t["label"] for t in terms if t["kind"] in {"condition", "mechanism", "intervention"}][:30]
    queries = queries or ["ketamine", "depression"]
    search = [f"/api/v1/search?q={urllib.parse.quote(q)}" for q in queries]
    search += [f"/search?q={urllib.parse.quote(q)}" for q in queries[:10]]
    sources: list[str] = []
    for q in queries[:10]:
        with urllib.request.urlopen(f"{url}/api/v1/search?q={urllib.parse.quote(q)}&limit=5") as response:
            for hit in json.loads(response.read())["hits"]:
                sources.append(f"/sources/{hit['source']['id']}")
                sources.append(f"/api/v1/sources/{hit['source']['id']}")
    return {"health": ["/api/v1/health"], "search": search, "source": sorted(set(sources)) or ["/"],
            "check": ["/api/v1/check"]}


def run_wrk(url: str, paths: list[str], connections: int, duration: float, post: bool,
            workdir: Path) -> dict[str, float]:
    script = workdir / "kb.lua"
    script.write_text(LUA)
    path_file = workdir / "paths.txt"
    path_file.write_text("\n".join(paths) + "\n")
    env = {**os.environ, "KB_PATHS": str(path_file)}
    if post:
        env.update({"KB_METHOD": "POST", "KB_BODY": json.dumps({"text": CHECK_TEXT})})
    threads = min(2, connections)
    result = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s", "--timeout", "10s",
         "-s", str(script), url], capture_output=True, text=True, env=env, check=False)
    lines = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    line = lines[0]
    data: dict[str, float] = json.loads(line[len("RESULT "):])
    data["rps"] = round(data["requests"] / data["duration_s"], 1)
    data["errors"] = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-dir", type=Path, default=ROOT / "corpus")
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--clients", default="1,8,32,64")
    parser.add_argument("--workloads", default="health,search,source,check")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("KB_THREADS", "8")))
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of sustained mixed load")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="kb-load-"))
    index_dir = args.index_dir or workdir / "index"
    server, url = start_server(args.corpus_dir, index_dir, args.threads)
    figures: dict[str, object] = {"corpus": str(args.corpus_dir), "rows": [], "memory": []}
    try:
        paths = workload_paths(url)
        print(f"{'workload':8} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}")
        for workload in args.workloads.split(","):
            for clients in (int(c) for c in args.clients.split(",")):
                row = run_wrk(url, paths[workload], clients, args.duration, workload == "check", workdir)
                row.update({"workload": workload, "clients": clients})
                figures["rows"].append(row)  # type: ignore[attr-defined]
                print(f"{workload:8} {clients:7} {row['rps']:8.1f} {row['p50_ms']:8.2f} "
                      f"{row['p95_ms']:8.2f} {row['p99_ms']:8.2f} {int(row['errors']):6}", flush=True)
        if args.soak:
            mixed = paths["search"] + paths["source"]
            start_rss = rss_kb(server.pid)
            samples = [(0.0, start_rss)]
            elapsed = 0.0
            step = min(30.0, args.soak)
            while elapsed < args.soak:
                run_wrk(url, mixed, 8, step, False, workdir)
                elapsed += step
                samples.append((elapsed, rss_kb(server.pid)))
            figures["memory"] = samples
            print("soak (8 clients, search + source pages): RSS MiB over time: " +
                  ", ".join(f"{t:.0f}s={kb / 1024:.1f}" for t, kb in samples))
            growth = samples[-1][1] / max(1, samples[1][1] if len(samples) > 1 else start_rss)
            print(f"soak memory end/after-first-interval ratio: {growth:.3f}")
    finally:
        server.terminate()
        server.wait(timeout=20)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
