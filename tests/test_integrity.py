"""Builds verify themselves, the corpus refuses duplicate keys, and storage errors are one line.

Every damage here is done to real files of a real build (truncation, random bytes, deletion), every
storage error is a real condition of the file system (/dev/full, a tmpfs mounted full or read-only
in a user namespace, RLIMIT_FSIZE, a folder without write permission), and the CLI and the server
run as they do for users.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import MINI_CORPUS, ROOT, free_port, wait_for_port

from kb.build import (
    CURRENT,
    MANIFEST,
    VERIFIED,
    build,
    current_build,
    index_state,
    resolve_build,
    verify_build,
)
from kb.cli import cli
from kb.config import PROJECT_ROOT, Settings
from kb.corpus.loader import load_corpus
from kb.errors import CorpusError, IndexUnavailable, StorageError
from kb.files import new_file_mode, storing
from kb.ingest import bibtex
from kb.knowledge_base import KnowledgeBase
from kb.query import SearchRequest
from kb.web import create_app

PUBMED = ROOT / "tests" / "data" / "fixtures" / "pubmed_xml" / "metapub_pmid_38011560.xml"
RIS = ROOT / "tests" / "data" / "fixtures" / "ris" / "rispy_example_utf_chars.ris"
XXE = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
       "<PubmedArticleSet>&e;</PubmedArticleSet>\n")
# Subprocesses never write bytecode: a file-size limit would truncate the shared __pycache__.
ENV = {**os.environ, "KB_VERIFIER": "0", "KB_SEMANTIC": "0", "PYTHONDONTWRITEBYTECODE": "1"}
KB = [sys.executable, "-B", "-m", "kb"]


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mini corpus with two intact builds of it (the served one and the previous one)."""
    root = tmp_path_factory.mktemp("two-builds")
    shutil.copytree(MINI_CORPUS, root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", verifier=False,
                        semantic=False)
    build(settings)
    build(settings)
    return root


@pytest.fixture
def indexed(two_builds: Path, tmp_path: Path) -> Settings:
    """A writable copy of ``two_builds`` for one test to damage."""
    shutil.copytree(two_builds, tmp_path / "kb")
    return Settings(corpus_dir=tmp_path / "kb" / "corpus", index_dir=tmp_path / "kb" / "index",
                    verifier=False, semantic=False)


def builds(settings: Settings) -> list[Path]:
    return sorted((settings.index_dir / "builds").iterdir())


def served(settings: Settings) -> Path:
    folder = current_build(settings.index_dir)
    assert folder is not None
    return folder


def overwrite_middle(path: Path, count: int = 64) -> None:
    """Random bytes in the middle of *path*, its size unchanged: damage a size check cannot see."""
    with path.open("r+b") as handle:
        handle.seek(max(0, path.stat().st_size // 2 - count // 2))
        handle.write(os.urandom(count))


def damage(folder: Path, target: str) -> str:
    """Damage one file of a build in the way named; return the name its problem must carry."""
    if target == "store.sqlite":
        with (folder / "store.sqlite").open("r+b") as handle:
            handle.truncate(1000)
        return "store.sqlite"
    if target == "seg":
        segment = next(folder.glob("claims_*.seg"))
        overwrite_middle(segment)
        return segment.name
    if target == "toc":
        toc = next(folder.glob("_claims_*.toc"))
        toc.unlink()
        return toc.name
    if target == "match-claims.npz":
        with (folder / "match-claims.npz").open("r+b") as handle:
            handle.truncate(512)
        return "match-claims.npz"
    if target == "manifest":
        (folder / MANIFEST).write_bytes(os.urandom(200))
        return MANIFEST
    raise AssertionError(target)


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def run_kb(settings: Settings, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KB, "--corpus-dir", str(settings.corpus_dir), "--index-dir",
                           str(settings.index_dir), *args], capture_output=True, check=False, text=True,
                          env=ENV, timeout=120, **kwargs)  # type: ignore[call-overload]


def unshare_works() -> bool:
    """Whether this machine lets an unprivileged user namespace mount a tmpfs."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
                           capture_output=True, check=False)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(not unshare_works(),
                                      reason="unshare -rm (user and mount namespaces) is not allowed here")


def in_namespace(script: str) -> subprocess.CompletedProcess[str]:
    """Run a shell *script* as root of a fresh user and mount namespace (mounts vanish after)."""
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, check=False, text=True,
                          env=ENV, timeout=120)


def kb_command(settings: Settings, *args: str) -> str:
    return " ".join([*KB, "--corpus-dir", str(settings.corpus_dir), "--index-dir",
                     str(settings.index_dir), *args])


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


# --- 1. builds verify themselves -------------------------------------------------------------


def test_the_manifest_records_size_and_sha256_of_every_file(indexed):
    folder = served(indexed)
    files = json.loads((folder / MANIFEST).read_text())["files"]
    on_disk = {p.name for p in folder.iterdir() if p.is_file() and p.name not in {MANIFEST, VERIFIED}}
    assert set(files) == on_disk and {"store.sqlite", "match-claims.npz"} <= on_disk
    for name, entry in files.items():
        data = (folder / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert verify_build(folder) == []
    assert index_state(indexed)[0] == "current"


@pytest.mark.parametrize("target", ["store.sqlite", "seg", "toc", "match-claims.npz", "manifest"])
def test_a_damaged_build_is_never_served_the_previous_one_is(indexed, target):
    damaged, previous = served(indexed), builds(indexed)[0]
    file = damage(damaged, target)
    assert index_state(indexed)[0] == "corrupt"
    choice = resolve_build(indexed.index_dir)
    assert choice.build_dir == previous and choice.current == damaged.name
    assert [(p.build, p.file) for p in choice.problems] == [(damaged.name, file)]
    assert damaged.name in choice.reason() and file in choice.reason() and "kb build" in choice.reason()
    kb = KnowledgeBase.open(indexed)
    assert kb.build_dir == previous
    assert kb.search(SearchRequest(q="ketamine")).total > 0
    assert kb.match_claims("Ketamine reduced depressive symptoms within a day.")  # the .npz loads


def test_health_is_degraded_and_check_answers_with_a_truncated_match_index(indexed):
    damaged = served(indexed)
    damage(damaged, "match-claims.npz")
    client = create_app(indexed).test_client()
    response = client.get("/api/v1/health")
    body = response.get_json()
    assert response.status_code == 200 and body["ok"] is True
    assert body["status"] == "degraded" and body["build"] == builds(indexed)[0].name
    assert body["degraded"]["current"] == damaged.name
    assert body["degraded"]["problems"] == [{
        "build": damaged.name, "file": "match-claims.npz",
        "reason": "is 512 bytes, the manifest says "
                  f"{json.loads((damaged / MANIFEST).read_text())['files']['match-claims.npz']['bytes']}"
                  ": truncated or overwritten"}]
    check = client.post("/api/v1/check", json={"text": "Ketamine reduced depressive symptoms."})
    assert check.status_code == 200


def test_a_build_damaged_under_a_running_app_is_noticed_and_left(indexed):
    client = create_app(indexed).test_client()
    assert client.get("/api/v1/health").get_json()["status"] == "ok"
    damaged = served(indexed)
    damage(damaged, "seg")  # same size: only the checksum can tell
    body = client.get("/api/v1/health").get_json()
    assert body["status"] == "degraded" and body["build"] == builds(indexed)[0].name
    assert client.get("/api/v1/search?q=ketamine").status_code == 200


def test_no_intact_build_is_503_and_a_one_line_cli_error_and_kb_build_repairs(indexed):
    for folder in builds(indexed):
        damage(folder, "store.sqlite")
    with pytest.raises(IndexUnavailable, match="no other build is intact: rebuild it with: kb build"):
        KnowledgeBase.open(indexed)
    response = create_app(indexed).test_client().get("/api/v1/health")
    assert response.status_code == 503 and "kb build" in response.get_json()["error"]
    runner = CliRunner()
    base = ["--corpus-dir", str(indexed.corpus_dir), "--index-dir", str(indexed.index_dir)]
    result = runner.invoke(cli, [*base, "search", "ketamine"], env={"KB_VERIFIER": "0"})
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert runner.invoke(cli, [*base, "build", "-q"], env={"KB_SEMANTIC": "0"}).exit_code == 0
    assert index_state(indexed)[0] == "current"
    assert len(builds(indexed)) == 1  # damaged builds are pruned, never kept as the fallback
    assert KnowledgeBase.open(indexed).search(SearchRequest(q="ketamine")).total > 0


def test_the_cli_warns_when_it_answers_from_the_previous_build(indexed):
    damage(served(indexed), "toc")
    result = CliRunner().invoke(cli, ["--corpus-dir", str(indexed.corpus_dir), "--index-dir",
                                      str(indexed.index_dir), "search", "ketamine", "--json"],
                                env={"KB_VERIFIER": "0"})
    assert result.exit_code == 0
    assert result.stderr.startswith("Warning: the index is damaged (build ")
    assert json.loads(result.stdout)["total"] > 0


def test_a_damaged_pointer_falls_back_to_the_newest_intact_build(indexed):
    newest = builds(indexed)[-1]
    (indexed.index_dir / CURRENT).write_bytes(b"\xff\x00../../etc\n")
    choice = resolve_build(indexed.index_dir)
    assert choice.build_dir == newest and choice.problems[0].file == CURRENT
    assert index_state(indexed)[0] == "corrupt"


def test_a_manifest_without_checksums_is_stale_not_served(indexed):
    for folder in builds(indexed):
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest.pop("files")
        manifest["schema_version"] = 1
        (folder / MANIFEST).write_text(json.dumps(manifest))
    assert index_state(indexed)[0] == "stale"
    with pytest.raises(IndexUnavailable, match="another version"):
        KnowledgeBase.open(indexed)


def test_a_big_build_is_trusted_by_its_marker_only_while_its_files_are_untouched(indexed):
    """Above the size limit a build is hashed once; the marker vouches while stats are equal."""
    folder = served(indexed)
    assert verify_build(folder, trust_marker_above=0) == []
    assert (folder / VERIFIED).is_file()
    segment = next(folder.glob("claims_*.seg"))
    before = segment.stat()
    overwrite_middle(segment)
    # A fresh process: nothing cached in memory. Bytes changed behind a restored mtime (a disk
    # error would look like this) pass the marker but not the full hash that small builds get.
    os.utime(segment, ns=(before.st_atime_ns, before.st_mtime_ns))
    def problems_in_a_fresh_process(trust_marker_above: str) -> str:
        code = ("from pathlib import Path; from kb.build import verify_build; "
                f"print(len(verify_build(Path({str(folder)!r}), "
                f"trust_marker_above={trust_marker_above})))").replace(
                    "from kb.build import verify_build", "from kb.build import FULL_CHECK_BYTES, verify_build")
        run = subprocess.run([sys.executable, "-B", "-c", code], capture_output=True, check=False, text=True,
                             env=ENV, timeout=60)
        return run.stdout.strip() or run.stderr

    assert problems_in_a_fresh_process("0") == "0"  # trusted: the documented trade-off
    assert problems_in_a_fresh_process("FULL_CHECK_BYTES") == "1"  # small builds: always hashed
    overwrite_middle(segment)  # a write that moves the mtime voids the marker
    assert [p.file for p in verify_build(folder, trust_marker_above=0)] == [segment.name]


def health_at_start(settings: Settings) -> tuple[dict[str, Any], str]:
    """Start server.py on *settings*, read its health once, stop it: (health, its output)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-B", str(ROOT / "server.py"), "--port", str(port),
                                "--corpus-dir", str(settings.corpus_dir), "--index-dir",
                                str(settings.index_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    try:
        wait_for_port(port, process)
        health = get(f"http://127.0.0.1:{port}/api/v1/health")
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    return health, output


def test_the_server_rebuilds_a_damaged_index_at_start(fresh_corpus):
    build(fresh_corpus)
    damaged = served(fresh_corpus)
    damage(damaged, "store.sqlite")
    health, output = health_at_start(fresh_corpus)
    assert health["status"] == "ok" and health["build"] != damaged.name
    assert f"the served build is damaged: build {damaged.name}: store.sqlite is 1000 bytes" in output
    assert "Traceback" not in output


def test_the_server_serves_the_previous_build_degraded_when_the_rebuild_fails(indexed):
    damaged, previous = served(indexed), builds(indexed)[0]
    damage(damaged, "seg")
    (indexed.corpus_dir / "references" / "aaa-extra.bib").write_text(
        "@article{zarate2006randomized, title={Not the verified trial}, year={2020}}\n")
    health, output = health_at_start(indexed)
    assert health["status"] == "degraded" and health["build"] == previous.name
    assert health["degraded"]["problems"][0]["file"].startswith("claims_")
    assert "the index could not be rebuilt" in output and "duplicate source key" in output
    assert "Traceback" not in output


# --- 2. duplicate source keys ----------------------------------------------------------------


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_a_duplicate_key_in_a_new_file_stops_the_build_and_names_both_lines(fresh_corpus):
    build(fresh_corpus)
    before = (fresh_corpus.index_dir / CURRENT).read_text()
    extra = fresh_corpus.corpus_dir / "references" / "aaa-extra.bib"  # sorts before mini.bib
    extra.write_text("% a new file\n\n@article{zarate2006randomized,\n  title = {Impostor},\n"
                     "  year = {2021}\n}\n")
    original = _line_of(fresh_corpus.corpus_dir / "references" / "mini.bib", "{zarate2006randomized,")
    result = CliRunner().invoke(cli, ["--corpus-dir", str(fresh_corpus.corpus_dir), "--index-dir",
                                      str(fresh_corpus.index_dir), "build", "-q"],
                                env={"KB_SEMANTIC": "0"})
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: 1 problem(s) in the corpus:")
    assert (f"references/mini.bib:{original}: error: duplicate source key 'zarate2006randomized', "
            "first defined at references/aaa-extra.bib:3:") in result.stderr
    assert (fresh_corpus.index_dir / CURRENT).read_text() == before  # the previous index serves on
    assert KnowledgeBase.open(fresh_corpus).source("zarate2006randomized").title != "Impostor"
    check = CliRunner().invoke(cli, ["--corpus-dir", str(fresh_corpus.corpus_dir), "build", "--check"])
    assert check.exit_code == 1 and "duplicate source key" in check.stderr


def test_a_duplicate_key_within_one_file_is_fatal_too(fresh_corpus):
    text = "@article{a1, title={One}, year={2001}}\n\n@article{a1, title={Two}, year={2002}}\n"
    (problem,) = bibtex.parse(text, "references/x.bib").problems
    assert problem.fatal and problem.line == 3
    assert "duplicate source key 'a1', first defined at references/x.bib:1" in problem.message
    bib = fresh_corpus.corpus_dir / "references" / "mini.bib"
    bib.write_text(bib.read_text() + "\n" + text)
    with pytest.raises(CorpusError, match="duplicate source key 'a1'"):
        build(fresh_corpus)  # not strict: a lenient build refuses too


def test_the_bundled_corpus_has_no_duplicate_keys():
    corpus = load_corpus(PROJECT_ROOT / "corpus")
    assert [str(p) for p in corpus.problems if p.fatal or "duplicate" in p.message] == []
    assert corpus.errors == []


# --- 3. storage errors are one line ----------------------------------------------------------


def test_storing_names_the_file_of_a_real_enospc(tmp_path):
    target = tmp_path / "store.sqlite"
    target.symlink_to("/dev/full")  # writes to /dev/full fail with ENOSPC, for real
    with pytest.raises(StorageError) as caught, storing(target, "kb build"), \
            target.open("w") as handle:
        handle.write("{}")
        handle.flush()
    assert str(caught.value) == (f"no space left on device while writing {target}: free some space "
                                 "and run kb build again")


def test_a_full_disk_under_kb_build_is_one_line_and_the_previous_index_serves(indexed):
    before = (indexed.index_dir / CURRENT).read_text()
    # build() writes CURRENT through .CURRENT.<pid>.tmp: in this process that name is known.
    (indexed.index_dir / f".{CURRENT}.{os.getpid()}.tmp").symlink_to("/dev/full")
    result = CliRunner().invoke(cli, ["--corpus-dir", str(indexed.corpus_dir), "--index-dir",
                                      str(indexed.index_dir), "build", "-q"], env={"KB_SEMANTIC": "0"})
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == (
        f"Error: no space left on device while writing {indexed.index_dir / CURRENT}: free some "
        "space and run kb build again")
    assert (indexed.index_dir / CURRENT).read_text() == before
    assert not list(indexed.index_dir.glob(f".{CURRENT}.*"))  # no stray temporary left behind
    assert KnowledgeBase.open(indexed).search(SearchRequest(q="ketamine")).total > 0


@needs_namespaces
def test_a_full_tmpfs_under_kb_build_and_kb_import_is_one_line(fresh_corpus):
    index, records = fresh_corpus.index_dir, fresh_corpus.corpus_dir / "records"
    index.mkdir()
    records.mkdir()
    fill = "dd if=/dev/zero of={0}/filler bs=4k 2>/dev/null; "
    result = in_namespace(
        f"mount -t tmpfs -o size=16k tmpfs {index} && mount -t tmpfs -o size=16k tmpfs {records} && "
        + fill.format(index) + fill.format(records)
        + kb_command(fresh_corpus, "build", "-q") + "; echo build=$?; ls -A " + str(index) + "; "
        + kb_command(fresh_corpus, "import", "-q", str(PUBMED)) + "; echo import=$?; ls -A "
        + str(records))
    build_error, import_error = [line for line in result.stderr.splitlines() if line]
    assert build_error.startswith(f"Error: no space left on device while writing {index}/.tmp-")
    assert build_error.endswith(": free some space and run kb build again")
    assert import_error == ("Error: no space left on device while writing "
                            f"{records}/raw/krystal2023ketamine.xml: free some space and run the "
                            "import again")
    assert "build=1" in result.stdout and "import=1" in result.stdout
    assert ".tmp-" not in result.stdout and ".tmp" not in result.stdout  # nothing left half-written
    assert ".json" not in result.stdout  # no record was written without its payload


@needs_namespaces
def test_a_read_only_index_is_one_line(fresh_corpus):
    index = fresh_corpus.index_dir
    index.mkdir()
    result = in_namespace(f"mount --bind {index} {index} && mount -o remount,bind,ro {index} && "
                          + kb_command(fresh_corpus, "build", "-q"))
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        f"Error: {index}/.lock is on a read-only file system: remount it read-write or use a "
        "writable --index-dir / --corpus-dir and run kb build again")


def test_a_file_size_limit_is_one_line(fresh_corpus):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # Python ignores SIGXFSZ: EFBIG

    result = run_kb(fresh_corpus, "build", "-q", preexec_fn=limit)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert line.startswith(f"Error: file too large while writing {fresh_corpus.index_dir}/.tmp-")
    assert line.endswith("run kb build again")


def _without_write_permission(folder: Path) -> Callable[[list[str]], subprocess.CompletedProcess[str]]:
    """Make *folder* unwritable for the command run; root needs a user namespace for that."""
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return lambda command: subprocess.run(command, capture_output=True, check=False, text=True, env=ENV,
                                              timeout=120)
    if not unshare_works():
        pytest.skip("root ignores permissions, and no user namespace is allowed here")
    # Owned by a user the namespace does not map, the folder is no longer root's to write.
    os.chown(folder, 65534, 65534)
    return lambda command: subprocess.run(["unshare", "-r", *command], capture_output=True, check=False,
                                          text=True, env=ENV, timeout=120)


def test_a_folder_without_write_permission_is_one_line(fresh_corpus):
    fresh_corpus.index_dir.mkdir()
    run = _without_write_permission(fresh_corpus.index_dir)
    try:
        result = run([*KB, "--corpus-dir", str(fresh_corpus.corpus_dir), "--index-dir",
                      str(fresh_corpus.index_dir), "build", "-q"])
    finally:
        if os.geteuid() == 0:
            os.chown(fresh_corpus.index_dir, 0, 0)
        fresh_corpus.index_dir.chmod(0o755)
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        f"Error: permission denied on {fresh_corpus.index_dir}/.lock: give this user read and "
        "write access to it and run kb build again")


# --- 4. kb import exits 1 when every file is refused ---------------------------------------


def test_import_exits_1_when_every_file_is_refused_and_0_when_some_import(fresh_corpus, tmp_path):
    xxe = tmp_path / "xxe.xml"
    xxe.write_text(XXE)
    base = ["--corpus-dir", str(fresh_corpus.corpus_dir), "import", "-q"]
    refused = CliRunner().invoke(cli, [*base, str(xxe)])
    assert refused.exit_code == 1
    assert f"{xxe}: error: refused: the XML declares an external entity" in refused.stderr
    assert refused.stderr.strip().endswith(f"Error: nothing imported: every file was refused ({xxe}); "
                                           "fix or convert them (see the problems above) and import again")
    mixed = CliRunner().invoke(cli, [*base, str(xxe), str(PUBMED)])
    assert mixed.exit_code == 0
    assert "refused" in mixed.stderr and "Added 1" in mixed.stdout
    as_json = CliRunner().invoke(cli, [*base, "--json", str(xxe)])
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["refused"] == [str(xxe)]


# --- 5. written files are as readable as the rest of the corpus ------------------------------


def test_imported_records_get_the_umask_mode_not_0600(fresh_corpus):
    result = subprocess.run([*KB, "--corpus-dir", str(fresh_corpus.corpus_dir), "import", "-q",
                             str(PUBMED), str(RIS)], capture_output=True, check=False, text=True, env=ENV,
                            timeout=120, preexec_fn=lambda: os.umask(0o027))
    assert result.returncode == 0, result.stderr
    written = [p for p in (fresh_corpus.corpus_dir / "records").rglob("*") if p.is_file()]
    assert len(written) >= 3  # records and raw payloads
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(0o640)}
    CliRunner().invoke(cli, ["--corpus-dir", str(fresh_corpus.corpus_dir), "import", "-q",
                             str(ROOT / "tests" / "data" / "fixtures" / "pubmed_xml" /
                                 "biopython_pubmed1.xml")])
    newest = max(((fresh_corpus.corpus_dir / "records").glob("*.json")), key=lambda p: p.stat().st_mtime)
    assert newest.stat().st_mode & 0o777 == new_file_mode() == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_index_files_are_readable_too(indexed):
    for path in served(indexed).iterdir():
        assert path.stat().st_mode & 0o444 == 0o444, path


# --- 6. bibtexparser stays quiet, and our line is the entry's line -------------------------


def test_a_malformed_entry_is_one_problem_at_its_own_line(fresh_corpus, caplog):
    bib = fresh_corpus.corpus_dir / "references" / "mini.bib"
    text = bib.read_text() + "\n@article{broken,\n  title = {Unclosed,\n  year = {2001}\n}\n"
    bib.write_text(text)
    line = text.splitlines().index("@article{broken,") + 1
    result = run_kb(fresh_corpus, "build", "--check")
    assert result.returncode == 1
    expected = (f"corpus/references/mini.bib:{line}: error: malformed entry 'broken' skipped: "
                "Unexpectedly reached end of file.")
    assert result.stderr.splitlines() == [expected]
    with caplog.at_level(logging.DEBUG):
        bibtex.parse(text, "mini.bib")
    assert [r for r in caplog.records if r.name.startswith("bibtexparser")] == []
