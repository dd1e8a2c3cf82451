"""The verifier model at run time: an int8 ONNX cross-encoder read with onnxruntime and tokenizers.

No torch and no network: the model and its tokenizer are files in the repository
(``kb/models/verifier/``), loaded once per process and shared by every thread (an onnxruntime
session is safe to call concurrently).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

LABELS = ("nei", "support", "contradict")
MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "verifier"
BATCH = 32


class VerifierModel:
    """Scores (evidence, sentence) pairs: P(not enough info), P(supports), P(contradicts)."""

    def __init__(self, model_path: Path, tokenizer_path: Path, max_length: int = 128, threads: int = 0) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        if not model_path.is_file() or not tokenizer_path.is_file():
            raise FileNotFoundError(f"The verifier model is missing ({model_path}); reinstall the package "
                                    "or rebuild it with bench/train_verifier.py")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
        self.tokenizer.enable_padding()
        self.inputs = {i.name for i in self.session.get_inputs()}

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One row per (evidence, sentence) pair: the probabilities of ``LABELS``."""
        if not pairs:
            return np.zeros((0, 3), dtype=np.float32)
        rows = []
        # Sorting by length keeps padding (and so the work) small within each batch.
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        for start in range(0, len(order), BATCH):
            chunk = [pairs[i] for i in order[start: start + BATCH]]
            encoded = self.tokenizer.encode_batch([(e, s) for e, s in chunk])
            feed = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            logits = self.session.run(["logits"], {k: v for k, v in feed.items() if k in self.inputs})[0]
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            rows.append(shifted / shifted.sum(axis=1, keepdims=True))
        ordered = np.concatenate(rows)
        result = np.empty_like(ordered)
        result[np.array(order)] = ordered
        return result


_LOADED: dict[Path, VerifierModel | None] = {}
_LOCK = threading.Lock()


def bundled_model(folder: Path = MODEL_DIR) -> VerifierModel | None:
    """The repository's verifier, loaded once; None when its files are absent (a lexical-only install)."""
    with _LOCK:
        if folder not in _LOADED:
            model_path, tokenizer_path = folder / "verifier.onnx", folder / "tokenizer.json"
            _LOADED[folder] = (VerifierModel(model_path, tokenizer_path)
                               if model_path.is_file() and tokenizer_path.is_file() else None)
        return _LOADED[folder]
