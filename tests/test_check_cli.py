"""`kb check`: formats, stdin, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kb.cli import cli

ARTICLES = Path(__file__).parent / "data" / "articles"


def test_text_summary_and_default_exit_status(run_cli):
    result = run_cli("check", str(ARTICLES / "numbered.md"))
    assert result.exit_code == 1  # a contradicted sentence and citations that do not back theirs
    assert "[CONTRADICTED] The antidepressant benefit" in result.output
    assert "Failing: contradicted, citation" in result.output


def test_exit_zero_when_nothing_fails(run_cli):
    result = run_cli("check", str(ARTICLES / "superscripts.txt"), "--fail-on", "citation")
    assert result.exit_code == 0, result.output
    assert run_cli("check", str(ARTICLES / "numbered.md"), "--fail-on", "none").exit_code == 0


def test_fail_on_references_and_placeholders(run_cli):
    assert run_cli("check", str(ARTICLES / "superscripts.txt"), "--fail-on", "reference").exit_code == 1
    assert run_cli("check", str(ARTICLES / "numbered.md"), "--fail-on", "placeholder").exit_code == 1
    result = run_cli("check", str(ARTICLES / "numbered.md"), "--fail-on", "bogus")
    assert result.exit_code == 2 and "unknown condition" in result.output


def test_json_is_the_api_document(run_cli, client):
    text = (ARTICLES / "author_year.txt").read_text(encoding="utf-8")
    result = run_cli("check", str(ARTICLES / "author_year.txt"), "--format", "json", "--fail-on", "none")
    assert result.exit_code == 0
    printed = json.loads(result.output)
    api = client.post("/api/v1/check", json={"text": text, "content_type": "text"}).get_json()
    printed.pop("seconds"), api.pop("seconds")
    assert printed == api


def test_markdown_and_html_reports(run_cli):
    md = run_cli("check", str(ARTICLES / "numbered.md"), "--format", "md", "--fail-on", "none")
    assert md.exit_code == 0 and "## Evidence check" in md.output and "[^kb1]:" in md.output
    html = run_cli("check", str(ARTICLES / "article.html"), "--format", "html", "--fail-on", "none")
    assert html.exit_code == 0 and html.output.startswith("<!doctype html>") and "<details" in html.output
    assert "<script" not in html.output


def test_reads_stdin(settings):
    runner = CliRunner()
    base = ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]
    result = runner.invoke(cli, [*base, "check", "-", "--format", "json"],
                           input="The FDA approved Spravato nasal spray in 2019 for treatment-resistant "
                                 "depression in adults.")
    assert result.exit_code == 0
    assert json.loads(result.output)["claims"][0]["verdict"] == "supported"


def test_input_errors_exit_two(run_cli, tmp_path):
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    result = run_cli("check", str(empty))
    assert result.exit_code == 2 and "empty" in result.output
    binary = tmp_path / "scan.pdf"
    binary.write_bytes(b"%PDF-1.7\x00\x00\x01")
    result = run_cli("check", str(binary))
    assert result.exit_code == 2 and "binary" in result.output
    assert run_cli("check", str(tmp_path / "missing.md")).exit_code == 2
