"""The article checker on the bundled corpus (skipped while corpus/ is incomplete)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kb.build import build
from kb.config import Settings
from kb.knowledge_base import KnowledgeBase

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
EXPECTED_SOURCES = 67


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    summaries = list((CORPUS / "summaries").glob("*.md")) if (CORPUS / "summaries").is_dir() else []
    if len(summaries) < EXPECTED_SOURCES:
        pytest.skip(f"the bundled corpus has {len(summaries)} of {EXPECTED_SOURCES} summaries")
    # These pins are the lexical rules' (KB_VERIFIER=0); tests/test_verifier.py pins the verifier.
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path_factory.mktemp("bundled") / "index",
                        verifier=False)
    build(settings)
    kb = KnowledgeBase.open(settings)
    yield kb
    kb.close()


ARTICLE = """# Rapid-acting treatments for depression

The FDA approved esketamine nasal spray for treatment-resistant depression in 2019, to be used together with an oral antidepressant.
Ketamine also reduces suicidal thoughts within hours.
One ketamine infusion reduced PTSD symptoms more than midazolam.
Ketamine is completely safe and has no side effects.
Ketamine lowers cholesterol in elderly cats.
Ask your doctor whether an infusion clinic is right for you.
"""


@pytest.mark.parametrize("index,verdict,sources", [
    (1, "supported", {"fda2019spravato"}),
    (2, "supported", {"grunebaum2018ketamine", "wilkinson2018effect", "price2009effects", "price2014effects"}),
    (3, "supported", {"feder2014efficacy", "feder2021randomized"}),
    (4, "contradicted", {"short2018side"}),
    (5, "unsupported", None),
])
def test_bundled_verdicts(bundled, index, verdict, sources):
    result = bundled.check(ARTICLE)
    sentence = result.sentences[index]
    assert sentence.verdict == verdict, (sentence.text, sentence.reason)
    if sources:
        assert sources & {e.source.id for e in sentence.evidence[:3]}, sentence.evidence


def test_bundled_skips_advice(bundled):
    assert not bundled.check(ARTICLE).sentences[6].checkworthy
