"""Article checker speed: how long a 3,000-word article takes to check, against plain segmentation.

Builds the corpus's index into a temporary folder (or reuses --index-dir when it holds a build),
then checks an article three times and prints the seconds of the first (cold caches) and the best
of the others, beside the time of plain sentence segmentation of the same text as a baseline.

    python bench/check_speed.py
    python bench/check_speed.py --corpus-dir corpus --article my-draft.md --words 3000

Without --article it generates an article of its own: paragraphs of claims, hedges, advice and
questions in rotation, with a numbered reference list, repeated to the word count. The sentences
are generic statements about any treatment and condition the corpus's vocabulary names, so the
text exercises the matcher without depending on one field.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.check.segment import segment  # noqa: E402
from kb.config import Settings  # noqa: E402
from kb.knowledge_base import KnowledgeBase  # noqa: E402
from kb.server import ensure_index  # noqa: E402

TEMPLATES = (
    "A single dose of {i} improved {c} within a day in a placebo-controlled trial [1].",
    "In patients with {c}, {i} reduced symptoms more than placebo, and the effect faded within a week.",
    "Researchers reported that {i} acts through {m}, which triggers rapid changes in synapses.",
    "Common side effects of {i} include dissociation, dizziness and raised blood pressure [2].",
    "Is {i} right for everyone with {c}?",
    "Talk to your doctor before starting {i}.",
    "The benefit of {i} for {c} lasts for many months after one treatment.",
    "About 60% of patients with {c} responded to {i} in an open-label study.",
    "Regulators approved {i} for adults with {c} in 2019, under a restricted programme.",
    "I felt like a different person after my first session!",
    "Long-term safety of repeated {i} remains poorly studied (Smith et al., 2015).",
    "Several meta-analyses found that {i} lowers {c} scores compared with control treatments.",
)
REFERENCES = """
## References

1. Example A, Sample B. A randomized trial of a rapid-acting treatment. J Test Med. 2010;1(2):3-9.
2. Another C, Person D. Side effects of a rapid-acting treatment: a systematic review. Rev Test. 2018;4:10-20.
"""


def generate(kb: KnowledgeBase, words: int) -> str:
    """An article of about *words* words built from the templates and the vocabulary's terms."""
    vocab = kb.vocabulary
    pick = {kind: [t.label for t in vocab.of_kind(kind)] or ["the treatment"]
            for kind in ("intervention", "condition", "mechanism")}
    paragraphs: list[str] = []
    count = 0
    number = 0
    while count < words:
        sentences = []
        for _ in range(6):  # every template in turn, with the terms rotating at their own pace
            template = TEMPLATES[number % len(TEMPLATES)]
            sentence = template.format(i=pick["intervention"][number % len(pick["intervention"])],
                                       c=pick["condition"][number // 2 % len(pick["condition"])],
                                       m=pick["mechanism"][number // 3 % len(pick["mechanism"])])
            sentences.append(sentence[0].upper() + sentence[1:])
            number += 1
        paragraph = " ".join(sentences)
        count += len(paragraph.split())
        paragraphs.append(paragraph if len(paragraphs) % 5 else f"## Part {len(paragraphs) // 5 + 1}\n\n{paragraph}")
    return "\n\n".join(paragraphs) + "\n" + REFERENCES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-dir", type=Path, default=ROOT / "corpus")
    parser.add_argument("--index-dir", type=Path, default=None,
                        help="an index folder to build into or reuse (default: a temporary one)")
    parser.add_argument("--article", type=Path, default=None, help="check this file instead")
    parser.add_argument("--words", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kb-check-bench-") as scratch:
        index_dir = args.index_dir or Path(scratch) / "index"
        settings = Settings(corpus_dir=args.corpus_dir, index_dir=index_dir)
        ensure_index(settings)  # builds when missing or stale, else reuses --index-dir
        kb = KnowledgeBase.open(settings)
        text = args.article.read_text(encoding="utf-8") if args.article else generate(kb, args.words)
        print(f"article: {len(text.split())} words, {len(text.encode('utf-8')):,} bytes; corpus: "
              f"{len(kb.store.sources)} sources, {len(kb.store.claims)} claims")

        started = time.perf_counter()
        units = segment(text)
        baseline = time.perf_counter() - started
        print(f"baseline, segmentation alone: {baseline:.3f} s ({len(units)} units)")

        timings = []
        result = None
        for _ in range(max(1, args.runs)):
            started = time.perf_counter()
            result = kb.check(text)
            timings.append(time.perf_counter() - started)
        assert result is not None
        counts = result.counts
        print(f"check, first run (cold caches): {timings[0]:.3f} s")
        if len(timings) > 1:
            print(f"check, best of the next {len(timings) - 1}: {min(timings[1:]):.3f} s "
                  f"({min(timings[1:]) / baseline:.1f}x segmentation)")
        print(f"{counts['checkworthy']} check-worthy of {counts['units']} units: "
              + ", ".join(f"{counts[v]} {v}" for v in ("supported", "partly_supported", "contradicted",
                                                        "unsupported")))
        kb.close()


if __name__ == "__main__":
    main()
