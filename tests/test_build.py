import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kb.build import CURRENT, SCHEMA_VERSION, build, current_build, index_state
from kb.errors import CorpusError
from kb.knowledge_base import KnowledgeBase
from kb.query import SearchRequest


def test_build_writes_a_manifest_and_the_index_is_current(fresh_corpus):
    report = build(fresh_corpus)
    manifest = report.manifest
    assert manifest["counts"]["sources"] == 5
    assert manifest["counts"]["claims"] >= 10
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert len(manifest["corpus_fingerprint"]) == 64
    assert index_state(fresh_corpus)[0] == "current"
    (fresh_corpus.corpus_dir / "references" / "mini.bib").write_text(
        (fresh_corpus.corpus_dir / "references" / "mini.bib").read_text() + "\n% edited\n")
    assert index_state(fresh_corpus)[0] == "stale"


def test_a_failed_build_leaves_the_previous_index_serving(fresh_corpus):
    build(fresh_corpus)
    before = current_build(fresh_corpus.index_dir)
    (fresh_corpus.corpus_dir / "references" / "mini.bib").write_text("@article{broken, title={x\n")
    with pytest.raises(CorpusError):
        build(fresh_corpus)
    assert current_build(fresh_corpus.index_dir) == before
    kb = KnowledgeBase.open(fresh_corpus)
    assert kb.search(SearchRequest(q="ketamine")).total > 0


def test_a_killed_build_leaves_the_previous_index_serving(fresh_corpus):
    build(fresh_corpus)
    before = (fresh_corpus.index_dir / CURRENT).read_text()
    code = ("import sys, time; from pathlib import Path; from kb.config import Settings; "
            "import kb.search.whoosh_engine as w; original = w.write\n"
            "def slow(*a, **k):\n    original(*a, **k); time.sleep(30)\n"
            "w.write = slow\nfrom kb.build import build\n"
            f"build(Settings(corpus_dir=Path({str(fresh_corpus.corpus_dir)!r}), "
            f"index_dir=Path({str(fresh_corpus.index_dir)!r})))\n")
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while not list(fresh_corpus.index_dir.glob(".tmp-*/*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert (fresh_corpus.index_dir / CURRENT).read_text() == before
    assert KnowledgeBase.open(fresh_corpus).search(SearchRequest(q="ketamine")).total > 0
    build(fresh_corpus)  # the next build cleans up and succeeds
    assert not list(fresh_corpus.index_dir.glob(".tmp-*"))


def test_build_check_reports_file_line_and_exit_status_1(fresh_corpus, tmp_path):
    from click.testing import CliRunner

    from kb.cli import cli

    bib = fresh_corpus.corpus_dir / "references" / "mini.bib"
    bib.write_text(bib.read_text() + "\n@article{bad, title={Unclosed, year={2001}\n")
    result = CliRunner().invoke(cli, ["--corpus-dir", str(fresh_corpus.corpus_dir), "--index-dir",
                                      str(fresh_corpus.index_dir), "build", "--check"])
    assert result.exit_code == 1
    assert "corpus/references/mini.bib:" in result.output
    assert not fresh_corpus.index_dir.exists() or not (fresh_corpus.index_dir / CURRENT).exists()


def test_strict_build_fails_on_a_malformed_entry(fresh_corpus):
    bib = fresh_corpus.corpus_dir / "references" / "mini.bib"
    bib.write_text(bib.read_text() + "\n@article{bad, title={Unclosed, year={2001}\n")
    report = build(fresh_corpus)  # lenient: skips the bad entry, keeps the others
    assert report.manifest["counts"]["sources"] == 5
    assert report.manifest["problems"]["errors"] == 1
    with pytest.raises(CorpusError, match="mini.bib"):
        build(fresh_corpus, strict=True)


def test_manifest_is_json_and_lists_the_build(fresh_corpus):
    build(fresh_corpus)
    folder = current_build(fresh_corpus.index_dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["build"] == folder.name
