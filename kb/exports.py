"""Export a source as BibTeX, RIS or CSL-JSON, for reference managers (Zotero, EndNote, Mendeley).

Exports carry only confirmed identifiers: a DOI or PMID whose verification mark does not confirm
it is left out, so a reference manager never stores a guessed identifier as fact. Fields that
are present but unconfirmed are named in a comment (BibTeX), an N1 note (RIS) or "note" (CSL-JSON).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from kb.citations import confirmed_identifiers, csl_item, is_organisation, split_name, unconfirmed_fields
from kb.models import Source


@dataclass(frozen=True, slots=True)
class ExportFormat:
    """How one export format is served: its name, media type and file extension."""

    name: str
    media_type: str
    extension: str
    label: str


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "bibtex": ExportFormat("bibtex", "application/x-bibtex; charset=utf-8", "bib", "BibTeX"),
    "ris": ExportFormat("ris", "application/x-research-info-systems; charset=utf-8", "ris", "RIS"),
    "csl-json": ExportFormat("csl-json", "application/vnd.citationstyles.csl+json; charset=utf-8",
                             "json", "CSL-JSON"),
}

# BibTeX entry types we write; anything else is exported as @misc.
_BIBTEX_TYPES = {"article", "book", "booklet", "inbook", "incollection", "inproceedings", "manual",
                 "mastersthesis", "phdthesis", "techreport", "misc", "unpublished"}
# Characters that LaTeX treats as commands; escaped so a title such as "5% & <10 mg" survives.
_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%", "$": r"\$",
    "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIALS))


def export(source: Source, fmt: str) -> str:
    """The source in export format *fmt* (a key of EXPORT_FORMATS); ValueError for others."""
    if fmt == "bibtex":
        return bibtex(source)
    if fmt == "ris":
        return ris(source)
    if fmt == "csl-json":
        return csl_json(source)
    raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")


def _latex(text: str) -> str:
    """Escape LaTeX specials and flatten whitespace, so the value is one well-formed field."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIALS[m.group(0)], " ".join(text.split()))


def _bibtex_name(name: str) -> str:
    if is_organisation(name):
        return "{" + _latex(name) + "}"  # braces keep an organisation from being split into names
    family, given = split_name(name)
    return f"{_latex(family)}, {_latex(given)}" if given else _latex(family)


def bibtex(source: Source) -> str:
    """One BibTeX entry; titles keep their case in double braces; pages use "--"."""
    kind = source.type.lower() if source.type.lower() in _BIBTEX_TYPES else "misc"
    fields: list[tuple[str, str]] = []
    if source.authors:
        fields.append(("author", " and ".join(_bibtex_name(a) for a in source.authors)))
    fields.append(("title", "{" + _latex(source.title) + "}"))
    if source.container:
        container_field = {"article": "journal", "inproceedings": "booktitle", "incollection": "booktitle",
                           "inbook": "booktitle", "book": "publisher", "techreport": "institution",
                           }.get(kind, "howpublished")
        fields.append((container_field, _latex(source.container)))
    if source.year:
        fields.append(("year", str(source.year)))
    for name, key in (("volume", "volume"), ("issue", "number")):
        if getattr(source, name):
            fields.append((key, _latex(getattr(source, name))))
    if source.pages:
        fields.append(("pages", _latex(source.pages).replace("-", "--")))
    ids = confirmed_identifiers(source)
    # Identifiers and URLs are verbatim in BibTeX: leave out any that would unbalance the braces.
    verbatim = [("doi", ids.get("doi", "")), ("pmid", ids.get("pmid", "")), ("pmcid", source.pmcid),
                ("url", source.url if source.is_confirmed("url") else "")]
    fields.extend((key, value) for key, value in verbatim if value and not set(value) & {"{", "}", "\\"})
    if source.abstract:
        fields.append(("abstract", _latex(source.abstract)))
    if source.keywords:
        fields.append(("keywords", _latex(", ".join(source.keywords))))
    key = re.sub(r"[^A-Za-z0-9_.:+-]", "", source.id) or "source"
    lines = [f"% {key}: exported by Evidence KB"]
    unconfirmed = unconfirmed_fields(source)
    if unconfirmed:
        lines.append(f"% Unconfirmed metadata (check before relying on it): {', '.join(unconfirmed)}")
    lines.append(f"@{kind}{{{key},")
    width = max(len(name) for name, _ in fields)
    lines.extend(f"  {name.ljust(width)} = {{{value}}}," for name, value in fields)
    lines[-1] = lines[-1].rstrip(",")
    lines.append("}")
    return "\n".join(lines) + "\n"


_RIS_TYPES = {"article": "JOUR", "book": "BOOK", "inbook": "CHAP", "incollection": "CHAP",
              "inproceedings": "CPAPER", "conference": "CPAPER", "techreport": "RPRT",
              "report": "RPRT", "phdthesis": "THES", "mastersthesis": "THES", "online": "ELEC",
              "unpublished": "UNPB"}


def _ris_value(text: str) -> str:
    return " ".join(str(text).split())  # one line per tag: RIS has no continuation lines


def ris(source: Source) -> str:
    """One RIS record (TY ... ER), CRLF line ends as the format's readers expect."""
    kind = _RIS_TYPES.get(source.type.lower(), "GEN")
    lines = [("TY", kind)]
    for author in source.authors:
        if is_organisation(author):
            lines.append(("AU", author))
        else:
            family, given = split_name(author)
            lines.append(("AU", f"{family}, {given}" if given else family))
    lines.append(("TI", source.title))
    if source.container:
        lines.append(("T2" if kind in {"JOUR", "CHAP", "CPAPER"} else "PB", source.container))
        if kind == "JOUR":
            lines.append(("JO", source.container))
    if source.year:
        lines.append(("PY", str(source.year)))
    if source.volume:
        lines.append(("VL", source.volume))
    if source.issue:
        lines.append(("IS", source.issue))
    if source.pages:
        start, _, end = source.pages.partition("-")
        lines.append(("SP", start))
        if end:
            lines.append(("EP", end))
    ids = confirmed_identifiers(source)
    if "doi" in ids:
        lines.append(("DO", ids["doi"]))
    if "pmid" in ids:
        lines.append(("AN", ids["pmid"]))  # accession number: the PubMed id
    if source.url and source.is_confirmed("url"):
        lines.append(("UR", source.url))
    elif "doi" in ids:
        lines.append(("UR", f"https://doi.org/{ids['doi']}"))
    if source.abstract:
        lines.append(("AB", source.abstract))
    lines.extend(("KW", keyword) for keyword in source.keywords)
    unconfirmed = unconfirmed_fields(source)
    if unconfirmed:
        lines.append(("N1", "Unconfirmed metadata: " + ", ".join(unconfirmed)))
    lines.append(("ID", source.id))
    text = "".join(f"{tag}  - {_ris_value(value)}\r\n" for tag, value in lines if _ris_value(value))
    return text + "ER  - \r\n"


def csl_json(source: Source) -> str:
    """A CSL-JSON array holding one item (the form Zotero and pandoc import)."""
    return json.dumps([csl_item(source, full=True)], ensure_ascii=False, indent=2) + "\n"
