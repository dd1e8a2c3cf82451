"""What the knowledge base says about a question, weighed by evidence: the consensus bar.

``consensus(kb, request)`` runs the question as a search and splits the relevant claims by
stance (supports / limits / contradicts). It differs from a meter that counts every paper alike
in three ways:

Relevance
    The question's leading question word ("does", "is", ...) and its "?" are dropped, then the
    words are searched as on the search page (synonyms and narrower terms included, any filters of
    the request kept, retracted sources left out). When no claim matches most of the question's
    words (the search's weak match) nothing is relevant. Claims that take a stance and score at least
    ``RELATIVE_SCORE`` (a fifth) of the best hit's score are relevant; the rest are too loosely
    related to count. At most ``MAX_HITS`` claims are read.

One vote per source per stance
    A source that makes five supporting claims casts one "supports" vote, not five, so a
    trial summarised in many sentences cannot outvote a meta-analysis stated in one. A source may
    vote once in each stance (a trial that supports an effect and limits it casts both).

Weight = level weight × sample-size factor
    Level weight (``LEVEL_WEIGHTS``; 1 = strongest design): level 1 (systematic review or
    meta-analysis) 5, level 2 (randomised trial) 4, levels 3-4 (non-randomised, observational) 3,
    level 5 (case series) 2, levels 6-8 (preclinical, narrative review, guideline) and unranked
    sources (e.g. regulatory documents) 1.

    Sample-size factor: log10(n) / 2 clamped to 0.5 .. 2, so 10 participants count 0.5, 100 count
    1, 1,000 count 1.5 and 10,000 or more count 2. n is read from the source's curated
    ``sample_size`` field (the participants or patients it names, e.g. "9 studies, 368 patients"
    gives 368), or failing that from the claim text ("n = 123", "123 patients"). A source with
    no stated sample size gets the neutral factor 1 and the result says how many had none.

Not enough evidence
    Fewer than ``MIN_SOURCES`` distinct sources among the relevant claims: the result says so
    (``enough`` is False) rather than drawing a bar from one or two studies.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from kb.errors import BadQuery
from kb.query import ClaimHit, SearchRequest

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase

STANCES: tuple[str, ...] = ("supports", "limits", "contradicts")
LEVEL_WEIGHTS: dict[int, int] = {1: 5, 2: 4, 3: 3, 4: 3, 5: 2, 6: 1, 7: 1, 8: 1}
UNRANKED_WEIGHT = 1
RELATIVE_SCORE = 0.2  # a claim counts when it scores at least this share of the best hit
MAX_HITS = 100
MIN_SOURCES = 3
STRONGEST_SHOWN = 5
QUESTION_WORDS = frozenset({
    "does", "do", "did", "is", "are", "was", "were", "can", "could", "should", "will", "would",
    "may", "might", "has", "have", "how", "what", "which", "who", "why", "when", "where",
})
WEIGHING = (
    "Each source casts one vote per stance, however many claims it makes. A vote weighs its "
    "evidence level (level 1, a systematic review or meta-analysis: 5; level 2, a randomised "
    "trial: 4; levels 3–4: 3; level 5, a case series: 2; levels 6–8 and unranked: 1) times a "
    "sample-size factor (10 participants: 0.5, 100: 1, 1,000: 1.5, 10,000 or more: 2; none "
    "stated: 1). Only claims scoring at least a fifth of the best match count, and fewer than "
    f"{MIN_SOURCES} sources is not enough evidence."
)

_PEOPLE = r"(?:patients|participants|subjects|adults|people|children|adolescents|women|men|" \
          r"individuals|completers|randomi[sz]ed|enrolled|veterans)"
_COUNTED = re.compile(r"(\d[\d,]*)\s+" + _PEOPLE, re.IGNORECASE)
_N_EQUALS = re.compile(r"\bn\s*=\s*(\d[\d,]*)", re.IGNORECASE)
_LEADING = re.compile(r"^\s*(?:about\s+|approximately\s+|~\s*)?(\d[\d,]*)\b(?![.\d])(?!\s*(?:studies|trials|"
                      r"articles|reports|papers|of\b|%|mg|ml))", re.IGNORECASE)


def is_question(text: str) -> bool:
    """Whether *text* asks a question: it ends with "?" or starts with a question word."""
    words = text.strip().split()
    return bool(words) and (text.strip().endswith("?") or words[0].lower() in QUESTION_WORDS)


def question_terms(text: str) -> str:
    """The question as search words: without its leading question word and its "?"."""
    words = text.strip().rstrip("?").strip().split()
    if len(words) > 1 and words[0].lower() in QUESTION_WORDS:
        words = words[1:]
    return " ".join(words)


def _number(text: str) -> int | None:
    digits = text.replace(",", "")
    return int(digits) if digits.isdigit() and int(digits) > 0 else None


def sample_size(field: str, claim_text: str = "") -> int | None:
    """The number of participants a sample-size field (or else a claim's text) states; None if none.

    "18 randomized" -> 18; "9 studies, 368 patients" -> 368; "n = 40" -> 40; "7 completers" -> 7;
    "99 (0.1 mg/kg n=18; ...)" -> 99;
    "60 of 288 identified articles" -> None (articles are not people).
    """
    for text, patterns in ((field, (_LEADING, _COUNTED, _N_EQUALS)), (claim_text, (_COUNTED, _N_EQUALS))):
        for pattern in patterns if text else ():
            found = pattern.search(text)
            n = _number(found.group(1)) if found else None
            if n is not None:
                return n
    return None


def level_weight(level: int | None) -> int:
    return LEVEL_WEIGHTS.get(level, UNRANKED_WEIGHT) if level is not None else UNRANKED_WEIGHT


def size_factor(n: int | None) -> float:
    """log10(n) / 2 clamped to 0.5 .. 2; 1 (neutral) when the sample size is unknown."""
    if n is None:
        return 1.0
    return min(2.0, max(0.5, math.log10(n) / 2))


@dataclass(frozen=True, slots=True)
class Vote:
    """One source's vote in one stance, with its strongest relevant claim."""

    stance: str
    source_id: str
    citation: str
    title: str
    year: int | None
    evidence_level: int | None
    design_label: str | None
    sample_size: int | None
    weight: float
    claim_id: str
    claim_text: str
    claims: int  # relevant claims of this source in this stance (one vote however many)

    def to_dict(self) -> dict[str, Any]:
        return {"stance": self.stance, "source_id": self.source_id, "citation": self.citation,
                "title": self.title, "year": self.year, "evidence_level": self.evidence_level,
                "design_label": self.design_label, "sample_size": self.sample_size,
                "weight": round(self.weight, 3), "claim_id": self.claim_id,
                "claim_text": self.claim_text, "claims": self.claims}


@dataclass(frozen=True, slots=True)
class Tally:
    """One stance: how many sources, their summed weight and its share of all the weight."""

    stance: str
    sources: int
    weight: float
    share: float  # 0..1 of the total weight of all stances
    votes: tuple[Vote, ...]  # heaviest first

    def to_dict(self) -> dict[str, Any]:
        return {"stance": self.stance, "sources": self.sources, "weight": round(self.weight, 3),
                "share": round(self.share, 4), "votes": [v.to_dict() for v in self.votes]}


@dataclass(frozen=True, slots=True)
class Consensus:
    """What the relevant claims say about a question, weighed by evidence level and sample size."""

    question: str
    searched: str  # the words searched for
    enough: bool
    min_sources: int
    sources: int  # distinct sources among the relevant claims
    claims: int  # relevant claims that take a stance
    tallies: tuple[Tally, ...]  # supports, limits, contradicts (always all three)
    strongest: tuple[Vote, ...]  # the heaviest votes of any stance
    sample_sizes_known: int  # sources whose sample size was found
    partial: bool = False  # the search ran out of time
    weak_match: bool = False  # no claim matched most of the question's words, so none counted

    @property
    def message(self) -> str:
        if not self.enough:
            return (f"Not enough evidence: {self.sources} relevant source{'' if self.sources == 1 else 's'} "
                    f"answer this question; at least {self.min_sources} are needed for a consensus.")
        leading = max(self.tallies, key=lambda t: t.weight)
        return (f"{self.sources} sources answer it; the largest share of the weight "
                f"({round(leading.share * 100)}%) {leading.stance} it.")

    def tally(self, stance: str) -> Tally:
        return next(t for t in self.tallies if t.stance == stance)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question, "searched": self.searched, "enough": self.enough,
            "min_sources": self.min_sources, "sources": self.sources, "claims": self.claims,
            "message": self.message, "partial": self.partial, "weak_match": self.weak_match,
            "tallies": [t.to_dict() for t in self.tallies],
            "strongest": [v.to_dict() for v in self.strongest],
            "weighting": {
                "level_weights": {str(k): v for k, v in LEVEL_WEIGHTS.items()},
                "unranked_weight": UNRANKED_WEIGHT,
                "sample_size": "factor log10(n)/2 clamped to 0.5..2; 1 when not stated",
                "sample_sizes_known": self.sample_sizes_known,
                "sample_size_used": self.sample_sizes_known > 0,
                "relative_score": RELATIVE_SCORE,
                "one_vote_per_source_per_stance": True,
                "explanation": WEIGHING,
            },
        }


def consensus(kb: KnowledgeBase, request: SearchRequest) -> Consensus:
    """Weigh the claims relevant to the question in ``request.q`` (its filters narrow the search).

    Raises BadQuery for an empty question or a malformed request, as a search does.
    """
    question = request.q.strip()
    searched = question_terms(question)
    if not searched:
        raise BadQuery("Empty question: ask something, for example: "
                       "q=Does ketamine reduce depressive symptoms?")
    page = kb.search(replace(request, q=searched, page=1, limit=min(MAX_HITS, kb.settings.max_page_size),
                             sort="relevance", exclude_retracted=True, stance=()))
    # A weak match (no hit has most of the question's words) answers nothing: no hit is relevant.
    hits = () if page.weak_match else page.hits
    best = max((hit.score for hit in hits), default=0.0)
    # (stance, source id) -> [claim hits], best first
    grouped: dict[tuple[str, str], list[ClaimHit]] = {}
    for hit in hits:
        stance = hit.claim.get("stance")
        if stance not in STANCES or hit.score < best * RELATIVE_SCORE:
            continue
        grouped.setdefault((stance, hit.source["id"]), []).append(hit)
    votes: list[Vote] = []
    sizes: dict[str, int | None] = {}
    for (stance, source_id), mine in grouped.items():
        source = kb.store.source_by_id[source_id]
        if source_id not in sizes or sizes[source_id] is None:
            sizes[source_id] = sample_size(source.sample_size,
                                           " ".join(h.claim["text"] for h in mine))
        n = sizes[source_id]
        card = mine[0].source
        votes.append(Vote(
            stance=stance, source_id=source_id, citation=card["citation"], title=card["title"],
            year=card["year"], evidence_level=card["evidence_level"], design_label=card["design_label"],
            sample_size=n, weight=level_weight(card["evidence_level"]) * size_factor(n),
            claim_id=mine[0].claim["id"], claim_text=mine[0].claim["text"], claims=len(mine)))
    votes.sort(key=lambda v: (-v.weight, v.evidence_level or 99, v.source_id))
    total = sum(v.weight for v in votes)
    tallies = []
    for stance in STANCES:
        cast = tuple(v for v in votes if v.stance == stance)
        weight = sum(v.weight for v in cast)
        tallies.append(Tally(stance, len(cast), weight, weight / total if total else 0.0, cast))
    sources = len(sizes)
    strongest: list[Vote] = []
    named: set[str] = set()
    for vote in votes:  # each source named once, by its heaviest vote
        if vote.source_id not in named:
            named.add(vote.source_id)
            strongest.append(vote)
    return Consensus(
        question=question, searched=searched, enough=sources >= MIN_SOURCES, min_sources=MIN_SOURCES,
        sources=sources, claims=sum(v.claims for v in votes), tallies=tuple(tallies),
        strongest=tuple(strongest[:STRONGEST_SHOWN]),
        sample_sizes_known=sum(1 for n in sizes.values() if n is not None), partial=page.partial,
        weak_match=page.weak_match)
