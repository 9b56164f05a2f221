"""Tensor case files: the format of issue 15 loads into frozen tensor cases, draws are reproducible, and
every kind of bad tensor input is refused with a located error (exit 2 from ``gradspec validate``)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from gradspec.casefile.loader import load_file
from gradspec.casefile.model import TensorPoint, TensorSpec, data_dir

ISSUE = """
version: 1
cases:
- id: attention-scores
  expr: softmax((q @ transpose(k)) / 2, axis=-1) @ v
  sample:
    count: 3
    vars:
      q: {shape: [3, 4], normal: [0, 1]}
      k: {shape: [5, 4], normal: [0, 1]}
      v: {shape: [5, 2], uniform: [-1, 1]}
- id: cross-entropy
  expr: cross_entropy(x @ w, t)
  sample:
    count: 3
    vars:
      x: {shape: [6, 4], uniform: [-1, 1]}
      w: {shape: [4, 5], normal: [0, 1]}
      t: {shape: [6], integers: [0, 5], differentiable: false}
- id: fixed
  expr: sum(x * log(y))
  at: {x: [[1, 2], [3, 4]], y: [[0.5, 1.5], [2.5, 3.5]]}
"""


def test_the_issue_example_loads(write_case: Callable[..., Path]) -> None:
    cases = {c.id: c for c in load_file(write_case(ISSUE)).cases}
    attention = cases["attention-scores"]
    assert attention.kind == "tensor" and attention.sampled and len(attention.points) == 3
    assert isinstance(attention.spec, TensorSpec)
    assert attention.spec.graph.shapes == {"q": (3, 4), "k": (5, 4), "v": (5, 2)}
    assert attention.spec.graph.shape == (3, 2)
    v = attention.points[0].arrays()["v"]  # type: ignore[union-attr]
    assert v.shape == (5, 2) and all(-1 <= x <= 1 for x in v.flat)

    ce = cases["cross-entropy"]
    assert ce.spec.graph.data == {"t"}  # type: ignore[union-attr]
    targets = [int(x) for p in ce.points for x in p.arrays()["t"].flat]  # type: ignore[union-attr]
    assert all(0 <= t < 5 for t in targets) and len(set(targets)) > 1
    assert all(isinstance(x, Fraction) and x.denominator == 1 for p in ce.points for x in p.arrays()["t"].flat)  # type: ignore[union-attr]

    fixed = cases["fixed"]
    (point,) = fixed.points
    assert isinstance(point, TensorPoint)
    assert point.arrays()["y"].tolist() == [[Fraction(1, 2), Fraction(3, 2)], [Fraction(5, 2), Fraction(7, 2)]]
    assert point.label == "x=2x2,y=2x2"


def test_draws_repeat_and_adding_draws_keeps_the_earlier_ones(write_case: Callable[..., Path]) -> None:
    first = load_file(write_case(ISSUE, "a.gradspec.yaml")).cases[0].points
    again = load_file(write_case(ISSUE, "b.gradspec.yaml")).cases[0].points
    more = load_file(write_case(ISSUE.replace("count: 3", "count: 5", 1), "c.gradspec.yaml")).cases[0].points
    assert first == again
    assert more[:3] == first and len(more) == 5
    assert len({p.seed for p in more}) == 5  # type: ignore[union-attr]


def test_a_scalar_expression_with_a_tensor_op_is_a_tensor_case(write_case: Callable[..., Path]) -> None:
    case = load_file(write_case("""
        cases:
          - id: s
            expr: sum(x) * logsumexp(x)
            at: {x: [0.5, 1.5]}
          - id: scalar
            expr: x * 2
            at: {x: 3}
        """)).cases
    assert [c.kind for c in case] == ["tensor", "gradient"]


def test_the_library_tensor_file_covers_every_tensor_op() -> None:
    from gradspec.ops.table import OPS, TENSOR_OPS

    cases = load_file(data_dir("cases") / "tensors.gradspec.yaml").cases
    used = {step.op for c in cases for step in c.spec.graph.steps if step.op}  # type: ignore[union-attr]
    # each group of tensor ops has its own case file beside it (indexing.gradspec.yaml, ...)
    groups = [load_file(p).cases for p in sorted(data_dir("cases").glob("*.gradspec.yaml")) if p.name != "tensors.gradspec.yaml"]
    assert set(TENSOR_OPS) <= used | {s.op for g in groups for c in g if c.kind == "tensor"
                                      for s in c.spec.graph.steps if s.op}  # type: ignore[union-attr]
    # calls and binary operators of the table's basic rows (the special functions' tensor cases are in
    # activations.gradspec.yaml, checked on every engine by the conformance tests)
    from gradspec.ops.special_rows import ROWS as SPECIAL

    special = {row.name for row in SPECIAL}
    assert {name for name, o in OPS.items() if (o.symbol is None or o.arity == 2) and name not in special} <= used
    assert {c.kink for c in cases} >= {"convention", "any"}


def test_integers_and_masks_are_data(write_case: Callable[..., Path]) -> None:
    (case,) = load_file(write_case("""
        cases:
          - id: m
            expr: sum(m * x)
            sample:
              count: 4
              vars:
                x: {shape: [3], normal: [0, 1]}
                m: {shape: [3], integers: [0, 2], differentiable: false}
        """)).cases
    graph = case.spec.graph  # type: ignore[union-attr]
    assert graph.differentiable == (("x", 0),)
    assert {int(v) for p in case.points for v in p.arrays()["m"].flat} == {0, 1}  # type: ignore[union-attr]


TOO_BIG = """
cases:
  - id: big
    expr: sum(x)
    sample:
      count: 1
      vars:
        x: {shape: [1001, 1000], normal: [0, 1]}
"""


def test_the_element_cap_is_a_located_error(write_case: Callable[..., Path], assert_invalid: Callable[..., list[str]]) -> None:
    # Refused before anything is drawn: a million draws would not fit the fixture's 2 s of CPU time.
    assert_invalid(write_case(TOO_BIG), [(7, 20, "input x has 1,001,000 elements; the limit is 1,000,000 per input")])


def test_the_element_cap_is_configurable_and_covers_written_tensors(
        write_case: Callable[..., Path], assert_invalid: Callable[..., list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    from gradspec.limits import LIMITS

    monkeypatch.setattr(LIMITS, "elements", 3)
    assert_invalid(write_case("""
cases:
  - id: written
    expr: sum(x)
    at: {x: [1, 2, 3, 4]}
"""), [(4, 13, "the tensor has 4 elements; the limit is 3 per input")])


@pytest.mark.parametrize("text, expected", [
    ("""
cases:
  - id: a
    expr: softmax(x @ w, axis=-1)
    sample:
      count: 1
      vars:
        x: {shape: [3, 4], normal: [0, 1]}
        w: {shape: [5, 4], normal: [0, 1]}
""", [(3, 21, "expr: matmul: [3, 4] @ [5, 4]: inner dimensions 4 and 5 differ")]),
    ("""
cases:
  - id: a
    expr: sum(x)
    at: {x: [[1, 2], [3]]}
""", [(4, 13, "a tensor is a rectangular nested list of numbers")]),
    ("""
cases:
  - id: a
    expr: sum(x * y)
    at:
      - {x: [1, 2], y: [1, 2]}
      - {x: [1, 2, 3], y: [1, 2, 3]}
""", [(6, 9, "every point must give the same variables with the same shapes")]),
    ("""
cases:
  - id: a
    expr: sum(log(x))
    at: {x: [1, -2]}
""", [(4, 9, "point 0 is outside the domain: log needs x > 0")]),
    ("""
cases:
  - id: a
    expr: sum(relu(x))
    at: {x: [1, 0]}
""", [(4, 9, "point 0 lies on a kink (relu at 0); declare `kink: convention` or `kink: any`")]),
    ("""
cases:
  - id: a
    expr: sum(x)
    at: {x: [1, 2]}
    expect: {value: 3}
""", [(5, 5, "expect does not apply to a tensor case")]),
    ("""
cases:
  - id: a
    expr: sum(x * y)
    at: {x: [1, 2], y: [3, 4]}
    expect: {grad: {x: [3, 4], y: [1, 2]}}
""", [(5, 5, "expect does not apply to a tensor case")]),  # arrays the schema refuses: said once, as it is
    ("""
cases:
  - id: a
    expr: cross_entropy(z, t)
    sample:
      count: 1
      vars:
        z: {shape: [2, 3], normal: [0, 1]}
        t: {shape: [2], integers: [3, 3], differentiable: false}
""", [(8, 35, "integers needs low < high")]),
    ("""
cases:
  - id: a
    expr: cross_entropy(z, t)
    sample:
      count: 1
      vars:
        z: {shape: [2, 3], normal: [0, 1]}
        t: {shape: [2], integers: [0, 3]}
""", [(3, 11, "expr: cross_entropy: argument 2 must be an input marked `differentiable: false`")]),
    ("""
cases:
  - id: a
    expr: sum(z)
    at: {z: [1, 2]}
    data_inputs: [q]
""", [(5, 18, "data_inputs names 'q', which is not an input")]),
    ("""
cases:
  - id: a
    expr: sum(x, dim=0)
    at: {x: [1, 2]}
""", [(3, 18, "expr: sum has no keyword 'dim' (keywords: axis)")]),
    ("""
cases:
  - id: a
    expr: sum(x)
    sample:
      count: 1
      vars:
        x: {shape: [2, 0], normal: [0, 1]}
""", [(7, 24, "0 is less than the minimum of 1")]),
])
def test_bad_tensor_input_is_refused_where_it_is(write_case: Callable[..., Path], assert_invalid: Callable[..., list[str]],
                                                 text: str, expected: list[tuple[int, int, str]]) -> None:
    assert_invalid(write_case(text), expected)


def test_nested_lists_become_arrays_of_exact_decimals(write_case: Callable[..., Path]) -> None:
    (case,) = load_file(write_case("""
        cases:
          - id: a
            expr: sum(x * y)
            at: {x: [[0.1, 0.2, 0.3]], y: 2}
        """)).cases
    arrays = case.points[0].arrays()  # type: ignore[union-attr]
    assert arrays["x"].shape == (1, 3) and arrays["x"][0, 0] == Fraction(1, 10)
    assert arrays["y"].shape == () and arrays["y"][()] == 2
    assert np.asarray(arrays["x"], dtype=float).tolist() == [[0.1, 0.2, 0.3]]


def test_scalar_work_never_imports_numpy() -> None:
    # NumPy starts a BLAS thread when imported, and a process with threads spawns its workers instead of
    # forking them: only tensor cases and the modes beyond first order (which run on the tensor
    # machinery, and on the built-in engine include forward mode by default) may pay for it.
    import subprocess
    import sys

    code = ("import sys; from gradspec.cli import main; import gradspec.plugin, gradspec.run.runner; "
            "main(['run', sys.argv[1], '-q', '--check', 'value,vjp']); print('numpy' in sys.modules)")
    library = Path(__file__).resolve().parent.parent / "cases" / "ops.gradspec.yaml"
    out = subprocess.run([sys.executable, "-c", code, str(library)], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr
