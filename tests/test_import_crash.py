"""`kb import` and `kb add` killed at random points leave the corpus before or after, never between.

Each run copies a corpus that already holds imported records, starts the real command in a
subprocess, SIGKILLs it after a random delay, and then reads the corpus the way the tool does
(``load_corpus``, which first repairs an interrupted import). What it reads must be exactly the
untouched copy or exactly a clean import of the same input into another copy: every file under
the corpus, raw payloads included. The next import must then finish the job and a second one
must add nothing.

The delays are drawn around the commit window, measured from the clean run, so that many kills
land while files are being staged or renamed; the figures are printed (``pytest -s``).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from kb.config import Settings
from kb.corpus.importer import BATCH_THRESHOLD, import_files
from kb.corpus.loader import corpus_fingerprint, load_corpus
from kb.corpus.records import JOURNAL, LOCK_FILE, RAW_DIR, RECORDS_DIR, TEMP_SUFFIX

KB = [sys.executable, "-m", "kb"]
DATA = Path(__file__).parent / "data"
MINI_CORPUS = DATA / "corpus"
KETAMINE = (DATA / "fixtures" / "pubmed_xml" / "metapub_pmid_38011560.xml").read_text()
IMPORT_RUNS = 50  # alternating between a batch import and a per-record-files import
ADD_RUNS = 8


# --- generated inputs ---------------------------------------------------------------------


def medline(count: int, start: int = 0, abstracts: bool = True) -> str:
    """MEDLINE records with PMIDs and DOIs; without *abstracts* a later import can enrich them."""
    out = []
    for i in range(start, start + count):
        lines = [f"PMID- {31000000 + i}", "OWN - NLM", f"DP  - {2000 + i % 24} Mar",
                 f"TI  - Synthetic trial {i} of ketamine infusion in treatment-resistant depression.",
                 f"FAU - Tester{i}, Alex", f"AU  - Tester{i} A", "JT  - Journal of Generated Trials",
                 f"VI  - {i % 40 + 1}", f"PG  - {i}-{i + 9}", f"LID - 10.5555/gen.{i} [doi]"]
        if abstracts:
            lines.append(f"AB  - BACKGROUND: Ketamine was given to {i + 10} adults. RESULTS: "
                         f"Depressive symptoms fell by {i % 17 + 3} points within 24 hours. "
                         "CONCLUSIONS: The effect was rapid.")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def ris(count: int, abstracts: bool = True) -> str:
    """RIS records with DOIs; without *abstracts* a later import can enrich them."""
    out = []
    for i in range(count):
        lines = ["TY  - JOUR", f"TI  - Generated cohort study {i} of esketamine nasal spray",
                 f"AU  - Writer{i}, Sam", f"PY  - {2005 + i % 19}", "JO  - Generated Psychiatry",
                 f"DO  - 10.5556/ris.{i}"]
        if abstracts:
            lines.append(f"AB  - Esketamine reduced suicidal ideation in {i + 5} patients. "
                         "Dissociation was transient.")
        out.append("\n".join([*lines, "ER  - "]))
    return "\n".join(out) + "\n"


def pubmed_article(pmid: int, abstract: bool = True) -> str:
    """One <PubmedArticle> as efetch returns it."""
    text = (f"<AbstractText>Ketamine lowered depression scores by {pmid % 13 + 2} points in "
            f"study {pmid}.</AbstractText>" if abstract else "")
    return (f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}'
            f"</PMID><Article><Journal><JournalIssue><Volume>{pmid % 50}</Volume><PubDate><Year>"
            f"{2000 + pmid % 24}</Year></PubDate></JournalIssue><Title>Generated Psychiatry</Title>"
            f"</Journal><ArticleTitle>Fetched trial {pmid} of ketamine for depression."
            f"</ArticleTitle><Abstract>{text}</Abstract><AuthorList><Author><LastName>Fetch{pmid}"
            "</LastName><ForeName>R</ForeName></Author></AuthorList></Article></MedlineCitation>"
            "</PubmedArticle>")


def article_set(articles: list[str]) -> str:
    return '<?xml version="1.0"?>\n<PubmedArticleSet>' + "".join(articles) + "</PubmedArticleSet>\n"


# --- reading a corpus's state ---------------------------------------------------------------


def tree_digest(corpus: Path) -> str:
    """SHA-256 over every file under *corpus* (raw payloads too), except the lock file."""
    digest = hashlib.sha256()
    for path in sorted(p for p in corpus.rglob("*") if p.is_file() and p.name != LOCK_FILE):
        digest.update(path.relative_to(corpus).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def leftovers(corpus: Path) -> str:
    """How an import was interrupted: "journal" (committed, to be rolled forward), "staged"
    (temporary files only, to be deleted) or "" (not mid-transaction)."""
    records = corpus / RECORDS_DIR
    names = [p.name for folder in (records, records / RAW_DIR) if folder.is_dir()
             for p in folder.iterdir()]
    if JOURNAL in names:
        return "journal"
    return "staged" if any(n.startswith(".") and n.endswith(TEMP_SUFFIX) for n in names) else ""


class State:
    """What the tool reads from a corpus: the files, the fingerprint and the source ids."""

    def __init__(self, corpus: Path) -> None:
        loaded = load_corpus(corpus)  # repairs an interrupted import first
        assert not loaded.errors, loaded.errors[:3]
        assert not leftovers(corpus)
        self.files = tree_digest(corpus)
        self.fingerprint = corpus_fingerprint(corpus)
        self.sources = sorted(loaded.sources)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and (self.files, self.fingerprint, self.sources) == (
            other.files, other.fingerprint, other.sources)

    __hash__ = None  # type: ignore[assignment]


def kill_after(command: list[str], delay: float, env: dict[str, str] | None = None) -> str:
    """Run *command*, SIGKILL it after *delay* seconds; return "finished" or "killed"."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return "killed"
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    return "finished"


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    return time.monotonic() - started


def tally(outcomes: dict[str, int], ran: str, mid: str, state: State, before: State,
          after: State) -> None:
    outcomes[ran] += 1
    if mid:
        outcomes["mid-transaction"] += 1
        outcomes[f"mid: {mid}"] += 1
    if state == before:
        outcomes["before"] += 1
    elif state == after:
        outcomes["after"] += 1
    else:
        raise AssertionError(f"the corpus is neither before nor after the import: {outcomes}")


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.slow
def test_imports_killed_at_random_points_leave_the_corpus_before_or_after(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    # A batch import (more than BATCH_THRESHOLD new records: one .jsonl and one raw .jsonl) that
    # also enriches 40 records already on disk, and a small import of per-record files that
    # enriches 20: both write many files in one transaction.
    big = inputs / "big.nbib"
    big.write_text(medline(BATCH_THRESHOLD + 60), encoding="utf-8")
    small = inputs / "small.ris"
    small.write_text(ris(60), encoding="utf-8")
    seed = [inputs / "seed.nbib", inputs / "seed.ris"]
    seed[0].write_text(medline(40, abstracts=False), encoding="utf-8")
    seed[1].write_text(ris(20, abstracts=False), encoding="utf-8")
    base = tmp_path / "base"
    shutil.copytree(MINI_CORPUS, base)
    import_files(seed, Settings(corpus_dir=base, index_dir=tmp_path / "index"), progress=False)

    expected: dict[Path, tuple[State, State, float]] = {}
    before = State(base)
    for path in (big, small):
        clean = tmp_path / f"after-{path.stem}"
        shutil.copytree(base, clean)
        took = timed([*KB, "--corpus-dir", str(clean), "import", str(path), "-q"])
        after = State(clean)
        assert after != before
        expected[path] = (before, after, took)

    rng = random.Random(20261127)
    outcomes = dict.fromkeys(["killed", "finished", "mid-transaction", "mid: staged",
                              "mid: journal", "before", "after"], 0)
    started = time.monotonic()
    for run in range(IMPORT_RUNS):
        path = big if run % 2 == 0 else small
        before, after, took = expected[path]
        corpus = tmp_path / f"run{run}"
        shutil.copytree(base, corpus)
        # Interpreter start-up takes the first half or so; the commit sits near the end.
        ran = kill_after([*KB, "--corpus-dir", str(corpus), "import", str(path), "-q"],
                         rng.uniform(0.45 * took, 1.1 * took))
        mid = leftovers(corpus)
        tally(outcomes, ran, mid, State(corpus), before, after)
        settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
        import_files([path], settings, progress=False)  # the next import finishes the job
        assert tree_digest(corpus) == after.files
        again = import_files([path], settings, progress=False)
        assert again.added == [] and again.merged == []
        assert tree_digest(corpus) == after.files
        shutil.rmtree(corpus)
    print(f"\nkb import: {IMPORT_RUNS} runs in {time.monotonic() - started:.0f} s: {outcomes}")
    assert outcomes["killed"] >= IMPORT_RUNS // 3, outcomes
    assert outcomes["mid-transaction"] >= 5, outcomes  # the kills really interrupted commits
    assert outcomes["before"] >= 1 and outcomes["after"] >= 1, outcomes


@pytest.mark.slow
def test_add_killed_at_random_points_leaves_the_corpus_before_or_after(
        tmp_path: Path, httpserver: HTTPServer) -> None:
    ketamine = KETAMINE[KETAMINE.index("<PubmedArticle>"):KETAMINE.rindex("</PubmedArticleSet>")]
    pmids = list(range(32000000, 32000080))

    def efetch(request: Request) -> Response:
        wanted = request.args.get("id", "").split(",")
        articles = [ketamine if p == "38011560" else pubmed_article(int(p))
                    for p in wanted if p.isdigit()]
        return Response(article_set(articles), content_type="text/xml")

    httpserver.expect_request("/eutils/efetch.fcgi").respond_with_handler(efetch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(KB_PUBMED_URL=httpserver.url_for("/eutils"), KB_CONTACT_EMAIL="ci@example.org")
    base = tmp_path / "base"
    shutil.copytree(MINI_CORPUS, base)
    seed = tmp_path / "seed.xml"  # 20 of the works are already there, without abstracts
    seed.write_text(article_set([pubmed_article(p, abstract=False) for p in pmids[:20]]),
                    encoding="utf-8")
    import_files([seed], Settings(corpus_dir=base, index_dir=tmp_path / "index"), progress=False)
    identifiers = ["pmid:38011560", *(f"pmid:{p}" for p in pmids)]

    def command(corpus: Path) -> list[str]:
        return [*KB, "--corpus-dir", str(corpus), "add", *identifiers]

    before = State(base)
    clean = tmp_path / "after"
    shutil.copytree(base, clean)
    took = [timed(command(clean), env)]  # every full run times it again: see below
    after = State(clean)
    assert after != before

    rng = random.Random(20261128)
    outcomes = dict.fromkeys(["killed", "finished", "mid-transaction", "mid: staged",
                              "mid: journal", "before", "after"], 0)
    for run in range(ADD_RUNS):
        corpus = tmp_path / f"run{run}"
        shutil.copytree(base, corpus)
        typical = statistics.median(took)  # one slow first run must not skew every delay
        ran = kill_after(command(corpus), rng.uniform(0.35 * typical, 1.1 * typical), env)
        mid = leftovers(corpus)
        tally(outcomes, ran, mid, State(corpus), before, after)
        took.append(timed(command(corpus), env))  # the next add finishes the job
        assert tree_digest(corpus) == after.files
        shutil.rmtree(corpus)
    print(f"\nkb add: {ADD_RUNS} runs: {outcomes}")
    assert outcomes["killed"] >= 2, outcomes
