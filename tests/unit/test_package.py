"""The shape of the nixfly package: no import cycle, Fly and hosts apart, a unit test module per module.

Imports are read with ``ast`` (nothing is imported). The rule for cycles:

* Module-level imports count, ``if TYPE_CHECKING:`` ones included. A cycle made only of type imports does not
  fail at run time, but it still means neither module can be read without the other; and once a type import
  is needed at run time it becomes a real cycle. So the graph of module-level imports has no cycle at all.
* An import inside a function runs when the function does, and could close a loop; such a loop would have to
  be listed in ``LAZY_LOOPS`` below with the reason, and the list is empty: a lazy import is not a way to
  hide a cycle.
* ``from nixfly.fly import plan`` depends on ``nixfly.fly.plan``, not on the package ``nixfly.fly``: every
  submodule import runs its package's ``__init__``, which is Python's doing, not a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from helpers.project import REPO

PACKAGE = REPO / "nixfly"
UNIT = REPO / "tests" / "unit"

# (importer, imported) edges of function-level imports allowed to close a loop: none. (open_target, the one
# place that picks Fly or hosts, lives in engine, above both; deps.update lives in depsupdate, above nix.)
LAZY_LOOPS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(imported nixfly module, whether the import is inside a function) for every import in ``path``."""

    def walk(node: ast.AST, lazy: bool) -> Iterator[tuple[str, bool]]:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                yield from ((alias.name, inner) for alias in child.names if alias.name in MODULES)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    target = f"{child.module}.{alias.name}"
                    found = target if target in MODULES else child.module
                    if found in MODULES:
                        yield found, inner
            else:
                yield from walk(child, inner)

    yield from walk(ast.parse(path.read_text(encoding="utf-8")), False)


def graph(*, lazy: bool) -> dict[str, set[str]]:
    return {
        name: {target for target, inner in imports(path) if target != name and (lazy or not inner)}
        for name, path in MODULES.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_reader_sees_every_module():
    assert {"nixfly.engine", "nixfly.target", "nixfly.fly.plan", "nixfly.hosts.activate"} <= set(MODULES)
    engine = {target for target, _ in imports(MODULES["nixfly.engine"])}
    assert {"nixfly.pipeline", "nixfly.target", "nixfly.buildhost"} <= engine


def test_no_import_cycle_at_module_level_type_imports_included():
    assert cycles(graph(lazy=False)) == []


def test_function_level_imports_close_only_the_known_loops():
    full = graph(lazy=True)
    top = graph(lazy=False)
    closing = set()
    for component in cycles(full):
        members = set(component)
        closing |= {(a, b) for a in members for b in full[a] & members if b not in top[a]}
    assert closing <= LAZY_LOOPS, f"new loops closed by a lazy import: {sorted(closing - LAZY_LOOPS)}"
    without = {a: {b for b in targets if (a, b) not in LAZY_LOOPS} for a, targets in full.items()}
    assert cycles(without) == []


def test_fly_and_hosts_never_import_each_other():
    for name, path in MODULES.items():
        for target, _ in imports(path):
            for one, other in (("nixfly.fly", "nixfly.hosts"), ("nixfly.hosts", "nixfly.fly")):
                inside = name == one or name.startswith(f"{one}.")
                assert not (inside and (target == other or target.startswith(f"{other}."))), (name, target)


def test_a_unit_test_module_per_package_module():
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    expected = {f"test_{name.removeprefix('nixfly.').replace('.', '_')}.py" for name in MODULES} - {
        f"test_{name.removeprefix('nixfly.').replace('.', '_')}.py" for name in packages
    }
    missing = sorted(name for name in expected if not (UNIT / name).is_file())
    assert missing == []


def test_the_cycle_finder_finds_cycles():
    """The checks above would pass on a broken finder: it must see a loop where there is one."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def constructions(name: str) -> list[str]:
    """Where nixfly calls the class ``name`` (``Runner(...)``), as module:line; subclasses are other names."""
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                called = node.func
                named = called.id if isinstance(called, ast.Name) else getattr(called, "attr", "")
                if named == name:
                    found.append(f"{module}:{node.lineno}")
    return found


def test_a_local_runner_is_made_in_two_places_only():
    """One run context: a task makes its runner once (``runner.here``) and passes it down; ``inv clean``,
    which works without Settings, makes its own. Anywhere else a second runner would be a second context,
    with its own dry-run flag and working directory."""
    sites = [site.split(":")[0] for site in constructions("Runner")]
    assert sorted(sites) == ["nixfly.commands", "nixfly.runner"], constructions("Runner")


def test_the_construction_finder_finds_calls():
    assert constructions("RemoteRunner")  # the SSH runners of a host target and a build host
    assert constructions("NoSuchClass") == []
