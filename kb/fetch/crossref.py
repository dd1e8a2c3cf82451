"""Crossref REST API: the metadata a publisher deposited with a DOI (``GET /works/{doi}``)."""

from __future__ import annotations

import json
from urllib.parse import quote

from kb.fetch.client import HttpClient, RateLimiter

SERVICE = "Crossref"
RATE_PER_SECOND = 10.0  # well inside Crossref's polite-pool limit


def work_url(base_url: str, doi: str) -> str:
    """The /works URL of *doi*; the slash inside a DOI stays a slash, as Crossref expects."""
    return f"{base_url.rstrip('/')}/works/{quote(doi, safe='/')}"


def fetch_work(client: HttpClient, doi: str) -> str:
    """The raw JSON body of Crossref's record for *doi* (NotFound for an unknown DOI)."""
    settings = client.settings
    client.limiters.setdefault(SERVICE, RateLimiter(RATE_PER_SECOND, sleep=client.sleep))
    params = {"mailto": settings.contact_email} if settings.contact_email else None
    return client.get_text(SERVICE, work_url(settings.crossref_url, doi), params,
                           validate=_validate, what=f"DOI {doi}")


def _validate(text: str) -> None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed JSON: {error.msg} at character {error.pos}") from None
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise ValueError("JSON without a 'message' object")  # noqa: TRY004 - the client's contract
