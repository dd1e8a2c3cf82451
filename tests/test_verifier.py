"""The trained verifier: it loads from the repository's files offline, reads pairs sensibly, and the
article checker's verdicts come from it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kb.build import build
from kb.check import check_article
from kb.config import Settings
from kb.knowledge_base import KnowledgeBase
from kb.verify import MODEL_DIR, Thresholds, verifier_for
from kb.verify.rules import figures, is_background

ROOT = Path(__file__).resolve().parent.parent


def test_model_files_ship_with_their_card() -> None:
    for name in ("verifier.onnx", "tokenizer.json", "thresholds.json", "MODEL_CARD.md", "training.json"):
        assert (MODEL_DIR / name).is_file(), name
    total = sum(p.stat().st_size for p in MODEL_DIR.rglob("*") if p.is_file())
    assert total <= 60 * 1024 * 1024
    thresholds = Thresholds.load()
    assert 0 < thresholds.partial <= thresholds.support < 1 and 0 < thresholds.contradict < 1


def test_loads_and_runs_with_the_network_unreachable() -> None:
    """No socket can be opened, and no torch is imported: the model is files in the repository."""
    script = textwrap.dedent("""
        import socket, sys
        def refuse(*args, **kwargs):
            raise OSError("network unreachable in this test")
        socket.socket = refuse
        socket.create_connection = refuse
        from kb.verify import verifier_for
        verifier = verifier_for()
        assert verifier is not None
        [j] = verifier.judge("Ketamine reduced depressive symptoms.", ["Ketamine reduced depression scores."])
        assert "torch" not in sys.modules, "torch was imported"
        print(j.support)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert 0.0 <= float(done.stdout.strip()) <= 1.0


@pytest.fixture(scope="module")
def verifier():
    found = verifier_for()
    assert found is not None
    return found


def test_reads_support_contradiction_and_unrelated(verifier) -> None:
    sentence = "Ketamine reduces depressive symptoms within 24 hours."
    support, contradiction, unrelated = verifier.judge(sentence, [
        "A single ketamine infusion reduced depression scores within 24 hours compared with placebo.",
        "Ketamine did not reduce depressive symptoms at 24 hours compared with placebo.",
        "The trial enrolled adults from two hospitals in Texas.",
    ])
    assert support.support > support.contradict and support.support > 0.5
    assert contradiction.contradict > contradiction.support
    assert unrelated.support < 0.5 and unrelated.contradict < 0.5


def test_aims_and_methods_never_count_as_findings(verifier) -> None:
    [aim] = verifier.judge("Ketamine reduces suicidal ideation.",
                           ["To assess whether ketamine reduces suicidal ideation in depressed adults."])
    assert not aim.finding and aim.support == 0.0 and aim.relation == "neutral"
    assert is_background("We hypothesised that ketamine would reduce suicidal ideation.")
    assert not is_background("Ketamine reduced suicidal ideation more than midazolam at 24 hours.")


def test_figures_match_across_formats() -> None:
    assert figures("a 95 percent confidence interval, P = 0.25, \u22123.16, 1,234 patients") == \
        figures("95% CI, p = .25, -3.16, 1234 patients")
    assert figures("reduced scores by 3.2 points") != figures("reduced scores by 4.1 points")


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(corpus_dir=ROOT / "corpus", index_dir=tmp_path_factory.mktemp("bundled") / "index")
    build(settings)
    kb = KnowledgeBase.open(settings)
    yield kb
    kb.close()


def _claim(kb: KnowledgeBase, text: str) -> dict:
    result = check_article(text, kb.build, "text").to_dict()
    [claim] = [c for c in result["claims"] if c["checkworthy"]]
    return claim


def test_verdicts_come_from_the_verifier(bundled: KnowledgeBase) -> None:
    claim = _claim(bundled, "A single intravenous dose of ketamine rapidly reduced depressive symptoms "
                   "in treatment-resistant depression.")
    assert claim["verdict"] != "contradicted"
    assert claim["evidence"] and claim["evidence"][0]["relation"] == "supports"
    assert claim["evidence"][0]["support"] is not None and claim["evidence"][0]["locator"]


def test_not_a_new_medication_is_not_backed_by_a_mention(bundled: KnowledgeBase) -> None:
    claim = _claim(bundled, "Ketamine itself is not a new medication.")
    assert claim["verdict"] != "supported"


def test_a_citation_to_an_unrelated_finding_does_not_back(bundled: KnowledgeBase) -> None:
    text = ("Ketamine cures pancreatic cancer in most patients [1].\n\nReferences\n\n"
            "1. Zarate CA Jr, Singh JB, Carlson PJ, et al. A randomized trial of an N-methyl-D-aspartate "
            "antagonist in treatment-resistant major depression. Arch Gen Psychiatry. 2006;63(8):856-864. "
            "doi:10.1001/archpsyc.63.8.856\n")
    result = check_article(text, bundled.build, "text").to_dict()
    [claim] = [c for c in result["claims"] if c["checkworthy"]]
    assert claim["verdict"] != "supported"
    [check] = claim["citations"]
    assert check["source"] == "zarate2006randomized"
    assert check["outcome"] in {"does_not_back", "contradicts"}


def test_without_the_verifier_the_lexical_rules_decide(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=ROOT / "tests" / "data" / "corpus", index_dir=tmp_path / "index",
                        verifier=False)
    build(settings)
    kb = KnowledgeBase.open(settings)
    try:
        result = check_article("Ketamine produced rapid antidepressant effects in depressed patients.", kb.build)
        claims = [c for c in result.to_dict()["claims"] if c["checkworthy"]]
        assert claims and all(e["relation"] is None for c in claims for e in c["evidence"])
    finally:
        kb.close()


def test_training_record_matches_the_card() -> None:
    record = json.loads((MODEL_DIR / "training.json").read_text())
    assert record["labels"] == ["nei", "support", "contradict"]
    assert record["report_fold"] not in record["train_folds"]
    assert record["calibrate_fold"] not in record["train_folds"]


def test_the_api_reports_the_verifier_reading(bundled: KnowledgeBase) -> None:
    from kb.web import create_app

    client = create_app(bundled.settings).test_client()
    response = client.post("/api/v1/check", json={"text": "Ketamine reduced PTSD symptoms more than midazolam."})
    assert response.status_code == 200
    [claim] = [c for c in response.get_json()["claims"] if c["checkworthy"]]
    assert claim["evidence"][0]["relation"] in {"supports", "contradicts", "neutral"}
    assert isinstance(claim["evidence"][0]["support"], float)
