"""Security: rate limit on the checker, size limits, odd identifiers, no internals leak out."""

from dataclasses import replace

import pytest

from kb.web import create_app


@pytest.fixture
def limited_client(settings):
    app = create_app(replace(settings, check_rate_limit="2 per minute"))
    return app.test_client()


def test_the_article_checker_is_rate_limited_with_a_retry_after(limited_client):
    for _ in range(2):
        assert limited_client.post("/api/v1/check", json={"text": "Ketamine helps."}).status_code == 200
    refused = limited_client.post("/api/v1/check", json={"text": "Ketamine helps."})
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["ok"] is False and body["status"] == 429
    assert "retry in" in body["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # searching is not limited
    assert limited_client.get("/api/v1/search?q=ketamine").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/check", "/check", "/api/v1/sources"])
def test_oversized_bodies_are_refused_with_413(client, path):
    response = client.post(path, data=b"x" * (400 * 1024), content_type="application/octet-stream")
    assert response.status_code == 413


@pytest.mark.parametrize("identifier", ["../../etc/passwd", "..%2F..%2Fetc", "a" * 400, "%00", "a b",
                                        "con.bib/../../x"])
def test_odd_source_identifiers_are_refused_as_not_found(client, identifier):
    response = client.get(f"/api/v1/sources/{identifier}")
    assert response.status_code in {404, 400}
    assert response.get_json()["ok"] is False


@pytest.mark.parametrize("path", ["/", "/search?q=ketamine", "/sources/feder2014efficacy",
                                  "/api/v1/status", "/nowhere", "/static/style.css"])
def test_security_headers_on_every_response(client, path):
    response = client.get(path)
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"]


def test_an_unexpected_error_shows_no_trace_or_path(settings):
    app = create_app(settings)

    @app.get("/api/v1/boom")
    def boom():
        raise RuntimeError(f"secret detail in {settings.index_dir}")

    response = app.test_client().get("/api/v1/boom")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "secret" not in text and "Traceback" not in text and str(settings.index_dir) not in text
    assert response.get_json()["status"] == 500


def test_write_endpoint_is_off_unless_a_token_is_configured(client):
    response = client.post("/api/v1/sources", json={"identifiers": ["doi:10.1000/x"]})
    assert response.status_code == 403
    assert "KB_API_TOKEN" in response.get_json()["error"]
