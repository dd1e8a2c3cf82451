"""Check-worthiness: which units of an article make a factual claim the evidence can back.

The rules are explainable on purpose, so a writer can see why a sentence was or was not checked.
In order, a unit is skipped when it is

1. a heading, or a reference-list entry (those are checked as references);
2. a question ("?" at the end);
3. advice or an instruction to the reader ("Talk to your doctor", "you should ...", "we recommend");
4. a personal experience or opinion (first person singular, "we believe", "in our view");
5. rhetoric: an exclamation, or a sentence about the article itself ("In this post we ...");
6. too short to state a fact (fewer than four words);
7. without any cue of a finding, mechanism, effect, safety or regulatory fact, or a number, unless
   it is a statement of five words or more naming a vocabulary term (category "statement").

Otherwise it is check-worthy, and its ``category`` names the first cue found. The cue words are
generic English ("reduced", "approved", "side effects", "blocks", "percent"): nothing here knows
the corpus's field; the field's terms come from the vocabulary, which the reason also names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kb.check.terms import masked, most_specific
from kb.vocabulary import Vocabulary

# Cue patterns by category, tried in this order; the first that matches names the category.
CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("regulatory", re.compile(
        r"\b(approv\w*|authori[sz]\w*|licen[sc]\w*|cleared|indicat(?:ed|ion)s?|label(?:l?ed|ling)?|"
        r"regulat(?:or|ory|ors|ion)\w*|boxed warning|black[- ]box|restricted|prescri\w+|schedule[ds]?|"
        r"guidelines?|recommend(?:ed|s|ation|ations)|reimburs\w*|market(?:ed|ing)|REMS)\b", re.I)),
    ("safety", re.compile(
        r"\b(safe(?:ty|ly)?|side[- ]effects?|adverse|harms?|harmful|toxic\w*|tolera\w+|risks?|"
        r"dangerous|abuse|misuse|addict\w*|dependence|overdose|death|deaths|fatal\w*|withdrawal|"
        r"sedat\w*|dissociat\w*|blood pressure|hypertens\w*|nausea|dizziness|contraindicat\w*)\b", re.I)),
    ("mechanism", re.compile(
        r"\b(mechanism\w*|block(?:s|ed|ing|ade)?|bind(?:s|ing)?|activat\w*|inhibit\w*|stimulat\w*|"
        r"trigger\w*|mediat\w*|receptors?|signal(?:l?ing|s)?|pathways?|releases?|released|"
        r"synap\w+|neurons?|neural|plasticity|express(?:ion|ed)|requires?|required|depends? on|"
        r"acts? (?:on|by|through))\b", re.I)),
    ("finding", re.compile(
        r"\b(reduc\w*|improv\w*|increas\w*|decreas\w*|lower(?:s|ed)?|rais(?:es|ed)|prevent\w*|"
        r"relie(?:f|ve[sd]?)|caus\w*|leads? to|led to|associat\w*|linked|predict\w*|respon\w+|"
        r"remi(?:ssion|tted|t)\w*|relaps\w*|recur\w*|efficac\w*|effective\w*|effects?|benefit\w*|"
        r"outperform\w*|superior|inferior|worse|better|faster|slower|rapid\w*|quick\w*|sustain\w*|"
        r"durable|last(?:s|ed|ing)?|fade[sd]?|wane[sd]?|short-lived|works?|worked|helps?|helped|"
        r"cures?|cured|treats?|treated|treatment|alleviat\w*|eas(?:es|ed)|restor\w*|reverse[sd]?|"
        r"shows?|showed|shown|found|find(?:s|ings?)|demonstrat\w*|report(?:s|ed)?|observed|"
        r"confirm\w*|suggest(?:s|ed)|evidence|trials?|studies|study|meta-analys\w*|patients|"
        r"participants|placebo|significant\w*|proven|compared|doubl\w*|halv\w*|tripl\w*|shrink\w*|"
        r"boost\w*|lift(?:s|ed)?|cut(?:s)?|extend\w*|shorten\w*|slow\w*|speed\w*)\b", re.I)),
    ("number", re.compile(r"\d")),
)

_QUESTION = re.compile(r"\?[\"'\u201d\u2019)\]]*$")
_ADVICE_START = re.compile(
    r"^(?:please|talk|ask|speak|consult|consider|remember|make sure|be sure|don['\u2019]t|do not|"
    r"never|always|try|avoid|call|seek|contact|tell|keep|stop|start|go|find out|learn|read|check out|"
    r"sign up|subscribe|click|share|visit|book|join|get|let['\u2019]s|let us)\b", re.I)
_ADVICE = re.compile(r"\byou (?:should|must|may want|might want|need to|ought to|can ask|could ask)\b|"
                     r"\b(?:we|I) (?:recommend|suggest|advise|urge|encourage)\b|"
                     r"\bif you\b.*\b(?:talk|ask|see|call|contact|speak)\b", re.I)
# "I" after phase/type/class/grade is a Roman numeral ("phase I trial"), not the writer.
_FIRST_PERSON = re.compile(r"(?<!phase )(?<!Phase )(?<!type )(?<!Type )(?<!class )(?<!Class )(?<!grade )"
                           r"\b(?:I|I['\u2019](?:m|ve|d|ll)|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself)\b")
_OPINION = re.compile(r"\b(?:we|I) (?:believe|think|feel|hope|love|wish)\b|"
                      r"\bin (?:my|our) (?:opinion|view|experience)\b|\bpersonally\b", re.I)
_ABOUT_ARTICLE = re.compile(
    r"^(?:in this (?:article|post|piece|guide|review|essay|blog|section|chapter)|"
    r"this (?:article|post|piece|guide|essay|blog|section) (?:will|looks|explains|covers|describes|"
    r"discusses|is)|(?:below|here),? we|read on|stay tuned|welcome|imagine|what if|picture this|"
    r"think about|let['\u2019]s|here['\u2019]s|here is|so,|thanks|thank you)\b", re.I)
_WORD = re.compile(r"[^\W_]+(?:['\u2019.-][^\W_]+)*")


@dataclass(frozen=True, slots=True)
class Worthiness:
    """Whether a unit makes a checkable claim, of which category, and why."""

    checkworthy: bool
    category: str | None
    reason: str
    cue: str | None = None


def assess(text: str, kind: str, vocabulary: Vocabulary) -> Worthiness:
    """Decide whether *text* (a unit of *kind* "sentence", "heading" or "item") is check-worthy.

    *text* should already be free of citation markers, so "[3]" counts as neither a number nor a word.
    """
    stripped = text.strip().strip("*_").strip()
    if kind == "heading":
        return Worthiness(False, None, "heading")
    if _QUESTION.search(stripped):
        return Worthiness(False, None, "question: it asks rather than states")
    if _ADVICE_START.match(stripped) or _ADVICE.search(stripped):
        return Worthiness(False, None, "advice or an instruction to the reader, not a statement of fact")
    if _OPINION.search(stripped):
        return Worthiness(False, None, "opinion: the writer's belief or view")
    if _FIRST_PERSON.search(masked(vocabulary, stripped)):
        return Worthiness(False, None, "personal experience or testimonial (first person)")
    if stripped.endswith("!"):
        return Worthiness(False, None, "rhetoric: an exclamation")
    if _ABOUT_ARTICLE.match(stripped):
        return Worthiness(False, None, "about the article or addressed to the reader, not a claim")
    words = _WORD.findall(stripped)
    if len(words) < 4:
        return Worthiness(False, None, "too short to state a fact")
    for category, pattern in CUES:
        found = pattern.search(stripped)
        if found:
            terms = sorted(vocabulary.label(t) for t in most_specific(vocabulary, stripped))
            about = f" about {', '.join(terms[:4])}" if terms else ""
            cue = found.group(0)
            what = "a number" if category == "number" else f"a {category} claim ('{cue}')"
            return Worthiness(True, category, f"states {what}{about}", cue)
    terms = sorted(vocabulary.label(t) for t in most_specific(vocabulary, stripped))
    if terms and len(words) >= 5:
        # A plain statement about a term of the field ("X is given as a nasal spray") is a fact too.
        return Worthiness(True, "statement", f"states a fact about {', '.join(terms[:4])}")
    return Worthiness(False, None, "no finding, mechanism, effect, safety or regulatory fact, "
                      "no number and no term of the field")
