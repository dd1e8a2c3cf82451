from unittest.mock import ANY

import pytest


@pytest.mark.parametrize(("path", "status"), [
    ("/api/v1/search?q=", 400),
    ("/api/v1/search?q=AND+OR", 400),
    ("/api/v1/search?q=ketamine&condition=nonsense", 400),
    ("/api/v1/search?q=ketamine&page=two", 400),
    ("/api/v1/search?q=ketamine&sort=random", 400),
    ("/api/v1/sources/nobody1999", 404),
    ("/api/v1/sources/..%2F..%2Fetc%2Fpasswd", 404),
    ("/api/v1/claims/nobody-0123456789", 404),
    ("/api/v1/no-such-route", 404),
])
def test_every_api_error_has_the_same_shape(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert response.get_json() == {"ok": False, "error": ANY, "status": status}
    assert len(response.get_json()["error"]) > 10


def test_method_not_allowed_is_json_too(client):
    response = client.post("/api/v1/search")
    assert response.status_code == 405
    assert response.get_json()["status"] == 405


def test_search_returns_claims_with_their_sources(client):
    body = client.get("/api/v1/search?q=TRD").get_json()
    assert body["ok"] is True
    hit = body["hits"][0]
    assert {"id", "text", "locator", "stance", "tags", "source", "highlight", "score"} <= set(hit)
    assert {"id", "citation", "doi", "pmid", "links"} <= set(hit["source"])


def test_status_is_the_manifest(client):
    body = client.get("/api/v1/status").get_json()
    assert body["ok"] is True
    assert body["manifest"]["counts"]["sources"] == 5


def test_source_and_claim_routes(client):
    source = client.get("/api/v1/sources/feder2014efficacy").get_json()["source"]
    assert source["title"].startswith("Efficacy of intravenous ketamine")
    assert source["claims"]
    claim = client.get(f"/api/v1/claims/{source['claims'][0]['id']}").get_json()["claim"]
    assert claim["source"]["id"] == "feder2014efficacy"


def test_security_cors_and_caching_headers(client):
    response = client.get("/api/v1/search?q=ketamine")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    etag = response.headers["ETag"]
    again = client.get("/api/v1/search?q=ketamine", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_user_text_is_escaped_on_pages(client):
    response = client.get("/search?q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert b"<script>alert(1)" not in response.data
    assert b"&lt;script&gt;" in response.data


def test_html_errors_are_pages(client):
    response = client.get("/sources/nobody1999")
    assert response.status_code == 404
    assert b"<html" in response.data


def test_search_reports_a_weak_match(client):
    weak = client.get("/api/v1/search?q=ketamine+cures+cancer").get_json()
    assert weak["weak_match"] is True and weak["did_you_mean"] is None
    assert client.get("/api/v1/search?q=ketamine").get_json()["weak_match"] is False
