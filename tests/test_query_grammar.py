"""The query language (kb.grammar): parsing, caps, and what each operator does to results."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from kb import searching
from kb.errors import BadQuery
from kb.grammar import Clause, ParsedQuery, QueryLimits, parse
from kb.knowledge_base import QUERY_FIELDS, KnowledgeBase
from kb.query import SearchRequest


def test_words_phrases_and_operators_parse_into_clauses():
    parsed = parse('ketamine "suicidal ideation" +nasal -anesthesia NOT placebo ketam* ketamin~2')
    assert parsed.clauses == (
        Clause("word", "ketamine"), Clause("phrase", "suicidal ideation"),
        Clause("word", "nasal", "must"), Clause("word", "anesthesia", "must_not"),
        Clause("word", "placebo", "must_not"), Clause("prefix", "ketam"),
        Clause("fuzzy", "ketamin", edits=2),
    )
    assert parsed.positive_text() == "ketamine suicidal ideation nasal ketam ketamin"


def test_and_makes_both_sides_required_and_or_is_the_default():
    assert [c.occur for c in parse("ketamine AND suicidal").clauses] == ["must", "must"]
    assert [c.occur for c in parse("ketamine OR suicidal").clauses] == ["should", "should"]


def test_known_fields_are_filters_and_other_colons_are_text():
    parsed = parse('condition:ptsd ketamine design:"randomized trial" note:this', QUERY_FIELDS)
    assert parsed.filters == (("condition", "ptsd"), ("design", "randomized trial"))
    assert [c.text for c in parsed.clauses] == ["ketamine", "note:this"]


def test_punctuation_and_unmatched_quotes_never_fail_to_parse():
    assert [c.text for c in parse('(ketamine) ? ; "open phrase').clauses] == [
        "(ketamine)", "open phrase"]


@pytest.mark.parametrize(("text", "message"), [
    ("ketamine~3", "the most is 2"),
    ("ketamine~9 esketamine", "the most is 2"),
    ("k*", "at least 2 letters"),
    ("*", "alone matches everything"),
    ("a~1 b~1 c~1 d~1 e~1", "words with '~'; the most is 4"),
    ("ab* cd* ef* gh* ij*", "words with '\\*'; the most is 4"),
    (" ".join(f"w{i}" for i in range(33)), "33 words and phrases; the most is 32"),
    ('"' + " ".join(["word"] * 13) + '"', "more than 12 words"),
    ("-ketamine NOT esketamine", "only excludes words"),
    ("AND OR NOT", "Nothing searchable"),
    ("-condition:ptsd ketamine", "cannot be excluded"),
])
def test_queries_past_a_cap_are_refused_with_the_fix(text, message):
    with pytest.raises(BadQuery, match=message) as caught:
        parse(text, QUERY_FIELDS)
    assert "for example" in str(caught.value)


def test_free_text_of_the_program_itself_is_never_read_as_syntax():
    parsed = ParsedQuery.of_words('Ketamine: a review -- "NOT" AND ' + "word " * 50)
    assert all(c.kind == "word" and c.occur == "should" for c in parsed.clauses)
    assert len(parsed.clauses) == 53


@given(st.text(max_size=300))
@hypothesis_settings(max_examples=400, deadline=None)
def test_any_text_parses_or_is_refused_with_advice(text):
    try:
        parsed = parse(text, QUERY_FIELDS)
    except BadQuery as error:
        assert "for example" in str(error) or "type more letters" in str(error)
        return
    limits = QueryLimits()
    assert len(parsed.clauses) <= limits.max_clauses
    assert sum(c.kind == "fuzzy" for c in parsed.clauses) <= limits.max_fuzzy
    assert all(c.edits <= limits.max_edits for c in parsed.clauses)


# --- what the operators do to results (mini corpus) ---------------------------------------

def _ids(kb: KnowledgeBase, q: str, **kwargs: object) -> list[str]:
    page = kb.search(SearchRequest(q=q, limit=100, **kwargs))  # type: ignore[arg-type]
    return [hit.claim["id"] for hit in page.hits]


def _texts(kb: KnowledgeBase, q: str) -> list[str]:
    return [hit.claim["text"].lower() for hit in kb.search(SearchRequest(q=q, limit=100)).hits]


def test_exclusion_removes_claims_with_the_word(kb):
    assert any("placebo" in t for t in _texts(kb, "ketamine"))
    texts = _texts(kb, "ketamine -placebo")
    assert texts and not any("placebo" in t for t in texts)
    assert _texts(kb, "ketamine NOT placebo") == texts


def test_required_words_must_all_match(kb):
    # A word matches in the claim, its source's title or its tags, so compare result sets.
    both = set(_ids(kb, "+ketamine +placebo"))
    assert both == set(_ids(kb, "+ketamine")) & set(_ids(kb, "+placebo"))
    assert both and both < set(_ids(kb, "ketamine placebo"))
    assert set(_ids(kb, "ketamine AND placebo")) == both


def test_phrase_needs_the_words_together(kb):
    texts = _texts(kb, '"saline placebo"')  # in the claim, or its source's title or tags
    assert texts and re.search(r"saline placebo", texts[0])
    assert set(_ids(kb, "\"saline placebo\"")) <= set(_ids(kb, "+saline +placebo")) < set(_ids(kb, "saline placebo"))


def test_prefix_and_typos_find_the_word(kb):
    assert set(_ids(kb, "ketam*")) >= set(_ids(kb, "ketamine"))
    assert _ids(kb, "ketamine~1") and set(_ids(kb, "ketamne~1")) >= set(_ids(kb, "ketamine"))
    assert _ids(kb, "ketamne") == []  # without '~' a typo matches nothing


def test_typed_filters_equal_the_filter_parameters(kb):
    typed = kb.search(SearchRequest(q="ketamine condition:ptsd year:2000-2030", limit=100))
    given_ = kb.search(SearchRequest(q="ketamine", filters={"condition": ("ptsd",)},
                                     year_from=2000, year_to=2030, limit=100))
    assert [h.claim["id"] for h in typed.hits] == [h.claim["id"] for h in given_.hits]
    assert typed.filters["condition"] == ["ptsd"] and typed.filters["year_from"] == 2000
    with pytest.raises(BadQuery, match="valid values are"):
        kb.search(SearchRequest(q="ketamine condition:nonsense"))
    with pytest.raises(BadQuery, match="year:20x0 is not a year"):
        kb.search(SearchRequest(q="ketamine year:20x0"))


def test_a_prefix_that_stands_for_too_many_words_is_refused(kb, settings):
    tight = KnowledgeBase.open(settings)
    try:
        parsed = parse("th*", limits=QueryLimits(max_expansion=1))
        request = SearchRequest(q="th*", parsed=parsed)
        with pytest.raises(BadQuery, match="more than 1 words in the index: type more letters"):
            searching.run_search(tight.build, request)
    finally:
        tight.close()


def test_a_search_past_its_time_budget_answers_partial_and_is_not_cached(settings):
    hurried = KnowledgeBase.open(replace(settings, search_time_budget_s=1e-9))
    try:
        page = hurried.search(SearchRequest(q="ketamine"))
        assert page.partial and page.to_dict()["partial"] is True
        assert page.total >= 1 and page.hits
        assert hurried.search(SearchRequest(q="ketamine")) is not page  # not served from cache
    finally:
        hurried.close()


def test_a_whole_search_is_not_partial(kb):
    assert kb.search(SearchRequest(q="ketamine")).partial is False


EXPENSIVE_WORDS = ["patients", "study", "effect", "dose", "treatment", "week", "group", "clinical", "severe", "infusion", "single", "rapid", "significant", "scores", "compared", "response", "symptoms", "trial"]


@pytest.mark.parametrize("q", [
    "ketam* depre* pati* resp* ketamin~2 depresion~2 placebo~2 suicidl~2 " + " ".join(EXPENSIVE_WORDS),
    " ".join(f"+w{i}" for i in range(32)),
])
def test_the_most_expensive_accepted_queries_stay_cheap(kb, q):
    started = time.process_time()
    kb.search(SearchRequest(q=q))
    assert time.process_time() - started < 2.0


def test_did_you_mean_respells_words_and_leaves_the_syntax_as_typed(kb):
    page = kb.search(SearchRequest(q="ketamin condition:ptsd -placebo"))
    assert page.did_you_mean == "ketamine condition:ptsd -placebo"
