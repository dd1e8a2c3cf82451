from kb.vocabulary import Vocabulary

GOOD = """
[condition.depressive-disorders]
label = "depressive disorders"
synonyms = ["depression"]

[condition.mdd]
label = "major depressive disorder"
synonyms = ["MDD", "major depression"]
parents = ["depressive-disorders"]

[condition.trd]
label = "treatment-resistant depression"
synonyms = ["TRD"]
parents = ["mdd"]

[condition.social-anxiety]
label = "social anxiety disorder"
synonyms = ["SAD"]
"""


def load(text):
    return Vocabulary.parse(text, "vocabulary.toml")


def test_abbreviations_match_only_in_capitals_and_labels_any_case():
    vocab, problems = load(GOOD)
    assert problems == []
    assert vocab.match("Patients with SAD improved")["condition"] == ("social-anxiety",)
    assert "condition" not in vocab.match("patients felt sad")
    assert vocab.match("Treatment resistant depression responded")["condition"] == ("trd",)


def test_match_keeps_the_most_specific_term():
    vocab, _ = load(GOOD)
    # "depression" alone is also mentioned, but TRD is narrower
    assert vocab.match("ketamine in treatment-resistant depression")["condition"] == ("trd",)


def test_descendants_and_resolution_by_synonym():
    vocab, _ = load(GOOD)
    assert vocab.descendants("depressive-disorders") == {"depressive-disorders", "mdd", "trd"}
    assert vocab.resolve("TRD").id == "trd"
    assert vocab.resolve("major depression", "condition").id == "mdd"
    assert vocab.resolve("trd", "mechanism") is None


def test_cycle_unknown_parent_and_shared_synonym_are_reported_with_lines():
    text = """
[condition.a]
label = "alpha"
parents = ["b"]

[condition.b]
label = "beta"
parents = ["a"]

[condition.c]
label = "gamma"
synonyms = ["alpha"]
parents = ["nowhere"]
"""
    _, problems = load(text)
    messages = [str(p) for p in problems]
    assert any("vocabulary.toml:2:" in m and "cycle" in m for m in messages)
    assert any("vocabulary.toml:10:" in m and "already claimed by 'a'" in m for m in messages)
    assert any("vocabulary.toml:10:" in m and "unknown parent 'nowhere'" in m for m in messages)


def test_invalid_toml_names_the_line():
    _, problems = load("[condition.a]\nlabel = \n")
    assert problems and problems[0].line == 2
