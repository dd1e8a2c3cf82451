"""Check-worthiness: which units of an article make a factual claim the evidence can back.

The rules are explainable on purpose, so a writer can see why a sentence was or was not checked.
In order, a unit is skipped when it is

1. a heading: a heading unit, a line ending in ":" ("Potential Risks and Side Effects:"), or a
   title line in Title Case without a verb ("The Science Behind Ketamine Therapy"); reference-list
   entries are checked as references;
2. a question ("?" at the end, or an interrogative opening and no full stop);
3. advice or an instruction to the reader ("Talk to your doctor", "you should ...", "we recommend");
4. a personal experience or opinion (first person singular, "we believe", "in our view"); "I"
   after a noun ("complex I", "type I", "phase I") is a Roman numeral, not the writer;
5. rhetoric: an exclamation, or a sentence about the article itself ("In this post we ...", "The
   references above are illustrative placeholders");
6. too short to state a fact (fewer than three words; three only as subject, verb and object);
7. without any cue of a finding, mechanism, effect, safety or regulatory fact, or a number, unless
   it is a statement of five words or more naming a vocabulary term, or a declarative sentence
   (a verb that states something, see ``is_declarative``): both are of category "statement".

A list item that opens with a short label ("Reduced Suicidal Ideation: Strong evidence ...") is
judged by the statement after the label; the label's words still count as cues. A final full stop
is never required: a claim pasted alone ("Mitochondria play a major role in apoptosis") is checked.

Otherwise it is check-worthy, and its ``category`` names the first cue found. The cue words and
verbs are generic English ("reduced", "approved", "side effects", "blocks", "percent"): nothing
here knows the corpus's field; the field's terms come from the vocabulary, which the reason also
names.
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
        r"guidelines?|recommend(?:ed|s|ation|ations)|reimburs\w*|market(?:ed|ing)|REMS)\b", re.IGNORECASE)),
    ("safety", re.compile(
        r"\b(safe(?:ty|ly)?|side[- ]effects?|adverse|harms?|harmful|toxic\w*|tolera\w+|risks?|"
        r"dangerous|abuse|misuse|addict\w*|dependence|overdose|death|deaths|fatal\w*|withdrawal|"
        r"sedat\w*|dissociat\w*|blood pressure|hypertens\w*|nausea|dizziness|contraindicat\w*)\b", re.IGNORECASE)),
    ("mechanism", re.compile(
        r"\b(mechanism\w*|block(?:s|ed|ing|ade)?|bind(?:s|ing)?|activat\w*|inhibit\w*|stimulat\w*|"
        r"trigger\w*|mediat\w*|receptors?|signal(?:l?ing|s)?|pathways?|releases?|released|"
        r"synap\w+|neurons?|neural|plasticity|express(?:ion|ed)|requires?|required|depends? on|"
        r"acts? (?:on|by|through))\b", re.IGNORECASE)),
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
        r"boost\w*|lift(?:s|ed)?|cut(?:s)?|extend\w*|shorten\w*|slow\w*|speed\w*)\b", re.IGNORECASE)),
    ("number", re.compile(r"\d")),
)

_QUESTION = re.compile(r"\?[\"'\u201d\u2019)\]]*$")
# A line that opens with an interrogative and has no closing full stop asks, even without its "?"
# ("How ketamine works" is a title, "Is ketamine safe" a question).
_QUESTION_START = re.compile(r"^(?:how|what|why|which|who|whom|whose|is|are|does|do|did|can|could|should|"
                             r"would|will|was|were|has|have)\b", re.IGNORECASE)
_ADVICE_START = re.compile(
    r"^(?:please|talk|ask|speak|consult|consider|remember|make sure|be sure|don['\u2019]t|do not|"
    r"never|always|try|avoid|call|seek|contact|tell|keep|stop|start|go|find out|learn|read|check out|"
    r"sign up|subscribe|click|share|visit|book|join|get|let['\u2019]s|let us|discuss|ensure)\b", re.IGNORECASE)
_ADVICE = re.compile(r"\byou (?:should|must|may want|might want|need to|ought to|can ask|could ask|"
                     r"can talk|can discuss)\b|"
                     r"\b(?:we|I) (?:recommend|suggest|advise|urge|encourage)\b|"
                     r"\bif you\b.*\b(?:talk|ask|see|call|contact|speak|consult|discuss)\b|"
                     r"\bit(?: is|['\u2019]s) (?:important|best|wise|essential|crucial|advisable|vital) "
                     r"(?:to|that you)\b", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\b(?:I['\u2019](?:m|ve|d|ll)|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself)\b")
_PRONOUN_I = re.compile(r"\bI\b")
_OPINION = re.compile(r"\b(?:we|I) (?:believe|think|feel|hope|love|wish)\b|"
                      r"\bin (?:my|our) (?:opinion|view|experience)\b|\bpersonally\b", re.IGNORECASE)
_ABOUT_ARTICLE = re.compile(
    r"^(?:in this (?:article|post|piece|guide|review|essay|blog|section|chapter)|"
    r"this (?:article|post|piece|guide|essay|blog|section) (?:will|looks|explains|covers|describes|"
    r"discusses|is)|(?:below|here),? we|read on|stay tuned|welcome|imagine|what if|picture this|"
    r"think about|let['\u2019]s|here['\u2019]s|here is|so,|thanks|thank you)\b", re.IGNORECASE)
# A note that the article's references are not real ("The references above are illustrative
# placeholders"): about the article, and for the reference list a placeholder notice. The list must
# be the subject ("the/these references ... are"), so "Major sources of omega-3, for example fish"
# or "The links between X and Y remain hypothetical" are not read as one.
PLACEHOLDER_NOTICE = re.compile(
    r"\b(?:the|these|those|all|our|its|such|any)\s+(?:\w+\s+)?(?:references?|citations?|sources?|"
    r"reference list|bibliography)(?:\s+(?:above|below|here|listed|cited|used|given|provided|shown|"
    r"in this (?:article|post|piece|page)|on this page)){0,2}\s+(?:are|is|were|was|have|has|"
    r"serve as|may be|might be)\b[^.]{0,30}?\b(?:illustrative|placeholders?|fictional|fictitious|"
    r"hypothetical|made[- ]up|invented|fabricated|dummy|not real|for illustration|examples?|samples?|"
    r"(?:not|un)verified|not (?:been )?(?:checked|verified))\b|"
    r"\b(?:illustrative|placeholder|fictional|fictitious|hypothetical|made[- ]up|invented|dummy|example|"
    r"sample)\s+(?:references?|citations?|sources?|bibliography)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:['\u2019.-][^\W_]+)*")
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself)\b", re.IGNORECASE)
_PRONOUNS = frozenset("it this that these those they them he she we you".split())

# --- verbs ----------------------------------------------------------------------------------
# A claim is a declarative sentence, and a declarative has a verb. No parser is needed to tell
# one from a title or a noun phrase: auxiliaries, a list of verbs common in factual prose, and
# the regular suffixes of verb forms find nearly all of them.

_AUXILIARIES = frozenset("""is are isn't aren't has have had hasn't haven't hadn't do does did don't
doesn't didn't can cannot can't could couldn't may might must shall should shouldn't will won't would
wouldn't""".split())
# Forms of "be" that, alone, make a narrative or a description, not a finding ("The weather was
# pleasant"); present "is"/"are" state what holds in general and count.
_WEAK = frozenset("was were be been being am wasn't weren't".split())
# Verbs that are also common nouns ("benefits", "effects of ... increases"): in a title they are
# read as nouns, in a sentence as verbs.
_AMBIGUOUS = frozenset("""increase decrease benefit report support change use work help control need
show play result cause release damage repair decline delay cut spread drop fall rise return start
limit target form act match display shift cost lack fail switch function""".split())
_VERBS = frozenset("""reduce improve induce inhibit promote prevent regulate require affect alter contain
produce express bind block activate suppress enhance impair protect predict correlate associate mediate
trigger lead occur remain become seem appear depend differ exceed involve include lower raise worsen
extend shorten accelerate slow drive modulate treat cure serve lie exist exhibit demonstrate
confirm indicate suggest reveal find observe detect develop generate create make take give get keep
carry cross enter leave last persist recover respond relapse die survive kill harm destroy restore
reverse stimulate elevate deplete accumulate convert transform interact compete replace share encode
translate transcribe secrete absorb metabolize metabolise excrete undergo outperform equal double
halve triple vary determine define characterize characterise distinguish separate link connect couple
underlie contribute account explain save succeed tend begin continue allow enable permit facilitate
hinder impede prolong maintain sustain diminish attenuate abolish eliminate amplify boost accompany
follow precede represent constitute comprise consist provide offer yield reach achieve receive lose
gain cost protect attack invade infect colonize spread grow shrink rise fall emerge arise originate
derive depend rely relate correspond resemble mimic signal target bind fuse cleave degrade synthesize
synthesise phosphorylate methylate localize localise migrate proliferate differentiate divide
mutate evolve adapt possess stem experience influence reproduce exert confer harbor harbour acquire
retain resist tolerate sense recognize recognise modify coordinate recruit attract repress silence
upregulate downregulate deactivate inactivate disrupt perturb restrict predispose outlast occupy
inhabit reside coincide overlap engage elicit evoke provoke abrogate ameliorate exacerbate potentiate
antagonize antagonise counteract offset compensate buffer stabilize stabilise destabilize destabilise
encourage puncture enforce""".split()) | _AMBIGUOUS
_IRREGULAR = frozenset("""led found shown showed made took taken gave given got gotten kept fell fallen rose
risen drove driven grew grown became began begun held bound lay ran saw seen known thought brought
built told meant left lost won spread underwent undergone arose arisen shrank shrunk felt went came
knew said heard wrote sat slept woke ate drank spent paid met chose""".split())
_NOT_VERBS_ED = frozenset("need seed feed bed red hundred indeed kindred sacred naked wicked speed bleed "
                          "breed shed greed creed".split())
# "-ates" reads as a verb more often than a noun in factual prose ("regulates", "modulates").
_VERB_SUFFIX = re.compile(r"^[a-z]{3,}(?:ed|i[sz]es|ified|ifies|ates)$")
# Small words a title leaves in lower case.
_MINOR = frozenset("""a an the and or nor but of in on at to for with by from as into onto over under
vs via per than about after before between during without within against among""".split())


def _inflections(base: str) -> set[str]:
    """*base* and its third-person and past forms: "reduce" -> reduce, reduces, reduced."""
    if base.endswith("y") and base[-2:-1] not in set("aeiou"):
        return {base, base[:-1] + "ies", base[:-1] + "ied"}
    third = base + ("es" if base.endswith(("s", "sh", "ch", "x", "z", "o")) else "s")
    return {base, third, base + ("d" if base.endswith("e") else "ed")}


_VERB_FORMS = frozenset(form for base in _VERBS for form in _inflections(base))
# In a title only forms that are verbs and nothing else count: a third-person form of a verb that
# is not also a noun ("Ketamine Reduces ..."), or an irregular past. Base forms and "-ed" forms are
# infinitives, imperatives and adjectives there ("How To Reduce ...", "Reduced Suicidal Ideation").
_TITLE_VERB_FORMS = frozenset(
    form for base in _VERBS - _AMBIGUOUS for form in _inflections(base) if form.endswith("s")
) | _IRREGULAR | (_AUXILIARIES - {"has", "have", "had", "do"})


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def has_verb(text: str) -> bool:
    """Whether *text* has a word that reads as a finite verb, so it may be a declarative sentence.

    >>> has_verb("Mitochondria play a major role in apoptosis"), has_verb("Side effects and risks")
    (True, False)
    """
    # The first word is left out: a verb there is an imperative ("Reduce stress") or a participle
    # ("Reduced risk of relapse"), neither of which states a fact.
    for word in _words(text)[1:]:
        lower = word.casefold().replace("\u2019", "'")
        if lower in _AUXILIARIES or lower in _VERB_FORMS or lower in _IRREGULAR:
            return True
        if lower not in _NOT_VERBS_ED and _VERB_SUFFIX.match(lower):
            return True
    return False


def is_title(text: str) -> bool:
    """Whether *text* is a title line: Title Case, not closed by a full stop, without a plain verb.

    >>> is_title("The Science Behind Ketamine Therapy"), is_title("Ketamine Reduces Suicidal Thoughts")
    (True, False)
    """
    stripped = text.strip().strip("*_#").strip()
    if not stripped or stripped.endswith((".", ";", ",")):
        return False
    words = _words(stripped)
    # Numbers have no case, so they say nothing either way ("Top 10 Ketamine Facts").
    major = [w for i, w in enumerate(words) if (i == 0 or w.casefold() not in _MINOR) and not w[:1].isdigit()]
    if len(words) > 14 or len(major) < 2 or not major[0][:1].isupper():
        return False
    lower = [w for w in major if not w[:1].isupper()]
    # One lower-case word in six is allowed: titles keep a drug name or unit in lower case.
    if len(lower) > len(major) // 6:
        return False
    return not any(w.casefold().replace("\u2019", "'") in _TITLE_VERB_FORMS for w in words)


def is_declarative(text: str) -> bool:
    """Whether *text* states something: a verb that is more than a past "be", and no title.

    >>> is_declarative("0-dimensional biomaterials lack inductive properties")
    True
    >>> is_declarative("The weather was pleasant on the day of the visit.")
    False
    """
    if is_title(text):
        return False
    return has_verb(" ".join(w for w in _words(text) if w.casefold() not in _WEAK))


# "I" after these nouns is a Roman numeral ("complex I", "type I diabetes", "Factor I").
_NUMERAL_NOUNS = frozenset("""complex type phase class grade stage factor group part chapter section
level category tier schedule step volume series appendix figure table war photosystem collagen
interferon isoform subunit domain region""".split())
# Before the pronoun "I" stands the start of a clause, not a noun.
_CLAUSE_WORDS = frozenset("""and but or so because when if that as since while where what which who
how why than then until before after once though although unless whether whenever wherever yet nor
do did can could would should will may might must have had am was""".split())
_ROMAN = re.compile(r"^(?:II|III|IV|V|VI{1,3}|IX|X)$")
# Verbs of a writer's own experience, which follow the pronoun "I" ("the week I spent", "I think").
_SPEAKING = frozenset("""think feel believe know want hope love like wish remember guess suppose mean
say see hear try go tried went used use wanted noticed""".split())
_ADVERBS = frozenset("""always never really honestly just actually also then now still finally first
ever recently personally truly only even soon""".split())


def _is_numeral_i(words: list[str], index: int) -> bool:
    """Whether the "I" at *words[index]* is a Roman numeral rather than the writer."""
    before = words[index - 1].casefold() if index > 0 else ""
    after = words[index + 1] if index + 1 < len(words) else ""
    if before in _NUMERAL_NOUNS:
        return True
    if _ROMAN.match(after):
        return True  # "I/II"
    if after.casefold() in {"and", "or", "to", "through"} and index + 2 < len(words) \
            and _ROMAN.match(words[index + 2]):
        return True  # "I and II"
    if before in {"and", "or"} and index >= 2 and _ROMAN.match(words[index - 2]):
        return True  # "II or I"
    if not before or before in _CLAUSE_WORDS:
        return False
    # After any other noun ("receptor I", "Trial I"), "I" is the writer only when a verb
    # follows it ("the drug I took"); "I" never takes a third-person verb ("Complex I is").
    following = [w for w in words[index + 1:index + 3] if w.casefold() not in _ADVERBS][:1]
    if not following:
        return True
    verb = following[0].casefold()
    if verb.endswith("s") and verb != "was":
        return True
    return not (verb in _WEAK or verb in _SPEAKING or has_verb("I " + following[0]))


def first_person(text: str) -> bool:
    """Whether *text* speaks in the first person singular (a testimonial or an opinion).

    >>> first_person("I felt calmer"), first_person("Mitochondrial complex I deficiency causes disease")
    (True, False)
    """
    if _FIRST_PERSON.search(text):
        return True
    if not _PRONOUN_I.search(text):
        return False
    # "I" joined by a hyphen ("I-carnitine", "I-III") is one word with what follows, never the writer.
    matches = list(_WORD.finditer(text))
    words = [m.group(0) for m in matches]
    for index, match in enumerate(matches):
        if match.group(0) != "I":
            continue
        # Punctuation before it ("Honestly, I ...", "(I ...") opens a clause: "I" is the writer there.
        gap = text[matches[index - 1].end():match.start()] if index else ""
        if index == 0 or re.search(r"[,;:\u2013\u2014(\"\u201c]", gap) or not _is_numeral_i(words, index):
            return True
    return False


# A short label at the start of a list item ("Reduced Suicidal Ideation: Strong evidence ..."):
# the text after it is what the item says.
_LABEL = re.compile(r"^(?P<label>[^:\n]{1,60}?)\s*:\s+(?P<rest>\S.*)$", re.DOTALL)


def split_label(text: str) -> tuple[str | None, str]:
    """(label, statement) of a unit that opens with a short label and a colon, else (None, text).

    >>> split_label("Rapid Relief: Ketamine acts within hours.")
    ('Rapid Relief', 'Ketamine acts within hours.')
    """
    found = _LABEL.match(text)
    if not found:
        return None, text
    label = found.group("label").strip().strip("*_").strip()
    words = _words(label)
    # A clause before the colon ("The trial found two effects: ...") is part of the sentence.
    if not words or len(words) > 6 or any(w.casefold() in _TITLE_VERB_FORMS for w in words):
        return None, text
    return label, found.group("rest").strip().strip("*_").strip()


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
    if stripped.endswith(":"):
        # "Potential Risks and Side Effects:", "Reduced Suicidal Ideation:": a label for what follows.
        return Worthiness(False, None, "heading or label: it introduces what follows")
    # A labelled item is judged by what it says after the label; the label's words still count as cues.
    _, body = split_label(stripped)
    if is_title(body):
        return Worthiness(False, None, "heading: a title line (Title Case, no verb)")
    if _QUESTION.search(body) or (_QUESTION_START.match(body) and not body.endswith((".", "!"))):
        return Worthiness(False, None, "question: it asks rather than states")
    if _ADVICE_START.match(body) or _ADVICE.search(body):
        return Worthiness(False, None, "advice or an instruction to the reader, not a statement of fact")
    if _OPINION.search(body):
        return Worthiness(False, None, "opinion: the writer's belief or view")
    if first_person(masked(vocabulary, body)):
        return Worthiness(False, None, "personal experience or testimonial (first person)")
    if body.endswith("!"):
        return Worthiness(False, None, "rhetoric: an exclamation")
    if _ABOUT_ARTICLE.match(body) or (PLACEHOLDER_NOTICE.search(body) and len(_words(body)) <= 40):
        return Worthiness(False, None, "about the article or addressed to the reader, not a claim")
    words = _words(stripped)
    # Three words state a fact when they are a subject, a verb and an object ("DUSP4 decreases
    # apoptosis."), not when the subject is a pronoun standing for an earlier sentence ("It worked well.").
    if len(words) < 3 or (len(words) == 3 and (words[0].casefold() in _PRONOUNS or not is_declarative(body))):
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
    # A declarative sentence states a fact even in words the vocabulary does not know
    # ("Mitochondria play a major role in apoptosis"): the knowledge base may still hold it. Without
    # a cue or a term, one about "you" describes the reader's visit, and one whose subject is a
    # pronoun ("This allows for new ways of thinking") names nothing the evidence could be about.
    if is_declarative(body) and not _SECOND_PERSON.search(body) and words[0].casefold() not in _PRONOUNS:
        return Worthiness(True, "statement", "states a fact (a declarative sentence)")
    return Worthiness(False, None, "no finding, mechanism, effect, safety or regulatory fact, "
                      "no number, no term of the field and no verb that states something")
