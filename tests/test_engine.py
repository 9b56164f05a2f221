"""gradspec.engine.Value: the classic hand-written autograd tests, then every op against the exact reference."""

from __future__ import annotations

import doctest
import math
import time
from collections.abc import Callable

import pytest

import gradspec
import gradspec.engine as engine_module
import gradspec.engine_graph as engine_graph
from gradspec.engine import Value, grad, jvp


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
    from gradspec.ops.table import OPS

    for op, row in OPS.items():  # every op the table spells as a method of one or two Values
        if row.method is None or row.value_call is not None:
            continue
        others = (y,) * (row.arity - 1)
        node = getattr(x, op)(*others)
        assert node._op == op
        assert node._parents == (x, *others)
    chosen = Value.where(True, x, y)  # where's first operands are data: the Value class is given the comparison
    assert chosen._op == "where" and chosen._parents == (x, y) and chosen.data == 2.0
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
    from tests.test_engine_special import COVERED  # the special functions, to third order there

    covered = {k.split("-")[0] for k in REFERENCE} | COVERED
    assert set(OPS) <= covered


# -- grad, create_graph, jvp: derivatives of any order --------------------------------------------------


def hessian(f: Value, xs: list[Value]) -> list[list[float]]:
    """Reverse over reverse: the gradient with create_graph, then the gradient of each entry."""
    rows = []
    for g in grad(f, xs, create_graph=True):
        rows.append([float(h) for h in grad(g, xs)] if isinstance(g, Value) else [0.0] * len(xs))
    return rows


def hvp_forward_over_reverse(f: Value, xs: list[Value], v: list[float]) -> list[float]:
    """Forward over reverse: the jvp of each entry of the gradient, along v."""
    out = []
    for g in grad(f, xs, create_graph=True):
        t = jvp(g, dict(zip(xs, v, strict=True))) if isinstance(g, Value) else 0.0
        out.append(t.data if isinstance(t, Value) else t)
    return out


def data(v: Value | float) -> float:
    return v.data if isinstance(v, Value) else v


def test_module_doctests() -> None:
    assert doctest.testmod(engine_module).failed == 0
    walks = doctest.testmod(engine_graph)  # grad's and jvp's examples
    assert walks.attempted > 0 and walks.failed == 0


def test_grad_first_order_leaves_every_grad_untouched() -> None:
    x, y = Value(2.0), Value(3.0)
    z = (x * y + x) ** 2 - y.tanh()
    x.grad = 5.0
    gx, gy = grad(z, [x, y])
    assert gx == 64.0
    assert gy == approx(32.0 - (1 - math.tanh(3.0) ** 2))
    assert isinstance(gx, float) and isinstance(gy, float)
    assert x.grad == 5.0 and y.grad == 0.0 and z.grad == 0.0
    z.backward()
    assert (x.grad, y.grad) == (5.0 + gx, gy)  # backward agrees with grad, and accumulates


def test_grad_of_an_unreached_input_an_intermediate_and_the_output_itself() -> None:
    x, y, w = Value(2.0), Value(3.0), Value(7.0)
    a = x * y
    z = a * a + x
    assert grad(z, [w, a, x, z]) == [0.0, 2 * a.data, 2 * a.data * y.data + 1, 1.0]
    assert grad(z, [w], create_graph=True) == [0.0]
    (dz,) = grad(z, [z], create_graph=True)
    assert isinstance(dz, Value) and dz.data == 1.0
    assert grad(x * 3, [x], create_graph=True)[0].data == 3.0


def test_hessian_of_a_small_function_by_hand() -> None:
    # f = x*y*y + tanh(x): f_xx = -2 tanh(x) (1 - tanh(x)^2), f_xy = 2y, f_yy = 2x
    for x0, y0 in [(0.5, 2.0), (-1.3, 0.25), (0.0, -3.0)]:
        x, y = Value(x0), Value(y0)
        f = x * y * y + x.tanh()
        t = math.tanh(x0)
        gx, gy = grad(f, [x, y], create_graph=True)
        assert isinstance(gx, Value) and isinstance(gy, Value)
        assert gx.data == approx(y0 * y0 + 1 - t * t)
        assert gy.data == approx(2 * x0 * y0)
        h = hessian(f, [x, y])
        assert h[0][0] == approx(-2 * t * (1 - t * t))
        assert h[0][1] == approx(2 * y0) and h[1][0] == approx(2 * y0)
        assert h[1][1] == approx(2 * x0)
        assert x.grad == 0.0 and y.grad == 0.0


def test_third_and_fourth_derivatives_of_sin_and_exp() -> None:
    x0 = 0.7
    x = Value(x0)
    d: Value | float = x.sin()
    expected = [math.cos(x0), -math.sin(x0), -math.cos(x0), math.sin(x0)]
    for want in expected:
        (d,) = grad(d, [x], create_graph=True)
        assert data(d) == approx(want)
    x = Value(x0)
    d = x.exp()
    for _ in range(4):
        (d,) = grad(d, [x], create_graph=True)
        assert data(d) == approx(math.exp(x0))
    x = Value(2.0)  # x**4: 4x^3, 12x^2, 24x, 24, then 0 (x**0's gradient is exactly 0)
    d = x**4
    for want in [32.0, 48.0, 48.0, 24.0]:
        (d,) = grad(d, [x], create_graph=True)
        assert data(d) == want
    assert grad(d, [x]) == [0.0]


def test_jvp_is_the_gradient_along_the_tangent() -> None:
    x, y = Value(0.5), Value(2.0)
    f = x * y * y + x.tanh()
    gx, gy = grad(f, [x, y])
    for u in [(1.0, 0.0), (0.0, 1.0), (0.3, -1.7)]:
        t = jvp(f, {x: u[0], y: u[1]})
        assert isinstance(t, Value)
        assert t.data == approx(gx * u[0] + gy * u[1])
    assert jvp(f, {}) == 0.0
    assert jvp(f, {Value(1.0): 1.0}) == 0.0  # a tangent that does not reach the output
    assert jvp(x, {x: 2.5}).data == 2.5
    assert x.grad == 0.0 and f.grad == 0.0


def test_jvp_of_jvp_is_u_hessian_w() -> None:
    x, y = Value(0.5), Value(2.0)
    f = x * y * y + x.tanh()
    h = hessian(f, [x, y])
    for u, w in [((1.0, 0.0), (1.0, 0.0)), ((0.3, -1.7), (2.0, 0.5)), ((1.0, 1.0), (0.0, 1.0))]:
        inner = jvp(f, {x: u[0], y: u[1]})
        assert isinstance(inner, Value)
        outer = jvp(inner, {x: w[0], y: w[1]})
        want = sum(u[i] * h[i][j] * w[j] for i in range(2) for j in range(2))
        assert data(outer) == approx(want)


def test_jvp_takes_value_tangents_and_intermediate_seeds() -> None:
    x, s = Value(1.5), Value(0.25)
    f = (x * x).sin()
    t = jvp(f, {x: s})  # a Value tangent: d/ds of the jvp is the gradient itself
    assert isinstance(t, Value)
    assert t.data == approx(math.cos(2.25) * 3.0 * 0.25)
    assert grad(t, [s]) == [approx(math.cos(2.25) * 3.0)]
    x = Value(1.5)
    a = x * x
    f = a.sin()
    # a seed on a non-leaf adds to what flows into it: linear in the seeds, like grad w.r.t. a
    assert data(jvp(f, {a: 1.0})) == approx(grad(f, [a])[0])
    both = data(jvp(f, {x: 1.0, a: 1.0}))
    assert both == approx(data(jvp(f, {x: 1.0})) + data(jvp(f, {a: 1.0})))


# Each op, on two inputs where it takes two, with its exact Hessian written out by hand.
HESSIANS: dict[str, tuple[Callable[[Value, Value], Value], float, float, Callable[[float, float], list[list[float]]]]] = {
    "add": (lambda x, y: x + y, 0.7, -1.2, lambda x, y: [[0, 0], [0, 0]]),
    "sub": (lambda x, y: x - y, 0.7, -1.2, lambda x, y: [[0, 0], [0, 0]]),
    "mul": (lambda x, y: x * y, 0.7, -1.2, lambda x, y: [[0, 1], [1, 0]]),
    "div": (lambda x, y: x / y, 0.7, -1.2, lambda x, y: [[0, -1 / y**2], [-1 / y**2, 2 * x / y**3]]),
    "pow-const": (lambda x, y: x**3.5, 0.7, -1.2, lambda x, y: [[3.5 * 2.5 * x**1.5, 0], [0, 0]]),
    "pow": (lambda x, y: x**y, 0.7, -1.2, lambda x, y: [
        [y * (y - 1) * x ** (y - 2), x ** (y - 1) * (1 + y * math.log(x))],
        [x ** (y - 1) * (1 + y * math.log(x)), x**y * math.log(x) ** 2]]),
    "neg": (lambda x, y: -x, 0.7, -1.2, lambda x, y: [[0, 0], [0, 0]]),
    "tanh": (lambda x, y: x.tanh(), 0.7, -1.2,
             lambda x, y: [[-2 * math.tanh(x) * (1 - math.tanh(x) ** 2), 0], [0, 0]]),
    "exp": (lambda x, y: x.exp(), 0.7, -1.2, lambda x, y: [[math.exp(x), 0], [0, 0]]),
    "log": (lambda x, y: x.log(), 0.7, -1.2, lambda x, y: [[-1 / x**2, 0], [0, 0]]),
    "sigmoid": (lambda x, y: x.sigmoid(), 0.7, -1.2, lambda x, y: [[_sig2(x), 0], [0, 0]]),
    "sin": (lambda x, y: x.sin(), 0.7, -1.2, lambda x, y: [[-math.sin(x), 0], [0, 0]]),
    "cos": (lambda x, y: x.cos(), 0.7, -1.2, lambda x, y: [[-math.cos(x), 0], [0, 0]]),
    "sqrt": (lambda x, y: x.sqrt(), 0.7, -1.2, lambda x, y: [[-0.25 * x**-1.5, 0], [0, 0]]),
    "relu": (lambda x, y: x.relu(), 0.7, -1.2, lambda x, y: [[0, 0], [0, 0]]),
    "abs": (lambda x, y: y.abs(), 0.7, -1.2, lambda x, y: [[0, 0], [0, 0]]),
}


def _sig2(x: float) -> float:
    s = 1 / (1 + math.exp(-x))
    return s * (1 - s) * (1 - 2 * s)


def test_hessians_cover_every_op() -> None:
    from gradspec.ops.table import OPS
    from tests.test_engine_special import COVERED  # the special functions, to third order there

    assert set(OPS) <= {k.split("-")[0] for k in HESSIANS} | COVERED


@pytest.mark.parametrize("key", sorted(HESSIANS))
def test_every_op_second_derivatives_forward_over_reverse_and_reverse_over_reverse(key: str) -> None:
    f, x0, y0, exact = HESSIANS[key]
    x, y = Value(x0), Value(y0)
    out = f(x, y)
    h = hessian(out, [x, y])
    want = exact(x0, y0)
    for i in range(2):
        for j in range(2):
            assert h[i][j] == approx(want[i][j]), (i, j)
    for v in [(1.0, 0.0), (0.0, 1.0), (0.6, -2.5)]:
        hv = hvp_forward_over_reverse(out, [x, y], list(v))
        assert hv == [approx(h[i][0] * v[0] + h[i][1] * v[1]) for i in range(2)]
        # forward over forward: u^T H v with u = v
        inner = jvp(out, {x: v[0], y: v[1]})
        ff = data(jvp(inner, {x: v[0], y: v[1]})) if isinstance(inner, Value) else 0.0
        assert ff == approx(sum(v[i] * h[i][j] * v[j] for i in range(2) for j in range(2)))


@pytest.mark.parametrize("key", sorted(HESSIANS))
def test_every_op_second_derivatives_through_a_chain(key: str) -> None:
    # The op applied to inner functions of (x, y): the first partials meet the chain rule's second term.
    f, _, _, _ = HESSIANS[key]
    for x0, y0 in [(0.4, 1.3), (1.1, 0.6)]:
        x, y = Value(x0), Value(y0)
        out = f(x * y + 0.5, (x - 0.3 * y).exp())
        h = hessian(out, [x, y])
        assert h[0][1] == approx(h[1][0], rel=1e-10)  # a Hessian is symmetric
        for v in [(1.0, 0.0), (0.3, 0.8)]:
            hv = hvp_forward_over_reverse(out, [x, y], list(v))
            assert hv == [approx(h[i][0] * v[0] + h[i][1] * v[1], rel=1e-10) for i in range(2)]
        # the second derivative against a central difference of the first derivative
        eps = 1e-6
        xp, xm = Value(x0 + eps), Value(x0 - eps)
        yy = Value(y0)
        gp = grad(f(xp * yy + 0.5, (xp - 0.3 * yy).exp()), [xp])[0]
        gm = grad(f(xm * yy + 0.5, (xm - 0.3 * yy).exp()), [xm])[0]
        assert h[0][0] == approx((gp - gm) / (2 * eps), rel=1e-5, abs=1e-6)


def test_create_graph_values_equal_the_float_path_for_every_op() -> None:
    # The same partials serve both paths: the Values' data is the float gradient, edges included.
    points = [0.0, 0.5, -2.0, 1e-300, 800.0, -800.0, math.inf, math.nan]
    for key, (f, _, _, _) in sorted(HESSIANS.items()):
        for x0 in points:
            for y0 in [0.0, 2.0, -1.5]:
                x, y = Value(x0), Value(y0)
                out = f(x, y)
                floats = grad(out, [x, y])
                values = grad(out, [x, y], create_graph=True)
                out.backward()
                for fl, v, g in zip(floats, values, (x.grad, y.grad), strict=True):
                    assert _same(fl, data(v)), (key, x0, y0)
                    assert _same(fl, g), (key, x0, y0)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_backward_with_create_graph_leaves_values_in_grad() -> None:
    x, y = Value(0.5), Value(2.0)
    f = x * y * y + x.tanh()
    f.backward(create_graph=True)
    t = math.tanh(0.5)
    assert isinstance(x.grad, Value) and isinstance(y.grad, Value) and isinstance(f.grad, Value)
    assert f.grad.data == 1.0
    assert x.grad.data == approx(4 + 1 - t * t)
    assert y.grad.data == approx(2.0)
    assert grad(x.grad, [x, y]) == [approx(-2 * t * (1 - t * t)), approx(4.0)]
    assert grad(y.grad, [x, y]) == [approx(4.0), approx(1.0)]
    # a second backward through a gradient: its second derivatives accumulate into float grads
    x2 = Value(3.0)
    (x2**3).backward(create_graph=True)
    g = x2.grad
    assert isinstance(g, Value) and g.data == 27.0
    x2.grad = 0.0
    g.backward()
    assert x2.grad == 18.0


def test_backward_with_create_graph_adds_to_what_grad_held() -> None:
    x = Value(2.0)
    (x * 3).backward()
    (x * x).backward(create_graph=True)
    assert isinstance(x.grad, Value)
    assert x.grad.data == 3.0 + 4.0
    assert grad(x.grad, [x]) == [2.0]
    x = Value(2.0)
    (x * 5).backward(create_graph=True)
    assert isinstance(x.grad, Value) and x.grad.data == 5.0
    assert grad(x.grad, [x]) == [0.0]  # a constant gradient


def test_second_derivative_survives_a_zero_incoming_gradient() -> None:
    # f = z * x**y at z = 0: df/dy = z x^y log x is 0 there, but d2f/dydz = x^y log x is not.
    x, y, z = Value(2.0), Value(3.0), Value(0.0)
    f = z * x**y
    gy, gz = grad(f, [y, z], create_graph=True)
    assert data(gy) == 0.0 and data(gz) == 8.0
    assert isinstance(gy, Value)
    assert grad(gy, [z]) == [approx(8 * math.log(2.0))]


# -- IEEE edges, in every mode ------------------------------------------------------------------------


def test_log_at_zero_in_every_mode() -> None:
    x = Value(0.0)
    f = x.log()
    assert f.data == -math.inf
    assert grad(f, [x]) == [math.inf]
    (g,) = grad(f, [x], create_graph=True)
    assert data(g) == math.inf
    assert grad(g, [x]) == [-math.inf]  # d/dx 1/x = -1/x**2
    assert data(jvp(f, {x: 1.0})) == math.inf
    assert math.isnan(data(jvp(f, {x: 0.0})))  # inf * 0, as torch


def test_pow_zero_exponent_gradient_is_zero_at_zero_in_every_mode() -> None:
    for exponent in (0, Value(0.0)):
        x = Value(0.0)
        f = x**exponent
        assert f.data == 1.0
        assert grad(f, [x]) == [0.0]
        g = grad(f, [x], create_graph=True)[0]
        assert g == 0.0  # no term at all, so nothing to differentiate again
        assert jvp(f, {x: 1.0}) == 0.0
        f.backward(create_graph=True)
        assert data(x.grad) == 0.0


def test_pow_exponent_gets_nothing_where_the_incoming_gradient_is_zero() -> None:
    # log(-2) is nan, but a zero gradient arriving at x**y leaves y's gradient 0, not 0 * nan.
    for z0, want in [(0.0, 0.0), (1.0, math.nan)]:
        x, y, z = Value(-2.0), Value(2.0), Value(z0)
        f = z * x**y
        (gy,) = grad(f, [y])
        (gv,) = grad(f, [y], create_graph=True)
        f.backward()
        for got in (gy, data(gv), y.grad):
            assert _same(got, want)


def test_ieee_overflow_and_undefined_in_second_derivatives() -> None:
    x = Value(1000.0)
    (g,) = grad(x.exp(), [x], create_graph=True)
    assert data(g) == math.inf and grad(g, [x]) == [math.inf]
    x = Value(0.0)
    (g,) = grad(x.sqrt(), [x], create_graph=True)
    assert data(g) == math.inf
    assert grad(g, [x]) == [-math.inf]  # -x**-1.5 / 4 at 0
    x = Value(-1.0)
    (g,) = grad(x.log(), [x], create_graph=True)
    assert data(g) == -1.0  # 1/x, though log(-1) itself is nan
    y = Value(0.0)
    (g,) = grad(Value(1.0) / y, [y], create_graph=True)
    assert data(g) == -math.inf  # -1/y**2
    assert grad(g, [y]) == [math.inf]  # 2/y**3 at +0, through -(1/y)/y


# -- deep graphs and hand-written nodes ---------------------------------------------------------------


def _deep(x: Value, n: int = 10_000) -> Value:
    y = x
    for _ in range(n):
        y = y + 0.0001 * (y * y).sin()  # a chain 10,000 steps deep whose derivatives stay O(1)
    return y


@pytest.mark.slow
def test_deep_chain_second_order_without_recursion_error() -> None:
    x = Value(0.3)
    y = _deep(x)
    (g,) = grad(y, [x], create_graph=True)
    assert isinstance(g, Value)
    (g_float,) = grad(y, [x])
    assert g.data == g_float
    (h,) = grad(g, [x])
    eps = 1e-5
    (up,), (down,) = grad(_deep(xp := Value(0.3 + eps)), [xp]), grad(_deep(xm := Value(0.3 - eps)), [xm])
    assert h == approx((up - down) / (2 * eps), rel=1e-6)
    assert 1 < h < 10
    t = jvp(g, {x: 1.0})  # forward over reverse, as deep
    assert isinstance(t, Value)
    assert t.data == approx(h, rel=1e-12)
    tt = jvp(jvp(y, {x: 1.0}), {x: 1.0})  # forward over forward
    assert data(tt) == approx(h, rel=1e-12)
    y.backward(create_graph=True)
    assert isinstance(x.grad, Value) and x.grad.data == g_float


def test_deep_chain_second_order_by_hand() -> None:
    # y = x * c**n: y' = c**n, y'' = 0; z = y * y: z'' = 2 c**(2n)
    n, c = 10_000, 1.00001
    x = Value(1.5)
    y = x
    for _ in range(n):
        y = y * c
    z = y * y
    (g,) = grad(z, [x], create_graph=True)
    assert data(g) == approx(2 * 1.5 * c ** (2 * n), rel=1e-9)
    assert grad(g, [x]) == [approx(2 * c ** (2 * n), rel=1e-9)]


class HandWrittenSin(Value):
    """A subclass whose sin has a float closure instead of partials (micrograd's way)."""

    __slots__ = ()

    def sin(self) -> Value:
        out = Value(math.sin(self.data), (self,), "sin")

        def _backward() -> None:
            self.grad += math.cos(self.data) * out.grad

        out._backward = _backward
        return out


def test_a_hand_written_backward_runs_in_backward_and_is_refused_by_grad_and_jvp() -> None:
    x = HandWrittenSin(0.5)
    f = x.sin() * 2
    f.backward()
    assert x.grad == approx(2 * math.cos(0.5))
    with pytest.raises(TypeError, match="hand-written float _backward"):
        grad(f, [x])
    with pytest.raises(TypeError, match="hand-written float _backward"):
        jvp(f, {x: 1.0})
    with pytest.raises(TypeError, match="hand-written float _backward"):
        f.backward(create_graph=True)
    assert grad(f, [Value(1.0)]) == [0.0]  # not on a path from the input: never asked for


def test_backward_with_create_graph_gives_each_node_a_grad_of_its_own() -> None:
    # d(x*y)/dx is y itself and d(a+b)/da is the gradient arriving at a+b: no grad may be such a node
    x, y, c = Value(2.0), Value(3.0), Value(5.0)
    a = x * y
    z = (a + x) * c
    z.backward(create_graph=True)
    nodes = [x, y, c, a, z]
    grads = [n.grad for n in nodes]
    assert all(isinstance(g, Value) for g in grads)
    assert len({id(g) for g in grads} | {id(n) for n in nodes}) == 2 * len(nodes)
    assert [data(g) for g in grads] == [5.0 * (3.0 + 1.0), 5.0 * 2.0, 8.0, 5.0, 1.0]
    assert repr(x).startswith("Value(data=2.0, grad=Value(data=20.0, grad=0.0")


@pytest.mark.parametrize(("x", "exact"), [(40.0, 4.248354255291589e-18), (-40.0, 4.248354255291589e-18),
                                          (0.3, 0.24445831169074586), (1e-300, 0.25)])
def test_sigmoid_derivative_keeps_every_digit_in_the_tails(x: float, exact: float) -> None:
    v = Value(x)
    v.sigmoid().backward()
    assert v.grad == pytest.approx(exact, rel=4e-16)


@pytest.mark.parametrize(("x", "exact"), [(20.0, 1.6993417021166355e-17), (-20.0, 1.6993417021166355e-17),
                                          (0.1, 0.9900662908474398)])
def test_tanh_derivative_keeps_every_digit_in_the_tails(x: float, exact: float) -> None:
    v = Value(x)
    v.tanh().backward()
    assert v.grad == pytest.approx(exact, rel=4e-16)


def test_second_derivatives_of_tanh_and_sigmoid_near_zero_keep_their_digits() -> None:
    x = Value(1e-300)
    (d1,) = grad(x.tanh(), [x], create_graph=True)
    assert isinstance(d1, Value)
    (d2,) = grad(d1, [x])
    assert d2 == pytest.approx(-2e-300, rel=1e-15)  # 1 - t*t from t = 1e-300 would not lose it either
    y = Value(1e-300)
    (s1,) = grad(y.sigmoid(), [y], create_graph=True)
    assert isinstance(s1, Value)
    (s2,) = grad(s1, [y])
    assert s2 == pytest.approx(-2.5e-301, rel=1e-15)  # s'(1 - 2s) would round 1 - 2s to 0
