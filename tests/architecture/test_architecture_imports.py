"""The package's shape: layers import only downward, no cycles, small modules, docstrings.

Imports are read from the source (module level and inside functions alike, ``TYPE_CHECKING``
blocks included), so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "pixelseg"

#: Top-level units, highest first: a unit may import its own or any lower layer.
LAYERS: list[set[str]] = [
    {"cli", "__main__", "demo", "train", "__init__"},
    {"export"},
    {"inference"},
    {"tasks"},
    {"engine"},
    {"report"},
    {"models", "losses", "metrics", "data", "postprocess"},
    {"config", "config_parse", "config_validate", "structures", "files", "errors"},
]
MAX_LINES = 300


def _unit(module: str) -> str:
    """``pixelseg.data.instance.check`` -> ``data``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 1 else [*parts[:-1], "__init__"]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("pixelseg.")}


def _graph() -> dict[str, set[str]]:
    """Unit -> units it imports (itself excluded)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        unit = _unit(_module_name(path))
        targets = {_unit(name) for name in _imports(path)} - {unit}
        graph.setdefault(unit, set()).update(
            t for t in targets if (PACKAGE / t).exists() or (PACKAGE / f"{t}.py").exists()
        )
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the directed graph as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def _layer(unit: str) -> int:
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise AssertionError(f"pixelseg.{unit} is in no layer of {LAYERS}: add it")


def test_cycle_finder_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_packages() -> None:
    assert find_cycle(_graph()) is None, f"import cycle: {' -> '.join(find_cycle(_graph()) or [])}"


def test_no_package_imports_one_above_it() -> None:
    upward = [
        f"pixelseg.{unit} imports pixelseg.{target}"
        for unit, targets in sorted(_graph().items())
        for target in sorted(targets)
        if _layer(target) < _layer(unit)
    ]
    assert not upward, "; ".join(upward)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_module_is_small_and_documented(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    lines = source.count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)}: {lines} lines (max {MAX_LINES})"
    tree = ast.parse(source)
    assert ast.get_docstring(tree), f"{path.relative_to(PACKAGE)}: no module docstring"
    undocumented = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not node.name.startswith("_")
        and not ast.get_docstring(node)
    ]
    assert not undocumented, f"{path.relative_to(PACKAGE)}: no docstring on {undocumented}"
