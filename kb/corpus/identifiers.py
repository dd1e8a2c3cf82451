"""Add works to the corpus by identifier, from Crossref, PubMed and OpenAlex.

The services are reached through ``kb.fetch``'s clients. Every record fetched is parsed by the
same parser a file import uses, deduplicated the same way, and written with its raw response
beside it, so a later ``kb build`` needs no network.

All identifiers are fetched before anything is written: when one is unknown or a service stays
down, the whole request fails with a message saying which and why, and the corpus is unchanged.
"""

from __future__ import annotations

import re
from dataclasses import replace

from kb.config import Settings
from kb.corpus.importer import Importer, ImportReport
from kb.errors import BadRequest, FetchError, KBError, NotFound
from kb.fetch import crossref, openalex, pubmed
from kb.fetch.client import HttpClient
from kb.ids import normalize_doi, normalize_pmid
from kb.ingest import ParseResult, pubmed_xml
from kb.ingest import crossref as crossref_format
from kb.ingest import openalex as openalex_format
from kb.models import Provenance

MAX_IDENTIFIERS = 1000
_OPENALEX = re.compile(r"^(?:openalex:\s*|https?://(?:api\.)?openalex\.org/(?:works/)?)?(W\d+)$",
                       re.IGNORECASE)

__all__ = ["MAX_IDENTIFIERS", "HttpClient", "add_identifiers", "parse_identifier"]


def parse_identifier(text: str) -> tuple[str, str]:
    """Read ``doi:10.x/y``, ``pmid:123``, ``openalex:W123`` (or a bare DOI, PMID, W-id or URL).

    >>> parse_identifier("https://doi.org/10.1073/PNAS.2305772120")
    ('doi', '10.1073/pnas.2305772120')
    >>> parse_identifier("pmid:38011560"), parse_identifier("openalex:W2741809807")
    (('pmid', '38011560'), ('openalex', 'W2741809807'))
    """
    value = text.strip()
    lowered = value.lower()
    match = _OPENALEX.match(value)
    if match:
        return "openalex", match.group(1).upper()
    if lowered.startswith("pmid:") or value.isdigit() or "pubmed.ncbi.nlm.nih.gov/" in lowered:
        pmid = normalize_pmid(value.rstrip("/").rsplit("/", 1)[-1]
                              if "/" in value else value)
        if pmid:
            return "pmid", pmid
    doi = normalize_doi(value)
    if doi and (lowered.startswith(("doi:", "10.", "http")) or doi == lowered):
        return "doi", doi
    raise BadRequest(f"{text!r} is not an identifier we can fetch: use doi:10.NNNN/..., "
                     "pmid:NNNNNNNN or openalex:WNNNN")


def add_identifiers(identifiers: list[str], settings: Settings, dry_run: bool = False,
                    client: HttpClient | None = None) -> ImportReport:
    """Fetch each identifier's record and import it into ``settings.corpus_dir``.

    Raise BadRequest for an identifier we cannot read, NotFound when a service has no record
    for one, FetchError when a service stays unavailable; in each case nothing is written.
    """
    if not identifiers:
        raise BadRequest("no identifiers given: pass e.g. doi:10.1073/pnas.2305772120 pmid:38011560")
    if len(identifiers) > MAX_IDENTIFIERS:
        raise BadRequest(f"{len(identifiers)} identifiers; add at most {MAX_IDENTIFIERS} at a time")
    wanted: dict[tuple[str, str], str] = {}
    for text in identifiers:
        wanted.setdefault(parse_identifier(text), text)
    client = client or HttpClient(settings)
    results: list[tuple[ParseResult, str]] = []
    failures: list[KBError] = []

    pmids = [value for kind, value in wanted if kind == "pmid"]
    if pmids:
        try:
            for batch, xml in pubmed.fetch_batches(client, pmids):
                missing = [p for p in batch if p not in pubmed.returned_pmids(xml)]
                failures.extend(NotFound(f"PubMed has no record for PMID {p}; check the "
                                         "number") for p in missing)
                result = pubmed_xml.parse(xml, "pubmed efetch")
                results.append((_relabel(result, "pubmed", lambda s: s.pmid), "pubmed-xml"))
        except KBError as error:
            failures.append(error)
    for (kind, value) in wanted:
        try:
            if kind == "doi":
                body = crossref.fetch_work(client, value)
                result = crossref_format.parse(body, f"crossref:{value}")
                results.append((_relabel(result, "crossref", lambda s: s.doi), "crossref"))
            elif kind == "openalex":
                body = openalex.fetch_work(client, value)
                result = openalex_format.parse(body, f"openalex:{value}")
                results.append((_relabel(result, "openalex", lambda s, v=value: v), "openalex"))
        except KBError as error:
            failures.append(error)
    if failures:
        _raise(failures)
    importer = Importer(settings.corpus_dir, dry_run=dry_run)
    for result, fmt in results:
        importer.add(result, fmt, fmt)
    return importer.commit()


def _relabel(result: ParseResult, service: str, ident) -> ParseResult:  # type: ignore[no-untyped-def]
    """Give each fetched record the provenance "service:identifier" instead of a line number."""
    for index, source in enumerate(result.sources):
        result.sources[index] = replace(source, provenance=(Provenance(f"{service}:{ident(source)}"),))
    return result


def _raise(failures: list[KBError]) -> None:
    message = "; ".join(str(f) for f in failures) + " (nothing was written)"
    if all(isinstance(f, NotFound) for f in failures):
        raise NotFound(message)
    if all(isinstance(f, BadRequest) for f in failures):
        raise BadRequest(message)
    raise FetchError(message)
