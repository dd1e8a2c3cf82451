from kb.corpus import summaries
from kb.corpus.loader import load_corpus
from kb.ingest import bibtex


def test_malformed_bibtex_names_file_and_line_and_the_rest_loads():
    text = """@article{good1, title={First}, year={2001}}

@article{broken, title={Unclosed, year={2002}

@article{good2, title={Second}, year={2003}}
"""
    result = bibtex.parse(text, "references/x.bib")
    assert [s.id for s in result.sources] == ["good1", "good2"]
    assert len(result.problems) == 1
    assert str(result.problems[0]).startswith("references/x.bib:3: error:")


def test_entry_without_title_or_year_is_reported():
    result = bibtex.parse("@article{a, year={2000}}\n@article{b, title={B}}\n", "r.bib")
    assert result.sources == []
    messages = [str(p) for p in result.problems]
    assert any("r.bib:1:" in m and "no title" in m for m in messages)
    assert any("r.bib:2:" in m and "no year" in m for m in messages)


def test_bibtex_decodes_latex_and_normalises_pages_and_identifiers():
    text = r"""@article{m, title={{M}{\"u}ller's {DNA} study}, author={M{\"u}ller, A. and Smith, B.},
  year={2019}, pages={10--20}, doi={https://doi.org/10.1000/ABC}, pmid={PMID: 123},
  verification={title: verified; doi: verified; pmid: unverified}}"""
    source = bibtex.parse(text, "r.bib").sources[0]
    assert source.title == "Müller's DNA study"
    assert source.authors == ("Müller, A.", "Smith, B.")
    assert source.pages == "10-20"
    assert source.doi == "10.1000/abc"
    assert source.pmid == "123"
    assert source.is_confirmed("doi") and not source.is_confirmed("pmid")


def test_summary_items_carry_stance_verification_and_tag_edits():
    text = """+++
source = "x2020"
design = "rct"
+++

Prose.

## Key results

- [unverified] Response was 50%.

## Claims

- It works.
- [limits] Small sample. {+relapse -mdd}
"""
    summary, problems = summaries.parse(text, "summaries/x2020.md")
    assert problems == []
    assert summary.paragraphs == ["Prose."]
    first, second, third = summary.items
    assert (first.section, first.index, first.confirmed, first.line) == ("key results", 1, False, 10)
    assert (second.stance, second.section, second.index) == ("supports", "claims", 1)
    assert (third.stance, third.add_tags, third.remove_tags, third.text) == (
        "limits", ("relapse",), ("mdd",), "Small sample.")


def test_summary_without_front_matter_is_reported():
    summary, problems = summaries.parse("no front matter\n", "summaries/bad.md")
    assert summary is None
    assert str(problems[0]).startswith("summaries/bad.md:1: error:")


def test_unknown_source_and_unknown_term_are_reported(fresh_corpus):
    (fresh_corpus.corpus_dir / "summaries" / "ghost.md").write_text(
        '+++\nsource = "ghost2020"\n+++\n\nText.\n', encoding="utf-8")
    path = fresh_corpus.corpus_dir / "summaries" / "feder2014efficacy.md"
    path.write_text(path.read_text(encoding="utf-8") + "- New claim. {+no-such-term}\n", encoding="utf-8")
    corpus = load_corpus(fresh_corpus.corpus_dir)
    messages = [str(p) for p in corpus.problems]
    assert any(m.startswith("summaries/ghost.md:2: error: summary for unknown source 'ghost2020'")
               for m in messages)
    assert any(m.startswith("summaries/feder2014efficacy.md:") and "no-such-term" in m for m in messages)
    # the rest of the corpus still loads
    assert len(corpus.sources) == 5


def test_claim_ids_are_stable_and_claims_are_tagged(fresh_corpus):
    first = load_corpus(fresh_corpus.corpus_dir)
    second = load_corpus(fresh_corpus.corpus_dir)
    assert [c.id for c in first.claims] == [c.id for c in second.claims]
    zarate = [c for c in first.claims if c.source_id == "zarate2006randomized"]
    trd = next(c for c in zarate if "TRD" in c.text)
    assert trd.tags["condition"] == ("trd",)
    assert str(trd.locator) == "claims, item 1"
    unverified = next(c for c in zarate if "d = 1.46" in c.text)
    assert unverified.confirmed is False
    limited = next(c for c in zarate if c.stance == "limits")
    assert "relapse" in limited.tags["outcome"]


def test_duplicate_doi_across_files_is_reported_and_merged(fresh_corpus):
    (fresh_corpus.corpus_dir / "references" / "zz-extra.bib").write_text(
        "@article{copy2000, title={Copy}, year={2000}, doi={10.1016/S0006-3223(99)00230-9}}\n",
        encoding="utf-8")
    corpus = load_corpus(fresh_corpus.corpus_dir)
    assert "copy2000" not in corpus.sources
    assert any("same DOI" in str(p) and "references/zz-extra.bib:1" in str(p) for p in corpus.problems)
    assert corpus.sources["berman2000antidepressant"].summary  # its summary still attaches
