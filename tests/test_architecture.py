"""The import graph of tools/, read from the source (every import, at module level or inside a function): no
import circle between modules, and each package imports only the packages the table below allows, the table that
docs/architecture.md shows. A new package or a new dependency between packages is a deliberate edit here."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

from tools.core.repo import REPO_ROOT

TOOLS = REPO_ROOT / "tools"

# package -> the packages it may import. Data flows one way: core < render < validate < operate < demo; data, serve,
# catalog and evaluate sit beside the flow. `schemas` holds the writers of schemas/ (validate reads what they write).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "render": {"core"},
    "validate": {"core", "render"},
    "schemas": {"core", "validate"},
    "catalog": {"core"},
    "data": {"core"},
    "serve": {"core", "render"},
    "operate": {"core", "render", "validate", "evaluate", "serve"},
    "evaluate": {"core", "render", "validate", "serve", "data"},
    "demo": {"core", "render", "validate", "operate", "serve", "data", "evaluate"},
    "__main__": {"core"},  # the CLI imports a command's module by name (COMMANDS), never at import time
}
# validate reads: of its modules only the CLI renders (a --workspace's specs, in memory) and no rule imports render
RENDERS_IN_VALIDATE = {"tools.validate.cli"}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(TOOLS.rglob("*.py")):
        name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the tools modules it imports (``from tools.a import b`` counts b when b is a module)."""
    known = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in known and t != name)
    return graph


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(set(graph) | {t for ts in graph.values() for t in ts}):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle_in_tools() -> None:
    assert cycles(import_graph()) == []


def test_cycle_finder_sees_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_package_is_in_the_table() -> None:
    assert {package(name) for name in modules() if name != "tools"} <= set(ALLOWED)


def test_packages_import_only_what_the_table_allows() -> None:
    upward = sorted(f"{source} imports {target}" for source, targets in import_graph().items() for target in targets
                    if package(source) != package(target) and package(target) not in ALLOWED[package(source)])
    assert upward == []


def test_validate_reads_only() -> None:
    """Only validate's CLI renders (in memory); the writers of schemas/ live in tools/schemas."""
    graph = import_graph()
    renders = sorted(name for name, targets in graph.items()
                     if name.startswith("tools.validate") and any(package(t) == "render" for t in targets))  # fmt: skip
    assert set(renders) <= RENDERS_IN_VALIDATE
    assert not (TOOLS / "validate" / "export.py").exists() and not (TOOLS / "validate" / "contracts.py").exists()


def test_docs_architecture_shows_the_table() -> None:
    """docs/architecture.md's package table names, for each package, exactly the packages it may import."""
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    shown: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = re.match(r"^\| `tools/(\w+)/` \|.*\| imports: ([^|]*)\|", line)
        if match:
            shown[match.group(1)] = set(re.findall(r"`(\w+)`", match.group(2)))
    assert shown == {name: allowed for name, allowed in ALLOWED.items() if name != "__main__"}
