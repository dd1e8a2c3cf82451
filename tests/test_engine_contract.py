"""One contract, two engines: the embedded engine (Whoosh and the build's arrays, in the index
folder) and PostgreSQL answer the same searches alike.

Every test runs against both (the ``engine_kb`` fixture); where a test compares them it asserts
what a user relies on: the same matches, totals and facet counts, the same best hit, the same
errors for a bad query, the same store behind the results, the same matcher signals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from kb.config import Settings
from kb.errors import BadQuery, NotFound
from kb.knowledge_base import KnowledgeBase
from kb.query import SearchRequest

QUERIES = [
    "ketamine", "ketamine depression", "PTSD", '"antidepressant response"', "ketam*", "-ketamine depression",
    "+esketamine nasal", "NMDA receptor antagonist", "glutamate", "condition:ptsd", "ketamine cures cancer",
    "suicide OR suicidal", "stance:limits ketamine", "Does ketamine reduce suicidal ideation?",
]


@pytest.fixture(scope="module")
def embedded(settings: Settings) -> Iterator[KnowledgeBase]:
    knowledge_base = KnowledgeBase.open(replace(settings, search_cache_size=0))
    yield knowledge_base
    knowledge_base.close()


@pytest.fixture(scope="module")
def published(pg_settings: Settings) -> Iterator[KnowledgeBase]:
    knowledge_base = KnowledgeBase.open(replace(pg_settings, search_cache_size=0))
    yield knowledge_base
    knowledge_base.close()


@pytest.fixture(params=["embedded", "postgresql"])
def engine_kb(request: pytest.FixtureRequest) -> KnowledgeBase:
    return request.getfixturevalue("embedded" if request.param == "embedded" else "published")


def _ids(page: object) -> list[str]:
    return [hit.claim["id"] for hit in page.hits]  # type: ignore[attr-defined]


# --- behaviour each engine has --------------------------------------------------------

def test_search_finds_ranks_and_pages(engine_kb: KnowledgeBase) -> None:
    first = engine_kb.search(SearchRequest(q="ketamine depression", limit=5))
    second = engine_kb.search(SearchRequest(q="ketamine depression", limit=5, page=2))
    assert first.total > 10 and len(first.hits) == 5
    assert not set(_ids(first)) & set(_ids(second))
    scores = [hit.score for hit in first.hits]
    assert scores == sorted(scores, reverse=True)
    for hit in first.hits:
        assert hit.source["id"] and "<mark>" in hit.highlight


def test_required_excluded_and_phrase(engine_kb: KnowledgeBase) -> None:
    for hit in engine_kb.search(SearchRequest(q="-ketamine depression", limit=50)).hits:
        assert "ketamine" not in hit.claim["text"].lower()
    required = engine_kb.search(SearchRequest(q="+esketamine nasal", limit=50))
    assert 0 < required.total <= engine_kb.search(SearchRequest(q="esketamine nasal")).total
    for hit in required.hits:  # the word, or the vocabulary term whose synonyms hold it
        assert "esketamine" in hit.claim["text"].lower() + hit.source["citation"].lower() or \
            "esketamine" in hit.claim["tags"].get("intervention", ())
    top = engine_kb.search(SearchRequest(q='"antidepressant response"', limit=3)).hits[0]
    assert "antidepressant response" in top.claim["text"].lower()


def test_filters_and_sorts(engine_kb: KnowledgeBase) -> None:
    ptsd = engine_kb.search(SearchRequest(q="ketamine", filters={"condition": ("ptsd",)}, limit=100))
    assert ptsd.total and all("ptsd" in hit.claim["tags"].get("condition", ()) or hit.claim["tags"]
                              for hit in ptsd.hits)
    every = sorted(engine_kb.search(SearchRequest(q="ketamine")).years)
    low, high = every[len(every) // 4], every[-1]
    dated = engine_kb.search(SearchRequest(q="ketamine", year_from=low, year_to=high, sort="newest", limit=50))
    years = [hit.source["year"] for hit in dated.hits]
    assert years and all(low <= y <= high for y in years) and years == sorted(years, reverse=True)
    strongest = engine_kb.search(SearchRequest(q="ketamine", sort="evidence", limit=50))
    levels = [hit.source.get("evidence_level") or 9 for hit in strongest.hits]
    assert levels == sorted(levels)
    limits = engine_kb.search(SearchRequest(q="ketamine", stance=("limits",), limit=50))
    assert limits.total and {hit.claim["stance"] for hit in limits.hits} == {"limits"}


def test_bad_queries_are_refused_alike(engine_kb: KnowledgeBase) -> None:
    with pytest.raises(BadQuery):
        engine_kb.search(SearchRequest(q=""))
    with pytest.raises(BadQuery):
        engine_kb.search(SearchRequest(q="-ketamine"))
    with pytest.raises(NotFound):
        engine_kb.claim("nosuch2020claim-0000000000")


def test_suggestion_and_weak_match(engine_kb: KnowledgeBase) -> None:
    assert engine_kb.search(SearchRequest(q="deprssion")).did_you_mean == "depression"
    assert engine_kb.search(SearchRequest(q="ketamine cures cancer")).weak_match
    assert not engine_kb.search(SearchRequest(q="ketamine depression")).weak_match


# --- the two engines agree -------------------------------------------------------------

@pytest.mark.parametrize("query", QUERIES)
def test_engines_match_the_same_claims(embedded: KnowledgeBase, published: KnowledgeBase, query: str) -> None:
    a = embedded.search(SearchRequest(q=query, limit=10))
    b = published.search(SearchRequest(q=query, limit=10))
    assert b.total == pytest.approx(a.total, rel=0.05, abs=1)
    assert _ids(a)[:1] == _ids(b)[:1] or _ids(a)[0] in _ids(b)[:3]  # ties may fall either way
    assert len(set(_ids(a)) & set(_ids(b))) >= min(len(a.hits), 10) * 0.6
    assert a.weak_match == b.weak_match


def test_engines_count_the_same_facets(embedded: KnowledgeBase, published: KnowledgeBase) -> None:
    a = embedded.search(SearchRequest(q="ketamine depression"))
    b = published.search(SearchRequest(q="ketamine depression"))
    assert {k: [(v.id, v.count) for v in vs] for k, vs in a.facets.items()} == \
        {k: [(v.id, v.count) for v in vs] for k, vs in b.facets.items()}
    assert a.years == b.years


def test_engines_hold_the_same_store(embedded: KnowledgeBase, published: KnowledgeBase) -> None:
    assert [s.id for s in embedded.store.sources] == [s.id for s in published.store.sources]
    assert len(embedded.store.claims) == len(published.store.claims)
    claim = embedded.store.claims[len(embedded.store.claims) // 2]
    assert published.store.claim_by_id[claim.id] == claim
    assert published.store.claims_by_source[claim.source_id] == embedded.store.claims_by_source[claim.source_id]
    assert published.stats() == embedded.stats()
    assert published.status()["counts"] == embedded.status()["counts"]


def test_engines_give_the_matcher_the_same_signals(embedded: KnowledgeBase, published: KnowledgeBase) -> None:
    text = "Ketamine rapidly reduced depressive symptoms in treatment-resistant depression."
    a = embedded.engine.match_signals(text, claim_limit=10, source_limit=5)
    b = published.engine.match_signals(text, claim_limit=10, source_limit=5)
    assert a == b


def test_engines_check_an_article_alike(embedded: KnowledgeBase, published: KnowledgeBase) -> None:
    text = "Ketamine reduces suicidal ideation within hours. Ketamine cures pancreatic cancer."
    a = embedded.check(text).to_dict()["claims"]
    b = published.check(text).to_dict()["claims"]
    assert [(c.get("verdict"), [e.get("claim_id") for e in c.get("evidence", [])]) for c in a] == \
        [(c.get("verdict"), [e.get("claim_id") for e in c.get("evidence", [])]) for c in b]
