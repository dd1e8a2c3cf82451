"""Completions for the search box: vocabulary terms and source titles that complete a prefix."""

from __future__ import annotations

import re
from typing import Any

from kb.citations import short_authors
from kb.errors import BadQuery
from kb.models import Source
from kb.opened_build import OpenedBuild
from kb.views import vocabulary_terms


def suggest(build: OpenedBuild, prefix: str, limit: int = 8) -> list[dict[str, Any]]:
    """Vocabulary terms and source titles that complete *prefix*, for the search box.

    Terms match when their label or a synonym starts with the prefix (or one of their words
    does); titles when every word of the prefix starts a word of the title. Terms that tag
    no claim are left out: suggesting them would lead to an empty page. Best first: prefix
    of the whole phrase, then of a word; then terms before titles; then by claim count.
    """
    if len(prefix) > build.settings.max_query_chars:
        raise BadQuery(f"The text is {len(prefix)} characters long; the limit is "
                       f"{build.settings.max_query_chars}")
    if not 1 <= limit <= 20:
        raise BadQuery("limit must be between 1 and 20")
    wanted = _suggest_key(prefix)
    if not wanted:
        return []
    words = wanted.split()
    found: list[tuple[tuple[float, int, str], dict[str, Any]]] = []
    for entry in _suggest_terms(build):
        best: tuple[int, str] | None = None
        for key, phrase in entry["phrases"]:
            rank = 0 if key.startswith(wanted) else 1 if f" {wanted}" in f" {key}" else None
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, phrase)
        if best is not None:
            found.append(((best[0], -entry["claims"], entry["label"].casefold()),
                          {"type": "term", "kind": entry["kind"], "id": entry["id"],
                           "label": entry["label"], "matched": best[1], "claims": entry["claims"]}))
    for key, source in _suggest_titles(build):
        title_words = key.split()
        if key.startswith(wanted) or all(any(t.startswith(w) for t in title_words) for w in words):
            found.append(((2, -(source.year or 0), key),
                          {"type": "source", "id": source.id, "label": source.title,
                           "year": source.year, "authors": short_authors(source)}))
    found.sort(key=lambda pair: pair[0])
    return [item for _, item in found[:limit]]


def _suggest_terms(build: OpenedBuild) -> list[dict[str, Any]]:
    """Terms with the claims they tag (including narrower terms), and their match keys."""
    return build.derived("suggest: terms", lambda: _term_entries(build))


def _term_entries(build: OpenedBuild) -> list[dict[str, Any]]:
    entries = []
    for term in vocabulary_terms(build):
        if not term["claims_including_narrower"]:
            continue
        phrases = [(_suggest_key(p), p) for p in (term["label"], *term["synonyms"])]
        entries.append({"id": term["id"], "kind": term["kind"], "label": term["label"],
                        "claims": term["claims_including_narrower"], "phrases": phrases})
    return entries


def _suggest_titles(build: OpenedBuild) -> list[tuple[str, Source]]:
    return build.derived("suggest: titles",
                         lambda: [(_suggest_key(source.title), source) for source in build.store.sources])


def _suggest_key(text: str) -> str:
    """Fold case and treat hyphens, dashes, slashes and punctuation as spaces, for prefix matching."""
    return " ".join(re.split(r"[\s\-\u2010-\u2015/,.;:()\[\]'\"]+", text.casefold())).strip()
