"""The controlled vocabulary: terms with synonyms and a hierarchy, matched in text and expanded.

A term's synonyms written in capitals ("SAD", "MDD") match only in capitals, so ordinary words
("sad") are not mistaken for abbreviations; every other label or synonym matches any case, as a
whole word, with hyphens, dashes and spaces treated alike.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path

from kb.models import TAG_KINDS, CorpusProblem, Provenance, Term

_SEPARATORS = r"[\s\-\u2010-\u2015/]+"


def _phrase_pattern(phrase: str) -> str:
    words = [re.escape(w) for w in re.split(_SEPARATORS, phrase.strip()) if w]
    return _SEPARATORS.join(words)


def _is_abbreviation(phrase: str) -> bool:
    letters = [c for c in phrase if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) >= max(2, len(letters) - 1)


class Vocabulary:
    """Controlled terms by id, with matching in text and expansion down the hierarchy."""

    def __init__(self, terms: Iterable[Term]) -> None:
        self.terms: dict[str, Term] = {term.id: term for term in terms}
        self._children: dict[str, list[str]] = {tid: [] for tid in self.terms}
        for term in self.terms.values():
            for parent in term.parents:
                if parent in self._children:
                    self._children[parent].append(term.id)

    # --- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path, origin: str | None = None) -> tuple[Vocabulary, list[CorpusProblem]]:
        """Read a vocabulary.toml; return it with the problems found (cycles, clashes, ...)."""
        origin = origin or path.name
        if not path.is_file():
            return cls([]), [CorpusProblem(origin, None, "no vocabulary file; create it (see corpus/README.md)", "warning")]
        return cls.parse(path.read_text(encoding="utf-8"), origin)

    @classmethod
    def parse(cls, text: str, origin: str) -> tuple[Vocabulary, list[CorpusProblem]]:
        """Parse vocabulary TOML text; *origin* names the file in problems."""
        problems: list[CorpusProblem] = []
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            where = re.search(r"line (\d+)", str(error))
            return cls([]), [CorpusProblem(origin, int(where.group(1)) if where else None,
                                           f"not valid TOML: {error}")]
        lines = _header_lines(text)
        terms: list[Term] = []
        for kind, table in data.items():
            if kind not in TAG_KINDS or not isinstance(table, dict):
                problems.append(CorpusProblem(origin, lines.get(kind), f"unknown section [{kind}]: "
                                              f"use one of {', '.join(TAG_KINDS)}"))
                continue
            for term_id, spec in table.items():
                line = lines.get(f"{kind}.{term_id}")
                if not isinstance(spec, dict) or not isinstance(spec.get("label"), str):
                    problems.append(CorpusProblem(origin, line, f"[{kind}.{term_id}] needs label = \"...\""))
                    continue
                level = spec.get("level")
                terms.append(Term(
                    id=term_id, kind=kind, label=spec["label"],
                    synonyms=tuple(str(s) for s in spec.get("synonyms", [])),
                    parents=tuple(str(p) for p in spec.get("parents", [])),
                    mesh=str(spec.get("mesh", "")),
                    level=int(level) if isinstance(level, int) else None,
                    tag=bool(spec.get("tag", True)),
                    provenance=Provenance(origin, line),
                ))
        vocab = cls(terms)
        problems.extend(vocab.validate(terms))
        return vocab, problems

    def validate(self, terms: list[Term]) -> list[CorpusProblem]:
        """Report duplicate ids, synonyms claimed twice, unknown parents and cycles."""
        problems: list[CorpusProblem] = []

        def report(term: Term, message: str) -> None:
            prov = term.provenance or Provenance("vocabulary.toml")
            problems.append(CorpusProblem(prov.file, prov.line, message))

        seen_ids: set[str] = set()
        for term in terms:
            if term.id in seen_ids:
                report(term, f"term id {term.id!r} is used by more than one kind; ids must be unique")
            seen_ids.add(term.id)
        owners: dict[str, str] = {}
        for term in terms:
            for phrase in {term.label, *term.synonyms}:
                key = _phrase_key(phrase)
                owner = owners.setdefault(key, term.id)
                if owner != term.id:
                    report(term, f"synonym {phrase!r} of {term.id!r} is already claimed by {owner!r}")
        for term in terms:
            for parent in term.parents:
                if parent not in self.terms:
                    report(term, f"{term.id!r} names unknown parent {parent!r}")
                elif self.terms[parent].kind != term.kind:
                    report(term, f"{term.id!r} ({term.kind}) has parent {parent!r} of another kind")
        for term in terms:
            if term.id in self._ancestors(term.id, stop_at=term.id):
                report(term, f"cycle in the hierarchy: {term.id!r} is its own ancestor")
        return problems

    # --- queries -------------------------------------------------------------------------

    def __contains__(self, term_id: object) -> bool:
        return term_id in self.terms

    def __len__(self) -> int:
        return len(self.terms)

    def get(self, term_id: str) -> Term | None:
        return self.terms.get(term_id)

    def of_kind(self, kind: str) -> list[Term]:
        """The terms of one kind, in file order."""
        return [t for t in self.terms.values() if t.kind == kind]

    def label(self, term_id: str) -> str:
        term = self.terms.get(term_id)
        return term.label if term else term_id

    def descendants(self, term_id: str) -> set[str]:
        """The term and every term below it in the hierarchy."""
        found, stack = {term_id}, [term_id]
        while stack:
            for child in self._children.get(stack.pop(), []):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    def ancestors(self, term_id: str) -> set[str]:
        """Every term above *term_id* (not the term itself)."""
        return self._ancestors(term_id, stop_at=None)

    def _ancestors(self, term_id: str, stop_at: str | None) -> set[str]:
        found: set[str] = set()
        stack = list(self.terms[term_id].parents) if term_id in self.terms else []
        while stack:
            parent = stack.pop()
            if parent in found or parent not in self.terms:
                continue
            found.add(parent)
            if parent == stop_at:
                continue
            stack.extend(self.terms[parent].parents)
        return found

    def resolve(self, text: str, kind: str | None = None) -> Term | None:
        """Find the term whose id, label or synonym is *text* (any case), optionally of one kind."""
        if text in self.terms and (kind is None or self.terms[text].kind == kind):
            return self.terms[text]
        key = _phrase_key(text)
        term_id = self._phrase_index.get(key)
        term = self.terms.get(term_id) if term_id else None
        if term and (kind is None or term.kind == kind):
            return term
        return None

    @cached_property
    def _phrase_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for term in self.terms.values():
            for phrase in (term.id, term.label, *term.synonyms):
                index.setdefault(_phrase_key(phrase), term.id)
        return index

    @cached_property
    def _matchers(self) -> list[tuple[Term, re.Pattern[str] | None, re.Pattern[str] | None]]:
        result = []
        for term in self.terms.values():
            phrases = [term.label, *term.synonyms]
            exact = [_phrase_pattern(p) for p in phrases if _is_abbreviation(p)]
            folded = [_phrase_pattern(p) for p in phrases if not _is_abbreviation(p)]
            result.append((
                term,
                re.compile(rf"(?<![\w-])(?:{'|'.join(exact)})(?![\w-])") if exact else None,
                re.compile(rf"(?<![\w-])(?:{'|'.join(folded)})(?![\w-])", re.IGNORECASE) if folded else None,
            ))
        return result

    def find(self, text: str, kinds: Iterable[str] = TAG_KINDS) -> Iterator[tuple[Term, int, int]]:
        """Yield (term, start, end) for every term mention in *text*."""
        wanted = set(kinds)
        for term, exact, folded in self._matchers:
            if term.kind not in wanted:
                continue
            for pattern in (exact, folded):
                if pattern is not None:
                    for match in pattern.finditer(text):
                        yield term, match.start(), match.end()

    def match(self, text: str, kinds: Iterable[str] = TAG_KINDS, *,
              for_tagging: bool = False) -> dict[str, tuple[str, ...]]:
        """Return the ids of the terms *text* mentions, by kind; the most specific terms only.

        With *for_tagging*, terms marked ``tag = false`` are left out.
        """
        found: dict[str, set[str]] = {}
        for term, _, _ in self.find(text, kinds):
            if for_tagging and not term.tag:
                continue
            found.setdefault(term.kind, set()).add(term.id)
        result: dict[str, tuple[str, ...]] = {}
        for kind, ids in found.items():
            # "treatment-resistant depression" also mentions "depression": keep the specific one.
            implied = set().union(*(self.ancestors(i) for i in ids)) if ids else set()
            result[kind] = tuple(sorted(ids - implied))
        return result

    def expand(self, term_ids: Iterable[str]) -> set[str]:
        """The terms and all their descendants: what a filter on them should include."""
        expanded: set[str] = set()
        for term_id in term_ids:
            expanded |= self.descendants(term_id)
        return expanded

    def phrases(self, term_id: str) -> list[str]:
        """The label and synonyms of a term, for query expansion."""
        term = self.terms.get(term_id)
        return [term.label, *term.synonyms] if term else []


def _phrase_key(phrase: str) -> str:
    return " ".join(re.split(_SEPARATORS, phrase.strip().casefold()))


def _header_lines(text: str) -> dict[str, int]:
    """Map "kind.id" (and "kind") to the line of its TOML table header, for problem reports."""
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r"\s*\[\s*([A-Za-z0-9_-]+)(?:\.\"?([^\]\"]+)\"?)?\s*\]", line)
        if match:
            kind, term_id = match.group(1), match.group(2)
            lines.setdefault(kind, number)
            if term_id:
                lines[f"{kind}.{term_id.strip()}"] = number
    return lines
