"""Read a corpus folder into sources, claims and a vocabulary, collecting every problem.

The loader never stops at the first bad record: a malformed entry is reported with its file and
line and skipped, and everything else loads. ``strict`` callers turn problems into a failure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from kb.corpus import records, summaries
from kb.corpus.claims import claims_from_abstract, claims_from_full_text, claims_from_items
from kb.corpus.records import recover as recover_records
from kb.ids import normalize_doi
from kb.ingest import ParseResult, bibtex
from kb.models import TAG_KINDS, Claim, CorpusProblem, Notice, Source, merge_notices
from kb.vocabulary import Vocabulary

VOCABULARY_FILE = "vocabulary.toml"
REFERENCES_DIR = "references"
SUMMARIES_DIR = "summaries"
RECORDS_DIR = "records"


@dataclass(slots=True)
class Corpus:
    """Everything a corpus folder holds, ready to index."""

    sources: dict[str, Source] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    vocabulary: Vocabulary = field(default_factory=lambda: Vocabulary([]))
    problems: list[CorpusProblem] = field(default_factory=list)

    @property
    def errors(self) -> list[CorpusProblem]:
        return [p for p in self.problems if p.severity == "error"]


def corpus_files(corpus_dir: Path) -> Iterator[Path]:
    """Every file the build reads, in a stable order."""
    vocabulary = corpus_dir / VOCABULARY_FILE
    if vocabulary.is_file():
        yield vocabulary
    yield from sorted((corpus_dir / REFERENCES_DIR).rglob("*.bib"))
    yield from sorted((corpus_dir / SUMMARIES_DIR).rglob("*.md"))
    folder = corpus_dir / RECORDS_DIR
    yield from sorted(p for p in folder.glob("*") if p.suffix in {".json", ".jsonl"})


def corpus_fingerprint(corpus_dir: Path) -> str:
    """SHA-256 over the relative path and bytes of every file the build reads."""
    digest = hashlib.sha256()
    for path in corpus_files(corpus_dir):
        digest.update(path.relative_to(corpus_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_corpus(corpus_dir: Path, progress: Callable[[str, int], None] | None = None) -> Corpus:
    """Parse, validate, merge and tag everything under *corpus_dir*."""
    corpus = Corpus()
    if not corpus_dir.is_dir():
        corpus.problems.append(CorpusProblem(str(corpus_dir), None, "corpus folder does not exist; "
                                             "pass --corpus-dir or create it (see corpus/README.md)",
                                             fatal=True))
        return corpus
    recover_records(corpus_dir)  # finish or undo an import a crash interrupted, before reading

    def rel(path: Path) -> str:
        return path.relative_to(corpus_dir).as_posix()

    vocab, problems = Vocabulary.load(corpus_dir / VOCABULARY_FILE, VOCABULARY_FILE)
    corpus.vocabulary = vocab
    # A vocabulary error is fatal: tagging every claim with a partly read vocabulary would
    # serve wrong tags everywhere, where a bad entry elsewhere only loses that entry.
    corpus.problems.extend(replace(p, fatal=True) if p.severity == "error" else p for p in problems)

    parsed = ParseResult()
    for path in sorted((corpus_dir / REFERENCES_DIR).rglob("*.bib")):
        parsed.extend(bibtex.parse(path.read_text(encoding="utf-8"), rel(path)))
    records_dir = corpus_dir / RECORDS_DIR
    if records_dir.is_dir():
        for path in sorted(p for p in records_dir.glob("*") if p.suffix in {".json", ".jsonl"}):
            parsed.extend(records.parse(path.read_text(encoding="utf-8"), rel(path)))
    corpus.problems.extend(parsed.problems)
    aliases: dict[str, str] = {}
    sources = _merge_duplicates(parsed.sources, corpus.problems, aliases)
    _copy_notices(sources)

    for path in sorted((corpus_dir / SUMMARIES_DIR).rglob("*.md")):
        summary, problems = summaries.parse(path.read_text(encoding="utf-8"), rel(path))
        corpus.problems.extend(problems)
        if summary is not None:
            _attach(summary, sources, vocab, corpus, aliases)

    for number, source in enumerate(sources.values(), start=1):
        # Full text first: an abstract sentence also read from the PDF keeps its page locator.
        corpus.claims.extend(claims_from_full_text(source, vocab))
        corpus.claims.extend(claims_from_abstract(source, vocab))
        if progress:
            progress("claims", number)
    corpus.sources = sources
    _drop_duplicate_claims(corpus)
    return corpus


def _merge_duplicates(found: list[Source], problems: list[CorpusProblem],
                      aliases: dict[str, str]) -> dict[str, Source]:
    """One source per key and per DOI: a second entry with a key is a fatal error (the first is
    kept); one with a known DOI is reported and merged into the first.

    *aliases* receives merged-away keys, so a summary written for either key still attaches.
    """
    by_id: dict[str, Source] = {}
    by_doi: dict[str, str] = {}
    for source in found:
        where = source.provenance[0] if source.provenance else None
        if source.id in by_id:
            first = by_id[source.id]
            if where is not None and where.file.startswith(f"{RECORDS_DIR}/"):
                # `kb import` / `kb add` enrich a curated source by writing a record with its key:
                # that is the intended way to add an abstract, not a clash.
                by_id[source.id] = _merge(first, source)
                continue
            # Fatal, not merged: files are read in name order, so a new references/a-extra.bib
            # reusing a key would otherwise quietly take the place of the verified entry.
            problems.append(CorpusProblem(
                where.file if where else "?", where.line if where else None,
                bibtex.duplicate_key_message(source.id, str(first.provenance[0]) if first.provenance
                                             else "?"), fatal=True))
            continue
        doi = normalize_doi(source.doi)
        if doi and doi in by_doi:
            first = by_id[by_doi[doi]]
            problems.append(CorpusProblem(where.file if where else "?", where.line if where else None,
                                          f"{source.id!r} has the same DOI {doi} as {first.id!r} "
                                          f"({first.provenance[0]}); merged into {first.id!r}", "warning"))
            by_id[first.id] = _merge(first, source)
            aliases[source.id] = first.id
            continue
        by_id[source.id] = source
        if doi:
            by_doi[doi] = source.id
    return by_id


def _copy_notices(sources: dict[str, Source]) -> None:
    """Give each work the notices other sources issue about it.

    A notice record (a Crossref retraction with ``update-to``, PubMed's "Retraction of" record)
    names the work it retracts; the work's own record may not say so yet (Crossref's
    ``updated-by`` is often missing), so the build adds an "in" notice to the work it names.
    """
    by_doi = {s.doi: s.id for s in sources.values() if s.doi}
    by_pmid = {s.pmid: s.id for s in sources.values() if s.pmid}
    found: dict[str, list[Notice]] = {}
    for source in sources.values():
        for notice in source.notices:
            if notice.role != "of":
                continue
            target = by_pmid.get(notice.pmid) if notice.pmid else None
            target = target or (by_doi.get(notice.doi) if notice.doi else None)
            if target is None or target == source.id:
                continue
            found.setdefault(target, []).append(Notice(
                kind=notice.kind, pmid=source.pmid, doi=source.doi, citation=_notice_citation(source),
                date=notice.date, provenance=f"{notice.provenance} (notice {source.id})"))
    for target, notices in found.items():
        work = sources[target]
        sources[target] = replace(work, notices=merge_notices(work.notices, tuple(notices)))


def _notice_citation(source: Source) -> str:
    """A short citation of a notice record: its title, venue and year (no CSL needed at load)."""
    venue = ". ".join(p for p in (source.container, str(source.year or "")) if p)
    return f"{source.title}. {venue}." if venue else source.title


def _merge(first: Source, other: Source) -> Source:
    """Fill *first*'s empty fields from *other*; keep both provenances."""
    changes: dict[str, object] = {}
    for f in fields(Source):
        if f.name in {"id", "provenance"}:
            continue
        mine, theirs = getattr(first, f.name), getattr(other, f.name)
        if not mine and theirs:
            changes[f.name] = theirs
    changes["verification"] = other.verification | first.verification
    changes["notices"] = merge_notices(first.notices, other.notices)  # both records' notices count
    changes["provenance"] = (*first.provenance, *other.provenance)
    return replace(first, **changes)  # type: ignore[arg-type]


def _attach(summary: summaries.Summary, sources: dict[str, Source], vocab: Vocabulary,
            corpus: Corpus, aliases: dict[str, str]) -> None:
    key = aliases.get(summary.source, summary.source)
    if key.lower().startswith("doi:") or key.startswith("10."):
        doi = normalize_doi(key)
        key = next((s.id for s in sources.values() if s.doi == doi), key)
    source = sources.get(key)
    if source is None:
        corpus.problems.append(CorpusProblem(summary.origin, summary.line,
                                             f"summary for unknown source {summary.source!r}: add its "
                                             "BibTeX entry under references/ or fix the key"))
        return
    if source.summary:
        corpus.problems.append(CorpusProblem(summary.origin, summary.line,
                                             f"a second summary for {key!r}; this one is ignored"))
        return
    tags: dict[str, list[str]] = {}
    for term_id in summary.tags:
        term = vocab.get(term_id)
        if term is None:
            corpus.problems.append(CorpusProblem(summary.origin, summary.line,
                                                 f"unknown vocabulary term {term_id!r} in tags"))
            continue
        tags.setdefault(term.kind, []).append(term_id)
    design = summary.facts.get("design", "")
    level = summary.evidence_level
    if design:
        term = vocab.get(design)
        if term is None or term.kind != "design":
            corpus.problems.append(CorpusProblem(summary.origin, summary.line,
                                                 f"design {design!r} is not a design term in "
                                                 "vocabulary.toml"))
            design = ""
        else:
            level = level if level is not None else term.level
            tags.setdefault("design", []).append(design)
    source = replace(
        source,
        summary="\n\n".join(summary.paragraphs),
        design=design,
        evidence_level=level,
        population=summary.facts.get("population", source.population),
        sample_size=summary.facts.get("sample_size", source.sample_size),
        intervention=summary.facts.get("intervention", source.intervention),
        comparator=summary.facts.get("comparator", source.comparator),
        primary_outcome=summary.facts.get("primary_outcome", source.primary_outcome),
        added=summary.facts.get("added", source.added),
        verification_notes=source.verification_notes | summary.verification_notes,
        tags={kind: tuple(dict.fromkeys(ids)) for kind, ids in tags.items() if kind in TAG_KINDS},
    )
    sources[key] = source
    for result in claims_from_items(source, summary.items, vocab, summary.origin):
        if isinstance(result, CorpusProblem):
            corpus.problems.append(result)
        else:
            corpus.claims.append(result)


def _drop_duplicate_claims(corpus: Corpus) -> None:
    """The same text twice in one source is one claim: keep the first, report the rest."""
    seen: dict[str, Claim] = {}
    kept: list[Claim] = []
    for claim in corpus.claims:
        if claim.id in seen:
            if claim.provenance and claim.locator.section != "abstract":
                corpus.problems.append(CorpusProblem(
                    claim.provenance.file, claim.provenance.line,
                    f"the same claim text appears twice for {claim.source_id!r}; kept the first",
                    "warning"))
            continue
        seen[claim.id] = claim
        kept.append(claim)
    corpus.claims = kept
