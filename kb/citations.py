"""Citation strings and identifier links for sources, honouring verification marks.

APA and Vancouver references are formatted by citeproc-py from the two CSL styles shipped in
``kb/csl`` (no network needed); when citeproc-py cannot format a record, a small built-in
formatter gives the same shape, so a citation is never missing.

An identifier (DOI, PMID) is only linked, or put into a reference, when its verification mark
confirms it; otherwise it is listed as unconfirmed, never presented as fact.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from kb.models import Source

log = logging.getLogger("kb.citations")

STYLE_DIR = Path(__file__).parent / "csl"
STYLES: dict[str, str] = {"apa": "apa.csl", "vancouver": "vancouver.csl"}

# BibTeX entry types -> CSL item types (https://docs.citationstyles.org/en/stable/specification.html)
CSL_TYPES: dict[str, str] = {
    "article": "article-journal",
    "book": "book",
    "booklet": "pamphlet",
    "inbook": "chapter",
    "incollection": "chapter",
    "inproceedings": "paper-conference",
    "conference": "paper-conference",
    "manual": "report",
    "mastersthesis": "thesis",
    "phdthesis": "thesis",
    "techreport": "report",
    "report": "report",
    "online": "webpage",
    "misc": "document",
    "unpublished": "manuscript",
}
# Types whose container is a journal-like "container-title" rather than a publisher.
_CONTAINER_TITLE_TYPES = {"article-journal", "chapter", "paper-conference"}
_SUFFIX = re.compile(r"^(?P<family>.+?),?\s+(?P<suffix>Jr\.?|Sr\.?|II|III|IV)$")


def _initials(given: str) -> str:
    parts = [p for p in given.replace(".", " ").replace("-", " ").split() if p]
    return "".join(p[0].upper() for p in parts)


def split_name(name: str) -> tuple[str, str]:
    """Return (family, given) for "Family, Given" or "Given Family" or "Family GI" (PubMed)."""
    if "," in name:
        family, _, rest = name.partition(",")
        given = rest.strip()
        if given.lower().startswith("jr"):  # "Zarate, Jr., C. A."
            _, _, given = given.partition(",")
            family = f"{family.strip()} Jr"
        return family.strip(), given.strip()
    parts = name.split()
    if len(parts) >= 2 and parts[-1].isupper() and len(parts[-1]) <= 3:  # "Berman RM"
        return " ".join(parts[:-1]), parts[-1]
    return (parts[-1], " ".join(parts[:-1])) if parts else ("", "")


def is_organisation(name: str) -> bool:
    """True for a corporate author ("U.S. Food and Drug Administration"), which has no given name.

    Personal names are stored "Family, Given" (or PubMed's "Family GI"); a name with neither
    shape and three or more words is an organisation, and must not be cut into initials.
    """
    if "," in name:
        return False
    parts = name.split()
    if len(parts) >= 2 and parts[-1].isupper() and len(parts[-1]) <= 3:
        return False
    return len(parts) >= 3 or len(parts) == 1


def short_authors(source: Source) -> str:
    """"Berman et al." / "Duman & Aghajanian" / "FDA"."""
    families = [split_name(a)[0] for a in source.authors]
    if not families:
        return source.container or "Anonymous"
    if len(families) == 1:
        return source.authors[0] if is_organisation(source.authors[0]) else families[0]
    if len(families) == 2:
        return f"{families[0]} & {families[1]}"
    return f"{families[0]} et al."


# --- CSL-JSON ------------------------------------------------------------------------------


def csl_name(name: str) -> dict[str, str]:
    """One author as a CSL name object: {"family", "given"[, "suffix"]} or {"literal"}."""
    if is_organisation(name):
        return {"literal": name}
    family, given = split_name(name)
    found = _SUFFIX.match(family)
    result = {"family": family, "given": given}
    if found:  # "Zarate Jr." -> family "Zarate", suffix "Jr."
        result = {"family": found["family"], "given": given, "suffix": found["suffix"]}
        if not result["suffix"].endswith(".") and result["suffix"] in {"Jr", "Sr"}:
            result["suffix"] += "."
    return {k: v for k, v in result.items() if v}


def csl_item(source: Source, *, full: bool = False) -> dict[str, Any]:
    """The source as a CSL-JSON item, with only confirmed identifiers.

    *full* adds what an export carries beyond a reference (abstract, keywords, PMID, PMCID and a
    note naming unconfirmed fields); references themselves use the short form.
    """
    kind = CSL_TYPES.get(source.type.lower(), "document")
    item: dict[str, Any] = {"id": source.id, "type": kind, "title": source.title}
    if source.authors:
        item["author"] = [csl_name(a) for a in source.authors]
    if source.container:
        item["container-title" if kind in _CONTAINER_TITLE_TYPES else "publisher"] = source.container
    if source.year:
        item["issued"] = {"date-parts": [[source.year]]}
    for name, key in (("volume", "volume"), ("issue", "issue"), ("pages", "page")):
        if getattr(source, name):
            item[key] = getattr(source, name)
    ids = confirmed_identifiers(source)
    if "doi" in ids:
        item["DOI"] = ids["doi"]
    if source.url and source.is_confirmed("url"):
        item["URL"] = source.url
    if full:
        if "pmid" in ids:
            item["PMID"] = ids["pmid"]
        if source.pmcid:
            item["PMCID"] = source.pmcid
        if source.abstract:
            item["abstract"] = source.abstract
        if source.keywords:
            item["keyword"] = ", ".join(source.keywords)
        unconfirmed = unconfirmed_fields(source)
        if unconfirmed:
            item["note"] = "Unconfirmed metadata: " + ", ".join(unconfirmed)
    return item


# --- formatting ----------------------------------------------------------------------------

_citeproc_lock = threading.Lock()  # citeproc-py keeps state on the style while rendering


@lru_cache(maxsize=4)
def _style(name: str) -> Any:
    from citeproc import CitationStylesStyle

    return CitationStylesStyle(str(STYLE_DIR / STYLES[name]), validate=False)


@lru_cache(maxsize=8192)
def _format_cached(style: str, item_json: str) -> str | None:
    """Format one CSL item (as JSON, so it can be a cache key); None when citeproc fails."""
    try:
        from citeproc import Citation, CitationItem, CitationStylesBibliography, formatter
        from citeproc.source.json import CiteProcJSON

        item = json.loads(item_json)
        with _citeproc_lock:
            bibliography = CitationStylesBibliography(_style(style), CiteProcJSON([item]), formatter.plain)
            bibliography.register(Citation([CitationItem(item["id"])]))
            text = str(bibliography.bibliography()[0])
    except Exception:  # any citeproc failure falls back to the built-in formatter
        log.warning("citeproc could not format %s in %s style", json.loads(item_json).get("id"), style,
                    exc_info=True)
        return None
    text = re.sub(r"^\s*\[?\d+\]?\.?\s*", "", text) if style == "vancouver" else text  # drop "1."
    return " ".join(text.split())


def format_reference(source: Source, style: str) -> str:
    """The reference in *style* ("apa" or "vancouver"), formatted by citeproc-py (cached)."""
    if style not in STYLES:
        raise ValueError(f"unknown citation style {style!r}: use one of {', '.join(STYLES)}")
    item_json = json.dumps(csl_item(source), sort_keys=True)
    formatted = _format_cached(style, item_json)
    if formatted:
        return formatted
    return _vancouver_plain(source) if style == "vancouver" else _apa_plain(source)


def vancouver(source: Source) -> str:
    """A Vancouver (NLM, ICMJE) reference: authors, title, journal year;vol(issue):pages, DOI."""
    return format_reference(source, "vancouver")


def apa(source: Source) -> str:
    """An APA 7 reference: authors (year), title, journal, volume(issue), pages, DOI."""
    return format_reference(source, "apa")


def _vancouver_plain(source: Source) -> str:
    """The built-in Vancouver formatter, used when citeproc-py cannot format a record."""
    names = []
    for author in source.authors[:6]:
        if is_organisation(author):
            names.append(author)
            continue
        family, given = split_name(author)
        names.append(f"{family} {_initials(given)}".strip())
    if len(source.authors) > 6:
        names.append("et al")
    parts = [", ".join(names) + "." if names else ""]
    parts.append(source.title.rstrip(".") + ".")
    venue = source.container
    detail = f"{source.year or 'n.d.'}"
    if source.volume:
        detail += f";{source.volume}"
        if source.issue:
            detail += f"({source.issue})"
    if source.pages:
        detail += f":{source.pages}"
    parts.append(f"{venue}. {detail}." if venue else f"{detail}.")
    doi = confirmed_identifiers(source).get("doi")
    if doi:
        parts.append(f"doi:{doi}")
    return " ".join(p for p in parts if p)


def _apa_plain(source: Source) -> str:
    """The built-in APA formatter, used when citeproc-py cannot format a record."""
    names = []
    for author in source.authors[:20]:
        if is_organisation(author):
            names.append(author)
            continue
        family, given = split_name(author)
        initials = " ".join(f"{c}." for c in _initials(given))
        names.append(f"{family}, {initials}".strip(", "))
    if len(names) > 1:
        authors = ", ".join(names[:-1]) + ", & " + names[-1]
    else:
        authors = names[0] if names else (source.container or "Anonymous")
    text = f"{authors} ({source.year or 'n.d.'}). {source.title.rstrip('.')}."
    if source.container:
        text += f" {source.container}"
        if source.volume:
            text += f", {source.volume}"
            if source.issue:
                text += f"({source.issue})"
        if source.pages:
            text += f", {source.pages}"
        text += "."
    doi = confirmed_identifiers(source).get("doi")
    if doi:
        text += f" https://doi.org/{doi}"
    return text


# --- identifiers and cards -----------------------------------------------------------------


def confirmed_identifiers(source: Source) -> dict[str, str]:
    """The DOI and PMID that may be shown as fact (confirmed by their verification marks)."""
    found = {}
    for name in ("doi", "pmid"):
        value = getattr(source, name)
        if value and source.is_confirmed(name):
            found[name] = value
    return found


def unconfirmed_fields(source: Source) -> list[str]:
    """Metadata fields that have a value but no confirming verification mark."""
    fields = {"title": source.title, "authors": source.authors, "container": source.container,
              "year": source.year, "volume": source.volume, "issue": source.issue,
              "pages": source.pages, "doi": source.doi, "pmid": source.pmid}
    return [name for name, value in fields.items() if value and not source.is_confirmed(name)]


def links(source: Source) -> dict[str, str]:
    """Resolver links for confirmed identifiers only."""
    ids = confirmed_identifiers(source)
    found = {}
    if "doi" in ids:
        found["doi"] = f"https://doi.org/{ids['doi']}"
    if "pmid" in ids:
        found["pubmed"] = f"https://pubmed.ncbi.nlm.nih.gov/{ids['pmid']}/"
    if source.url and source.is_confirmed("url"):
        found["url"] = source.url
    return found


def source_card(source: Source, design_label: str = "") -> dict[str, Any]:
    """The compact source shown beside every claim: enough to cite it and follow it."""
    ids = confirmed_identifiers(source)
    unconfirmed = {name: getattr(source, name) for name in ("doi", "pmid")
                   if getattr(source, name) and name not in ids}
    return {
        "id": source.id,
        "title": source.title,
        "authors": short_authors(source),
        "year": source.year,
        "container": source.container,
        "citation": vancouver(source),
        "doi": ids.get("doi"),
        "pmid": ids.get("pmid"),
        "links": links(source),
        "unconfirmed_identifiers": unconfirmed,
        "design": source.design or None,
        "design_label": design_label or None,
        "evidence_level": source.evidence_level,
        # Every search hit and claim page must say when its source is retracted or questioned.
        "retracted": source.retracted,
        "notices": [n.to_dict() for n in source.notices_about()],
    }


def warm(sources: list[Source]) -> None:
    """Format the sources' references once, so later pages find them in the cache.

    Vancouver first: every search result shows it; APA only the source pages. At most half the
    cache per style, strongest evidence first (the store's order): past that the cache would
    evict what was just formatted, and a knowledge base of 100,000 sources spent minutes of CPU
    beside the requests it was meant to speed up.
    """
    limit = (_format_cached.cache_info().maxsize or len(sources)) // 2
    for style in ("vancouver", "apa"):
        for source in sources[:limit]:
            format_reference(source, style)
