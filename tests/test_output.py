"""What failures say: tensor headers name the inputs' shapes, function-case rows read as derivatives,
listed points are never cut inside a word, and a multi-line expression keeps its lines in Markdown."""

from __future__ import annotations

from fractions import Fraction

from gradspec.casefile.model import TensorPoint
from gradspec.report import render
from gradspec.report.terminal import failure_lines
from gradspec.results import CheckResult, Quantity, Role, Run, Verdict
from gradspec.run.runner import shapes


def _q(name: str, role: Role = Role.INPUT) -> Quantity:
    return Quantity(name, role, 2.0, 1.0, None, 1.0, 0.5, 1e-9, Verdict.FAIL)


def test_a_tensor_header_names_the_input_shapes() -> None:
    r = CheckResult("softmax(x, axis=-1)", {}, "torch", Verdict.FAIL, (_q("x (vjp0)"),), inputs="x[3, 4]")
    assert r.table().splitlines()[0] == "FAIL  softmax(x, axis=-1)  at x[3, 4]  on torch"
    bare = CheckResult("train", {}, "builtin", Verdict.FAIL)
    assert bare.table().splitlines()[0] == "FAIL  train  on builtin"  # no empty "at   on"
    point = TensorPoint((("x", (3, 4), (Fraction(0),) * 12), ("w", (4,), (Fraction(1),) * 4), ("t", (), (Fraction(1, 2),))))
    assert shapes(point) == "x[3, 4], w[4], t=0.5"


def test_function_case_rows_read_as_derivatives() -> None:
    r = CheckResult("f", {}, "torch", Verdict.FAIL, (_q("float64: x (vjp0)"), _q("float32: value", Role.VALUE),
                                                     _q("x (vjp1)"), _q("float32: linear in the cotangent", Role.PROPERTY)))
    rows = [line.split()[0:3] for line in r.table().splitlines()[2:6]]
    assert rows == [["float64:", "d/dx", "(vjp0)"], ["float32:", "value", "2"], ["d/dx", "(vjp1)", "2"],
                    ["float32:", "linear", "in"]]
    assert "d/dfloat64" not in r.table()


def test_other_failing_points_are_listed_whole_words() -> None:
    message = "inputs x[3, 4]; cotangent seed {}; full Jacobian compared (12 rows) with a long explanation after it"
    results = [CheckResult("softmax(x)", {}, "torch", Verdict.FAIL, (_q("x"),), message=message.format(seed),
                           case_id="s", path="f.yaml", line=3, inputs="x[3, 4]") for seed in (1, 22, 333)]
    line = next(line for line in failure_lines(results) if "more failing points" in line)
    assert line == ("  and 2 more failing points: cotangent seed 22; full Jacobian compared (12 rows) with ...; "
                    "cotangent seed 333; full Jacobian compared (12 rows) ...")


def test_markdown_keeps_a_multi_line_expression() -> None:
    r = CheckResult("a = x * y\nb = a + x\nb * a", {"x": 1.0, "y": 2.0}, "builtin", Verdict.FAIL, (_q("x"),),
                    case_id="prog", path="f.yaml", line=2)
    text = render("md", Run((r,), ("builtin",), ("f.yaml",)))
    assert "- expression:\n\n  ```text\n  a = x * y\n  b = a + x\n  b * a\n  ```\n" in text
    assert "a = x * y b = a + x" not in text
    one = render("md", Run((CheckResult("x * y", {"x": 1.0}, "builtin", Verdict.FAIL, (_q("x"),)),), ("builtin",), ()))
    assert "- expression: `x * y`" in one
