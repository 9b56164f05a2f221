"""The op table: SymPy forms agree with float forms, kink conventions agree with SymPy, tables agree."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import pytest
import sympy

import gradspec.tools.fuzz as fuzz_module
from gradspec.engine import Value
from gradspec.engines.resolve import resolve
from gradspec.errors import ExpressionError
from gradspec.lang.expr import parse
from gradspec.ops.table import CALLABLE, INFIX, OPS, PREFIX_BINDING, TENSOR_OPS, Capability, op

# Points inside each op's domain and away from its kinks: one tuple of arguments per point.
POINTS: dict[str, list[tuple[float, ...]]] = {
    "add": [(0.5, 1.5), (-2.0, 3.25), (7.0, -0.125)],
    "sub": [(0.5, 1.5), (-2.0, 3.25), (7.0, -0.125)],
    "mul": [(0.5, 1.5), (-2.0, 3.25), (7.0, -0.125)],
    "div": [(0.5, 1.5), (-2.0, 3.25), (7.0, -0.125)],
    "pow": [(2.0, 3.0), (0.7, -1.5), (1.3, 0.5), (5.0, 0.25)],
    "neg": [(0.5,), (-2.0,), (3.0,)],
    "relu": [(0.5,), (-2.0,), (3.0,), (-0.01,)],
    "tanh": [(0.5,), (-2.0,), (0.0,), (1.25,)],
    "exp": [(0.5,), (-2.0,), (0.0,), (3.0,)],
    "log": [(0.5,), (2.0,), (1.0,), (10.0,)],
    "sigmoid": [(0.5,), (-2.0,), (0.0,), (4.0,)],
    "sin": [(0.5,), (-2.0,), (0.0,), (3.0,)],
    "cos": [(0.5,), (-2.0,), (0.0,), (3.0,)],
    "sqrt": [(0.5,), (2.0,), (9.0,), (0.01,)],
    "abs": [(0.5,), (-2.0,), (3.0,), (-0.01,)],
}
# The special functions and activations: inside each domain, away from each kink, on both pieces.
SPECIAL_POINTS: dict[str, list[tuple[float, ...]]] = {
    "erf": [(0.5,), (-2.0,), (0.0,)], "erfc": [(0.5,), (-2.0,), (3.0,)],
    "log1p": [(0.5,), (-0.5,), (1e-3,)], "expm1": [(0.5,), (-2.0,), (1e-3,)],
    "softplus": [(0.5,), (-3.0,), (25.0,)], "logsigmoid": [(0.5,), (-3.0,), (4.0,)],
    "elu": [(0.5,), (-2.0,)], "selu": [(0.5,), (-2.0,)], "celu": [(0.5,), (-2.0,)],
    "gelu": [(0.5,), (-2.0,), (0.0,)], "silu": [(0.5,), (-2.0,)], "mish": [(0.5,), (-2.0,)],
    "tan": [(0.5,), (-1.2,)], "atan": [(0.5,), (-2.0,)], "asin": [(0.5,), (-0.9,)], "acos": [(0.5,), (-0.9,)],
    "sinh": [(0.5,), (-2.0,)], "cosh": [(0.5,), (-2.0,)], "asinh": [(0.5,), (-2.0,)], "acosh": [(1.5,), (4.0,)],
    "atanh": [(0.5,), (-0.9,)], "reciprocal": [(0.5,), (-2.0,)], "rsqrt": [(0.5,), (4.0,)],
    "square": [(0.5,), (-2.0,)], "sign": [(0.5,), (-2.0,)], "leaky_relu": [(0.5,), (-2.0,)],
    "relu6": [(0.5,), (-2.0,), (7.0,)], "hardtanh": [(0.5,), (-2.0,), (3.0,)],
    "hardsigmoid": [(0.5,), (-4.0,), (3.5,)], "hardswish": [(0.5,), (-4.0,), (3.5,)],
    "clamp": [(0.5,), (-2.0,)],  # no bounds by default: the identity; bound ones below
    "maximum": [(0.5, 1.5), (2.0, -1.0)], "minimum": [(0.5, 1.5), (2.0, -1.0)],
    "atan2": [(0.5, 1.5), (2.0, -1.0), (-1.0, -3.0)], "logaddexp": [(0.5, 1.5), (30.0, -2.0)],
    "xlogy": [(0.5, 1.5), (-2.0, 0.25), (0.0, 3.0)], "where": [(1.0, 0.5, 2.0, 3.0), (0.0, 0.5, 2.0, 3.0)],
    "log2": [(0.5,), (3.0,), (1e-3,)], "log10": [(0.5,), (3.0,), (1e-3,)], "exp2": [(0.5,), (-2.0,), (10.0,)],
    "ndtr": [(0.5,), (-2.0,), (3.0,)], "logit": [(0.3,), (0.9,), (0.5,)], "entr": [(0.5,), (2.0,), (0.1,)],
    "deg2rad": [(0.5,), (-200.0,)], "rad2deg": [(0.5,), (-3.0,)], "softsign": [(0.5,), (-2.0,)],
    "tanhshrink": [(0.5,), (-2.0,), (3.0,)], "hardshrink": [(0.7,), (-2.0,), (0.2,)],
    "softshrink": [(0.7,), (-2.0,), (0.2,)], "threshold": [(0.5,), (-2.0,)],
    "hypot": [(0.5, 1.5), (-2.0, 0.25), (3.0, -4.0)], "logaddexp2": [(0.5, 1.5), (30.0, -2.0)],
    "xlog1py": [(0.5, 1.5), (-2.0, -0.5), (0.0, 3.0)], "sinc": [(0.3,), (-2.5,), (1.7,)],
    "prelu": [(0.5, 0.25), (-2.0, 0.25), (-1.5, -3.0)],
    "lgamma": [(0.5,), (3.7,), (-0.5,), (7.3,)], "digamma": [(0.5,), (3.7,), (-2.5,)],
    "log_ndtr": [(0.3,), (-2.5,), (4.0,)],
}
SPECIAL = set(SPECIAL_POINTS)
POINTS |= SPECIAL_POINTS

# Hand-written derivatives, independent of both the SymPy and the float forms.
KNOWN: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "div": ((3.0, 2.0), (0.5, -0.75)),
    "pow": ((2.0, 3.0), (12.0, 8.0 * math.log(2.0))),
    "tanh": ((0.0,), (1.0,)),
    "sigmoid": ((0.0,), (0.25,)),
    "log": ((4.0,), (0.25,)),
    "sqrt": ((4.0,), (0.25,)),
    "cos": ((math.pi / 2,), (-1.0,)),
    "relu": ((-3.0,), (0.0,)),
    "abs": ((-3.0,), (-1.0,)),
    "erf": ((0.0,), (2 / math.sqrt(math.pi),)),
    "erfc": ((0.0,), (-2 / math.sqrt(math.pi),)),
    "log1p": ((1.0,), (0.5,)),
    "expm1": ((0.0,), (1.0,)),
    "softplus": ((0.0,), (0.5,)),
    "logsigmoid": ((0.0,), (0.5,)),
    "gelu": ((0.0,), (0.5,)),
    "silu": ((0.0,), (0.5,)),
    "mish": ((0.0,), (math.tanh(math.log(2)),)),
    "atan": ((1.0,), (0.5,)),
    "asinh": ((0.0,), (1.0,)),
    "atanh": ((0.5,), (4 / 3,)),
    "rsqrt": ((4.0,), (-1 / 16,)),
    "square": ((3.0,), (6.0,)),
    "hardswish": ((1.0,), (5 / 6,)),
    "maximum": ((3.0, 1.0), (1.0, 0.0)),
    "atan2": ((1.0, 1.0), (0.5, -0.5)),
    "logaddexp": ((0.0, 0.0), (0.5, 0.5)),
    "xlogy": ((0.0, math.e), (1.0, 0.0)),
    "where": ((1.0, 0.5, 2.0, 3.0), (0.0, 0.0, 1.0, 0.0)),
    "log2": ((2.0,), (1 / (2 * math.log(2)),)),
    "log10": ((10.0,), (0.1 / math.log(10),)),
    "exp2": ((3.0,), (8 * math.log(2),)),
    "ndtr": ((0.0,), (1 / math.sqrt(2 * math.pi),)),
    "logit": ((0.5,), (4.0,)),
    "entr": ((1.0,), (-1.0,)),
    "deg2rad": ((1.0,), (math.pi / 180,)),
    "rad2deg": ((1.0,), (180 / math.pi,)),
    "softsign": ((1.0,), (0.25,)),
    "tanhshrink": ((0.0,), (0.0,)),
    "softshrink": ((2.0,), (1.0,)),
    "hypot": ((3.0, 4.0), (0.6, 0.8)),
    "logaddexp2": ((1.0, 1.0), (0.5, 0.5)),
    "xlog1py": ((2.0, 0.0), (0.0, 2.0)),
    "sinc": ((0.5,), (-4 / math.pi,)),  # (cos(pi x) - sinc(x))/x
    "prelu": ((-2.0, 0.25), (0.25, -2.0)),  # (w, x) below 0
    "lgamma": ((1.0,), (-0.5772156649015329,)),  # digamma(1) = -Euler's gamma
    "digamma": ((1.0,), (math.pi**2 / 6,)),  # trigamma(1) = zeta(2)
    "log_ndtr": ((0.0,), (2 / math.sqrt(2 * math.pi),)),  # phi(0)/Phi(0)
}


def _symbols(n: int) -> list[sympy.Symbol]:
    return [sympy.Symbol(f"a{i}", real=True) for i in range(n)]


def _sympy_partials(name: str, args: tuple[float, ...]) -> list[float]:
    o = OPS[name]
    syms = _symbols(o.arity)
    form = o.sympy(*syms)
    subs = {s: sympy.Rational(repr(v)) if math.isfinite(v) else v for s, v in zip(syms, args, strict=True)}
    return [float(sympy.diff(form, s).subs(subs).evalf(30)) for s in syms]


def _central(name: str, args: tuple[float, ...], k: int) -> float:
    fn = OPS[name].fn
    h = 1e-5 * max(1.0, abs(args[k]))

    def at(x: float) -> float:
        moved = list(args)
        moved[k] = x
        return float(fn(*moved))

    d1 = (at(args[k] + h) - at(args[k] - h)) / (2 * h)
    d2 = (at(args[k] + h / 2) - at(args[k] - h / 2)) / h
    return (4 * d2 - d1) / 3


def test_points_cover_every_op() -> None:
    assert set(POINTS) == set(OPS)


@pytest.mark.parametrize("name", sorted(OPS))
def test_sympy_derivative_matches_float_central_difference(name: str) -> None:
    o = OPS[name]
    for args in POINTS[name]:
        assert len(args) == o.arity
        exact = _sympy_partials(name, args)
        for k in range(o.arity):
            num = _central(name, args, k)
            assert num == pytest.approx(exact[k], rel=1e-7, abs=1e-9), (name, args, k, num, exact[k])


@pytest.mark.parametrize("name", sorted(OPS))
def test_sympy_value_matches_float_form(name: str) -> None:
    o = OPS[name]
    syms = _symbols(o.arity)
    form = o.sympy(*syms)
    for args in POINTS[name]:
        exact = float(form.subs({s: sympy.Rational(repr(v)) for s, v in zip(syms, args, strict=True)}).evalf(30))
        assert float(o.fn(*args)) == pytest.approx(exact, rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_sympy_derivative_matches_hand_derivative(name: str) -> None:
    args, want = KNOWN[name]
    got = _sympy_partials(name, args)
    assert got == pytest.approx(list(want), rel=1e-12, abs=1e-15)


def test_the_piecewise_ops_have_kinks() -> None:
    assert {n for n, o in OPS.items() if o.kink is not None} == {
        "relu", "abs", "softplus", "elu", "selu", "celu", "sign", "leaky_relu", "relu6", "hardtanh", "hardsigmoid",
        "hardswish", "clamp", "maximum", "minimum", "where", "logit", "softsign", "hardshrink", "softshrink", "threshold",
        "prelu"}


@pytest.mark.parametrize("name, convention", [("relu", 0.0), ("abs", 0.0)])
def test_kink_convention_is_what_sympy_gives_at_the_kink(name: str, convention: float) -> None:
    o = OPS[name]
    assert o.kink is not None
    assert o.kink.convention == (convention,)
    (x,) = _symbols(1)
    at_kink = sympy.diff(o.sympy(x), x).subs(x, 0)
    assert at_kink.is_number
    assert float(at_kink) == convention == o.kink.convention[0]
    # The convention is one of the valid subgradients.
    (lo, hi), = o.kink.interval
    assert lo <= o.kink.convention[0] <= hi


def test_kink_intervals_and_locations() -> None:
    assert OPS["relu"].kink.interval == ((0.0, 1.0),)
    assert OPS["abs"].kink.interval == ((-1.0, 1.0),)
    assert OPS["relu"].kink.where == "relu at 0"
    assert OPS["abs"].kink.where == "abs at 0"
    for name in ("relu", "abs"):
        at = OPS[name].kink.at
        assert at([mpmath.mpf(0)])
        assert at([mpmath.mpf("1e-50")])  # a kink reached through high-precision rounding
        assert not at([mpmath.mpf("1e-30")])
        assert not at([mpmath.mpf("-0.5")])


def test_relu_sympy_derivative_sides() -> None:
    (x,) = _symbols(1)
    d = sympy.diff(OPS["relu"].sympy(x), x)
    assert d.subs(x, sympy.Rational(1, 1000)) == 1
    assert d.subs(x, sympy.Rational(-1, 1000)) == 0
    assert OPS["relu"].fn(0.0) == 0.0
    assert OPS["relu"].fn(-2.0) == 0.0
    assert OPS["relu"].fn(2.5) == 2.5


def test_abs_sympy_derivative_is_sign() -> None:
    (x,) = _symbols(1)
    d = sympy.diff(OPS["abs"].sympy(x), x)
    assert d.subs(x, 3) == 1
    assert d.subs(x, -3) == -1


def test_sigmoid_float_form_is_stable_far_from_zero() -> None:
    fn = OPS["sigmoid"].fn
    assert fn(-1000.0) == 0.0
    assert fn(1000.0) == 1.0
    assert fn(-30.0) == pytest.approx(1 / (1 + math.exp(30.0)), rel=1e-14)


def test_infix_table() -> None:
    assert INFIX == {
        ("+", 2): "add",
        ("-", 2): "sub",
        ("*", 2): "mul",
        ("/", 2): "div",
        ("**", 2): "pow",
        ("-", 1): "neg",
    }


def test_callable_table() -> None:
    # an op written as a call in an expression is the one a Value class has as a method (x.tanh())
    assert set(CALLABLE) == {name for name, o in OPS.items() if o.method is not None} != set()
    for name, o in CALLABLE.items():
        assert o is OPS[name]
        assert o.symbol is None
        assert o.method == name
        assert o.pyop is None
        binary = ("maximum", "minimum", "atan2", "logaddexp", "xlogy", "hypot", "logaddexp2", "xlog1py", "prelu")
        assert o.arity == (4 if name == "where" else 2 if name in binary else 1)


def test_infix_and_callable_partition_the_ops() -> None:
    infix_names = set(INFIX.values())
    assert infix_names.isdisjoint(CALLABLE)
    assert infix_names | set(CALLABLE) == set(OPS)
    assert len(INFIX) + len(CALLABLE) == len(OPS)
    for (symbol, arity), name in INFIX.items():
        o = OPS[name]
        assert (o.symbol, o.arity) == (symbol, arity)
        assert o.method is None
        assert o.pyop is not None
        assert len(o.dunders) == (2 if arity == 2 else 1)


def test_rows_are_named_by_their_key_and_op_lookup() -> None:
    for name, o in OPS.items():
        assert o.name == name
        assert op(name) is o
    with pytest.raises(KeyError):
        op("softmax")


@pytest.mark.parametrize("name", sorted(n for n, o in OPS.items() if o.pyop is not None))
def test_pyop_agrees_with_float_form(name: str) -> None:
    o = OPS[name]
    args = POINTS[name][0]
    assert o.pyop(*args) == pytest.approx(o.fn(*args), rel=1e-15)


def test_needs_spells_each_op_for_a_value_class() -> None:
    assert OPS["add"].needs(value_left=True) == "__add__"
    assert OPS["add"].needs(value_left=False) == "__radd__"
    assert OPS["pow"].needs(value_left=False) == "__rpow__"
    assert OPS["div"].needs(value_left=False) == "__rtruediv__"
    assert OPS["neg"].needs(value_left=False) == "__neg__"
    assert OPS["tanh"].needs(value_left=False) == "tanh"
    # gradspec's own engine has everything the table asks for.
    for o in OPS.values():
        for side in (True, False):
            assert hasattr(Value, o.needs(side)), (o.name, side)


def test_domains() -> None:
    mpf = mpmath.mpf
    div = OPS["div"].domain
    assert div([mpf(1), mpf(0)], [True, True]) == "division by zero"
    assert div([mpf(0), mpf(2)], [True, True]) is None
    log = OPS["log"].domain
    assert log([mpf(0)], [True]) is not None and "log needs x > 0" in log([mpf(0)], [True])
    assert log([mpf(-1)], [True]) is not None
    assert log([mpf("1e-300")], [True]) is None
    sqrt = OPS["sqrt"].domain
    assert sqrt([mpf(0)], [True]) is None
    assert "sqrt needs x >= 0" in sqrt([mpf("-0.5")], [True])
    pw = OPS["pow"].domain
    assert "integer exponent" in pw([mpf(-2), mpf("0.5")], [True, False])
    assert pw([mpf(-2), mpf(3)], [True, False]) is None
    assert "zero to a negative power" in pw([mpf(0), mpf(-1)], [True, False])
    assert "exponent depends on an input" in pw([mpf(-2), mpf(3)], [True, True])
    assert "exponent depends on an input" in pw([mpf(0), mpf(3)], [False, True])
    assert pw([mpf(2), mpf("0.5")], [True, True]) is None
    for name in ("add", "sub", "mul", "neg", "relu", "tanh", "exp", "sigmoid", "sin", "cos", "abs"):
        assert OPS[name].domain is None
    assert "log1p needs x > -1" in OPS["log1p"].domain([mpf(-1)], [True])
    assert OPS["log1p"].domain([mpf("-0.999")], [True]) is None
    assert "asin needs |x| <= 1" in OPS["asin"].domain([mpf("1.5")], [True])
    assert OPS["asin"].domain([mpf(1)], [True]) is None
    assert "atanh needs |x| < 1" in OPS["atanh"].domain([mpf(1)], [True])
    assert "acosh needs x >= 1" in OPS["acosh"].domain([mpf("0.5")], [True])
    assert "rsqrt needs x > 0" in OPS["rsqrt"].domain([mpf(0)], [True])
    assert "reciprocal of zero" in OPS["reciprocal"].domain([mpf(0)], [True])
    assert "atan2(0, 0)" in OPS["atan2"].domain([mpf(0), mpf(0)], [True, True])
    assert "xlogy needs y > 0" in OPS["xlogy"].domain([mpf(1), mpf(0)], [True, True])
    assert "xlogy needs y > 0" in OPS["xlogy"].domain([mpf(0), mpf(0)], [True, True])
    assert OPS["xlogy"].domain([mpf(0), mpf(0)], [False, False]) is None  # xlogy(0, 0) = 0, as a constant
    assert "beta > 0" in OPS["softplus[beta=-1]"].domain([mpf(1)], [True])
    assert "min_val < max_val" in OPS["hardtanh[min_val=1,max_val=-1]"].domain([mpf(0)], [True])
    assert "clamp needs min= or max=" in OPS["clamp"].domain([mpf(0)], [True])
    assert "min <= max" in OPS["clamp[min=2,max=1]"].domain([mpf(0)], [True])
    assert OPS["clamp[min=0]"].domain([mpf(0)], [True]) is None
    assert "log2 needs x > 0, got x = 0.0" in OPS["log2"].domain([mpf(0)], [True])
    assert "log10 needs x > 0, got x = -1.0" in OPS["log10"].domain([mpf(-1)], [True])
    assert "logit needs 0 < x < 1 (or eps=), got x = 1.0" in OPS["logit"].domain([mpf(1)], [True])
    assert OPS["logit[eps=1/4]"].domain([mpf(2)], [True]) is None  # clamped to 1 - eps: a constant there
    assert "logit needs 0 < eps < 0.5, got eps = 0.5" in OPS["logit[eps=1/2]"].domain([mpf("0.3")], [True])
    assert "entr needs x > 0 (0 only as a constant)" in OPS["entr"].domain([mpf(0)], [True])
    assert OPS["entr"].domain([mpf(0)], [False]) is None and "got x = -1.0" in OPS["entr"].domain([mpf(-1)], [False])
    assert OPS["hypot"].domain([mpf(0), mpf(0)], [True, False]) == "hypot has no derivative at (0, 0)"
    assert OPS["hypot"].domain([mpf(0), mpf(0)], [False, False]) is None
    assert OPS["hypot"].domain([mpf(0), mpf(1)], [True, True]) is None
    assert "xlog1py needs y > -1" in OPS["xlog1py"].domain([mpf(0), mpf(-1)], [True, False])
    assert OPS["xlog1py"].domain([mpf(0), mpf(-1)], [False, False]) is None  # xlog1py(0, -1) = 0, as a constant
    assert "softshrink needs lambd >= 0, got lambd = -0.5" in OPS["softshrink[lambd=-1/2]"].domain([mpf(0)], [True])
    assert OPS["hardshrink[lambd=-1/2]"].domain is None  # torch's hardshrink takes any lambd: x itself below 0


# -- facts the rest of gradspec reads from the row ---------------------------------------------------------


def test_infix_rows_carry_their_binding_powers() -> None:
    infix = {o.name: o.binding for o in OPS.values() if o.binding is not None}
    assert infix == {"add": (10, 10), "sub": (10, 10), "mul": (20, 20), "div": (20, 20), "pow": (41, PREFIX_BINDING)}
    assert all(OPS[n].symbol and OPS[n].arity == 2 for n in infix)
    left, right = infix["pow"]
    assert right < left and infix["mul"][0] < PREFIX_BINDING < left
    assert str(parse("-x**2 * 2**-y")) == "((-(x ** 2)) * (2 ** (-y)))"
    assert str(parse("x**y**2")) == "(x ** (y ** 2))"


def _fold(name: str, *args: Fraction) -> Fraction | None:
    fold = OPS[name].fold
    assert fold is not None
    return fold(*args)


def test_rows_fold_rational_constants_exactly_and_refuse_what_float64_cannot_hold() -> None:
    assert _fold("div", Fraction(1), Fraction(3)) == Fraction(1, 3)
    assert _fold("pow", Fraction(2, 3), Fraction(-2)) == Fraction(9, 4)
    assert _fold("pow", Fraction(2), Fraction(1, 2)) is None  # not rational: left to the float forms
    assert OPS["tanh"].fold is None and OPS["exp"].fold is None
    with pytest.raises(ZeroDivisionError, match="division by zero in a constant"):
        _fold("div", Fraction(1), Fraction(0))
    with pytest.raises(OverflowError, match=r"constant 0\.0 is outside the float64 range"):  # 1e-400 is 0.0 in float64
        _fold("mul", Fraction(1, 10**200), Fraction(1, 10**200))
    with pytest.raises(ExpressionError, match="constant 10\\*\\*400 is outside") as err:
        parse("x + 10**400")
    assert err.value.col == 7


def test_fuzz_draws_every_row_that_allows_it_and_keeps_domains_positive() -> None:
    drawn = {o.name for o in OPS.values() if o.fuzz is not None}
    assert {o.name for o in fuzz_module._OPS} == drawn == set(OPS) - SPECIAL  # the fuzzer draws the textbook ops
    assert [o.arity for o in fuzz_module._OPS] == sorted(o.arity for o in fuzz_module._OPS)
    restricted = {o.name: o.fuzz.positive for o in OPS.values() if o.fuzz and o.fuzz.positive}
    assert restricted == {"log": (0,), "sqrt": (0,), "div": (1,), "pow": (0,)}
    assert all(OPS[n].domain is not None for n in restricted)  # and every drawn op with a domain is kept inside it
    assert {o.name for o in OPS.values() if o.domain is not None and o.fuzz is not None} == set(restricted)


def test_capabilities_are_declared_by_ops_and_engines() -> None:
    assert all(Capability.VJP in o.capabilities for o in OPS.values())
    assert all(o.capabilities <= set(Capability) for o in OPS.values())
    assert resolve("builtin").capabilities == frozenset(Capability)  # grad() and jvp() beside Value: every mode
    assert [o.name for o in OPS.values() if o.asserts_on_value] == ["pow"]


def test_rounding_budgets_are_op_facts() -> None:
    # sign changes and selections: no rounding at all
    exact = {"neg", "relu", "abs", "sign", "relu6", "hardtanh", "clamp", "maximum", "minimum", "where", "hardshrink",
             "threshold"}
    # correctly rounded: half an ulp
    ieee = {"add", "sub", "mul", "div", "sqrt", "square", "reciprocal", "leaky_relu", "softshrink", "prelu"}
    for o in OPS.values():
        if o.name in exact:
            assert o.ulps == 0
        elif o.name in ieee:
            assert o.ulps == 0.5
        else:  # library functions, and a few roundings in a row (hardswish): a few ulps
            assert 1 <= o.ulps <= 8, o.name
        assert o.partial_ulps >= 0 and o.partial_abs >= 0
    # partials recomputed from the op's own rounded output lose absolute, not relative, accuracy
    assert {o.name for o in OPS.values() if o.partial_abs} == {"tanh", "sigmoid", "expm1", "elu", "selu", "celu",
                                                               "hardswish", "entr", "softsign", "lgamma"}
    # and values or derivatives formed from terms that cancel, by order (gradspec.ops.rebuilt)
    assert {o.name for o in OPS.values() if o.rebuilt} == {"gelu", "silu", "mish", "softplus", "logsigmoid", "ndtr",
                                                          "sinc", "tanhshrink", "atanh", "logaddexp", "logaddexp2",
                                                          "hypot", "log_ndtr", "digamma"}
    # and arguments scaled and rounded before the library function
    assert {o.name for o in OPS.values() if o.arg_ulps} == {"exp2", "ndtr", "gelu"}
    assert OPS["tanh"].partial_abs > 2 * OPS["tanh"].ulps  # 1 - t*t: twice t's error, plus its own
    # and tensor ops whose engines' own kernels lose more than the lowering's rounding
    # (gradspec.ops.rebuilt_tensor): every linear-algebra row, a dense kernel on every engine, and logcumsumexp,
    # whose weights torch forms from its rounded output
    assert {o.name for o in TENSOR_OPS.values() if o.rebuilt} == {
        "det", "slogdet", "inv", "solve", "matrix_power", "solve_triangular", "cholesky", "cholesky_solve",
        "cholesky_inverse", "lu_solve", "pinv", "qr", "eigvalsh", "eigh", "svdvals", "svd", "matrix_exp", "logcumsumexp"}


def test_second_spellings_call_the_special_method() -> None:
    assert {o.name: o.builtin[0] for o in OPS.values() if o.builtin} == {"abs": "__abs__"}
    assert OPS["abs"].builtin is not None
    assert OPS["abs"].builtin[1](Value(-2.0)).data == 2.0
