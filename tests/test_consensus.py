"""The consensus bar (kb.consensus): weighing, the API route and the search page's bar."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import jsonschema_rs
import pytest

from kb.consensus import (
    LEVEL_WEIGHTS,
    MIN_SOURCES,
    Consensus,
    consensus,
    is_question,
    level_weight,
    question_terms,
    sample_size,
    size_factor,
)
from kb.models import Source
from kb.query import ClaimHit, SearchPage, SearchRequest
from kb.web import create_app

QUESTION = "Does ketamine reduce depressive symptoms?"
UNRELATED = "Is aspirin good for migraine headaches?"


# --- the library ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    (QUESTION, True), ("ketamine works?", True), ("should I take ketamine", True),
    ("How fast does ketamine act", True), ("ketamine depression", False), ("", False),
])
def test_is_question(text, expected):
    assert is_question(text) is expected


def test_question_terms_drop_the_question_word_and_mark():
    assert question_terms(QUESTION) == "ketamine reduce depressive symptoms"
    assert question_terms("ketamine?") == "ketamine"
    assert question_terms("Does?") == "Does"


@pytest.mark.parametrize(("field", "claim", "expected"), [
    ("18 randomized", "", 18), ("9 studies, 368 patients", "", 368), ("7 completers", "", 7),
    ("41", "", 41), ("about 1,148 participants (unverified)", "", 1148),
    ("99 (0.1 mg/kg n=18; 0.2 n=20)", "", 99), ("n/a (ASPIRE I n=226; ASPIRE II n=230)", "", 226),
    ("60 of 288 identified articles met inclusion criteria", "", None), ("", "", None),
    ("", "In a trial of 120 patients, response doubled.", 120), ("", "Response rose (n = 64).", 64),
    ("", "Ketamine 0.5 mg/kg improved mood in 24 hours.", None),
])
def test_sample_size_is_read_from_the_field_or_the_claim(field, claim, expected):
    assert sample_size(field, claim) == expected


def test_weights_rank_designs_and_sample_sizes():
    assert LEVEL_WEIGHTS[1] == 5 and LEVEL_WEIGHTS[8] == 1
    weights = [level_weight(level) for level in range(1, 9)]
    assert weights == sorted(weights, reverse=True) and level_weight(None) == 1
    assert size_factor(None) == 1.0 and size_factor(100) == pytest.approx(1.0)
    assert size_factor(3) == 0.5 and size_factor(10**6) == 2.0
    assert size_factor(10) < size_factor(1000)


def test_the_mini_corpus_splits_by_stance_one_vote_per_source(kb):
    result = consensus(kb, SearchRequest(q=QUESTION))
    assert isinstance(result, Consensus) and result.enough
    assert result.searched == "ketamine reduce depressive symptoms"
    supports, limits, contradicts = result.tallies
    assert (supports.stance, limits.stance, contradicts.stance) == ("supports", "limits", "contradicts")
    assert supports.sources >= MIN_SOURCES and limits.sources >= 1 and contradicts.sources == 0
    assert supports.weight > limits.weight
    assert sum(t.share for t in result.tallies) == pytest.approx(1.0)
    # zarate2006randomized makes several supporting claims but casts one "supports" vote
    zarate = [v for v in supports.votes if v.source_id == "zarate2006randomized"]
    assert len(zarate) == 1 and zarate[0].claims > 1
    assert len({v.source_id for v in supports.votes}) == len(supports.votes)
    # weights: level weight times the sample-size factor read from the summaries' sample_size
    feder = next(v for v in supports.votes if v.source_id == "feder2014efficacy")
    assert feder.sample_size == 41 and feder.weight == pytest.approx(4 * size_factor(41))
    duman = next(v for v in supports.votes if v.source_id == "duman2012synaptic")
    assert duman.sample_size is None and duman.weight == pytest.approx(1.0)
    assert result.strongest[0].evidence_level == 2 and result.sample_sizes_known == 3
    assert [v.weight for v in result.strongest] == sorted((v.weight for v in result.strongest), reverse=True)
    body = result.to_dict()
    assert body["weighting"]["sample_size_used"] is True and body["weighting"]["level_weights"]["1"] == 5


def test_an_unrelated_question_is_not_enough_evidence(kb):
    result = consensus(kb, SearchRequest(q=UNRELATED))
    assert not result.enough and result.sources < MIN_SOURCES
    assert "Not enough evidence" in result.message


def test_an_empty_question_is_a_bad_query(kb):
    from kb.errors import BadQuery
    with pytest.raises(BadQuery):
        consensus(kb, SearchRequest(q="  ?  "))


def _hit(source: Source, n: int, stance: str, score: float) -> ClaimHit:
    claim = {"id": f"{source.id}-{n:010x}", "text": f"claim {n}", "stance": stance}
    card = {"id": source.id, "title": source.title, "year": source.year, "citation": source.title,
            "evidence_level": source.evidence_level, "design_label": source.design or None}
    return ClaimHit(claim=claim, source=card, score=score, highlight=claim["text"])


def test_many_claims_of_one_trial_do_not_outvote_one_meta_analysis():
    meta = Source(id="meta2020", type="article", title="A meta-analysis", year=2020,
                  design="meta-analysis", evidence_level=1, sample_size="12 studies, 900 patients")
    series = Source(id="case2019", type="article", title="A case series", year=2019,
                    design="case-series", evidence_level=5, sample_size="12 patients")
    hits = [_hit(series, n, "supports", 10.0 - n / 10) for n in range(6)] + [_hit(meta, 99, "contradicts", 9.0)]
    page = SearchPage(query="q", total=len(hits), page=1, limit=100, sort="relevance", hits=tuple(hits),
                      facets={}, years={}, filters={})
    fake: Any = SimpleNamespace(search=lambda request: page, settings=SimpleNamespace(max_page_size=100),
                                store=SimpleNamespace(source_by_id={s.id: s for s in (meta, series)}))
    result = consensus(fake, SearchRequest(q="does it work?"))
    supports, _, contradicts = result.tallies
    assert supports.sources == 1 and supports.votes[0].claims == 6
    assert contradicts.weight > supports.weight
    assert result.strongest[0].source_id == "meta2020" and not result.enough  # 2 sources < 3


# --- the API ------------------------------------------------------------------------------------


def _validate(client, body: dict[str, Any], status: str) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    response = document["paths"]["/api/v1/consensus"]["get"]["responses"][status]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]}).validate(body)


def test_the_api_answers_a_question_and_validates(client):
    response = client.get("/api/v1/consensus?q=" + quote(QUESTION))
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is True and body["enough"] is True
    assert [t["stance"] for t in body["tallies"]] == ["supports", "limits", "contradicts"]
    assert body["strongest"][0]["source_id"] and "explanation" in body["weighting"]
    _validate(client, body, "200")


def test_the_api_says_not_enough_evidence(client):
    body = client.get("/api/v1/consensus?q=" + quote(UNRELATED)).get_json()
    assert body["ok"] is True and body["enough"] is False and body["strongest"] == []
    _validate(client, body, "200")


@pytest.mark.parametrize("url", ["/api/v1/consensus", "/api/v1/consensus?q=", "/api/v1/consensus?q=%3F",
                                 "/api/v1/consensus?q=ketamine&condition=nonsense",
                                 "/api/v1/consensus?q=" + "x" * 2000])
def test_the_api_rejects_a_bad_question_in_the_one_error_shape(client, url):
    response = client.get(url)
    assert response.status_code == 400
    body = response.get_json()
    assert body["ok"] is False and body["status"] == 400 and body["error"]
    _validate(client, body, "400")


def test_the_route_is_rate_limited_and_admitted_as_a_search(settings):
    from kb.web.admission import Admission
    from kb.web.limits import SEARCH_RULES
    assert "/api/v1/consensus" in SEARCH_RULES
    app = create_app(replace(settings, search_slots=1, heavy_queue=0, search_rate_limit=""))
    admission: Admission = app.extensions["kb_admission"]
    admission.searches.enter()  # a search holds the only slot
    try:
        assert app.test_client().get("/api/v1/consensus?q=" + quote(QUESTION)).status_code == 503
    finally:
        admission.searches.leave()


def test_the_api_and_the_search_page_share_the_search_rate_limit(settings):
    client = create_app(replace(settings, search_rate_limit="2 per minute")).test_client()
    assert client.get("/api/v1/consensus?q=" + quote(QUESTION)).status_code == 200
    assert client.get("/search?q=ketamine").status_code == 200
    refused = client.get("/api/v1/consensus?q=" + quote(QUESTION))
    assert refused.status_code == 429 and refused.get_json()["status"] == 429
    assert refused.headers["Retry-After"]


# --- the search page ----------------------------------------------------------------------------


def test_the_search_page_shows_the_bar_for_a_question(client):
    html = client.get("/search?q=" + quote(QUESTION)).get_data(as_text=True)
    assert 'class="consensus"' in html and '<svg class="consensus-bar"' in html
    assert "Supports: " in html and "% of the weight from" in html  # the bar's text alternative
    assert 'class="cb-supports"' in html and "How this is weighed" in html
    assert "meta-analysis above a case series" in html
    assert 'href="/sources/feder2014efficacy"' in html  # the strongest studies link to their pages
    assert html.index('class="consensus"') < html.index('class="hits"')
    assert "style=" not in html.split('class="consensus"', 1)[1].split("</section>", 1)[0]  # CSP


def test_no_bar_for_a_query_that_is_no_question(client):
    html = client.get("/search?q=ketamine").get_data(as_text=True)
    assert 'class="consensus"' not in html


def test_the_page_says_not_enough_evidence(client):
    html = client.get("/search?q=" + quote("Does ketamine cure migraine?")).get_data(as_text=True)
    assert 'class="consensus"' in html and "Not enough evidence." in html
    assert '<svg class="consensus-bar"' not in html


def test_the_question_is_escaped(client):
    evil = 'Does <script>alert(1)</script> "ketamine" work?'
    html = client.get("/search?q=" + quote(evil)).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    section = html.split('class="consensus"', 1)[1].split("</section>", 1)[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section


# --- a real browser at phone width (the tests/test_browser.py pattern) ----------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).parent / "screenshots"  # git-ignored, as tests/test_browser.py's


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield launched
        launched.close()


@pytest.mark.browser
def test_the_bar_fits_a_phone_without_script_or_csp_violations(browser, live_server):
    context = browser.new_context(viewport={"width": 375, "height": 800}, java_script_enabled=False)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda message: message.type == "error" and problems.append(message.text))
    try:
        tab.goto(live_server + "/search?q=" + quote(QUESTION))
        bar = tab.locator("svg.consensus-bar").bounding_box()
        assert bar is not None and bar["x"] >= 0 and bar["x"] + bar["width"] <= 375 and bar["width"] > 200
        overflow = tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
        assert tab.locator(".consensus-strongest a").count() >= MIN_SOURCES
        assert "supports" in tab.locator(".consensus-counts").inner_text()
        assert not problems, problems
        SCREENSHOTS.mkdir(exist_ok=True)
        tab.locator("section.consensus").screenshot(path=str(SCREENSHOTS / "consensus-phone.png"))
    finally:
        context.close()
