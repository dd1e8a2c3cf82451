"""The records Evidence KB deals in: sources, claims, vocabulary terms and search results.

Every record is a frozen, typed dataclass that serialises to plain JSON with ``to_dict``.
Identifiers are normalised before a record is built (see ``kb.ids``), never after.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Stance = Literal["supports", "limits", "contradicts"]
STANCES: tuple[str, ...] = ("supports", "limits", "contradicts")

# Verification marks a curator (or an importer) gives each metadata field.
# Only "verified" and "verified-secondary" count as confirmed; anything else is shown as unconfirmed.
VERIFICATION_MARKS: tuple[str, ...] = (
    "verified",
    "verified-secondary",
    "derived-from-publisher-URL",
    "partial",
    "unverified",
)
CONFIRMED_MARKS: frozenset[str] = frozenset({"verified", "verified-secondary"})

# Editorial notices a work can carry (PubMed CommentsCorrections, Crossref updates, a curator's
# BibTeX field). Only a retraction stops a source from backing anything; the others are shown.
NoticeKind = Literal["retraction", "correction", "expression_of_concern"]
NOTICE_KINDS: tuple[str, ...] = ("retraction", "correction", "expression_of_concern")
# "in": this source is retracted/corrected in the notice identified; "of": this source *is* the
# notice, for the work identified (the build copies it onto that work as an "in" notice).
NoticeRole = Literal["in", "of"]
RETRACTED_TYPE = "retracted publication"  # PubMed's publication type, lower-cased


@dataclass(frozen=True, slots=True)
class Notice:
    """A retraction, correction or expression of concern about a work, and where we read it."""

    kind: NoticeKind
    role: NoticeRole = "in"
    pmid: str = ""  # the other record's PMID (the notice's, or for role "of" the work's)
    doi: str = ""  # likewise its DOI, normalised
    citation: str = ""  # the citation text the record gives, e.g. "Lancet. 2010 Feb 6;375(9713):445."
    date: str = ""  # as given: "2010-02-06", "2010"; "" when the record has none
    provenance: str = ""  # "file:record field", e.g. "wakefield.xml:3 CommentsCorrections RetractionIn"

    def key(self) -> tuple[str, str, str]:
        """What makes two notices one: the same kind and role about the same identifier."""
        return (self.kind, self.role, self.pmid or self.doi or self.citation.casefold())

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Notice:
        """Read ``to_dict`` output; ValueError naming the fix when it is not one."""
        if not isinstance(data, dict):
            raise ValueError("a notice must be an object with a 'kind'")  # noqa: TRY004
        kind, role = data.get("kind"), data.get("role", "in")
        if kind not in NOTICE_KINDS:
            raise ValueError(f"notice kind {kind!r} is not one of {', '.join(NOTICE_KINDS)}")
        if role not in ("in", "of"):
            raise ValueError(f"notice role {role!r} is not 'in' or 'of'")
        unknown = set(data) - {"kind", "role", "pmid", "doi", "citation", "date", "provenance"}
        if unknown:
            raise ValueError(f"unknown notice field(s) {', '.join(sorted(unknown))}")
        return cls(kind=kind, role=role, **{name: str(data.get(name) or "")
                                            for name in ("pmid", "doi", "citation", "date", "provenance")})


def merge_notices(*groups: tuple[Notice, ...]) -> tuple[Notice, ...]:
    """All notices of *groups*, each once (the first reading of a notice keeps its provenance)."""
    found: dict[tuple[str, str, str], Notice] = {}
    for group in groups:
        for notice in group:
            found.setdefault(notice.key(), notice)
    return tuple(found.values())


# The kinds of controlled term a claim can be tagged with.
TAG_KINDS: tuple[str, ...] = ("condition", "mechanism", "intervention", "design", "outcome")


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a record came from: a corpus file (relative to the corpus folder) and its line."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class Source:
    """One citable work (article, review, regulatory document), merged from its corpus records."""

    id: str  # the citation key, e.g. "berman2000antidepressant"; also the URL id
    type: str  # BibTeX entry type: article, misc, book, ...
    title: str
    authors: tuple[str, ...] = ()  # "Family, Given" each
    year: int | None = None
    container: str = ""  # journal, book or agency that published it
    volume: str = ""
    issue: str = ""
    pages: str = ""  # "351-354", normalised to a hyphen
    doi: str = ""  # lower-case, no resolver prefix; "" when unknown or left out on purpose
    pmid: str = ""  # digits only
    pmcid: str = ""  # "PMC1234567"
    url: str = ""
    abstract: str = ""  # plain text; for structured abstracts the parts joined by blank lines
    abstract_sections: tuple[tuple[str, str], ...] = ()  # (label such as "RESULTS" or "", text)
    # Full-text paragraphs read from a PDF (kb.ingest.pdf): (section, page, paragraph, text), the
    # section one of "abstract", "methods", "results", "discussion", "conclusion".
    full_text: tuple[tuple[str, int, int, str], ...] = ()
    summary: str = ""  # curated summary in our own words (paragraphs separated by blank lines)
    design: str = ""  # a vocabulary term id of kind "design"
    evidence_level: int | None = None  # 1 = strongest; None = unranked (e.g. regulatory)
    population: str = ""
    sample_size: str = ""
    intervention: str = ""
    comparator: str = ""
    primary_outcome: str = ""
    keywords: tuple[str, ...] = ()  # e.g. MeSH headings from PubMed
    publication_types: tuple[str, ...] = ()
    notices: tuple[Notice, ...] = ()  # retractions, corrections, expressions of concern (see Notice)
    verification: dict[str, str] = field(default_factory=dict)  # field name -> mark
    verification_notes: dict[str, str] = field(default_factory=dict)  # field name -> where it was checked
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source-level terms, kind -> ids
    # The UTC date (YYYY-MM-DD) the work entered the knowledge base: set by `kb import` on a new
    # record, or by a summary's `added` front matter; "" when unknown (older records: the feeds
    # then fall back to the build time and say so).
    added: str = ""
    provenance: tuple[Provenance, ...] = ()

    @property
    def retracted(self) -> bool:
        """True when a record says this work is retracted: a retraction notice about it, or
        PubMed's "Retracted Publication" type (the notice itself is "Retraction of Publication")."""
        return any(n.kind == "retraction" and n.role == "in" for n in self.notices) or \
            any(kind.strip().lower() == RETRACTED_TYPE for kind in self.publication_types)

    def notices_about(self) -> tuple[Notice, ...]:
        """The notices about this work (not the ones this source, being a notice, issues)."""
        return tuple(n for n in self.notices if n.role == "in")

    def is_confirmed(self, field_name: str) -> bool:
        """True when *field_name* carries a confirmed verification mark."""
        return self.verification.get(field_name, "unverified") in CONFIRMED_MARKS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["provenance"] = [str(p) for p in self.provenance]
        data["authors"] = list(self.authors)
        data["keywords"] = list(self.keywords)
        data["publication_types"] = list(self.publication_types)
        data["notices"] = [n.to_dict() for n in self.notices]
        data["abstract_sections"] = [{"label": lab, "text": txt} for lab, txt in self.abstract_sections]
        data["full_text"] = [{"section": sec, "page": page, "paragraph": par, "text": txt}
                             for sec, page, par, txt in self.full_text]
        data["tags"] = {kind: list(ids) for kind, ids in self.tags.items()}
        return data


@dataclass(frozen=True, slots=True)
class Locator:
    """Where a claim's text stands in its source.

    section: "summary", "claims", "key results", "abstract", "title"
    index: 1-based position in that section (sentence number, or list item number)
    label: a structured-abstract label such as "RESULTS", or a summary paragraph number
    page: the 1-based PDF page of a full-text claim (its paragraph is then counted on that page)
    """

    section: str
    index: int
    label: str = ""
    paragraph: int | None = None
    page: int | None = None

    def __str__(self) -> str:
        where = self.section
        if self.label:
            where += f" ({self.label})"
        if self.page is not None:
            where += f", page {self.page}"
        if self.paragraph is not None:
            where += f", paragraph {self.paragraph}"
        noun = "item" if self.section in {"claims", "key results"} else "sentence"
        return f"{where}, {noun} {self.index}"


@dataclass(frozen=True, slots=True)
class Claim:
    """One statement attributed to a source, quoted verbatim from the corpus text it came from."""

    id: str  # "<source id>-<10 hex of the text's hash>": stable while the text is unchanged
    source_id: str
    text: str
    locator: Locator
    stance: Stance | None = None  # None when the statement takes no stance
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> term ids
    confirmed: bool = True  # False when the numbers in it are marked unverified
    provenance: Provenance | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source_id": self.source_id,
            "text": self.text,
            "locator": asdict(self.locator) | {"text": str(self.locator)},
            "stance": self.stance,
            "tags": {kind: list(ids) for kind, ids in self.tags.items()},
            "confirmed": self.confirmed,
            "provenance": str(self.provenance) if self.provenance else None,
        }


@dataclass(frozen=True, slots=True)
class Term:
    """A controlled-vocabulary term: a condition, mechanism, intervention, design or outcome."""

    id: str
    kind: str
    label: str
    synonyms: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    mesh: str = ""  # MeSH descriptor UI, e.g. "D061218"
    level: int | None = None  # designs only: evidence level, 1 = strongest
    tag: bool = True  # False: used for query expansion only, never tagged automatically
    provenance: Provenance | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["synonyms"] = list(self.synonyms)
        data["parents"] = list(self.parents)
        data["provenance"] = str(self.provenance) if self.provenance else None
        return data


@dataclass(frozen=True, slots=True)
class CorpusProblem:
    """A problem found while reading the corpus, reported as ``file:line: message``."""

    file: str
    line: int | None
    message: str
    severity: Literal["error", "warning"] = "error"
    # An error no lenient build may skip: skipping it would serve the wrong record (a duplicate
    # source key), wrong tags (an unreadable vocabulary) or nothing (no corpus folder), so the
    # build stops with CorpusError instead.
    fatal: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"
