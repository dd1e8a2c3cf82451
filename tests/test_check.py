"""The article checker end to end on the mini corpus: verdicts, evidence, citations, references.

The articles in tests/data/articles/ were written for these tests; each pins the verdict of its
sentences and the sources that should back them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.check import check_article
from kb.check.report import to_html, to_markdown
from kb.errors import BadRequest, PayloadTooLarge

ARTICLES = Path(__file__).parent / "data" / "articles"


def read(name: str) -> str:
    return (ARTICLES / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def numbered(kb):
    return kb.check(read("numbered.md"))


@pytest.fixture(scope="module")
def author_year(kb):
    return kb.check(read("author_year.txt"))


@pytest.fixture(scope="module")
def html_article(kb):
    return kb.check(read("article.html"))


@pytest.fixture(scope="module")
def superscripts(kb):
    return kb.check(read("superscripts.txt"))


def sentence(result, start: str):
    found = [s for s in result.sentences if s.text.startswith(start)]
    assert len(found) == 1, [s.text for s in result.sentences]
    return found[0]


def best_sources(s, count: int = 1) -> list[str]:
    return [e.source.id for e in s.evidence[:count]]


# --- verdicts ------------------------------------------------------------------------------


@pytest.mark.parametrize("start,verdict,source", [
    ("A single intravenous ketamine infusion", "supported", "berman2000antidepressant"),
    ("The antidepressant benefit of one ketamine infusion lasts", "contradicted", "zarate2006randomized"),
    ("Ketamine is proven to cure depression", "partly_supported", None),
    ("One ketamine infusion reduced PTSD", "supported", "feder2014efficacy"),
    ("The FDA approved Spravato", "supported", "fda2019spravato"),
    ("Ketamine lowers cholesterol", "unsupported", None),
    ("Ketamine increases synapse formation", "supported", "duman2012synaptic"),
    ("Esketamine shrinks tumours", "unsupported", None),
])
def test_numbered_article_verdicts_and_sources(numbered, start, verdict, source):
    s = sentence(numbered, start)
    assert s.checkworthy
    assert s.verdict == verdict, s.reason
    assert s.reason
    if source:
        assert best_sources(s) == [source]


@pytest.mark.parametrize("start,reason", [
    ("One infusion, three questions", "heading"),
    ("Could a drug used", "question"),
    ("Speak to your doctor", "advice"),
    ("I honestly felt", "personal experience"),
])
def test_numbered_article_skips_what_is_not_a_claim(numbered, start, reason):
    s = sentence(numbered, start)
    assert not s.checkworthy and s.verdict is None and reason in s.reason


def test_every_verdict_occurs(numbered, author_year, html_article, superscripts):
    verdicts = {s.verdict for r in (numbered, author_year, html_article, superscripts) for s in r.sentences}
    assert verdicts >= {"supported", "partly_supported", "contradicted", "unsupported"}


def test_strong_wording_on_small_trials_is_only_partly_supported(kb):
    result = kb.check("A single ketamine infusion is proven to improve depressive symptoms within 72 hours.")
    s = result.sentences[0]
    assert s.verdict == "partly_supported"
    assert "proven" in s.reason and "7 completers" in s.reason


def test_a_figure_the_evidence_lacks_is_only_partly_supported(kb):
    s = kb.check("A single IV dose of ketamine produced antidepressant response within 48 hours in TRD.").sentences[0]
    assert s.verdict == "partly_supported" and "48" in s.reason


def test_a_limitation_stated_by_the_article_is_supported(superscripts):
    s = sentence(superscripts, "Only about a third of patients")
    assert s.verdict == "supported"
    assert s.evidence[0].stance == "limits" and s.evidence[0].agrees


def test_denying_harm_is_contradicted(kb):
    s = kb.check("Ketamine infusions are completely safe and free of side effects; dissociative effects never "
                 "unblind a saline placebo.").sentences[0]
    assert s.verdict == "contradicted", s.reason


def test_outright_negation_of_a_finding_is_contradicted(kb):
    s = kb.check("One ketamine infusion did not reduce PTSD symptom severity 24 hours later more than "
                 "midazolam.").sentences[0]
    assert s.verdict == "contradicted"


# --- evidence ------------------------------------------------------------------------------


def test_evidence_carries_sources_with_confirmed_identifiers_only(numbered):
    s = sentence(numbered, "A single intravenous ketamine infusion")
    top = s.evidence[0]
    assert top.claim_id.startswith("berman2000antidepressant-")
    assert top.stance == "supports" and 0 < top.score <= 1
    assert "ketamine-iv" in top.shared_terms
    assert top.source.doi == "10.1016/s0006-3223(99)00230-9" and top.source.pmid == "10686270"
    zarate = next(e for r in (numbered,) for x in r.sentences for e in x.evidence
                  if e.source.id == "zarate2006randomized")
    assert zarate.source.doi == "10.1001/archpsyc.63.8.856"
    assert zarate.source.pmid is None  # its PMID is unverified in the corpus


def test_scores_are_shares_of_the_sentence(kb):
    s = kb.check("One ketamine infusion reduced PTSD symptom severity 24 hours later more than midazolam.").sentences[0]
    assert s.evidence[0].score == 1.0
    assert all(0 <= e.score <= 1 and 0 <= e.match_score <= 1 for e in s.evidence)
    assert [e.score for e in s.evidence] == sorted((e.score for e in s.evidence), reverse=True)


# --- citations -----------------------------------------------------------------------------


def test_citation_that_backs_its_sentence(numbered):
    s = sentence(numbered, "A single intravenous ketamine infusion")
    assert s.cited == ("1",)
    assert [(c.reference, c.source, c.outcome) for c in s.citations] == [("1", "berman2000antidepressant", "backs")]


def test_citation_of_a_source_that_does_not_say_it(numbered):
    s = sentence(numbered, "One ketamine infusion reduced PTSD")
    assert [(c.source, c.outcome) for c in s.citations] == [("berman2000antidepressant", "does_not_back")]
    assert any(p.kind == "citation_does_not_back" and p.reference == "1" for p in numbered.problems)


def test_citation_of_a_source_that_limits_it(numbered):
    s = sentence(numbered, "The antidepressant benefit of one ketamine infusion lasts")
    assert [(c.source, c.outcome) for c in s.citations] == [("zarate2006randomized", "contradicts")]
    assert any(p.kind == "citation_contradicts" for p in numbered.problems)


def test_citation_to_a_missing_entry(numbered):
    s = sentence(numbered, "Ketamine lifts mood")
    assert s.cited == () and "no entry 7" in s.problems[0]
    assert any(p.kind == "missing_reference" for p in numbered.problems)


def test_citation_placeholder_in_a_sentence(numbered):
    s = sentence(numbered, "Ketamine lowers cholesterol")
    assert "placeholder" in s.problems[0]


def test_citing_a_placeholder_or_unresolved_reference(numbered):
    s = sentence(numbered, "Ketamine increases synapse formation")
    assert s.citations[0].outcome == "unknown" and "placeholder" in s.problems[0]
    s = sentence(numbered, "Esketamine shrinks tumours")
    assert s.citations[0].outcome == "unknown" and "Not in the knowledge base" in s.problems[0]


def test_supported_sentences_that_cite_nothing_get_suggestions(numbered):
    s = sentence(numbered, "The FDA approved Spravato")
    assert s.cited == ()
    assert s.suggestions[0].id == "fda2019spravato"
    assert s.suggestions[0].apa and "2019" in s.suggestions[0].citation
    assert sentence(numbered, "A single intravenous ketamine infusion").suggestions == ()  # it cites


def test_author_year_citations_map_to_the_reference_list(author_year):
    expected = {
        "Early work by Berman et al. (2000)": "berman2000antidepressant",
        "In treatment-resistant depression": "zarate2006randomized",
        "The FDA approved Spravato": "fda2019spravato",
        "BDNF release is required": "duman2012synaptic",
        "One ketamine infusion reduced PTSD": "feder2014efficacy",
    }
    by_id = {r.id: r for r in author_year.references}
    for start, source in expected.items():
        s = sentence(author_year, start)
        assert s.verdict == "supported", (start, s.reason)
        assert [by_id[ref].resolved.id for ref in s.cited] == [source]
        assert [c.outcome for c in s.citations] == ["backs"]


def test_inline_citation_without_an_entry_becomes_an_unresolved_reference(author_year):
    s = sentence(author_year, "Ketamine reverses hair loss")
    reference = next(r for r in author_year.references if r.id == s.cited[0])
    assert reference.inline and reference.problem == "unresolved" and reference.start is None


def test_year_after_a_preposition_is_not_a_citation(author_year):
    assert sentence(author_year, "In 2019, regulators").cited == ()


# --- references ----------------------------------------------------------------------------


def test_numbered_references_resolve_by_doi_and_title(numbered):
    refs = {r.id: r for r in numbered.references}
    assert (refs["1"].resolved.id, refs["1"].resolved.match) == ("berman2000antidepressant", "doi")
    assert (refs["2"].resolved.id, refs["2"].resolved.match) == ("zarate2006randomized", "title")
    assert refs["3"].problem == "placeholder" and refs["3"].resolved is None
    assert refs["4"].problem == "unresolved" and "10.5555/jeno.2017.0042" in refs["4"].detail
    assert numbered.text[refs["1"].start:refs["1"].end].startswith("Berman RM")


def test_apa_references_resolve_and_report_problems(author_year):
    refs = [(r.id, r.resolved.id if r.resolved else None, r.problem) for r in author_year.references if not r.inline]
    assert refs == [
        ("R1", "berman2000antidepressant", None),
        ("R2", "zarate2006randomized", "doi_mismatch"),
        ("R3", "fda2019spravato", None),
        ("R4", "duman2012synaptic", None),
        ("R5", "feder2014efficacy", None),
        ("R6", None, "unresolved"),
        ("R7", None, "unreadable"),
    ]


def test_references_by_pmid_and_superscripts(superscripts):
    refs = {r.id: r for r in superscripts.references}
    assert (refs["1"].resolved.id, refs["1"].resolved.match) == ("berman2000antidepressant", "pmid")
    assert refs["3"].problem == "unresolved"
    assert sentence(superscripts, "A single 0.5 mg/kg").cited == ("1",)
    assert sentence(superscripts, "Only about a third").cited == ("2", "3")


def test_resolved_references_show_only_confirmed_identifiers(superscripts):
    zarate = next(r for r in superscripts.references if r.id == "2").resolved
    assert zarate.doi == "10.1001/archpsyc.63.8.856" and zarate.pmid is None


def test_uncited_entries_are_marked(kb):
    result = kb.check("Ketamine improved depressive symptoms within 72 hours [1].\n\nReferences\n\n"
                      "1. Berman RM. Antidepressant effects of ketamine in depressed patients. 2000.\n"
                      "2. Feder A. Efficacy of intravenous ketamine for treatment of chronic posttraumatic "
                      "stress disorder: a randomized clinical trial. 2014.\n")
    assert [(r.id, r.problem) for r in result.references] == [("1", None), ("2", "uncited")]


def test_an_unreadable_reference_list_is_reported_and_the_sentences_still_checked(kb):
    result = kb.check(read("broken_references.md"))
    assert any(p.kind == "unreadable" and p.reference is None for p in result.problems)
    assert result.sentences[1].verdict == "supported"
    assert "no reference list" in result.sentences[1].problems[0]


# --- HTML input ----------------------------------------------------------------------------


def test_html_article(html_article):
    text = html_article.text
    assert html_article.content_type == "html"
    assert "document.write" not in text and "color: red" not in text and "dangerous in every dose" not in text
    assert "Ketamine & the brain" in text and "patients \u2014 and" in text
    for s in html_article.sentences:
        assert text[s.start:s.end] == s.text
    first = sentence(html_article, "Ketamine rapidly increases synapse formation")
    assert first.cited == ("1",) and first.citations[0].outcome == "backs"
    assert sentence(html_article, "Ketamine doubles bone density").citations[0].outcome == "does_not_back"
    assert [r.resolved.id for r in html_article.references] == ["duman2012synaptic", "feder2014efficacy"]


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\t  "])
def test_empty_text_is_a_bad_request(kb, text):
    with pytest.raises(BadRequest, match="empty"):
        kb.check(text)


def test_text_over_the_limit_is_too_large(kb):
    with pytest.raises(PayloadTooLarge):
        kb.check("Ketamine improved mood. " * (kb.settings.max_upload_bytes // 20))


def test_text_without_sentences_gives_an_empty_result(kb):
    result = kb.check(read("no_sentences.md"))
    assert result.sentences == () and result.references == ()
    assert result.to_dict()["ok"] is True
    assert kb.check("<script>only code</script>", "html").sentences == ()


def test_check_article_is_the_facade(kb):
    assert check_article("Ketamine improved depressive symptoms.", kb.build).to_dict()["claims"][0]["verdict"]


# --- the JSON document and the reports -----------------------------------------------------


def test_json_shape(numbered):
    data = numbered.to_dict()
    assert data["ok"] is True
    claim = data["claims"][3]
    assert {"text", "start", "end", "checkworthy", "verdict", "reason", "cited", "evidence"} <= set(claim)
    evidence = claim["evidence"][0]
    assert {"claim_id", "text", "score", "stance", "source"} <= set(evidence)
    assert {"id", "doi", "pmid", "title", "year", "citation"} <= set(evidence["source"])
    reference = data["references"][0]
    assert {"id", "text", "resolved", "problem"} <= set(reference)
    assert {"id", "doi", "title", "year"} <= set(reference["resolved"])
    assert data["text"][claim["start"]:claim["end"]] == claim["text"]


def test_markdown_report_adds_footnotes_and_lists_problems(numbered):
    report = to_markdown(numbered)
    assert "adults with treatment-resistant depression[^kb" in report
    assert "]: U.S. Food and Drug Administration" in report
    for heading in ("## Evidence check", "### Contradicted", "### Not enough evidence", "### Citations", "### References"):
        assert heading in report
    assert "does not say this" in report and "placeholder" in report


def test_html_report_colours_sentences_and_needs_no_script(numbered):
    report = to_html(numbered)
    assert report.count('<details class="claim verdict-contradicted"') == 1
    assert '<details class="claim verdict-supported"' in report and "<summary>" in report
    assert "<script" not in report and " style=" not in report
    assert "&lt;" not in sentence(numbered, "A single").text
    assert "berman" in report.lower()
