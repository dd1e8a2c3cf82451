"""Search feeds (/search.atom), the search timeline, and the details of issue 14 item 5.

Feeds are read with feedparser, as a feed reader would, and their structure is checked against
RFC 4287 with ElementTree. The pages are read through Flask's test client.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import MINI_CORPUS

from kb.build import build
from kb.config import Settings
from kb.corpus import summaries
from kb.corpus.importer import import_files
from kb.models import VERIFICATION_MARKS
from kb.progress import progress_bars
from kb.query import SearchPage, SearchRequest
from kb.server import ensure_index
from kb.web import create_app
from kb.web.admission import Admission
from kb.web.pages import MARK_WORDS, SearchState, _verification_rows, timeline

feedparser = pytest.importorskip("feedparser", reason="feedparser is in the test extra")

ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _atom(response) -> ElementTree.Element:
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/atom+xml"
    return ElementTree.fromstring(response.data)


def _check_structure(root: ElementTree.Element) -> None:
    """RFC 4287's required elements: feed id/title/updated/author, each entry's id/title/updated/link."""
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"{ATOM}{name}")) == 1, name
    assert RFC3339.fullmatch(root.findtext(f"{ATOM}updated") or "")
    assert root.find(f"{ATOM}author/{ATOM}name") is not None
    assert root.find(f"{ATOM}link[@rel='self']") is not None
    ids = []
    for entry in root.findall(f"{ATOM}entry"):
        for name in ("id", "title", "updated", "summary"):
            assert len(entry.findall(f"{ATOM}{name}")) == 1, name
        assert RFC3339.fullmatch(entry.findtext(f"{ATOM}updated") or "")
        assert entry.find(f"{ATOM}link[@rel='alternate']") is not None
        ids.append(entry.findtext(f"{ATOM}id"))
    assert len(ids) == len(set(ids))


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The mini corpus with entry dates on two summaries, as a curator would write them."""
    root = tmp_path_factory.mktemp("dated")
    corpus = root / "corpus"
    shutil.copytree(MINI_CORPUS, corpus)
    for name, day in (("feder2014efficacy", "2024-05-01"), ("berman2000antidepressant", '"2025-02-03"')):
        path = corpus / "summaries" / f"{name}.md"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("+++\n", f"+++\nadded = {day}\n", 1), encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", verifier=False, search_rate_limit="")
    build(settings)
    return settings


def test_a_search_feed_is_valid_atom_read_by_a_feed_reader(client):
    response = client.get("/search.atom?q=ketamine")
    assert response.content_type == "application/atom+xml; charset=utf-8"
    _check_structure(_atom(response))
    feed = feedparser.parse(response.data)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert "ketamine" in feed.feed.title
    assert feed.feed.id.endswith("/search.atom?q=ketamine")
    assert feed.entries
    for entry in feed.entries:
        assert entry.link.startswith("http://localhost/sources/")
        assert entry.id == entry.link
        assert entry.updated_parsed is not None
        assert "match this search" in entry.summary or "matches this search" in entry.summary
    # the feed lists the sources the search page finds: one search, two renderings
    page = client.get("/api/v1/search?q=ketamine&limit=100").get_json()
    assert {e.link.rsplit("/", 1)[1] for e in feed.entries} == {h["source"]["id"] for h in page["hits"]}


def test_the_feed_takes_the_search_pages_filters(client):
    feed = feedparser.parse(client.get("/search.atom?q=ketamine&condition=ptsd").data)
    assert feed.entries
    page = client.get("/api/v1/search?q=ketamine&condition=ptsd&limit=100").get_json()
    assert {e.link.rsplit("/", 1)[1] for e in feed.entries} == {h["source"]["id"] for h in page["hits"]}
    assert client.get("/search.atom?q=ketamine&condition=nonsense").status_code == 400
    assert client.get("/search.atom?q=ketamine&year_from=2020&year_to=2000").status_code == 400
    assert client.get("/search.atom").status_code == 400  # no search: the page's message


def test_feed_text_is_escaped(client):
    response = client.get("/search.atom", query_string={"q": 'ketamine <script>&"x'})
    root = _atom(response)
    assert b"<script>" not in response.data
    assert root.findtext(f"{ATOM}title") == 'Evidence KB: “ketamine <script>&"x”'
    assert not feedparser.parse(response.data).bozo


def test_newest_evidence_comes_first_and_undated_entries_say_so(dated):
    client = create_app(dated).test_client()
    root = _atom(client.get("/search.atom?q=ketamine"))
    _check_structure(root)
    entries = root.findall(f"{ATOM}entry")
    ids = [e.findtext(f"{ATOM}id").rsplit("/", 1)[1] for e in entries]
    assert ids[:2] == ["berman2000antidepressant", "feder2014efficacy"]
    assert entries[0].findtext(f"{ATOM}updated") == "2025-02-03T00:00:00Z"
    assert entries[1].findtext(f"{ATOM}updated") == "2024-05-01T00:00:00Z"
    manifest = json.loads(next((dated.index_dir / "builds").glob("*/manifest.json")).read_text())
    built = datetime.fromisoformat(manifest["built_at"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for entry in entries[2:]:  # no entry date recorded: the build time stands in, and says so
        assert entry.findtext(f"{ATOM}updated") == built
        assert "not recorded" in entry.findtext(f"{ATOM}summary")
    assert "not recorded" not in entries[0].findtext(f"{ATOM}summary")
    assert root.findtext(f"{ATOM}updated") == max(built, "2025-02-03T00:00:00Z")
    # the date reaches the API's source too
    assert client.get("/api/v1/sources/feder2014efficacy").get_json()["source"]["added"] == "2024-05-01"


def test_an_import_records_the_day_a_work_entered(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    bib = tmp_path / "one.bib"
    bib.write_text("@article{smith2020new, title={A new trial}, author={Smith, Ann}, year={2020},"
                   " journal={J}}\n", encoding="utf-8")
    report = import_files([bib], Settings(corpus_dir=corpus, index_dir=tmp_path / "index"),
                          progress=False, lookup=False)
    assert [item.id for item in report.added] == ["smith2020new"]
    stored = json.loads((corpus / "records" / "smith2020new.json").read_text(encoding="utf-8"))
    assert stored["source"]["added"] == datetime.now(UTC).date().isoformat()
    again = import_files([bib], Settings(corpus_dir=corpus, index_dir=tmp_path / "index"),
                         progress=False, lookup=False)
    assert again.added == [] and again.merged == []  # the date is bookkeeping, not new data


def test_a_summary_added_date_must_be_a_date():
    good, problems = summaries.parse('+++\nsource = "x2020y"\nadded = 2025-01-02\n+++\n\nText.\n', "s.md")
    assert good is not None and good.facts["added"] == "2025-01-02" and not problems
    bad, problems = summaries.parse('+++\nsource = "x2020y"\nadded = "last week"\n+++\n\nText.\n', "s.md")
    assert bad is not None and "added" not in bad.facts
    assert any("not a date" in p.message for p in problems)


def test_the_search_page_links_its_feed(client):
    html = client.get("/search?q=ketamine&condition=ptsd&page=1").get_data(as_text=True)
    link = re.search(r'<link rel="alternate" type="application/atom\+xml"[^>]*href="([^"]+)"', html)
    assert link and link.group(1) == "/search.atom?q=ketamine&amp;condition=ptsd"
    assert 'class="feed-link"' in html
    home = client.get("/").get_data(as_text=True)
    assert "application/atom+xml" not in home  # no search, no feed


def test_feeds_share_the_search_rate_limit_and_lanes(settings):
    busy = create_app(replace(settings, search_slots=1, heavy_queue=0, search_rate_limit=""))
    admission: Admission = busy.extensions["kb_admission"]
    admission.searches.enter()  # a search holds the only slot: the feed's search waits for it too
    try:
        assert busy.test_client().get("/search.atom?q=ketamine+lanes").status_code == 503
    finally:
        admission.searches.leave()
    client = create_app(replace(settings, search_rate_limit="2 per minute")).test_client()
    assert client.get("/search?q=ketamine").status_code == 200
    assert client.get("/search.atom?q=ketamine").status_code == 200
    refused = client.get("/search.atom?q=ptsd")
    assert refused.status_code == 429 and refused.headers["Retry-After"]


# --- timeline ---------------------------------------------------------------------------------


def test_year_by_level_counts_add_up_to_the_year_facet(kb):
    page = kb.search(SearchRequest(q="ketamine"))
    assert page.year_levels
    assert {year: sum(levels.values()) for year, levels in page.year_levels.items()} == page.years


def _page(year_levels: dict[int, dict[int | None, int]]) -> SearchPage:
    years = {year: sum(levels.values()) for year, levels in year_levels.items()}
    return SearchPage(query="q", total=sum(years.values()), page=1, limit=20, sort="relevance", hits=(),
                      facets={}, years=years, filters={}, year_levels=year_levels)


def test_timeline_geometry_and_text_alternative(app):
    with app.test_request_context("/search?q=x"):
        data = timeline(_page({2000: {1: 2, None: 1}, 2003: {4: 4}, 2010: {7: 1}}),
                        SearchState([("q", "x")]))
    assert data is not None
    assert [c["year"] for c in data["columns"]] == list(range(2000, 2011))  # gaps kept: a time axis
    assert [r["year"] for r in data["rows"]] == [2000, 2003, 2010]
    assert data["rows"][0]["counts"] == [2, 0, 0, 1] and data["rows"][1]["counts"] == [0, 4, 0, 0]
    assert data["rows"][0]["url"] == "/search?q=x&year_from=2000&year_to=2000"
    tallest = next(c for c in data["columns"] if c["year"] == 2003)["bars"]
    assert len(tallest) == 1 and tallest[0]["height"] == 96 and tallest[0]["y"] == data["top"]
    labels = [c["year"] for c in data["columns"] if c["label"]]
    assert labels == [2000, 2005, 2010]
    assert data["summary"] == "8 claims with a publication year, from 2000 to 2010; most from 2003 (4)."
    with app.test_request_context("/search?q=x"):
        assert timeline(_page({}), SearchState()) is None
        crowded = timeline(_page({2019: {1: 1}, 2020: {1: 1}}), SearchState())
    assert crowded is not None and [c["year"] for c in crowded["columns"] if c["label"]] == [2020]


def test_results_page_shows_an_accessible_timeline(client):
    html = client.get("/search?q=ketamine").get_data(as_text=True)
    svg = re.search(r"<svg class=\"timeline-chart\".*?</svg>", html, re.DOTALL)
    assert svg, "no timeline"
    assert 'role="img"' in svg.group(0) and 'aria-labelledby="timeline-title timeline-desc"' in svg.group(0)
    assert '<title id="timeline-title">' in svg.group(0) and '<desc id="timeline-desc">' in svg.group(0)
    ElementTree.fromstring(svg.group(0))  # well-formed SVG
    table = re.search(r'<details class="tl-table">.*?</details>', html, re.DOTALL).group(0)
    totals = [int(n) for n in re.findall(r"<td>(\d+)</td></tr>", table)]
    page = client.get("/api/v1/search?q=ketamine").get_json()
    assert sum(totals) == sum(page["years"].values())
    assert "<script" not in svg.group(0)


# --- navigation, API page, MeSH, verification words, progress ---------------------------------


@pytest.mark.parametrize("path", ["/", "/search?q=ketamine", "/map", "/sources/feder2014efficacy", "/check", "/api"])
def test_every_page_links_the_checker_and_the_api_page(client, path):
    html = client.get(path).get_data(as_text=True)
    nav = re.search(r'<nav class="site-nav".*?</nav>', html, re.DOTALL).group(0)
    assert 'href="/check"' in nav and 'href="/api"' in nav
    assert "openapi.json" not in nav  # the API link opens a page for people


def test_the_api_page_describes_the_api_and_links_the_document(client):
    response = client.get("/api")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'href="/api/v1/openapi.json"' in html
    assert "<code>/api/v1/search</code>" in html and "<code>/api/v1/sources/{source_id}</code>" in html
    assert "/search.atom?q=ketamine" in html
    assert 'aria-current="page">API</a>' in html


def test_vocabulary_terms_show_their_mesh_ids(client):
    html = client.get("/search?q=ketamine&condition=ptsd").get_data(as_text=True)
    # the filter's term and the tags on results link to the MeSH browser
    assert re.search(r'<p class="mesh-terms">In MeSH:\s*<a class="mesh" href="https://meshb\.nlm\.nih\.gov/record/'
                     r'ui\?ui=D\d+"', html)
    assert re.search(r'class="mesh-id" href="https://meshb\.nlm\.nih\.gov/record/ui\?ui=D\d+"', html)
    claim = client.get("/sources/feder2014efficacy").get_data(as_text=True)
    assert "https://meshb.nlm.nih.gov/record/ui?ui=" in claim
    api = client.get("/api/v1/search?q=ketamine").get_json()
    tag = api["hits"][0]["tag_labels"]["intervention"][0]
    assert set(tag) == {"id", "label", "mesh"}


def test_verification_is_said_in_words(client):
    html = client.get("/sources/feder2014efficacy").get_data(as_text=True)
    table = re.search(r'<table class="verification">.*?</table>', html, re.DOTALL).group(0)
    assert "Confirmed from the publisher&#39;s record" in table or "Not confirmed" in table
    assert not re.search(r">\s*\(?verified(-secondary)?\)?\s*<", table)  # no bare marks as text
    assert "| " not in table  # "verified | where" notes lose their mark prefix


def test_source_page_words_for_each_mark():
    view = {"title": "T", "doi": "10.1/x", "verification": {"title": "verified-secondary", "doi": "partial"},
            "verification_notes": {"title": "verified-secondary | gh-list, gh-list"}}
    rows = {row["name"]: row for row in _verification_rows(view)}
    assert rows["title"]["words"] == "Confirmed from a secondary source"
    assert rows["title"]["note"] == "gh-list, gh-list"
    assert rows["doi"]["words"].startswith("Not confirmed")
    assert set(MARK_WORDS) == set(VERIFICATION_MARKS)


def test_progress_prints_lines_when_not_a_terminal():
    out = io.StringIO()
    advance = progress_bars(out, lines=True)("indexing claims", 50)
    for _ in range(50):
        advance(1)
    lines = out.getvalue().splitlines()
    assert lines[0] == "indexing claims: 0% (0/50)" and lines[-1] == "indexing claims: 100% (50/50)"
    assert len(lines) == 11
    quiet = io.StringIO()
    progress_bars(quiet)("indexing claims", 5)(5)
    assert quiet.getvalue() == ""  # without lines, piped output stays as it was


def test_first_start_shows_progress_in_a_log(tmp_path: Path):
    shutil.copytree(MINI_CORPUS, tmp_path / "corpus")
    out = io.StringIO()  # not a terminal, as under a service manager
    ensure_index(Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", verifier=False), out)
    text = out.getvalue()
    assert "Building the search index (no index yet)" in text
    assert re.search(r"^indexing claims: 100% \(\d+/\d+\)$", text, re.MULTILINE)
    assert "Indexed " in text
