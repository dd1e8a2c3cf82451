"""BM25 over precomputed impacts: the matcher's lexical index, in numpy arrays beside Whoosh.

Whoosh is pure Python and scores a long free-text sentence against ~50,000 claims at about 15
sentences a second; the matcher needs every claim and every source scored for each sentence of
an article. Here each posting stores its final BM25 contribution (idf x saturated, length-
normalised tf), so scoring a query is one ``bincount`` over the postings of its terms: a few
milliseconds for the whole corpus, with the same ranking a BM25 engine gives.

The arrays are written once at build time (``.npz``, uncompressed so they load fast) and are
read-only afterwards, so one loaded index is safe to share between threads.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kb.search.analysis import index_terms

# Okapi BM25 constants; cross-validated on SciFact (bench/scifact.py), where k1 in 0.9-1.5 and
# b in 0.5-0.9 were all within 0.005 nDCG@10 of each other: the usual defaults it is.
K1 = 1.2
B = 0.75

Scores = npt.NDArray[np.float32]


class ImpactIndex:
    """A BM25 index whose postings hold precomputed per-document impacts."""

    def __init__(self, terms: dict[str, int], starts: npt.NDArray[np.int64],
                 docs: npt.NDArray[np.int32], impacts: npt.NDArray[np.float32], size: int) -> None:
        self.terms = terms  # term -> row number
        self.starts = starts  # row r's postings are docs[starts[r]:starts[r + 1]]
        self.docs = docs
        self.impacts = impacts
        self.size = size  # number of documents

    @classmethod
    def build(cls, texts: Iterable[str], k1: float = K1, b: float = B,
              multiplicity: Sequence[int] | None = None, idf: str = "bm25") -> ImpactIndex:
        """Analyse and index *texts*; document numbers are their positions.

        *multiplicity* says how many records each text stands for (a source title shared by its
        claims, one tag set shared by many claims): document frequencies and the average length
        count each text that many times, so the impacts are those of the records themselves,
        while each text is analysed and stored once. *idf* "bm25" is Okapi's
        log(1 + (N - df + 0.5) / (df + 0.5)); "classic" is 1 + log(N / (df + 1)), Whoosh's and
        Lucene's classic, which keeps a word that most documents hold worth about one.
        """
        postings: dict[str, list[tuple[int, int]]] = {}
        lengths: list[int] = []
        for number, text in enumerate(texts):
            words = index_terms(text)
            lengths.append(len(words))
            for word, count in Counter(words).items():
                postings.setdefault(word, []).append((number, count))
        size = len(lengths)
        length = np.asarray(lengths, dtype=np.float32)
        weight = (np.asarray(multiplicity, dtype=np.float64) if multiplicity is not None
                  else np.ones(size, dtype=np.float64))
        records = float(weight.sum())
        average = float((length * weight).sum() / records) if records else 0.0
        average = average if average > 0 else 1.0
        norm = k1 * (1.0 - b + b * length / average)  # per document
        terms: dict[str, int] = {}
        starts = np.zeros(len(postings) + 1, dtype=np.int64)
        total = sum(len(p) for p in postings.values())
        docs = np.empty(total, dtype=np.int32)
        impacts = np.empty(total, dtype=np.float32)
        cursor = 0
        for row, (word, plist) in enumerate(sorted(postings.items())):
            terms[word] = row
            numbers = np.fromiter((d for d, _ in plist), dtype=np.int32, count=len(plist))
            counts = np.fromiter((c for _, c in plist), dtype=np.float32, count=len(plist))
            df = len(plist)
            dfr = float(weight[numbers].sum()) if multiplicity is not None else float(df)
            if idf == "classic":  # texts that stand for no record (a source without claims) weigh 0
                idf_value = 1.0 + math.log(records / (dfr + 1.0)) if records > 0 else 0.0
            else:
                idf_value = math.log(1.0 + (records - dfr + 0.5) / (dfr + 0.5))
            end = cursor + df
            docs[cursor:end] = numbers
            impacts[cursor:end] = idf_value * counts * (k1 + 1.0) / (counts + norm[numbers])
            cursor = end
            starts[row + 1] = end
        return cls(terms, starts, docs, impacts, size)

    def save(self, path: Path) -> None:
        """Write the index to *path* (an ``.npz`` file)."""
        words = sorted(self.terms, key=self.terms.__getitem__)
        with path.open("wb") as handle:
            np.savez(handle, words=np.asarray(words, dtype=np.str_), starts=self.starts,
                     docs=self.docs, impacts=self.impacts, size=np.asarray([self.size]))

    @classmethod
    def load(cls, path: Path) -> ImpactIndex:
        """Read an index that ``save`` wrote."""
        with np.load(path, allow_pickle=False) as data:
            words = data["words"].tolist()
            return cls({w: n for n, w in enumerate(words)}, data["starts"], data["docs"],
                       data["impacts"], int(data["size"][0]))

    def query_terms(self, text: str) -> Counter[str]:
        """The known index terms of *text* with their counts (unknown words cannot score)."""
        return Counter(w for w in index_terms(text) if w in self.terms)

    def score(self, weights: Counter[str] | dict[str, float]) -> Scores:
        """Every document's BM25 score for query terms weighted by *weights* (0 = no match)."""
        parts_docs: list[npt.NDArray[np.int32]] = []
        parts_impacts: list[npt.NDArray[np.float32]] = []
        for word, weight in weights.items():
            docs, impacts = self.postings(word)
            if not len(docs) or weight <= 0:
                continue
            parts_docs.append(docs)
            parts_impacts.append(impacts if weight == 1 else impacts * np.float32(weight))
        if not parts_docs:
            return np.zeros(self.size, dtype=np.float32)
        return np.bincount(np.concatenate(parts_docs), weights=np.concatenate(parts_impacts),
                           minlength=self.size).astype(np.float32)

    def postings(self, word: str) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        """The documents that hold *word* and its impact in each (empty arrays when none)."""
        row = self.terms.get(word)
        if row is None:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        start, end = self.starts[row], self.starts[row + 1]
        return self.docs[start:end], self.impacts[start:end]

    def document_frequency(self, word: str) -> int:
        row = self.terms.get(word)
        return 0 if row is None else int(self.starts[row + 1] - self.starts[row])


def top(scores: Scores, limit: int, allowed: Sequence[int] | None = None) -> list[tuple[int, float]]:
    """The *limit* best (document number, score) pairs with a positive score, best first.

    Ties keep document order (the store's order: strongest evidence first).
    """
    if allowed is not None:
        masked = np.zeros_like(scores)
        index = np.asarray(allowed, dtype=np.int64)
        masked[index] = scores[index]
        scores = masked
    positive = int(np.count_nonzero(scores > 0))
    limit = min(limit, positive)
    if limit <= 0:
        return []
    if limit < len(scores):
        candidates = np.argpartition(-scores, limit - 1)[:limit]
    else:
        candidates = np.arange(len(scores))
    # lexsort: last key first; score descending, then document number ascending
    ordered = candidates[np.lexsort((candidates, -scores[candidates]))]
    return list(zip(ordered.tolist(), scores[ordered].astype(np.float64).tolist(), strict=True))
