"""Article benchmark: real public web articles on ketamine and esketamine, labelled by hand.

Each article of ``--data`` (``<slug>.txt``, excerpts of public pages; see its README.md) is checked
with the public article checker against the bundled corpus, exactly as a writer's draft is. Every
sentence of the excerpts carries a hand label in ``labels.jsonl``: whether it is checkable, and
for checkable sentences the verdict the corpus allows (supported, partly_supported, contradicted,
unsupported) with the sources that back or contradict it. Labelled sentences are matched to the
checker's units by their place in the text, else by containment or word overlap, since the
checker's segmentation may differ slightly. A checkable sentence the checker skips as not
check-worthy counts as "unsupported" (it claims no support for it). Printed:

- checkable sentences, and how many were matched and how many the checker skipped;
- verdict accuracy on checkable sentences;
- "supported" precision: of the checkable sentences the checker calls supported, the share
  labelled supported;
- over-claim rate: of the sentences labelled unsupported or contradicted, the share the checker
  calls supported or partly supported;
- top-3 mapping: of the sentences labelled supported, the share where one of the labelled
  sources is the source of one of the checker's first 3 evidence items;
- contradiction recall; a 4x4 confusion table (rows: label, columns: checker);
- baselines in the same run: always "unsupported", and the checker's lexical rules without the
  trained verifier (``KB_VERIFIER=0``, skipped with ``--no-lexical``).

    python bench/article_verify.py
    python bench/article_verify.py --index-dir /tmp/kb-index --show-errors
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.check import check_article  # noqa: E402
from kb.check.result import VERDICTS, CheckResult, SentenceResult  # noqa: E402
from kb.config import Settings  # noqa: E402
from kb.knowledge_base import KnowledgeBase  # noqa: E402
from kb.server import ensure_index  # noqa: E402

SHORT = {"supported": "sup", "partly_supported": "part", "contradicted": "contra", "unsupported": "unsup"}
MIN_OVERLAP = 0.6  # share of a labelled sentence's words a checker unit must hold to match it
TOP = 3


@dataclasses.dataclass
class Outcome:
    """One labelled sentence and what the checker made of it."""

    label: dict[str, Any]
    unit: SentenceResult | None  # the checker's unit it was matched to; None when unmatched

    @property
    def checked(self) -> bool:
        return self.unit is not None and self.unit.checkworthy and self.unit.verdict is not None

    @property
    def verdict(self) -> str:
        """The checker's verdict; "unsupported" for a sentence it skipped or that went unmatched."""
        return self.unit.verdict if self.checked and self.unit is not None else "unsupported"

    @property
    def top_sources(self) -> list[str]:
        if not self.checked or self.unit is None:
            return []
        return [e.source.id for e in self.unit.evidence[:TOP]]


def read_labels(data: Path) -> dict[str, list[dict[str, Any]]]:
    by_article: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with (data / "labels.jsonl").open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("checkable") and row.get("label") not in VERDICTS:
                raise SystemExit(f"labels.jsonl:{number}: checkable sentence without a valid label")
            by_article[row["article"]].append(row)
    return dict(by_article)


_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                         "\u2014": "-", "\u00a0": " "})


def _norm(text: str) -> str:
    text = text.translate(_QUOTES).casefold()
    text = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", "", text)  # a list marker
    return re.sub(r"\s+", " ", text).strip()


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+(?:[.,][0-9]+)?", _norm(text)))


def match(sentence: str, article: str, result: CheckResult) -> SentenceResult | None:
    """The checker's unit that holds *sentence*: by offsets, else containment, else word overlap."""
    units = result.sentences
    if result.text == article:
        start = article.find(sentence)
        if start >= 0:
            end = start + len(sentence)
            best = max(units, key=lambda u: min(end, u.end) - max(start, u.start), default=None)
            if best is not None and min(end, best.end) - max(start, best.start) > 0:
                return best
    wanted = _norm(sentence)
    contained = [u for u in units if u.text.strip() and (wanted in _norm(u.text) or _norm(u.text) in wanted)]
    if contained:
        return max(contained, key=lambda u: min(len(_norm(u.text)), len(wanted)))
    words = _words(sentence)
    if not words:
        return None
    scored = [(len(words & _words(u.text)) / len(words), u) for u in units]
    share, best = max(scored, key=lambda pair: pair[0], default=(0.0, None))
    return best if share >= MIN_OVERLAP else None


def run(kb: KnowledgeBase, data: Path, labels: dict[str, list[dict[str, Any]]]) -> tuple[list[Outcome], float]:
    outcomes: list[Outcome] = []
    seconds = 0.0
    for slug, rows in labels.items():
        article = (data / f"{slug}.txt").read_text(encoding="utf-8")
        started = time.perf_counter()
        result = check_article(article, kb.build)
        seconds += time.perf_counter() - started
        outcomes.extend(Outcome(row, match(row["sentence"], article, result)) for row in rows)
    return outcomes, seconds


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}% ({part}/{whole})" if whole else "  n/a (0/0)"


def metrics(outcomes: list[Outcome]) -> dict[str, Any]:
    checkable = [o for o in outcomes if o.label["checkable"]]
    said_supported = [o for o in checkable if o.verdict == "supported"]
    weak = [o for o in checkable if o.label["label"] in {"unsupported", "contradicted"}]
    gold_supported = [o for o in checkable if o.label["label"] == "supported"]
    gold_contra = [o for o in checkable if o.label["label"] == "contradicted"]
    return {
        "checkable": checkable,
        "correct": sum(o.verdict == o.label["label"] for o in checkable),
        "precision": (sum(o.label["label"] == "supported" for o in said_supported), len(said_supported)),
        "overclaim": (sum(o.verdict in {"supported", "partly_supported"} for o in weak), len(weak)),
        "top": (sum(bool(set(o.label["sources"]) & set(o.top_sources)) for o in gold_supported),
                len(gold_supported)),
        "contra": (sum(o.verdict == "contradicted" for o in gold_contra), len(gold_contra)),
        "confusion": Counter((o.label["label"], o.verdict) for o in checkable),
    }


def report(title: str, outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    m = metrics(outcomes)
    checkable = m["checkable"]
    unmatched = sum(o.unit is None for o in outcomes)
    skipped = sum(not o.checked for o in checkable)
    off_checked = [o for o in outcomes if not o.label["checkable"] and o.checked]
    print(f"\n== {title} ({seconds:.1f} s for the articles)")
    print(f"labelled sentences: {len(outcomes)}; matched to a checker unit: {len(outcomes) - unmatched}")
    print(f"checkable sentences: {len(checkable)}; the checker skipped {skipped} of them as not "
          "check-worthy (counted as unsupported)")
    print(f"non-checkable sentences the checker gave a verdict: {len(off_checked)} "
          f"({sum(o.verdict == 'supported' for o in off_checked)} called supported)")
    print(f"verdict accuracy (checkable):        {pct(m['correct'], len(checkable))}")
    print(f"'supported' precision:               {pct(*m['precision'])}")
    print(f"over-claim rate (unsup./contra. called sup./partly): {pct(*m['overclaim'])}")
    print(f"top-{TOP} mapping (labelled supported):  {pct(*m['top'])}")
    print(f"contradiction recall:                {pct(*m['contra'])}")
    print("confusion (rows: label, columns: checker verdict)")
    print("            " + "".join(f"{SHORT[v]:>8}" for v in VERDICTS) + "   total")
    for gold in VERDICTS:
        row = [m["confusion"][(gold, v)] for v in VERDICTS]
        print(f"  {SHORT[gold]:<10}" + "".join(f"{n:>8}" for n in row) + f"{sum(row):>8}")
    return m


def show_errors(outcomes: list[Outcome]) -> None:
    print("\n== disagreements (label -> checker)")
    for o in outcomes:
        if not o.label["checkable"] or o.verdict == o.label["label"]:
            continue
        state = "" if o.checked else " [skipped]" if o.unit is not None else " [unmatched]"
        print(f"- {o.label['article']}: {o.label['label']} -> {o.verdict}{state}; top sources "
              f"{', '.join(o.top_sources) or '-'}\n    {o.label['sentence'][:160]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-dir", type=Path, default=ROOT / "corpus")
    parser.add_argument("--index-dir", type=Path, default=None,
                        help="an index folder to build into or reuse (default: a temporary one)")
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data" / "articles",
                        help="folder with the article excerpts (<slug>.txt) and labels.jsonl")
    parser.add_argument("--no-lexical", action="store_true",
                        help="skip the lexical-rules baseline (the checker without the verifier)")
    parser.add_argument("--show-errors", action="store_true", help="list every disagreement")
    args = parser.parse_args()

    labels = read_labels(args.data)
    rows = [row for article in labels.values() for row in article]
    counts = Counter(row.get("label") or "not checkable" for row in rows)
    print(f"articles: {len(labels)}; labelled sentences: {len(rows)}; labels: "
          + ", ".join(f"{counts[k]} {k}" for k in (*VERDICTS, "not checkable")))

    with tempfile.TemporaryDirectory(prefix="kb-article-bench-") as scratch:
        index_dir = args.index_dir or Path(scratch) / "index"
        settings = Settings(corpus_dir=args.corpus_dir, index_dir=index_dir)
        ensure_index(settings)  # builds when missing or stale, else reuses --index-dir
        kb = KnowledgeBase.open(settings)
        try:
            outcomes, seconds = run(kb, args.data, labels)
        finally:
            kb.close()
        m = report("checker (trained verifier where its model is installed)", outcomes, seconds)
        if args.show_errors:
            show_errors(outcomes)

        checkable = m["checkable"]
        always = sum(o.label["label"] == "unsupported" for o in checkable)
        print(f"\n== baseline, always 'unsupported': accuracy {pct(always, len(checkable))}; "
              f"over-claim rate 0.0%; 'supported' precision n/a")
        if not args.no_lexical:
            lexical = KnowledgeBase.open(dataclasses.replace(settings, verifier=False))
            try:
                base, base_seconds = run(lexical, args.data, labels)
            finally:
                lexical.close()
            report("baseline, lexical rules (KB_VERIFIER=0)", base, base_seconds)


if __name__ == "__main__":
    main()
