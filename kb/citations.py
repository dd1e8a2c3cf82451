"""Citation strings and identifier links for sources, honouring verification marks.

An identifier (DOI, PMID) is only linked when its verification mark confirms it; otherwise it is
listed as unconfirmed, never presented as fact.
"""

from __future__ import annotations

from typing import Any

from kb.models import Source


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


def short_authors(source: Source) -> str:
    """"Berman et al." / "Duman & Aghajanian" / "FDA"."""
    families = [split_name(a)[0] for a in source.authors]
    if not families:
        return source.container or "Anonymous"
    if len(families) == 1:
        return families[0]
    if len(families) == 2:
        return f"{families[0]} & {families[1]}"
    return f"{families[0]} et al."


def vancouver(source: Source) -> str:
    """A Vancouver-style reference (ICMJE): authors, title, journal year;vol(issue):pages."""
    names = []
    for author in source.authors[:6]:
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
    return " ".join(p for p in parts if p)


def apa(source: Source) -> str:
    """An APA 7-style reference."""
    names = []
    for author in source.authors[:20]:
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
    }
