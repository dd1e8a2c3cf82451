"""Rendered search pages are reused within a build, and never across builds."""

from kb.build import build
from kb.web import create_app
from kb.web.pages import _RENDERED


def test_a_rendered_search_page_is_reused_within_a_build_only(fresh_corpus):
    build(fresh_corpus)
    client = create_app(fresh_corpus).test_client()
    first = client.get("/search?q=ketamine+infusion")
    again = client.get("/search?q=ketamine+infusion")
    assert first.status_code == again.status_code == 200
    assert first.data == again.data
    bib = fresh_corpus.corpus_dir / "references" / "mini.bib"
    bib.write_text(bib.read_text() + "\n@article{new2024, title={Ketamine infusion trial}, year={2024}}\n")
    (fresh_corpus.corpus_dir / "summaries" / "new2024.md").write_text(
        '+++\nsource = "new2024"\n+++\n\n## Claims\n\n- A ketamine infusion trial reported a new finding.\n')
    build(fresh_corpus)
    after = client.get("/search?q=ketamine+infusion")
    assert after.status_code == 200 and after.data != first.data  # the new build's page


def test_errors_are_not_cached(client):
    assert client.get("/search?q=AND+OR").status_code == 400
    assert not any(key[1] == b"q=AND+OR" for key in _RENDERED._pages)
