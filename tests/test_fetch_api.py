"""POST /api/v1/sources: off without a token, 401 with a wrong one, an import report otherwise."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from kb.config import Settings
from kb.web import create_app

FIXTURES = Path(__file__).parent / "data" / "fixtures"
PONE_DOI = "10.1371/journal.pone.0033693"
PONE = (FIXTURES / "crossref" / "works_10.1371_journal.pone.0033693.json").read_text()


@pytest.fixture()
def settings(tmp_path: Path, httpserver: HTTPServer) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", api_token="s3cret",
                    crossref_url=httpserver.url_for("/crossref"))


def post(settings: Settings, body: object, token: str | None = "s3cret"):  # type: ignore[no-untyped-def]
    client = create_app(settings).test_client()
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post("/api/v1/sources", json=body, headers=headers)


def test_disabled_without_a_configured_token(settings: Settings) -> None:
    response = post(replace(settings, api_token=""), {"identifiers": [PONE_DOI]})
    assert response.status_code == 403
    body = response.get_json()
    assert body["ok"] is False and body["status"] == 403 and "KB_API_TOKEN" in body["error"]


@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_wrong_or_missing_token_is_401(settings: Settings, token: str | None) -> None:
    response = post(settings, {"identifiers": [PONE_DOI]}, token=token)
    assert response.status_code == 401 and response.get_json()["ok"] is False


def test_bad_body_is_400(settings: Settings) -> None:
    assert post(settings, {"ids": [PONE_DOI]}).status_code == 400
    assert post(settings, {"identifiers": ["isbn:1"]}).status_code == 400


def test_adds_a_source_then_skips_it(httpserver: HTTPServer, settings: Settings) -> None:
    httpserver.expect_request(f"/crossref/works/{PONE_DOI}").respond_with_data(
        PONE, content_type="application/json")
    response = post(settings, {"identifiers": [f"doi:{PONE_DOI}"]})
    assert response.status_code == 201
    body = response.get_json()
    assert body["ok"] is True and body["counts"]["added"] == 1
    assert body["added"][0]["id"] == "sadasivan2012methylphenidate"
    again = post(settings, {"identifiers": [f"doi:{PONE_DOI}"]})
    assert again.status_code == 200 and again.get_json()["counts"]["skipped"] == 1


def test_unknown_doi_is_404_json(httpserver: HTTPServer, settings: Settings) -> None:
    httpserver.expect_request("/crossref/works/10.9999/nope").respond_with_data("", status=404)
    response = post(settings, {"identifiers": ["doi:10.9999/nope"]})
    assert response.status_code == 404
    assert "Crossref has no record" in response.get_json()["error"]
