import json


def test_search_json_is_exactly_the_api_document(run_cli, client):
    result = run_cli("search", "TRD", "--limit", "5", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output) == client.get("/api/v1/search?q=TRD&limit=5").get_json()


def test_show_json_is_exactly_the_api_document(run_cli, client):
    result = run_cli("show", "feder2014efficacy", "--json")
    assert json.loads(result.output) == client.get("/api/v1/sources/feder2014efficacy").get_json()


def test_stats_counts_sources_and_claims(run_cli):
    body = json.loads(run_cli("stats", "--json").output)
    assert body["sources"] == 5
    assert body["claims"] >= 10
    assert "trd" in body["claims_per_condition"]


def test_search_prints_claims_with_sources(run_cli):
    result = run_cli("search", "PTSD", "--condition", "ptsd")
    assert result.exit_code == 0
    assert "feder2014efficacy" in result.output


def test_bad_query_is_one_line_and_exit_2(run_cli):
    result = run_cli("search", "AND OR")
    assert result.exit_code == 2
    assert result.output.startswith("Error: Nothing searchable")
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_source_exit_2(run_cli):
    result = run_cli("show", "nobody1999")
    assert result.exit_code == 2
    assert "No source 'nobody1999'" in result.output


def test_missing_index_says_to_build(tmp_path):
    from click.testing import CliRunner

    from kb.cli import cli

    result = CliRunner().invoke(cli, ["--corpus-dir", str(tmp_path), "--index-dir", str(tmp_path / "ix"),
                                      "search", "ketamine"])
    assert result.exit_code == 1
    assert "kb build" in result.output


def test_map_and_vocabulary(run_cli):
    body = json.loads(run_cli("map", "--json").output)
    assert any(c["row"] == "trd" and c["column"] == "nmda-antagonism" for c in body["cells"])
    terms = json.loads(run_cli("vocabulary", "--kind", "condition", "--json").output)["terms"]
    depression = next(t for t in terms if t["id"] == "depressive-disorders")
    assert depression["claims_including_narrower"] > depression["claims"]
