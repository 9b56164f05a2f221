"""gradspec.engine.Value: the classic hand-written autograd tests, then every op against the exact reference."""

from __future__ import annotations

import math
import time

import pytest

import gradspec
from gradspec.engine import Value


def approx(x: float, rel: float = 1e-12, abs: float = 1e-12):
    return pytest.approx(x, rel=rel, abs=abs)


# -- binary ops ---------------------------------------------------------------------------------------


def test_add() -> None:
    x, y = Value(2.0), Value(-3.5)
    z = x + y
    z.backward()
    assert z.data == -1.5
    assert (x.grad, y.grad, z.grad) == (1.0, 1.0, 1.0)


def test_sub() -> None:
    x, y = Value(2.0), Value(-3.5)
    z = x - y
    z.backward()
    assert z.data == 5.5
    assert (x.grad, y.grad) == (1.0, -1.0)


def test_mul() -> None:
    x, y = Value(2.0), Value(-3.5)
    z = x * y
    z.backward()
    assert z.data == -7.0
    assert (x.grad, y.grad) == (-3.5, 2.0)


def test_div() -> None:
    x, y = Value(3.0), Value(2.0)
    z = x / y
    z.backward()
    assert z.data == 1.5
    assert x.grad == 0.5
    assert y.grad == -0.75  # -x / y**2


def test_pow_with_a_number() -> None:
    x = Value(3.0)
    z = x**2
    z.backward()
    assert z.data == 9.0
    assert x.grad == 6.0
    x = Value(4.0)
    z = x**-0.5
    z.backward()
    assert z.data == 0.5
    assert x.grad == approx(-0.5 * 4.0**-1.5)


def test_pow_with_a_value_exponent() -> None:
    x, y = Value(2.0), Value(3.0)
    z = x**y
    z.backward()
    assert z.data == 8.0
    assert x.grad == 12.0  # y * x**(y-1)
    assert y.grad == approx(8.0 * math.log(2.0))  # x**y * log(x)
    assert z._parents == (x, y)


def test_pow_zero_exponent_at_zero() -> None:
    # x**0 is 1 everywhere, so d/dx x**0 = 0, at x = 0 too (0 * 0**-1 must not leak a nan).
    x = Value(0.0)
    z = x**0
    z.backward()
    assert z.data == 1.0
    assert x.grad == 0.0


# -- reflected ops ------------------------------------------------------------------------------------


def test_reflected_mul_and_add() -> None:
    x = Value(3.0)
    z = 2 * x + 1
    z.backward()
    assert z.data == 7.0
    assert x.grad == 2.0
    x = Value(3.0)
    z = 1 + x
    z.backward()
    assert z.data == 4.0
    assert x.grad == 1.0


def test_reflected_sub() -> None:
    x = Value(3.0)
    z = 2 - x
    z.backward()
    assert z.data == -1.0
    assert x.grad == -1.0


def test_reflected_div() -> None:
    x = Value(4.0)
    z = 2 / x
    z.backward()
    assert z.data == 0.5
    assert x.grad == -2.0 / 16.0


def test_reflected_pow() -> None:
    x = Value(3.0)
    z = 2**x
    z.backward()
    assert z.data == 8.0
    assert x.grad == approx(8.0 * math.log(2.0))


def test_neg() -> None:
    x = Value(3.0)
    z = -x
    z.backward()
    assert z.data == -3.0
    assert x.grad == -1.0


# -- unary ops ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("x0, value, grad", [(2.5, 2.5, 1.0), (-2.5, 0.0, 0.0), (0.0, 0.0, 0.0)])
def test_relu(x0: float, value: float, grad: float) -> None:
    x = Value(x0)
    z = x.relu()
    z.backward()
    assert z.data == value
    assert x.grad == grad


def test_tanh() -> None:
    x = Value(0.7)
    z = x.tanh()
    z.backward()
    assert z.data == approx(math.tanh(0.7))
    assert x.grad == approx(1 - math.tanh(0.7) ** 2)


def test_exp() -> None:
    x = Value(1.5)
    z = x.exp()
    z.backward()
    assert z.data == approx(math.exp(1.5))
    assert x.grad == approx(math.exp(1.5))


def test_log() -> None:
    x = Value(4.0)
    z = x.log()
    z.backward()
    assert z.data == approx(math.log(4.0))
    assert x.grad == 0.25


def test_sigmoid() -> None:
    x = Value(0.0)
    z = x.sigmoid()
    z.backward()
    assert z.data == 0.5
    assert x.grad == 0.25
    x = Value(-2.0)
    z = x.sigmoid()
    z.backward()
    s = 1 / (1 + math.exp(2.0))
    assert z.data == approx(s)
    assert x.grad == approx(s * (1 - s))


def test_sigmoid_does_not_overflow() -> None:
    lo, hi = Value(-1000.0).sigmoid(), Value(1000.0).sigmoid()
    assert (lo.data, hi.data) == (0.0, 1.0)


def test_sin_and_cos() -> None:
    x = Value(0.3)
    z = x.sin()
    z.backward()
    assert z.data == approx(math.sin(0.3))
    assert x.grad == approx(math.cos(0.3))
    x = Value(0.3)
    z = x.cos()
    z.backward()
    assert z.data == approx(math.cos(0.3))
    assert x.grad == approx(-math.sin(0.3))


def test_sqrt() -> None:
    x = Value(9.0)
    z = x.sqrt()
    z.backward()
    assert z.data == 3.0
    assert x.grad == approx(1 / 6)


@pytest.mark.parametrize("x0, value, grad", [(-2.0, 2.0, -1.0), (3.0, 3.0, 1.0), (0.0, 0.0, 0.0)])
def test_abs(x0: float, value: float, grad: float) -> None:
    x = Value(x0)
    z = x.abs()
    z.backward()
    assert (z.data, x.grad) == (value, grad)
    x = Value(x0)
    z = abs(x)  # the builtin goes through __abs__
    z.backward()
    assert (z.data, x.grad) == (value, grad)


# -- graph structure ----------------------------------------------------------------------------------


def test_accumulation_x_plus_x() -> None:
    x = Value(3.0)
    z = x + x
    z.backward()
    assert z.data == 6.0
    assert x.grad == 2.0


def test_accumulation_x_times_x() -> None:
    x = Value(3.0)
    z = x * x
    z.backward()
    assert z.data == 9.0
    assert x.grad == 6.0


def test_multiple_paths() -> None:
    x, y = Value(2.0), Value(3.0)
    a = x * y
    b = x + y
    z = a + b
    z.backward()
    assert z.data == 11.0
    assert x.grad == 4.0  # y + 1
    assert y.grad == 3.0  # x + 1
    assert a.grad == 1.0 and b.grad == 1.0


def test_diamond_shared_intermediate() -> None:
    x = Value(1.5)
    a = x * 2  # shared
    b = a + 1
    c = a * 3
    z = b * c  # (2x + 1)(6x) = 12x^2 + 6x
    z.backward()
    assert z.data == 12 * 1.5**2 + 6 * 1.5
    assert x.grad == 24 * 1.5 + 6
    assert a.grad == c.data + 3 * b.data
    # each node's backward ran once: a second ordering pass would double these
    assert b.grad == c.data and c.grad == b.data


def test_shared_node_is_visited_once_in_a_long_ladder() -> None:
    x = Value(1.0)
    y = x
    for _ in range(30):
        y = y + y  # 2**30 paths to x
    y.backward()
    assert y.data == 2.0**30
    assert x.grad == 2.0**30


def test_unused_variable_gets_zero() -> None:
    x, y = Value(2.0), Value(5.0)
    z = x * 3
    z.backward()
    assert x.grad == 3.0
    assert y.grad == 0.0


def test_constant_leaves_get_gradients_too() -> None:
    x = Value(2.0)
    z = x * 3
    z.backward()
    (_, three) = z._parents
    assert three.data == 3.0
    assert three.grad == 2.0


def test_division_by_tiny_number_stays_finite() -> None:
    x = Value(1.0)
    z = x / 1e-8
    z.backward()
    assert z.data == approx(1e8)
    assert x.grad == approx(1e8)
    assert math.isfinite(z.data) and math.isfinite(x.grad)
    y = Value(1e-8)
    z = 1 / y
    z.backward()
    assert z.data == approx(1e8)
    assert y.grad == approx(-1e16)


def test_deep_chain_backpropagates_without_recursion_error() -> None:
    n = 100_000
    c = 1.00001
    x = Value(1.0)
    y = x
    start = time.perf_counter()
    for _ in range(n):
        y = y * c
    y.backward()
    assert time.perf_counter() - start < 10
    assert y.data == approx(c**n, rel=1e-9)
    assert x.grad == approx(c**n, rel=1e-9)
    assert x.grad == approx(math.exp(n * math.log(c)), rel=1e-9)


def test_deep_chain_of_unary_ops() -> None:
    x = Value(0.5)
    y = x
    for _ in range(100_000):
        y = -y
    y.backward()
    assert y.data == 0.5  # an even number of negations
    assert x.grad == 1.0


def test_backward_seeds_output_grad_with_one() -> None:
    x = Value(2.0)
    z = x * 5
    z.backward()
    assert z.grad == 1.0


def test_grads_accumulate_across_backward_calls() -> None:
    x = Value(2.0)
    (x * 3).backward()
    (x * 4).backward()
    assert x.grad == 7.0


# -- IEEE behaviour -----------------------------------------------------------------------------------


def test_exp_overflow_is_inf_not_an_exception() -> None:
    x = Value(1000.0)
    z = x.exp()
    z.backward()
    assert z.data == math.inf
    assert x.grad == math.inf


def test_sqrt_derivative_at_zero_is_inf() -> None:
    x = Value(0.0)
    z = x.sqrt()
    z.backward()
    assert z.data == 0.0
    assert x.grad == math.inf


def test_log_at_zero_and_below() -> None:
    x = Value(0.0)
    z = x.log()
    z.backward()
    assert z.data == -math.inf
    assert x.grad == math.inf
    assert math.isnan(Value(-1.0).log().data)


def test_division_by_zero_is_ieee() -> None:
    assert (Value(1.0) / 0.0).data == math.inf
    assert (Value(-1.0) / 0.0).data == -math.inf
    assert math.isnan((Value(0.0) / 0.0).data)
    assert (Value(0.0) ** -1).data == math.inf


def test_pow_of_negative_base_to_fraction_is_nan() -> None:
    assert math.isnan((Value(-8.0) ** (1 / 3)).data)


def test_pow_overflow_is_inf() -> None:
    assert (Value(10.0) ** 400).data == math.inf


# -- attributes ---------------------------------------------------------------------------------------


def test_op_and_parents_attributes() -> None:
    x, y = Value(2.0), Value(3.0)
    assert x._op == "" and x._parents == ()
    cases = {
        "add": x + y, "sub": x - y, "mul": x * y, "div": x / y, "pow": x**y,
    }
    for op, node in cases.items():
        assert node._op == op
        assert node._parents == (x, y)
    for op in ("relu", "tanh", "exp", "log", "sigmoid", "sin", "cos", "sqrt", "abs"):
        node = getattr(x, op)()
        assert node._op == op
        assert node._parents == (x,)
    assert (-x)._op == "neg" and (-x)._parents == (x,)
    const_pow = x**2
    assert const_pow._op == "pow" and const_pow._parents == (x,)
    reflected = 2 * x
    assert reflected._op == "mul"
    assert reflected._parents[1] is x and reflected._parents[0].data == 2.0
    assert repr(Value(1.5)) == "Value(data=1.5, grad=0.0)"
    assert isinstance(Value(3).data, float)


def test_module_doctest_example() -> None:
    x, y = Value(2.0), Value(3.0)
    z = (x * y + x) ** 2 - y.tanh()
    z.backward()
    assert x.grad == 64.0
    assert y.grad == approx(32.0 - (1 - math.tanh(3.0) ** 2))


# -- every op against the exact reference -------------------------------------------------------------

REFERENCE = {
    "add": ("x+y", [{"x": 0.5, "y": 1.5}, {"x": -2, "y": 3.25}, {"x": 7, "y": -0.125}]),
    "sub": ("x-y", [{"x": 0.5, "y": 1.5}, {"x": -2, "y": 3.25}, {"x": 7, "y": -0.125}]),
    "mul": ("x*y", [{"x": 0.5, "y": 1.5}, {"x": -2, "y": 3.25}, {"x": 7, "y": -0.125}]),
    "div": ("x/y", [{"x": 0.5, "y": 1.5}, {"x": -2, "y": 3.25}, {"x": 7, "y": -0.125}]),
    "pow": ("x**y", [{"x": 2, "y": 3}, {"x": 0.7, "y": -1.5}, {"x": 1.3, "y": 0.5}]),
    "pow-const": ("x**3", [{"x": 2}, {"x": -1.5}, {"x": 0}]),
    "pow-frac": ("x**0.5", [{"x": 2}, {"x": 0.01}, {"x": 9}]),
    "neg": ("-x", [{"x": 0.5}, {"x": -2}, {"x": 0}]),
    "relu": ("relu(x)", [{"x": 0.5}, {"x": -2}, {"x": 0}]),
    "tanh": ("tanh(x)", [{"x": 0.5}, {"x": -2}, {"x": 0}, {"x": 20}]),
    "exp": ("exp(x)", [{"x": 0.5}, {"x": -2}, {"x": 0}, {"x": 1000}]),
    "log": ("log(x)", [{"x": 0.5}, {"x": 2}, {"x": 1}, {"x": "1e-5"}]),
    "sigmoid": ("sigmoid(x)", [{"x": 0.5}, {"x": -2}, {"x": 0}, {"x": -50}]),
    "sin": ("sin(x)", [{"x": 0.5}, {"x": -2}, {"x": 0}, {"x": 100}]),
    "cos": ("cos(x)", [{"x": 0.5}, {"x": -2}, {"x": 0}, {"x": 100}]),
    "sqrt": ("sqrt(x)", [{"x": 0.5}, {"x": 2}, {"x": 0}, {"x": "1e-9"}]),
    "abs": ("abs(x)", [{"x": 0.5}, {"x": -2}, {"x": 0}]),
    "rmul": ("2 * x", [{"x": 0.5}, {"x": -2}]),
    "rsub": ("2 - x", [{"x": 0.5}, {"x": -2}]),
    "rdiv": ("2 / x", [{"x": 0.5}, {"x": -2}]),
    "rpow": ("2 ** x", [{"x": 0.5}, {"x": -2}, {"x": 10}]),
    "composite": ("(x*y + x)**2 - tanh(y)", [{"x": 2, "y": 3}, {"x": -0.5, "y": 0.25}]),
    "intermediates": ("a = x*y; b = a + x", [{"x": 2, "y": 3}, {"x": -1, "y": 0.5}]),
}


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_every_op_matches_the_exact_reference(key: str) -> None:
    expression, points = REFERENCE[key]
    for point in points:
        result = gradspec.check(expression, point)
        assert result.verdict is gradspec.Verdict.PASS, result.table()
        names = [q.name for q in result.quantities]
        assert names[0] == "value"
        assert set(names[1:]) >= set(point)
        for q in result.quantities:
            assert q.verdict is gradspec.Verdict.PASS
            assert q.engine == q.exact or q.abs_error <= q.tolerance


def test_reference_covers_every_op() -> None:
    from gradspec.ops.table import OPS

    covered = {k.split("-")[0] for k in REFERENCE}
    assert set(OPS) <= covered
