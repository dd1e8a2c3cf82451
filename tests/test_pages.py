"""The HTML pages: search with facets, sort and pages; source, claim and map pages; bad input."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from kb.build import build
from kb.config import Settings
from kb.web import create_app

PAGES = ["/", "/search?q=ketamine", "/search?q=ketamime", "/sources/zarate2006randomized",
         "/map", "/map?columns=intervention", "/search?q=ketamine&sort=random", "/sources/nobody1999"]


class PageParser(HTMLParser):
    """Collects tags with their attributes, and the text, of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: bytes) -> PageParser:
    parser = PageParser()
    parser.feed(html.decode())
    return parser


def links(page: PageParser) -> list[str]:
    return [attrs["href"] for tag, attrs in page.tags if tag == "a" and "href" in attrs]


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# --- search page -------------------------------------------------------------------------------


def test_home_page_has_a_labelled_search_box_and_browse_links(client):
    response = client.get("/")
    assert response.status_code == 200
    page = parse(response.data)
    inputs = [attrs for tag, attrs in page.tags if tag == "input" and attrs.get("name") == "q"]
    assert inputs and inputs[0]["id"] == "q" and inputs[0]["maxlength"] == "1000"
    assert ("label", {"for": "q", "class": ""}) in page.tags
    assert any(href.startswith("/search?condition=") for href in links(page))


def test_results_show_claim_stance_level_tags_citation_and_links(client):
    html = client.get("/search?q=TRD").data.decode()
    assert '<mark>' in html
    assert 'class="stance stance-supports"' in html
    assert 'class="level level-2"' in html and "randomized controlled trial" in html
    assert "Feder A, Parides MK, Murrough JW." in html or "Zarate CA" in html
    assert 'href="https://doi.org/10.1001/archpsyc.63.8.856"' in html
    # zarate2006randomized's PMID is unverified: shown as unconfirmed, never as a PubMed link
    assert "pubmed.ncbi.nlm.nih.gov/16894061" not in html
    assert re.search(r"PMID 16894061 <em class=\"flag\">unconfirmed</em>", html)


def test_tags_and_facets_are_links_that_add_a_filter_and_keep_the_query(client):
    page = parse(client.get("/search?q=ketamine").data)
    facet_links = [h for h in links(page) if "condition=" in h]
    assert facet_links
    params = query(facet_links[0])
    assert params["q"] == ["ketamine"] and params["condition"]
    filtered = client.get(facet_links[0])
    assert filtered.status_code == 200
    html = filtered.data.decode()
    assert 'class="facet-link selected"' in html
    assert 'aria-label="Active filters"' in html


def test_facet_counts_and_year_range_form(client):
    html = client.get("/search?q=ketamine").data.decode()
    for kind in ("Condition", "Mechanism", "Intervention", "Design"):
        assert f">{kind}</h3>" in html
    assert re.search(r'<span class="count">\d+<span class="visually-hidden"> claims', html)
    assert 'name="year_from"' in html and 'name="year_to"' in html
    narrowed = client.get("/search?q=ketamine&year_from=2010&year_to=2020").data.decode()
    assert "2000" not in re.sub(r"<[^>]+>", " ", narrowed.split('class="hits"')[1].split("</ol>")[0])


def test_filter_by_label_or_synonym_resolves_to_the_term(client):
    html = client.get("/search?condition=TRD").data.decode()
    assert "treatment-resistant depression" in html
    assert "condition=trd" in html  # links carry the resolved id


def test_sort_links_and_pagination_keep_every_state_in_the_url(client):
    page = parse(client.get("/search?q=ketamine&condition=depressive-disorders&limit=2").data)
    hrefs = links(page)
    newest = next(h for h in hrefs if "sort=newest" in h)
    assert query(newest)["condition"] == ["depressive-disorders"] and query(newest)["q"] == ["ketamine"]
    following = next(h for h, (tag, attrs) in ((a["href"], (t, a)) for t, a in page.tags if t == "a" and "href" in a)
                     if attrs.get("rel") == "next")
    assert query(following)["page"] == ["2"] and query(following)["limit"] == ["2"]
    second = client.get(following).data.decode()
    assert 'aria-current="page"' in second and "3–4 of" in second


def test_sorting_by_evidence_and_newest(client):
    newest = client.get("/search?q=ketamine&sort=newest").data.decode()
    years = [int(y) for y in re.findall(r"\. (\d{4});", newest)]
    assert years == sorted(years, reverse=True)
    assert 'aria-current="true" class="current">newest' in newest
    assert client.get("/search?q=ketamine&sort=evidence").status_code == 200


def test_did_you_mean_keeps_the_filters(client):
    html = client.get("/search?q=ketamime&condition=trd").data.decode()
    match = re.search(r'Did you mean <a href="([^"]+)"[^>]*>ketamine</a>', html)
    assert match
    params = query(match.group(1).replace("&amp;", "&"))
    assert params == {"q": ["ketamine"], "condition": ["trd"]}


@pytest.mark.parametrize(("path", "expected"), [
    ("/search?q=ketamine&sort=random", "relevance, evidence, newest"),
    ("/search?q=ketamine&condition=nonsense", "valid values are"),
    ("/search?q=ketamine&page=two", "page must be a whole number"),
    ("/search?q=" + "a" * 1001, "the limit is 1000"),
    ("/search?sort=random", "relevance, evidence, newest"),
])
def test_bad_input_gives_a_400_page_that_keeps_the_search_box(client, path, expected):
    response = client.get(path)
    assert response.status_code == 400
    html = response.data.decode()
    assert expected in html
    assert 'role="alert"' in html and 'id="q"' in html


@pytest.mark.parametrize("path", ["/api/v1/search?q=" + "a" * 1001, "/api/v1/suggest?q=" + "a" * 1001,
                                  "/api/v1/suggest?q=ket&limit=many", "/api/v1/suggest?q=ket&limit=50",
                                  "/api/v1/sources/feder2014efficacy/export?format=docx"])
def test_bad_api_input_is_a_json_400(client, path):
    response = client.get(path)
    assert response.status_code == 400
    assert response.get_json()["ok"] is False and response.get_json()["status"] == 400


def test_unknown_pages_are_friendly_404s_with_a_search_box(client):
    response = client.get("/sources/nobody1999?q=ketamine")
    assert response.status_code == 404
    html = response.data.decode()
    assert "Not found" in html and 'id="q"' in html and 'value="ketamine"' in html


# --- suggestions -------------------------------------------------------------------------------


def test_suggest_returns_terms_by_label_or_synonym_and_titles(client):
    body = client.get("/api/v1/suggest?q=ket").get_json()
    assert body["ok"] is True and body["query"] == "ket"
    kinds = {(s["type"], s["label"]) for s in body["suggestions"]}
    assert ("term", "ketamine") in kinds
    assert any(kind == "source" for kind, _ in kinds)
    trd = client.get("/api/v1/suggest?q=TRD").get_json()["suggestions"][0]
    assert trd == {"type": "term", "kind": "condition", "id": "trd",
                   "label": "treatment-resistant depression", "matched": "TRD", "claims": trd["claims"]}
    assert client.get("/api/v1/suggest?q=").get_json()["suggestions"] == []
    assert len(client.get("/api/v1/suggest?q=d&limit=2").get_json()["suggestions"]) == 2


def test_suggest_facade_ranks_whole_phrase_prefixes_first(kb):
    found = kb.suggest("depr", 10)
    assert found[0]["label"] == "depressive disorders"
    assert all(s["type"] == "term" for s in found[:2])
    assert kb.suggest("nasal spr")[0]["id"] == "esketamine"


# --- source, claim and map pages ---------------------------------------------------------------


def test_source_page_has_citations_copy_buttons_exports_and_verification(client):
    html = client.get("/sources/zarate2006randomized").data.decode()
    assert 'id="cite-vancouver"' in html and 'id="cite-apa"' in html
    assert html.count('class="copy"') == 2
    for fmt in ("bibtex", "ris", "csl-json"):
        assert f"/api/v1/sources/zarate2006randomized/export?format={fmt}" in html
    assert "Zarate, C. A., Jr., Singh, J. B., &amp; Carlson, P. J. (2006)." in html
    verification = html.split('class="verification"')[1]
    # each mark in words (issue 14), the curator's mark kept in the title
    assert re.search(r"Authors</th>.*?<span class=\"mark-no\" title=\"Curator's mark: partial\">Not confirmed: "
                     r"only partly checked</span>", verification, re.DOTALL)
    assert re.search(r"PMID</th>.*?<span class=\"mark-no\" title=\"Curator's mark: unverified\">Not confirmed</span>",
                     verification, re.DOTALL)
    assert re.search(r"DOI</th>.*?<span class=\"mark-ok\" title=\"Curator's mark: verified-secondary\">Confirmed "
                     r"from a secondary source</span>", verification, re.DOTALL)


def test_source_page_groups_claims_by_stance(client):
    html = client.get("/sources/feder2014efficacy").data.decode()
    supports = html.index("What it supports")
    limits = html.index("What limits or contradicts it")
    assert supports < html.index("reduced PTSD symptom severity") < limits
    assert limits < html.index("short-lived after a single infusion")


def test_source_page_accepts_a_doi(client):
    assert client.get("/sources/doi:10.1001/jamapsychiatry.2014.62").status_code == 200


def test_claim_page_shows_source_locator_and_related_claims(client, kb):
    claim = kb.claims_for("feder2014efficacy")[0]
    html = client.get(f"/claims/{claim.id}").data.decode()
    assert claim.text in html
    assert str(claim.locator) in html
    assert 'href="/sources/feder2014efficacy"' in html
    assert "Related claims from other sources" in html


def test_map_cells_link_to_filtered_searches_and_are_shaded_by_class(client, kb):
    html = client.get("/map").data.decode()
    data = kb.evidence_map()
    cell = data["cells"][0]
    assert f'href="/search?condition={cell["row"]}&amp;mechanism={cell["column"]}"' in html
    assert re.search(r'class="cell shade-[1-5] best-(\d|none)"', html)
    assert "style=" not in html
    switched = client.get("/map?columns=intervention").data.decode()
    assert "Claims by condition (rows) and intervention (columns)" in switched
    assert client.get("/map?columns=nonsense").status_code == 400


def test_evidence_map_link_finds_the_counted_claims(client, kb):
    cell = kb.evidence_map()["cells"][0]
    body = client.get(f"/api/v1/search?condition={cell['row']}&mechanism={cell['column']}&expand=false").get_json()
    assert body["total"] >= cell["claims"]


# --- security, escaping, offline, accessibility ----------------------------------------------


def test_query_text_is_escaped_everywhere(client):
    evil = "%3Cscript%3Ealert(1)%3C/script%3E%22%27%26"
    for path in (f"/search?q={evil}", f"/search?q={evil}&sort=bad", f"/sources/nobody?q={evil}",
                 f"/search?condition={evil}"):
        html = client.get(path).data.decode()
        assert "<script>alert" not in html
        assert '"\'&' not in html


@pytest.fixture(scope="module")
def hostile_client(tmp_path_factory: pytest.TempPathFactory):
    """A corpus whose title, summary and claims hold markup, quotes and ampersands."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = root / "corpus"
    shutil.copytree(Path(__file__).parent / "data" / "corpus", corpus)
    with (corpus / "references" / "mini.bib").open("a", encoding="utf-8") as bib:
        bib.write("""
@article{evil2020script,
  author       = {Mallory, E. and O'Brien, Q.},
  title        = {<script>alert(1)</script> & "quoted" ketamine <img src=x onerror=alert(2)>},
  journal      = {Journal of <b>Bold</b> & Co},
  year         = {2020},
  verification = {title: verified; authors: verified; venue: verified}
}
""")
    (corpus / "summaries" / "evil2020script.md").write_text("""+++
source = "evil2020script"
design = "rct"
tags = ["trd", "ketamine"]
+++

A summary with <script>alert(3)</script> & "quotes".

## Claims

- Ketamine <script>alert(4)</script> helped & "worked" in TRD.
""", encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    build(settings)
    app = create_app(settings)
    app.config["TESTING"] = True
    return app.test_client()


def test_markup_in_corpus_text_is_rendered_inert(hostile_client):
    claim_id = hostile_client.get("/api/v1/sources/evil2020script").get_json()["source"]["claims"][0]["id"]
    for path in ("/search?q=ketamine+helped", "/sources/evil2020script", f"/claims/{claim_id}",
                 "/search?q=worked&condition=trd", "/map"):
        response = hostile_client.get(path)
        assert response.status_code == 200, path
        html = response.data.decode()
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>Bold" not in html, path
    html = hostile_client.get("/sources/evil2020script").data.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quoted&#34;" in html
    body = hostile_client.get("/api/v1/suggest?q=scrip").get_json()
    assert body["suggestions"][0]["label"].startswith("<script>")  # JSON carries the text; the page escapes


def test_pages_have_no_inline_script_style_or_external_resources(client):
    for path in PAGES:
        page = parse(client.get(path).data)
        for tag, attrs in page.tags:
            assert not any(name.startswith("on") for name in attrs), (path, tag, attrs)
            assert "style" not in attrs, (path, tag)
            assert tag != "style", path
            if tag == "script":
                assert attrs.get("src", "").startswith("/static/"), path
            if tag == "link" and attrs.get("rel") == "stylesheet":
                assert attrs["href"].startswith("/static/"), path
            if tag in {"img", "iframe", "object", "embed"}:
                pytest.fail(f"{path} loads an external resource: {tag}")


def test_pages_have_landmarks_skip_link_and_one_h1(client):
    for path in PAGES:
        page = parse(client.get(path).data)
        tags = [tag for tag, _ in page.tags]
        assert tags.count("main") == 1 and "header" in tags and "nav" in tags and "footer" in tags, path
        assert tags.count("h1") == 1, path
        first_link = next(attrs for tag, attrs in page.tags if tag == "a")
        assert first_link == {"class": "skip-link", "href": "#main"}, path
        assert ("html", {"lang": "en"}) in page.tags


@pytest.mark.parametrize("path", ["/", "/search?q=ketamine", "/sources/feder2014efficacy", "/map",
                                  "/static/style.css", "/static/app.js", "/sources/nobody1999",
                                  "/search?q=ketamine&sort=bad"])
def test_security_headers_on_pages_static_files_and_errors(client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"]


def test_pages_and_static_files_revalidate_with_etags(client):
    for path in ("/search?q=ketamine", "/static/style.css", "/api/v1/suggest?q=ket"):
        first = client.get(path)
        assert first.headers.get("ETag"), path
        again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304, path


def test_static_css_shades_every_map_class_the_template_uses(client):
    css = client.get("/static/style.css").data.decode()
    for shade in range(1, 6):
        assert f".shade-{shade} " in css
    assert "@media (max-width" in css and ":focus-visible" in css


def test_the_search_page_says_when_no_claim_matches_strongly(client):
    weak = client.get("/search?q=ketamine+cures+cancer").data.decode()
    assert "No claim matches all of this strongly; the closest are below" in weak
    assert "Did you mean" not in weak
    strong = client.get("/search?q=ketamine").data.decode()
    assert "No claim matches all of this strongly" not in strong
