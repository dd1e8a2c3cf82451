"""Retrieval benchmark: SciFact claims matched to their cited abstracts by the product's matcher.

SciFact (Wadden et al., "Fact or Fiction: Verifying Scientific Claims", EMNLP 2020; abstracts
ODC-By 1.0, claims CC BY 4.0) pairs scientific claims with the abstracts that support or
contradict them. This script imports ``corpus.jsonl`` with the SciFact importer into a corpus
folder, builds its knowledge base with ``kb build``'s code (sources = abstracts, claims = their
sentences), then sends every claim through ``KnowledgeBase.match_sources`` -- the matcher the
article checker and search-by-sentence use -- and scores the ranking against the claim's
``cited_doc_ids``. In the same run it scores a plain BM25 baseline (bm25s over title + abstract,
English stop words, no stemming).

    python bench/scifact.py --corpus scifact/corpus.jsonl --claims scifact/claims_train.jsonl
    python bench/scifact.py --corpus ... --claims ... --index-dir /tmp/scifact-kb --folds 5

With ``--folds K`` (K > 1) the fusion weights are also cross-validated: for each fold they are
chosen on the other folds' claims and scored on the held-out fold; per-fold and mean figures are
printed, and the last line reports the held-out mean (with ``--folds 1``, the figures of the
shipped weights). ``--index-dir`` keeps the corpus and index for the next run, which reuses them
when the corpus file is unchanged. Semantic matching is used when the build has embeddings:
``--semantic`` builds with them (the bundled int8 ONNX encoder, as ``kb build`` does by default).

The last line is always ``nDCG@10=... R@100=... q/s=... baseline_nDCG@10=...``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.build import build, index_state
from kb.config import Settings
from kb.knowledge_base import KnowledgeBase
from kb.matching import Fusion, fuse_sources, rank
from kb.search import MatchSignals

PREFIX = "scifact-"
Relevant = dict[int, set[str]]  # claim number -> relevant source ids

# The grid the cross-validation searches: weights of the fused signals (lexical source text = 1).
GRID_LEXICAL = {"claim_lexical": (0.0, 0.2, 0.35, 0.5, 0.75)}
GRID_SEMANTIC = {"source_semantic": (0.5, 0.75, 1.0, 1.5), "claim_semantic": (0.0, 0.25, 0.5, 0.75)}


def read_claims(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def relevant_sources(claims: Sequence[dict[str, object]]) -> list[set[str]]:
    return [{f"{PREFIX}{d}" for d in claim["cited_doc_ids"]} for claim in claims]  # type: ignore[attr-defined]


# --- metrics -----------------------------------------------------------------------------------

def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    gain = sum(1 / math.log2(i + 2) for i, sid in enumerate(ranked[:k]) if sid in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return gain / ideal if ideal else 0.0


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: set[str]) -> float:
    return next((1 / (i + 1) for i, sid in enumerate(ranked) if sid in relevant), 0.0)


def metrics(rankings: Sequence[Sequence[str]], relevant: Sequence[set[str]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@10, Recall@100 and MRR (over the top 100)."""
    n = max(len(rankings), 1)
    return {
        "nDCG@10": sum(ndcg_at(r, rel) for r, rel in zip(rankings, relevant, strict=True)) / n,
        "R@10": sum(recall_at(r, rel, 10) for r, rel in zip(rankings, relevant, strict=True)) / n,
        "R@100": sum(recall_at(r, rel, 100) for r, rel in zip(rankings, relevant, strict=True)) / n,
        "MRR": sum(reciprocal_rank(r[:100], rel) for r, rel in zip(rankings, relevant, strict=True)) / n,
    }


def show(name: str, figures: dict[str, float], extra: str = "") -> None:
    cells = "  ".join(f"{k}={v:.4f}" for k, v in figures.items())
    print(f"{name:<28} {cells}{extra}", flush=True)


# --- the knowledge base ------------------------------------------------------------------------

def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare(corpus_file: Path, work: Path, semantic: bool) -> tuple[Settings, dict[str, float]]:
    """Import and build the SciFact knowledge base under *work* (reused when unchanged)."""
    from kb.corpus.importer import import_files

    settings = Settings(corpus_dir=work / "corpus", index_dir=work / "index", semantic=semantic)
    stamp = work / "imported-from.sha256"
    digest = file_digest(corpus_file)
    figures: dict[str, float] = {}
    if not stamp.is_file() or stamp.read_text().strip() != digest:
        shutil.rmtree(work / "corpus", ignore_errors=True)
        shutil.rmtree(work / "index", ignore_errors=True)
        settings.corpus_dir.mkdir(parents=True)
        started = time.perf_counter()
        report = import_files([corpus_file], settings, fmt="scifact", progress=False)
        figures["import_s"] = time.perf_counter() - started
        print(f"imported {corpus_file.name}: {report.summary()} in {figures['import_s']:.1f} s",
              flush=True)
        stamp.write_text(digest + "\n")
    state, manifest = index_state(settings)
    has_vectors = False
    if state == "current" and manifest:
        from kb.build import current_build
        from kb.search import semantic as semantic_module

        build_dir = current_build(settings.index_dir)
        has_vectors = build_dir is not None and semantic_module.has_vectors(build_dir)
    if state != "current" or (semantic and not has_vectors):
        started = time.perf_counter()
        report = build(settings)
        figures["build_s"] = time.perf_counter() - started
        counts = report.manifest["counts"]
        print(f"built {counts['sources']} sources, {counts['claims']} claims in "
              f"{figures['build_s']:.1f} s (semantic: {'yes' if semantic else 'no'})", flush=True)
    else:
        print(f"reusing the index in {settings.index_dir}", flush=True)
    return settings, figures


# --- the baseline ------------------------------------------------------------------------------

def baseline(corpus_file: Path, texts: Sequence[str]) -> tuple[list[list[str]], float]:
    """Plain BM25 (bm25s, title + abstract, English stop words, no stemming): top 100 per claim."""
    import bm25s

    ids: list[str] = []
    documents: list[str] = []
    with corpus_file.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                ids.append(f"{PREFIX}{record['doc_id']}")
                documents.append(f"{record['title']} {' '.join(record['abstract'])}")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(documents, stopwords="en", show_progress=False),
                    show_progress=False)
    started = time.perf_counter()
    tokens = bm25s.tokenize(list(texts), stopwords="en", show_progress=False)
    found, _ = retriever.retrieve(tokens, k=min(100, len(ids)), show_progress=False, n_threads=1)
    seconds = time.perf_counter() - started
    return [[ids[n] for n in row] for row in found.tolist()], len(texts) / max(seconds, 1e-9)


# --- cross-validation --------------------------------------------------------------------------

def candidates(semantic: bool) -> list[Fusion]:
    grid = dict(GRID_LEXICAL)
    if semantic:
        grid |= GRID_SEMANTIC
    else:
        grid |= {"source_semantic": (0.0,), "claim_semantic": (0.0,)}
    names = list(grid)
    return [Fusion(**dict(zip(names, values, strict=True)))  # type: ignore[arg-type]
            for values in itertools.product(*(grid[n] for n in names))]


def cross_validate(signals: Sequence[MatchSignals], relevant: Sequence[set[str]],
                   folds: int, semantic: bool, shipped: Fusion,
                   seed: int) -> dict[str, float]:
    """Choose fusion weights on K-1 folds, score them on the held-out fold; print each fold."""
    order = list(range(len(signals)))
    random.Random(seed).shuffle(order)
    fold_of = {claim: n % folds for n, claim in enumerate(order)}
    grid = candidates(semantic)
    # Every candidate's per-claim nDCG@10 once; fold means are then sums over claims.
    ranked_by: dict[Fusion, list[list[str]]] = {}
    for fusion in grid:
        ranked_by[fusion] = [[sid for sid, _ in rank(fuse_sources(s, fusion), 100)]
                             for s in signals]
    per_claim = {f: [ndcg_at(r, rel) for r, rel in zip(ranked_by[f], relevant, strict=True)]
                 for f in grid}
    held_out: list[dict[str, float]] = []
    print(f"cross-validation: {folds} folds, {len(grid)} weight settings searched per fold", flush=True)
    for fold in range(folds):
        train = [c for c in order if fold_of[c] != fold]
        test = [c for c in order if fold_of[c] == fold]
        best = max(grid, key=lambda f: (sum(per_claim[f][c] for c in train), f == shipped))
        figures = metrics([ranked_by[best][c] for c in test], [relevant[c] for c in test])
        shipped_figures = metrics([ranked_by[shipped][c] for c in test] if shipped in ranked_by else
                                  [[sid for sid, _ in rank(fuse_sources(signals[c], shipped),
                                                           100)] for c in test],
                                  [relevant[c] for c in test])
        held_out.append(figures)
        show(f"fold {fold + 1} held-out ({len(test)})", figures,
             f"  chosen claim_lex={best.claim_lexical} src_sem={best.source_semantic} "
             f"claim_sem={best.claim_semantic}  shipped nDCG@10={shipped_figures['nDCG@10']:.4f}")
    mean = {k: sum(f[k] for f in held_out) / folds for k in held_out[0]}
    show("cross-validated mean", mean)
    return mean


# --- main --------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="SciFact corpus.jsonl")
    parser.add_argument("--claims", type=Path, required=True, help="SciFact claims_*.jsonl")
    parser.add_argument("--index-dir", type=Path, help="keep the corpus and index here (reused)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (1 = none)")
    parser.add_argument("--semantic", action="store_true",
                        help="build with sentence embeddings (the default for kb build)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N claims (quick runs)")
    parser.add_argument("--seed", type=int, default=13, help="fold assignment seed")
    args = parser.parse_args(argv)

    work = args.index_dir or Path(tempfile.mkdtemp(prefix="scifact-kb-"))
    work.mkdir(parents=True, exist_ok=True)
    settings, figures = prepare(args.corpus, work, args.semantic)
    claims = read_claims(args.claims)
    if args.limit:
        claims = claims[:args.limit]
    texts = [str(c["claim"]) for c in claims]
    relevant = relevant_sources(claims)

    started = time.perf_counter()
    kb = KnowledgeBase.open(settings)
    matcher = kb.matcher
    engine = kb.engine
    kb.match_sources("warm-up: load the matching indexes", 1)
    open_s = time.perf_counter() - started
    semantic_on = bool(getattr(getattr(engine, "match_index", lambda: None)(), "vectors", None) is not None)
    print(f"opened the knowledge base in {open_s:.1f} s (semantic matching: "
          f"{'on' if semantic_on else 'off'})", flush=True)

    started = time.perf_counter()
    results = [kb.match_sources(text, limit=100) for text in texts]
    seconds = time.perf_counter() - started
    per_second = len(texts) / max(seconds, 1e-9)
    rankings = [[m.source.id for m in found] for found in results]
    shipped = metrics(rankings, relevant)

    base_rankings, base_per_second = baseline(args.corpus, texts)
    base = metrics(base_rankings, relevant)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print()
    show("baseline BM25 (bm25s)", base, f"  {base_per_second:.0f} claims/s")
    show("matcher, shipped weights", shipped, f"  {per_second:.1f} claims/s")
    final = shipped
    if args.folds > 1:
        signals = [matcher.signals(text) for text in texts]
        final = cross_validate(signals, relevant, args.folds, semantic_on,
                               matcher.fusion, args.seed)
    built = f"build {figures['build_s']:.1f} s" if "build_s" in figures else "index reused"
    print(f"claims: {len(texts)}; {built}; peak memory {peak_mb:.0f} MB (ru_maxrss)", flush=True)
    kb.close()
    print(f"nDCG@10={final['nDCG@10']:.4f} R@100={final['R@100']:.4f} q/s={per_second:.0f} "
          f"baseline_nDCG@10={base['nDCG@10']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
