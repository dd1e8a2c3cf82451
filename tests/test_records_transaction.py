"""The records transaction: staged files, the journal as commit point, recovery, the lock.

Crashes are simulated in process: a journal and staged files written by hand, a failure right
after the commit point, a failure between two renames, an exception while staging. The slow
suite (test_import_crash.py) kills real imports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kb.config import Settings
from kb.corpus import records
from kb.corpus.importer import Importer, import_files
from kb.corpus.loader import corpus_fingerprint, load_corpus
from kb.errors import CorpusError
from kb.ingest.medline import parse as parse_medline

FIXTURES = Path(__file__).parent / "data" / "fixtures"
MINI_CORPUS = Path(__file__).parent / "data" / "corpus"
NBIB = FIXTURES / "medline" / "rispy_example_pubmed.nbib"  # three records


def tree(corpus: Path) -> dict[str, bytes]:
    """Every file under *corpus* and its bytes."""
    return {p.relative_to(corpus).as_posix(): p.read_bytes()
            for p in sorted(corpus.rglob("*")) if p.is_file()}


def no_leftovers(corpus: Path) -> bool:
    return not [name for name in tree(corpus)
                if name.endswith((records.TEMP_SUFFIX, records.JOURNAL))]


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(MINI_CORPUS, folder)
    return folder


@pytest.fixture()
def after(tmp_path: Path, corpus: Path) -> dict[str, bytes]:
    """The files a clean import of NBIB leaves (into a copy of the same corpus)."""
    clean = tmp_path / "clean"
    shutil.copytree(corpus, clean)
    import_files([NBIB], Settings(corpus_dir=clean, index_dir=tmp_path / "i"), progress=False)
    return tree(clean)


def test_a_crash_right_after_the_journal_is_rolled_forward_by_the_next_reader(
        corpus: Path, after: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    before = tree(corpus)

    def crash(records_dir: Path, renames: list[list[str]]) -> None:
        raise KeyboardInterrupt  # stands in for a kill between the commit point and the renames

    monkeypatch.setattr(records, "_apply", crash)
    with pytest.raises(KeyboardInterrupt):
        import_files([NBIB], Settings(corpus_dir=corpus, index_dir=corpus / "i"), progress=False)
    monkeypatch.undo()
    journal = json.loads((corpus / "records" / records.JOURNAL).read_text())
    assert len(journal["renames"]) == 6  # three records, three raw payloads
    assert {k: v for k, v in tree(corpus).items() if not k.endswith(records.TEMP_SUFFIX)
            and not k.endswith(records.JOURNAL)} == before  # nothing visible yet
    loaded = load_corpus(corpus)
    assert not loaded.errors and "griffin2020time" in loaded.sources
    assert tree(corpus) == after and no_leftovers(corpus)


def test_a_crash_between_two_renames_is_finished_not_left_half_done(
        corpus: Path, after: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    real_replace = os.replace
    calls = []

    def replace_then_crash(src: str | Path, dst: str | Path) -> None:
        calls.append(dst)
        if len(calls) == 4:  # the journal, two renames done, then the kill
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(records.os, "replace", replace_then_crash)
    with pytest.raises(KeyboardInterrupt):
        import_files([NBIB], Settings(corpus_dir=corpus, index_dir=corpus / "i"), progress=False)
    monkeypatch.undo()
    half = tree(corpus)
    assert sum(name.startswith("records/raw/") and not name.endswith(records.TEMP_SUFFIX)
               for name in half) == 2  # a reader without recovery would see half an import
    assert records.recover(corpus) is True
    assert tree(corpus) == after
    assert records.recover(corpus) is False  # nothing left to do, and it is idempotent


def test_a_journal_and_staged_files_written_by_hand_are_rolled_forward(corpus: Path) -> None:
    folder = corpus / "records"
    (folder / "raw").mkdir(parents=True)
    record = records.StoredRecord(source=parse_medline(NBIB.read_text(), "x.nbib").sources[0],
                                  format="medline", raw="raw/one.txt")
    (folder / ".one.json.abc.tmp").write_text(json.dumps(record.to_dict()))
    (folder / "raw" / ".one.txt.abc.tmp").write_text("PMID- 1\n")
    (folder / "raw" / "two.txt").write_text("renamed before the crash\n")
    (folder / records.JOURNAL).write_text(json.dumps({"schema": 1, "renames": [
        ["raw/.one.txt.abc.tmp", "raw/one.txt"], ["raw/.two.txt.abc.tmp", "raw/two.txt"],
        [".one.json.abc.tmp", "one.json"]]}))
    loaded = load_corpus(corpus)
    assert not loaded.errors and record.source.id in loaded.sources
    assert sorted(tree(folder)) == ["one.json", "raw/one.txt", "raw/two.txt"]
    assert (folder / "raw" / "two.txt").read_text() == "renamed before the crash\n"


def test_staged_files_without_a_journal_are_discarded(corpus: Path) -> None:
    fingerprint = corpus_fingerprint(corpus)
    before = tree(corpus)
    folder = corpus / "records"
    (folder / "raw").mkdir(parents=True)
    (folder / ".x.json.k2j.tmp").write_text('{"schema": 1, "source": {"id": "x", "title": "T"}}')
    (folder / "raw" / ".x.txt.k2j.tmp").write_text("raw")
    (folder / "..journal.q1.tmp").write_text('{"renames": [')  # a journal killed mid-write
    assert len(load_corpus(corpus).sources) == 5
    assert tree(corpus) == before and corpus_fingerprint(corpus) == fingerprint


def test_an_exception_while_staging_leaves_nothing_behind(corpus: Path) -> None:
    before = tree(corpus)
    with pytest.raises(RuntimeError), records.transaction(corpus) as tx:
        tx.write(corpus / "records" / "a.json", "{}")
        tx.write(corpus / "records" / "raw" / "a.txt", "raw")
        raise RuntimeError("the import failed half way")
    assert tree(corpus) == before


def test_a_transaction_refuses_paths_outside_records(corpus: Path) -> None:
    with pytest.raises(ValueError, match="not inside"), records.transaction(corpus) as tx:
        tx.write(corpus / "references" / "evil.bib", "@article{x, title={T}}")


def test_a_tampered_journal_stops_with_a_clear_message(corpus: Path) -> None:
    folder = corpus / "records"
    folder.mkdir()
    (folder / records.JOURNAL).write_text(json.dumps(
        {"schema": 1, "renames": [["../references/.x.tmp", "../references/mini.bib"]]}))
    with pytest.raises(CorpusError, match="records/.journal.*unreadable import journal"):
        load_corpus(corpus)
    assert (corpus / "references" / "mini.bib").is_file()


def test_readers_with_nothing_to_repair_write_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    shutil.copytree(MINI_CORPUS, folder)
    assert records.recover(folder) is False
    load_corpus(folder)
    assert not (folder / "records").exists()


HOLD_THE_LOCK = """
import sys, time
from pathlib import Path
from kb.corpus.records import locked
with locked(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(1.0)
"""


def test_recovery_waits_for_a_writer_holding_the_lock(corpus: Path) -> None:
    (corpus / "records").mkdir()
    (corpus / "records" / ".staged.json.w1.tmp").write_text("{}")  # the writer's staged file
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(corpus)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        assert records.recover(corpus) is True  # a dead writer's file, once the lock is free
        assert time.monotonic() - started > 0.5
    finally:
        holder.wait(timeout=10)


def test_two_importers_racing_add_each_work_once(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "i")
    result = parse_medline(NBIB.read_text(), str(NBIB))
    first, second = Importer(settings.corpus_dir), Importer(settings.corpus_dir)
    first.add(result, "medline", str(NBIB))
    second.add(result, "medline", str(NBIB))  # read the corpus before the first one wrote
    assert len(first.commit().added) == 3
    late = second.commit()
    assert late.added == [] and len(late.skipped) == 3  # placed again against the new corpus
    assert len(load_corpus(settings.corpus_dir).sources) == 3
