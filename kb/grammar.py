"""The query language people type, parsed once into plain data that every engine compiles.

The grammar is small on purpose, so that two engines can implement it exactly and its cost can
be bounded before any index is touched::

    query    := item*
    item     := [ "-" | "+" | "NOT " ] atom  |  atom ( "AND" atom )*  |  "OR"
    atom     := '"' words '"'        a phrase
              | field ":" value      a filter (condition:ptsd, design:rct, source:key, year:2010-2015)
              | word "*"             a prefix (at least two letters)
              | word "~" [ 1 | 2 ]   a word with up to that many typos
              | word

Words without an operator are alternatives, ranked by how many of them match; ``+word`` and
``a AND b`` must match; ``-word`` and ``NOT word`` must not. Anything else (brackets, ``?``,
stray symbols) is punctuation, so pasted text never fails to parse. What costs an engine work
grows with fuzzy and prefix terms, so their number is capped (``QueryLimits``) and a query past
a cap is refused with a message that says which cap and how to fix the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from kb.errors import BadQuery

Occur = Literal["should", "must", "must_not"]
ClauseKind = Literal["word", "phrase", "prefix", "fuzzy"]

OPERATORS = frozenset({"AND", "OR", "NOT"})
_FUZZY = re.compile(r"^(?P<word>.+?)~(?P<edits>\d*)$")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """What one query may ask of an engine. Every cap is checked before the index is read."""

    max_clauses: int = 32  # words, phrases, prefixes and fuzzy words together
    max_fuzzy: int = 4
    max_edits: int = 2  # each extra edit multiplies the words a fuzzy term expands to
    max_prefix: int = 4
    min_prefix_letters: int = 2
    max_phrase_words: int = 12
    max_expansion: int = 500  # index words one prefix or fuzzy term may stand for


@dataclass(frozen=True, slots=True)
class Clause:
    """One searchable part of a query: what it matches and whether it must, may or must not."""

    kind: ClauseKind
    text: str  # the word, phrase or prefix as typed, without its operator or '*' / '~N'
    occur: Occur = "should"
    edits: int = 0  # fuzzy words only


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A query as engines receive it: its clauses and the field filters typed into it."""

    clauses: tuple[Clause, ...] = ()
    filters: tuple[tuple[str, str], ...] = ()  # (field, value) in the order typed
    limits: QueryLimits = QueryLimits()

    @property
    def positive(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if c.occur != "must_not")

    def positive_text(self) -> str:
        """The words a match is looked for with (no exclusions, operators or filters)."""
        return " ".join(c.text for c in self.positive)

    @classmethod
    def of_words(cls, text: str) -> ParsedQuery:
        """Free text (a claim sentence, a title) as alternatives, with no syntax and no caps.

        For queries the program composes itself: their length is bounded by the text they come
        from, and a title such as 'Ketamine: a review' must not be read as a filter.
        """
        words = re.findall(r"[^\W_]+(?:[.-][^\W_]+)*", text)
        return cls(clauses=tuple(Clause("word", w) for w in words if w not in OPERATORS))


def parse(text: str, fields: frozenset[str] = frozenset(),
          limits: QueryLimits = QueryLimits()) -> ParsedQuery:
    """Parse *text* typed by a person; BadQuery says what to change when it cannot run.

    *fields* are the names recognised before a colon (``condition:ptsd``); any other
    ``a:b`` is text.
    """
    items = _items(text, fields)
    clauses: list[Clause] = []
    filters: list[tuple[str, str]] = []
    pending: Occur | None = None  # an operator waiting for its atom
    previous: int | None = None  # index in clauses of the atom before an AND
    joined = False
    for kind, value, occur in items:
        if kind == "operator":
            if value == "NOT":
                pending = "must_not"
            elif value == "AND" and previous is not None:
                joined = True
            continue
        if kind == "filter":
            field, _, wanted = value.partition(":")
            if occur == "must_not" or pending == "must_not":
                raise BadQuery(f"A filter cannot be excluded ({value!r}): remove the '-', or "
                               f"choose the {field} values you want, for example: {field}:"
                               f"{wanted or 'value'}")
            filters.append((field, wanted))
            pending, joined = None, False
            continue
        chosen: Occur = pending or occur
        if joined and chosen == "should":
            chosen = "must"
            if previous is not None and clauses[previous].occur == "should":
                prior = clauses[previous]
                clauses[previous] = Clause(prior.kind, prior.text, "must", prior.edits)
        clause = _clause(kind, value, chosen, limits, text)
        if clause is not None:
            clauses.append(clause)
            previous = len(clauses) - 1
        pending, joined = None, False
    parsed = ParsedQuery(clauses=tuple(clauses), filters=tuple(filters), limits=limits)
    _check_limits(parsed, text)
    return parsed


def _items(text: str, fields: frozenset[str]) -> list[tuple[str, str, Occur]]:
    """Split *text* into (kind, value, occur): kind is atom, phrase, filter or operator."""
    items: list[tuple[str, str, Occur]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        occur: Occur = "should"
        if text[i] in "-+" and i + 1 < n and not text[i + 1].isspace():
            occur = "must_not" if text[i] == "-" else "must"
            i += 1
        if text[i] == '"':
            end = text.find('"', i + 1)
            end = n if end < 0 else end
            items.append(("phrase", text[i + 1:end], occur))
            i = end + 1
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] != '"':
            i += 1
        chunk = text[start:i]
        field, colon, value = chunk.partition(":")
        if colon and field.lower() in fields:
            if not value and i < n and text[i] == '"':  # field:"two words"
                end = text.find('"', i + 1)
                end = n if end < 0 else end
                value, i = text[i + 1:end], end + 1
            items.append(("filter", f"{field.lower()}:{value.strip()}", occur))
        elif chunk in OPERATORS and occur == "should":
            items.append(("operator", chunk, occur))
        else:
            items.append(("atom", chunk, occur))
    return items


def _clause(kind: str, value: str, occur: Occur, limits: QueryLimits, text: str) -> Clause | None:
    if kind == "phrase":
        words = _SPACE.sub(" ", value).strip()
        if not words:
            return None
        if len(words.split(" ")) > limits.max_phrase_words:
            raise BadQuery(f"The phrase \"{words[:60]}...\" has more than {limits.max_phrase_words} "
                           "words: quote only the words that must stand together, for example: "
                           "\"suicidal ideation\"")
        return Clause("phrase", words, occur)
    if value.endswith("*"):
        stem = value.rstrip("*")
        letters = re.sub(r"[\W_]", "", stem)
        if not letters:
            raise BadQuery(f"{value!r} alone matches everything: add a word, for example: "
                           "ketamine, or use a filter without a query")
        if len(letters) < limits.min_prefix_letters:
            raise BadQuery(f"The wildcard in {value!r} matches too much: put at least "
                           f"{limits.min_prefix_letters} letters before '*', for example: ketam*")
        return Clause("prefix", stem, occur)
    fuzzy = _FUZZY.match(value)
    if fuzzy and re.search(r"[^\W_]", fuzzy["word"]):
        edits = int(fuzzy["edits"]) if fuzzy["edits"] else 1
        if edits > limits.max_edits:
            raise BadQuery(f"{value!r} allows {edits} typos; the most is {limits.max_edits}: "
                           f"write {fuzzy['word']}~{limits.max_edits} or fewer, for example: ketamine~1")
        if edits == 0:
            return Clause("word", fuzzy["word"], occur)
        return Clause("fuzzy", fuzzy["word"], occur, edits)
    if not re.search(r"[^\W_]", value):
        return None  # punctuation only
    return Clause("word", value, occur)


def _check_limits(parsed: ParsedQuery, text: str) -> None:
    limits = parsed.limits
    if len(parsed.clauses) > limits.max_clauses:
        raise BadQuery(f"The query has {len(parsed.clauses)} words and phrases; the most is "
                       f"{limits.max_clauses}: keep the key words, for example: ketamine suicidal ideation")
    fuzzy = sum(1 for c in parsed.clauses if c.kind == "fuzzy")
    if fuzzy > limits.max_fuzzy:
        raise BadQuery(f"The query has {fuzzy} words with '~'; the most is {limits.max_fuzzy}: "
                       "keep '~' for the words you are unsure how to spell, for example: ketamin~1")
    prefixes = sum(1 for c in parsed.clauses if c.kind == "prefix")
    if prefixes > limits.max_prefix:
        raise BadQuery(f"The query has {prefixes} words with '*'; the most is {limits.max_prefix}: "
                       "write the other words in full, for example: ketam* depression")
    if parsed.clauses and not parsed.positive:
        raise BadQuery(f"{text!r} only excludes words: add a word to search for, for example: "
                       "ketamine -anesthesia")
    if not parsed.clauses and not parsed.filters and text.strip():
        raise BadQuery(f"Nothing searchable in {text!r}: use content words, not only operators "
                       "(AND, OR, NOT), quotes or symbols, for example: ketamine suicidal ideation")
