"""Evidence and verdicts: how well the knowledge base backs one sentence, and a one-line reason.

The matcher (``kb.matching``) finds the candidate claims; this module only re-reads them. Each
candidate gets a **coverage** score in 0..1: the share of the sentence's content that the claim
covers. Vocabulary terms the sentence names weigh 2 each (a term is covered when the claim is
tagged with it, with a narrower term, or, for half, with a broader one); the other content words
weigh 1 each (covered when the claim's text has them, half when only its source's title does).
Coverage depends only on the sentence and the claim, never on the engine's raw scores, so the
thresholds below mean the same on five sources or fifty thousand.

Direction: a sentence is *cautious* when it negates or limits ("not", "only", "short-lived",
"side effects", "risk"), else *affirmative*; a sentence that denies all harm ("no side effects",
"completely safe") is affirmative. A claim is cautious when its stance is limits or contradicts
(or, with no stance, when its text reads cautious). A claim *agrees* when both point the same way.

Verdicts, from the best agreeing claim (``a``) and the best disagreeing claim (``d``):

- ``unsupported``: no claim covers ``PARTIAL`` (0.35) of the sentence, or the claims that do share
  only its vocabulary terms: none of the best three has a third (``WORDS_MIN``) of its other words.
- ``contradicted``: ``d`` covers more than ``a`` and at least ``PARTIAL`` (``STRONG`` when ``d`` only
  reads cautious and has no limits/contradicts stance), and either the sentence is affirmative
  (the evidence limits or contradicts it) or it negates outright
  ("does not") while ``d`` covers ``STRONG``; or the sentence denies all harm ("no side effects")
  and any cautious claim covers ``PARTIAL``.
- ``supported``: ``a`` covers ``STRONG`` (0.6), or the best three agreeing claims together do and
  ``a`` covers ``PARTIAL``; and the evidence names every condition and intervention the sentence
  names, has every figure it states, and, when the sentence is worded strongly ("proven",
  "cures", "strong evidence"), includes a level-1 source or a large trial (``LARGE_TRIAL``).
- ``partly_supported``: otherwise; the reason says which part is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kb.check.result import CitationCheck, Evidence, EvidenceSource
from kb.check.terms import masked, most_specific
from kb.citations import apa, confirmed_identifiers, short_authors, vancouver
from kb.matching import ClaimMatch
from kb.models import Claim, Source
from kb.opened_build import OpenedBuild
from kb.vocabulary import Vocabulary

PARTIAL = 0.35  # share of the sentence the best claim must cover to count as evidence at all
STRONG = 0.6  # share that makes it strong evidence
WORDS_MIN = 0.34  # below this share of its non-term words, on-topic evidence does not back it at all
WORDS_SAID = 0.5  # share of its non-term words a claim must have for "supported"
LARGE_TRIAL = 100  # participants for a single trial to bear strong wording such as "proven"
TERM_WEIGHT = 2.0
KEY_KINDS = ("condition", "intervention")  # terms the evidence must name for "supported"

_WORD = re.compile(r"\d+(?:\.\d+)?%?|[^\W\d_][\w\-']*")
STOPWORDS = frozenset("""a an the and or but nor of in on at to for from by with without as into onto
upon over under about than then that this these those there here it its it's is are was were be been
being has have had having do does did doing can could may might must shall should will would which
who whom whose what when where why how all any both each few more most other some such no not only
own same so too very s t just also even still yet again further once per via vs versus among amongst
within after before during while because if though although whereas however thus therefore hence
their them they we our us you your he she his her i me my one two three new use used using uses
many much often usually typically generally commonly around approximately about nearly almost
up down out off et al e g eg ie i.e e.g""".split())
# Words that carry a sentence's direction or strength, not its topic: they do not count as content.
_FUNCTION_CUES = frozenset("""show shows showed shown found find finds finding findings suggest suggests
suggested demonstrate demonstrates demonstrated report reports reported evidence studies study research
researchers scientists experts know known well strong strongly clear clearly proven prove proves
significantly significant robust robustly""".split())

NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|cannot|fail(?:s|ed)? to|lack(?:s|ed)?)\b|n['\u2019]t\b",
                      re.IGNORECASE)
LIMITING = re.compile(r"\b(?:limited|short[- ]lived|transient\w*|fade[sd]?|fading|wane[sd]?|waning|"
                      r"temporar\w*|uncertain\w*|unclear|inconclusive|insufficient|modest|weak(?:er)?|"
                      r"unblind\w*|bias(?:ed|es)?|confound\w*|adverse|side[- ]effects?|harms?|harmful|"
                      r"abuse|misuse|dependence|addict\w*|toxic\w*|increased? (?:blood pressure|risk)|"
                      r"dissociat\w*|sedat\w*|nonsignificant|non-significant|null)\b", re.IGNORECASE)
# Clauses whose negation is about someone or something else: the population ("patients who had
# not responded"), the comparator ("while saline did not", "but not after placebo").
_ASIDE = re.compile(r"\b(?:who|whose|whom|which|where)\b[^,;:.()\[\]]*?(?:\b(?:not|never)|n['\u2019]t)(?:\s+\w+)?|"
                    r"\b(?:while|whereas|unlike|than|versus|vs\.?|compared (?:with|to)|but not|and not|"
                    r"rather than|as opposed to)\b[^,;:.()\[\]]*", re.IGNORECASE)
DENIES_HARM = re.compile(r"\b(?:no|zero|without|free (?:of|from))\s+(?:\w+\s+){0,2}?(?:side[- ]effects?|"
                         r"risks?|adverse|harms?|downsides?|dangers?)\b|\b(?:completely|perfectly|totally|"
                         r"entirely|100%|fully)\s+safe\b|\brisk[- ]free\b|\bharmless\b|\bnot addictive\b|"
                         r"\bnon[- ]addictive\b", re.IGNORECASE)
STRONG_WORDING = re.compile(r"\b(?:proven|proves?|prove[sd]?|definitive\w*|conclusive\w*|undeniabl\w*|"
                            r"unquestionabl\w*|guarantee[sd]?|cures?|cured|miracle|breakthrough|"
                            r"always|every (?:patient|person|case)|all patients|100%|strong evidence|"
                            r"overwhelming evidence|established beyond|settled|certainly|completely|"
                            r"permanently|without (?:any )?doubt)\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:\s?%)?")


def _stem(word: str) -> str:
    """A light suffix stripper so "improved", "improves" and "improvement" meet; not a real stemmer."""
    word = word.casefold().strip("'-")
    if word.endswith("%") or word[:1].isdigit():
        return word.replace(" ", "")
    for _ in range(2):  # "safely" -> "safe" -> "saf", meeting "safety" -> "saf"
        stemmed = _strip_suffix(word)
        if stemmed == word:
            break
        word = stemmed
    return word


def _strip_suffix(word: str) -> str:
    for suffix, keep in (("ational", 5), ("ization", 5), ("isation", 5), ("ements", 4), ("ement", 4),
                         ("ments", 4), ("ment", 4), ("ities", 4), ("ity", 4), ("ness", 4), ("ously", 4),
                         ("ively", 4), ("ingly", 4), ("ies", 3), ("ied", 3), ("ing", 4), ("ions", 4),
                         ("ion", 4), ("ety", 3), ("ed", 4), ("es", 4), ("ly", 4), ("s", 4), ("e", 3),
                         ("al", 5)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            return word[: -len(suffix)] + ("y" if suffix in {"ies", "ied"} else "")
    return word


def word_forms(text: str) -> dict[str, str]:
    """Each content word's stem with the first form *text* writes it in, to quote words back."""
    forms: dict[str, str] = {}
    for word in _WORD.findall(text):
        stem = next(iter(content_words(word)), None)
        if stem is not None:
            forms.setdefault(stem, word)
    return forms


def content_words(text: str) -> set[str]:
    """The stemmed content words and numbers of *text* (stopwords and cue words left out).

    >>> sorted(content_words("Ketamine improved depressive symptoms within 24 hours in 71% of patients"))
    ['24', '71%', 'depressiv', 'hour', 'improv', 'ketamin', 'patient', 'symptom']
    """
    words = set()
    for word in _WORD.findall(text):
        folded = word.casefold()
        if folded in STOPWORDS or folded in _FUNCTION_CUES or len(folded) < 2 and not folded.isdigit():
            continue
        words.add(_stem(folded))
    return words


def figures(text: str) -> set[str]:
    """The numbers *text* states, normalised ("71 %" -> "71%"), years and small counts included."""
    return {m.group(0).replace(" ", "") for m in _NUMBER.finditer(text)}


def main_clause(text: str) -> str:
    """*text* without the asides whose negations are about others (see ``_ASIDE``).

    >>> main_clause("Patients whose illness had not responded improved, while saline did not.")
    'Patients  improved, .'
    """
    return _ASIDE.sub("", text)


def is_negated(text: str) -> bool:
    """True when the main clause of *text* negates ("does not", "no", "failed to")."""
    return not DENIES_HARM.search(text) and bool(NEGATION.search(main_clause(text)))


def is_cautious(text: str) -> bool:
    """True when *text* negates or limits rather than affirms (see the module docstring)."""
    if DENIES_HARM.search(text):
        return False
    return is_negated(text) or bool(LIMITING.search(main_clause(text)))


@dataclass(frozen=True, slots=True)
class SentenceProfile:
    """What a sentence says, computed once and compared with every candidate claim."""

    text: str
    terms: frozenset[str]  # most specific vocabulary terms it names
    words: frozenset[str]  # content words outside those terms' mentions
    figures: frozenset[str]
    cautious: bool
    negated: bool
    strong_wording: str | None


def profile(text: str, vocabulary: Vocabulary) -> SentenceProfile:
    """Read *text* once: its terms, its other content words, its figures and its direction."""
    # Strong wording ("proven", "cures") is judged against the evidence level, not as content.
    rest = STRONG_WORDING.sub(" ", masked(vocabulary, text))
    terms = most_specific(vocabulary, text)
    strong = STRONG_WORDING.search(text)
    return SentenceProfile(text=text, terms=terms, words=frozenset(content_words(rest)),
                           figures=frozenset(figures(rest)), cautious=is_cautious(text),
                           negated=is_negated(text),
                           strong_wording=strong.group(0) if strong else None)


@dataclass(frozen=True, slots=True)
class Scored:
    """A candidate claim with its coverage of the sentence and what it covered."""

    match: ClaimMatch
    coverage: float
    relative: float  # the matcher's score over its best score for this sentence
    covered_terms: frozenset[str]
    agrees: bool
    word_share: float = 1.0  # share of the sentence's words outside vocabulary terms it covers


class Scorer:
    """Coverage of sentences by claims, with per-claim work cached across an article's sentences."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self._claim_words: dict[str, frozenset[str]] = {}
        self._title_words: dict[str, frozenset[str]] = {}
        self._claim_terms: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        self._claim_cautious: dict[str, bool] = {}
        self._sources: dict[tuple[str, bool], EvidenceSource] = {}

    def source(self, source: Source, with_apa: bool = False) -> EvidenceSource:
        """``evidence_source`` of *source*, formatted once per build."""
        key = (source.id, with_apa)
        found = self._sources.get(key)
        if found is None:
            found = self._sources[key] = evidence_source(source, self.vocabulary, with_apa)
        return found

    def _words(self, claim: Claim, source: Source) -> tuple[frozenset[str], frozenset[str]]:
        words = self._claim_words.get(claim.id)
        if words is None:
            words = self._claim_words[claim.id] = frozenset(content_words(claim.text))
        title = self._title_words.get(source.id)
        if title is None:
            title = self._title_words[source.id] = frozenset(content_words(source.title))
        return words, title

    def _terms(self, claim: Claim) -> tuple[frozenset[str], frozenset[str]]:
        """(the claim's terms with their ancestors, the ancestors alone)."""
        cached = self._claim_terms.get(claim.id)
        if cached is None:
            # A claim's tags already hold the terms its text names (kb.corpus.claims.tag_claim) plus the
            # ones it inherits from its source, so its text need not be matched again here.
            own = {t for ids in claim.tags.values() for t in ids}
            ancestors: set[str] = set()
            for term in own:
                ancestors |= self.vocabulary.ancestors(term)
            cached = self._claim_terms[claim.id] = (frozenset(own | ancestors), frozenset(ancestors - own))
        return cached

    def coverage(self, sentence: SentenceProfile, claim: Claim,
                 source: Source) -> tuple[float, frozenset[str], float]:
        """The share (0..1) of *sentence* that *claim* covers, the sentence terms it covers, and
        the share of the sentence's other words it covers (1.0 when it has none)."""
        claim_terms, _ = self._terms(claim)
        covered_terms: set[str] = set()
        credit = 0.0
        for term in sentence.terms:
            if term in claim_terms:
                covered_terms.add(term)
                credit += TERM_WEIGHT
            elif any(t in self.vocabulary.ancestors(term) for t in claim_terms - {term}):
                credit += TERM_WEIGHT / 2  # the claim is about a broader term than the sentence
        words, title = self._words(claim, source)
        word_credit = 0.0
        for word in sentence.words:
            if word in words:
                word_credit += 1.0
            elif word in title:
                word_credit += 0.5
        total = TERM_WEIGHT * len(sentence.terms) + len(sentence.words)
        word_share = word_credit / len(sentence.words) if sentence.words else 1.0
        return ((credit + word_credit) / total if total else 0.0), frozenset(covered_terms), word_share

    def claim_is_cautious(self, claim: Claim) -> bool:
        """A claim limits when the curator said so, or when its own words negate or warn (a
        "supports" claim that lists side effects still speaks against "no side effects")."""
        if claim.stance in {"limits", "contradicts"}:
            return True
        cached = self._claim_cautious.get(claim.id)
        if cached is None:
            cached = self._claim_cautious[claim.id] = is_cautious(claim.text)
        return cached

    def score(self, sentence: SentenceProfile, matches: Sequence[ClaimMatch]) -> list[Scored]:
        """Every candidate with its coverage, best first (ties keep the matcher's order)."""
        best = max((m.score for m in matches), default=0.0) or 1.0
        scored = []
        for match in matches:
            value, covered, word_share = self.coverage(sentence, match.claim, match.source)
            agrees = self.claim_is_cautious(match.claim) == sentence.cautious
            scored.append(Scored(match, round(value, 3), round(match.score / best, 3), covered, agrees,
                                 round(word_share, 3)))
        # Best coverage first; on a tie, agreeing claims first, so a tie never reads as a contradiction.
        return sorted(scored, key=lambda s: (-s.coverage, not s.agrees))


def scorer_for(kb: OpenedBuild) -> Scorer:
    """The scorer of a build, kept while the build is open so its per-claim caches pay off."""
    return kb.derived("verdict scorer", lambda: Scorer(kb.vocabulary))


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str
    reason: str


def quote_claim(claim: Claim, source: Source, limit: int = 90) -> str:
    text = claim.text if len(claim.text) <= limit else claim.text[: limit - 1].rstrip() + "\u2026"
    return f"\u201c{text}\u201d ({short_authors(source)} {source.year or 'n.d.'})"


def sample_size(source: Source) -> int | None:
    """The first number of a source's sample size ("18 randomized" -> 18), None if it has none."""
    found = re.search(r"\d[\d,]*", source.sample_size or "")
    return int(found.group(0).replace(",", "")) if found else None


def strong_enough(sources: Iterable[Source]) -> bool:
    for source in sources:
        if source.evidence_level == 1:
            return True
        size = sample_size(source)
        if source.evidence_level is not None and source.evidence_level <= 2 and size and size >= LARGE_TRIAL:
            return True
    return False


def weakness(sources: list[Source], vocabulary: Vocabulary) -> str:
    source = sources[0]
    design = vocabulary.label(source.design) if source.design else "source"
    size = f" of {source.sample_size}" if source.sample_size else ""
    return f"a {design}{size}" if source.design else f"{short_authors(source)} {source.year}"


def decide(sentence: SentenceProfile, scored: Sequence[Scored], vocabulary: Vocabulary) -> Verdict:
    """The verdict for a sentence from its scored candidates (rules in the module docstring)."""
    if not scored or scored[0].coverage < PARTIAL:
        share = f"; the closest claim covers {scored[0].coverage:.0%} of it" if scored else ""
        return Verdict("unsupported", f"No claim in the knowledge base backs it{share}")
    agree = [s for s in scored if s.agrees]
    disagree = [s for s in scored if not s.agrees]
    a = agree[0].coverage if agree else 0.0
    d = disagree[0].coverage if disagree else 0.0
    if d >= PARTIAL and DENIES_HARM.search(sentence.text):
        top = disagree[0].match
        return Verdict("contradicted", f"It denies harms the evidence reports: {quote_claim(top.claim, top.source)}")
    # A curator's limits/contradicts stance is strong evidence against; a claim that only reads
    # cautious (it lists side effects, it negates) must cover the sentence well to contradict it.
    curated = bool(disagree) and disagree[0].match.claim.stance in {"limits", "contradicts"}
    if d >= (PARTIAL if curated or sentence.cautious else STRONG) and d > a:
        top = disagree[0].match
        if not sentence.cautious:
            verb = "contradicts" if top.claim.stance == "contradicts" else "limits"
            return Verdict("contradicted", f"The closest evidence {verb} it: {quote_claim(top.claim, top.source)}")
        if sentence.negated and d >= STRONG:
            return Verdict("contradicted", f"It denies what the evidence reports: {quote_claim(top.claim, top.source)}")
    if a < PARTIAL:
        return Verdict("partly_supported", "The evidence is on its topic but does not state what it "
                       "says" + (f": the closest is {quote_claim(disagree[0].match.claim, disagree[0].match.source)}"
                                 if disagree else ""))
    top_three = agree[:3]
    said = max(s.word_share for s in top_three)
    if sentence.words and said < WORDS_MIN:
        forms = word_forms(sentence.text)
        unsaid = [forms.get(w, w) for w in sorted(sentence.words - content_words(
            " ".join(s.match.claim.text for s in top_three)))]
        return Verdict("unsupported", f"The knowledge base has evidence on its terms but none that says "
                       f"\u2018{' '.join(unsaid[:6])}\u2019")
    union_terms = frozenset().union(*(s.covered_terms for s in top_three))
    strong = a >= STRONG or (_union_coverage(sentence, top_three) >= STRONG)
    best = agree[0].match
    if not strong:
        return Verdict("partly_supported", f"Evidence backs part of it ({a:.0%} of its content): "
                       f"{quote_claim(best.claim, best.source)}")
    backing = [s for s in agree if s.coverage >= PARTIAL]
    if said < WORDS_SAID:
        forms = word_forms(sentence.text)
        unsaid = [forms.get(w, w) for w in sorted(sentence.words - content_words(
            " ".join(s.match.claim.text for s in agree[:3])))]
        return Verdict("partly_supported", f"The evidence is on its topic but does not say "
                       f"‘{' '.join(unsaid[:5])}’: {quote_claim(best.claim, best.source)}")
    key_missing = sorted(t for t in sentence.terms - union_terms
                         if (term := vocabulary.get(t)) is not None and term.kind in KEY_KINDS)
    if key_missing:
        labels = ", ".join(vocabulary.label(t) for t in key_missing)
        return Verdict("partly_supported", f"The evidence backs it, but not for {labels}: "
                       f"{quote_claim(best.claim, best.source)}")
    stated = set()
    for s in backing:
        stated |= figures(s.match.claim.text) | figures(s.match.source.sample_size or "")
        stated |= {str(s.match.source.year)} if s.match.source.year else set()
    missing_figures = sorted(f for f in sentence.figures if f not in stated)
    if missing_figures:
        return Verdict("partly_supported", f"The evidence backs its gist, but not the figure "
                       f"{', '.join(missing_figures)}: {quote_claim(best.claim, best.source)}")
    sources = list({s.match.source.id: s.match.source for s in backing}.values())
    if sentence.strong_wording and not strong_enough(sources):
        return Verdict("partly_supported", f"Worded more strongly ('{sentence.strong_wording}') than its "
                       f"evidence allows: it rests on {weakness(sources, vocabulary)}")
    return Verdict("supported", f"Backed by {quote_claim(best.claim, best.source)}"
                   + (f" and {len(sources) - 1} more source(s)" if len(sources) > 1 else ""))


def _union_coverage(sentence: SentenceProfile, scored: Sequence[Scored]) -> float:
    """How much of the sentence several claims cover together (terms and words of any of them)."""
    if not scored:
        return 0.0
    terms = frozenset().union(*(s.covered_terms for s in scored))
    words: set[str] = set()
    for s in scored:
        words |= content_words(s.match.claim.text)
    credit = TERM_WEIGHT * len(sentence.terms & terms) + len(sentence.words & words)
    total = TERM_WEIGHT * len(sentence.terms) + len(sentence.words)
    return credit / total if total else 0.0


def evidence_source(source: Source, vocabulary: Vocabulary, with_apa: bool = False) -> EvidenceSource:
    """A source as the checker reports it: citations and only its confirmed identifiers.

    The APA form is only made for suggested citations (*with_apa*): formatting costs time, and
    evidence lists show the Vancouver form.
    """
    ids = confirmed_identifiers(source)
    return EvidenceSource(id=source.id, doi=ids.get("doi"), pmid=ids.get("pmid"), title=source.title,
                          year=source.year, citation=vancouver(source), apa=apa(source) if with_apa else None,
                          authors=short_authors(source), evidence_level=source.evidence_level,
                          design=vocabulary.label(source.design) if source.design else None,
                          retracted=source.retracted)


def evidence(scored: Scored, scorer: Scorer, shared: Iterable[str] = ()) -> Evidence:
    """A scored candidate as reported evidence."""
    match = scored.match
    terms = sorted(set(match.shared_terms) | set(scored.covered_terms) | set(shared))
    return Evidence(claim_id=match.claim.id, text=match.claim.text, score=scored.coverage,
                    match_score=scored.relative, stance=match.claim.stance, agrees=scored.agrees,
                    shared_terms=tuple(terms), source=scorer.source(match.source))


def retraction_reason(source: Source) -> str:
    """Why a cited retracted source backs nothing, naming the notice when a record gives one."""
    notice = next((n for n in source.notices_about() if n.kind == "retraction"), None)
    where = ""
    if notice is not None:
        named = notice.citation or (f"PMID {notice.pmid}" if notice.pmid else f"doi:{notice.doi}" if notice.doi else "")
        where = f" ({named})" if named else ""
    return (f"The cited source {short_authors(source)} {source.year or 'n.d.'} is retracted{where}: it "
            "cannot back a sentence; cite other evidence or drop the claim")


def citation_check(reference_id: str, source: Source | None, scored: Sequence[Scored]) -> CitationCheck:
    """Whether the cited *source* backs the sentence, from its own claims scored against it."""
    if source is None:
        return CitationCheck(reference_id, None, "unknown", 0.0,
                             "The cited reference is not in the knowledge base, so it cannot be checked")
    if source.retracted:
        return CitationCheck(reference_id, source.id, "does_not_back", 0.0, retraction_reason(source))
    if not scored:
        return CitationCheck(reference_id, source.id, "does_not_back", 0.0,
                             f"None of the claims of {short_authors(source)} {source.year or ''} is about "
                             "this sentence".replace("  ", " "))
    agree = [s for s in scored if s.agrees]
    disagree = [s for s in scored if not s.agrees]
    a = agree[0].coverage if agree else 0.0
    d = disagree[0].coverage if disagree else 0.0
    if d >= PARTIAL and d > a:
        top = disagree[0].match
        return CitationCheck(reference_id, source.id, "contradicts", d,
                             f"The cited source limits it: {quote_claim(top.claim, top.source)}", top.claim.id)
    if a >= STRONG:
        top = agree[0].match
        return CitationCheck(reference_id, source.id, "backs", a,
                             f"Backed by the cited {quote_claim(top.claim, top.source)}", top.claim.id)
    if a >= PARTIAL:
        top = agree[0].match
        return CitationCheck(reference_id, source.id, "partly_backs", a,
                             f"The cited source backs part of it: {quote_claim(top.claim, top.source)}", top.claim.id)
    best = max(scored, key=lambda s: s.coverage)
    return CitationCheck(reference_id, source.id, "does_not_back", best.coverage,
                         f"The cited source does not say this; its closest claim covers "
                         f"{best.coverage:.0%} of it: {quote_claim(best.match.claim, best.match.source)}",
                         best.match.claim.id)
