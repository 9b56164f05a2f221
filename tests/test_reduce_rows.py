"""The reductions and scans (gradspec.ops.reduce_rows): shape rules, the lowering's values against hand
and mpmath values, parse errors, kinks at ties and zeros, and the multi-output subscript."""

from __future__ import annotations

import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pytest

from gradspec.cli import main
from gradspec.errors import ExpressionError
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from gradspec.modes import Ask, Mode
from gradspec.reference.modes import mode_reference
from gradspec.reference.tensor import exact_tensor

F = Fraction


def exact(text: str, **inputs: Any) -> tuple[Any, Any]:
    """The exact value (floats) of ``text`` at ``inputs`` and the graph."""
    arrays = {n: np.vectorize(lambda v: F(str(v)), otypes=[object])(np.asarray(v, dtype=object)) for n, v in inputs.items()}
    graph = build_tensor(parse(text), {n: a.shape for n, a in arrays.items()})
    return exact_tensor(graph, arrays), graph


def value(text: str, **inputs: Any) -> Any:
    return exact(text, **inputs)[0].value_floats


def grad(text: str, cotangent: Any = None, **inputs: Any) -> Any:
    ref, graph = exact(text, **inputs)
    cot = np.ones(graph.shape) if cotangent is None else np.asarray(cotangent, dtype=float)
    return ref.vjp(cot).floats["x"]


def shape_of(text: str, **shapes: tuple[int, ...]) -> tuple[int, ...]:
    return build_tensor(parse(text), shapes).shape


X = [[0.5, -1.25, 2.0], [1.5, 0.25, -0.5]]


# -- shapes ----------------------------------------------------------------------------------------------
def test_shapes_of_reductions_scans_and_selections() -> None:
    assert shape_of("prod(x)", x=(2, 3)) == ()
    assert shape_of("prod(x, axis=-1)", x=(2, 3)) == (2,)
    assert shape_of("var(x, axis=0)", x=(2, 3)) == (3,)
    assert shape_of('norm(x, ord="inf", axis=1)', x=(2, 3)) == (2,)
    assert shape_of("amin(x, axis=0)", x=(4, 2, 3)) == (2, 3)
    assert shape_of("cumsum(x, axis=1)", x=(2, 3)) == (2, 3)
    assert shape_of("sort(x, axis=0)[1] * x", x=(2, 3)) == (2, 3)
    assert shape_of("topk(x, k=2)", x=(2, 3)) == (2, 2)
    assert shape_of("topk(x, k=1, axis=0)[1] * x", x=(2, 3)) == (2, 3)
    assert shape_of("sort(x)[0][1]", x=(2, 3)) == (3,)  # the output selected, then indexed


@pytest.mark.parametrize(("text", "shape", "message", "col"), [
    ("var(x, axis=0)", (1, 3), "correction=1 needs 0 <= correction < n, and the reduced axis of [1, 3] has n = 1", 1),
    ("std(x, correction=-1)", (2, 3), "correction=-1 needs 0 <= correction < n", 1),
    ("x + topk(x, k=4)", (2, 3), "topk: k=4 needs 1 <= k <= 3, the size of axis -1 of [2, 3]", 5),
    ("topk(x, k=0, axis=0)", (2, 3), "k=0 needs 1 <= k <= 2", 1),
    ("norm(x, ord=3)", (2, 3), 'norm: ord= takes 1, 2 or "inf", got 3', 1),
    ("sort(x, descending=2)", (3,), "sort: descending= takes 0 or 1, got 2", 1),
    ("cumsum(x, axis=2)", (2, 3), "cumsum: axis 2 is out of range for shape [2, 3]", 1),
    ("cumprod(x, axis=0)", (), "cumprod: needs at least one axis, got a scalar", 1),
    ("prod(x, axis=-3)", (2, 3), "prod: axis -3 is out of range", 1),
])
def test_shape_errors_are_located(text: str, shape: tuple[int, ...], message: str, col: int) -> None:
    with pytest.raises(ExpressionError, match=message.replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")) as info:
        shape_of(text, x=shape)
    assert info.value.col == col


@pytest.mark.parametrize(("text", "message", "col"), [
    ("cumsum(x)", "cumsum needs the keyword axis=", 1),
    ("prod(x, dim=0)", "prod has no keyword 'dim' (keywords: axis)", 9),
    ('norm(x, ord="two")', 'norm: ord= takes an integer or one of "inf", found \'"two"\'', 13),
    ("norm(x, ord=1.5)", "norm: ord= takes an integer, got 1.5", 13),
    ('sort(x, axis="0")', "sort: axis= takes an integer", 14),
    ("topk(x)", "topk needs the keyword k=", 1),
    ("sort(x, output=1)", "sort has no keyword 'output'", 9),
    ("sort(x)[2]", "sort returns 2 outputs (values, indices); subscript it with 0 to 1, found '2'", 9),
])
def test_parse_errors(text: str, message: str, col: int) -> None:
    with pytest.raises(ExpressionError) as info:
        shape_of(text, x=(2, 3))
    assert message in info.value.message and info.value.col == col


# -- values ----------------------------------------------------------------------------------------------
def test_products_moments_and_norms_have_their_hand_values() -> None:
    np.testing.assert_array_equal(value("prod(x, axis=1)", x=X), [-1.25, -0.1875])
    assert value("prod(x)", x=X) == 0.5 * -1.25 * 2.0 * 1.5 * 0.25 * -0.5
    # row 0: mean 5/12, squared deviations (1 + 400 + 361)/144; row 1: (169 + 4 + 121)/144; / 2 and / 3
    np.testing.assert_array_equal(value("var(x, axis=1)", x=X), [float(F(762, 288)), float(F(294, 288))])
    assert value("var(x, axis=1, correction=0)", x=X)[0] == float(F(762, 432))
    with mpmath.workdps(40):
        assert value("std(x, axis=1)", x=X)[0] == float(mpmath.sqrt(mpmath.mpf(762) / 288))
        assert value("norm(x, axis=1)", x=X)[1] == float(mpmath.sqrt(mpmath.mpf("2.5") + mpmath.mpf("0.0625")))
    np.testing.assert_array_equal(value("norm(x, ord=1, axis=0)", x=X), [2.0, 1.5, 2.5])
    assert value('norm(x, ord="inf")', x=X) == 2.0
    np.testing.assert_array_equal(value("amax(x, axis=0)", x=X), [1.5, 0.25, 2.0])
    assert value("amin(x)", x=X) == -1.25


def test_scans_have_their_hand_values() -> None:
    np.testing.assert_array_equal(value("cumsum(x, axis=1)", x=X), [[0.5, -0.75, 1.25], [1.5, 1.75, 1.25]])
    np.testing.assert_array_equal(value("cumprod(x, axis=-1)", x=[[2, 0, 3], [1, -2, 0.5]]), [[2, 0, 0], [1, -2, -1]])
    np.testing.assert_array_equal(value("cummax(x, axis=1)", x=X), [[0.5, 0.5, 2.0], [1.5, 1.5, 1.5]])
    np.testing.assert_array_equal(value("cummin(x, axis=0)", x=X), [[0.5, -1.25, 2.0], [0.5, -1.25, -0.5]])
    # at a tie the index is the latest, as torch's cummax reports it: [1, 3, 3, 2] -> 0, 1, 2, 2
    np.testing.assert_array_equal(value("cummax(x, axis=0)[1] * (x - x + 1)", x=[1, 3, 3, 2]), [0, 1, 2, 2])
    np.testing.assert_array_equal(value("cummin(x, axis=0)[1] * (x - x + 1)", x=[3, 1, 1, 2]), [0, 1, 2, 2])


def test_logcumsumexp_is_each_prefix_log_sum_exp() -> None:
    with mpmath.workdps(50):
        for row in ([0.5, -1.25, 2.0], [-400, 401, -797], [1000, 999.5, -1000]):
            expected = [float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in row[:k + 1])))
                        for k in range(3)]
            assert list(value("logcumsumexp(x, axis=0)", x=row)) == expected
    # d y_0 / d x_0 = 1 however far below the later logits x_0 is (pytorch#196705 loses it)
    np.testing.assert_array_equal(grad("logcumsumexp(x, axis=0)", [1, 0, 0], x=[-400, 401, -797]), [1, 0, 0])


def test_sort_and_topk_values_and_indices() -> None:
    x = [[0.5, -1.25, 2.0, 0.25], [1.5, 0.25, -0.5, 3.0]]
    np.testing.assert_array_equal(value("sort(x)", x=x), [[-1.25, 0.25, 0.5, 2.0], [-0.5, 0.25, 1.5, 3.0]])
    np.testing.assert_array_equal(value("sort(x, descending=1)[0]", x=x), [[2.0, 0.5, 0.25, -1.25], [3.0, 1.5, 0.25, -0.5]])
    np.testing.assert_array_equal(value("sort(x)[1] + 0 * x", x=x), [[1, 3, 0, 2], [2, 1, 0, 3]])
    np.testing.assert_array_equal(value("sort(x, axis=0, descending=1)[1] + 0 * x", x=x), [[1, 1, 0, 1], [0, 0, 1, 0]])
    np.testing.assert_array_equal(value("topk(x, k=2)", x=x), [[2.0, 0.5], [3.0, 1.5]])
    np.testing.assert_array_equal(value("topk(x, k=2)[1] * topk(x, k=2)", x=x), [[4.0, 0.0], [9.0, 0.0]])
    np.testing.assert_array_equal(value("topk(x, k=1, axis=0)", x=x), [[1.5, 0.25, 2.0, 3.0]])
    # a stable sort: tied elements keep their order, in both directions
    np.testing.assert_array_equal(value("sort(x)[1] + 0 * x", x=[2, 1, 2, 1]), [1, 3, 0, 2])
    np.testing.assert_array_equal(value("sort(x, descending=1)[1] + 0 * x", x=[2, 1, 2, 1]), [0, 2, 1, 3])


# -- derivatives -----------------------------------------------------------------------------------------
def test_derivatives_at_zero_factors_are_the_polynomials() -> None:
    # prod of [2, 0, 3]: d/dx = (0, 6, 0); of [0, 1.5, 0]: all 0; cumprod's through a zero factor
    np.testing.assert_array_equal(grad("prod(x, axis=1)", x=[[2, 0, 3], [0, 1.5, 0]]), [[0, 6, 0], [0, 0, 0]])
    # sum_k w_k prod_(i <= k) x_i at (2, 0, 3), w = (1, 2, 3): d/dx0 = 1, d/dx1 = 2*2 + 3*2*3 = 22, d/dx2 = 0
    np.testing.assert_array_equal(grad("cumprod(x, axis=0)", [1, 2, 3], x=[2, 0, 3]), [1, 22, 0])


def test_cumprod_forward_over_forward_at_a_zero_factor_is_144() -> None:
    """pytorch#196701: f(t) = sum(cumprod(x(t)) * w) with x(t) = (t, t + 1, 2 - t, t - 1, 2t + 1, t + 3) is a
    cubic, so its second difference with step 1 is f''(1) exactly; the reference's nested duals agree."""
    w = [[1, 2, 3], [4, 5, 6]]

    def f(t: int) -> Fraction:
        x = [[t, t + 1, 2 - t], [t - 1, 2 * t + 1, t + 3]]
        return F(str(value("sum(cumprod(x, axis=-1) * w)", x=x, w=w)))

    assert f(2) - 2 * f(1) + f(0) == 144
    graph = build_tensor(parse("sum(cumprod(x, axis=-1) * w)"), {"x": (2, 3), "w": (2, 3)}, frozenset({"w"}))
    u = np.array([[1, 1, -1], [1, 2, 1]], dtype=float)
    point = {"x": np.array([[F(1), F(2), F(1)], [F(0), F(3), F(4)]], dtype=object),
             "w": np.array(w, dtype=object)}
    got = mode_reference(graph, point, Ask(frozenset({Mode.JVP_OF_JVP}), (u,), (u,), np.float64(1)), 2.0**-52)
    assert got.jvp_of_jvp is not None and float(got.jvp_of_jvp.floats) == 144


# -- kinks -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "x", "kinks"), [
    ("amax(x)", [1, 3, 3], ("relu at 0",)),
    ("amin(x, axis=0)", [[2, 1], [2, 0]], ("relu at 0",)),
    ("cummax(x, axis=0)", [1, 3, 3], ("relu at 0",)),
    ("sort(x)", [2, 1, 2], ("relu at 0",)),
    ("topk(x, k=2)", [1, 4, 1], ("relu at 0",)),
    ('norm(x, ord="inf")', [2, -2, 1], ("relu at 0",)),
    ("norm(x, ord=1)", [0, 2, 1], ("abs at 0",)),
    ("sort(x)[1] * x", [2, 1, 2], ("relu at 0", "where at a comparison's tie (its operands equal)")),
    ("amax(x) + sort(x) + cummin(x, axis=0) + norm(x, ord=1)", [3, 1, 2], ()),
    ("cumprod(x, axis=0) + prod(x)", [2, 0, 0], ()),  # a zero factor is no kink
])
def test_ties_and_zeros_are_the_scalar_ops_kinks(text: str, x: list[float], kinks: tuple[str, ...]) -> None:
    assert exact(text, x=x)[0].kinks == kinks


def test_the_convention_at_a_tie_gives_the_gradient_to_the_later_element_and_keeps_sorted_order() -> None:
    assert list(grad("amax(x)", x=[1, 3, 3])) == [0, 0, 1]
    assert list(grad("cummax(x, axis=0)", [0, 1, 0], x=[1, 3, 3])) == [0, 1, 0]
    assert list(grad("cummax(x, axis=0)", [0, 0, 1], x=[1, 3, 3])) == [0, 0, 1]
    # sorted (1, 1, 2, 2) from (2, 1, 2, 1): position k's cotangent goes back to the k-th element in stable order
    assert list(grad("sort(x)", [1, 2, 3, 4], x=[2, 1, 2, 1])) == [3, 1, 4, 2]
    assert list(grad("sort(x, descending=1)", [1, 2, 3, 4], x=[2, 1, 2, 1])) == [1, 3, 2, 4]


def _case_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "r.gradspec.yaml"
    path.write_text("version: 1\ncases:\n" + textwrap.indent(textwrap.dedent(body), "  "))
    return path


def test_an_undeclared_tie_is_a_load_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _case_file(tmp_path, """\
        - id: tie
          expr: sort(x, descending=1)
          at: {x: [1, 2, 2]}
        """)
    assert main(["run", str(path), "--engine", "builtin"]) == 2
    err = capsys.readouterr().err
    assert "point 0 lies on a kink (relu at 0); declare `kink: convention` or `kink: any`" in err


@pytest.mark.parametrize(("expr", "message"), [
    ("topk(x, k=5)", "topk: k=5 needs 1 <= k <= 3"),
    ('norm(x, ord="max")', 'norm: ord= takes an integer or one of "inf"'),
    ("sort(x)[1]", "the expression does not depend on any differentiable input"),
])
def test_bad_calls_exit_2_with_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], expr: str, message: str) -> None:
    path = _case_file(tmp_path, f"""\
        - id: bad
          expr: '{expr}'
          at: {{x: [1, 2, 3]}}
        """)
    assert main(["run", str(path), "--engine", "builtin"]) == 2
    err = capsys.readouterr().err
    assert message in err and f"{path}:4" in err


# -- the multi-output subscript --------------------------------------------------------------------------
def test_a_bare_call_is_the_values_and_the_indices_are_data() -> None:
    bare = build_tensor(parse("sort(x)"), {"x": (3,)})
    first = build_tensor(parse("sort(x)[0]"), {"x": (3,)})
    assert bare.steps[-1].kwargs == first.steps[-1].kwargs == (("axis", -1), ("descending", 0), ("output", 0))
    graph = build_tensor(parse("cummin(x, axis=0)[1] * x"), {"x": (3,)})
    assert [s.op for s in graph.steps] == [None, "cummin", "mul"]
    assert graph.varying == (True, False, True)  # the indices do not depend on x differentiably
    # the product's gradient is the indices themselves: they carry no derivative
    assert list(grad("cummin(x, axis=0)[1] * x", x=[3, 1, 2])) == [0, 1, 1]
    assert list(grad("sort(x)[1] * x", x=[3, 1, 2])) == [1, 2, 0]
