"""The article checker over HTTP: POST /api/v1/check and the /check page."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from kb.web.checker import OPENAPI_PATHS

ARTICLES = Path(__file__).parent / "data" / "articles"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)")  # the CSP allows only script files
CLAIM = "One ketamine infusion reduced PTSD symptom severity 24 hours later more than midazolam."


def test_api_checks_json_text(client):
    response = client.post("/api/v1/check", json={"text": CLAIM})
    assert response.status_code == 200
    data = response.get_json()
    assert data["ok"] is True
    claim = data["claims"][0]
    assert claim["verdict"] == "supported"
    assert claim["evidence"][0]["source"]["id"] == "feder2014efficacy"


def test_api_checks_an_uploaded_file(client):
    data = {"file": (io.BytesIO((ARTICLES / "article.html").read_bytes()), "article.html")}
    response = client.post("/api/v1/check", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    body = response.get_json()
    assert body["content_type"] == "html"
    assert [r["resolved"]["id"] for r in body["references"]] == ["duman2012synaptic", "feder2014efficacy"]


def test_api_json_equals_the_library_document(client, kb):
    text = (ARTICLES / "numbered.md").read_text(encoding="utf-8")
    api = client.post("/api/v1/check", json={"text": text}).get_json()
    library = kb.check(text).to_dict()
    api.pop("seconds"), library.pop("seconds")
    assert api == library


@pytest.mark.parametrize("fmt,mimetype,needle", [("md", "text/markdown", "## Evidence check"),
                                                  ("html", "text/html", "<details")])
def test_api_reports(client, fmt, mimetype, needle):
    response = client.post(f"/api/v1/check?format={fmt}", json={"text": CLAIM})
    assert response.status_code == 200 and response.mimetype == mimetype
    assert needle in response.get_data(as_text=True)


@pytest.mark.parametrize("kwargs,message", [
    ({"json": {"text": ""}}, "empty"),
    ({"json": {"text": "  \n "}}, "empty"),
    ({"json": {"words": "x"}}, '{"text"'),
    ({"json": ["text"]}, '{"text"'),
    ({"data": "plain body", "content_type": "text/plain"}, "Send the article"),
    ({"json": {"text": CLAIM, "format": "pdf"}}, "Unknown format"),
])
def test_api_bad_requests(client, kwargs, message):
    response = client.post("/api/v1/check", **kwargs)
    assert response.status_code == 400
    body = response.get_json()
    assert body["ok"] is False and body["status"] == 400 and message in body["error"]


@pytest.mark.parametrize("payload,message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (b"Ketamine \xff\xfe\xfa improves", "not UTF-8"),
])
def test_api_rejects_binary_uploads(client, payload, message):
    data = {"file": (io.BytesIO(payload), "draft.txt")}
    response = client.post("/api/v1/check", data=data, content_type="multipart/form-data")
    assert response.status_code == 400 and message in response.get_json()["error"]


def test_api_rejects_articles_over_the_limit(client, settings):
    big = "Ketamine improved mood. " * (settings.max_upload_bytes // 24 + 10)
    response = client.post("/api/v1/check", json={"text": big})
    assert response.status_code == 413 and response.get_json()["status"] == 413
    data = {"file": (io.BytesIO(big.encode()), "big.txt")}
    response = client.post("/api/v1/check", data=data, content_type="multipart/form-data")
    assert response.status_code == 413


def test_api_text_without_sentences_is_an_empty_result(client):
    response = client.post("/api/v1/check", json={"text": "---\n\n***\n"})
    assert response.status_code == 200 and response.get_json()["claims"] == []


def test_page_shows_the_form(client):
    response = client.get("/check")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html and 'name="text"' in html and 'name="file"' in html
    assert "check.css" in html
    assert not INLINE_SCRIPT.search(html) and " style=" not in html and "<style" not in html


def test_page_checks_pasted_text_without_javascript(client):
    text = (ARTICLES / "numbered.md").read_text(encoding="utf-8")
    response = client.post("/check", data={"text": text})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<details class="claim verdict-contradicted"' in html
    assert '<details class="claim verdict-unsupported"' in html
    assert "<summary>A single intravenous ketamine infusion" in html
    assert not INLINE_SCRIPT.search(html) and " style=" not in html and "<style" not in html
    assert "Content-Security-Policy" in response.headers


def test_page_checks_an_uploaded_file(client):
    data = {"text": "", "file": (io.BytesIO((ARTICLES / "superscripts.txt").read_bytes()), "draft.txt")}
    response = client.post("/check", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    assert "verdict-supported" in response.get_data(as_text=True)


def test_page_shows_errors_in_the_form(client):
    response = client.post("/check", data={"text": "   "})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html and "empty" in html and "<form" in html


def test_page_escapes_the_article(client):
    response = client.post("/check", data={"text": "<img src=x onerror=alert(1)> ketamine improved "
                                                   "depressive symptoms within 72 hours.",
                                           "content_type": "text"})
    html = response.get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x" in html


def test_stylesheet_is_served(client):
    response = client.get("/static/check.css")
    assert response.status_code == 200 and b"verdict-supported" in response.data


def test_openapi_description():
    post = OPENAPI_PATHS["/api/v1/check"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"200", "400", "413"} <= set(post["responses"])
    schema = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"ok", "claims", "references"} <= set(schema["properties"])
    assert re.fullmatch(r"\w+", post["operationId"])


def test_responses_validate_against_the_openapi_schema(client):
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    schema = OPENAPI_PATHS["/api/v1/check"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator(schema)
    for name in ("numbered.md", "author_year.txt", "article.html"):
        text = (ARTICLES / name).read_text(encoding="utf-8")
        body = client.post("/api/v1/check", json={"text": text}).get_json()
        errors = [str(e) for e in validator.iter_errors(body)]
        assert not errors, (name, errors[:3])


def test_reports_print_each_identifier_once_as_a_link(client, kb):
    from kb.check.report import to_markdown

    result = kb.check(CLAIM)
    source = result.claims[0].evidence[0].source
    assert source.doi  # feder2014efficacy carries a confirmed DOI
    doi_link = f"https://doi.org/{source.doi}"
    markdown = to_markdown(result)
    footnote = next(line for line in markdown.splitlines() if line.startswith("[^kb"))
    assert footnote.casefold().count(source.doi.casefold()) == 2  # link text and target, once
    assert f"(https://doi.org/{source.doi})" in footnote
    html = client.post("/check", data={"text": CLAIM}).get_data(as_text=True)
    evidence = re.search(r'<span class="source">(.*?)</span>\s*(?:<span class="terms"|</li>)', html, re.DOTALL)
    assert evidence
    assert f'<a href="{doi_link}" rel="noopener">doi:{source.doi}</a>' in evidence.group(1)
    assert evidence.group(1).casefold().count(source.doi.casefold()) == 2  # href and text, once
    if source.pmid:
        assert f"https://pubmed.ncbi.nlm.nih.gov/{source.pmid}/" in evidence.group(1)


def test_identifier_links_are_encoded_and_escaped():
    from kb.check.report import _footnote_text, source_reference
    from kb.check.result import EvidenceSource

    doi = '10.1/x)"<b>'
    source = EvidenceSource(id="x2020y", doi=doi, pmid="123", title="T", year=2020,
                            citation=f"A B. T. J. 2020. doi:{doi}", apa=None, authors="B",
                            evidence_level=None, design=None)
    ref = source_reference(source)
    assert ref.text == "A B. T. J. 2020." and ref.doi_url == "https://doi.org/10.1/x%29%22%3Cb%3E"
    assert ref.pubmed_url == "https://pubmed.ncbi.nlm.nih.gov/123/"
    note = _footnote_text(source)
    assert "<b>" not in note and "(https://doi.org/10.1/x%29%22%3Cb%3E)" in note
    assert "[PMID: 123](https://pubmed.ncbi.nlm.nih.gov/123/)" in note
