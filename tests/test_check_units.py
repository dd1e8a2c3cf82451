"""The article checker's parts: reading input, segmentation, check-worthiness, citations."""

from __future__ import annotations

import pytest

from kb.check.references import find_citations, parse_entries, strip_citations
from kb.check.segment import content_type_for, decode_upload, detect_content_type, html_to_text, segment
from kb.check.verdict import content_words, is_cautious, is_negated
from kb.check.worthiness import assess
from kb.errors import BadRequest, PayloadTooLarge

# --- segmentation ---------------------------------------------------------------------------


def test_sentences_keep_abbreviations_decimals_and_symbols_whole():
    text = ("Berman et al. gave 0.5 mg/kg vs. saline, e.g. in one crossover trial. Dr. Lee used "
            "Spravato® at 56 mg. It worked.")
    units = segment(text)
    assert [u.text for u in units] == [
        "Berman et al. gave 0.5 mg/kg vs. saline, e.g. in one crossover trial.",
        "Dr. Lee used Spravato® at 56 mg.",
        "It worked.",
    ]


def test_offsets_point_into_the_text():
    text = "# Title\n\nFirst claim here. Second claim there.\n\n- an item\n  that wraps\n* another item\n"
    for unit in segment(text):
        assert text[unit.start:unit.end] == unit.text


def test_headings_and_bullets_are_units_of_their_own():
    text = ("# Ketamine today\nA paragraph line follows the heading.\n- First point without a stop\n"
            "- Second point\n\nSetext heading\n==============\n\nClosing sentence.")
    units = [(u.kind, u.text) for u in segment(text)]
    assert units == [
        ("heading", "Ketamine today"),
        ("sentence", "A paragraph line follows the heading."),
        ("item", "First point without a stop"),
        ("item", "Second point"),
        ("heading", "Setext heading"),
        ("sentence", "Closing sentence."),
    ]


def test_plain_text_heading_and_code_fences():
    units = segment("Results\n\nMood improved.\n\n```\nnot prose. at all.\n```\n")
    assert [(u.kind, u.text) for u in units] == [("heading", "Results"), ("sentence", "Mood improved.")]


def test_html_is_reduced_to_text_safely():
    html = ("<html><head><title>T</title><style>p{}</style></head><body><script>alert('x. y.')</script>"
            "<h2>Side &amp; effects</h2><p>Blood pressure rose &gt; 10 mm Hg<sup>3</sup>.</p>"
            "<ol><li>One</li><li>Two</li></ol><ul><li>Dot</li></ul><p>x m<sup>2</sup></p></body></html>")
    text = html_to_text(html)
    assert "alert" not in text and "p{}" not in text and "<" not in text.replace("> 10", "")
    assert "## Side & effects" in text
    assert "Blood pressure rose > 10 mm Hg[3]." in text
    assert "1. One\n2. Two" in text and "- Dot" in text
    assert "x m2" in text  # a superscript that is not a citation stays text


@pytest.mark.parametrize("text,hint,expected", [
    ("<p>Hello</p><p>there</p>", None, "html"),
    ("<!DOCTYPE html><title>x</title>", None, "html"),
    ("# Heading\n\ntext", None, "markdown"),
    ("Just words. More words.", None, "text"),
    ("<p>tags</p><p>as text</p>", "text/plain", "text"),
])
def test_content_type_detection(text, hint, expected):
    assert detect_content_type(text, hint) == expected


def test_content_type_from_file_names():
    assert content_type_for(None, "a.HTML") == "html"
    assert content_type_for(None, "a.markdown") == "markdown"
    assert content_type_for(None, "a.bin") is None


def test_uploads_must_be_text():
    assert decode_upload("Ketamine works.".encode("utf-8-sig"), 1000) == "Ketamine works."
    assert decode_upload("Ketamine".encode("utf-16"), 1000) == "Ketamine"
    with pytest.raises(BadRequest, match="binary"):
        decode_upload(b"%PDF-1.7\x00\x01\x02", 1000)
    with pytest.raises(BadRequest, match="not UTF-8"):
        decode_upload(b"caf\xe9 au lait", 1000)
    with pytest.raises(PayloadTooLarge):
        decode_upload(b"x" * 1001, 1000)


# --- check-worthiness ------------------------------------------------------------------------


@pytest.mark.parametrize("text,kind,reason", [
    ("Does ketamine help everyone?", "sentence", "question"),
    ("Talk to your psychiatrist before starting ketamine.", "sentence", "advice"),
    ("You should never drive after an infusion of ketamine.", "sentence", "advice"),
    ("I felt calmer within a day of my first ketamine session.", "sentence", "personal experience"),
    ("We believe ketamine will change psychiatry.", "sentence", "opinion"),
    ("What a time to be alive for depression research!", "sentence", "exclamation"),
    ("In this article we look at ketamine and depression.", "sentence", "about the article"),
    ("Ketamine works.", "sentence", "too short"),
    ("The weather was pleasant on the day of the visit.", "sentence", "no finding"),
    ("Ketamine and depression", "heading", "heading"),
])
def test_sentences_that_are_not_checked_say_why(text, kind, reason, kb):
    result = assess(text, kind, kb.vocabulary)
    assert not result.checkworthy
    assert reason in result.reason


@pytest.mark.parametrize("text,category", [
    ("The FDA approved esketamine nasal spray for adults in 2019.", "regulatory"),
    ("Ketamine commonly causes dissociation and raised blood pressure.", "safety"),
    ("Ketamine blocks NMDA receptors on inhibitory interneurons.", "mechanism"),
    ("A single ketamine infusion reduced depressive symptoms within a day.", "finding"),
    ("Around 71 adults took part at 18 sites in 2006.", "number"),
    ("Esketamine is given as a nasal spray in a clinic.", "statement"),
    ("In a phase I trial, ketamine improved depressive symptoms.", "finding"),
])
def test_checkable_sentences_name_their_category(text, category, kb):
    result = assess(text, "sentence", kb.vocabulary)
    assert result.checkworthy, result.reason
    assert result.category == category


# --- direction of a sentence -----------------------------------------------------------------


@pytest.mark.parametrize("text,cautious", [
    ("Ketamine improved depressive symptoms within 72 hours.", False),
    ("Ketamine did not improve depressive symptoms.", True),
    ("The benefit of a single infusion was short-lived.", True),
    ("Patients whose depression had not responded to two drugs improved with ketamine.", False),
    ("Symptoms improved after ketamine, while saline did not help.", False),
    ("Ketamine is completely safe and has no side effects.", False),
    ("Ketamine commonly causes dissociation.", True),
])
def test_direction(text, cautious):
    assert is_cautious(text) is cautious


def test_negation_in_the_main_clause_only():
    assert is_negated("Ketamine does not reduce suicidal thoughts.")
    assert not is_negated("It worked better than placebo, which did not.")


def test_content_words_are_stemmed_and_leave_out_function_words():
    assert content_words("Studies show ketamine improves mood") == content_words("ketamine improved moods")


# --- citations and reference lists -----------------------------------------------------------


def _keys(sentence, known=frozenset(), superscripts=False):
    return [(c.kind, c.keys) for c in find_citations(sentence, set(known), superscripts)]


def test_numeric_citations_with_lists_and_ranges():
    assert _keys("Mood improved [1].") == [("numeric", ("1",))]
    assert _keys("Mood improved [1,2] and [3-5].") == [("numeric", ("1", "2")), ("numeric", ("3", "4", "5"))]
    assert _keys("Mood improved [2\u20134].") == [("numeric", ("2", "3", "4"))]
    assert _keys("See the note[^a].") == [("footnote", ("a",))]


def test_superscript_citations_only_when_asked():
    assert _keys("Mood improved\u00b9\u207b\u00b3.", superscripts=True) == [("numeric", ("1", "2", "3"))]
    assert _keys("Mood improved\u00b9.", superscripts=False) == []


def test_author_year_citations():
    assert _keys("Mood improved (Berman et al., 2000; Zarate 2006).") == [
        ("author-year", ("Berman", "2000", "Zarate", "2006"))]
    assert _keys("Berman et al. (2000) showed it.") == [("author-year", ("Berman", "2000"))]
    assert _keys("As Duman and Aghajanian (2012) argued.") == [("author-year", ("Duman", "2012"))]
    assert _keys("Berman 2000 showed it.", known={"berman"}) == [("author-year", ("Berman", "2000"))]
    assert _keys("Berman 2000 showed it.") == []  # an unknown name with a bare year is not a citation
    assert _keys("In 2019, the FDA approved it. March 2019 was busy.", known={"fda"}) == []


def test_placeholders_in_sentences():
    kinds = [c.kind for c in find_citations("It cures cats [citation needed] (Author, Year) [?].", set(), False)]
    assert kinds == ["placeholder", "placeholder", "placeholder"]


def test_citations_are_stripped_for_matching():
    sentence = "Mood improved within 72 hours [1, 2] (Berman et al., 2000)."
    assert strip_citations(sentence, find_citations(sentence, set(), False)) == "Mood improved within 72 hours."


def test_reference_entries_numbered_apa_and_wrapped():
    text = ("1. Berman RM, Cappiello A. Antidepressant effects of ketamine. Biol Psychiatry. 2000;47:351-4.\n"
            "   doi:10.1016/S0006-3223(99)00230-9\n"
            "[2] Zarate CA Jr, et al. A randomized trial. Arch Gen Psychiatry. 2006. PMID: 16894061\n")
    entries = parse_entries(text, 0, len(text))
    assert [(e.id, e.number, e.year, e.first_author) for e in entries] == [
        ("1", 1, 2000, "Berman"), ("2", 2, 2006, "Zarate")]
    assert entries[0].doi == "10.1016/S0006-3223(99)00230-9"
    assert entries[1].pmid == "16894061"
    apa = "Duman, R. S., & Aghajanian, G. K. (2012). Synaptic dysfunction in depression. Science, 338, 68-72.\n"
    entry = parse_entries(apa, 0, len(apa))[0]
    assert (entry.id, entry.first_author, entry.year) == ("R1", "Duman", 2012)
