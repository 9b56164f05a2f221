"""The package's layers (docs/architecture.md): a module imports only from its own stage or earlier ones."""

from __future__ import annotations

import ast
from pathlib import Path

import gradspec

PACKAGE = Path(gradspec.__file__).parent
# Foundations first, front ends last: the order data flows through the pipeline.
ORDER = ["errors", "limits", "results", "version", "modes", "ops", "lang", "graph", "reference", "engines", "diagnose",
         "casefile", "checks", "run", "tools", "report", "config", "starter", "commands", "cli", "plugin", "__main__"]
PUBLIC = {"engine", "engine_activations", "engine_floats", "engine_graph", "engine_special", "nn"}  # public modules (and the engine's parts),
# built on the layers like any user's code
ALLOWED = {("casefile.loader", "checks.kinds")}  # the loader reads the kind table (which keys a kind takes)


def stage(module: str) -> str:
    return module.split(".")[0]


def imports() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gradspec"):
                if node.module == "gradspec":
                    found += [(module, a.name, node.lineno) for a in node.names]
                else:
                    found.append((module, node.module.removeprefix("gradspec."), node.lineno))
    return found


def test_every_module_has_a_stage() -> None:
    stages = {stage(m) for m, _, _ in imports()} | {stage(t) for _, t, _ in imports()}
    assert stages - set(ORDER) - PUBLIC - {"__init__"} == set()


def test_no_module_imports_a_later_stage_or_the_facade() -> None:
    upward = []
    for module, target, line in imports():
        if module == "__init__" or stage(module) in PUBLIC or (module, target) in ALLOWED:
            continue
        if target in PUBLIC:
            continue
        if target not in ORDER and stage(target) not in ORDER:
            upward.append(f"{module}:{line} imports the facade's {target}")
        elif ORDER.index(stage(target)) > ORDER.index(stage(module)):
            upward.append(f"{module}:{line} imports {target}")
    assert upward == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    tree = ast.parse("from gradspec.report.terminal import summary\n")
    node = tree.body[0]
    assert isinstance(node, ast.ImportFrom) and node.module is not None
    assert ORDER.index(stage(node.module.removeprefix("gradspec."))) > ORDER.index("engines")


def edges(source: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at the top or inside a function alike."""
    modules = set(source)
    found: dict[str, set[str]] = {}
    for module, text in source.items():
        targets = set()
        tree = ast.parse(text)
        # Imports under ``if TYPE_CHECKING:`` never run: they name types for annotations (a mixin's
        # methods annotated with the class that takes it in), not modules one needs to work.
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                       for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            named: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from gradspec.checks import nondet`` imports the module gradspec.checks.nondet
                named = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}".removeprefix("gradspec.") in modules
                         else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                named = [a.name for a in node.names]
            targets |= {t.removeprefix("gradspec.") for t in named if t.startswith("gradspec.")}
        found[module] = (targets & modules) - {module}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, todo = work[-1]
            step = next(todo, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def package_source() -> dict[str, str]:
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__"): p.read_text(encoding="utf-8")
            for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_import_cycles_counting_imports_inside_functions() -> None:
    # An import moved into a function hides a cycle from Python, not from the design: the modules still
    # need each other. Lazy imports stay for third-party libraries (NumPy, torch, JAX) and for what a run
    # may never need, never to break a cycle.
    assert cycles(edges(package_source())) == []


def test_the_cycle_check_sees_an_import_inside_a_function() -> None:
    source = {"a": "from gradspec.b import x\n",
              "b": "def f():\n    from gradspec.c import y\n",
              "c": "from gradspec import a\n",
              "d": "from gradspec.a import z\n",
              "e": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gradspec.d import t\n"}
    assert cycles(edges(source)) == [["a", "b", "c"]]
    assert edges(source)["e"] == set()
