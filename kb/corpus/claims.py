"""Claims: the statements a source makes, quoted verbatim, located, tagged and given a stance.

Three kinds of text give claims: the curated items of a summary file (key results and claims, with
the stance and tag edits the curator wrote), the sentences of a source's abstract, and the
sentences of the full text read from a PDF (``Source.full_text``), located by page and paragraph.
"""

from __future__ import annotations

from collections.abc import Iterator

from kb.corpus.summaries import SummaryItem
from kb.ids import claim_id
from kb.models import TAG_KINDS, Claim, CorpusProblem, Locator, Provenance, Source
from kb.text import split_lines_then_sentences
from kb.vocabulary import Vocabulary

# Kinds a claim inherits from its source when its own text names no term of that kind:
# a trial's claims are about its condition and intervention even when a sentence omits them.
INHERITED_KINDS = ("condition", "mechanism", "intervention", "design")


def tag_claim(text: str, source: Source, vocab: Vocabulary,
              add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Tags for a claim: terms found in its text, inherited source tags, then the curator's edits."""
    found = vocab.match(text, for_tagging=True)
    tags: dict[str, set[str]] = {kind: set(found.get(kind, ())) for kind in TAG_KINDS}
    for kind in INHERITED_KINDS:
        if not tags[kind]:
            tags[kind] = set(source.tags.get(kind, ()))
    for term_id in add:
        term = vocab.get(term_id)
        if term:
            tags[term.kind].add(term_id)
    for term_id in remove:
        for ids in tags.values():
            ids.discard(term_id)
    return {kind: tuple(sorted(ids)) for kind, ids in tags.items() if ids}


def claims_from_items(source: Source, items: list[SummaryItem], vocab: Vocabulary,
                      origin: str) -> Iterator[Claim | CorpusProblem]:
    """Yield a claim per curated summary item (unknown tag edits are yielded as problems)."""
    for item in items:
        for term_id in (*item.add_tags, *item.remove_tags):
            if term_id not in vocab:
                yield CorpusProblem(origin, item.line, f"unknown vocabulary term {term_id!r} in "
                                    "tag edits; add it to vocabulary.toml or fix the id")
        yield Claim(
            id=claim_id(source.id, item.text),
            source_id=source.id,
            text=item.text,
            locator=Locator(section=item.section, index=item.index),
            stance=item.stance,  # type: ignore[arg-type]  # validated by the summary parser
            tags=tag_claim(item.text, source, vocab, item.add_tags, item.remove_tags),
            confirmed=item.confirmed,
            provenance=Provenance(origin, item.line),
        )


def claims_from_abstract(source: Source, vocab: Vocabulary) -> Iterator[Claim]:
    """Yield a claim per abstract sentence, located by label and sentence number."""
    sections = source.abstract_sections or ((("", source.abstract),) if source.abstract else ())
    number = 0
    seen: set[str] = set()
    for label, text in sections:
        for span in split_lines_then_sentences(text):
            number += 1
            cid = claim_id(source.id, span.text)
            if cid in seen:  # the same sentence twice in one abstract is one claim
                continue
            seen.add(cid)
            yield _sentence_claim(source, vocab, cid, span.text,
                                  Locator(section="abstract", index=number, label=label))


def claims_from_full_text(source: Source, vocab: Vocabulary) -> Iterator[Claim]:
    """Yield a claim per sentence of a PDF's full text, located by section, page and paragraph.

    The sentence number counts within its paragraph, so "results, page 3, paragraph 2,
    sentence 1" finds it in the PDF.
    """
    seen: set[str] = set()
    for section, page, paragraph, text in source.full_text:
        for number, span in enumerate(split_lines_then_sentences(text), start=1):
            cid = claim_id(source.id, span.text)
            if cid in seen:  # a sentence repeated (a conclusion restating a result) is one claim
                continue
            seen.add(cid)
            yield _sentence_claim(source, vocab, cid, span.text, Locator(
                section=section, index=number, paragraph=paragraph, page=page))


def _sentence_claim(source: Source, vocab: Vocabulary, cid: str, text: str, locator: Locator) -> Claim:
    """A sentence of the source's own text as a claim: no stance, tagged, from its record."""
    return Claim(id=cid, source_id=source.id, text=text, locator=locator, stance=None,
                 tags=tag_claim(text, source, vocab), confirmed=True,
                 provenance=source.provenance[0] if source.provenance else None)
