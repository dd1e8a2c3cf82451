"""The bundled knowledge base (corpus/): its size, tagging, and the sources key queries return."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kb.build import build
from kb.config import Settings
from kb.corpus.loader import load_corpus
from kb.knowledge_base import KnowledgeBase
from kb.query import SearchRequest

BUNDLED = Path(__file__).resolve().parent.parent / "corpus"


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundled")
    shutil.copytree(BUNDLED, root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", search_cache_size=0)
    build(settings)
    kb = KnowledgeBase.open(settings)
    yield kb
    kb.close()


def test_the_corpus_loads_without_problems():
    corpus = load_corpus(BUNDLED)
    assert [str(p) for p in corpus.problems] == []


def test_stats_meet_the_corpus_promise(bundled):
    stats = bundled.stats()
    assert stats["sources"] == 67
    assert stats["claims"] >= 300
    assert stats["tagged_share"] >= 0.95
    assert stats["claims_by_stance"]["limits"] > 0 and stats["claims_by_stance"]["contradicts"] > 0


def test_every_claim_has_a_source_and_a_locator_into_its_summary(bundled):
    for claim in bundled.store.claims:
        assert claim.source_id in bundled.store.source_by_id
        assert claim.locator.section in {"claims", "key results"} and claim.locator.index >= 1
        assert claim.provenance is not None and claim.provenance.file.startswith("summaries/")


# Expected first results: the studies principally about the query's subject (the trials, and
# the systematic reviews of those trials), and a named primary study within the first five.
PINNED = {
    "TRD": ({"kryst2020efficacy", "marcantoni2020systematic", "zarate2006randomized",
             "murrough2013antidepressant", "anand2023ketamine", "daly2018efficacy",
             "popova2019efficacy", "fedgchin2019efficacy"}, None),
    "PTSD": ({"feder2014efficacy", "feder2021randomized", "abdallah2022dose",
              "almeida2024effectiveness"}, "feder2014efficacy"),
    "suicidal ideation": ({"witt2020ketamine", "wilkinson2018effect", "grunebaum2018ketamine",
                           "price2014effects", "fu2020esketamine"}, "grunebaum2018ketamine"),
    "BDNF": ({"autry2011nmda"}, "autry2011nmda"),
    "mTOR": ({"li2010mtor"}, "li2010mtor"),
    "esketamine": ({"bahji2021comparative", "daly2018efficacy", "popova2019efficacy",
                    "fedgchin2019efficacy", "daly2019efficacy", "ochsross2020efficacy",
                    "reif2023esketamine", "fu2020esketamine"}, "ochsross2020efficacy"),
    "social anxiety": ({"taylor2018ketamine", "glue2017ketamine", "glue2018safety"},
                       "taylor2018ketamine"),
    "midazolam": ({"grunebaum2018ketamine", "murrough2013antidepressant", "price2014effects",
                   "feder2014efficacy", "feder2021randomized"}, "grunebaum2018ketamine"),
}


@pytest.mark.parametrize("query", sorted(PINNED))
def test_key_queries_return_the_right_studies_first(bundled, query):
    expected_first, named = PINNED[query]
    sources = [hit.source["id"] for hit in bundled.search(SearchRequest(q=query, limit=5)).hits]
    assert sources[0] in expected_first, sources
    if named:
        assert named in sources, sources


def test_trd_finds_the_spelled_out_term_and_depression_includes_narrower_terms(bundled):
    trd = bundled.search(SearchRequest(q="TRD", limit=100))
    texts = " ".join(hit.claim["text"] for hit in trd.hits)
    assert "treatment-resistant depression" in texts  # found through the synonym, not the letters
    depression = bundled.search(SearchRequest(filters={"condition": ("depression",)}, limit=100))
    facet = {value.id for value in depression.facets["condition"]}
    assert {"trd", "bipolar-depression"} <= facet


def test_unverified_identifiers_and_numbers_are_never_shown_as_fact(bundled):
    with_doi = [s for s in bundled.store.sources if s.doi]
    for source in with_doi:
        view = bundled.source_view(source.id)
        if source.is_confirmed("doi"):
            assert view["doi"] == source.doi and view["links"]["doi"].endswith(source.doi)
        else:
            assert view["doi"] is None and "doi" not in view["links"]
            assert view["unconfirmed_identifiers"]["doi"] == source.doi
    partial = [s for s in bundled.store.sources if s.verification.get("authors") == "partial"]
    assert partial and "authors" in bundled.source_view(partial[0].id)["unconfirmed_fields"]
    flagged = [c for c in bundled.store.claims if not c.confirmed]
    assert flagged and all("[unverified]" not in c.text for c in flagged)
    # an empty DOI stays empty: nothing is invented
    assert any(not s.doi for s in bundled.store.sources)


def test_evidence_sort_puts_systematic_reviews_first(bundled):
    page = bundled.search(SearchRequest(q="ketamine depression", sort="evidence", limit=10))
    assert page.hits[0].source["evidence_level"] == 1


def test_a_question_the_corpus_cannot_answer_is_marked_weak(bundled):
    page = bundled.search(SearchRequest(q="ketamine cures cancer"))
    assert page.weak_match is True and page.did_you_mean is None
    assert bundled.search(SearchRequest(q="ketamine depression")).weak_match is False
    assert bundled.search(SearchRequest(q="ketamin depresion")).did_you_mean == "ketamine depression"


def test_related_claims_never_rest_on_a_shared_design_alone(bundled):
    subject = ("condition", "mechanism", "intervention", "outcome")
    checked = 0
    for claim in bundled.store.claims[::7]:
        mine = {t for kind in subject for t in claim.tags.get(kind, ())}
        for other, shared in bundled.related_claims(claim):
            theirs = {t for kind in subject for t in other.tags.get(kind, ())}
            assert shared and set(shared) <= mine & theirs, (claim.id, other.id)
            checked += 1
    assert checked


def test_an_abbreviation_alone_surfaces_the_primary_studies(bundled):
    # "TRD" used to rank the claims that spell "TRD" first (an FDA notice, guidelines, one trial's
    # claims filling the page) and left Zarate 2006, the first randomised trial, far behind.
    hits = bundled.search(SearchRequest(q="TRD", limit=10)).hits
    sources = [hit.source["id"] for hit in hits]
    assert "zarate2006randomized" in sources, sources
    assert all(hit.source["evidence_level"] in (1, 2) for hit in hits), sources
    assert len(set(sources)) >= 6  # no single study fills the page


@pytest.mark.parametrize("query", ["PTSD", "esketamine", "midazolam"])
def test_one_term_queries_keep_trials_and_reviews_on_top(bundled, query):
    hits = bundled.search(SearchRequest(q=query, limit=10)).hits
    assert sum(hit.source["evidence_level"] in (1, 2) for hit in hits) == 10
