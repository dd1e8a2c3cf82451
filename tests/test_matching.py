"""The matcher: sentences to claims and sources, on the mini corpus and a SciFact-shaped fixture."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from kb.build import build
from kb.config import Settings
from kb.knowledge_base import KnowledgeBase
from kb.matching import Fusion, _normalised, fuse_sources
from kb.search import MatchSignals
from kb.search import semantic as semantic_module

ROOT = Path(__file__).parent.parent
MINI_CORPUS = Path(__file__).parent / "data" / "corpus"
SCIFACT_MINI = Path(__file__).parent / "data" / "scifact-mini"


def test_a_sentence_finds_the_source_that_backs_it(kb):
    found = kb.match_sources("Ketamine reduced PTSD symptoms more than midazolam", limit=3)
    assert found[0].source.id == "feder2014efficacy"
    assert found[0].claims and all(m.source.id == "feder2014efficacy" for m in found[0].claims)
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)


def test_vocabulary_synonyms_count(kb):
    # "TRD" is not in the text of the trials; its vocabulary label is.
    found = kb.match_sources("TRD responds to ketamine", limit=2)
    assert found[0].source.id in {"zarate2006randomized", "fda2019spravato"}


def test_claims_carry_their_source_and_shared_terms(kb):
    found = kb.match_claims("ketamine for PTSD", limit=5)
    assert found and found[0].claim.source_id == found[0].source.id
    assert "ptsd" in found[0].shared_terms
    assert len({m.claim.id for m in found}) == len(found)


def test_match_claims_within_some_sources(kb):
    found = kb.matcher.match_claims("ketamine depression", limit=10, sources=("berman2000antidepressant",))
    assert found and {m.source.id for m in found} == {"berman2000antidepressant"}


def test_nothing_to_match(kb):
    assert kb.match_sources("?!", limit=5) == []
    assert kb.match_claims("", limit=5) == []
    assert kb.match_sources("qwxzv", limit=5) == []


def test_claims_shown_per_source_are_capped(kb):
    for match in kb.match_sources("ketamine", limit=5):
        assert len(match.claims) <= kb.matcher.fusion.claims_per_source


def test_normalised_scores_keep_candidates_above_non_candidates():
    assert _normalised((("a", 9.0), ("b", 5.0), ("c", 1.0))) == {"a": 1.0, "b": pytest.approx(0.525),
                                                                    "c": 0.05}
    assert _normalised((("a", 2.0), ("b", 2.0))) == {"a": 1.0, "b": 1.0}
    assert _normalised(()) == {}


def test_a_source_gains_from_its_best_claim():
    signals = MatchSignals(claims=(), sources=(("x", 3.0), ("y", 2.9), ("z", 1.0)),
                           best_claims=(("y", 8.0), ("z", 1.0)))
    assert max(fuse_sources(signals, Fusion(claim_lexical=0.0)).items(), key=lambda kv: kv[1])[0] == "x"
    assert max(fuse_sources(signals, Fusion(claim_lexical=0.5)).items(), key=lambda kv: kv[1])[0] == "y"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_scifact", ROOT / "bench" / "scifact.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scifact_bench_on_a_small_fixture(tmp_path, capsys):
    pytest.importorskip("bm25s", reason="the benchmark's baseline needs the bench extra (bm25s)")
    bench = _load_bench()
    args = ["--corpus", str(SCIFACT_MINI / "corpus.jsonl"), "--claims", str(SCIFACT_MINI / "claims.jsonl"),
            "--index-dir", str(tmp_path / "kb"), "--folds", "2"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    last = out[-1]
    assert last.startswith("nDCG@10=") and " R@100=" in last and " q/s=" in last
    assert " baseline_nDCG@10=" in last
    assert float(last.split()[0].split("=")[1]) >= 0.8  # eight claims, each about one abstract
    assert any(line.startswith("fold 2 held-out") for line in out)
    # The second run reuses the imported corpus and its index.
    assert bench.main(args) == 0
    assert "reusing the index" in capsys.readouterr().out


def test_bench_metrics():
    bench = _load_bench()
    assert bench.ndcg_at(["a", "b"], {"b"}) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert bench.recall_at(["a", "b", "c"], {"c", "d"}, 2) == 0.0
    assert bench.reciprocal_rank(["a", "b", "c"], {"c"}) == pytest.approx(1 / 3)


@pytest.mark.skipif(not semantic_module.available(),
                    reason="semantic extra not installed: pip install -e '.[semantic]'")
def test_semantic_matching_finds_a_paraphrase(tmp_path):
    shutil.copytree(MINI_CORPUS, tmp_path / "corpus")
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", semantic=True)
    build(settings)
    kb = KnowledgeBase.open(settings)
    try:
        assert semantic_module.has_vectors(kb.build_dir)
        signals = kb.engine.match_signals("nasal spray approved by the regulator", 10, 10)
        assert signals.sources_semantic and signals.claims_semantic
        found = kb.match_sources("a nose spray got regulatory approval", limit=2)
        assert found[0].source.id == "fda2019spravato"
    finally:
        kb.close()
