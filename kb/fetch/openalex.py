"""OpenAlex: an open catalogue of works (``GET /works/W...``), with abstracts as inverted indexes."""

from __future__ import annotations

import json

from kb.fetch.client import HttpClient, RateLimiter

SERVICE = "OpenAlex"
RATE_PER_SECOND = 10.0  # OpenAlex allows 10 requests/s


def fetch_work(client: HttpClient, work_id: str) -> str:
    """The raw JSON body of OpenAlex's work *work_id* ("W2741809807")."""
    settings = client.settings
    client.limiters.setdefault(SERVICE, RateLimiter(RATE_PER_SECOND, sleep=client.sleep))
    params = {"mailto": settings.contact_email} if settings.contact_email else None
    url = f"{settings.openalex_url.rstrip('/')}/works/{work_id}"
    return client.get_text(SERVICE, url, params, validate=_validate, what=f"work {work_id}")


def _validate(text: str) -> None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed JSON: {error.msg} at character {error.pos}") from None
    if not isinstance(data, dict) or "id" not in data:
        raise ValueError("JSON without a work 'id'")
