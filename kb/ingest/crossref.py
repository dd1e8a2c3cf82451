"""Crossref REST API ``/works`` responses: a single work, a work list, or bare work objects.

Crossref holds the metadata the publisher deposited with the DOI, so a record taken from it has
its title, authors, venue and DOI marked ``verified``. Abstracts arrive as JATS XML fragments and
are reduced to (label, text) sections. Reference lists, funders and licences are not kept.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kb.ingest import ParseResult
from kb.ingest.common import BIBLIOGRAPHIC_FIELDS, read_json, verified_marks
from kb.ingest.csl_json import add_items
from kb.ingest.notices import crossref_notices
from kb.models import CorpusProblem, merge_notices

VERIFIED = verified_marks((*BIBLIOGRAPHIC_FIELDS, "doi"))


def parse(text: str, origin: str) -> ParseResult:
    """Parse a Crossref /works response (``{"message": ...}``) or a list of work objects."""
    result = ParseResult()
    loaded, data = read_json(text, origin, result)
    if not loaded:
        return result
    items = works(data)
    if items is None:
        result.problems.append(CorpusProblem(
            origin, None, "not a Crossref /works response: expected a 'message' holding a work "
            "or 'items'"))
        return result
    add_items(result, items, origin, VERIFIED, note="Crossref record")
    _add_notices(result, items)
    for source in result.sources:
        # the note names the DOI so a reader can check it at https://api.crossref.org/works/<doi>
        if source.doi:
            source.verification_notes.update(
                dict.fromkeys(source.verification, f"Crossref record {source.doi}"))
    return result


def _add_notices(result: ParseResult, items: list[Any]) -> None:
    """Attach each work's ``updated-by`` / ``update-to`` notices (kb.ingest.notices).

    ``add_items`` gives each source the provenance ``origin:<item number>``, so the item a source
    came from is found again by that number.
    """
    for position, source in enumerate(result.sources):
        where = source.provenance[0] if source.provenance else None
        number = where.line if where is not None else None
        if number is None or not 1 <= number <= len(items) or not isinstance(items[number - 1], dict):
            continue
        found = crossref_notices(items[number - 1], str(where))
        if found:
            result.sources[position] = replace(source, notices=merge_notices(source.notices, found))


def works(data: Any) -> list[Any] | None:
    """The work objects in a Crossref response, or None when *data* is not one."""
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        return None
    message = data.get("message", data) if "message-type" in data or "message" in data else data
    if isinstance(message, dict) and isinstance(message.get("items"), list):
        return list(message["items"])
    if isinstance(message, dict) and ("DOI" in message or "title" in message):
        return [message]
    return None
