"""Citations (citeproc-py with the shipped CSL styles) and BibTeX / RIS / CSL-JSON exports."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from kb import citations
from kb.exports import EXPORT_FORMATS, bibtex, csl_json, export, ris
from kb.ingest import bibtex as bibtex_parser
from kb.models import Source


@pytest.fixture
def sources(kb) -> dict[str, Source]:
    return dict(kb.store.source_by_id)


def test_the_csl_styles_and_their_license_note_ship_with_the_package():
    for name in ("apa.csl", "vancouver.csl"):
        text = (citations.STYLE_DIR / name).read_text(encoding="utf-8")
        assert "creativecommons.org/licenses/by-sa/3.0" in text
    assert "Attribution-ShareAlike" in (citations.STYLE_DIR / "README.md").read_text(encoding="utf-8")


def test_vancouver_and_apa_come_from_citeproc(sources):
    feder = sources["feder2014efficacy"]
    assert citations.vancouver(feder) == (
        "Feder A, Parides MK, Murrough JW. Efficacy of intravenous ketamine for treatment of chronic "
        "posttraumatic stress disorder: a randomized clinical trial. JAMA Psychiatry. 2014;71(6):681–8. "
        "doi:10.1001/jamapsychiatry.2014.62")
    assert citations.apa(feder) == (
        "Feder, A., Parides, M. K., & Murrough, J. W. (2014). Efficacy of intravenous ketamine for "
        "treatment of chronic posttraumatic stress disorder: a randomized clinical trial. JAMA "
        "Psychiatry, 71(6), 681–688. https://doi.org/10.1001/jamapsychiatry.2014.62")


def test_citations_leave_out_unconfirmed_identifiers_and_keep_organisations_whole(sources):
    zarate = sources["zarate2006randomized"]  # its PMID is unverified
    assert "16894061" not in citations.vancouver(zarate) + citations.apa(zarate)
    assert citations.apa(zarate).startswith("Zarate, C. A., Jr., Singh, J. B., & Carlson, P. J. (2006).")
    fda = sources["fda2019spravato"]
    assert citations.vancouver(fda).startswith("U.S. Food and Drug Administration. FDA approves")
    assert citations.short_authors(fda) == "U.S. Food and Drug Administration"
    unconfirmed_doi = replace(sources["feder2014efficacy"],
                              verification={**sources["feder2014efficacy"].verification, "doi": "unverified"})
    assert "doi" not in citations.vancouver(unconfirmed_doi).lower()


def test_the_built_in_formatter_takes_over_when_citeproc_fails(sources, monkeypatch):
    monkeypatch.setattr(citations, "_format_cached", lambda style, item: None)
    feder = sources["feder2014efficacy"]
    assert citations.vancouver(feder).startswith("Feder A, Parides MK, Murrough JW. Efficacy")
    assert citations.apa(feder).startswith("Feder, A., Parides, M. K., & Murrough, J. W. (2014).")


def test_bibtex_export_round_trips_through_the_corpus_parser(sources):
    for source in sources.values():
        text = bibtex(source)
        parsed = bibtex_parser.parse(text, "export.bib")
        assert not [p for p in parsed.problems if p.severity == "error"], text
        (back,) = parsed.sources
        assert back.id == source.id
        assert back.title == source.title
        assert back.year == source.year
        assert back.container == source.container
        assert (back.volume, back.issue, back.pages) == (source.volume, source.issue, source.pages)
        assert back.doi == citations.confirmed_identifiers(source).get("doi", "")
        assert back.pmid == citations.confirmed_identifiers(source).get("pmid", "")
        assert len(back.authors) == len(source.authors)


def test_bibtex_escapes_latex_specials_and_names_unconfirmed_fields(sources):
    tricky = replace(sources["feder2014efficacy"], title="50% of {patients} & $x_1$ #1 ~ ^ \\ done")
    text = bibtex(tricky)
    assert r"50\% of \{patients\} \& \$x\_1\$ \#1" in text
    parsed = bibtex_parser.parse(text, "tricky.bib")
    assert parsed.sources and not [p for p in parsed.problems if p.severity == "error"]
    zarate = bibtex(sources["zarate2006randomized"])
    assert "% Unconfirmed metadata (check before relying on it): authors, pmid" in zarate
    assert "16894061" not in zarate
    assert "pages    = {856--864}" in zarate or "pages   = {856--864}" in zarate or "{856--864}" in zarate
    assert "author" in bibtex(sources["fda2019spravato"]) and "{U.S. Food and Drug Administration}" in bibtex(
        sources["fda2019spravato"])


def test_ris_export_is_well_formed(sources):
    text = ris(sources["berman2000antidepressant"])
    lines = text.split("\r\n")
    assert lines[0] == "TY  - JOUR" and lines[-2] == "ER  - " and lines[-1] == ""
    assert all(len(line) >= 6 and line[2:6] == "  - " for line in lines[:-1])
    assert "AU  - Berman, R. M." in lines and "SP  - 351" in lines and "EP  - 354" in lines
    assert "DO  - 10.1016/s0006-3223(99)00230-9" in lines and "AN  - 10686270" in lines
    zarate = ris(sources["zarate2006randomized"])
    assert "16894061" not in zarate and "N1  - Unconfirmed metadata: authors, pmid" in zarate
    assert ris(sources["fda2019spravato"]).startswith("TY  - GEN\r\nAU  - U.S. Food and Drug Administration\r\n")


def test_ris_export_round_trips_when_the_ris_reader_is_present(sources):
    reader = pytest.importorskip("kb.ingest.ris")
    source = sources["berman2000antidepressant"]
    parsed = reader.parse(ris(source), "export.ris")
    (back,) = parsed.sources
    assert back.title == source.title and back.year == source.year and back.doi == source.doi


def test_csl_json_export_is_a_one_item_array_citeproc_can_read(sources):
    from citeproc import Citation, CitationItem, CitationStylesBibliography, CitationStylesStyle, formatter
    from citeproc.source.json import CiteProcJSON

    items = json.loads(csl_json(sources["berman2000antidepressant"]))
    assert len(items) == 1
    item = items[0]
    assert item["type"] == "article-journal" and item["DOI"] == "10.1016/s0006-3223(99)00230-9"
    assert item["PMID"] == "10686270" and item["author"][0] == {"family": "Berman", "given": "R. M."}
    style = CitationStylesStyle(str(citations.STYLE_DIR / "apa.csl"), validate=False)
    bibliography = CitationStylesBibliography(style, CiteProcJSON(items), formatter.plain)
    bibliography.register(Citation([CitationItem(item["id"])]))
    assert str(bibliography.bibliography()[0]).startswith("Berman, R. M., Cappiello, A.")
    zarate = json.loads(csl_json(sources["zarate2006randomized"]))[0]
    assert "PMID" not in zarate and zarate["note"] == "Unconfirmed metadata: authors, pmid"
    assert zarate["author"][0] == {"family": "Zarate", "given": "C. A.", "suffix": "Jr."}


def test_unknown_export_format_is_refused():
    with pytest.raises(ValueError, match="bibtex, ris, csl-json"):
        export(Source(id="x", type="article", title="t"), "docx")


@pytest.mark.parametrize("fmt", list(EXPORT_FORMATS))
def test_export_route_sends_a_download(client, fmt):
    response = client.get(f"/api/v1/sources/berman2000antidepressant/export?format={fmt}")
    assert response.status_code == 200
    spec = EXPORT_FORMATS[fmt]
    assert response.headers["Content-Type"] == spec.media_type
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="berman2000antidepressant.{spec.extension}"')
    assert "Antidepressant effects of ketamine" in response.data.decode()


def test_export_route_defaults_to_bibtex_and_finds_sources_by_doi(client):
    response = client.get("/api/v1/sources/doi:10.1001/jamapsychiatry.2014.62/export")
    assert response.status_code == 200 and response.data.startswith(b"% feder2014efficacy")
    missing = client.get("/api/v1/sources/nobody1999/export?format=ris")
    assert missing.status_code == 404 and missing.get_json()["ok"] is False
