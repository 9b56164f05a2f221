"""The package's layers (docs/architecture.md): a module imports only from its own stage or earlier ones."""

from __future__ import annotations

import ast
from pathlib import Path

import gradspec

PACKAGE = Path(gradspec.__file__).parent
# Foundations first, front ends last: the order data flows through the pipeline.
ORDER = ["errors", "limits", "results", "version", "modes", "ops", "lang", "graph", "reference", "engines", "diagnose",
         "casefile", "checks", "run", "tools", "report", "config", "starter", "commands", "cli", "plugin", "__main__"]
PUBLIC = {"engine", "nn"}  # public modules, built on the layers like any user's code
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
