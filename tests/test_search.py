import pytest

from kb.errors import BadQuery, NotFound
from kb.query import SearchRequest


def ids(page):
    return [hit.claim["source_id"] for hit in page.hits]


def test_abbreviation_finds_the_expanded_term(kb):
    page = kb.search(SearchRequest(q="TRD"))
    assert page.total >= 3
    assert set(ids(page)[:3]) <= {"zarate2006randomized", "fda2019spravato"}
    assert {"id": "trd", "label": "treatment-resistant depression", "kind": "condition"} in page.expanded_terms


def test_condition_filter_includes_narrower_terms(kb):
    page = kb.search(SearchRequest(filters={"condition": ("depression",)}, limit=50))
    sources = set(ids(page))
    # TRD (Zarate, FDA) and MDD (Berman) sit below depressive disorders
    assert {"zarate2006randomized", "fda2019spravato", "berman2000antidepressant"} <= sources
    assert "feder2014efficacy" not in sources


def test_every_hit_carries_its_source_and_locator(kb):
    hit = kb.search(SearchRequest(q="PTSD midazolam")).hits[0]
    assert hit.claim["source_id"] == "feder2014efficacy"
    assert hit.source["citation"].startswith("Feder A, Parides MK, Murrough JW.")
    assert hit.source["links"]["doi"] == "https://doi.org/10.1001/jamapsychiatry.2014.62"
    assert hit.claim["locator"]["text"] == "claims, item 1"
    assert "<mark>PTSD</mark>" in hit.highlight


def test_unconfirmed_identifiers_are_not_shown_as_fact(kb):
    hit = next(h for h in kb.search(SearchRequest(q="TRD", limit=20)).hits
               if h.source["id"] == "zarate2006randomized")
    assert hit.source["pmid"] is None  # marked unverified in the corpus
    assert hit.source["unconfirmed_identifiers"] == {"pmid": "16894061"}
    assert "pubmed" not in hit.source["links"]


def test_facets_count_all_matches(kb):
    page = kb.search(SearchRequest(q="ketamine", limit=1))
    counts = {v.id: v.count for v in page.facets["condition"]}
    assert counts["trd"] >= 2 and counts["ptsd"] >= 2
    assert page.total > 1 and len(page.hits) == 1


def test_pagination_and_a_page_past_the_end(kb):
    first = kb.search(SearchRequest(q="ketamine", limit=2, page=1))
    second = kb.search(SearchRequest(q="ketamine", limit=2, page=2))
    assert not {h.claim["id"] for h in first.hits} & {h.claim["id"] for h in second.hits}
    past = kb.search(SearchRequest(q="ketamine", limit=2, page=99))
    assert past.hits == () and past.total == first.total


def test_sort_by_evidence_and_by_year(kb):
    newest = kb.search(SearchRequest(q="ketamine", sort="newest", limit=50))
    years = [h.source["year"] for h in newest.hits]
    assert years == sorted(years, reverse=True)
    evidence = kb.search(SearchRequest(q="ketamine", sort="evidence", limit=50))
    levels = [h.source["evidence_level"] or 9 for h in evidence.hits]
    assert levels == sorted(levels)


def test_year_range_and_stance_filters(kb):
    page = kb.search(SearchRequest(q="ketamine", year_from=2010, year_to=2015, limit=50))
    assert {h.source["year"] for h in page.hits} <= set(range(2010, 2016))
    limits = kb.search(SearchRequest(q="ketamine", stance=("limits",), limit=50))
    assert limits.hits and all(h.claim["stance"] == "limits" for h in limits.hits)


def test_did_you_mean_for_a_misspelling(kb):
    assert kb.search(SearchRequest(q="ketamin")).did_you_mean == "ketamine"
    assert kb.search(SearchRequest(q="postraumatic")).did_you_mean == "posttraumatic"
    assert kb.search(SearchRequest(q="ketamine")).did_you_mean is None


@pytest.mark.parametrize("text", ["AND OR", '"', "*", "NOT", "k*"])
def test_queries_that_mean_nothing_are_refused_with_advice(kb, text):
    with pytest.raises(BadQuery, match="for example"):
        kb.search(SearchRequest(q=text))


def test_empty_query_without_filters_is_refused(kb):
    with pytest.raises(BadQuery, match="Empty search"):
        kb.search(SearchRequest(q="  "))


def test_unknown_filter_value_lists_valid_values(kb):
    with pytest.raises(BadQuery, match="valid values are .*trd"):
        kb.search(SearchRequest(q="ketamine", filters={"condition": ("nonsense",)}))


def test_limits_are_enforced(kb):
    with pytest.raises(BadQuery, match="between 1 and 100"):
        kb.search(SearchRequest(q="ketamine", limit=1000))
    with pytest.raises(BadQuery, match="limit is 1000"):
        kb.search(SearchRequest(q="k" * 1001))


def test_unknown_source_and_claim_are_not_found(kb):
    with pytest.raises(NotFound):
        kb.source("nobody1999")
    with pytest.raises(NotFound):
        kb.claim("nobody1999-0123456789")


def test_source_lookup_by_doi(kb):
    assert kb.source("doi:10.1001/jamapsychiatry.2014.62").id == "feder2014efficacy"


def test_related_claims_come_from_other_sources(kb):
    claim = next(c for c in kb.claims_for("zarate2006randomized") if "TRD" in c.text)
    related = kb.related_claims(claim)
    assert related and all(other.source_id != "zarate2006randomized" for other, _ in related)


def test_a_query_the_corpus_does_not_hold_is_a_weak_match_without_a_respelling(kb):
    # "cures" and "cancer" are in no claim: the closest hits have only "ketamine" (1 of 3)
    page = kb.search(SearchRequest(q="ketamine cures cancer"))
    assert page.total and page.weak_match is True
    assert page.did_you_mean is None  # no "ketamine care center": it would match no better
    assert page.to_dict()["weak_match"] is True
    assert kb.search(SearchRequest(q="ketamine")).weak_match is False
    # a vocabulary term counts as matched when the claim is tagged with it (TRD, spelled out)
    assert kb.search(SearchRequest(q="ketamine TRD")).weak_match is False


def test_zero_matches_are_not_called_weak(kb):
    page = kb.search(SearchRequest(q="xylophone"))
    assert page.total == 0 and page.weak_match is False


def test_related_claims_share_a_subject_never_only_a_design(kb):
    from kb.knowledge_base import SUBJECT_KINDS

    for claim in kb.store.claims[:40]:
        mine = {t for kind in SUBJECT_KINDS for t in claim.tags.get(kind, ())}
        for other, shared in kb.related_claims(claim):
            theirs = {t for kind in SUBJECT_KINDS for t in other.tags.get(kind, ())}
            assert shared and set(shared) == mine & theirs
            designs = set(claim.tags.get("design", ()))
            assert not designs & set(shared)  # a shared design is never given as the reason
