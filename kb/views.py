"""The views of a build: one data function per view, used by the JSON API, the pages and the CLI.

Each takes the opened build and returns plain data (dicts, lists, records); rendering it as JSON
or HTML is the adapters' job. Views that read every claim (counts, the evidence map) are computed
once per build (``OpenedBuild.derived``): a build never changes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kb.citations import apa, confirmed_identifiers, links, source_card, unconfirmed_fields, vancouver
from kb.errors import BadQuery, NotFound
from kb.grammar import ParsedQuery
from kb.ids import is_claim_id, is_source_id, normalize_doi
from kb.models import TAG_KINDS, Claim, Source
from kb.opened_build import OpenedBuild
from kb.query import EngineQuery
from kb.store import claim_facts
from kb.vocabulary import Vocabulary

# Tag kinds that say what a claim is about; "design" says how it was studied (related_claims).
SUBJECT_KINDS: tuple[str, ...] = ("condition", "mechanism", "intervention", "outcome")


def _tag_counts(build: OpenedBuild) -> tuple[dict[str, Counter[str]], int, Counter[str]]:
    """(claims per term of each kind, claims tagged with a condition or mechanism, stances)."""
    def count() -> tuple[dict[str, Counter[str]], int, Counter[str]]:
        per_kind: dict[str, Counter[str]] = {kind: Counter() for kind in TAG_KINDS}
        tagged = 0
        stances: Counter[str] = Counter()
        for _, stance, tags in claim_facts(build.store.claims):
            for kind, ids in tags.items():
                per_kind.setdefault(kind, Counter()).update(ids)
            if tags.get("condition") or tags.get("mechanism"):
                tagged += 1
            stances[stance or "none"] += 1
        return per_kind, tagged, stances

    return build.derived("view: tag counts", count)


def stats(build: OpenedBuild) -> dict[str, Any]:
    """Counts of sources and claims, claims per term of each kind, and tagging coverage."""
    per_kind, tagged, stances = _tag_counts(build)
    total = len(build.store.claims)
    vocab = build.store.vocabulary
    return {
        "sources": len(build.store.sources),
        "claims": total,
        "claims_tagged_condition_or_mechanism": tagged,
        "tagged_share": round(tagged / total, 4) if total else 0.0,
        "claims_by_stance": dict(sorted(stances.items())),
        **{f"claims_per_{kind}": {term: {"label": vocab.label(term), "claims": count}
                                  for term, count in per_kind[kind].most_common()}
           for kind in ("condition", "mechanism", "intervention", "design", "outcome")},
    }


def vocabulary_terms(build: OpenedBuild, kind: str | None = None) -> list[dict[str, Any]]:
    """Every vocabulary term with the number of claims tagged with it or a descendant."""
    if kind is not None and kind not in TAG_KINDS:
        raise BadQuery(f"Unknown kind {kind!r}: use one of {', '.join(TAG_KINDS)}")
    vocab = build.store.vocabulary
    direct: Counter[str] = Counter()
    for counts in _tag_counts(build)[0].values():
        direct.update(counts)
    result = []
    for term in vocab.terms.values():
        if kind and term.kind != kind:
            continue
        data = term.to_dict()
        data["claims"] = direct.get(term.id, 0)
        data["claims_including_narrower"] = sum(direct.get(t, 0) for t in vocab.descendants(term.id))
        result.append(data)
    return result


def _map_cells(build: OpenedBuild, rows: str, columns: str) -> dict[tuple[str, str], dict[str, Any]]:
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for source_id, _, tags in claim_facts(build.store.claims):
        source = build.store.source_by_id[source_id]
        for row in tags.get(rows, ()):
            for column in tags.get(columns, ()):
                cell = cells.setdefault((row, column), {"claims": 0, "best_level": None})
                cell["claims"] += 1
                level = source.evidence_level
                if level is not None and (cell["best_level"] is None or level < cell["best_level"]):
                    cell["best_level"] = level
    return cells


def evidence_map(build: OpenedBuild, rows: str = "condition", columns: str = "mechanism") -> dict[str, Any]:
    """Claim counts for every (row term, column term) pair, with the strongest evidence level."""
    for kind in (rows, columns):
        if kind not in TAG_KINDS:
            raise BadQuery(f"Unknown kind {kind!r} for the evidence map: use one of {', '.join(TAG_KINDS)}")
    if rows == columns:
        raise BadQuery("Choose two different kinds for the evidence map's rows and columns")
    cells: dict[tuple[str, str], dict[str, Any]] = build.derived(
        f"view: evidence map {rows} x {columns}", lambda: _map_cells(build, rows, columns))
    vocab = build.store.vocabulary
    row_ids = sorted({r for r, _ in cells}, key=lambda t: -sum(c["claims"] for (r, _), c in cells.items() if r == t))
    col_ids = sorted({c for _, c in cells}, key=lambda t: -sum(v["claims"] for (_, c), v in cells.items() if c == t))
    return {
        "rows": [{"id": r, "label": vocab.label(r), "kind": rows} for r in row_ids],
        "columns": [{"id": c, "label": vocab.label(c), "kind": columns} for c in col_ids],
        "cells": [{"row": r, "column": c, **cells[(r, c)]} for r in row_ids for c in col_ids
                  if (r, c) in cells],
    }


# --- records ----------------------------------------------------------------------

def require_source(build: OpenedBuild, source_id: str) -> Source:
    """The source with this id (or a DOI/PMID as "doi:..."/"pmid:..."); NotFound otherwise."""
    found = build.find_source(source_id)
    if found is None:
        raise NotFound(f"No source {source_id!r}: search for it, or list sources with: kb stats")
    return found


def claims_for(build: OpenedBuild, source_id: str) -> list[Claim]:
    return list(build.store.claims_by_source.get(source_id, []))


def require_claim(build: OpenedBuild, claim_id: str) -> Claim:
    if not is_claim_id(claim_id) or claim_id not in build.store.claim_by_id:
        raise NotFound(f"No claim {claim_id!r}: claim ids look like <source id>-<10 hex digits>")
    return build.store.claim_by_id[claim_id]


def design_label(build: OpenedBuild, source: Source) -> str:
    return build.store.vocabulary.label(source.design) if source.design else ""


def card(build: OpenedBuild, source: Source) -> dict[str, Any]:
    return source_card(source, design_label(build, source))


def source_view(build: OpenedBuild, source_id: str) -> dict[str, Any]:
    """A source with its citations, verification, and its claims grouped by stance."""
    if not is_source_id(source_id) and not normalize_doi(source_id):
        raise NotFound(f"No source {source_id!r}: source ids are citation keys such as "
                       "berman2000antidepressant")
    source = require_source(build, source_id)
    claims = claims_for(build, source.id)
    data = source.to_dict()
    data.update({
        "citation": {"vancouver": vancouver(source), "apa": apa(source)},
        "identifiers": confirmed_identifiers(source),
        "unconfirmed_fields": unconfirmed_fields(source),
        "links": links(source),
        "design_label": design_label(build, source) or None,
        "retracted": source.retracted,
        "claims": [claim_dict(build, c) for c in claims],
    })
    if not source.is_confirmed("doi"):
        data["doi"] = None
    if not source.is_confirmed("pmid"):
        data["pmid"] = None
    data["unconfirmed_identifiers"] = {n: getattr(source, n) for n in ("doi", "pmid")
                                       if getattr(source, n) and not source.is_confirmed(n)}
    return data


def claim_dict(build: OpenedBuild, claim: Claim) -> dict[str, Any]:
    data = claim.to_dict()
    vocab = build.store.vocabulary
    data["tag_labels"] = {kind: [{"id": t, "label": vocab.label(t), "mesh": _mesh(vocab, t)} for t in ids]
                          for kind, ids in claim.tags.items()}
    return data


def claim_view(build: OpenedBuild, claim_id: str, related: int = 10) -> dict[str, Any]:
    """A claim, its source, and claims of other sources that share its terms."""
    claim = require_claim(build, claim_id)
    source = build.store.source_by_id[claim.source_id]
    data = claim_dict(build, claim)
    data["source"] = card(build, source)
    data["related"] = [
        {**claim_dict(build, other), "source": card(build, build.store.source_by_id[other.source_id]),
         "shared_terms": shared}
        for other, shared in related_claims(build, claim, related)
    ]
    return data


def related_claims(build: OpenedBuild, claim: Claim, limit: int = 10) -> list[tuple[Claim, list[str]]]:
    """Claims of other sources about the same subject: sharing a condition, mechanism,
    intervention or outcome tag, most shared tags first, then as the search engine ranks them
    on this claim's text and terms. The shared tags come with each (design tags never do).

    A study design ("randomized controlled trial") says how a claim was found, not what it is
    about: claims that shared only it were listed as related, so design never counts here.
    """
    mine = _subject_tags(claim)
    if not mine:
        return []
    request = EngineQuery(text=claim.text, parsed=ParsedQuery.of_words(claim.text),
                          limit=limit * 5, facets=False,
                          expansions=vocabulary_expansions(build.vocabulary, claim.text))
    result = build.engine.search_claims(request)
    found: list[tuple[int, int, Claim, list[str]]] = []
    for rank, hit in enumerate(result.hits):
        other = build.store.claim_by_id.get(hit.id)
        if other is None or other.source_id == claim.source_id:
            continue
        shared = sorted(mine & _subject_tags(other))
        if shared:
            found.append((-len(shared), rank, other, shared))
    found.sort(key=lambda item: (item[0], item[1]))
    return [(other, shared) for _, _, other, shared in found[:limit]]


# --- query expansion----------------------------------------------------------------

def vocabulary_expansions(vocab: Vocabulary, text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The vocabulary terms *text* names, each with its label and synonyms, to widen a search."""
    seen: dict[str, tuple[str, ...]] = {}
    for term, _, _ in vocab.find(text):
        if term.id not in seen:
            seen[term.id] = tuple(vocab.phrases(term.id))
    return tuple(seen.items())


def _subject_tags(claim: Claim) -> set[str]:
    return {t for kind in SUBJECT_KINDS for t in claim.tags.get(kind, ())}


def _mesh(vocab: Vocabulary, term_id: str) -> str:
    """A term's MeSH descriptor id for pages and the API; "" when it has none."""
    term = vocab.get(term_id)
    return term.mesh if term is not None else ""
