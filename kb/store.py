"""The record store of a build: every source, claim and vocabulary term, as JSON beside the index.

Engines rank; the store answers "what is source X" and "which claims has it" from memory, so
pages, facets and exports never depend on the engine's stored fields.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.models import Claim, Locator, Notice, Provenance, Source, Term
from kb.vocabulary import Vocabulary

STORE_FILE = "store.json"


def _provenance(text: str | None) -> Provenance | None:
    if not text:
        return None
    file, _, line = text.rpartition(":")
    if file and line.isdigit():
        return Provenance(file, int(line))
    return Provenance(text)


def source_from_dict(data: dict[str, Any]) -> Source:
    """Rebuild a Source from ``Source.to_dict()`` output."""
    values = dict(data)
    values["authors"] = tuple(values.get("authors", ()))
    values["keywords"] = tuple(values.get("keywords", ()))
    values["publication_types"] = tuple(values.get("publication_types", ()))
    values["abstract_sections"] = tuple((s["label"], s["text"]) for s in values.get("abstract_sections", ()))
    values["full_text"] = tuple((p["section"], p["page"], p["paragraph"], p["text"])
                                for p in values.get("full_text", ()))
    values["notices"] = tuple(Notice.from_dict(n) for n in values.get("notices", ()))
    values["tags"] = {kind: tuple(ids) for kind, ids in values.get("tags", {}).items()}
    values["provenance"] = tuple(p for p in map(_provenance, values.get("provenance", ())) if p)
    return Source(**values)


def claim_from_dict(data: dict[str, Any]) -> Claim:
    """Rebuild a Claim from ``Claim.to_dict()`` output."""
    locator = {k: v for k, v in data["locator"].items() if k != "text"}
    return Claim(
        id=data["id"], source_id=data["source_id"], text=data["text"], locator=Locator(**locator),
        stance=data.get("stance"), tags={k: tuple(v) for k, v in data.get("tags", {}).items()},
        confirmed=data.get("confirmed", True), provenance=_provenance(data.get("provenance")),
    )


def term_from_dict(data: dict[str, Any]) -> Term:
    values = dict(data)
    values["synonyms"] = tuple(values.get("synonyms", ()))
    values["parents"] = tuple(values.get("parents", ()))
    values["provenance"] = _provenance(values.get("provenance"))
    return Term(**values)


@dataclass(slots=True)
class Store:
    """Sources, claims and vocabulary of one build, with the look-ups pages need."""

    sources: list[Source]
    claims: list[Claim]
    vocabulary: Vocabulary
    source_by_id: dict[str, Source] = field(init=False)
    claim_by_id: dict[str, Claim] = field(init=False)
    claims_by_source: dict[str, list[Claim]] = field(init=False)
    source_by_doi: dict[str, Source] = field(init=False)
    source_by_pmid: dict[str, Source] = field(init=False)

    def __post_init__(self) -> None:
        self.source_by_id = {s.id: s for s in self.sources}
        self.claim_by_id = {c.id: c for c in self.claims}
        self.claims_by_source = {}
        for claim in self.claims:
            self.claims_by_source.setdefault(claim.source_id, []).append(claim)
        self.source_by_doi = {s.doi: s for s in self.sources if s.doi}
        self.source_by_pmid = {s.pmid: s for s in self.sources if s.pmid}

    def write(self, folder: Path) -> None:
        data = {
            "sources": [s.to_dict() for s in self.sources],
            "claims": [c.to_dict() for c in self.claims],
            "vocabulary": [t.to_dict() for t in self.vocabulary.terms.values()],
        }
        with (folder / STORE_FILE).open("w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def read(cls, folder: Path) -> Store:
        with (folder / STORE_FILE).open(encoding="utf-8") as handle:
            data = json.load(handle)
        return cls(
            sources=[source_from_dict(s) for s in data["sources"]],
            claims=[claim_from_dict(c) for c in data["claims"]],
            vocabulary=Vocabulary(term_from_dict(t) for t in data["vocabulary"]),
        )


def order_for_index(sources: Sequence[Source], claims: Sequence[Claim]) -> tuple[list[Source], list[Claim]]:
    """Strongest evidence first, then newest: engines rank equal scores in this order."""
    def rank(source: Source | None) -> tuple[int, int]:
        if source is None:
            return (99, 0)
        return (source.evidence_level or 9, -(source.year or 0))

    by_id = {s.id: s for s in sources}
    ordered_sources = sorted(sources, key=lambda s: (*rank(s), s.id))
    position = {s.id: n for n, s in enumerate(ordered_sources)}
    ordered_claims = sorted(claims, key=lambda c: (*rank(by_id.get(c.source_id)),
                                                   position.get(c.source_id, 0)))
    return ordered_sources, ordered_claims
