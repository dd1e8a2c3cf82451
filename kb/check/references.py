"""References and inline citations: find the article's reference list, read the citations in its
sentences, and resolve both to knowledge-base sources.

The reference list is the text under a heading such as "References", "Bibliography", "Sources" or
"Works cited" (a Markdown, HTML or plain-text heading, or a line "References:"), or, failing
that, a trailing numbered list whose items look like references (a year, a DOI, "et al.").
Numbered ("1.", "[1]"), Vancouver, APA and Markdown footnote ("[^1]: ...") entries are read.

A reference resolves to a source by its DOI or PMID exactly (``OpenedBuild.find_source``), else
by a fuzzy match (rapidfuzz) of the source's title inside the entry, confirmed by the first
author's family name or the year, else by first author and year alone when one source fits. An
entry that neither an author nor a year confirms (a regulatory document, a web page: "FDA Approval
Information for Spravato (esketamine)") may resolve by its title alone, under stricter conditions
(``TITLE_ONLY``); a year it does give must be the source's.

A note in the list ("Note: The references above are illustrative placeholders") is not an entry;
one saying the references are not real is a placeholder notice (``notice_problems``).

Inline citations: ``[1]``, ``[1,2]``, ``[1-3]``, superscript digits (``¹²``, and HTML ``<sup>``
turned into ``[n]`` by the segmenter), ``[^note]``, ``(Berman et al., 2000; Zarate 2006)``,
``Berman et al. (2000)`` and ``Berman 2000`` when Berman is a known first author.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process

from kb.check.result import Problem, Reference, ResolvedSource
from kb.check.segment import Unit
from kb.check.worthiness import PLACEHOLDER_NOTICE
from kb.citations import confirmed_identifiers, split_name, vancouver
from kb.models import Source
from kb.opened_build import OpenedBuild

if TYPE_CHECKING:
    from kb.store import Store

REFERENCE_HEADING = re.compile(
    r"^(?:references?|reference list|bibliography|sources?(?: cited)?|works cited|literature cited|"
    r"cited literature|citations|further reading|notes and references|endnotes|footnotes)\s*:?\s*$",
    re.IGNORECASE)
_MARKER = re.compile(r"^[ \t]*(?:(?P<num>\d{1,3})[.)]|\[(?P<bracket>\d{1,3})\]|\[\^(?P<note>[\w-]+)\]:|"
                     r"[-*+\u2022])[ \t]+")
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)
_PMID = re.compile(r"\bPMID:?\s*(\d{1,9})\b", re.IGNORECASE)
_YEAR = re.compile(r"\b((?:19|20)\d{2})[a-z]?\b")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)

# Text that stands in for a citation the writer has not found yet.
PLACEHOLDER = re.compile(
    r"citation needed|\[(?:citation|ref|reference|source|cite|\?+)\]|\((?:ref|citation|source|\?+)\)|"
    r"\bauthors?(?: et al\.?)?,?\s*\(?(?:year|n\.d\.|\d{4}|[12]\dxx)\)?|"
    r"\b(?:TODO|TBD|FIXME|XXXX?)\b|\b(?:19|20)xx\b|\bexample\.(?:com|org|net)\b|\b10\.x{2,}|"
    r"\b10\.0{4,}/|lorem ipsum|\binsert (?:a )?(?:citation|reference|source)\b",
    re.IGNORECASE)

_NAME = r"[A-Z][\w'\u2019\-]+"
_NUMERIC = re.compile(r"\[(\d{1,3}(?:\s*[,;\u2013\u2014-]\s*\d{1,3})*)\]")
_FOOTNOTE = re.compile(r"\[\^([\w-]+)\]")
_SUPERSCRIPTS = "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
_SUPERSCRIPT = re.compile(rf"(?<=[^\s\d{_SUPERSCRIPTS}])[{_SUPERSCRIPTS}]+(?:[,\u207b\u2013-][{_SUPERSCRIPTS}]+)*")
_PAREN = re.compile(r"\(([^()]{0,400}?\b(?:19|20)\d{2}[a-z]?\b[^()]{0,400}?)\)")
_PART = re.compile(rf"^\s*(?:see also |see |e\.g\.,? |cf\.? |i\.e\.,? |reviewed in )?"
                   rf"(?P<name>{_NAME}(?:\s+{_NAME}){{0,3}}?)"
                   rf"(?P<rest>\s+et\s+al\.?|\s+(?:and|&)\s+{_NAME}|\s+and\s+colleagues)?,?\s+"
                   rf"(?P<year>(?:19|20)\d{{2}})[a-z]?\s*$")
_NARRATIVE = re.compile(rf"\b(?P<name>{_NAME})(?P<rest>\s+et\s+al\.?|\s+(?:and|&)\s+{_NAME}|"
                        rf"\s+and\s+colleagues)?\s+\((?P<year>(?:19|20)\d{{2}})[a-z]?\)")
_BARE = re.compile(rf"\b(?P<name>{_NAME})(?P<rest>\s+et\s+al\.?)?,?\s+(?P<year>(?:19|20)\d{{2}})\b"
                   r"(?![\d%]|\.\d|,\d)")
# Capitalised words that precede a year without being an author ("In 2019", "March 2019").
_NOT_NAMES = frozenset("""in by since from until till before after during of the a an and or year
years month spring summer autumn fall winter january february march april may june july august
september october november december phase study trial table figure fig version early late mid
around about circa between through to as at on for with than updated published revised
approved between""".split())


@dataclass(frozen=True, slots=True)
class Citation:
    """A citation found in a sentence: the reference keys it names and where it stands."""

    kind: str  # "numeric", "footnote", "author-year" or "placeholder"
    keys: tuple[str, ...]  # numbers or footnote labels; for author-year ("name", "year")
    start: int  # offsets within the sentence
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Notice:
    """A note in the reference list, which is not a reference ("Note: links checked in 2024")."""

    text: str
    start: int  # offsets into the analysed text
    end: int
    placeholder: bool  # it says the references are placeholders, examples or not real


@dataclass(frozen=True, slots=True)
class ReferenceSection:
    """Where the reference list stands in the analysed text and what it holds."""

    start: int
    end: int
    heading: str | None  # the heading that opened it, None for a trailing numbered list
    entries: tuple[Reference, ...]
    notices: tuple[Notice, ...] = ()


def normalise(text: str) -> str:
    """Lower case, accents folded, punctuation to spaces: the form titles and names are compared in.

    >>> normalise("Müller's NMDA-receptor (2019)")
    'muller s nmda receptor 2019'
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def _acronyms(name: str) -> set[str]:
    """Acronyms of a corporate author: "U.S. Food and Drug Administration" -> {"fda", "usfda"}."""
    words = [w for w in re.split(r"\s+", name) if w]
    capitals = [w for w in words if w[:1].isupper()]
    if len(capitals) < 2:
        return set()
    full = "".join(w.replace(".", "")[0] if "." not in w else w.replace(".", "") for w in capitals)
    short = "".join(w[0] for w in capitals if "." not in w)
    return {a.casefold() for a in (full, short) if len(a) >= 2}


@dataclass(frozen=True, slots=True)
class _Known:
    source: Source
    title: str  # normalised
    main_title: str  # normalised, before a subtitle (":" or ";"); "" when there is none
    family: str  # normalised family name of the first author (or corporate author)
    acronyms: frozenset[str]


def _known_sources(kb: OpenedBuild) -> tuple[_Known, ...]:
    """Normalised titles and first authors of every source, computed once per build."""
    return kb.derived("references: known sources", lambda: _index_sources(kb.store))


def _index_sources(store: Store) -> tuple[_Known, ...]:
    known = []
    for source in store.sources:
        first = source.authors[0] if source.authors else source.container
        family = split_name(first)[0] if source.authors and "," in first else first
        if source.authors and "," not in first and len(first.split()) <= 3:
            family = split_name(first)[0]
        acronyms = _acronyms(first) if first and "," not in first else set()
        family = re.sub(r"\s+(?:jr|sr|ii|iii|iv)\.?$", "", family.strip(), flags=re.IGNORECASE)
        main = re.split(r"[:;]|\s[-\u2013\u2014]\s", source.title, maxsplit=1)[0]
        main_title = normalise(main) if main != source.title else ""
        known.append(_Known(source, normalise(source.title), main_title, normalise(family), frozenset(acronyms)))
    return tuple(known)


def _title_frequency(kb: OpenedBuild) -> Counter[str]:
    """In how many source titles each normalised word occurs, computed once per build."""
    def count() -> Counter[str]:
        frequency: Counter[str] = Counter()
        for known in _known_sources(kb):
            frequency.update(set(known.title.split()))
        return frequency

    return kb.derived("references: title frequency", count)


def known_first_authors(kb: OpenedBuild) -> set[str]:
    """Normalised first-author family names (and corporate acronyms) of every source."""
    found: set[str] = set()
    for known in _known_sources(kb):
        found.add(known.family.split(" ")[-1] if known.family else "")
        found.add(known.family)
        found |= known.acronyms
    found.discard("")
    return found


# --- the reference list ---------------------------------------------------------------------


def _looks_like_reference(text: str) -> bool:
    return bool(_DOI.search(text) or _PMID.search(text) or _URL.search(text)
                or (_YEAR.search(text) and (re.search(r"\bet al\b|[A-Z][a-z]+,? (?:[A-Z]\.? ?){1,3}[,.]", text)
                                            or len(text.split()) >= 6)))


_NOTE_START = re.compile(r"^[\s*_(\[]*(?:notes?|disclaimer|n\.\s?b\.?|please note|editor['\u2019]s note)"
                         r"\s*[:.\u2013\u2014-]", re.IGNORECASE)


def is_notice(text: str) -> bool:
    """Whether a line of a reference list is a note about the list rather than a reference.

    >>> is_notice("Note: The references above are illustrative placeholders"), is_notice("Berman RM. 2000.")
    (True, False)
    """
    text = text.strip()
    return bool(_NOTE_START.match(text)) or (
        bool(PLACEHOLDER_NOTICE.search(text)) and not _looks_like_reference(text) and len(text.split()) <= 40)


def _notices(text: str, start: int, end: int) -> tuple[Notice, ...]:
    found: list[Notice] = []
    position = start
    for line in text[start:end].split("\n"):
        line_start = position
        position += len(line) + 1
        marker = _MARKER.match(line)
        body = line[marker.end():] if marker else line
        if body.strip() and is_notice(body):
            offset = line_start + (marker.end() if marker else 0)
            left, right = offset + len(body) - len(body.lstrip()), offset + len(body.rstrip())
            found.append(Notice(text[left:right], left, right, bool(PLACEHOLDER_NOTICE.search(body))))
    return tuple(found)


def notice_problems(section: ReferenceSection | None, units: Iterable[Unit] = ()) -> list[Problem]:
    """A "placeholder" problem for each note saying the article's references are not real.

    The notes of the reference list count, and *units* outside it that are such a note (a
    disclaimer after the list, or in an article without one).
    """
    notes = list(section.notices) if section is not None else []
    for unit in units:
        inside = section is not None and section.start <= unit.start and unit.end <= section.end
        if not inside and PLACEHOLDER_NOTICE.search(unit.text) and is_notice(unit.text):
            notes.append(Notice(unit.text, unit.start, unit.end, True))
    where = f" under '{section.heading}'" if section is not None and section.heading else ""
    return [Problem("placeholder", f"The article says its references are not real ('{note.text}'): the "
                    f"reference list{where} holds placeholders, so replace them with the sources the "
                    "article draws on; citations of them cannot back its sentences")
            for note in notes if note.placeholder]


def find_reference_section(text: str, units: list[Unit]) -> ReferenceSection | None:
    """The article's reference list, or None when it has none.

    The last heading that names a reference list opens it; the next heading of the same or a
    higher level closes it. Without such a heading, a numbered list at the very end of the text
    whose items look like references is taken.
    """
    opened: tuple[int, Unit] | None = None
    for index, unit in enumerate(units):
        label = unit.text.strip().strip("*_#").strip()
        if (unit.kind == "heading" or unit.text.rstrip().endswith(":")) and REFERENCE_HEADING.match(label):
            opened = (index, unit)
    if opened is not None:
        index, heading = opened
        end = len(text)
        for later in units[index + 1:]:
            if later.kind == "heading" and (heading.kind != "heading" or later.level <= heading.level):
                end = later.start
                break
        entries = parse_entries(text, heading.end, end)
        return ReferenceSection(heading.end, end, heading.text.strip(), tuple(entries),
                                _notices(text, heading.end, end))
    return _trailing_numbered_list(text)


def _trailing_numbered_list(text: str) -> ReferenceSection | None:
    lines = text.split("\n")
    position = len(text)
    start = None
    numbered = 0
    for line in reversed(lines):
        line_start = position - len(line)
        position = line_start - 1
        stripped = line.strip()
        if not stripped:
            continue
        marker = _MARKER.match(line)
        if marker and (marker.group("num") or marker.group("bracket")):
            numbered += 1
            start = line_start
        elif line[:1] in {" ", "\t"}:
            continue  # a wrapped entry
        elif numbered == 0 and is_notice(stripped):
            continue  # a note after the list ("Note: the references above are ...") belongs to it
        else:
            break
    if start is None or numbered == 0:
        return None
    entries = parse_entries(text, start, len(text))
    looking = sum(_looks_like_reference(e.text) for e in entries)
    if not entries or looking < max(1, 0.6 * len(entries)):
        return None
    return ReferenceSection(start, len(text), None, tuple(entries), _notices(text, start, len(text)))


def parse_entries(text: str, start: int, end: int) -> list[Reference]:
    """The entries of a reference list between *start* and *end* of *text*."""
    raw: list[list[int]] = []  # [start, end, number, ...]
    labels: list[str | None] = []
    numbers: list[int | None] = []
    uses_markers = bool(_MARKER.search(text[start:end].split("\n", 1)[-1])) or any(
        _MARKER.match(line) for line in text[start:end].split("\n"))
    position = start
    for line in text[start:end].split("\n"):
        line_start, line_end = position, position + len(line)
        position = line_end + 1
        if not line.strip():
            continue
        marker = _MARKER.match(line)
        if is_notice(line[marker.end():] if marker else line):
            continue  # a note about the list is no entry, nor part of the entry above it
        if marker:
            number = marker.group("num") or marker.group("bracket")
            raw.append([line_start + marker.end(), line_end])
            numbers.append(int(number) if number else None)
            labels.append(marker.group("note"))
        elif raw and (line[:1] in {" ", "\t"} or uses_markers):
            raw[-1][1] = line_end  # continuation of the entry above
        else:
            raw.append([line_start, line_end])
            numbers.append(None)
            labels.append(None)
    entries: list[Reference] = []
    for position_number, ((entry_start, entry_end), number, label) in enumerate(
            zip(raw, numbers, labels, strict=True), start=1):
        entry_text = " ".join(text[entry_start:entry_end].split())
        if not entry_text:
            continue
        if number is not None:
            ref_id = str(number)
        elif label is not None:
            ref_id = label
        else:
            ref_id = f"R{position_number}"
        entries.append(_parsed(Reference(id=ref_id, text=entry_text, start=entry_start, end=entry_end,
                                         number=number)))
    return entries


def _parsed(reference: Reference) -> Reference:
    """Fill in the DOI, PMID, year and first author written in a reference's text."""
    text = reference.text
    doi = _DOI.search(text)
    pmid = _PMID.search(text)
    paren_year = re.search(r"\(((?:19|20)\d{2})[a-z]?\)", text)
    year = paren_year or _YEAR.search(_DOI.sub(" ", _URL.sub(" ", text)))
    author = re.match(rf"\s*(?:\W+\s*)?({_NAME}(?:[ -](?:{_NAME}|van|von|de|der|den|la|le)){{0,5}}?)"
                      r"(?=,|\s+[A-Z]{1,3}\b|\s+\(|\.\s|\s+et al)", text)
    return replace(reference,
                   doi=doi.group(1).rstrip(".,;)]") if doi else None,
                   pmid=pmid.group(1) if pmid else None,
                   year=int(year.group(1)) if year else None,
                   first_author=author.group(1) if author else None)


# --- inline citations -----------------------------------------------------------------------


def _expand_numbers(spec: str) -> tuple[str, ...]:
    """"1,3-5" -> ("1", "3", "4", "5"); a range longer than 50 is kept as its two ends."""
    found: list[str] = []
    for part in re.split(r"\s*[,;]\s*", spec.strip()):
        bounds = re.split(r"\s*[\u2013\u2014\u207b-]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            low, high = int(bounds[0]), int(bounds[1])
            if low <= high and high - low <= 50:
                found.extend(str(n) for n in range(low, high + 1))
                continue
            found.extend(bounds)
        elif part.isdigit():
            found.append(str(int(part)))
    return tuple(dict.fromkeys(found))


def find_citations(sentence: str, known_authors: set[str], superscripts: bool) -> list[Citation]:
    """The citations in *sentence*, in order; *known_authors* are normalised family names that
    may cite bare ("Berman 2000"); *superscripts* reads superscript digits as citations."""
    found: list[Citation] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    def add(citation: Citation) -> None:
        found.append(citation)
        taken.append((citation.start, citation.end))

    for match in PLACEHOLDER.finditer(sentence):
        add(Citation("placeholder", (), match.start(), match.end(), match.group(0)))
    for match in _NUMERIC.finditer(sentence):
        if free(match.start(), match.end()):
            add(Citation("numeric", _expand_numbers(match.group(1)), match.start(), match.end(), match.group(0)))
    for match in _FOOTNOTE.finditer(sentence):
        add(Citation("footnote", (match.group(1),), match.start(), match.end(), match.group(0)))
    if superscripts:
        table = str.maketrans(_SUPERSCRIPTS + "\u207b", "0123456789-")
        for match in _SUPERSCRIPT.finditer(sentence):
            add(Citation("numeric", _expand_numbers(match.group(0).translate(table)), match.start(),
                         match.end(), match.group(0)))
    for match in _PAREN.finditer(sentence):
        if not free(match.start(), match.end()):
            continue
        keys: list[str] = []
        for part in re.split(r";", match.group(1)):
            part_match = _PART.match(part)
            if part_match and part_match.group("name").split()[0].casefold() not in _NOT_NAMES:
                keys.extend((part_match.group("name"), part_match.group("year")))
        if keys:
            add(Citation("author-year", tuple(keys), match.start(), match.end(), match.group(0)))
    for pattern in (_NARRATIVE, _BARE):
        for match in pattern.finditer(sentence):
            name = match.group("name")
            if not free(match.start(), match.end()) or name.casefold() in _NOT_NAMES:
                continue
            if pattern is _BARE and not match.group("rest") and normalise(name) not in known_authors:
                continue
            add(Citation("author-year", (name, match.group("year")), match.start(), match.end(),
                         match.group(0)))
    return sorted(found, key=lambda c: c.start)


def strip_citations(sentence: str, citations: Iterable[Citation]) -> str:
    """*sentence* without its citation markers, for matching ("... 72 hours [1]." -> "... 72 hours.")."""
    chars = list(sentence)
    for citation in citations:
        chars[citation.start:citation.end] = [" "] * (citation.end - citation.start)
    text = "".join(chars)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # Markdown links keep their words
    text = re.sub(r"[*_`]+", "", text)
    return " ".join(re.sub(r"\s+([.,;:!?])", r"\1", text).split())


# --- resolution ----------------------------------------------------------------------------


def resolved_source(source: Source, match: str, confidence: float) -> ResolvedSource:
    """*source* as a reference's resolution, with only its confirmed identifiers."""
    ids = confirmed_identifiers(source)
    return ResolvedSource(id=source.id, doi=ids.get("doi"), pmid=ids.get("pmid"), title=source.title,
                          year=source.year, citation=vancouver(source), match=match,
                          confidence=round(confidence, 2))


def _author_matches(known: _Known, name: str) -> bool:
    name = normalise(name)
    if not name:
        return False
    return (name == known.family or name in known.acronyms
            or (bool(known.family) and (known.family.endswith(" " + name) or name.endswith(known.family))))


def by_author_year(kb: OpenedBuild, name: str, year: int | None) -> Source | None:
    """The one source whose first author is *name* (or its acronym) and whose year is *year*."""
    if year is None:
        return None
    hits = [k.source for k in _known_sources(kb) if k.source.year == year and _author_matches(k, name)]
    return hits[0] if len(hits) == 1 else None


# A title alone, with no author or year to confirm it, resolves only when the entry's words
# (in any order: "FDA Approval Information for Spravato" against "FDA approval of Spravato
# (esketamine) nasal spray ...") match the title closely: at least three of them, three in four
# of the entry's content words, are the title's, and two of those are rare among the titles
# ("FDA", "Spravato"). An entry of common words ("Ketamine for treatment-resistant depression",
# "Adults with unipolar major depression") then resolves to nothing rather than to whichever
# title happens to hold them.
TITLE_ONLY = 85  # rapidfuzz token_set_ratio, 0..100
TITLE_ONLY_WORDS = 3
TITLE_ONLY_SHARE = 0.75
TITLE_ONLY_RARE = 2  # shared words found in at most three titles (see _by_title_only)
TITLE_ONLY_CONFIDENCE = 0.8  # a title-only match is less certain than one an author or year confirms
_TITLE_STOPWORDS = frozenset("""a an the and or of for in on at to with by from as its their is are
into via vs versus about""".split())
_ACCESSED = re.compile(r"\b(?:accessed|retrieved|cited|viewed|visited|last (?:updated|modified|reviewed)|"
                       r"updated)\b[^.;]{0,40}?\b(?:19|20)\d{2}\b", re.IGNORECASE)


def publication_year(text: str) -> int | None:
    """The year a reference was published, not the day a web page was read ("Accessed 2024").

    >>> publication_year("Spravato label. Accessed March 3, 2024."), publication_year("Smith (2019).")
    (None, 2019)
    """
    year = _YEAR.search(_ACCESSED.sub(" ", _DOI.sub(" ", _URL.sub(" ", text))))
    return int(year.group(1)) if year else None


def _title_words(text: str) -> set[tuple[str, ...]]:
    """The content words of an entry, a hyphenated compound as one word of its normalised parts
    ("treatment-resistant" -> ("treatment", "resistant")), so it is not counted twice."""
    words: set[tuple[str, ...]] = set()
    for token in re.split(r"[\s/]+", text):
        parts = tuple(w for w in normalise(token).split() if w not in _TITLE_STOPWORDS and not w.isdigit())
        if parts and sum(len(w) for w in parts) >= 2:
            words.add(parts)
    return words


def _by_title_only(reference: Reference, kb: OpenedBuild) -> tuple[float, _Known] | None:
    """The source whose title the entry names in other words, with its confidence, or None."""
    text = _ACCESSED.sub(" ", _URL.sub(" ", _DOI.sub(" ", reference.text)))
    words = _title_words(text)
    if len(words) <= TITLE_ONLY_WORDS:
        return None  # three words or fewer name a topic, not a document
    known = _known_sources(kb)
    frequency = _title_frequency(kb)
    # Rare: in at most three titles, and in at most one in ten (in a small knowledge base most
    # words are in few titles, which says nothing).
    rare = max(1, min(3, len(known) // 10))
    year = publication_year(reference.text)
    passed: list[tuple[float, _Known]] = []
    titles = [k.title for k in known]
    for _, score, index in process.extract(normalise(text), titles, scorer=fuzz.token_set_ratio, limit=10,
                                           score_cutoff=TITLE_ONLY, processor=None):
        candidate = known[index]
        if year is not None and candidate.source.year != year:
            continue  # the entry dates another document
        title = set(candidate.title.split())
        shared = [parts for parts in words if set(parts) <= title]
        rare_shared = sum(any(frequency[w] <= rare for w in parts) for parts in shared)
        if (len(shared) >= TITLE_ONLY_WORDS and len(shared) >= TITLE_ONLY_SHARE * len(words)
                and rare_shared >= TITLE_ONLY_RARE):
            passed.append((float(score), candidate))
    if not passed:
        return None
    passed.sort(key=lambda p: -p[0])
    score, best = passed[0]
    confidence = score / 100 * TITLE_ONLY_CONFIDENCE
    if len(passed) > 1 and passed[1][0] >= score - 2:
        confidence *= 0.9  # another title fits as well: the first is a guess between near-equals
    return confidence, best


def resolve(reference: Reference, kb: OpenedBuild) -> Reference:
    """*reference* with its knowledge-base source, or with the problem that prevents one."""
    text = reference.text
    placeholder = PLACEHOLDER.search(text)
    if placeholder:
        return replace(reference, problem="placeholder",
                       detail=f"'{placeholder.group(0)}' is a placeholder, not a reference: replace it "
                              "with the real source")
    for identifier, kind in ((reference.doi, "doi"), (f"pmid:{reference.pmid}" if reference.pmid else None, "pmid")):
        if identifier:
            source = kb.find_source(identifier)
            if source is not None:
                return replace(reference, resolved=resolved_source(source, kind, 1.0))
    entry = normalise(_URL.sub(" ", _DOI.sub(" ", text)))
    known = _known_sources(kb)
    best: tuple[float, _Known] | None = None
    # partial_ratio aligns the shorter text inside the longer: a title inside an entry, or an entry
    # that shortens a long title. Short strings align by chance, so both must be long enough.
    titles = [k.title if min(len(k.title), len(entry)) >= 25 else "" for k in known]
    # References often drop a long subtitle: the main title alone counts too, a little less.
    mains = [k.main_title if min(len(k.main_title), len(entry)) >= 25 else "" for k in known]
    candidates: dict[int, float] = {}
    for choices, weight in ((titles, 1.0), (mains, 0.95)):
        for _, score, index in process.extract(entry, choices, scorer=fuzz.partial_ratio, limit=5,
                                               score_cutoff=75, processor=None):
            candidates[index] = max(candidates.get(index, 0.0), score * weight)
    for index, score in candidates.items():
        candidate = known[index]
        author_ok = bool(reference.first_author) and _author_matches(candidate, reference.first_author or "")
        author_ok = author_ok or (bool(candidate.family) and candidate.family in entry[:120])
        year_ok = candidate.source.year is not None and str(candidate.source.year) in text
        # Unconfirmed by author or year, a near-exact match counts only when the whole (main) title
        # stands in the entry: an entry that is a fragment of a title ("Ketamine for
        # treatment-resistant depression") names a topic many titles share, and is left to the
        # stricter title-only rule (_by_title_only).
        whole = len(candidate.main_title or candidate.title) <= len(entry)
        if (score >= 97 and (whole or author_ok or year_ok)) or (score >= 88 and (author_ok or year_ok)) \
                or (score >= 75 and author_ok and year_ok):
            confidence = score / 100 * (1.0 if author_ok and year_ok else 0.9)
            if best is None or confidence > best[0]:
                best = (confidence, candidate)
    if best is None and reference.first_author:
        source = by_author_year(kb, reference.first_author, reference.year)
        if source is not None:
            return replace(reference, resolved=resolved_source(source, "author-year", 0.6))
    if best is None:
        # Nothing confirms a title: the stricter title-only rule decides (a regulatory document,
        # a web page).
        best = _by_title_only(reference, kb)
    if best is not None:
        source = best[1].source
        result = replace(reference, resolved=resolved_source(source, "title", best[0]))
        if reference.doi and source.doi and reference.doi.casefold() != source.doi.casefold():
            return replace(result, problem="doi_mismatch",
                           detail=f"The DOI {reference.doi} differs from the knowledge base's "
                                  f"{source.doi} for this title: check which is right")
        return result
    if not (reference.doi or reference.pmid or reference.year or _URL.search(text)) and len(text.split()) < 4:
        return replace(reference, problem="unreadable",
                       detail="This entry has no authors, year, title or identifier the checker can "
                              "read: write it as a full reference")
    missing = f"no source has its DOI {reference.doi}" if reference.doi else \
        "no source matches its title, first author and year"
    return replace(reference, problem="unresolved",
                   detail=f"Not in the knowledge base ({missing}), so the sentences citing it cannot be "
                          "checked against it")
