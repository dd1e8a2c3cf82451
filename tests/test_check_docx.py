"""Word drafts (.docx) in the checker: the web API, the /check page and `kb check`.

Every .docx here is built with python-docx in the test, so the files are ours and real Word
containers (not hand-made zips), except the hostile ones, which are made with zipfile on purpose.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import docx
import pytest

from kb.check.word import MAX_UNCOMPRESSED_BYTES, docx_to_text

CLAIM = "One ketamine infusion reduced PTSD symptom severity 24 hours later more than midazolam."


def _draft() -> bytes:
    document = docx.Document()
    document.add_heading("Ketamine for PTSD", level=1)
    document.add_paragraph(f"Background first. {CLAIM}")
    document.add_paragraph("The effect was seen in a small trial.", style="List Bullet")
    document.add_paragraph("It lasted about a week.", style="List Bullet")
    document.add_heading("Methods", level=2)
    document.add_paragraph("We read the trial reports.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _bomb() -> bytes:
    """A zip that declares a document.xml larger than the limit (zeros compress a thousandfold)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (MAX_UNCOMPRESSED_BYTES + 1))
    return out.getvalue()


def test_conversion_keeps_structure_as_markdown():
    text = docx_to_text(_draft())
    assert text == ("# Ketamine for PTSD\n\n"
                    f"Background first. {CLAIM}\n\n"
                    "- The effect was seen in a small trial.\n- It lasted about a week.\n\n"
                    "## Methods\n\nWe read the trial reports.\n")


def test_api_checks_an_uploaded_docx_with_offsets_into_the_text(client):
    data = {"file": (io.BytesIO(_draft()), "draft.docx")}
    response = client.post("/api/v1/check", data=data, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["content_type"] == "docx"
    assert body["text"] == docx_to_text(_draft())
    for claim in body["claims"]:  # every offset points into the returned (extracted) text
        assert body["text"][claim["start"]:claim["end"]] == claim["text"]
    found = {c["text"]: c for c in body["claims"]}
    assert found[CLAIM]["verdict"] == "supported"
    assert found[CLAIM]["start"] == body["text"].index(CLAIM)
    kinds = {c["text"]: c.get("kind") for c in body["claims"]}
    assert kinds["Ketamine for PTSD"] == "heading"
    assert kinds["The effect was seen in a small trial."] == "item"


def test_a_docx_renamed_or_sent_as_octet_stream_is_still_read(client):
    data = {"file": (io.BytesIO(_draft()), "draft.bin", "application/octet-stream")}
    body = client.post("/api/v1/check", data=data, content_type="multipart/form-data").get_json()
    assert body["content_type"] == "docx"


def test_the_check_page_takes_a_docx(client):
    data = {"file": (io.BytesIO(_draft()), "draft.docx"), "content_type": "docx"}
    response = client.post("/check", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    assert "ketamine infusion reduced" in response.get_data(as_text=True)


@pytest.mark.parametrize("payload,message", [
    (b"PK\x03\x04 truncated zip", "not a readable Word document"),
    (_bomb(), "would inflate"),
])
def test_damaged_and_hostile_docx_are_400s(client, payload, message):
    data = {"file": (io.BytesIO(payload), "draft.docx")}
    response = client.post("/api/v1/check", data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    page = client.post("/check", data={"file": (io.BytesIO(payload), "draft.docx")},
                       content_type="multipart/form-data")
    assert page.status_code == 400 and message in page.get_data(as_text=True)


def test_a_zip_that_is_no_word_document_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(Exception, match="not a Word document"):
        docx_to_text(out.getvalue(), "notes.zip")


def test_docx_content_type_needs_a_file(client):
    response = client.post("/api/v1/check", json={"text": CLAIM, "content_type": "docx"})
    assert response.status_code == 400
    assert 'field "file"' in response.get_json()["error"]


def test_cli_checks_a_docx(run_cli, tmp_path: Path):
    path = tmp_path / "draft.docx"
    path.write_bytes(_draft())
    result = run_cli("check", str(path), "--format", "json", "--fail-on", "none")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["content_type"] == "docx"
    claim = next(c for c in printed["claims"] if c["text"] == CLAIM)
    assert printed["text"][claim["start"]:claim["end"]] == CLAIM


def test_cli_refuses_a_damaged_docx_in_one_line(run_cli, tmp_path: Path):
    path = tmp_path / "draft.docx"
    path.write_bytes(b"PK\x03\x04 not really")
    result = run_cli("check", str(path))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "draft.docx" in lines[0] and "Save As" in lines[0]
