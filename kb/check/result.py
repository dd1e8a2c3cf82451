"""The article checker's results: plain, frozen records that serialise to the JSON document.

The JSON shape (``CheckResult.to_dict``) is the contract shared by ``kb check --format json``,
``POST /api/v1/check`` and the reports; keys are only ever added, never renamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VERDICTS: tuple[str, ...] = ("supported", "partly_supported", "contradicted", "unsupported")

# What a cited source does for the sentence that cites it.
CITATION_OUTCOMES: tuple[str, ...] = ("backs", "partly_backs", "does_not_back", "contradicts", "unknown")


@dataclass(frozen=True, slots=True)
class EvidenceSource:
    """The source of a piece of evidence, with only confirmed identifiers (else None)."""

    id: str
    doi: str | None
    pmid: str | None
    title: str
    year: int | None
    citation: str  # Vancouver style
    apa: str | None  # APA style; only for suggested citations
    authors: str  # "Berman et al."
    evidence_level: int | None
    design: str | None
    retracted: bool = False  # shown with a badge; a retracted source never backs a verdict

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "doi": self.doi, "pmid": self.pmid, "title": self.title,
                "year": self.year, "citation": self.citation, "apa": self.apa,
                "authors": self.authors, "evidence_level": self.evidence_level,
                "design": self.design, "retracted": self.retracted}


@dataclass(frozen=True, slots=True)
class Evidence:
    """A knowledge-base claim that bears on a sentence, and how well it covers it."""

    claim_id: str
    text: str
    score: float  # coverage of the sentence by this claim, 0..1 (see kb.check.verdict)
    match_score: float  # the matcher's score relative to its best hit for the sentence, 0..1
    stance: str | None
    agrees: bool  # the claim points the same way as the sentence (see kb.check.verdict)
    shared_terms: tuple[str, ...]
    source: EvidenceSource
    # The verifier's reading (kb.verify): "supports", "contradicts" or "neutral", with P(supports)
    # and P(contradicts); None on a build checked without the verifier model.
    relation: str | None = None
    support: float | None = None
    contradict: float | None = None
    locator: str | None = None  # where the claim stands in its source ("abstract, sentence 4")

    def to_dict(self) -> dict[str, Any]:
        return {"claim_id": self.claim_id, "text": self.text, "score": self.score,
                "match_score": self.match_score, "stance": self.stance, "agrees": self.agrees,
                "shared_terms": list(self.shared_terms), "source": self.source.to_dict(),
                "relation": self.relation, "support": self.support, "contradict": self.contradict,
                "locator": self.locator}


@dataclass(frozen=True, slots=True)
class CitationCheck:
    """Whether a reference a sentence cites backs it, judged on that source's own claims."""

    reference: str  # reference id
    source: str | None  # resolved source id, None when the reference is not in the knowledge base
    outcome: str  # one of CITATION_OUTCOMES
    score: float
    reason: str
    claim_id: str | None = None  # the cited source's claim that came closest

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "source": self.source, "outcome": self.outcome,
                "score": self.score, "reason": self.reason, "claim_id": self.claim_id}


@dataclass(frozen=True, slots=True)
class SentenceResult:
    """One unit of the article (a sentence, heading or list item) and what the checker made of it."""

    text: str
    start: int  # offsets into CheckResult.text
    end: int
    kind: str  # "sentence", "heading" or "item"
    checkworthy: bool
    category: str | None  # what kind of claim it makes: finding, mechanism, safety, regulatory, number
    verdict: str | None  # one of VERDICTS for check-worthy sentences, else None
    reason: str  # why it was skipped, or why it got its verdict
    cited: tuple[str, ...] = ()  # reference ids
    evidence: tuple[Evidence, ...] = ()
    citations: tuple[CitationCheck, ...] = ()
    suggestions: tuple[EvidenceSource, ...] = ()  # sources to cite when it cites nothing
    problems: tuple[str, ...] = ()  # citation problems found in the sentence itself

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end, "kind": self.kind,
                "checkworthy": self.checkworthy, "category": self.category,
                "verdict": self.verdict, "reason": self.reason, "cited": list(self.cited),
                "evidence": [e.to_dict() for e in self.evidence],
                "citations": [c.to_dict() for c in self.citations],
                "suggestions": [s.to_dict() for s in self.suggestions],
                "problems": list(self.problems)}


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    """The knowledge-base source a reference was resolved to, and how."""

    id: str
    doi: str | None  # confirmed identifiers only
    pmid: str | None
    title: str
    year: int | None
    citation: str
    match: str  # "doi", "pmid", "title" or "author-year"
    confidence: float  # 0..1; 1.0 for an identifier

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "doi": self.doi, "pmid": self.pmid, "title": self.title,
                "year": self.year, "citation": self.citation, "match": self.match,
                "confidence": self.confidence}


@dataclass(frozen=True, slots=True)
class Reference:
    """An entry of the article's reference list, or an inline author-year citation with no entry."""

    id: str
    text: str
    start: int | None  # offsets into CheckResult.text; None for references made up from inline citations
    end: int | None
    number: int | None = None
    doi: str | None = None  # as written in the article
    pmid: str | None = None
    year: int | None = None
    first_author: str | None = None
    inline: bool = False  # True: made from an inline citation ("Berman 2000"), not a list entry
    resolved: ResolvedSource | None = None
    problem: str | None = None  # placeholder, unresolved, unreadable, doi_mismatch, uncited
    detail: str | None = None  # the problem in words, saying what to do

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "start": self.start, "end": self.end,
                "number": self.number, "doi": self.doi, "pmid": self.pmid, "year": self.year,
                "first_author": self.first_author, "inline": self.inline,
                "resolved": self.resolved.to_dict() if self.resolved else None,
                "problem": self.problem, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Problem:
    """Something a writer should fix, with where it is (a sentence index or a reference id)."""

    kind: str  # contradicted, unsupported, citation_does_not_back, citation_contradicts, citation_retracted,
    #            placeholder, unresolved, unreadable, missing_reference, doi_mismatch, no_references
    message: str
    sentence: int | None = None  # index into CheckResult.sentences
    reference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "sentence": self.sentence,
                "reference": self.reference}


@dataclass(frozen=True, slots=True)
class Truncation:
    """Why a check stopped before the end of the article, and how far it got.

    A check is capped per request (``Settings.max_check_units``, ``max_check_references``,
    ``check_time_budget_s``) so one article cannot hold a server thread for minutes; the part that
    was checked is reported as usual, and this says what was left out.
    """

    reason: str  # "max_units", "max_references" or "time_budget": the first limit reached
    units_checked: int
    units_total: int  # the article's sentences, headings and items outside its reference list
    references_checked: int
    references_total: int
    message: str  # what was left out and what to do, for people

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "units_checked": self.units_checked,
                "units_total": self.units_total, "references_checked": self.references_checked,
                "references_total": self.references_total, "message": self.message}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Everything the checker found in one article."""

    text: str  # the text that was analysed (HTML reduced to text); every offset refers to it
    content_type: str  # "text", "markdown" or "html": how the input was read
    sentences: tuple[SentenceResult, ...]
    references: tuple[Reference, ...]
    problems: tuple[Problem, ...]
    reference_section: tuple[int, int] | None = None  # offsets of the reference list, if found
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    truncated: Truncation | None = None  # set when a cap stopped the check before the end

    @property
    def claims(self) -> tuple[SentenceResult, ...]:
        return self.sentences

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``kb check --format json`` and ``POST /api/v1/check``."""
        return {
            "ok": True,
            "content_type": self.content_type,
            "counts": dict(self.counts),
            "claims": [s.to_dict() for s in self.sentences],
            "references": [r.to_dict() for r in self.references],
            "problems": [p.to_dict() for p in self.problems],
            "reference_section": ({"start": self.reference_section[0], "end": self.reference_section[1]}
                                  if self.reference_section else None),
            "text": self.text,
            "seconds": self.seconds,
            "truncated": self.truncated.to_dict() if self.truncated else None,
        }
