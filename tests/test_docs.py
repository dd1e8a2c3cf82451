"""The README documents every command and every API route."""

from pathlib import Path

import pytest

from kb.cli import cli
from kb.web import create_app

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_cli_command_is_in_the_readme(name):
    assert f"kb {name}" in README


@pytest.mark.parametrize("command", cli.commands.values(), ids=lambda command: command.name)
def test_every_cli_command_has_help_with_an_example(command):
    assert command.help and "Example:" in command.help


def test_every_api_route_is_in_the_readme():
    routes = sorted({rule.rule.replace("<path:", "<").replace("<int:", "<")
                     for rule in create_app().url_map.iter_rules() if rule.rule.startswith("/api/")})
    missing = [route for route in routes if route.replace("<source_id>", "<id>").replace("<claim_id>", "<id>")
               not in README]
    assert not missing, f"Document these routes in README.md: {missing}"


def test_readme_gives_the_two_setup_commands():
    assert "pip install -e . && python server.py" in README
    assert "pip install -e '.[test]' && pytest" in README
