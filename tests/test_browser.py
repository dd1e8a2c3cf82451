"""Real browser tests: headless chromium (Debian's) driven by Playwright against the real server.

They type a query and pick a suggestion, apply a facet, follow "did you mean", open a source,
copy a citation, export BibTeX and open the map; check that search works without JavaScript,
that the CSP is never violated, and that markup in the corpus stays inert. Screenshots of the
search page, a source page and the map go to tests/screenshots/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import MINI_CORPUS, ROOT, free_port, wait_for_port

from kb.build import build
from kb.config import Settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: apt-get install chromium"),
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with playwright_api.sync_playwright() as playwright:
        # The system chromium: Playwright never downloads a browser here.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh page that records CSP violations and JavaScript errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    tab.problems = []  # type: ignore[attr-defined]
    tab.on("console", lambda message: message.type == "error" and "Content Security Policy" in message.text
           and tab.problems.append(message.text))
    tab.on("pageerror", lambda error: tab.problems.append(str(error)))
    yield tab
    assert not tab.problems, tab.problems  # no CSP violation, no script error
    context.close()


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_type_a_query_see_suggestions_and_choose_one(page, live_server):
    page.goto(live_server + "/")
    box = page.locator("#q")
    assert box.evaluate("element => element === document.activeElement")  # autofocus on the home page
    box.press_sequentially("ketam", delay=30)
    options = page.locator("#q-suggestions [role=option]")
    options.first.wait_for(state="visible")
    assert "ketamine" in options.all_inner_texts()[0]
    assert box.get_attribute("aria-expanded") == "true"
    box.press("ArrowDown")
    assert box.get_attribute("aria-activedescendant") == "q-suggestion-0"
    with page.expect_navigation():
        box.press("Enter")
    assert _query(page.url)["q"] == ["ketamine"]
    assert page.locator("ol.hits > li").count() > 0
    _shot(page, "search")


def test_apply_a_facet_then_remove_it(page, live_server):
    page.goto(live_server + "/search?q=ketamine")
    facet = page.locator("#facet-condition + ul a.facet-link").first
    label = facet.locator(".facet-label").inner_text()
    facet.click()
    page.wait_for_load_state()
    assert _query(page.url)["condition"] and _query(page.url)["q"] == ["ketamine"]
    chip = page.locator(".chips a.chip").first
    assert label in chip.inner_text()
    chip.click()
    page.wait_for_load_state()
    assert "condition" not in _query(page.url)


def test_follow_did_you_mean(page, live_server):
    page.goto(live_server + "/search?q=ketamime")
    page.get_by_role("link", name="ketamine").first.click()
    page.wait_for_load_state()
    assert _query(page.url)["q"] == ["ketamine"]
    assert page.locator("ol.hits > li").count() > 0


def test_open_a_source_copy_its_citation_and_export_bibtex(page, live_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page.goto(live_server + "/search?q=antidepressant+effects")
    page.locator("ol.hits p.citation a").first.click()
    page.wait_for_load_state()
    assert "/sources/" in page.url
    copy = page.locator("button.copy").first
    copy.wait_for(state="visible")  # hidden until the script can copy
    copy.click()
    page.wait_for_function("() => document.querySelector('button.copy').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#cite-vancouver").inner_text().strip()
    _shot(page, "source")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="BibTeX").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".bib")
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith("% ") and "@article{" in text


def test_open_the_map_and_follow_a_cell(page, live_server):
    page.goto(live_server + "/map")
    assert page.locator("table.evidence-map td.cell a").count() > 0
    _shot(page, "map")
    page.locator("table.evidence-map td.cell a").first.click()
    page.wait_for_load_state()
    params = _query(page.url)
    assert params.get("condition") and params.get("mechanism")
    assert page.locator("ol.hits > li").count() > 0


def test_keyboard_skip_link_and_slash_shortcut(page, live_server):
    page.goto(live_server + "/sources/feder2014efficacy")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.goto(live_server + "/search?q=ketamine")
    page.locator("main h2").first.click()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"


def test_phone_width_has_no_horizontal_scroll(browser, live_server):
    context = browser.new_context(viewport={"width": 375, "height": 800})
    tab = context.new_page()
    try:
        for path in ("/search?q=ketamine", "/sources/zarate2006randomized", "/map"):
            tab.goto(live_server + path)
            overflow = tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, path
        tab.goto(live_server + "/search?q=ketamine")
        _shot(tab, "search-phone")
    finally:
        context.close()


def test_search_works_without_javascript(browser, live_server):
    context = browser.new_context(java_script_enabled=False)
    tab = context.new_page()
    try:
        tab.goto(live_server + "/")
        tab.fill("#q", "midazolam")
        with tab.expect_navigation():
            tab.press("#q", "Enter")
        assert tab.locator("ol.hits > li").count() > 0
        tab.goto(live_server + "/sources/feder2014efficacy")
        assert tab.locator("#cite-apa").is_visible()
        assert not tab.locator("button.copy").first.is_visible()  # nothing that cannot work is shown
    finally:
        context.close()


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server on a corpus whose title and claim hold <script> and an onerror image."""
    root = tmp_path_factory.mktemp("hostile-browser")
    corpus = root / "corpus"
    shutil.copytree(MINI_CORPUS, corpus)
    with (corpus / "references" / "mini.bib").open("a", encoding="utf-8") as bib:
        bib.write("\n@article{evil2020script,\n  author = {Mallory, E.},\n"
                  "  title = {<script>alert(1)</script> ketamine <img src=x onerror=alert(2)>},\n"
                  "  journal = {Journal & Co}, year = {2020},\n"
                  "  verification = {title: verified; authors: verified; venue: verified}\n}\n")
    (corpus / "summaries" / "evil2020script.md").write_text(
        '+++\nsource = "evil2020script"\ndesign = "rct"\ntags = ["trd"]\n+++\n\nSummary.\n\n'
        "## Claims\n\n- Ketamine <script>alert(3)</script> helped in TRD.\n", encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    build(settings)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "server.py"), "--port", str(port), "--corpus-dir", str(corpus),
         "--index-dir", str(settings.index_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_markup_in_the_corpus_never_runs(browser, hostile_server):
    context = browser.new_context()
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        tab.goto(hostile_server + "/sources/evil2020script")
        assert "<script>alert(1)</script>" in tab.locator("h1").inner_text()
        tab.goto(hostile_server + "/search?q=ketamine+helped")
        assert "<script>alert(3)</script>" in tab.locator("ol.hits").inner_text()
        tab.goto(hostile_server + "/search?q=%3Cscript%3Ealert(4)%3C/script%3E")
        tab.locator("#q").press_sequentially("<scr", delay=20)
        tab.wait_for_timeout(400)  # let a suggestion request come back, if any
        assert not dialogs
    finally:
        context.close()


# --- issue 14: the search timeline, the map caption and the navigation at desktop and phone width ---

_TIMELINE_READABLE = """() => {
  const svg = document.querySelector('svg.timeline-chart');
  const box = svg.getBoundingClientRect();
  const labels = [...svg.querySelectorAll('text.tl-label')].map(t => t.getBoundingClientRect());
  const overlapping = labels.some((a, i) => labels.slice(i + 1).some(b => a.right > b.left && b.right > a.left));
  const clipped = labels.some(r => r.left < box.left || r.right > box.right || r.bottom > box.bottom);
  return {width: box.width, height: box.height, bars: svg.querySelectorAll('rect').length,
          labels: labels.length, overlapping, clipped,
          fontPx: parseFloat(getComputedStyle(svg.querySelector('text.tl-label')).fontSize),
          labelHeight: Math.min(...labels.map(r => r.height)),
          name: svg.getAttribute('aria-labelledby').split(' ').map(id => document.getElementById(id).textContent)};
}"""


@pytest.mark.parametrize("width", [1280, 375])
def test_the_timeline_is_drawn_and_readable(browser, live_server, width):
    context = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=False)
    tab = context.new_page()
    try:
        tab.goto(live_server + "/search?q=ketamine")
        chart = tab.locator("svg.timeline-chart")
        assert chart.is_visible()
        drawn = tab.evaluate(_TIMELINE_READABLE)
        assert drawn["bars"] > 0 and drawn["height"] > 80 and drawn["width"] > 100
        assert drawn["labels"] >= 1 and not drawn["overlapping"] and not drawn["clipped"]
        assert drawn["fontPx"] >= 10 and drawn["labelHeight"] >= 10  # drawn at full size, never scaled down
        assert drawn["name"][0].startswith("Claims by publication year") and "claims" in drawn["name"][1]
        # the chart never widens the page; a wide span scrolls inside its own region
        assert tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
        tab.locator(".tl-table summary").click()  # the text alternative opens without script
        first_year = tab.locator(".tl-table tbody th a").first
        assert first_year.is_visible()
        _shot(tab, f"timeline-{width}")
        with tab.expect_navigation():
            first_year.click()
        params = _query(tab.url)
        assert params["year_from"] == params["year_to"] and params["q"] == ["ketamine"]
    finally:
        context.close()


def test_the_map_caption_fits_a_phone(browser, live_server):
    context = browser.new_context(viewport={"width": 375, "height": 800})
    tab = context.new_page()
    try:
        tab.goto(live_server + "/map")
        caption = tab.locator("#map-caption")
        box = caption.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
        # every line of its text is inside the screen, not clipped by the scrolling table
        assert tab.evaluate("""() => { const r = document.createRange();
            r.selectNodeContents(document.getElementById('map-caption'));
            return [...r.getClientRects()].every(rect => rect.left >= 0 && rect.right <= innerWidth); }""")
        assert tab.locator("table.evidence-map").get_attribute("aria-labelledby") == "map-caption"
        _shot(tab, "map-phone")
    finally:
        context.close()


def test_the_navigation_reaches_the_checker_and_the_api_page(page, live_server):
    page.goto(live_server + "/map")
    page.get_by_role("navigation", name="Site").get_by_role("link", name="Check an article").click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/check"
    page.get_by_role("navigation", name="Site").get_by_role("link", name="API").click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/api"
    assert page.get_by_role("heading", level=1).inner_text() == "The Evidence KB API"
    assert page.get_by_role("link", name="/api/v1/openapi.json").is_visible()
