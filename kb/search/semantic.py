"""Semantic signal: sentence embeddings (all-MiniLM-L6-v2) of claims and sources.

The encoder ships in the repository as an int8 ONNX model (``kb/models/encoder/``, made by
``bench/export_encoder.py``) and runs with onnxruntime and tokenizers: no torch and nothing
downloaded. A build stores one unit vector per claim and per source in the build folder (on by
default; ``KB_SEMANTIC=0`` turns it off); the matcher then encodes each query sentence once and
fuses cosine similarities with the lexical ranks. For a build without embeddings, or an install
without the model files, matching is lexical only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

CLAIM_VECTORS = "semantic-claims.npy"
SOURCE_VECTORS = "semantic-sources.npy"
MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "encoder"
# The model reads at most 256 word pieces; a source is its title and the start of its abstract.
_MAX_LENGTH = 256
_BATCH = 64

Vectors = npt.NDArray[np.float32]

_lock = threading.Lock()
_model: OnnxEncoder | None = None


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """False only when KB_SEMANTIC turns embeddings off ("0", "false", "no", "off")."""
    return environ.get("KB_SEMANTIC", "1").strip().lower() not in {"0", "false", "no", "off"}


def available(folder: Path = MODEL_DIR) -> bool:
    """True when the encoder's model files are installed."""
    return (folder / "encoder.onnx").is_file() and (folder / "tokenizer.json").is_file()


class OnnxEncoder:
    """Mean-pooled, normalised MiniLM sentence embeddings from the ONNX model in *folder*."""

    def __init__(self, folder: Path = MODEL_DIR) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # A server answers one sentence at a time; more threads than cores only contend.
        options.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
        self.session = onnxruntime.InferenceSession(str(folder / "encoder.onnx"), options,
                                                    providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=_MAX_LENGTH)
        self.tokenizer.enable_padding()

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Unit vectors for one batch of *texts*."""
        encoded = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        hidden = self.session.run(["hidden"], {"input_ids": ids, "attention_mask": mask,
                                               "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _encoder() -> OnnxEncoder:
    """The sentence encoder, loaded once per process from the repository's files."""
    global _model
    with _lock:
        if _model is None:
            _model = OnnxEncoder()
        return _model


def encode(texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Vectors:
    """Unit vectors for *texts* (float32, one row each)."""
    model = _encoder()
    rows: list[Vectors] = []
    # Sorting by length makes batches of similar length: far less padding, about twice as fast.
    order = sorted(range(len(texts)), key=lambda n: len(texts[n]))
    for start in range(0, len(order), _BATCH * 8):
        chunk = order[start:start + _BATCH * 8]
        for offset in range(0, len(chunk), _BATCH):
            rows.append(model.encode([texts[n] for n in chunk[offset:offset + _BATCH]]))
        if progress:
            progress(len(chunk))
    if not rows:
        return np.zeros((0, 384), dtype=np.float32)
    stacked = np.concatenate(rows)
    out = np.empty_like(stacked)
    out[np.asarray(order, dtype=np.int64)] = stacked
    return out


def write(build_dir: Path, claim_texts: Sequence[str], source_texts: Sequence[str],
          progress: Callable[[int], None] | None = None) -> None:
    """Embed claims and sources and store them (float16 halves the files; cosines barely move)."""
    np.save(build_dir / CLAIM_VECTORS, encode(claim_texts, progress).astype(np.float16))
    np.save(build_dir / SOURCE_VECTORS, encode(source_texts).astype(np.float16))


def has_vectors(build_dir: Path) -> bool:
    return (build_dir / CLAIM_VECTORS).is_file() and (build_dir / SOURCE_VECTORS).is_file()


def load(build_dir: Path) -> tuple[Vectors, Vectors]:
    """The claim and source vectors of a build, as float32 (fast matrix products)."""
    claims = np.load(build_dir / CLAIM_VECTORS).astype(np.float32)
    sources = np.load(build_dir / SOURCE_VECTORS).astype(np.float32)
    return claims, sources
