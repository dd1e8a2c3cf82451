"""Helpers the format parsers share: pages, dates, names, labelled abstracts and unique keys.

Each parser turns its own format into plain values; these helpers make the values look the same
whichever format they came from, so that merging and deduplication compare like with like.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from kb.ids import make_source_key
from kb.ingest import ParseResult
from kb.models import CorpusProblem, Provenance, Source

# Fields a literature service vouches for when a record comes from its own response.
BIBLIOGRAPHIC_FIELDS = ("title", "authors", "container", "year", "volume", "issue", "pages")

_DASHES = re.compile(r"\s*[-\u2010-\u2015\u2212]+\s*")
_MONTHS = {name: number for number, names in enumerate((
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
    ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
    ("oct", "october"), ("nov", "november"), ("dec", "december")), start=1) for name in names}
_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?!\d)")

# Words that make up the section labels of structured abstracts ("METHODS AND RESULTS",
# "DESIGN, SETTING, AND PARTICIPANTS"). A closed list, because an upper-case run at the start of
# a sentence is as often an acronym ("HIV", "BMI") as a label.
_LABEL_WORDS = frozenset(["ABSTRACT", "AIM", "AIMS", "ANALYSES", "ANALYSIS", "APPLICATION", "APPROACH", "AUTHORS'", "AVAILABILITY", "BACKGROUND", "CASE", "CLINICAL", "COLLECTION", "COMMENT", "COMMENTS", "CONCLUSION", "CONCLUSIONS", "CONTEXT", "CRITERIA", "DATA", "DESIGN", "DISCUSSION", "ELIGIBILITY", "ENHANCED", "EVIDENCE", "EXPERIMENTAL", "EXPOSURE", "EXPOSURES", "EXTRACTION", "FINDINGS", "FUNDING", "GENERAL", "HYPOTHESIS", "IMPLEMENTATION", "IMPLICATIONS", "IMPORTANCE", "INTERPRETATION", "INTERVENTION", "INTERVENTIONS", "INTRODUCTION", "LIMITATIONS", "MAIN", "MATERIAL", "MATERIALS", "MEASURE", "MEASUREMENTS", "MEASURES", "METHOD", "METHODOLOGY", "METHODS", "MOTIVATION", "OBJECTIVE", "OBJECTIVES", "OUTCOME", "OUTCOMES", "PARTICIPANTS", "PATIENT", "PATIENTS", "POPULATION", "PRESENTATION", "PRINCIPAL", "PURPOSE", "RATIONALE", "RECENT", "REGISTRATION", "RELEVANCE", "REPORT", "RESEARCH", "RESULT", "RESULTS", "REVIEW", "SCOPE", "SEARCH", "SELECTION", "SETTING", "SETTINGS", "SIGNIFICANCE", "SOURCES", "STRATEGY", "STUDY", "SUBJECTS", "SUMMARY", "SYNTHESIS", "TRIAL", "UNLABELLED", "VERSION"])
_LABEL_JOINERS = frozenset({"AND", "OF", "&", "OR", "THE", "FOR", "TO"})
_LABEL_TOKEN = re.compile(r"([A-Z][A-Z']*(?:\(S\))?|&)([\s,/]*)")


def clean(text: object) -> str:
    """Collapse whitespace (and decode stray HTML entities) in a text value."""
    if text is None:
        return ""
    return " ".join(html.unescape(str(text)).split())


def read_json(text: str, origin: str, result: ParseResult) -> tuple[bool, Any]:
    """Load a JSON document; on failure report it in *result* with its line and return (False, None)."""
    try:
        return True, load_json(text)
    except json.JSONDecodeError as error:
        result.problems.append(CorpusProblem(origin, error.lineno, f"malformed JSON: {error.msg}"))
        return False, None


def load_json(text: str) -> Any:
    """``json.loads`` whose every failure is a ``json.JSONDecodeError`` the parsers report.

    Valid JSON can still fail to load: a number longer than ``int()`` converts (4,300 digits)
    raises a bare ValueError, and arrays nested thousands deep a RecursionError. A hostile or
    damaged file must become a problem with a line number, not a crash.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:
        raise json.JSONDecodeError("a number too long to read", text, 0) from None
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply to read", text, 0) from None


def normalize_pages(pages: str) -> str:
    """Write a page range with one hyphen and expand MEDLINE's abbreviated ends.

    >>> normalize_pages("351--4"), normalize_pages("e2305772120"), normalize_pages("1195 - 202")
    ('351-354', 'e2305772120', '1195-1202')
    """
    text = _DASHES.sub("-", clean(pages))
    match = re.fullmatch(r"(\D*)(\d+)-(\D*)(\d+)", text)
    if match:
        prefix, first, prefix2, last = match.groups()
        if (not prefix2 or prefix2 == prefix) and len(last) < len(first):
            last = first[: len(first) - len(last)] + last
            return f"{prefix}{first}-{prefix}{last}"
    return text


def month_number(value: str) -> int | None:
    """Read a month written as a number or an English name or abbreviation.

    >>> month_number("Feb"), month_number("9"), month_number("Spring")
    (2, 9, None)
    """
    text = value.strip().lower().rstrip(".")
    if text.isdigit() and 1 <= int(text) <= 12:
        return int(text)
    return _MONTHS.get(text) or _MONTHS.get(text[:3])


def year_from(value: object) -> int | None:
    """The first plausible four-digit year in *value* ("2020 Feb", "1998 Dec-1999 Jan")."""
    match = _YEAR.search(str(value or ""))
    return int(match.group(1)) if match else None


def person(family: str, given: str = "") -> str:
    """An author as "Family, Given" (the form Source.authors uses), or "" when there is none."""
    family, given = clean(family), clean(given)
    if family and given:
        return f"{family}, {given}"
    return family or given


_PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "le", "la", "dos",
              "das", "ter", "ten", "bin", "al", "el"}


def person_from_display(name: str) -> str:
    """Turn "Given Family" (as OpenAlex writes names) into "Family, Given".

    Lower-case particles stay with the family name; names already holding a comma are kept.

    >>> person_from_display("Heather Piwowar"), person_from_display("Ludwig van Beethoven")
    ('Piwowar, Heather', 'van Beethoven, Ludwig')
    """
    text = clean(name)
    if not text or "," in text:
        return text
    words = text.split()
    if len(words) == 1:
        return text
    start = len(words) - 1
    while start > 1 and words[start - 1].lower() in _PARTICLES:
        start -= 1
    return person(" ".join(words[start:]), " ".join(words[:start]))


def take_label(text: str) -> tuple[str, str]:
    """Split a leading structured-abstract label off *text*: ("LABEL", rest) or ("", text).

    The label is a run of known label words, ended by a colon or followed by the sentence.

    >>> take_label("METHODS AND RESULTS In 30 obese subjects ...")
    ('METHODS AND RESULTS', 'In 30 obese subjects ...')
    >>> take_label("BACKGROUND: HIV is common."), take_label("HIV is common.")
    (('BACKGROUND', 'HIV is common.'), ('', 'HIV is common.'))
    """
    stripped = text.lstrip()
    words: list[str] = []
    end = 0
    position = 0
    while True:
        match = _LABEL_TOKEN.match(stripped, position)
        if not match:
            break
        word = match.group(1)
        bare = word.replace("(S)", "")
        if bare not in _LABEL_WORDS and not (words and bare in _LABEL_JOINERS):
            break
        words.append(word)
        position = match.end()
        if bare in _LABEL_WORDS:
            end = match.start(2)  # the label ends after its last real label word
        if not match.group(2):
            break
    if not end:
        return "", text.strip()
    label = stripped[:end].strip().rstrip(",/")
    rest = stripped[end:].lstrip(" ,/")
    if rest.startswith(":"):
        rest = rest[1:].lstrip()
    elif rest[:1].islower() or not rest:
        return "", text.strip()  # "RESULTS were ..." is a sentence, not a label
    return label, rest.strip()


def sections_from_sentences(sentences: Iterable[str], structured: bool = True,
                            separator: str = " ") -> tuple[tuple[str, str], ...]:
    """Group sentences into (label, text) sections, starting a section at each labelled sentence.

    *separator* "\n" keeps the given sentence boundaries: claim extraction treats a line break
    as a sentence end, so no splitter second-guesses a source that already split its sentences.
    """
    sections: list[tuple[str, list[str]]] = []
    for sentence in sentences:
        sentence = clean(sentence)
        if not sentence:
            continue
        label, rest = take_label(sentence) if structured else ("", sentence)
        if label or not sections:
            sections.append((label, [rest] if rest else []))
        else:
            sections[-1][1].append(rest)
    return tuple((label, separator.join(parts)) for label, parts in sections if parts or label)


_INLINE_LABEL = re.compile(r"(?:(?<=^)|(?<=[.?!)\]] ))([A-Z][A-Z ,/&'()]{2,}[A-Z)]):\s")


def sections_from_text(text: str) -> tuple[tuple[str, str], ...]:
    """Split an abstract written as "BACKGROUND: ... METHODS: ..." into sections.

    Only an abstract that *starts* with a label counts as structured; otherwise it is one section.
    """
    text = clean(text)
    if not text:
        return ()
    matches = [m for m in _INLINE_LABEL.finditer(text) if take_label(m.group(0))[0]]
    if not matches or matches[0].start() != 0:
        return (("", text),)
    sections = []
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        body = text[match.end(): following.start() if following else len(text)].strip()
        sections.append((match.group(1).strip(), body))
    return tuple(sections)


def join_sections(sections: Iterable[tuple[str, str]]) -> str:
    """The plain abstract: each part as "LABEL: text", parts separated by blank lines."""
    return "\n\n".join(f"{label}: {text}" if label else text for label, text in sections if text)


def source_key(authors: tuple[str, ...], year: int | None, title: str) -> str:
    """The citation key a parser gives a record: family name + year + first title word."""
    key = make_source_key(authors[0] if authors else "", year, title)
    key = key if key[:1].isalnum() else f"x{key}"
    # A source id has at most 128 characters (and names a file): a title opening with a long
    # unbroken word (a chemical name, a URL) must not make an id the loader would refuse.
    return key[:MAX_KEY]


MAX_KEY = 100  # leaves room for KeyAllocator's suffixes under the 128-character id limit


def _suffix(number: int) -> str:
    """1 -> "a", 26 -> "z", 27 -> "aa": the BibTeX habit for same-author-same-year keys."""
    suffix = ""
    while number:
        number, rest = divmod(number - 1, 26)
        suffix = chr(ord("a") + rest) + suffix
    return suffix


def add_with_unique_key(result: ParseResult, source: Source, raw: str, keys: KeyAllocator) -> None:
    """Append *source* to *result* under a key no earlier record of the input took, with its raw text.

    Several records of one file may build the same key (same first author, year and title word).
    """
    key = keys.allocate(source.id)
    if key != source.id:
        source = replace(source, id=key)
    result.sources.append(source)
    result.raw[key] = raw


def parse_tagged_records(records: Iterable[tuple[int, Any, str]], origin: str,
                         build: Callable[[Any, Provenance], tuple[Source | None, list[CorpusProblem]]],
                         none_found: str) -> ParseResult:
    """Turn (line, fields, raw) records of a tagged format (RIS, MEDLINE) into a ParseResult.

    *build* makes one Source from a record's fields; *none_found* explains an input with no record.
    """
    result = ParseResult()
    keys = KeyAllocator()
    for line, fields, raw in records:
        source, problems = build(fields, Provenance(origin, line))
        result.problems.extend(problems)
        if source is not None:
            add_with_unique_key(result, source, raw, keys)
    if not result.sources and not result.problems:
        result.problems.append(CorpusProblem(origin, None, none_found))
    return result


class KeyAllocator:
    """Hands out unique keys: *key*, else *key* + a, b, ..., z, aa, ...

    It remembers the last suffix given per key, so a file of a thousand records sharing one
    key (a generated test file, a series of reports) costs linear time, not quadratic.
    """

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self.taken: set[str] = set(taken)
        self._next: dict[str, int] = {}

    def __contains__(self, key: object) -> bool:
        return key in self.taken

    def allocate(self, key: str) -> str:
        """Return a key not handed out (or taken) before, and mark it taken."""
        if key in self.taken:
            number = self._next.get(key, 1)
            while f"{key}{_suffix(number)}" in self.taken:
                number += 1
            self._next[key] = number + 1
            key = f"{key}{_suffix(number)}"
        self.taken.add(key)
        return key

    def reserve(self, key: str) -> None:
        """Mark *key* taken without allocating it."""
        self.taken.add(key)


def unique_key(key: str, taken: set[str] | dict[str, object]) -> str:
    """*key*, or *key* with the first free suffix a, b, ..., z, aa, ab, ... when it is taken."""
    number = 0
    candidate = key
    while candidate in taken:
        number += 1
        candidate = f"{key}{_suffix(number)}"
    return candidate


def ascii_fold(text: str) -> str:
    """Case-folded letters and digits without accents: the form titles and names are compared in.

    Letters outside Latin (Cyrillic, Greek) are kept, so a Russian title still compares.

    >>> ascii_fold("Lariviere, V."), ascii_fold("Larivière,  V"), ascii_fold("Состояние")
    ('lariviere v', 'lariviere v', 'состояние')
    """
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", bare).split())


def problem(provenance: Provenance, message: str, severity: str = "error") -> CorpusProblem:
    """A CorpusProblem located where *provenance* points."""
    return CorpusProblem(provenance.file, provenance.line, message, severity)  # type: ignore[arg-type]


def verified_marks(fields: Iterable[str], mark: str = "verified") -> dict[str, str]:
    """The verification map giving *mark* to each of *fields*."""
    return dict.fromkeys(fields, mark)


# "[^<>]" rather than "[^>]": a tag never holds "<", and a text full of "<" without ">" would
# otherwise be rescanned to its end from every "<" (quadratic time on a hostile abstract).
_BLOCK_TAG = re.compile(r"</?(?:[\w-]+:)?(?:p|sec|title|list|list-item|br|div|label)\b[^<>]*>")


def strip_markup(text: str) -> str:
    """Remove XML/HTML tags (JATS <jats:p>, <i>, <sub>) and decode entities.

    Block tags become spaces so paragraphs do not run together; inline tags (<sub>2</sub>)
    vanish so "H<sub>2</sub>O" stays one word.
    """
    return clean(re.sub(r"<[^<>]+>", "", _BLOCK_TAG.sub(" ", text)))


def only_present_marks(source: Source) -> Source:
    """Drop verification marks (and notes) of fields the record leaves empty.

    A service vouches for what it returned; a mark on an empty volume would claim a fact
    nobody stated.
    """
    marks = {name: mark for name, mark in source.verification.items() if getattr(source, name, "")}
    if marks == source.verification:
        return source
    notes = {name: note for name, note in source.verification_notes.items() if name in marks}
    return replace(source, verification=marks, verification_notes=notes)


def iter_lines(text: str) -> Iterator[str]:
    """Yield the lines of *text* (with their ends), one at a time.

    Unlike ``text.splitlines()`` it builds no list, and unlike ``io.StringIO`` it makes no copy
    of the text (StringIO keeps four bytes a character): the line-based parsers stay streaming.
    """
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        end = size if end < 0 else end + 1
        yield text[start:end]
        start = end
