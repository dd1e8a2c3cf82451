"""Identifier rules: DOIs, PMIDs, source keys and claim ids. Every id rule lives here.

Identifiers are normalised once, where data enters the system (parsers, query strings).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_DOI = re.compile(r"10\.\d{4,9}/\S+")
_DOI_PREFIXES = re.compile(
    r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/|https?://doi\.org/)", re.IGNORECASE
)
_PMID = re.compile(r"^(?:pmid:\s*)?(\d{1,9})$", re.IGNORECASE)
_PMCID = re.compile(r"^(?:pmcid:\s*)?(PMC\d+)$", re.IGNORECASE)
SOURCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$")
CLAIM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}-[0-9a-f]{10}$")


def normalize_doi(value: str | None) -> str:
    """Return a DOI in lower case without a resolver prefix, or "" if *value* holds none.

    >>> normalize_doi("https://doi.org/10.1001/ARCHPSYC.63.8.856")
    '10.1001/archpsyc.63.8.856'
    >>> normalize_doi("doi:10.1016/S0006-3223(99)00230-9.")
    '10.1016/s0006-3223(99)00230-9'
    >>> normalize_doi("not a doi")
    ''
    """
    if not value:
        return ""
    text = _DOI_PREFIXES.sub("", value.strip())
    match = _DOI.search(text)
    if not match:
        return ""
    return match.group(0).rstrip(".,;").lower()


def normalize_pmid(value: str | int | None) -> str:
    """Return a PubMed id as digits, or "" if *value* is not one.

    >>> normalize_pmid("PMID: 10686270")
    '10686270'
    >>> normalize_pmid("abc")
    ''
    """
    if value is None:
        return ""
    match = _PMID.match(str(value).strip())
    return match.group(1).lstrip("0") if match else ""


def normalize_pmcid(value: str | None) -> str:
    """Return a PubMed Central id as "PMC<digits>", or "".

    >>> normalize_pmcid("pmc12345")
    'PMC12345'
    """
    if not value:
        return ""
    match = _PMCID.match(value.strip())
    return match.group(1).upper() if match else ""


def is_source_id(value: str) -> bool:
    """True when *value* has the shape of a source id (a citation key).

    >>> is_source_id("berman2000antidepressant"), is_source_id("../etc/passwd")
    (True, False)
    """
    return bool(SOURCE_ID.match(value)) and ".." not in value


def is_claim_id(value: str) -> bool:
    """True when *value* has the shape of a claim id."""
    return bool(CLAIM_ID.match(value)) and ".." not in value


def normalize_text_for_id(text: str) -> str:
    """Fold case, Unicode form and whitespace so cosmetic edits keep a claim's id."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split())


def claim_id(source_id: str, text: str) -> str:
    """Return the id of a claim: stable across rebuilds while its source and text are unchanged.

    >>> claim_id("berman2000antidepressant", "Ketamine  improved mood.")
    'berman2000antidepressant-eaab66d37e'
    """
    digest = hashlib.sha1(normalize_text_for_id(text).encode("utf-8")).hexdigest()
    return f"{source_id}-{digest[:10]}"


def make_source_key(first_author: str, year: int | None, title: str) -> str:
    """Build a BibTeX-style key: family name + year + first content word of the title.

    >>> make_source_key("Berman, R. M.", 2000, "Antidepressant effects of ketamine")
    'berman2000antidepressant'
    """
    family = first_author.split(",")[0] if "," in first_author else (first_author.split() or [""])[-1]
    family = _ascii_word(family) or "anon"
    stop = {"a", "an", "the", "of", "on", "in", "and", "for", "to", "with", "is", "are"}
    words = [_ascii_word(w) for w in title.split()]
    word = next((w for w in words if w and w not in stop), "")
    return f"{family}{year or ''}{word}"


def _ascii_word(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z0-9]", "", decomposed.encode("ascii", "ignore").decode().lower())
