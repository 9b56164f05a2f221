"""The built-in Value's special functions and activations: values, first, second and third derivatives
against the exact ones, their tails, and the conventions at their kinks."""

from __future__ import annotations

import math

import mpmath
import pytest

from gradspec.engine import Value, grad, jvp
from gradspec.ops.table import OPS
from gradspec.reference.chain import derivative
from tests.test_special import KINKS

# (bound op, arguments): smooth points on every piece, and the tails where a naive rule loses its digits
POINTS = [
    ("erf", (0.3,)), ("erf", (-2.5,)), ("erfc", (1.7,)), ("erfc", (10.0,)), ("erfc", (-5.0,)),
    ("log1p", (0.25,)), ("log1p", (1e-12,)), ("log1p", (-0.999,)), ("expm1", (0.7,)), ("expm1", (1e-12,)),
    ("expm1", (-40.0,)), ("softplus", (0.5,)), ("softplus", (-30.0,)), ("softplus", (-700.0,)), ("softplus", (25.0,)),
    ("softplus[beta=2,threshold=10]", (-1.5,)), ("softplus[beta=2,threshold=10]", (7.0,)),
    ("logsigmoid", (-2.0,)), ("logsigmoid", (30.0,)), ("logsigmoid", (-700.0,)),
    ("elu", (0.5,)), ("elu", (-1.5,)), ("elu", (-40.0,)), ("elu[alpha=1/2]", (-1.5,)), ("selu", (-0.5,)),
    ("selu", (2.0,)), ("celu[alpha=1/2]", (-0.7,)), ("celu[alpha=1/2]", (0.7,)),
    ("gelu", (0.8,)), ("gelu", (-3.0,)), ("gelu", (-10.0,)), ("gelu", (-30.0,)),
    ("gelu[approximate=tanh]", (0.8,)), ("gelu[approximate=tanh]", (-3.0,)), ("gelu[approximate=tanh]", (-10.0,)),
    ("silu", (1.3,)), ("silu", (-30.0,)), ("silu", (-700.0,)), ("mish", (0.4,)), ("mish", (-30.0,)), ("mish", (25.0,)),
    ("tan", (0.4,)), ("tan", (1.5,)), ("atan", (0.4,)), ("atan", (1e10,)), ("asin", (0.6,)), ("asin", (-0.999999,)),
    ("acos", (0.6,)), ("acos", (0.999999,)), ("sinh", (0.5,)), ("sinh", (-700.0,)), ("cosh", (-3.0,)),
    ("asinh", (0.5,)), ("asinh", (-1e10,)), ("asinh", (1e200,)), ("acosh", (1.5,)), ("acosh", (1.0000001,)),
    ("atanh", (0.5,)), ("atanh", (-0.9999999,)), ("reciprocal", (-0.4,)), ("reciprocal", (1e-100,)),
    ("rsqrt", (2.0,)), ("rsqrt", (1e-100,)), ("square", (-3.0,)), ("sign", (-2.0,)),
    ("leaky_relu", (-2.0,)), ("leaky_relu[negative_slope=1/5]", (-2.0,)), ("relu6", (3.0,)), ("relu6", (7.0,)),
    ("hardtanh", (0.3,)), ("hardtanh[min_val=-2,max_val=1/2]", (-1.0,)), ("hardsigmoid", (1.0,)), ("hardsigmoid", (-4.0,)),
    ("hardswish", (1.0,)), ("hardswish", (-4.0,)), ("hardswish", (4.0,)), ("clamp[min=-1/2,max=1]", (0.2,)),
    ("clamp[min=-1/2,max=1]", (2.0,)), ("clamp[min=0]", (-1.0,)),
    ("maximum", (0.5, 1.5)), ("maximum", (2.0, -1.0)), ("minimum", (0.5, 1.5)), ("atan2", (0.5, -1.5)),
    ("atan2", (-2.0, 0.1)), ("logaddexp", (0.5, 1.5)), ("logaddexp", (1000.0, 1000.0)), ("logaddexp", (-30.0, 30.0)),
    ("xlogy", (0.5, 1.5)), ("xlogy", (0.0, 2.0)), ("xlogy", (-3.0, 0.25)),
    ("log2", (0.3,)), ("log2", (1e-300,)), ("log10", (7.0,)), ("log10", (1.0000001,)), ("exp2", (-8.3,)),
    ("exp2", (1000.5,)), ("deg2rad", (-8.7,)), ("rad2deg", (3.1,)), ("ndtr", (0.4,)), ("ndtr", (-10.0,)),
    ("ndtr", (-30.0,)), ("logit", (0.3,)), ("logit", (0.5 + 2**-30,)), ("logit", (1e-100,)), ("logit", (0.999,)),
    ("logit[eps=1/4]", (0.1,)), ("logit[eps=1/4]", (0.6,)), ("entr", (0.3,)), ("entr", (0.36787944117144233,)),
    ("entr", (8.0,)), ("entr", (1e-300,)), ("softsign", (0.5,)), ("softsign", (-1e8,)), ("softsign", (1e200,)),
    ("tanhshrink", (0.5,)), ("tanhshrink", (1e-8,)), ("tanhshrink", (-1.9,)), ("tanhshrink", (2.5,)),
    ("tanhshrink", (-30.0,)), ("hardshrink", (0.7,)), ("hardshrink", (0.2,)), ("softshrink", (-2.0,)),
    ("softshrink[lambd=1/4]", (0.1,)), ("threshold[threshold=1,value=-3]", (0.5,)),
    ("threshold[threshold=1,value=-3]", (2.0,)), ("hypot", (3.0, -4.0)), ("hypot", (1e-150, 1e-150)),
    ("hypot", (1e300, 1e300)), ("logaddexp2", (0.5, 1.5)), ("logaddexp2", (-1.0, -1.0)),
    ("logaddexp2", (-2000.0, 2000.0)), ("xlog1py", (0.5, 1.5)), ("xlog1py", (0.0, 2.0)),
    ("xlog1py", (3.0, -0.999999)), ("xlog1py", (-2.0, 1e-10)), ("sinc", (0.0,)), ("sinc", (1e-10,)), ("sinc", (0.3,)),
    ("sinc", (0.6366,)), ("sinc", (3.0,)), ("sinc", (-2.5,)), ("sinc", (100000000.5,)), ("sinc", (7.38,)),
    ("prelu", (0.5, 0.25)), ("prelu", (-2.0, 0.25)), ("prelu", (-1.5, -3.0)),
    ("lgamma", (0.5,)), ("lgamma", (1.0 + 2**-40,)), ("lgamma", (2.0,)), ("lgamma", (-2.5,)), ("lgamma", (1e-8,)),
    ("lgamma", (171.5,)), ("lgamma", (1e10,)), ("digamma", (0.5,)), ("digamma", (1.4616321449683622,)),
    ("digamma", (-0.5,)), ("digamma", (-7.25,)), ("digamma", (1e-8,)), ("digamma", (12.3,)), ("digamma", (1e6,)),
    ("digamma", (1.3,)), ("log_ndtr", (0.3,)), ("log_ndtr", (-0.5,)), ("log_ndtr", (-1.0,)), ("log_ndtr", (-3.5,)),
    ("log_ndtr", (-10.0,)), ("log_ndtr", (-40.0,)), ("log_ndtr", (8.0,)), ("log_ndtr", (30.0,)),
]


# every special op this file checks: the points above, and where (test_ties_and_where)
COVERED = {name.partition("[")[0] for name, _ in POINTS} | {"where"}


def build(name: str, args: tuple[float, ...]) -> tuple[list[Value], Value]:
    op = OPS[name]
    leaves = [Value(a) for a in args]
    return leaves, getattr(leaves[0], op.method or "")(*leaves[1:], **op.kwargs)


def exact(name: str, multi: tuple[int, ...], args: tuple[float, ...]) -> float:
    with mpmath.workdps(60):
        return float(derivative(name, multi)([mpmath.mpf(a) for a in args]))


def close(got: float, want: float, ulps: float) -> bool:
    """Within ``ulps`` units in the last place of the exact value (tiny values judged relatively)."""
    return abs(got - want) <= ulps * 2.0**-52 * abs(want) or got == want


def conditioning(name: str, multi: tuple[int, ...], args: tuple[float, ...]) -> float:
    """How many ulps of a quantity one ulp of rounding inside the op's own float arithmetic (the
    argument of exp in gelu's tanh form, say) can move it: sum_k |x_k * dq/dx_k / q|."""
    q = exact(name, multi, args)
    if q == 0:
        return 0.0
    return sum(abs(a * exact(name, (*multi, k), args) / q) for k, a in enumerate(args))


@pytest.mark.parametrize("name, args", POINTS, ids=[f"{n}{a}" for n, a in POINTS])
def test_value_and_gradient_are_exact_to_a_few_ulps(name: str, args: tuple[float, ...]) -> None:
    leaves, out = build(name, args)
    assert close(out.data, exact(name, (), args), 8 + 2 * conditioning(name, (), args)), (out.data, exact(name, (), args))
    for k, g in enumerate(grad(out, leaves)):
        assert isinstance(g, float)
        allowed = 16 + 2 * conditioning(name, (k,), args)
        assert close(g, exact(name, (k,), args), allowed), (k, g, exact(name, (k,), args))


@pytest.mark.parametrize("name, args", POINTS, ids=[f"{n}{a}" for n, a in POINTS])
def test_second_and_third_derivatives_along_the_first_argument(name: str, args: tuple[float, ...]) -> None:
    leaves, out = build(name, args)
    (d1,) = grad(out, leaves[:1], create_graph=True)
    d2 = grad(d1, leaves[:1], create_graph=True)[0] if isinstance(d1, Value) else 0.0
    d3 = grad(d2, leaves[:1])[0] if isinstance(d2, Value) else 0.0
    for got, multi in ((d2, (0, 0)), (d3, (0, 0, 0))):
        value = got.data if isinstance(got, Value) else got
        want = exact(name, multi, args)
        assert close(value, want, 64) or abs(value - want) <= 1e-12 * abs(exact(name, (0,), args)), (multi, value, want)


@pytest.mark.parametrize("name, args", POINTS[::4], ids=[f"{n}{a}" for n, a in POINTS[::4]])
def test_forward_mode_agrees_with_reverse_mode(name: str, args: tuple[float, ...]) -> None:
    leaves, out = build(name, args)
    tangents = {leaf: 1.0 + k for k, leaf in enumerate(leaves)}
    forward = jvp(out, tangents)
    reverse = sum(g * (1.0 + k) for k, g in enumerate(grad(out, leaves)))  # type: ignore[misc]
    assert (forward.data if isinstance(forward, Value) else forward) == pytest.approx(reverse, rel=1e-14, abs=1e-300)


def test_tails_keep_their_digits_where_the_naive_rule_gives_zero() -> None:
    x = Value(-40.0)
    assert grad(x.expm1(), [x]) == [math.exp(-40.0)]  # not expm1(x) + 1 = 0
    assert grad(x.elu(), [x]) == [math.exp(-40.0)]
    y = Value(1e200)
    (g,) = grad(y.asinh(), [y])
    assert g == pytest.approx(1e-200, rel=1e-15)  # 1/sqrt(1 + x*x) would be 0
    z = Value(-10.0)
    assert z.gelu().data == pytest.approx(-7.619853024160526e-23, rel=1e-14)  # x*(1 + erf)/2 is 0
    assert grad(z.gelu(), [z])[0] == pytest.approx(-7.618400096464814e-22, rel=1e-14)
    assert z.gelu("tanh").data == pytest.approx(-1.204092348209806e-37, rel=1e-14)
    w = Value(30.0)
    assert w.logsigmoid().data == pytest.approx(-9.357622968839737e-14, rel=1e-15)
    assert w.mish().data == 30.0
    e = Value(0.36787944117144233)  # 1/e as a float: entr' = -(log(x) + 1) is -3.4e-17 there, not 0
    assert grad(e.entr(), [e])[0] == pytest.approx(-3.3784855259134225e-17, rel=1e-15)
    t = Value(1e-8)
    assert t.tanhshrink().data == pytest.approx(3.333333333333333e-25, rel=1e-15)  # x - tanh(x) would be 0
    assert grad(t.tanhshrink(), [t])[0] == pytest.approx(1e-16, rel=1e-15)  # tanh(x)**2, not 1 - (1 - t*t) = 0
    s = Value(1e8)
    assert grad(s.softsign(), [s])[0] == pytest.approx(1 / (1 + 1e8) ** 2, rel=1e-15)
    z = Value(0.0)
    (d1,) = grad(z.sinc(), [z], create_graph=True)
    assert d1.data == 0.0 and grad(d1, [z])[0] == pytest.approx(-math.pi**2 / 3, rel=1e-15)  # not 0/0
    assert Value(3.0).sinc().data == 0.0  # sin(pi*x) of x reduced exactly: 0, not sin(3*pi) = 3.7e-16
    far = Value(100000000.5)
    assert grad(far.sinc(), [far])[0] == pytest.approx(-1 / (math.pi * 100000000.5**2), rel=1e-15)  # cos(pi x) = 0
    h = Value(0.5 + 2**-30)
    assert h.logit().data == pytest.approx(2**-28, rel=1e-15)  # log(x/(1 - x)) keeps 8 digits of it
    g = Value(3.0)
    (d1,) = grad(g.lgamma(), [g], create_graph=True)  # digamma(3) = 3/2 - gamma, then trigamma, tetragamma
    (d2,) = grad(d1, [g], create_graph=True)
    assert d1.data == pytest.approx(1.5 - 0.5772156649015329, rel=1e-15)
    assert d2.data == pytest.approx(math.pi**2 / 6 - 1.25, rel=1e-14)
    assert grad(d2, [g])[0] == pytest.approx(-2 * (1.2020569031595942 - 1 - 1 / 8), rel=1e-13)  # -2 (zeta(3) - 9/8)
    assert Value(-3.0).lgamma().data == math.inf and math.isnan(Value(-3.0).digamma().data)  # poles
    assert Value(1 + 2**-40).lgamma().data == pytest.approx(-5.2497458900760183e-13, rel=1e-15)  # math.lgamma: 7e-4 off
    assert Value(1.4616321449683622).digamma().data == pytest.approx(-9.241265521729427e-17, rel=1e-14)  # beside its zero
    n = Value(-40.0)
    (s1,) = grad(n.log_ndtr(), [n], create_graph=True)  # phi/Phi: nearly -x, as x + phi/Phi from Mills' ratio
    assert n.log_ndtr().data == pytest.approx(-804.60844201375379, rel=1e-15)  # Phi(-40) = 3.7e-350 underflows
    assert s1.data == pytest.approx(40.024968847207264, rel=1e-15)
    assert grad(s1, [n])[0] == pytest.approx(-0.99937733162140861, rel=1e-13)  # -r*g, no 1 - r*g cancelled
    assert Value(8.0).log_ndtr().data == pytest.approx(-6.220960574271784e-16, rel=1e-15)  # log1p(-Phi(-8))


@pytest.mark.parametrize("name, x, convention", KINKS, ids=[f"{n}@{x}" for n, x, _ in KINKS])
def test_the_gradient_at_each_kink_is_the_declared_convention(name: str, x: float, convention: float) -> None:
    leaves, out = build(name, (x,))
    assert grad(out, leaves)[0] == pytest.approx(convention, rel=1e-15)


def test_ties_and_where() -> None:
    a, b = Value(2.0), Value(2.0)
    assert grad(a.maximum(b), [a, b]) == [0.5, 0.5]
    assert grad(a.minimum(b), [a, b]) == [0.5, 0.5]
    assert a.maximum(3).data == 3.0 and grad(a.maximum(3), [a]) == [0.0]
    x = Value(-2.0)
    picked = Value.where(x.data > 0, x, x * 0.01)
    assert picked.data == -0.02 and grad(picked, [x]) == [0.01]
    constant = Value.where(x.data < 0, 3.0, x)
    assert constant.data == 3.0 and grad(constant, [x]) == [0.0]
    (d,) = grad(Value.where(True, x * x, x), [x], create_graph=True)
    assert isinstance(d, Value) and grad(d, [x]) == [2.0]


def test_edges_of_the_domains_give_ieee_results() -> None:
    assert Value(-1.0).log1p().data == -math.inf
    assert math.isnan(Value(-2.0).log1p().data)
    assert Value(1.0).atanh().data == math.inf and Value(-1.0).atanh().data == -math.inf
    assert math.isnan(Value(2.0).asin().data) and math.isnan(Value(0.5).acosh().data)
    assert Value(0.0).reciprocal().data == math.inf and Value(0.0).rsqrt().data == math.inf
    assert Value(-1000.0).sinh().data == -math.inf and Value(1000.0).cosh().data == math.inf
    assert Value(0.0).xlogy(0.0).data == 0.0 and Value(2.0).xlogy(0.0).data == -math.inf
    assert Value(0.0).log2().data == -math.inf and math.isnan(Value(-1.0).log10().data)
    assert Value(2000.0).exp2().data == math.inf and Value(-2000.0).exp2().data == 0.0
    assert Value(0.0).logit().data == -math.inf and Value(1.0).logit().data == math.inf
    assert math.isnan(Value(2.0).logit().data) and Value(2.0).logit(eps=0.25).data == pytest.approx(math.log(3), rel=1e-15)
    assert Value(0.0).entr().data == 0.0 and Value(-1.0).entr().data == -math.inf
    assert Value(0.0).xlog1py(-1.0).data == 0.0 and Value(2.0).xlog1py(-1.0).data == -math.inf
    a, b = Value(0.0), Value(0.0)
    assert all(math.isnan(g) for g in grad(a.hypot(b), [a, b]))  # 0/0: no derivative at the origin
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        Value(1.0).gelu("exact")


def test_every_special_row_has_its_method_on_value() -> None:
    for name, op in OPS.items():
        assert op.method is None or hasattr(Value, op.method), name
