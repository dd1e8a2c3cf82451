"""Check-worthiness and references (issue 11, item 5): what is a claim, where sentences end, and
how notes and title-only entries of a reference list are read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kb.build import build
from kb.check.references import find_reference_section, notice_problems, parse_entries, resolve
from kb.check.segment import segment
from kb.check.worthiness import assess, first_person, has_verb, is_declarative, is_title, split_label
from kb.config import Settings
from kb.knowledge_base import KnowledgeBase

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
BUNDLED_SOURCES = 67
SPRAVATO_APPROVALS = {"fda2020spravatomdsi", "fda2025spravatomonotherapy"}


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    """The bundled corpus (skipped while corpus/ is incomplete)."""
    summaries = list((CORPUS / "summaries").glob("*.md")) if (CORPUS / "summaries").is_dir() else []
    if len(summaries) < BUNDLED_SOURCES:
        pytest.skip(f"the bundled corpus has {len(summaries)} of {BUNDLED_SOURCES} summaries")
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path_factory.mktemp("bundled") / "index")
    build(settings)
    kb = KnowledgeBase.open(settings)
    yield kb
    kb.close()


def entry(text: str):
    return parse_entries(text, 0, len(text))[0]


# --- 1. headings, questions, advice, testimonials, list labels ---------------------------------


@pytest.mark.parametrize("text,kind,reason", [
    ("Potential Risks and Side Effects:", "sentence", "heading or label"),
    ("Reduced Suicidal Ideation:", "item", "heading or label"),
    ("The Science Behind Ketamine Therapy", "sentence", "title line"),
    ("Long-Term Safety Of Repeated Esketamine Dosing", "sentence", "title line"),
    ("Treatment for: Depression, Major Depressive Disorder", "item", "title line"),
    ("Is ketamine safe for teenagers", "sentence", "question"),
    ("How long do the effects of an infusion last", "sentence", "question"),
    ("It's important to talk to your doctor before you start ketamine.", "sentence", "advice"),
    ("If you are considering an infusion, consult a psychiatrist first.", "sentence", "advice"),
    ("Talk to your doctor", "item", "advice"),
    ("Tip: Ask your clinic whether the spray is covered by insurance.", "item", "advice"),
    ("After my second infusion the fog lifted completely.", "sentence", "first person"),
    ("The clinic I visited was calm and welcoming.", "sentence", "first person"),
])
def test_headings_questions_advice_and_testimonials_are_skipped(text, kind, reason, kb):
    result = assess(text, kind, kb.vocabulary)
    assert not result.checkworthy, result
    assert reason in result.reason


def test_a_labelled_list_item_is_checked_as_its_statement(kb):
    item = ("Reduced Suicidal Ideation: Strong evidence supports its rapid effect in decreasing "
            "suicidal thoughts.")
    assert split_label(item) == ("Reduced Suicidal Ideation", item.split(": ", 1)[1])
    result = assess(item, "item", kb.vocabulary)
    assert result.checkworthy and result.category == "finding", result
    units = segment(f"## Benefits\n\n- {item}\n- Rapid Relief: ketamine acts within hours.\n")
    assert [(u.kind, u.text) for u in units[1:]] == [
        ("item", item), ("item", "Rapid Relief: ketamine acts within hours.")]
    assert all(assess(u.text, u.kind, kb.vocabulary).checkworthy for u in units[1:])


def test_a_clause_before_a_colon_is_no_label():
    sentence = "The trial found two effects: faster relief and fewer relapses."
    assert split_label(sentence) == (None, sentence)


def test_labelled_items_in_an_article_are_checked_and_their_headings_skipped(kb):
    article = ("Potential Risks and Side Effects:\n\n"
               "- Reduced Suicidal Ideation: Strong evidence supports its rapid effect in decreasing "
               "suicidal thoughts.\n")
    sentences = kb.check(article).sentences
    assert [(s.kind, s.checkworthy) for s in sentences] == [("sentence", False), ("item", True)]
    assert "heading" in sentences[0].reason


# --- 2. declaratives without a field word or a final full stop ---------------------------------


@pytest.mark.parametrize("claim", [
    "0-dimensional biomaterials lack inductive properties",
    "ALDH1 expression is associated with poorer prognosis for breast cancer primary tumors",
    "Mitochondria play a major role in apoptosis",
    "Adult tissue-resident macrophages possess a self-renewing capacity.",
    "There is a relation between Erythromycin use and hypertrophic pyloric stenosis.",
    "DUSP4 downregulation deactivates the Ras-ERK pathway",
    "DUSP4 decreases apoptosis.",
])
def test_declaratives_are_checked_without_field_words_or_a_full_stop(claim, kb):
    units = segment(claim)  # pasted alone, as a benchmark or a writer pastes a claim
    assert [(u.kind, u.text) for u in units] == [("sentence", claim)]
    result = assess(claim, "sentence", kb.vocabulary)
    assert result.checkworthy, result.reason


def test_a_declarative_without_any_cue_is_a_statement(kb):
    result = assess("Mitochondria play a major role in apoptosis", "sentence", kb.vocabulary)
    assert (result.category, result.reason) == ("statement", "states a fact (a declarative sentence)")


@pytest.mark.parametrize("text", [
    "The weather was pleasant on the day of the visit.",
    "A short history of the clinic and its founders",
    "This allows for new ways of thinking, feeling and healing.",
    "During an infusion, you will be awake and able to listen to music.",
    "It worked well.",
])
def test_what_states_nothing_is_still_skipped(text, kb):
    assert not assess(text, "sentence", kb.vocabulary).checkworthy


def test_verbs_titles_and_declaratives():
    assert has_verb("Mitochondria play a major role in apoptosis")
    assert not has_verb("Side effects and risks of nasal sprays")
    assert not has_verb("Reduced suicidal ideation")  # a participle first is no verb
    assert is_title("Potential Risks and Side Effects")
    assert is_title("Top 10 Ketamine Facts")
    assert not is_title("Ketamine Reduces Suicidal Thoughts Within Hours")  # a headline that claims
    assert not is_title("The FDA approved Spravato in 2019")
    assert not is_title("FDA Approved: Yes (First approved March 5, 2019).")
    assert is_declarative("0-dimensional biomaterials lack inductive properties")
    assert not is_declarative("The Science Behind Ketamine Therapy")


def test_a_plain_text_heading_has_no_verb_unless_in_title_case():
    text = ("Side Effects\n\nNausea is common.\n\nKetamine Therapy Benefits\n\nMood lifts.\n\n"
            "Mitochondria play a major role in apoptosis\n\nThe End.")
    units = segment(text)
    assert [(u.kind, u.text) for u in units] == [
        ("heading", "Side Effects"), ("sentence", "Nausea is common."),
        ("heading", "Ketamine Therapy Benefits"), ("sentence", "Mood lifts."),
        ("sentence", "Mitochondria play a major role in apoptosis"), ("sentence", "The End.")]


# --- 3. Roman numerals are not the writer -----------------------------------------------------


@pytest.mark.parametrize("text", [
    "Mitochondrial complex I deficiency causes Leigh syndrome.",
    "Patients with type I diabetes had more infections after surgery.",
    "A phase I trial found no serious adverse events.",
    "Class I antiarrhythmics block sodium channels in the heart.",
    "Grade I toxicity occurred in 12% of patients.",
    "Stage I tumours were removed surgically in most patients.",
    "Factor I cleaves complement proteins in plasma.",
    "Complex I is inhibited by rotenone in isolated mitochondria.",
    "Stages I and II respond to surgery alone.",
    "A phase I/II trial enrolled 40 adults.",
    "Higher plasma levels of I-carnitine are correlated with cardiovascular events.",
])
def test_roman_numeral_i_is_not_first_person(text, kb):
    assert not first_person(text)
    result = assess(text, "sentence", kb.vocabulary)
    assert result.checkworthy, result.reason


@pytest.mark.parametrize("text", [
    "I felt calmer within a day.",
    "The drug I took helped within hours.",
    "The dose that I received was small.",
    "After the treatment I was fine for weeks.",
    "Honestly, I think it works.",
])
def test_the_writer_is_still_first_person(text):
    assert first_person(text)


# --- 4. sentences glued without a space ---------------------------------------------------------


def test_glued_sentences_are_split_and_keep_their_offsets():
    text = ("# Relief\n\nKetamine works within hours.It also reduces suicidal thoughts.Mood improved "
            "by 50%.The effect [2].Lasted a week.\n\n- Rapid relief: it acts within hours.It lasts a week.\n")
    units = segment(text)
    assert [(u.kind, u.text) for u in units] == [
        ("heading", "Relief"),
        ("sentence", "Ketamine works within hours."),
        ("sentence", "It also reduces suicidal thoughts."),
        ("sentence", "Mood improved by 50%."),
        ("sentence", "The effect [2]."),
        ("sentence", "Lasted a week."),
        ("item", "Rapid relief: it acts within hours."),
        ("sentence", "It lasts a week."),
    ]
    for unit in units:
        assert text[unit.start:unit.end] == unit.text


def test_abbreviations_initials_and_decimals_are_not_split():
    text = "Doses in the U.S.A. trial were 0.5 mg/kg, e.g.Smith and J.Stewart gave placebo vs.Saline."
    assert [u.text for u in segment(text)] == [text]


# --- 5. a placeholder notice in the reference list ---------------------------------------------

NOTED = """# Ketamine

Ketamine reduced depressive symptoms within 72 hours [1].

## References

1. Berman RM, Cappiello A, et al. Antidepressant effects of ketamine in depressed patients. 2000.
2. Zarate CA Jr, et al. A randomized trial of an N-methyl-D-aspartate antagonist. 2006.

Note: The references above are illustrative placeholders
"""


def test_a_placeholder_note_is_a_notice_not_an_entry():
    section = find_reference_section(NOTED, segment(NOTED))
    assert section is not None
    assert [e.id for e in section.entries] == ["1", "2"]
    assert "Note" not in section.entries[1].text  # not glued onto the last entry either
    assert [(n.text, n.placeholder) for n in section.notices] == [
        ("Note: The references above are illustrative placeholders", True)]
    notice = section.notices[0]
    assert NOTED[notice.start:notice.end] == notice.text
    problems = notice_problems(section)
    assert [(p.kind, p.reference) for p in problems] == [("placeholder", None)]
    assert "illustrative placeholders" in problems[0].message


def test_a_note_after_a_trailing_numbered_list_keeps_the_list():
    text = NOTED.replace("## References\n\n", "")
    section = find_reference_section(text, segment(text))
    assert section is not None and section.heading is None
    assert [e.id for e in section.entries] == ["1", "2"]
    assert [p.kind for p in notice_problems(section)] == ["placeholder"]


def test_a_plain_note_is_no_entry_and_no_problem():
    text = NOTED.replace("The references above are illustrative placeholders",
                         "all links were accessed in May 2024.")
    section = find_reference_section(text, segment(text))
    assert section is not None
    assert [e.id for e in section.entries] == ["1", "2"]
    assert [n.placeholder for n in section.notices] == [False]
    assert notice_problems(section) == []


def test_a_placeholder_note_outside_a_reference_list_is_a_problem_too():
    text = "Ketamine reduced symptoms [1].\n\n*These citations are examples only and may not exist.*\n"
    units = segment(text)
    assert find_reference_section(text, units) is None
    assert [p.kind for p in notice_problems(None, units)] == ["placeholder"]


def test_the_checker_neither_lists_nor_checks_the_note(kb):
    result = kb.check(NOTED)
    assert [r.id for r in result.references] == ["1", "2"]
    assert not any("placeholders" in s.text and s.checkworthy for s in result.sentences)
    note = "The references above are illustrative placeholders, not real sources."
    assert "about the article" in assess(note, "sentence", kb.vocabulary).reason


def test_the_checker_reports_the_placeholder_notice(kb):
    problems = [p for p in kb.check(NOTED).problems if p.kind == "placeholder"]
    assert len(problems) == 1 and "illustrative placeholders" in problems[0].message


# --- 6. entries without authors or year resolve by title ---------------------------------------


def test_a_regulatory_document_resolves_by_its_title(bundled):
    reference = entry("- FDA Approval Information for Spravato® (esketamine)")
    assert reference.year is None and reference.doi is None
    resolved = resolve(reference, bundled.build)
    assert resolved.problem is None, resolved.detail
    assert resolved.resolved is not None and resolved.resolved.id in SPRAVATO_APPROVALS
    assert resolved.resolved.match == "title"
    assert resolved.resolved.confidence < 0.9  # a title alone is less certain than a confirmed one


def test_an_access_date_is_no_publication_year(bundled):
    reference = entry("FDA approval information for Spravato (esketamine). Accessed 3 May 2024.")
    resolved = resolve(reference, bundled.build)
    assert resolved.resolved is not None and resolved.resolved.id in SPRAVATO_APPROVALS


def test_a_title_only_match_needs_the_year_it_gives(bundled):
    resolved = resolve(entry("FDA Approval Information for Spravato (esketamine). 2010."), bundled.build)
    assert resolved.resolved is None and resolved.problem == "unresolved"


@pytest.mark.parametrize("text", [
    "Ketamine for treatment-resistant depression",
    "Adults with unipolar major depression",
    "Information about depression and anxiety treatments",
    "Spravato patient guide to side effects and costs",
    "Mitochondria play a major role in apoptosis",
    "Esketamine nasal spray for depression: a review of trials",
])
def test_title_only_matching_does_not_resolve_common_words(text, bundled):
    resolved = resolve(entry(text), bundled.build)
    assert resolved.resolved is None, resolved.resolved
    assert resolved.problem == "unresolved"


def test_title_only_matching_in_a_small_knowledge_base(kb):
    found = resolve(entry("FDA approves new nasal spray medication for treatment-resistant depression"), kb.build)
    assert found.resolved is not None and found.resolved.id == "fda2019spravato"
    assert resolve(entry("Ketamine for treatment-resistant depression"), kb.build).resolved is None
