"""Verdicts from the verifier model (``kb.verify``): the default whenever the model files are present.

For each check-worthy sentence the verifier reads the matcher's best candidate claims (and the
claims of every source the sentence cites) and gives each P(supports) and P(contradicts). With the
calibrated thresholds ``t`` (``kb/models/verifier/thresholds.json``):

- ``contradicted``: the most confident contradiction reaches ``t.contradict`` and is more
  confident than any support.
- ``supported``: the best support reaches ``t.support``, the evidence states every figure the
  sentence states (formats normalised), and strong wording ("proven", "cures") rests on level-1
  evidence or a large trial; when one of those two fails it is ``partly_supported`` and the reason
  says which.
- ``partly_supported``: the best support reaches ``t.partial``.
- ``unsupported`` (shown as "not enough evidence"): otherwise.

Sources that are retracted never count (``Source.retracted``: a retraction notice about the work,
or PubMed's "Retracted Publication" type), and aims or methods sentences never count as findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kb.check.result import CitationCheck
from kb.check.verdict import (
    DENIES_HARM,
    STRONG_WORDING,
    WORDS_MIN,
    Verdict,
    quote_claim,
    retraction_reason,
    strong_enough,
    weakness,
)
from kb.matching import ClaimMatch
from kb.models import Source
from kb.verify import Judgement, Thresholds, Verifier, figures
from kb.vocabulary import Vocabulary

VERIFIED = 5  # the matcher's best candidates the verifier reads for each sentence


@dataclass(frozen=True, slots=True)
class Judged:
    """A candidate claim and the verifier's reading of it against the sentence."""

    match: ClaimMatch
    judgement: Judgement
    coverage: float = 1.0  # the lexical share of the sentence the claim covers (kb.check.verdict)
    word_share: float = 1.0  # the share of the sentence's words outside vocabulary terms it has
    agrees: bool = True  # the claim points the same way as the sentence (kb.check.verdict)

    @property
    def support(self) -> float:
        return self.judgement.support

    @property
    def contradict(self) -> float:
        return self.judgement.contradict


def is_retracted(source: Source) -> bool:
    """True when a notice or PubMed's publication type says *source* is retracted.

    Not any type naming "retract": a notice itself ("Retraction of Publication") still stands.
    """
    return source.retracted


def judge(verifier: Verifier, sentence: str, matches: Sequence[ClaimMatch]) -> list[Judged]:
    """The verifier's reading of each candidate; retracted sources are read as saying nothing."""
    usable = [m for m in matches if not is_retracted(m.source)]
    judgements = verifier.judge(sentence, [m.claim.text for m in usable])
    return [Judged(m, j) for m, j in zip(usable, judgements, strict=True)]


def _figures_missing(sentence: str, backing: Sequence[Judged]) -> list[str]:
    stated: set[str] = set()
    for judged in backing:
        stated |= figures(judged.match.claim.text) | figures(judged.match.source.sample_size or "")
    return sorted(figures(sentence) - stated)


def decide_verified(sentence: str, judged: Sequence[Judged], thresholds: Thresholds,
                    vocabulary: Vocabulary) -> Verdict:
    """The verdict for a sentence from the verifier's readings of its candidates."""
    if not judged:
        return Verdict("unsupported", "Not enough evidence: no claim in the knowledge base shares enough of "
                       "what it says")
    # "No side effects", "completely safe": any on-topic claim that reports a harm or a limit
    # contradicts a denial of harm, whatever the model reads.
    if DENIES_HARM.search(sentence):
        harms = [j for j in judged if not j.agrees and j.coverage >= thresholds.coverage_partly]
        if harms:
            top = max(harms, key=lambda j: j.coverage).match
            return Verdict("contradicted", f"It denies harms the evidence reports: {quote_claim(top.claim, top.source)}")
    best_support = max(judged, key=lambda j: j.support)
    best_contra = max(judged, key=lambda j: j.contradict)
    s, c = best_support.support, best_contra.contradict
    # "Contradicted" is the strongest thing the checker says: the model's reading must be backed
    # by the claim pointing the other way in its own words (a limit, a negation, a harm) or by
    # the curator's limits/contradicts stance.
    if c >= thresholds.contradict and c > s and not best_contra.agrees:
        top = best_contra.match
        return Verdict("contradicted", f"Contradicted by {quote_claim(top.claim, top.source)}")
    # The model reads meaning but not scope: a claim it reads as supporting that shares little of
    # the sentence's content (its terms, or its other words) does not back it.
    if best_support.coverage < thresholds.coverage_partly or best_support.word_share < WORDS_MIN:
        s = 0.0
    if s >= thresholds.support and best_support.coverage < thresholds.coverage_supported:
        top = best_support.match
        return Verdict("partly_supported", f"The evidence backs part of it: {quote_claim(top.claim, top.source)}")
    if s >= thresholds.support:
        backing = [j for j in judged if j.support >= thresholds.partial]
        top = best_support.match
        missing = _figures_missing(sentence, backing)
        if missing:
            return Verdict("partly_supported", f"The evidence backs its gist but not the figure "
                           f"{', '.join(missing)}: {quote_claim(top.claim, top.source)}")
        strong = STRONG_WORDING.search(sentence)
        sources = list({j.match.source.id: j.match.source for j in backing}.values())
        if strong and not strong_enough(sources):
            return Verdict("partly_supported", f"Worded more strongly ('{strong.group(0)}') than its "
                           f"evidence allows: it rests on {weakness(sources, vocabulary)}")
        more = f" and {len(sources) - 1} more source(s)" if len(sources) > 1 else ""
        return Verdict("supported", f"Backed by {quote_claim(top.claim, top.source)}{more}")
    if s >= thresholds.partial:
        top = best_support.match
        return Verdict("partly_supported", f"The evidence backs part of it: {quote_claim(top.claim, top.source)}")
    top = best_support.match
    return Verdict("unsupported", "Not enough evidence: the closest claim does not clearly state it, "
                   f"{quote_claim(top.claim, top.source)}")


def verified_citation_check(reference_id: str, source: Source | None, judged: Sequence[Judged],
                            thresholds: Thresholds, sentence: str, vocabulary: Vocabulary) -> CitationCheck:
    """Whether the cited *source* backs the sentence, from the verifier's readings of its claims."""
    if source is None:
        return CitationCheck(reference_id, None, "unknown", 0.0,
                             "The cited reference is not in the knowledge base, so it cannot be checked")
    if is_retracted(source):
        return CitationCheck(reference_id, source.id, "does_not_back", 0.0, retraction_reason(source))
    if not judged:
        return CitationCheck(reference_id, source.id, "does_not_back", 0.0,
                             "None of the claims of the cited source is about this sentence")
    # The cited source's own claims get the same verdict rules as the whole knowledge base.
    verdict = decide_verified(sentence, judged, thresholds, vocabulary)
    best = max(judged, key=lambda j: max(j.support, j.contradict))
    outcome = {"supported": "backs", "partly_supported": "partly_backs", "contradicted": "contradicts"
               }.get(verdict.verdict, "does_not_back")
    value = best.contradict if outcome == "contradicts" else best.support
    reason = {"backs": "The cited source backs it", "partly_backs": "The cited source backs part of it",
              "contradicts": "The cited source contradicts it", "does_not_back": "The cited source does not say this"
              }[outcome]
    return CitationCheck(reference_id, source.id, outcome, round(value, 3),
                         f"{reason}: {verdict.reason.split(': ', 1)[-1]}", best.match.claim.id)
