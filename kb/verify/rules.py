"""What the verifier model does not learn from its training data, kept as explicit rules.

- ``figures``: the numbers a text states, normalised so that "95 percent confidence interval" meets
  "95% CI", "P = 0.25" meets "p = .25", a Unicode minus meets a hyphen and "1,234" meets "1234".
- ``is_background``: aims, background and methods sentences ("To assess whether…", "We
  hypothesised that…") describe what a study set out to do, not what it found.

>>> sorted(figures("95 percent confidence interval, \u22123.16; P = .25; n = 1,234"))
['-3.16', '1234', '95%', 'p=0.25']
>>> sorted(figures("95% CI -3.16, p=0.25 among 1234"))
['-3.16', '1234', '95%', 'p=0.25']
>>> is_background("To assess whether ketamine reduces suicidal ideation, we randomised 80 adults.")
True
>>> is_background("Ketamine reduced suicidal ideation within 24 hours.")
False
"""

from __future__ import annotations

import re

_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u00a0": " ",
                        "\u2009": " ", "\u202f": " "})
_PERCENT_WORDS = re.compile(r"\s*(?:per\s?cent|percent|pct)\b", re.IGNORECASE)
_CONFIDENCE = re.compile(r"\bconfidence intervals?\b", re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_P_VALUE = re.compile(r"\b[pP]\s*(<|>|=|≤|≥)\s*(-?\d*\.?\d+)")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?%?")
_YEARS = re.compile(r"^(?:19|20)\d\d$")


def normalise_figures(text: str) -> str:
    """*text* with numbers written one way: ASCII minus, no thousands separators, "%"."""
    text = text.translate(_MINUS)
    text = _PERCENT_WORDS.sub("%", text)
    text = _CONFIDENCE.sub("CI", text)
    return _THOUSANDS.sub("", text)


def figures(text: str) -> set[str]:
    """The figures a text states: numbers ("-3.16", "95%") and p-values ("p=0.25").

    Years, and the small counts that prose spells as numbers anyway (1, 2), are left out: they
    say when or how many arms, not what was found.
    """
    text = normalise_figures(text)
    found: set[str] = set()
    for match in _P_VALUE.finditer(text):
        value = match.group(2)
        if value.startswith("."):
            value = "0" + value
        elif value.startswith("-."):
            value = "-0" + value[1:]
        found.add(f"p{match.group(1)}{float(value):g}")
    rest = _P_VALUE.sub(" ", text)
    for match in _NUMBER.finditer(rest):
        value = match.group(0)
        bare = value.rstrip("%")
        if _YEARS.match(bare) or bare in {"0", "1", "2"}:
            continue
        number = float(bare)
        found.add(f"{number:g}" + ("%" if value.endswith("%") else ""))
    return found


_BACKGROUND = re.compile(
    r"^\s*(?:(?:background|objectives?|aims?|purpose|introduction|methods?|design)\s*[:.]|"
    r"to (?:assess|determine|evaluate|investigate|examine|test|compare|explore|establish|estimate|"
    r"identify|characteri[sz]e|describe|review|quantify|clarify|understand)\b|"
    r"(?:we|this study|the present study|this trial|this review|the authors|this paper|this article)\s+"
    r"(?:aimed|aims|sought|seeks|set out|hypothesi[sz]ed|hypothesi[sz]e|investigated|investigate|"
    r"examined|examine|explored|explore|assessed|assess|evaluated|evaluate|asked|ask|tested|test|"
    r"conducted|performed|designed|propose|proposed|describe|review|reviewed)\b|"
    r"(?:the|our|its)\s+(?:aim|objective|purpose|goal)s?\s+(?:of|was|were|is|are)\b|"
    r"(?:it is|it remains|little is|less is)\s+(?:unknown|unclear|not known|known)\b|"
    r"(?:whether|how)\s+\w+(?:\s+\w+){0,6}\s+(?:is|are|remains?)\s+(?:unknown|unclear)\b)",
    re.IGNORECASE)


def is_background(text: str) -> bool:
    """True for a sentence that states an aim, a question, background or a method, not a finding."""
    return bool(_BACKGROUND.search(text))
