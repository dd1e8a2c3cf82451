"""One source per work: find the record a new one duplicates, and merge the two field by field.

Two records are the same work when they share a DOI, else a PMID, else an id and title, else a
near-identical title with the same first author and a year at most one apart (an article's
online and print years often differ). Records whose DOIs (or PMIDs) differ are never the same
work, however alike their titles: errata and preprints share titles with their articles.

Merging fills the fields the first record lacks. Where both hold a value and they disagree, the
value with the stronger verification mark wins (a tie keeps the first) and the disagreement is
reported as a conflict, so a curator can look.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rapidfuzz import fuzz

from kb.ingest.common import ascii_fold
from kb.models import VERIFICATION_MARKS, Source, merge_notices

TITLE_THRESHOLD = 93.0  # token_sort_ratio (0-100) above which two titles are one title
_RANK = {mark: len(VERIFICATION_MARKS) - i for i, mark in enumerate(VERIFICATION_MARKS)}
_RANK["unverified"] = 0
# Fields compared for conflicts; the rest are filled when empty and otherwise left alone.
_COMPARED = ("title", "authors", "year", "container", "volume", "issue", "pages", "doi", "pmid",
             "pmcid")
_FILLED = ("type", "url", "abstract", "keywords", "publication_types", "full_text")


@dataclass(frozen=True, slots=True)
class Match:
    """An existing source a new record duplicates, and the rule that matched."""

    id: str
    reason: str  # "doi", "pmid", "id" or "title"


@dataclass(slots=True)
class MergeOutcome:
    """The merged source, the fields the new record changed, and the conflicts found."""

    source: Source
    changed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def family_name(author: str) -> str:
    """The folded family name of an author written "Family, Given" (or "Given Family")."""
    name = author.split(",")[0] if "," in author else (author.split() or [""])[-1]
    return ascii_fold(name)


def same_title(a: str, b: str) -> bool:
    """True when two titles differ only in case, punctuation, accents or a few characters."""
    fa, fb = ascii_fold(a), ascii_fold(b)
    return bool(fa and fb) and (fa == fb or fuzz.token_sort_ratio(fa, fb) >= TITLE_THRESHOLD)


class SourceIndex:
    """The sources known so far, looked up by DOI, PMID, id, and first author for fuzzy titles."""

    def __init__(self, sources: list[Source] | None = None) -> None:
        self.by_id: dict[str, Source] = {}
        self._doi: dict[str, str] = {}
        self._pmid: dict[str, str] = {}
        self._author: dict[str, list[str]] = {}
        for source in sources or []:
            self.put(source)

    def __contains__(self, source_id: object) -> bool:
        return source_id in self.by_id

    def put(self, source: Source) -> None:
        """Add *source*, or replace the source with its id (after a merge)."""
        old = self.by_id.get(source.id)
        self.by_id[source.id] = source
        if old is not None and old.authors and old.authors != source.authors:
            ids = self._author.get(family_name(old.authors[0]), [])
            if source.id in ids:
                ids.remove(source.id)
        if source.doi:
            self._doi.setdefault(source.doi, source.id)
        if source.pmid:
            self._pmid.setdefault(source.pmid, source.id)
        if source.authors:
            ids = self._author.setdefault(family_name(source.authors[0]), [])
            if source.id not in ids:
                ids.append(source.id)

    def find(self, source: Source) -> Match | None:
        """The known source *source* duplicates, or None when it is a new work."""
        if source.doi and source.doi in self._doi:
            return Match(self._doi[source.doi], "doi")
        if source.pmid and source.pmid in self._pmid:
            known = self.by_id[self._pmid[source.pmid]]
            if not (known.doi and source.doi and known.doi != source.doi):
                return Match(known.id, "pmid")
        same_id = self.by_id.get(source.id)
        if same_id is not None and _compatible(same_id, source) and same_title(same_id.title, source.title):
            return Match(same_id.id, "id")
        if not (source.authors and source.year):
            return None  # no author and year to pin a fuzzy title match on
        for candidate_id in self._author.get(family_name(source.authors[0]), []):
            known = self.by_id[candidate_id]
            if known.year and abs(known.year - source.year) <= 1 and _compatible(known, source) \
                    and same_title(known.title, source.title):
                return Match(known.id, "title")
        return None


def merge_sources(base: Source, new: Source, base_origin: str = "", new_origin: str = ""
                  ) -> MergeOutcome:
    """Merge *new* into *base* (keeping base's id and provenance first); report what changed."""
    changes: dict[str, object] = {}
    outcome = MergeOutcome(base)
    verification = dict(base.verification)
    notes = dict(base.verification_notes)
    for name in _COMPARED:
        mine, theirs = getattr(base, name), getattr(new, name)
        mark_mine = base.verification.get(name, "unverified")
        mark_theirs = new.verification.get(name, "unverified")
        take_mark = False
        if not theirs:
            continue
        if not mine:
            changes[name] = theirs
            take_mark = True
        elif _differs(name, mine, theirs):
            keep_new = _RANK.get(mark_theirs, 0) > _RANK.get(mark_mine, 0)
            kept = theirs if keep_new else mine
            outcome.conflicts.append(
                f"{base.id}: {name} {_show(mine)} ({base_origin or 'corpus'}, {mark_mine}) vs "
                f"{_show(theirs)} ({new_origin or 'import'}, {mark_theirs}); kept {_show(kept)}")
            if keep_new:
                changes[name] = theirs
                take_mark = True
        elif _RANK.get(mark_theirs, 0) > _RANK.get(mark_mine, 0):
            take_mark = True  # the same value, now confirmed by a stronger source
        if take_mark and name in new.verification:
            verification[name] = mark_theirs
            if name in new.verification_notes:
                notes[name] = new.verification_notes[name]
            if name not in changes:
                changes.setdefault("verification", True)
                outcome.changed.append(f"{name} mark")
    for name in _FILLED:
        if not getattr(base, name) and getattr(new, name) and not (name == "type" and base.type):
            changes[name] = getattr(new, name)
    if "abstract" in changes or (not base.abstract_sections and new.abstract_sections
                                 and ascii_fold(base.abstract) == ascii_fold(new.abstract)):
        changes["abstract_sections"] = new.abstract_sections
        changes.setdefault("abstract", new.abstract)
    if new.notices:
        notices = merge_notices(base.notices, new.notices)
        if notices != base.notices:  # a new retraction or correction is news a curator must see
            changes["notices"] = notices
    outcome.changed = [n for n in changes if n != "verification"] + outcome.changed
    # The earliest known entry date wins; not reported as a change (it is bookkeeping, and a
    # re-import must not read as new data).
    if new.added and (not base.added or new.added < base.added):
        changes["added"] = new.added
    changes["verification"] = verification
    changes["verification_notes"] = notes
    changes["provenance"] = (*base.provenance, *(p for p in new.provenance
                                                  if p not in base.provenance))
    outcome.source = replace(base, **changes)  # type: ignore[arg-type]
    return outcome


def _compatible(a: Source, b: Source) -> bool:
    """False when hard identifiers prove two records are different works."""
    return not ((a.doi and b.doi and a.doi != b.doi) or (a.pmid and b.pmid and a.pmid != b.pmid))


def _differs(name: str, mine: object, theirs: object) -> bool:
    if name == "title":
        return not same_title(str(mine), str(theirs))
    if name == "authors":
        assert isinstance(mine, tuple) and isinstance(theirs, tuple)
        # Author lists are often cut short ("et al."); only a different first author conflicts.
        return family_name(mine[0]) != family_name(theirs[0])
    if name == "container":
        # Full and abbreviated journal names ("Proc Natl Acad Sci U S A") are the same journal.
        a, b = ascii_fold(str(mine)), ascii_fold(str(theirs))
        return fuzz.token_set_ratio(a, b) < 60 and fuzz.partial_ratio(a, b) < 60
    if name in {"volume", "issue", "pages"}:
        return ascii_fold(str(mine)) != ascii_fold(str(theirs))
    return mine != theirs


def _show(value: object) -> str:
    if isinstance(value, tuple):
        value = value[0] + (" et al." if len(value) > 1 else "") if value else ""
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")
