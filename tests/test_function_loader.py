"""Function case files: the issue's format loads, the functions are imported from the current directory,
a bad function is a located error (exit 2), and ``gradspec run`` and pytest run the cases like any other."""

from __future__ import annotations

import io
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from gradspec.casefile.loader import load_file
from gradspec.casefile.model import FunctionSpec
from gradspec.cli import main
from gradspec.engines.resolve import resolve
from gradspec.run.runner import run_case

pytest.importorskip("torch")

MODULE = '''
import torch

def softmax(x):
    return torch.softmax(x, dim=-1)

def cross_entropy(logits, target):
    return torch.nn.functional.cross_entropy(logits, target)

def total(x):
    return x.sum()

def cross_entropy_no_mean(logits, target):
    return torch.nn.functional.cross_entropy(logits, target, reduction="sum")
'''

ISSUE = """
cases:
- id: fused-softmax
  kind: function
  function: {torch: "{mod}:softmax"}
  reference: softmax(x, axis=-1)
  dtype: [float64, float32]
  sample:
    count: 3
    vars:
      x: {shape: [4, 5], uniform: [-3, 3]}
- id: ce
  kind: function
  function: {torch: "{mod}:cross_entropy"}
  reference: cross_entropy(logits, target)
  sample:
    count: 3
    vars:
      logits: {shape: [4, 5], normal: [0, 1]}
      target: {shape: [4], integers: [0, 5], differentiable: false}
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A module of functions under test in the current directory, under a name unique to the test."""
    name = f"fut_{zlib.crc32(request.node.nodeid.encode()):08x}"
    (tmp_path / f"{name}.py").write_text(MODULE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_the_issue_example_loads_and_passes(write_case: Callable[..., Path], module: str) -> None:
    path = write_case(ISSUE.replace("{mod}", module))
    cases = {c.id: c for c in load_file(path).cases}
    softmax = cases["fused-softmax"]
    assert softmax.kind == "function" and softmax.engines == ("torch",) and len(softmax.points) == 3
    assert isinstance(softmax.spec, FunctionSpec)
    assert softmax.spec.dtypes == ("float64", "float32")
    assert softmax.spec.functions == (("torch", f"{module}:softmax"),)
    assert cases["ce"].spec.graph.data == {"target"}  # type: ignore[union-attr]
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", str(path), "--engine", "torch", "-q"], stdout=out, stderr=err) == 0, out.getvalue() + err.getvalue()
    assert "6 pass" in out.getvalue()


def test_a_function_that_disagrees_with_its_reference_fails_the_run(write_case: Callable[..., Path], module: str) -> None:
    path = write_case(ISSUE.replace("{mod}:cross_entropy", "{mod}:cross_entropy_no_mean").replace("{mod}", module))
    out = io.StringIO()
    assert main(["run", str(path), "--engine", "torch"], stdout=out, stderr=io.StringIO()) == 1
    assert "scaled by a constant: engine = 4 * exact" in out.getvalue()
    assert f"culprit: {module}:cross_entropy_no_mean is wrong" in out.getvalue()


CASE = """
cases:
  - id: f
    kind: function
    function: {torch: "%s"}
    reference: %s
    sample:
      count: 1
      vars:
        x: {shape: [2, 3], uniform: [-1, 1]}
"""


@pytest.mark.parametrize(("target", "reference", "expected"), [
    ("no_such_module_here:f", "x", (4, 23, "no module named 'no_such_module_here' (gradspec looks in")),
    ("{mod}:nothing", "x", (4, 23, "defines no 'nothing'")),
    ("{mod}:softmax", "softmax(y)", (5, 24, "undefined variable 'y' (inputs: x)")),
    ("{mod}:softmax", "x @ x", (5, 18, "")),
])
def test_a_bad_function_or_reference_is_a_located_error(write_case: Callable[..., Path], module: str, target: str,
                                                        reference: str, expected: tuple[int, int, str]) -> None:
    path = write_case(CASE % (target.replace("{mod}", module), reference))
    err = io.StringIO()
    assert main(["validate", str(path)], stdout=io.StringIO(), stderr=err) == 2
    line, col, fragment = expected
    assert f"{path}:{line}:{col}:" in err.getvalue() and fragment in err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_a_function_of_another_shape_fails_its_run(write_case: Callable[..., Path], module: str) -> None:
    # validate reads the module without running it; the run calls the function and judges its output
    path = write_case(CASE % (f"{module}:total", "x"))
    assert main(["validate", str(path)], stdout=io.StringIO(), stderr=io.StringIO()) == 0
    out = io.StringIO()
    assert main(["run", str(path)], stdout=out, stderr=io.StringIO()) == 1
    assert f"engine raised OutputShape: {module}:total returned shape []; the reference has shape [2, 3]" in out.getvalue()


def test_function_names_an_engine(write_case: Callable[..., Path], module: str) -> None:
    path = write_case((CASE % (module + ":softmax", "x")).replace("{torch:", "{tensorflow:"))
    err = io.StringIO()
    assert main(["validate", str(path)], stdout=io.StringIO(), stderr=err) == 2
    assert "tensorflow" in err.getvalue() and f"{path}:4:" in err.getvalue()


def test_expect_and_expr_do_not_apply(write_case: Callable[..., Path], module: str) -> None:
    path = write_case((CASE % (module + ":softmax", "x")) + "    expr: x\n")
    err = io.StringIO()
    assert main(["validate", str(path)], stdout=io.StringIO(), stderr=err) == 2
    assert "'expr' does not apply to a function case" in err.getvalue()


def test_the_examples_run_as_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jax")
    folder = Path(__file__).parent.parent / "examples" / "functions"
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    out = io.StringIO()
    code = main(["run", "functions.gradspec.yaml", "--engine", "torch", "--engine", "jax", "--engine", "builtin"],
                stdout=out, stderr=io.StringIO())
    assert code == 0, out.getvalue()
    assert "3 xfail" in out.getvalue()  # each planted bug fails, as its case declares


def test_pytest_collects_function_cases(pytester: pytest.Pytester) -> None:
    (pytester.path / "fut_plugin.py").write_text(MODULE, encoding="utf-8")
    (pytester.path / "f.gradspec.yaml").write_text(textwrap.dedent(ISSUE.replace("{mod}", "fut_plugin")), encoding="utf-8")
    result = pytester.runpytest("--gradspec-engine", "torch", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_a_function_case_runs_on_its_own_engine_unless_engines_are_given(write_case: Callable[..., Path],
                                                                          module: str) -> None:
    path = write_case(ISSUE.replace("{mod}", module) + "- id: plain\n  expr: x * y\n  at: [{x: 1, y: 2}]\n")
    out = io.StringIO()
    assert main(["run", str(path)], stdout=out, stderr=io.StringIO()) == 0, out.getvalue()
    rows = {line.split()[0]: line.split()[1:] for line in out.getvalue().splitlines() if line.startswith(("builtin ", "torch "))}
    assert rows == {"builtin": ["1", "0", "0", "0", "0", "0", "0", "1"], "torch": ["6", "0", "0", "0", "0", "0", "0", "6"]}
    out = io.StringIO()  # an engine list given filters: the function cases have no builtin function
    assert main(["run", str(path), "--engine", "builtin"], stdout=out, stderr=io.StringIO()) == 0, out.getvalue()
    assert "6 skipped: case is only for engines: torch (6)" in out.getvalue()


def test_a_float32_only_function_case_passes_the_run_of_its_engine(write_case: Callable[..., Path], module: str) -> None:
    # its checks run on torch in float32 (named torch:float32): torch compared, so the run passes
    path = write_case(ISSUE.replace("{mod}", module).replace("[float64, float32]", "[float32]").split("- id: ce")[0])
    for engines in ([], ["--engine", "torch"]):
        out = io.StringIO()
        assert main(["run", str(path), *engines], stdout=out, stderr=io.StringIO()) == 0, out.getvalue()
        rows = [line.split() for line in out.getvalue().splitlines() if line.startswith("torch")]
        assert rows == [["torch:float32", "3", "0", "0", "0", "0", "0", "0", "3"]]
        assert "compared nothing" not in out.getvalue()


def test_a_builtin_function_case_runs_on_a_users_value_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # builtin names the Value-class family: the case runs on any micrograd-style class given as the engine
    (tmp_path / "value_fns.py").write_text("def swish(x):\n    return x * (1 + (-x).exp()) ** -1\n", encoding="utf-8")
    (tmp_path / "v.gradspec.yaml").write_text(textwrap.dedent("""
        cases:
        - id: swish
          kind: function
          function: {builtin: "value_fns:swish"}
          reference: x * sigmoid(x)
          at: [{x: -3.0}, {x: 0.5}]
        """), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent / "data"))
    out = io.StringIO()
    assert main(["run", "v.gradspec.yaml", "--engine", "textbook:Value"], stdout=out, stderr=io.StringIO()) == 0, \
        out.getvalue()
    assert [line.split() for line in out.getvalue().splitlines() if line.startswith("textbook")] == [
        ["textbook:Value", "2", "0", "0", "0", "0", "0", "0", "2"]]


def test_pytest_runs_a_function_case_on_its_own_engine(pytester: pytest.Pytester) -> None:
    (pytester.path / "fut_own.py").write_text(MODULE, encoding="utf-8")
    (pytester.path / "f.gradspec.yaml").write_text(textwrap.dedent(ISSUE.replace("{mod}", "fut_own")), encoding="utf-8")
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=6)
    assert "fused-softmax[draw0][torch]" in result.stdout.str()
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "--gradspec-engine", "builtin")
    result.assert_outcomes(skipped=6)


KINKED = '''
import torch

class ReluOneAtZero(torch.autograd.Function):
    """relu whose backward takes the subgradient 1 at 0 (torch's own relu takes 0)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x >= 0).to(g.dtype)

relu_one_at_zero = ReluOneAtZero.apply
'''


@pytest.mark.parametrize(("kink", "verdict", "said"), [
    ("any", "pass", "another subgradient at a kink (kink: any)"),
    ("convention", "convention", "another subgradient at a kink"),
])
def test_a_function_case_declares_its_kink_as_an_expression_case_does(
        write_case: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kink: str, verdict: str,
        said: str) -> None:
    name = f"kinked_{kink}"
    (tmp_path / f"{name}.py").write_text(KINKED, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write_case(f"""
cases:
  - id: relu-kink
    kind: function
    function: {{torch: "{name}:relu_one_at_zero"}}
    reference: relu(x)
    at:
      x: [[0, 1.5], [-2, 0]]
    kink: {kink}
""")
    (case,) = load_file(path).cases
    (result,) = run_case(case, resolve("torch"))
    assert result.verdict.value == verdict, result.table()
    assert "not declared by the case" not in result.message
    notes = {q.note for q in result.quantities if "(vjp" in q.name}
    assert said in notes
