"""The array search (kb.search.array_search) against Whoosh's own scoring, on the bundled corpus.

Large knowledge bases search over the build's arrays; small ones are scored by Whoosh. Both run
here on the same build: the array path must match the same claims (totals, facets and years
exactly), refuse the same bad queries, and rank close to Whoosh.
"""

from collections.abc import Iterator
from dataclasses import replace

import pytest

from kb.build import build
from kb.config import Settings
from kb.errors import BadQuery
from kb.knowledge_base import KnowledgeBase
from kb.query import SearchRequest

QUERIES = [
    "suicidal ideation", "PTSD", "esketamine nasal spray", "ketamine -depression",
    "+ketamine +ptsd", '"nasal spray"', "ketam*", "ketamine~1", "dissociation side effects",
    "NMDA-receptor antagonist", "glutamate system", "ketamine cures cancer", "midazolam",
]
REQUESTS = [SearchRequest(q=q) for q in QUERIES] + [
    SearchRequest(filters={"condition": ("depression",)}),
    SearchRequest(q="ketamine", stance=("limits",)),
    SearchRequest(q="ketamine", year_from=2015, year_to=2020),
    SearchRequest(q="ketamine", sources=("feder2014efficacy", "zarate2006randomized")),
    SearchRequest(q="ketamine", exclude_retracted=True),
    SearchRequest(q="condition:ptsd ketamine"),
]


@pytest.fixture(scope="module", params=["full", "slim"])
def arrays(request: pytest.FixtureRequest, kb: KnowledgeBase, settings: Settings,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    """The array search over the session's build ("full": the Whoosh claims index a small
    knowledge base has), and over a build made as a large one is ("slim")."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("KB_ARRAY_SEARCH_FROM", "0")
    if request.param == "slim":
        settings = replace(settings, index_dir=tmp_path_factory.mktemp("slim") / "index")
        build(settings)
    opened = KnowledgeBase.open(settings)
    monkeypatch.undo()
    assert opened.engine._slim is (request.param == "slim")  # type: ignore[attr-defined]
    yield opened
    opened.close()


def _ids(page) -> list[str]:
    return [hit.claim["id"] for hit in page.hits]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: r.q or str(r.filters))
def test_the_same_claims_match_and_are_counted_alike(kb, arrays, request_):
    whoosh, fast = kb.search(request_), arrays.search(request_)
    assert fast.total == whoosh.total
    assert [(f.id, f.count) for group in fast.facets.values() for f in group] == \
        [(f.id, f.count) for group in whoosh.facets.values() for f in group]
    assert fast.years == whoosh.years
    assert fast.weak_match == whoosh.weak_match


def test_rankings_agree_with_whoosh(kb, arrays):
    overlaps = []
    for request_ in REQUESTS:
        whoosh, fast = _ids(kb.search(request_))[:10], _ids(arrays.search(request_))[:10]
        if whoosh:
            overlaps.append(len(set(whoosh) & set(fast)) / len(whoosh))
    assert sum(overlaps) / len(overlaps) >= 0.75, overlaps


def test_a_hit_carries_its_source_locator_and_highlight(arrays):
    hit = arrays.search(SearchRequest(q="PTSD midazolam")).hits[0]
    assert hit.claim["source_id"] == "feder2014efficacy"
    assert hit.claim["locator"]["text"] == "claims, item 1"
    assert "<mark>PTSD</mark>" in hit.highlight


def test_pages_continue_without_repeats(arrays):
    first = _ids(arrays.search(SearchRequest(q="ketamine depression", limit=10)))
    second = _ids(arrays.search(SearchRequest(q="ketamine depression", limit=10, page=2)))
    both = _ids(arrays.search(SearchRequest(q="ketamine depression", limit=20)))
    assert first + second == both
    assert not set(first) & set(second)


@pytest.mark.parametrize("sort", ["newest", "oldest", "evidence"])
def test_sorted_searches_follow_their_key(arrays, sort):
    page = arrays.search(SearchRequest(q="ketamine", sort=sort, limit=50))
    keys = [hit.source["year"] or 0 for hit in page.hits] if sort != "evidence" else \
        [hit.source["evidence_level"] or 9 for hit in page.hits]
    assert keys == sorted(keys, reverse=sort == "newest")


@pytest.mark.parametrize("text", ["the of and", "-ketamine"])
def test_bad_queries_are_refused_alike(kb, arrays, text):
    with pytest.raises(BadQuery) as whoosh:
        kb.search(SearchRequest(q=text))
    with pytest.raises(BadQuery) as fast:
        arrays.search(SearchRequest(q=text))
    assert str(fast.value) == str(whoosh.value)
