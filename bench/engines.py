"""The two engines side by side: SciFact retrieval through search, and search latency.

Imports SciFact's abstracts (``bench/scifact.py``'s ``prepare``: sources = abstracts, claims =
their sentences), builds the embedded index, publishes the same build into PostgreSQL, then
sends every training claim (the judge's dev and test claims are never read) through
``KnowledgeBase.search`` on each engine. A claim's source ranking is the order in which sources
first appear in its top 50 claim hits; it is scored against the claim's cited abstracts
(nDCG@10, Recall@10). Latency is per search, uncached, in this process.

    python bench/engines.py --corpus scifact/corpus.jsonl --claims scifact/claims_train.jsonl \\
        --engine postgresql://postgres@127.0.0.1:5432/postgres [--work /tmp/scifact-engines]

The last line is ``embedded_nDCG@10=... postgresql_nDCG@10=... difference=...``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scifact import metrics, prepare, read_claims, relevant_sources  # noqa: E402

from kb.errors import KBError  # noqa: E402
from kb.knowledge_base import KnowledgeBase  # noqa: E402
from kb.query import SearchRequest  # noqa: E402
from kb.search import publish_build  # noqa: E402


def rankings(kb: KnowledgeBase, texts: list[str]) -> tuple[list[list[str]], list[float]]:
    ranked: list[list[str]] = []
    seconds: list[float] = []
    for text in texts:
        started = time.perf_counter()
        try:
            page = kb.search(SearchRequest(q=text[:900], limit=50, expand=True))
            order = list(dict.fromkeys(hit.source["id"] for hit in page.hits))
        except KBError:
            order = []
        seconds.append(time.perf_counter() - started)
        ranked.append(order)
    return ranked, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--claims", type=Path, required=True, help="claims_train.jsonl")
    parser.add_argument("--engine", required=True, help="postgresql://... to publish into")
    parser.add_argument("--work", type=Path, default=Path("/tmp/scifact-engines"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N claims")
    parser.add_argument("--factor", type=int, default=1,
                        help="replicate the abstracts N times (bench/scale.py's replicas) to time larger "
                             "builds; retrieval figures are only meaningful at 1")
    args = parser.parse_args(argv)

    corpus = args.corpus
    if args.factor > 1:
        from scale import replicate

        corpus = args.work / f"corpus-x{args.factor}.jsonl"
        if not corpus.is_file():
            args.work.mkdir(parents=True, exist_ok=True)
            replicate(args.corpus, args.factor, corpus)
    settings, _ = prepare(corpus, args.work, semantic=False)
    settings = replace(settings, search_cache_size=0, search_time_budget_s=30.0)
    embedded = KnowledgeBase.open(settings)
    started = time.perf_counter()
    assert embedded.build_dir is not None
    publish_build(args.engine, embedded.build_dir)
    print(f"published {len(embedded.store.claims)} claims into PostgreSQL in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    published = KnowledgeBase.open(replace(settings, engine=args.engine))
    claims = read_claims(args.claims)
    claims = [c for c in claims if c.get("cited_doc_ids")]
    if args.limit:
        claims = claims[:args.limit]
    texts = [str(c["claim"]) for c in claims]
    relevant = relevant_sources(claims)
    figures = {}
    for name, kb in (("embedded", embedded), ("postgresql", published)):
        ranked, seconds = rankings(kb, texts)
        found = metrics(ranked, relevant)
        ordered = sorted(seconds)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        figures[name] = found["nDCG@10"]
        print(f"{name:<11} claims={len(texts)} nDCG@10={found['nDCG@10']:.4f} R@10={found['R@10']:.4f} "
              f"search p50={p50:.1f} ms p99={p99:.1f} ms", flush=True)
    print(f"embedded_nDCG@10={figures['embedded']:.4f} postgresql_nDCG@10={figures['postgresql']:.4f} "
          f"difference={figures['postgresql'] - figures['embedded']:+.4f}")
    embedded.close()
    published.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
