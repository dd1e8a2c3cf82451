"""The matcher's engine internals: analysis, the BM25 impact index, the matching index files."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from kb.build import build
from kb.config import Settings
from kb.knowledge_base import KnowledgeBase
from kb.search import matchindex
from kb.search.analysis import index_terms
from kb.search.lexical import K1, B, ImpactIndex, top

MINI_CORPUS = Path(__file__).parent / "data" / "corpus"


def test_greek_letters_hyphens_and_decimals():
    assert index_terms("TNF-α") == index_terms("TNF-alpha") == index_terms("tnf alpha")
    assert index_terms("TNFα") == ["tnf", "alpha"]
    assert index_terms("IFN-γ and TGF-β1") == index_terms("IFN-gamma and TGF-beta1")
    assert index_terms("NF-κB") == index_terms("NF-kappaB") == ["nf", "kappab"]
    assert index_terms("0.5 mg/kg") == ["0.5", "mg", "kg"]  # decimals stay whole
    assert index_terms("Müller µ-opioid") == ["muller", "mu", "opioid"]


def test_impacts_are_okapi_bm25():
    texts = ["ketamine reduces depression", "ketamine ketamine anaesthesia in children", "placebo"]
    index = ImpactIndex.build(texts)
    lengths = [len(index_terms(t)) for t in texts]
    average = sum(lengths) / len(lengths)

    def bm25(tf: int, df: int, length: int) -> float:
        idf = math.log(1 + (len(texts) - df + 0.5) / (df + 0.5))
        return idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))

    scores = index.score(index.query_terms("ketamine depression"))
    assert scores[0] == pytest.approx(bm25(1, 2, lengths[0]) + bm25(1, 1, lengths[0]), rel=1e-5)
    assert scores[1] == pytest.approx(bm25(2, 2, lengths[1]), rel=1e-5)
    assert scores[2] == 0
    assert not index.query_terms("zzz")  # unknown words cannot score


def test_save_load_round_trip_and_top(tmp_path: Path):
    index = ImpactIndex.build(["alpha beta", "beta gamma", "gamma delta", "beta"])
    index.save(tmp_path / "x.npz")
    loaded = ImpactIndex.load(tmp_path / "x.npz")
    query = index.query_terms("beta gamma")
    assert np.allclose(index.score(query), loaded.score(query))
    ranked = top(loaded.score(query), 10)
    assert ranked[0][0] == 1  # both words
    assert [score for _, score in ranked] == sorted((score for _, score in ranked), reverse=True)
    assert 2 not in [n for n, _ in top(loaded.score(query), 10, allowed=[0, 1, 3])]
    assert top(loaded.score(loaded.query_terms("epsilon")), 10) == []


def test_a_shared_text_counts_as_often_as_the_records_it_stands_for():
    # One title shared by three claims scores as three copies of it would, stored once.
    shared = ImpactIndex.build(["ketamine trial", "placebo"], multiplicity=[3, 1], idf="classic")
    copies = ImpactIndex.build(["ketamine trial"] * 3 + ["placebo"], idf="classic")
    query = shared.query_terms("ketamine")
    assert shared.score(query)[0] == pytest.approx(copies.score(query)[0], rel=1e-5)
    assert copies.score(query)[0] == pytest.approx(
        (1 + math.log(4 / 4)) * (K1 + 1) / (1 + K1 * (1 - B + B * 2 / 1.75)), rel=1e-5)
    # Texts that stand for no record (sources without claims) build, and weigh nothing.
    empty = ImpactIndex.build(["a title"], multiplicity=[0], idf="classic")
    assert not empty.score(empty.query_terms("title")).any()


def test_ties_keep_document_order():
    index = ImpactIndex.build(["same words", "same words", "same words"])
    assert [n for n, _ in top(index.score(index.query_terms("same")), 3)] == [0, 1, 2]


def test_build_writes_the_matching_index_and_an_old_build_still_matches(tmp_path: Path):
    shutil.copytree(MINI_CORPUS, tmp_path / "corpus")
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    build(settings)
    kb = KnowledgeBase.open(settings)
    try:
        assert (kb.build_dir / matchindex.CLAIMS_FILE).is_file()
        expected = kb.engine.match_signals("ketamine PTSD midazolam", 20, 20)
        # A build from before the matching index existed: it is indexed in memory instead.
        (kb.build_dir / matchindex.CLAIMS_FILE).unlink()
        (kb.build_dir / matchindex.SOURCES_FILE).unlink()
        rebuilt = matchindex.MatchIndex(kb.build_dir, kb.store.sources, kb.store.claims)
        again = rebuilt.signals("ketamine PTSD midazolam", 20, 20)
        assert [k for k, _ in again.claims] == [k for k, _ in expected.claims]
        assert [k for k, _ in again.sources] == [k for k, _ in expected.sources]
        assert expected.best_claims[0][0] == "feder2014efficacy"
        assert "midazolam" in expected.terms
    finally:
        kb.close()


def test_match_signals_respect_the_source_filter(kb):
    signals = kb.engine.match_signals("ketamine depression", 50, 50, sources=("berman2000antidepressant",))
    assert signals.claims and {kb.store.claim_by_id[c].source_id for c, _ in signals.claims} == \
        {"berman2000antidepressant"}
    assert {s for s, _ in signals.sources} == {"berman2000antidepressant"}
    assert {s for s, _ in signals.best_claims} == {"berman2000antidepressant"}


def test_semantic_on_by_default_and_off_without_embeddings(kb, tmp_path):
    signals = kb.engine.match_signals("ketamine depression", 10, 10)
    assert signals.claims_semantic and signals.sources_semantic  # the bundled encoder's embeddings
    lexical = Settings(corpus_dir=kb.settings.corpus_dir, index_dir=tmp_path / "index", semantic=False)
    build(lexical)
    other = KnowledgeBase.open(lexical)
    try:
        signals = other.engine.match_signals("ketamine depression", 10, 10)
        assert signals.claims_semantic == () and signals.sources_semantic == ()
    finally:
        other.close()
