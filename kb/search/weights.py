"""How claims and sources are ranked: the weights both claim searches use (Whoosh's own scoring
in ``whoosh_engine`` and the array search in ``array_search``), kept in one place so the two
rank alike.

Chosen on the bundled corpus; see bench/ for how ranking is measured.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

UNRANKED_LEVEL = 9  # sorts after every ranked evidence level

# BM25F field weights: the claim sentence matters most, its source's title and its vocabulary
# terms give context.
CLAIM_FIELD_BOOSTS = {"text": 3.0, "terms": 1.2, "title": 1.0}
SOURCE_FIELD_BOOSTS = {"title": 2.0, "text": 1.0, "terms": 1.0}
EXPANSION_BOOST = 0.6  # weight of a query term's synonyms and of its tag, relative to the words
TAG_BOOST = 2.0  # a claim tagged with a vocabulary term the query names, inside the expansion
COORDINATION_SCALE = 0.9  # Whoosh's Or(scale=...): claims matching more alternatives gain a little

# A one-term query's synonyms in the claim text and in its source's title: the text as the typed
# word's own text weight (CLAIM_FIELD_BOOSTS), the title at twice the word's.
TERM_TEXT_BOOST = 3.0
TERM_TITLE_BOOST = 2.0

SOURCE_REPEAT_DECAY = 0.7  # a one-term query's score factor per claim of a source ranked before

EVIDENCE_PRIOR = 0.15  # the strongest level's score multiplier minus one
TERM_EVIDENCE_PRIOR = 1.0  # the same for a query that is one vocabulary term


def prior(level: int, strength: float = EVIDENCE_PRIOR) -> float:
    """Score multiplier for an evidence level: 1 + *strength* for level 1, 1 for unranked."""
    return 1.0 + strength * max(0, UNRANKED_LEVEL - level) / (UNRANKED_LEVEL - 1)


def prior_array(levels: npt.NDArray[np.int8], strength: float) -> npt.NDArray[np.float32]:
    """``prior`` over an array of levels."""
    steps = np.maximum(0, UNRANKED_LEVEL - levels.astype(np.float32))
    return (1.0 + strength * steps / (UNRANKED_LEVEL - 1)).astype(np.float32)
