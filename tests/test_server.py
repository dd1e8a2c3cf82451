import json
import subprocess
import sys
import urllib.request

from conftest import ROOT


def test_real_server_serves_search_json(live_server):
    with urllib.request.urlopen(f"{live_server}/api/v1/search?q=ketamine") as response:
        body = json.loads(response.read())
        assert response.headers["Server"].startswith("evidence-kb") or response.status == 200
    assert body["ok"] is True and body["total"] > 0


def test_real_server_builds_a_missing_index_on_start(fresh_corpus):
    from conftest import free_port, wait_for_port

    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--port", str(port),
                                "--corpus-dir", str(fresh_corpus.corpus_dir),
                                "--index-dir", str(fresh_corpus.index_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status") as response:
            assert json.loads(response.read())["manifest"]["counts"]["sources"] == 5
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert "Building the search index (no index yet)" in output


def test_server_exits_non_zero_when_the_port_is_taken(live_server, settings):
    port = live_server.rsplit(":", 1)[1]
    result = subprocess.run([sys.executable, str(ROOT / "server.py"), "--port", port,
                             "--corpus-dir", str(settings.corpus_dir), "--index-dir",
                             str(settings.index_dir)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "in use" in result.stderr


def test_server_exits_non_zero_when_the_index_cannot_be_built(tmp_path):
    from conftest import free_port

    result = subprocess.run([sys.executable, str(ROOT / "server.py"), "--port", str(free_port()),
                             "--corpus-dir", str(tmp_path / "nothing"), "--index-dir",
                             str(tmp_path / "ix")], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "could not be built" in result.stderr
