"""The article checker: map every claim in a draft to the sources that back it.

``check_article(text, build)`` (an ``OpenedBuild``; ``KnowledgeBase.check`` passes its own)
reads plain text, Markdown or HTML, cuts it into sentences, headings and list items
(``segment``), decides which make a checkable factual claim (``worthiness``), reads the
reference list and inline citations and resolves them to sources (``references``), finds each
claim's evidence with the build's one matcher and gives it a verdict (``verdict``), and
checks that each cited source backs the sentence citing it. ``report`` renders the result as
Markdown or HTML; ``CheckResult.to_dict`` is the JSON document.

Work per article: one matcher search per check-worthy sentence, plus one per cited source; the
per-claim text analysis is cached across sentences, and the reference list is parsed once.
That work is capped per call (``CheckLimits``: sentences, reference entries and seconds): a
check that reaches a cap stops there and says so in ``CheckResult.truncated``, so a 200 KB
article costs a server thread seconds, not minutes.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from kb.check.references import (
    Citation,
    ReferenceSection,
    by_author_year,
    find_citations,
    find_reference_section,
    known_first_authors,
    normalise,
    notice_problems,
    resolve,
    resolved_source,
    strip_citations,
)
from kb.check.result import (
    VERDICTS,
    CheckResult,
    CitationCheck,
    Evidence,
    EvidenceSource,
    Problem,
    Reference,
    SentenceResult,
    Truncation,
)
from kb.check.segment import Unit, prepare, segment
from kb.check.verdict import (
    PARTIAL,
    Scored,
    SentenceProfile,
    Verdict,
    citation_check,
    decide,
    evidence,
    profile,
    quote_claim,
    scorer_for,
)
from kb.check.verified import VERIFIED, Judged, decide_verified, judge, verified_citation_check
from kb.check.worthiness import assess
from kb.config import Settings
from kb.errors import BadRequest, Busy, PayloadTooLarge
from kb.matching import ClaimMatch, matcher_for
from kb.models import Source
from kb.opened_build import OpenedBuild
from kb.verify import verifier_for

__all__ = [
    "VERDICTS",
    "CheckLimits",
    "CheckResult",
    "CitationCheck",
    "Evidence",
    "EvidenceSource",
    "Problem",
    "Reference",
    "SentenceResult",
    "Truncation",
    "check_article",
]

CANDIDATES = 15  # claims the matcher returns per sentence; the verdict re-reads them all
CITED_CANDIDATES = 5  # claims of a cited source compared with the sentence citing it
EVIDENCE_SHOWN = 5
EVIDENCE_FLOOR = 0.2  # share of the sentence a claim must cover to be listed as evidence
SUGGESTIONS = 3
# References of one sentence compared with it ("[1-40]" names forty); the rest are listed as cited
# but not compared, and the sentence says so. Each costs a matcher search and verifier reads.
CITED_CHECKED = 10


@dataclass(frozen=True, slots=True)
class CheckLimits:
    """How much one check may do; 0 means no cap. The web app uses the settings' caps."""

    max_units: int = 0  # sentences, headings and items checked, in order
    max_references: int = 0  # reference-list entries looked up in the knowledge base
    time_budget_s: float = 0.0  # seconds from the start; checked between sentences

    @classmethod
    def from_settings(cls, settings: Settings) -> CheckLimits:
        return cls(max_units=settings.max_check_units, max_references=settings.max_check_references,
                   time_budget_s=settings.check_time_budget_s)


UNLIMITED = CheckLimits()


def check_article(text: str, kb: OpenedBuild, fmt_hint: str | None = None,
                  limits: CheckLimits | None = None, exclude_retracted: bool = True) -> CheckResult:
    """Check every claim of an article against the opened build *kb* (``KnowledgeBase.build``).

    *fmt_hint* is "text", "markdown", "html", a MIME type or a file name; None detects it.
    *limits* caps the work (default: the settings' caps); a capped check returns the part it
    checked, with ``truncated`` saying what was left out, and Busy (503) when the time budget ran
    out before a single sentence was checked. BadRequest for empty text, PayloadTooLarge over
    ``settings.max_upload_bytes``; text without any sentence gives an empty result.
    *exclude_retracted* (default on) leaves claims of retracted sources out of the evidence shown;
    off, they are shown with a badge. Either way they never back a verdict, and citing one is a
    ``citation_retracted`` problem.
    """
    started = time.perf_counter()
    limits = limits if limits is not None else CheckLimits.from_settings(kb.settings)
    deadline = started + limits.time_budget_s if limits.time_budget_s > 0 else None
    if not text or not text.strip():
        raise BadRequest("The article is empty: paste or upload the text to check")
    size = len(text.encode("utf-8"))
    limit = kb.settings.max_upload_bytes
    if size > limit:
        raise PayloadTooLarge(f"The article is {size:,} bytes; the limit is {limit:,} bytes (about 30,000 "
                              "words): check it in parts")
    analysed, content_type = prepare(text, fmt_hint)
    units = segment(analysed)
    checker = _Checker(kb, analysed, units, limits, deadline, exclude_retracted)
    sentences = checker.run()
    truncated = checker.truncation(len(sentences))
    if truncated is not None and truncated.reason == "time_budget" and not sentences and truncated.units_total:
        retry = max(1, round(limits.time_budget_s))
        raise Busy(f"The checker could not check a single sentence within its time budget of "
                   f"{limits.time_budget_s:g} s (the server is busy, or the reference list is very "
                   f"long): retry in {retry} seconds, or check a shorter part of the article",
                   headers={"Retry-After": str(retry)})
    return CheckResult(
        text=analysed, content_type=content_type, sentences=tuple(sentences),
        references=tuple(checker.references), problems=tuple(checker.problems),
        reference_section=(checker.section.start, checker.section.end) if checker.section else None,
        seconds=round(time.perf_counter() - started, 3), counts=_counts(sentences, checker),
        truncated=truncated,
    )


def _counts(sentences: list[SentenceResult], checker: _Checker) -> dict[str, int]:
    verdicts = Counter(s.verdict for s in sentences if s.verdict)
    return {
        "units": len(sentences),
        "checkworthy": sum(s.checkworthy for s in sentences),
        **{verdict: verdicts.get(verdict, 0) for verdict in VERDICTS},
        "references": len(checker.references),
        "references_resolved": sum(r.resolved is not None for r in checker.references),
        "problems": len(checker.problems),
    }


class _Checker:
    """One article's check: the state shared by its sentences (references, caches, problems)."""

    def __init__(self, kb: OpenedBuild, text: str, units: list[Unit], limits: CheckLimits = UNLIMITED,
                 deadline: float | None = None, exclude_retracted: bool = True) -> None:
        self.kb = kb
        self.exclude_retracted = exclude_retracted
        self.text = text
        self.units = units
        self.limits = limits
        self.deadline = deadline
        self.stopped: str | None = None  # the first cap reached: "max_units", "max_references", ...
        self.references_looked_up = 0
        self.vocabulary = kb.vocabulary
        self.scorer = scorer_for(kb)
        # The trained verifier decides verdicts; without its model files the lexical rules do.
        self.verifier = verifier_for() if kb.settings.verifier else None
        self.problems: list[Problem] = []
        self.section: ReferenceSection | None = find_reference_section(text, units)
        self.references: list[Reference] = []
        self.by_id: dict[str, Reference] = {}
        self.cited_ids: set[str] = set()
        if self.section is not None:
            for number, entry in enumerate(self.section.entries):
                cap = limits.max_references and number >= limits.max_references
                if cap or self._out_of_time():
                    self.stopped = self.stopped or ("max_references" if cap else "time_budget")
                    # Listed, so citations of it still find it, but not looked up: no problem is
                    # claimed for an entry the checker did not read.
                    self._add_reference(replace(entry, detail="Not looked up: the check stopped "
                                                "before this entry; check the article in parts"))
                    continue
                self._add_reference(resolve(entry, kb))
                self.references_looked_up += 1
            if not self.section.entries:
                self.problems.append(Problem(
                    "unreadable", f"The reference list{_under(self.section.heading)} has no entries the "
                    "checker can read: write one reference per line or numbered item; the sentences "
                    "were checked without it"))
        self.problems.extend(notice_problems(self.section, units))
        self.numbered = any(r.number is not None for r in self.references)
        self.known_authors = known_first_authors(kb)
        for reference in self.references:
            if reference.first_author:
                self.known_authors.add(normalise(reference.first_author))
                self.known_authors.add(normalise(reference.first_author).split(" ")[-1])

    def _add_reference(self, reference: Reference) -> None:
        self.references.append(reference)
        self.by_id[reference.id] = reference

    def _in_section(self, unit: Unit) -> bool:
        return self.section is not None and unit.start >= self.section.start and unit.end <= self.section.end

    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    @property
    def checkable(self) -> list[Unit]:
        """The units checked as claims: all but the reference list's entries."""
        return [unit for unit in self.units if not self._in_section(unit)]

    def run(self) -> list[SentenceResult]:
        results: list[SentenceResult] = []
        for unit in self.checkable:
            # One clock read per sentence: a sentence costs milliseconds, so the budget is kept
            # to within one sentence's work without timing anything finer.
            if self.limits.max_units and len(results) >= self.limits.max_units:
                self.stopped = self.stopped or "max_units"
                break
            if self._out_of_time():
                self.stopped = "time_budget" if self.stopped in (None, "max_references") else self.stopped
                break
            results.append(self._sentence(unit, len(results)))
        self._reference_problems()
        return results

    def truncation(self, checked: int) -> Truncation | None:
        """What the check left out, or None when it read the whole article."""
        if self.stopped is None:
            return None
        total = len(self.checkable)
        references = len(self.section.entries) if self.section else 0
        if self.stopped == "max_units":
            why = f"the checker reads at most {self.limits.max_units} sentences per request"
        elif self.stopped == "max_references":
            why = f"the checker looks up at most {self.limits.max_references} references per request"
        else:
            why = f"the check ran out of its time budget of {self.limits.time_budget_s:g} s"
        looked_up = (f" and looked up {self.references_looked_up} of {references} references"
                     if self.references_looked_up < references else "")
        message = (f"Partial check: {why}, so it checked the first {checked} of {total} sentences"
                   f"{looked_up}; split the article to check the rest.")
        return Truncation(reason=self.stopped, units_checked=checked, units_total=total,
                          references_checked=self.references_looked_up, references_total=references,
                          message=message)

    # --- citations ----------------------------------------------------------------------

    def _cited(self, citations: list[Citation], index: int) -> tuple[list[str], list[str]]:
        """The reference ids a sentence cites, and the problems with its citations."""
        cited: list[str] = []
        problems: list[str] = []
        for citation in citations:
            if citation.kind == "placeholder":
                message = f"'{citation.text}' is a placeholder: cite the real source"
                problems.append(message)
                self.problems.append(Problem("placeholder", message, sentence=index))
            elif citation.kind in {"numeric", "footnote"}:
                for key in citation.keys:
                    if key in self.by_id:
                        cited.append(key)
                        continue
                    where = ("the reference list has no entry " + key if self.references
                             else "the article has no reference list")
                    message = f"It cites {citation.text}, but {where}"
                    problems.append(message)
                    self.problems.append(Problem("missing_reference", message, sentence=index))
            else:
                for name, year in zip(citation.keys[::2], citation.keys[1::2], strict=True):
                    cited.append(self._author_year(name, int(year)).id)
        return list(dict.fromkeys(cited)), problems

    def _author_year(self, name: str, year: int) -> Reference:
        """The reference an author-year citation names: a list entry, or one made up for it."""
        wanted = normalise(name)
        source = by_author_year(self.kb, name, year)
        for reference in self.references:
            if reference.inline or reference.year != year:
                continue
            author = normalise(reference.first_author or "")
            if author and (author == wanted or author.split(" ")[-1] == wanted):
                return reference
            if wanted in normalise(reference.text)[:80].split(" "):
                return reference
            if source is not None and reference.resolved is not None and reference.resolved.id == source.id:
                return reference  # "FDA 2019" names the entry "U.S. Food and Drug Administration (2019)"
        ref_id = re.sub(r"\W+", "", wanted) + str(year)
        if ref_id in self.by_id:
            return self.by_id[ref_id]
        reference = Reference(id=ref_id, text=f"{name} {year}", start=None, end=None, year=year,
                              first_author=name, inline=True)
        if source is not None:
            reference = replace(reference, resolved=resolved_source(source, "author-year", 0.6))
        else:
            reference = replace(reference, problem="unresolved",
                                detail=f"No source by {name} from {year} is in the knowledge base, and "
                                       "the reference list has no such entry")
        self._add_reference(reference)
        return reference

    # --- one sentence -------------------------------------------------------------------

    def _sentence(self, unit: Unit, index: int) -> SentenceResult:
        citations = find_citations(unit.text, self.known_authors, superscripts=self.numbered)
        clean = strip_citations(unit.text, citations)
        cited, problems = self._cited(citations, index)
        self.cited_ids.update(cited)
        worth = assess(clean, unit.kind, self.vocabulary)
        base: dict[str, Any] = {"text": unit.text, "start": unit.start, "end": unit.end, "kind": unit.kind,
                                "cited": tuple(cited), "problems": tuple(problems)}
        if not worth.checkworthy:
            return SentenceResult(checkworthy=False, category=None, verdict=None, reason=worth.reason, **base)
        sentence = profile(clean, self.vocabulary)
        matches = self._shown(matcher_for(self.kb).match_claims(clean, limit=CANDIDATES))
        seen = {m.claim.id for m in matches}
        verifier = self.verifier
        judged: dict[str, Judged] = {}
        if verifier is not None:
            judged.update((j.match.claim.id, j) for j in judge(verifier, clean,
                                                                 self._on_topic(sentence, matches[:VERIFIED])))
        checks: list[CitationCheck] = []
        if len(cited) > CITED_CHECKED:
            problems.append(f"It cites {len(cited)} references; the first {CITED_CHECKED} were compared "
                            "with it: cite fewer, or split the sentence")
        for ref_id in cited[:CITED_CHECKED]:
            reference = self.by_id[ref_id]
            source = self.kb.find_source(reference.resolved.id) if reference.resolved else None
            own = matcher_for(self.kb).match_claims(clean, limit=CITED_CANDIDATES, sources=[source.id]) if source else []
            if verifier is not None:
                fresh = self._on_topic(sentence, [m for m in own if m.claim.id not in judged])
                judged.update((j.match.claim.id, j) for j in judge(verifier, clean, fresh))
                lexical = {item.match.claim.id: item for item in self.scorer.score(sentence, own)}
                check = verified_citation_check(
                    ref_id, source, [self._with_coverage(judged[m.claim.id], lexical) for m in own
                                     if m.claim.id in judged], verifier.thresholds, clean, self.vocabulary)
            else:
                check = citation_check(ref_id, source, self.scorer.score(sentence, own))
            if reference.problem in {"placeholder", "unresolved", "unreadable"}:
                problems.append(f"It cites [{ref_id}], which cannot be checked: {reference.detail}")
            checks.append(check)
            matches.extend(m for m in self._shown(own) if m.claim.id not in seen)
            seen.update(m.claim.id for m in own)
            if source is not None and source.retracted:
                problems.append(f"It cites [{ref_id}], which is retracted")
                self.problems.append(Problem("citation_retracted", f"[{ref_id}] {check.reason}",
                                             sentence=index, reference=ref_id))
            elif check.outcome in {"does_not_back", "contradicts"}:
                kind = "citation_contradicts" if check.outcome == "contradicts" else "citation_does_not_back"
                self.problems.append(Problem(kind, f"[{ref_id}] {check.reason}", sentence=index,
                                             reference=ref_id))
        scored = self.scorer.score(sentence, matches)
        if verifier is not None:
            lexical = {item.match.claim.id: item for item in scored}
            judged = {cid: self._with_coverage(j, lexical) for cid, j in judged.items()}
            verdict = decide_verified(clean, list(judged.values()), verifier.thresholds, self.vocabulary)
            shown, backing = self._verified_evidence(scored, judged)
        else:
            # A retracted source may be shown (exclude_retracted off, or cited), never counted.
            counted = [s for s in scored if not s.match.source.retracted]
            verdict = decide(sentence, counted, self.vocabulary)
            # Claims that cover under EVIDENCE_FLOOR of the sentence are noise, not evidence worth showing.
            shown = tuple(evidence(s, self.scorer) for s in scored[:EVIDENCE_SHOWN] if s.coverage >= EVIDENCE_FLOOR)
            backing = [s.match.source for s in counted if s.agrees and s.coverage >= PARTIAL]
        verdict = _mention_retracted(verdict, scored)
        if verdict.verdict in {"contradicted", "unsupported"}:
            self.problems.append(Problem(verdict.verdict, verdict.reason, sentence=index))
        suggestions: tuple[EvidenceSource, ...] = ()
        if verdict.verdict in {"supported", "partly_supported"} and not cited:
            sources = list({s.id: s for s in backing}.values())
            suggestions = tuple(self.scorer.source(s, with_apa=True) for s in sources[:SUGGESTIONS])
        base["problems"] = tuple(problems)  # now with the problems of the references it cites
        return SentenceResult(checkworthy=True, category=worth.category, verdict=verdict.verdict,
                              reason=verdict.reason, evidence=shown, citations=tuple(checks),
                              suggestions=suggestions, **base)

    def _shown(self, matches: Iterable[ClaimMatch]) -> list[ClaimMatch]:
        """*matches* without those of retracted sources when the check leaves them out."""
        if not self.exclude_retracted:
            return list(matches)
        return [m for m in matches if not m.source.retracted]

    def _on_topic(self, sentence: SentenceProfile, matches: list[ClaimMatch]) -> list[ClaimMatch]:
        """The candidates worth the verifier's time: those that share enough of the sentence's
        content for any verdict to count them (``Thresholds.coverage_partly``)."""
        floor = self.verifier.thresholds.coverage_partly if self.verifier is not None else 0.0
        return [s.match for s in self.scorer.score(sentence, matches) if s.coverage >= floor]

    @staticmethod
    def _with_coverage(judged: Judged, lexical: dict[str, Scored]) -> Judged:
        """*judged* with the lexical coverage of its claim (kb.check.verdict), which the verdict needs."""
        item = lexical.get(judged.match.claim.id)
        if item is None:
            return replace(judged, coverage=0.0, word_share=0.0)
        return replace(judged, coverage=item.coverage, word_share=item.word_share, agrees=item.agrees)

    def _verified_evidence(self, scored: list[Scored], judged: dict[str, Judged]
                           ) -> tuple[tuple[Evidence, ...], list[Source]]:
        """The evidence shown for a sentence the verifier read, and the sources that back it.

        Evidence the verifier reads as supporting or contradicting comes first (most confident
        first), then the neutral candidates that cover the sentence best.
        """
        thresholds = self.verifier.thresholds if self.verifier is not None else None
        def rank(item: Scored) -> tuple[int, float]:
            j = judged.get(item.match.claim.id)
            if j is None:
                return (2, -item.coverage)
            decided = max(j.support, j.contradict)
            return (0 if decided >= 0.5 else 1, -decided if decided >= 0.5 else -item.coverage)
        ordered = sorted((s for s in scored if s.match.claim.id in judged or s.coverage >= EVIDENCE_FLOOR), key=rank)
        shown = []
        for item in ordered[:EVIDENCE_SHOWN]:
            j = judged.get(item.match.claim.id)
            base = evidence(item, self.scorer)
            if j is None:
                shown.append(replace(base, locator=str(item.match.claim.locator)))
                continue
            shown.append(replace(base, agrees=j.judgement.relation != "contradicts", relation=j.judgement.relation,
                                 support=round(j.support, 3), contradict=round(j.contradict, 3),
                                 locator=str(item.match.claim.locator)))
        floor = thresholds.partial if thresholds else 1.0
        backing = [j.match.source for j in sorted(judged.values(), key=lambda j: -j.support) if j.support >= floor]
        return tuple(shown), backing

    # --- the reference list -------------------------------------------------------------

    def _reference_problems(self) -> None:
        uses_citations = bool(self.cited_ids)
        # Sentences left unread may cite any entry: "never cited" is only known after reading all.
        read_all = self.stopped not in {"max_units", "time_budget"}
        for position, reference in enumerate(self.references):
            if reference.problem is None and not reference.inline and uses_citations and read_all and \
                    reference.id not in self.cited_ids:
                reference = replace(reference, problem="uncited", detail="Listed but never cited in the text")
                self.references[position] = reference
                self.by_id[reference.id] = reference
            if reference.problem and reference.problem != "uncited":
                self.problems.append(Problem(reference.problem, f"[{reference.id}] {reference.detail}",
                                             reference=reference.id))


def _mention_retracted(verdict: Verdict, scored: list[Scored]) -> Verdict:
    """*verdict*, its reason saying so when only a retracted source (shown, not counted) states it:
    otherwise "no claim backs it" beside a near-verbatim claim in the evidence reads as a bug."""
    if verdict.verdict not in {"unsupported", "partly_supported"}:
        return verdict
    top = next((s for s in scored if s.coverage >= PARTIAL), None)
    if top is None or not top.match.source.retracted:
        return verdict
    return replace(verdict, reason=f"{verdict.reason}. A retracted source states it, and retracted "
                   f"sources never count: {quote_claim(top.match.claim, top.match.source)}")


def _under(heading: str | None) -> str:
    return f" under '{heading}'" if heading else ""
