"""The package graph runs one way: no module imports a layer above its own, and nothing cycles.

Every import counts, including those under ``if TYPE_CHECKING:`` and inside functions: a late or
type-only import still ties the two modules together, it only hides the tie from Python.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kb"

# Lowest first. A unit is a top-level module or package of kb ("kb" itself is kb/__init__.py).
# A unit may import its own layer and the layers below it.
LAYERS: list[tuple[str, frozenset[str]]] = [
    ("foundations", frozenset({"kb", "models", "errors", "ids", "text", "files", "config", "progress",
                               "parallel", "grammar", "vocabulary", "citations"})),
    ("parsers", frozenset({"ingest"})),  # one pure parser per input format
    ("network", frozenset({"fetch"})),  # the only code that uses the network: raw responses
    ("corpus", frozenset({"corpus"})),  # reading and writing the corpus: loader, importer
    ("records", frozenset({"store", "query"})),  # a build's record store; requests and results
    ("search", frozenset({"search"})),  # the engine seam and both engines
    ("build", frozenset({"build"})),  # corpus -> store + engine files, published through the seam
    ("opened build", frozenset({"opened_build"})),  # one build opened for reading
    ("matching", frozenset({"matching"})),
    ("views", frozenset({"views", "searching", "suggestions"})),  # one data function per view
    ("checking", frozenset({"check", "verify"})),
    ("facade", frozenset({"knowledge_base", "exports", "consensus", "responses"})),
    ("adapters", frozenset({"cli", "cli_check", "cli_ingest", "web", "server", "__main__"})),
]
LAYER_OF = {unit: number for number, (_, units) in enumerate(LAYERS) for unit in units}


def _module_name(path: Path) -> str:
    parts = ["kb", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "kb"


def _imported(path: Path) -> set[str]:
    """The kb modules *path* imports, anywhere in it (``from kb import x`` names kb.x when it is one)."""
    module = _module_name(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".")
                keep = len(package) - node.level + (1 if path.name == "__init__.py" else 0)
                base = ".".join(package[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").is_file() or \
                        (PACKAGE.parent / candidate.replace(".", "/") / "__init__.py").is_file():
                    found.add(candidate)
    return {name for name in found if name == "kb" or name.startswith("kb.")}


def _unit_graph() -> dict[str, dict[str, list[str]]]:
    """unit -> imported unit -> the files that make the edge."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(_module_name(path))
        for name in _imported(path):
            target = _unit(name)
            if target != source:
                graph[source][target].append(str(path.relative_to(PACKAGE.parent)))
    return graph


def test_every_unit_has_a_layer() -> None:
    units = {_unit(_module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert units - LAYER_OF.keys() == set(), "add the new module to a layer in LAYERS"


def test_no_import_runs_upward() -> None:
    upward = [f"{source} ({LAYERS[LAYER_OF[source]][0]}) imports {target} ({LAYERS[LAYER_OF[target]][0]}) "
              f"in {', '.join(files)}"
              for source, targets in _unit_graph().items() for target, files in targets.items()
              if LAYER_OF.get(target, -1) > LAYER_OF.get(source, -1)]
    assert upward == []


def test_the_units_import_each_other_without_cycles() -> None:
    graph = _unit_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(unit: str) -> None:
        state[unit] = 1
        path.append(unit)
        for target in sorted(graph.get(unit, {})):
            if state.get(target) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target)
        path.pop()
        state[unit] = 2

    for unit in sorted(graph):
        if unit not in state:
            visit(unit)


def test_the_graph_reads_late_and_type_only_imports() -> None:
    # The checker of this test: an import inside a function or under TYPE_CHECKING is an edge.
    names = _imported(PACKAGE / "knowledge_base.py")
    assert "kb.check" in names and "kb.opened_build" in names
    sample = PACKAGE / "search" / "__init__.py"
    assert "kb.search.postgres" in _imported(sample)  # imported inside functions there
