"""Claim verification: does a piece of evidence support a sentence, contradict it, or say nothing?

The verdicts of the article checker come from a trained cross-encoder (``kb.verify.model``: MiniLM
fine-tuned on HealthVer and SciFact, int8 ONNX, CPU only) that reads each candidate claim against
the sentence and gives P(supports), P(contradicts) and P(not enough info). The thresholds that turn
those into verdicts were chosen on held-out SciFact claims (``bench/scifact_verify.py
--calibrate``) and ship beside the model in ``thresholds.json``.

What a model will not learn from SciFact is kept as rules (``kb.verify.rules``): figures stated in
the sentence must be stated by the evidence once formats are normalised; strong wording needs
level-1 evidence or a large trial; aims, background and methods sentences of a source are never
findings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from kb.verify.model import MODEL_DIR, VerifierModel, bundled_model
from kb.verify.rules import figures, is_background

__all__ = ["MODEL_DIR", "Judgement", "Thresholds", "Verifier", "figures", "is_background", "verifier_for"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Probabilities at which the verifier's reading becomes a verdict."""

    support: float = 0.6  # P(supports) of the best evidence for "supported"
    partial: float = 0.35  # P(supports) for "partly supported"
    contradict: float = 0.6  # P(contradicts) for "contradicted" (and above every support)
    # The model reads meaning, not scope: the supporting claim must also cover this share of the
    # sentence's content (kb.check.verdict's coverage) for "supported", and ``coverage_partly``
    # for any support at all; below, the sentence says more than the claim.
    coverage_supported: float = 0.6
    coverage_partly: float = 0.35

    @classmethod
    def load(cls, folder: Path = MODEL_DIR) -> Thresholds:
        path = folder / "thresholds.json"
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        # Fields the file leaves out keep their defaults; keys that are not fields (notes) are ignored.
        return cls(**{f.name: float(data[f.name]) for f in fields(cls) if f.name in data})


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verifier's reading of one evidence text against one sentence."""

    support: float
    contradict: float
    neutral: float
    finding: bool = True  # False: an aim, background or methods sentence, never counted

    @property
    def relation(self) -> str:
        """"supports", "contradicts" or "neutral": the most probable reading."""
        if not self.finding:
            return "neutral"
        best = max(self.support, self.contradict, self.neutral)
        if best == self.support:
            return "supports"
        return "contradicts" if best == self.contradict else "neutral"


class Verifier:
    """Judges evidence texts against sentences with the trained model."""

    def __init__(self, model: VerifierModel, thresholds: Thresholds) -> None:
        self.model = model
        self.thresholds = thresholds

    def judge(self, sentence: str, evidence: Sequence[str]) -> list[Judgement]:
        """One judgement per evidence text, in order."""
        if not evidence:
            return []
        rows = self.model.probabilities([(text, sentence) for text in evidence])
        out = []
        for text, (neutral, support, contradict) in zip(evidence, rows.tolist(), strict=True):
            finding = not is_background(text)
            if not finding:
                support = contradict = 0.0
                neutral = 1.0
            out.append(Judgement(round(support, 4), round(contradict, 4), round(neutral, 4), finding))
        return out


_VERIFIERS: dict[Path, Verifier | None] = {}


def verifier_for(folder: Path = MODEL_DIR) -> Verifier | None:
    """The bundled verifier with its calibrated thresholds; None when the model files are absent."""
    if folder not in _VERIFIERS:
        model = bundled_model(folder)
        _VERIFIERS[folder] = Verifier(model, Thresholds.load(folder)) if model is not None else None
    return _VERIFIERS[folder]
