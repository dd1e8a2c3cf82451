"""Scale benchmark: replicated SciFact at growing sizes, through the library and the real server.

SciFact's 5,183 abstracts (about 45,000 sentence claims) are replicated FACTOR times: replica k
of each record gets a new doc_id (k * 10**10 + doc_id) and "(replica k)" after its title, so the
knowledge base grows while the text stays real. Replica 0 is the original, so SciFact's
judgements still hold for it. For each factor the script imports and builds a lexical knowledge
base (no embeddings; the build runs in a child process so its peak memory is its own), then
prints:

- build wall and CPU time, peak memory and index size;
- start-up time: a fresh process opening the knowledge base and answering one search;
- search p50/p95/p99 through the library (KnowledgeBase.search, search cache off) over 200
  distinct queries: 100 SciFact training claims and 100 one-to-three word queries drawn from
  the titles;
- the same queries through the real server under wrk at 8 connections: throughput, latency and
  non-2xx answers, and the server's resident memory after the load;
- the speed anchor, in the same run: tantivy's plain BM25 (pip install tantivy) over the same
  claim sentences and the same queries, with its indexing time.

With ``--engine postgresql://...`` each size is also published into that database and measured
there: publish time and size in the database, start-up, library search, and the server (or
``--read-servers 2``: two servers on the same database, wrk's 8 connections split between
them) with ``KB_ENGINE`` set. The database's own processes are not in the memory figures.

    python bench/scale.py --corpus scifact/corpus.jsonl --claims scifact/claims_train.jsonl \
        --factors 1,4,10,22 --work /tmp/kb-scale [--engine postgresql://... --read-servers 1,2]

``--work`` keeps each factor's corpus and build for the next run (rebuilt with --rebuild).
Every figure is of the replicas, on the machine the script runs on.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from kb.config import Settings

QUERY_COUNT = 200
REPLICA_STEP = 10**10


def replicate(corpus_file: Path, factor: int, out: Path) -> None:
    """Write *factor* copies of the SciFact corpus to *out*, each copy with new ids and titles."""
    if out.is_file():
        return
    lines = [json.loads(line) for line in corpus_file.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    partial = out.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for k in range(factor):
            for record in lines:
                copy = dict(record)
                if k:
                    copy["doc_id"] = k * REPLICA_STEP + int(record["doc_id"])
                    copy["title"] = f"{record['title']} (replica {k})"
                handle.write(json.dumps(copy, ensure_ascii=False) + "\n")
    partial.replace(out)


def queries(corpus_file: Path, claims_file: Path, count: int = QUERY_COUNT) -> list[str]:
    """Half SciFact training claims, half 1-3 word queries from titles; distinct, seeded."""
    rng = random.Random(20260)
    claims = [json.loads(line)["claim"] for line in claims_file.read_text(encoding="utf-8").splitlines()
              if line.strip()]
    # The query language takes at most 32 words and phrases (kb.grammar.QueryLimits).
    picked = rng.sample(sorted({c for c in claims if len(c.split()) <= 30}), count // 2)
    words: list[str] = []
    for line in corpus_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            words.extend(w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]{3,}", json.loads(line)["title"]))
    vocabulary = sorted(set(words))
    short: set[str] = set()
    while len(short) < count - len(picked):
        short.add(" ".join(rng.sample(vocabulary, rng.choice((1, 2, 3)))))
    # Bare words: the grammar's operators (a leading "-", a trailing "*") stay out of the claims.
    cleaned = [re.sub(r"[^\w\s.,%()]", " ", q).strip() for q in picked]
    return cleaned + sorted(short)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    return {"p50_ms": round(at(50) * 1000, 1), "p95_ms": round(at(95) * 1000, 1),
            "p99_ms": round(at(99) * 1000, 1), "mean_ms": round(statistics.fmean(ordered) * 1000, 1)}


def _settings(work: Path, engine: str = "") -> Settings:
    return Settings(corpus_dir=work / "corpus", index_dir=work / "index", semantic=False,
                    verifier=False, search_cache_size=0, search_time_budget_s=60.0, engine=engine)


# --- steps run in child processes, so time and memory are their own ------------------------

def child_build(work: Path, corpus: Path) -> None:
    from kb.build import build
    from kb.corpus.importer import import_files

    settings = _settings(work)
    shutil.rmtree(work / "corpus", ignore_errors=True)
    shutil.rmtree(work / "index", ignore_errors=True)
    settings.corpus_dir.mkdir(parents=True)
    started = time.perf_counter()
    import_files([corpus], settings, fmt="scifact", progress=False)
    imported = time.perf_counter() - started
    cpu = time.process_time()
    started = time.perf_counter()
    report = build(settings)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # A build forks a second process (kb.parallel); its CPU time and memory count too.
    side = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"import_s": round(imported, 1), "build_s": round(time.perf_counter() - started, 1),
                      "build_cpu_s": round(time.process_time() - cpu + side.ru_utime + side.ru_stime, 1),
                      "side_peak_mb": round(side.ru_maxrss / 1024),
                      "claims": report.manifest["counts"]["claims"],
                      "sources": report.manifest["counts"]["sources"],
                      "peak_mb": round(usage.ru_maxrss / 1024)}))


def child_publish(work: Path, engine: str) -> None:
    import psycopg

    from kb.build import current_build
    from kb.search import publish_build

    build_dir = current_build(work / "index")
    assert build_dir is not None, "no build to publish"
    started = time.perf_counter()
    schema = publish_build(engine, build_dir)
    seconds = time.perf_counter() - started
    with psycopg.connect(engine) as connection:
        row = connection.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            (schema,)).fetchone()
    size = int(row[0] or 0) if row else 0
    print(json.dumps({"publish_s": round(seconds, 1), "database_mb": round(size / 2**20, 1)}))


def child_search(work: Path, query_file: Path, engine: str = "") -> None:
    from kb.knowledge_base import KnowledgeBase
    from kb.query import SearchRequest

    started = time.perf_counter()
    kb = KnowledgeBase.open(_settings(work, engine))
    texts = json.loads(query_file.read_text())
    kb.search(SearchRequest(q=texts[0]))
    startup = time.perf_counter() - started
    times: list[float] = []
    totals: list[int] = []
    for text in texts:
        begun = time.perf_counter()
        page = kb.search(SearchRequest(q=text))
        times.append(time.perf_counter() - begun)
        totals.append(page.total)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"startup_s": round(startup, 2), **percentiles(times),
                      "mean_matches": round(statistics.fmean(totals)),
                      "rss_mb": round(usage.ru_maxrss / 1024)}))


def child_tantivy(work: Path, query_file: Path) -> None:
    import tantivy

    from kb.build import current_build
    from kb.store import Store

    build_dir = current_build(work / "index")
    assert build_dir is not None, "no build to read the claims from"
    texts = [claim.text for claim in Store.read(build_dir).claims]
    folder = Path(tempfile.mkdtemp(prefix="tantivy-", dir=work))
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", stored=False)
    builder.add_unsigned_field("n", stored=True)
    index = tantivy.Index(builder.build(), path=str(folder))
    cpu = time.process_time()
    started = time.perf_counter()
    writer = index.writer(heap_size=256 * 1024 * 1024, num_threads=1)
    for number, text in enumerate(texts):
        writer.add_document(tantivy.Document(text=text, n=number))
    writer.commit()
    writer.wait_merging_threads()
    index_s = time.perf_counter() - started
    index.reload()
    searcher = index.searcher()
    times: list[float] = []
    for text in json.loads(query_file.read_text()):
        words = " ".join(re.findall(r"\w+", text))
        begun = time.perf_counter()
        parsed = index.parse_query(words, ["text"])
        searcher.search(parsed, 20)
        times.append(time.perf_counter() - begun)
    shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({"index_s": round(index_s, 1), "index_cpu_s": round(time.process_time() - cpu, 1),
                      **percentiles(times)}))


def run_child(step: str, *args: str) -> dict[str, object]:
    result = subprocess.run([sys.executable, __file__, f"--child={step}", *args],
                            capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"{step} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    data: dict[str, object] = json.loads(lines[-1])
    return data


def server_load(work: Path, texts: Sequence[str], duration: float, engine: str = "",
                servers: int = 1) -> dict[str, object]:
    """wrk's 8 connections over *servers* servers (split evenly), all on the same build."""
    from concurrent.futures import ThreadPoolExecutor

    from load import rss_kb, run_wrk, start_server

    os.environ.update({"KB_SEMANTIC": "0", "KB_VERIFIER": "0", "KB_SEARCH_CACHE": "0",
                       "KB_SEARCH_TIME_BUDGET": "60", "KB_ENGINE": engine})
    started = time.perf_counter()
    running = [start_server(work / "corpus", work / "index", threads=8) for _ in range(servers)]
    startup = time.perf_counter() - started
    try:
        paths = [f"/api/v1/search?q={urllib.parse.quote(text)}" for text in texts]
        with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(servers) as pool:
            folders = [Path(scratch) / str(n) for n in range(servers)]
            for folder in folders:
                folder.mkdir()
            rows = list(pool.map(lambda n: run_wrk(running[n][1], paths, 8 // servers, duration, False,
                                                   folders[n]), range(servers)))
        return {"servers": servers, "server_startup_s": round(startup, 1),
                "rps": round(sum(row["rps"] for row in rows), 1),
                "p50_ms": max(row["p50_ms"] for row in rows), "p99_ms": max(row["p99_ms"] for row in rows),
                "non2xx_or_errors": sum(row["errors"] for row in rows),
                "rss_mb": [round(rss_kb(process.pid) / 1024) for process, _ in running]}
    finally:
        os.environ.pop("KB_ENGINE", None)
        for process, _ in running:
            process.terminate()
        for process, _ in running:
            process.wait(timeout=60)


def index_size_mb(work: Path) -> float:
    total = sum(p.stat().st_size for p in (work / "index").rglob("*") if p.is_file())
    return round(total / 2**20, 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, help="SciFact corpus.jsonl")
    parser.add_argument("--claims", type=Path, help="SciFact claims_train.jsonl (queries)")
    parser.add_argument("--factors", default="1,4", help="replication factors, comma-separated")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "kb-scale")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of wrk load per size")
    parser.add_argument("--rebuild", action="store_true", help="build again even when a build exists")
    parser.add_argument("--no-server", action="store_true", help="skip the server under wrk")
    parser.add_argument("--no-tantivy", action="store_true", help="skip the tantivy anchor")
    parser.add_argument("--engine", default="", help="also publish into and measure this postgresql:// URL")
    parser.add_argument("--read-servers", default="1",
                        help="with --engine: server counts to measure under wrk, comma-separated")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        steps = {"build": lambda: child_build(Path(args.args[0]), Path(args.args[1])),
                 "publish": lambda: child_publish(Path(args.args[0]), args.args[1]),
                 "search": lambda: child_search(Path(args.args[0]), Path(args.args[1]), *args.args[2:]),
                 "tantivy": lambda: child_tantivy(Path(args.args[0]), Path(args.args[1]))}
        steps[args.child]()
        return 0
    if args.corpus is None or args.claims is None:
        parser.error("--corpus and --claims are required")
    args.work.mkdir(parents=True, exist_ok=True)
    texts = queries(args.corpus, args.claims)
    query_file = args.work / "queries.json"
    query_file.write_text(json.dumps(texts))
    for factor in (int(f) for f in args.factors.split(",")):
        work = args.work / f"x{factor}"
        work.mkdir(exist_ok=True)
        replicated = work / "replicated.jsonl"
        replicate(args.corpus, factor, replicated)
        built = work / "build.json"
        if args.rebuild or not built.is_file():
            built.write_text(json.dumps(run_child("build", str(work), str(replicated))))
        row: dict[str, object] = {"factor": factor, **json.loads(built.read_text()),
                                  "index_mb": index_size_mb(work)}
        print(f"x{factor} build: {json.dumps(row)}", flush=True)
        print(f"x{factor} library search: {json.dumps(run_child('search', str(work), str(query_file)))}",
              flush=True)
        if not args.no_server:
            print(f"x{factor} server, 8 connections: {json.dumps(server_load(work, texts, args.duration))}",
                  flush=True)
        if not args.no_tantivy:
            print(f"x{factor} tantivy BM25 (anchor): "
                  f"{json.dumps(run_child('tantivy', str(work), str(query_file)))}", flush=True)
        if args.engine:
            print(f"x{factor} postgresql publish: {json.dumps(run_child('publish', str(work), args.engine))}",
                  flush=True)
            searched = run_child("search", str(work), str(query_file), args.engine)
            print(f"x{factor} postgresql library search: {json.dumps(searched)}", flush=True)
            for servers in (int(n) for n in args.read_servers.split(",") if not args.no_server):
                loaded = server_load(work, texts, args.duration, args.engine, servers)
                print(f"x{factor} postgresql server, 8 connections: {json.dumps(loaded)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
