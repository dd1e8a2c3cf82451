"""PubMed through NCBI E-utilities: ``efetch.fcgi?db=pubmed&retmode=xml``, many PMIDs a request.

NCBI allows 3 requests a second without an API key and 10 with one, and asks every caller to
name its tool and a contact address; both are sent.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from kb.config import Settings
from kb.fetch.client import HttpClient, RateLimiter

SERVICE = "PubMed"
BATCH_SIZE = 200  # PMIDs per efetch request; NCBI advises POST only beyond a few hundred
TOOL = "evidence-kb"


def rate_per_second(settings: Settings) -> float:
    """NCBI's request limit for this configuration: 10/s with an API key, else 3/s."""
    return 10.0 if settings.ncbi_api_key else 3.0


def fetch_batches(client: HttpClient, pmids: list[str]) -> list[tuple[list[str], str]]:
    """Fetch *pmids* in batches; return (the batch's PMIDs, raw efetch XML) per request."""
    settings = client.settings
    client.limiters.setdefault(SERVICE, RateLimiter(rate_per_second(settings), sleep=client.sleep))
    url = f"{settings.pubmed_url.rstrip('/')}/efetch.fcgi"
    out = []
    for start in range(0, len(pmids), BATCH_SIZE):
        batch = pmids[start:start + BATCH_SIZE]
        params = {"db": "pubmed", "id": ",".join(batch), "retmode": "xml", "tool": TOOL}
        if settings.contact_email:
            params["email"] = settings.contact_email
        if settings.ncbi_api_key:
            params["api_key"] = settings.ncbi_api_key
        what = f"PMID {batch[0]}" if len(batch) == 1 else f"{len(batch)} PMIDs"
        out.append((batch, client.get_text(SERVICE, url, params, validate=_validate, what=what)))
    return out


def returned_pmids(xml: str) -> set[str]:
    """The PMIDs of the articles in an efetch response (cheap scan, no second parse)."""
    return set(re.findall(r"<MedlineCitation[^>]*>\s*<PMID[^>]*>(\d+)</PMID>", xml))


def _validate(text: str) -> None:
    # A truncated or garbled body must not be cached or imported; entity tricks are refused.
    try:
        root = fromstring(text.encode("utf-8"))
    except DefusedXmlException as error:
        raise ValueError(f"forbidden XML construct ({type(error).__name__})") from None
    except ET.ParseError as error:
        raise ValueError(f"malformed XML: {error}") from None
    if root.tag != "PubmedArticleSet":
        raise ValueError(f"root element <{root.tag}>, not <PubmedArticleSet>")
