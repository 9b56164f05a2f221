"""The command line: ``gradspec check`` and its exit codes (0 pass, 1 fail, 2 invalid)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from gradspec.cli import main

BROKEN_ENGINE = textwrap.dedent(
    """
    from gradspec.engine import Value


    class OverwritingMul(Value):
        __slots__ = ()

        def __mul__(self, other):
            other = other if isinstance(other, Value) else OverwritingMul(other)
            out = OverwritingMul(self.data * other.data, (self, other), "mul")

            def _backward():
                self.grad = other.data * out.grad
                other.grad = self.data * out.grad

            out._backward = _backward
            return out


    class NotAnEngine:
        pass
    """
)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def broken_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = "gradspec_test_broken_engine_cli"
    (tmp_path / f"{name}.py").write_text(BROKEN_ENGINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, name, raising=False)
    return name


def test_check_pass_exits_0_and_prints_the_table() -> None:
    code, out, err = run("check", "x*y", "--at", "x=2,y=3")
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "PASS  x*y  at x=2,y=3  on builtin"
    assert lines[1].split()[:3] == ["engine", "exact", "numerical"]
    assert lines[3].split()[:4] == ["d/dx", "3", "3", "3"]
    assert lines[4].split()[:4] == ["d/dy", "2", "2", "2"]


def test_check_that_compared_nothing_exits_1(misbehaving: ModuleType) -> None:
    code, out, _ = run("check", "cos(x) * y", "--at", "x=1,y=2", "--engine", "misbehaving:Scalar")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("SKIP  cos(x) * y  at x=1,y=2  on misbehaving:Scalar")
    assert lines[-1] == "engine misbehaving:Scalar compared nothing: every check was skipped"
    code, out, _ = run("check", "cos(x) * y", "--at", "x=1,y=2", "--engine", "misbehaving:Scalar", "--engine", "builtin")
    assert code == 1 and "engine builtin compared nothing" not in out  # builtin compared; Scalar did not


def test_check_several_points() -> None:
    code, out, _ = run("check", "tanh(x)", "--at", "x=0.5", "--at", "x=-1")
    assert code == 0
    heads = [line for line in out.splitlines() if line.startswith("PASS")]
    assert heads == ["PASS  tanh(x)  at x=0.5  on builtin", "PASS  tanh(x)  at x=-1  on builtin"]


def test_check_intermediates() -> None:
    code, out, _ = run("check", "a = x*y; b = a + x", "--at", "x=2,y=3")
    assert code == 0
    assert "d/da" in out and "d/db" in out


def test_broken_engine_exits_1(broken_module: str) -> None:
    spec = f"{broken_module}:OverwritingMul"
    code, out, err = run("check", "x*y + x", "--at", "x=2,y=3", "--engine", spec)
    assert code == 1
    assert err == ""
    assert out.startswith(f"FAIL  x*y + x  at x=2,y=3  on {spec}")
    dx = next(line for line in out.splitlines() if line.strip().startswith("d/dx"))
    assert dx.split()[1:3] == ["3", "4"] and dx.split()[-1] == "fail"


def test_broken_engine_passes_where_it_is_right(broken_module: str) -> None:
    code, out, _ = run("check", "x*y", "--at", "x=2,y=3", "--engine", f"{broken_module}:OverwritingMul")
    assert code == 0
    assert out.startswith("PASS")


def test_one_failing_engine_among_several_exits_1(broken_module: str) -> None:
    code, out, _ = run("check", "x*y + x", "--at", "x=2,y=3", "--engine", "builtin",
                       "--engine", f"{broken_module}:OverwritingMul")
    assert code == 1
    assert [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")] == ["PASS", "FAIL"]


def test_parse_error_exits_2() -> None:
    code, out, err = run("check", "x +", "--at", "x=1")
    assert code == 2
    assert out == ""
    assert err.startswith("gradspec: column 4: ")
    assert "found the end of the expression" in err


def test_undefined_variable_exits_2() -> None:
    code, _, err = run("check", "x + z", "--at", "x=1")
    assert code == 2
    assert "undefined variable 'z'" in err


def test_domain_error_exits_2() -> None:
    code, out, _ = run("check", "log(x)", "--at", "x=-1")
    assert code == 2
    assert out.startswith("ERROR  log(x)")


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "x"],  # --at is required
        ["check", "x", "--at", "x"],  # not name=value
        ["check", "x", "--at", "=1"],
        ["check", "x", "--at", "x=1", "--rtol", "loose"],
        ["check"],
        [],
        ["frobnicate"],
    ],
)
def test_bad_usage_exits_2(argv: list[str]) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert out == ""
    assert err.startswith("gradspec")


def test_unknown_engine_exits_2(broken_module: str) -> None:
    code, _, err = run("check", "x", "--at", "x=1", "--engine", "no_such_module_xyz:Value")
    assert code == 2
    assert "cannot import engine module 'no_such_module_xyz'" in err
    code, _, err = run("check", "x", "--at", "x=1", "--engine", f"{broken_module}:NotAnEngine")
    assert code == 2
    assert "not a Value class" in err
    code, _, err = run("check", "x", "--at", "x=1", "--engine", "nonsense")
    assert code == 2
    assert "unknown engine" in err


def test_tolerance_options() -> None:
    code, out, _ = run("check", "x*y", "--at", "x=2,y=3", "--rtol", "0.5", "--atol", "0")
    assert code == 0
    dx = next(line for line in out.splitlines() if line.strip().startswith("d/dx"))
    assert dx.split()[-2] == "1.5"  # tol = 0 + 0.5 * 3


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--help"]) == 0
    assert "--at" in capsys.readouterr().out


def test_engine_help_names_the_adapters_and_the_configured_engines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.gradspec.engine.mine]\nclass = "m:V"\n'
                                             '[tool.gradspec.engine.theirs]\nclass = "t:V"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help at the terminal's width
    assert "an adapter (torch, jax, tinygrad, micrograd;" in text
    assert "".join(f"configured in {tmp_path / 'pyproject.toml'}: mine, theirs;".split()) in "".join(text.split())
    assert "'path/to/file.py:Class'" in text
    (tmp_path / "pyproject.toml").write_text("[tool.gradspec\n", encoding="utf-8")  # broken: help still works
    assert main(["explain", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "an adapter (torch, jax, tinygrad, micrograd;" in text and "configured in" not in text
