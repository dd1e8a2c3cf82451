"""Search requests and results: plain data shared by the facade, the engines, the CLI and the web."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the grammar lives with the engines that compile it
    from kb.grammar import ParsedQuery

SORTS: tuple[str, ...] = ("relevance", "evidence", "newest", "oldest")
FILTER_KINDS: tuple[str, ...] = ("condition", "mechanism", "intervention", "design", "outcome")
STANCE_FILTERS: tuple[str, ...] = ("supports", "limits", "contradicts", "none")


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """What a person asked for, validated by ``KnowledgeBase.search``."""

    q: str = ""
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> term ids
    sources: tuple[str, ...] = ()
    stance: tuple[str, ...] = ()
    year_from: int | None = None
    year_to: int | None = None
    sort: str = "relevance"
    page: int = 1
    limit: int = 20
    expand: bool = True  # expand vocabulary terms in the query through synonyms and hierarchy
    exclude_retracted: bool = False  # leave out claims of retracted sources (Source.retracted)
    parsed: ParsedQuery | None = None  # q as parsed by KnowledgeBase.validate


@dataclass(frozen=True, slots=True)
class EngineQuery:
    """A search as an engine runs it: the text plus vocabulary analysis and resolved filters."""

    text: str
    # The parsed query (kb.grammar); None reads *text* with the grammar and its caps.
    parsed: ParsedQuery | None = None
    expansions: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (term id, phrases) found in text
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> term ids (any of)
    sources: tuple[str, ...] = ()
    stance: tuple[str, ...] = ()
    year_from: int | None = None
    year_to: int | None = None
    exclude_retracted: bool = False
    sort: str = "relevance"
    offset: int = 0
    limit: int = 20
    facets: bool = True  # count tags and years over all matches
    suggest: bool = False  # respell unknown words ("did you mean")
    time_budget: float | None = None  # seconds of matching before results are cut (partial)


@dataclass(frozen=True, slots=True)
class EngineHit:
    """One ranked document: its id, score, and the highlighted text (HTML, already escaped)."""

    id: str
    score: float
    highlight: str
    terms: tuple[str, ...] = ()  # query words that matched it


@dataclass(frozen=True, slots=True)
class EngineResult:
    """What an engine returns for one query."""

    total: int
    hits: tuple[EngineHit, ...]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> term id -> count
    years: dict[int, int] = field(default_factory=dict)
    # year -> evidence level (None: unranked) -> claims, for the search page's timeline; counted
    # in the same pass as *years*, so it costs one dictionary update per matched claim.
    year_levels: dict[int, dict[int | None, int]] = field(default_factory=dict)
    suggestion: str | None = None  # a respelled query when words are not in the index
    partial: bool = False  # the time budget ran out: total and facets count what was scored
    # How strongly the best match covers the query (see WhooshEngine._coverage): the query's
    # content words (positive word and phrase clauses), and the most of them any one match has.
    content_words: int = 0
    best_coverage: int = 0

    @property
    def weak(self) -> bool:
        """Matches exist but none has more than half of the query's content words."""
        return bool(self.total) and self.content_words > 0 and 2 * self.best_coverage <= self.content_words


@dataclass(frozen=True, slots=True)
class FacetValue:
    id: str
    label: str
    count: int
    selected: bool = False


@dataclass(frozen=True, slots=True)
class ClaimHit:
    """A claim that matched, with its source, ready to show."""

    claim: dict[str, Any]  # Claim.to_dict()
    source: dict[str, Any]  # compact source card: id, citation, doi/pmid links, level
    score: float
    highlight: str  # claim text with <mark> around matches; HTML-escaped

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "highlight": self.highlight, **self.claim, "source": self.source}


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results, the facet counts of all matches, and what the query meant."""

    query: str
    total: int
    page: int
    limit: int
    sort: str
    hits: tuple[ClaimHit, ...]
    facets: dict[str, tuple[FacetValue, ...]]
    years: dict[int, int]
    filters: dict[str, Any]
    expanded_terms: tuple[dict[str, str], ...] = ()  # vocabulary terms the query was expanded with
    did_you_mean: str | None = None
    partial: bool = False  # the time budget ran out: hits, total and facets cover part of the index
    year_levels: dict[int, dict[int | None, int]] = field(default_factory=dict)  # see EngineResult
    # No claim matches more than half of the query's content words (EngineResult.weak): the
    # hits are only the closest, and the page says so instead of implying an answer.
    weak_match: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "total": self.total,
            "page": self.page,
            "pages": self.pages,
            "limit": self.limit,
            "sort": self.sort,
            "filters": self.filters,
            "expanded_terms": list(self.expanded_terms),
            "did_you_mean": self.did_you_mean,
            "partial": self.partial,
            "weak_match": self.weak_match,
            "hits": [hit.to_dict() for hit in self.hits],
            "facets": {kind: [{"id": v.id, "label": v.label, "count": v.count, "selected": v.selected}
                              for v in values] for kind, values in self.facets.items()},
            "years": {str(year): count for year, count in sorted(self.years.items())},
        }
