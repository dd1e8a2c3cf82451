"""Text analysis for the matcher's indexes: biomedical text to index terms, fast.

The same words as the Whoosh fields' analyzer (``whoosh_engine._STEMMED``): word characters with
decimals kept whole ("0.5"), hyphens split ("NMDA-receptor" -> nmda, receptor), lower case,
accents folded, English stop words dropped, Porter stems. On top of it Greek letters are spelled
out, so "TNF-α", "TNFα" and "TNF-alpha" meet. The Porter stemmer is cached per word: the corpus
and its queries reuse a small vocabulary, and stemming dominates analysis time without the cache.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from whoosh.analysis import STOP_WORDS
from whoosh.lang.porter import stem as _porter

_WORDS = re.compile(r"\w+(?:\.\d+)*")

# Greek letters as biomedical names use them (IFN-γ, TGF-β1, κB); "µ" (micro sign) too.
_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ϵ": "epsilon",
    "ζ": "zeta", "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu",
    "µ": "mu", "ν": "nu", "ξ": "xi", "π": "pi", "ρ": "rho", "σ": "sigma", "τ": "tau", "υ": "upsilon",
    "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
}
_GREEK_RE = re.compile(f"([a-z])?({'|'.join(_GREEK)})")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _porter(word)  # type: ignore[no-any-return]


def _fold(text: str) -> str:
    """Lower case, Greek letters as words, accents removed (only when the text needs it)."""
    text = text.lower()
    if not _NON_ASCII.search(text):
        return text
    # Spelled out in place, as authors write them: "TGF-β1" -> "tgf-beta1", "NF-κB" -> "nf-kappab";
    # only a Latin letter right before it is split off: "TNFα" -> "tnf alpha", like "TNF-alpha".
    text = _GREEK_RE.sub(lambda m: f"{m.group(1) + ' ' if m.group(1) else ''}{_GREEK[m.group(2)]}", text)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def index_terms(text: str) -> list[str]:
    """The index terms of *text*, in order, repeated as often as they occur.

    >>> index_terms("TNF-α levels rose in 0.5 mg/kg ketamine-treated patients")
    ['tnf', 'alpha', 'level', 'rose', '0.5', 'mg', 'kg', 'ketamin', 'treat', 'patient']
    """
    return [_stem(word) for word in _WORDS.findall(_fold(text)) if word not in STOP_WORDS]
