"""Function targets: located without importing at load time, held to what a function under test is at run time."""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradspec.cli import main
from gradspec.engines.targets import accept, locate
from gradspec.errors import EngineError

STDLIB = "is in Python's standard library; a function case runs the code it names"


@pytest.mark.parametrize("target", ["os:system", "subprocess:getoutput", "antigravity:x", "builtins:eval",
                                    "os.path:join", "importlib:import_module"])
def test_standard_library_targets_are_refused_unimported(target: str) -> None:
    assert "antigravity" not in sys.modules
    problem = locate(target)
    assert problem is not None and problem.startswith(f"{target!r} {STDLIB}")
    assert "antigravity" not in sys.modules  # found by name alone: importing it opens a web browser


@pytest.mark.parametrize(("target", "fragment"), [
    ("mod", "expected 'module.path:function' (dotted names, one colon), got 'mod'"),
    ("mod:f:g", "expected 'module.path:function'"),
    ("../x.py:f", "expected 'module.path:function'"),
    ("no_such_module_anywhere:f", "no module named 'no_such_module_anywhere'"),
])
def test_malformed_or_missing_targets(target: str, fragment: str) -> None:
    problem = locate(target)
    assert problem is not None and fragment in problem


PACKAGE_INIT = "open({marker!r}, 'a').write('package imported\\n')\n"
MODULE = """
open({marker!r}, 'a').write('module imported\\n')
import torch
from os import system as shell

def f(x):
    return x * 2

class Twice(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * 2

class Plain:
    def __call__(self, x):
        return x

plain = Plain()
layer = torch.nn.Tanh()
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pkg_targets/ops.py in the current folder; importing the package or the module writes to MARKER."""
    marker = tmp_path / "MARKER"
    (tmp_path / "pkg_targets").mkdir()
    (tmp_path / "pkg_targets" / "__init__.py").write_text(PACKAGE_INIT.format(marker=str(marker)), encoding="utf-8")
    (tmp_path / "pkg_targets" / "ops.py").write_text(MODULE.format(marker=str(marker)), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("pkg_targets", "pkg_targets.ops"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return marker


def test_a_package_module_is_located_without_importing_the_package(package: Path) -> None:
    assert locate("pkg_targets.ops:f") is None
    assert locate("pkg_targets.ops:Twice.apply") is None
    assert locate("pkg_targets.ops:nothing") == (f"module 'pkg_targets.ops' ({package.parent / 'pkg_targets' / 'ops.py'})"
                                                 " defines no 'nothing'")
    assert locate("pkg_targets.missing:f") == ("no module named 'pkg_targets.missing' (gradspec looks in the current "
                                               "directory, the project root and the installed packages)")
    assert locate("pkg_targets.ops.deeper:f") == "'pkg_targets.ops' is a module, not a package: it has no 'deeper'"
    assert not package.exists()  # neither the package's __init__ nor the module ran
    assert "pkg_targets" not in sys.modules


CASE = """
cases:
  - id: {id}
    kind: function
    function: {{{engine}: "{target}"}}
    reference: 2 * x
    sample: {{count: 1, vars: {{x: {{shape: [3], uniform: [-1, 1]}}}}}}
"""


def _file(folder: Path, *cases: tuple[str, str, str]) -> Path:
    path = folder / "t.gradspec.yaml"
    path.write_text("cases:\n" + "".join(CASE.format(id=i, engine=e, target=t).split("cases:\n", 1)[1]
                                         for i, e, t in cases), encoding="utf-8")
    return path


def _row(text: str, engine: str) -> list[int]:
    """An engine's counts in the summary table: pass, fail, convention, skip, xfail, error, checks."""
    line = next(line for line in text.splitlines() if line.split()[:1] == [engine])
    return [int(n) for n in line.split()[1:]]


def test_validate_never_runs_the_code_a_case_names_and_run_does(package: Path) -> None:
    pytest.importorskip("torch")
    path = _file(package.parent, ("f", "torch", "pkg_targets.ops:f"), ("twice", "torch", "pkg_targets.ops:Twice"),
                 ("layer", "torch", "pkg_targets.ops:layer"))
    out, err = io.StringIO(), io.StringIO()
    assert main(["validate", str(path)], out, err) == 0, err.getvalue()
    assert not package.exists()
    out = io.StringIO()
    code = main(["run", str(path)], out, io.StringIO())
    assert package.read_text(encoding="utf-8") == "package imported\nmodule imported\n"
    assert code == 1, out.getvalue()  # f and Twice pass; tanh is not 2 * x
    assert _row(out.getvalue(), "torch") == [2, 1, 0, 0, 0, 0, 0, 3]


def test_validate_refuses_standard_library_targets_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = _file(tmp_path, ("os", "torch", "os:system"), ("sub", "jax", "subprocess:getoutput"),
                 ("anti", "builtin", "antigravity:x"))
    out, err = io.StringIO(), io.StringIO()
    assert main(["validate", str(path)], out, err) == 2
    lines = err.getvalue().splitlines()
    assert [line.split(" [")[0] for line in lines] == [f"{path}:4:23:", f"{path}:9:21:", f"{path}:14:25:"]
    assert all(STDLIB in line for line in lines)
    assert "antigravity" not in sys.modules


def test_run_refuses_what_is_not_a_function_of_the_library(package: Path) -> None:
    pytest.importorskip("torch")
    path = _file(package.parent, ("shell", "torch", "pkg_targets.ops:shell"), ("plain", "torch", "pkg_targets.ops:plain"))
    out = io.StringIO()
    assert main(["run", str(path)], out, io.StringIO()) == 2
    text = out.getvalue()
    assert ("'pkg_targets.ops:shell' is a builtin_function_or_method from Python's standard library "
            f"({os.system.__module__}); a function case runs the code it names") in text
    assert "'pkg_targets.ops:plain' is a Plain, not a function, a torch.autograd.Function subclass or a torch.nn.Module for torch" in text
    assert _row(text, "torch") == [0, 0, 0, 0, 0, 0, 2, 2]


def test_accept() -> None:
    def mine(x: object) -> object:
        return x

    assert accept(mine, "builtin", "m:mine") is mine
    for found in (os.system, subprocess.getoutput, functools.partial(mine), eval, print):
        with pytest.raises(EngineError, match="from Python's standard library"):
            accept(found, "torch", "m:f")
    with pytest.raises(EngineError, match=r"^'m:C' is the class C, not a function for builtin$"):
        accept(type("C", (), {"__module__": "m"}), "builtin", "m:C")
    torch = pytest.importorskip("torch")
    assert accept(torch.nn.functional.gelu, "torch", "torch.nn.functional:gelu") is torch.nn.functional.gelu
    with pytest.raises(EngineError, match="not a function for builtin"):
        accept(torch.nn.functional.gelu, "builtin", "torch.nn.functional:gelu")
    jax = pytest.importorskip("jax")
    custom = jax.custom_vjp(mine)
    assert accept(custom, "jax", "m:custom") is custom
    with pytest.raises(EngineError, match=r"not a function, a jax\.custom_vjp or custom_jvp, or a jitted function for jax"):
        accept(torch.nn.Tanh(), "jax", "m:layer")


def test_documented() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "Running a function case runs the code it names" in " ".join(readme.split())
    schema = (Path(__file__).resolve().parent.parent / "schemas" / "case-file.schema.json").read_text(encoding="utf-8")
    assert "running a function case runs the code it names" in schema
