"""The exact (SymPy + mpmath) and numerical (central difference + Richardson) references."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import pytest

from gradspec import DomainError, check
from gradspec.checks.check import prepare
from gradspec.engine import Value
from gradspec.reference.exact import DPS
from gradspec.reference.numerical import numerical, relative_error
from gradspec.reference.store import STORE, exact


def ref(expression: str, **point: object):
    graph = prepare(expression, list(point))
    return exact(graph, {k: Fraction(str(v)) for k, v in point.items()})


def digits30(x: mpmath.mpf) -> str:
    with mpmath.workdps(DPS):
        return mpmath.nstr(x, 30)


def truth30(f) -> str:
    with mpmath.workdps(80):
        return mpmath.nstr(f(), 30)


# -- exact gradients to 30 digits ---------------------------------------------------------------------


def test_exp_derivative_at_one_is_e_to_30_digits() -> None:
    e = ref("exp(x)", x=1)
    assert digits30(e.grads["x"]) == truth30(lambda: mpmath.e) == "2.71828182845904523536028747135"
    assert digits30(e.value) == "2.71828182845904523536028747135"


@pytest.mark.parametrize(
    "expression, x, truth",
    [
        ("tanh(x)", "0.5", lambda: 1 - mpmath.tanh(mpmath.mpf("0.5")) ** 2),
        ("sin(x)*x", "2", lambda: mpmath.sin(2) + 2 * mpmath.cos(2)),
        ("sigmoid(x)", "-1.25", lambda: mpmath.exp(1.25) / (1 + mpmath.exp(1.25)) ** 2),
        ("sqrt(x)", "2", lambda: 1 / (2 * mpmath.sqrt(2))),
        ("log(x)*x", "3", lambda: mpmath.log(3) + 1),
        ("x**x", "1.5", lambda: mpmath.mpf("1.5") ** mpmath.mpf("1.5") * (mpmath.log(mpmath.mpf("1.5")) + 1)),
        ("cos(x**2)", "0.7", lambda: -2 * mpmath.mpf("0.7") * mpmath.sin(mpmath.mpf("0.49"))),
    ],
)
def test_exact_gradient_to_30_digits(expression: str, x: str, truth) -> None:
    assert digits30(ref(expression, x=x).grads["x"]) == truth30(truth)


def test_points_are_exact_decimals() -> None:
    # 0.1 is one tenth, not the nearest float: d/dx log(x) at x = 0.1 is exactly 10.
    e = ref("log(x)", x=0.1)
    with mpmath.workdps(DPS):
        assert e.grads["x"] == 10
    assert digits30(ref("x**3", x="0.1").grads["x"]) == "0.03"


def test_exact_text_in_check_results() -> None:
    q = check("exp(x)", {"x": 1}).quantities[1]
    assert q.exact_text == "2.71828182845904523536028747135"
    assert q.exact == math.e


# -- intermediates ------------------------------------------------------------------------------------


def test_intermediate_gradients() -> None:
    e = ref("a = x*y; b = a + x", x=2, y=3)
    assert e.value == 8
    assert e.grads == {"x": 4, "y": 2, "a": 1, "b": 1}


def test_intermediate_used_twice() -> None:
    # a = x + y; out = a*a + x: d/da = 2a, d/dx = 2a + 1, d/dy = 2a
    e = ref("a = x + y; a*a + x", x=1, y=2)
    assert e.value == 10
    assert e.grads == {"x": 7, "y": 6, "a": 6}


def test_intermediate_that_is_an_input() -> None:
    e = ref("a = x; a * 3", x=5)
    assert e.grads == {"x": 3, "a": 3}


def test_unused_input_has_zero_gradient() -> None:
    e = ref("x*2", x=1, y=5)
    assert e.grads == {"x": 2, "y": 0}


# -- caching ------------------------------------------------------------------------------------------


def test_derivation_is_cached() -> None:
    graph = prepare("tanh(x*y) + exp(y)", ["x", "y"])
    d1 = STORE.derivation(graph)
    d2 = STORE.derivation(graph)
    assert d1 is d2
    assert STORE.derivation(prepare("tanh(x*y)  +  exp(y)", ["x", "y"])) is d1  # the same graph by content
    assert set(d1.grads) == {"x", "y"}
    with mpmath.workdps(DPS):
        x, y = d1.symbols["x"], d1.symbols["y"]
        got = d1.evaluate("x", {x: mpmath.mpf(1), y: mpmath.mpf(2)})
        assert got == pytest.approx(2 * (1 - math.tanh(2.0) ** 2), rel=1e-15)


# -- domains ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, point, col, phrase",
    [
        ("log(x)", {"x": -1}, 1, "log needs x > 0"),
        ("log(x)", {"x": 0}, 1, "log needs x > 0"),
        ("x/y", {"x": 1, "y": 0}, 2, "division by zero"),
        ("x/(y - 2)", {"x": 1, "y": 2}, 2, "division by zero"),
        ("sqrt(x)", {"x": -1}, 1, "sqrt needs x >= 0"),
        ("x**0.5", {"x": -1}, 2, "negative base needs an integer exponent"),
        ("x**y", {"x": -2, "y": "0.5"}, 2, "negative base needs an integer exponent"),
        ("x**y", {"x": -2, "y": 2}, 2, "exponent depends on an input"),
        ("(x - 1)**-2", {"x": 1}, 8, "zero to a negative power"),
    ],
)
def test_domain_errors(expression: str, point: dict, col: int, phrase: str) -> None:
    with pytest.raises(DomainError) as info:
        ref(expression, **point)
    assert phrase in info.value.message
    assert info.value.col == col
    result = check(expression, point)
    assert result.verdict.value == "error"
    assert phrase in result.message
    assert result.quantities == ()


def test_negative_base_to_integer_power_is_fine() -> None:
    e = ref("x**3", x=-2)
    assert (e.value, e.grads["x"]) == (-8, 12)


# -- kinks --------------------------------------------------------------------------------------------


def test_relu_kink_reported_with_subgradient_range() -> None:
    e = ref("relu(x)", x=0)
    assert [k.where for k in e.kinks] == ["relu at 0"]
    assert e.grads["x"] == 0
    assert e.subgradients == {"x": (0, 1)}


def test_abs_kink_reported_with_subgradient_range() -> None:
    e = ref("abs(x)", x=0)
    assert [k.where for k in e.kinks] == ["abs at 0"]
    assert e.grads["x"] == 0
    assert e.subgradients == {"x": (-1, 1)}


def test_two_kinks_combine() -> None:
    # 2*relu(x) - abs(x): relu' in [0, 1], abs' in [-1, 1] -> [2*0 - 1, 2*1 + 1] = [-1, 3]
    e = ref("2*relu(x) - abs(x)", x=0)
    assert sorted(k.where for k in e.kinks) == ["abs at 0", "relu at 0"]
    assert e.subgradients["x"] == (-1, 3)


def test_kink_reached_through_arithmetic() -> None:
    e = ref("relu(x - 0.3)", x="0.3")
    assert [k.where for k in e.kinks] == ["relu at 0"]
    assert e.subgradients == {"x": (0, 1)}


def test_no_kink_away_from_zero() -> None:
    e = ref("relu(x) + abs(x)", x="-0.5")
    assert e.kinks == ()
    assert e.subgradients == {}
    assert e.grads["x"] == -1


# -- numerical reference ------------------------------------------------------------------------------


def test_numerical_reference_agrees_on_smooth_functions() -> None:
    graph = prepare("(x*y + x)**2 - tanh(y)", ["x", "y"])
    exact_grads = exact(graph, {"x": Fraction(2), "y": Fraction(3)}).grads
    for name in ("x", "y"):
        num = numerical(graph, {"x": 2.0, "y": 3.0}, name)
        assert num == pytest.approx(float(exact_grads[name]), rel=1e-8)


def test_numerical_reference_of_an_intermediate() -> None:
    graph = prepare("a = x*y; b = a + x", ["x", "y"])
    assert numerical(graph, {"x": 2.0, "y": 3.0}, "a") == pytest.approx(1.0, rel=1e-10)
    assert numerical(graph, {"x": 2.0, "y": 3.0}, "x") == pytest.approx(4.0, rel=1e-10)


def test_numerical_reference_shrinks_its_step_at_a_domain_edge() -> None:
    graph = prepare("sqrt(x)", ["x"])
    num = numerical(graph, {"x": 1e-9}, "x")  # x - h with h = 1e-4 leaves the domain
    assert num is not None
    assert num == pytest.approx(0.5 / math.sqrt(1e-9), rel=1e-3)


def test_numerical_reference_gives_up_outside_the_domain() -> None:
    graph = prepare("sqrt(x)", ["x"])
    assert numerical(graph, {"x": 0.0}, "x") is None


@pytest.mark.parametrize(
    "expression, x, h",
    [
        ("sin(1000*x)", 1, 1e-2),  # huge higher derivatives
        ("exp(x)", 30, 0.1),  # a coarse step where f''' is large
    ],
)
def test_central_difference_poor_where_exact_and_engine_agree(expression: str, x: float, h: float) -> None:
    graph = prepare(expression, ["x"])
    exact_grad = float(exact(graph, {"x": Fraction(x)}).grads["x"])
    num = numerical(graph, {"x": float(x)}, "x", h=h)
    assert num is not None
    assert relative_error(num, exact_grad) > 1e-2  # the numerical reference is badly wrong

    v = Value(float(x))
    out = (v * 1000).sin() if expression.startswith("sin") else v.exp()
    out.backward()
    assert relative_error(v.grad, exact_grad) < 1e-14  # the engine is right

    result = check(expression, {"x": x}, h=h)
    assert result.verdict.value == "pass"
    q = result.quantities[1]
    assert q.numerical == num
    assert q.engine == v.grad
    assert "central difference is poor" in q.note
    assert "central difference is poor" in result.table()


# -- relative error -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [(1.0, 1.1), (-3.0, 2.0), (1e-3, 2e-3), (5.0, -5.0), (1e6, 1e6 + 1), (0.0, 1e-12), (1e-12, -1e-12), (2.5, 0.0)],
)
def test_relative_error_is_the_classic_formula(a: float, b: float) -> None:
    classic = abs(a - b) / max(abs(a), abs(b), 1e-8)
    assert relative_error(a, b) == pytest.approx(classic, rel=1e-15)
    assert relative_error(b, a) == pytest.approx(classic, rel=1e-15)


def test_relative_error_specific_values() -> None:
    assert relative_error(1.0, 1.1) == pytest.approx(0.1 / 1.1)
    assert relative_error(0.0, 1e-12) == pytest.approx(1e-4)  # the 1e-8 floor
    assert relative_error(3.0, 3.0) == 0.0
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(math.inf, math.inf) == 0.0
    assert relative_error(math.inf, 1.0) == math.inf
    assert relative_error(math.nan, 1.0) == math.inf
    assert relative_error(1.0, math.nan) == math.inf
    assert relative_error(1.0, 2.0, floor=10.0) == pytest.approx(0.1)


# -- large graphs -------------------------------------------------------------------------------------


def test_graph_too_large_for_one_sympy_expression_uses_the_exact_chain_rule() -> None:
    source = "a0 = x*1.001\n" + "\n".join(f"a{i} = a{i - 1}*1.001" for i in range(1, 500))
    graph = prepare(source, ["x"])
    assert not STORE.symbolic(graph)
    e = exact(graph, {"x": Fraction(1)})
    with mpmath.workdps(80):
        truth = mpmath.mpf(1001) ** 500 / mpmath.mpf(1000) ** 500
        assert mpmath.nstr(e.grads["x"], 30) == mpmath.nstr(truth, 30)
        assert mpmath.nstr(e.value, 30) == mpmath.nstr(truth, 30)
        assert mpmath.nstr(e.grads["a0"], 30) == mpmath.nstr(truth / mpmath.mpf("1.001"), 30)
    assert e.grads["a499"] == 1
    assert STORE.symbolic(prepare("x*2", ["x"]))
