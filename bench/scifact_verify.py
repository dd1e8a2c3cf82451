"""Verification benchmark: SciFact claims through the public article checker, open setting.

Every claim is checked with ``check_article`` against a knowledge base of all 5,183 SciFact
abstracts (sources = abstracts, claims = their sentences), exactly as a writer's sentence is. The
checker's verdict and the evidence it shows become SciFact predictions: a verdict of supported
predicts SUPPORT for each abstract whose sentences the verifier reads as supporting (P(supports)
at the threshold), contradicted likewise, anything else predicts nothing (NEI). Printed, with the
lexical rules of the previous checker (``KB_VERIFIER=0``) as the baseline in the same run:

- SciFact's abstract-level label-only and label+rationale precision, recall and F1;
- the 3-way confusion of claim-level verdicts against gold labels; contradiction recall; the share
  of claims without evidence that are called supported or partly supported (over-claiming);
- seconds per claim (p50, p95).

Folds: SciFact train claims are split by ``id % 5``. The shipped verifier was trained on folds
2-4 (``bench/train_verifier.py``), so by default the thresholds are chosen on fold 1
(``--calibrate-fold``) and the figures are reported on fold 0 (``--report-folds``), held out from
both. ``--write-thresholds`` stores the chosen thresholds beside the model.

    python bench/scifact_verify.py --corpus scifact/corpus.jsonl --claims scifact/claims_train.jsonl \\
        --index-dir /tmp/scifact-kb [--semantic] [--write-thresholds]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scifact import PREFIX, prepare, read_claims

from kb.check import check_article
from kb.knowledge_base import KnowledgeBase
from kb.verify import MODEL_DIR, Thresholds, verifier_for

MAX_DOCS = 3  # abstracts predicted per claim at most, as SciFact's pipelines do


@dataclasses.dataclass
class Checked:
    claim: dict[str, Any]
    verdict: str | None
    evidence: list[dict[str, Any]]  # the checker's evidence items (with the verifier's reading)
    seconds: float


def gold(claim: dict[str, Any]) -> tuple[str, dict[str, tuple[str, list[set[int]]]]]:
    """The claim's label (SUPPORT, CONTRADICT or NEI) and, per abstract, its label and rationales."""
    by_doc: dict[str, tuple[str, list[set[int]]]] = {}
    for doc_id, blocks in (claim.get("evidence") or {}).items():
        by_doc[f"{PREFIX}{doc_id}"] = (blocks[0]["label"], [set(b["sentences"]) for b in blocks])
    labels = {label for label, _ in by_doc.values()}
    return (labels.pop() if len(labels) == 1 else "SUPPORT" if labels else "NEI"), by_doc


def sentence_number(item: dict[str, Any], abstracts: dict[str, list[str]]) -> int | None:
    """The 0-based SciFact sentence an evidence claim is, found by its text."""
    sentences = abstracts.get(item["source"]["id"], [])
    text = item["text"].strip()
    for number, sentence in enumerate(sentences):
        if text and (text in sentence or sentence.strip() in text):
            return number
    return None


def strengths(items: Sequence[dict[str, Any]], thresholds: Thresholds) -> tuple[float, float, float]:
    """Best P(supports), best P(contradicts) and the lexical coverage of the best-supporting claim,
    with a support that covers under ``coverage_partly`` read as none (as the checker does)."""
    best = max(items, key=lambda e: e["support"] or 0.0, default=None)
    c = max((e["contradict"] or 0.0 for e in items), default=0.0)
    if best is None:
        return 0.0, c, 0.0
    s = best["support"] or 0.0
    return (s if best["score"] >= thresholds.coverage_partly else 0.0), c, best["score"]


def contra_agrees(items: Sequence[dict[str, Any]]) -> bool:
    """Whether the most contradicting evidence points the sentence's way in its own words (then the
    checker does not call it a contradiction)."""
    best = max(items, key=lambda e: e["contradict"] or 0.0, default=None)
    return best is None or bool(best["agrees"])


def predictions(checked: Checked, thresholds: Thresholds | None,
                abstracts: dict[str, list[str]]) -> dict[str, tuple[str, set[int]]]:
    """SciFact predictions from one checked claim: abstract -> (label, rationale sentences).

    With *thresholds* (verifier build) the verdict is recomputed from the evidence's probabilities
    as ``kb.check.verified.decide_verified`` does, so that thresholds can be searched without
    re-running the model; without, the lexical verdict and the evidence's ``agrees`` are used.
    """
    items = checked.evidence
    if thresholds is None:
        if checked.verdict == "supported":
            label, chosen = "SUPPORT", [e for e in items if e["agrees"] and e["score"] >= 0.35]
        elif checked.verdict == "contradicted":
            label, chosen = "CONTRADICT", [e for e in items if not e["agrees"] and e["score"] >= 0.35]
        else:
            return {}
    else:
        s, c, covered = strengths(items, thresholds)
        if c >= thresholds.contradict and c > s and not contra_agrees(items):
            label, chosen = "CONTRADICT", [e for e in items if (e["contradict"] or 0) >= thresholds.contradict
                                           and not e["agrees"]]
        elif s >= thresholds.support and covered >= thresholds.coverage_supported:
            label, chosen = "SUPPORT", [e for e in items if (e["support"] or 0) >= thresholds.support]
        else:
            return {}
    out: dict[str, tuple[str, set[int]]] = {}
    for item in chosen:
        doc = item["source"]["id"]
        if doc not in out and len(out) >= MAX_DOCS:
            continue
        number = sentence_number(item, abstracts)
        out.setdefault(doc, (label, set()))[1].update({number} if number is not None else set())
    return out


def score(runs: Sequence[Checked], thresholds: Thresholds | None,
          abstracts: dict[str, list[str]]) -> dict[str, Any]:
    """SciFact abstract-level F1 (label-only, label+rationale) and the claim-level figures."""
    predicted = correct_label = correct_rationale = gold_count = 0
    confusion: Counter[tuple[str, str]] = Counter()
    for run in runs:
        claim_label, by_doc = gold(run.claim)
        gold_count += len(by_doc)
        found = predictions(run, thresholds, abstracts)
        predicted += len(found)
        for doc, (label, rationale) in found.items():
            if doc in by_doc and by_doc[doc][0] == label:
                correct_label += 1
                if any(r <= rationale for r in by_doc[doc][1]):
                    correct_rationale += 1
        if thresholds is None:
            verdict = run.verdict or "skipped"
        elif run.verdict is None:
            verdict = "skipped"
        else:
            labels = {label for label, _ in found.values()}
            s, _, _ = strengths(run.evidence, thresholds)
            verdict = ("contradicted" if "CONTRADICT" in labels else "supported" if labels else
                       "partly_supported" if s >= thresholds.partial else "unsupported")
        confusion[(claim_label, verdict)] += 1

    def f1(correct: int) -> tuple[float, float, float]:
        p = correct / predicted if predicted else 0.0
        r = correct / gold_count if gold_count else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    contradictions = sum(v for (g, _), v in confusion.items() if g == "CONTRADICT")
    supported = sum(v for (g, _), v in confusion.items() if g == "SUPPORT")
    nei = sum(v for (g, _), v in confusion.items() if g == "NEI")
    return {
        "label_only": f1(correct_label), "label_rationale": f1(correct_rationale),
        "contradiction_recall": confusion[("CONTRADICT", "contradicted")] / contradictions if contradictions else 0.0,
        "nei_overclaim": (confusion[("NEI", "supported")] + confusion[("NEI", "partly_supported")]) / nei if nei else 0.0,
        "nei_contradicted": confusion[("NEI", "contradicted")] / nei if nei else 0.0,
        "support_contradicted": confusion[("SUPPORT", "contradicted")] / supported if supported else 0.0,
        "confusion": confusion,
    }


def check_all(kb: KnowledgeBase, claims: Sequence[dict[str, Any]]) -> list[Checked]:
    runs = []
    for claim in claims:
        started = time.perf_counter()
        result = check_article(claim["claim"], kb.build, "text").to_dict()
        seconds = time.perf_counter() - started
        checkable = [c for c in result["claims"] if c["checkworthy"]]
        verdict = checkable[0]["verdict"] if checkable else None
        evidence = [e for c in checkable for e in c["evidence"]]
        runs.append(Checked(claim, verdict, evidence, seconds))
    return runs


def calibrate(runs: Sequence[Checked], abstracts: dict[str, list[str]]) -> Thresholds:
    """The thresholds with the best label-only F1 such that, of the claims without evidence, at most
    10% are called supported or partly supported and at most 10% contradicted, and at most 10% of
    the supported claims are called contradicted: a confident wrong verdict costs more than a
    missed one."""
    grid = [round(x * 0.05, 2) for x in range(4, 20)]
    best: tuple[float, Thresholds] | None = None
    for support, partial, contradict, supported_gate, partly_gate in itertools.product(
            grid, grid, grid, (0.35, 0.45, 0.6), (0.2, 0.35)):
        if partial > support or partly_gate > supported_gate:
            continue
        thresholds = Thresholds(support=support, partial=partial, contradict=contradict,
                                coverage_supported=supported_gate, coverage_partly=partly_gate)
        figures = score(runs, thresholds, abstracts)
        value = figures["label_only"][2] - (1.0 if figures["nei_overclaim"] > 0.10 else 0.0) \
            - (1.0 if figures["nei_contradicted"] > 0.10 else 0.0) \
            - (1.0 if figures["support_contradicted"] > 0.10 else 0.0)
        if best is None or value > best[0]:
            best = (value, thresholds)
    assert best is not None
    return best[1]


def show(name: str, runs: Sequence[Checked], figures: dict[str, Any]) -> None:
    lp, lr, lf = figures["label_only"]
    rp, rr, rf = figures["label_rationale"]
    times = sorted(r.seconds for r in runs)
    p50 = statistics.median(times) if times else 0.0
    p95 = times[int(0.95 * (len(times) - 1))] if times else 0.0
    print(f"{name:<22} label-only P/R/F1 {lp:.3f}/{lr:.3f}/{lf:.3f}  label+rationale {rp:.3f}/{rr:.3f}/{rf:.3f}  "
          f"contradiction recall {figures['contradiction_recall']:.3f}  NEI over-claim "
          f"{figures['nei_overclaim']:.3f}  NEI contradicted {figures['nei_contradicted']:.3f}  SUPPORT contradicted "
          f"{figures['support_contradicted']:.3f}  s/claim p50 {p50:.3f} p95 {p95:.3f}", flush=True)
    verdicts = ["supported", "partly_supported", "contradicted", "unsupported", "skipped"]
    print(f"{'':<22} {'gold/verdict':<12} " + " ".join(f"{v[:12]:>12}" for v in verdicts))
    for label in ("SUPPORT", "CONTRADICT", "NEI"):
        print(f"{'':<22} {label:<12} " + " ".join(f"{figures['confusion'][(label, v)]:>12}" for v in verdicts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--claims", type=Path, required=True)
    parser.add_argument("--index-dir", type=Path, default=Path("/tmp/scifact-kb"))
    parser.add_argument("--semantic", action="store_true", help="build with sentence embeddings")
    parser.add_argument("--calibrate-fold", type=int, default=1)
    parser.add_argument("--report-folds", default="0")
    parser.add_argument("--limit", type=int, default=0, help="at most N claims per fold (smoke runs)")
    parser.add_argument("--write-thresholds", action="store_true",
                        help=f"store the chosen thresholds in {MODEL_DIR / 'thresholds.json'}")
    args = parser.parse_args(argv)

    settings, _ = prepare(args.corpus, args.index_dir, args.semantic)
    abstracts: dict[str, list[str]] = {}
    with args.corpus.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            abstracts[f"{PREFIX}{record['doc_id']}"] = record["abstract"]
    claims = read_claims(args.claims)
    report_folds = {int(f) for f in args.report_folds.split(",")}

    def fold(k: int) -> list[dict[str, Any]]:
        chosen = [c for c in claims if int(c["id"]) % 5 == k]  # type: ignore[call-overload]
        return chosen[: args.limit] if args.limit else chosen

    verifier = verifier_for()
    if verifier is None:
        print("the verifier model is not installed (kb/models/verifier); nothing to measure")
        return 1
    kb = KnowledgeBase.open(settings)
    lexical_kb = KnowledgeBase.open(dataclasses.replace(settings, verifier=False))
    calibration = check_all(kb, fold(args.calibrate_fold))
    chosen = calibrate(calibration, abstracts)
    print(f"thresholds chosen on fold {args.calibrate_fold} ({len(calibration)} claims): {chosen}", flush=True)
    show(f"fold {args.calibrate_fold} (calibration)", calibration, score(calibration, chosen, abstracts))
    if args.write_thresholds:
        (MODEL_DIR / "thresholds.json").write_text(json.dumps(
            {"support": chosen.support, "partial": chosen.partial, "contradict": chosen.contradict,
             "coverage_supported": chosen.coverage_supported, "coverage_partly": chosen.coverage_partly,
             "chosen_on": f"SciFact train claims with id % 5 == {args.calibrate_fold}",
             "by": "bench/scifact_verify.py --write-thresholds"}, indent=2) + "\n", encoding="utf-8")
    verifier.thresholds = chosen
    for k in sorted(report_folds):
        claims_k = fold(k)
        runs = check_all(kb, claims_k)
        show(f"fold {k} verifier", runs, score(runs, chosen, abstracts))
        baseline = check_all(lexical_kb, claims_k)
        show(f"fold {k} lexical baseline", baseline, score(baseline, None, abstracts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
