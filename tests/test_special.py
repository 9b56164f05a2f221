"""The special-function and activation rows: keyword binding, exact forms in the tails, the declared
conventions at every kink, and each library's spelling against the row's own float form."""

from __future__ import annotations

import math
import os
from fractions import Fraction

import mpmath
import pytest
import sympy
from sympy.core.function import ArgumentIndexError

from gradspec.ops.functions import Sinc
from gradspec.ops.table import OPS, bind
from gradspec.reference.chain import derivative
from tests.test_ops import SPECIAL, SPECIAL_POINTS

# -- keywords: one bound op per set of values ----------------------------------------------------------------


def test_bound_ops_are_named_by_the_values_that_differ_from_the_defaults() -> None:
    row = OPS["softplus"]
    assert bind(row, {}) is not row and bind(row, {}).name == "softplus"
    assert bind(row, {"beta": Fraction(1)}).name == "softplus"  # the default written out: the same op
    two = bind(row, {"beta": Fraction(2)})
    assert two.name == "softplus[beta=2]" and two.base == "softplus"
    assert two.kwargs == {"beta": 2.0, "threshold": 20.0}
    assert bind(OPS["gelu"], {"approximate": "tanh"}).name == "gelu[approximate=tanh]"
    assert bind(OPS["clamp"], {"min": Fraction(-1, 2)}).name == "clamp[min=-1/2]"
    assert bind(OPS["clamp"], {"min": Fraction(-1, 2)}).kwargs == {"min": -0.5, "max": None}
    assert OPS["where"].kwargs == {"cmp": ">"} and bind(OPS["where"], {"cmp": "<="}).name == "where[cmp=<=]"
    assert bind(OPS["tanh"], {}) is OPS["tanh"]  # a row without keywords is its own bound op


def test_the_table_finds_bound_ops_by_name_and_nothing_else() -> None:
    op = OPS["softplus[beta=2,threshold=10]"]
    assert op.kwargs == {"beta": 2.0, "threshold": 10.0}
    assert op.fn(6.0) == 6.0 and op.fn(4.0) == pytest.approx(math.log1p(math.exp(8.0)) / 2, rel=1e-15)
    assert "softplus[beta=2]" in OPS and "where[cmp=!=]" in OPS
    for bad in ("softplus[gamma=2]", "softplus[beta=2", "tanh[beta=2]", "nothing[beta=1]", "softplus[beta=x]"[:0] + "x"):
        assert bad not in OPS
        with pytest.raises(KeyError):
            OPS[bad]
    assert 5 not in OPS  # only names are ops
    assert set(OPS) == set(dict.keys(OPS))  # iterating gives the rows, never bound variants
    assert op.render(["x"]) == "softplus(x, beta=2, threshold=10)"
    assert OPS["gelu[approximate=tanh]"].render(["x"]) == 'gelu(x, approximate="tanh")'
    assert OPS["where[cmp===]"].render(["a", "b", "c", "d"]) == "where(a == b, c, d)"


def test_keyword_values_reach_the_exact_form_as_rationals() -> None:
    x = sympy.Symbol("x", real=True)
    form = OPS["softplus[beta=1/2,threshold=3]"].sympy(x)
    assert form.has(sympy.Rational(1, 2)) and not form.has(sympy.Float)
    assert str(form.args[0][1]) == "x > 6"  # beta*x > threshold, exactly
    assert OPS["leaky_relu[negative_slope=1/5]"].sympy(x).subs(x, -5) == -1


# -- exact forms keep their digits in the tails ----------------------------------------------------------------


def _at(name: str, multi: tuple[int, ...], *args: float | str) -> mpmath.mpf:
    with mpmath.workdps(60):
        return derivative(name, multi)([mpmath.mpf(a) for a in args])


@pytest.mark.parametrize("name, multi, x, want", [
    ("gelu", (), -10, "-7.619853024160526066e-23"),  # x*Phi(x); x*(1 + erf(x/sqrt 2))/2 cancels to 0
    ("gelu", (0,), -30, "-4.4153973484916946e-195"),
    ("softplus", (), -200, "1.3838965267367376e-87"),  # log1p(exp(x)): log(1 + e^-200) would be 0
    ("softplus", (0,), -200, "1.3838965267367376e-87"),
    ("logsigmoid", (), 200, "-1.3838965267367376e-87"),
    ("expm1", (), "1e-40", "1.0e-40"),
    ("log1p", (), "1e-70", "1.0e-70"),
    ("erfc", (), 26, "5.663192408856142e-296"),
    ("tanhshrink", (), "1e-30", "3.3333333333333333e-91"),  # x - tanh(x) at 50 digits would be 0
    ("tanhshrink", (0,), "1e-30", "1.0e-60"),
    ("ndtr", (), -30, "4.906713927148187e-198"),
    ("logit", (), 0.5 + 2**-30, "3.725290298461914e-09"),  # log(x) - log1p(-x), 9 of 50 digits cancelled
    ("entr", (0,), 0.36787944117144233, "-3.3784855259134225e-17"),  # -(log(x) + 1) beside 1/e
    ("logaddexp2", (), -2000, "-1999.0"),
    ("sinc", (0, 0), 0, "-3.2898681336964529"),  # -pi**2/3: sin(pi x)/(pi x) differentiated twice is 0/0 at 0
    ("sinc", (0,), "1e-10", "-3.2898681336964529e-10"),  # (cos(pi x) - sinc(x))/x keeps nothing of it
    ("sinc", (0,), 100000000.5, "-3.1830988300069183e-17"),
    ("lgamma", (), "1.0000000000000000000001", "-5.7721566490153286e-23"),  # log|Gamma| beside its zero at 1
    ("lgamma", (), -2.5, "-0.056243716497674054"),  # log|Gamma(-2.5)|: real below 0, where SymPy's loggamma is not
    ("digamma", (0, 0), 1, "-2.4041138063191886"),  # psi''(1) = -2 zeta(3)
    ("log_ndtr", (), 30, "-4.906713927148187e-198"),  # log1p(-Phi(-30)): log(Phi(30)) is 0 at any fixed precision
    ("log_ndtr", (0,), -40, "40.024968847207264"),  # phi/Phi where both are below 1e-347  # cos(pi x) = 0 exactly: -sinc(x)/x  # at (-2000, -2000): 2**-2000 is 0 in any float, not in mpmath
])
def test_exact_forms_are_exact_in_the_tails(name: str, multi: tuple[int, ...], x: float, want: str) -> None:
    args = (x, -2000) if name == "logaddexp2" else (x,)
    assert float(_at(name, multi, *args)) == pytest.approx(float(want), rel=1e-15)


def test_sinc_differentiates_into_its_own_derivatives_exact_at_zero() -> None:
    x = sympy.Symbol("x", real=True)
    form = OPS["sinc"].sympy(x)
    assert sympy.diff(form, x, 3) == Sinc(x, 3)
    assert [float(Sinc(0, n).evalf(30)) for n in range(5)] == pytest.approx(
        [1, 0, -math.pi**2 / 3, 0, math.pi**4 / 5], rel=1e-15, abs=1e-300)
    assert Sinc(3, 0).evalf(30) == 0 and float(Sinc(sympy.Rational(1, 2), 1).evalf(30)) == pytest.approx(-4 / math.pi)
    with pytest.raises(ArgumentIndexError):
        Sinc(x, 1).fdiff(2)


def test_lgamma_differentiates_into_the_polygamma_functions_and_refuses_its_poles() -> None:
    from gradspec.ops.functions import LogGamma, Psi

    x = sympy.Symbol("x", real=True)
    assert sympy.diff(OPS["lgamma"].sympy(x), x, 2) == Psi(x, 1) and sympy.diff(OPS["digamma"].sympy(x), x) == Psi(x, 1)
    assert float(LogGamma(sympy.Rational(-1, 2)).evalf(30)) == pytest.approx(math.log(2 * math.sqrt(math.pi)), rel=1e-15)
    assert float(Psi(sympy.Rational(1, 2), 1).evalf(30)) == pytest.approx(math.pi**2 / 2, rel=1e-15)
    for name in ("lgamma", "digamma"):
        domain = OPS[name].domain
        assert domain is not None
        assert domain([mpmath.mpf(-3)], [True]) == f"{name} has a pole at every integer x <= 0, got x = -3.0"
        assert domain([mpmath.mpf(0)], [True]) is not None and domain([mpmath.mpf("-2.5")], [True]) is None
    with pytest.raises(ArgumentIndexError):
        Psi(x, 1).fdiff(2)


def test_tanhshrink_is_a_sympy_function_of_its_own_with_its_digits() -> None:
    x = sympy.Symbol("x", real=True)
    form = OPS["tanhshrink"].sympy(x)
    assert sympy.diff(form, x) == sympy.tanh(x) ** 2
    assert float(form.subs(x, sympy.Rational(1, 10**20)).evalf(30)) == pytest.approx(1e-60 / 3, rel=1e-15)
    assert form.subs(x, sympy.Symbol("y")).evalf().has(sympy.Symbol("y"))  # not a number: left whole


def test_gelu_tanh_is_the_tanh_formula_and_its_tail_keeps_digits() -> None:
    u = math.sqrt(2 / math.pi) * (1.5 + 0.044715 * 1.5**3)
    assert float(_at("gelu[approximate=tanh]", (), 1.5)) == pytest.approx(0.75 * (1 + math.tanh(u)), rel=1e-15)
    with mpmath.workdps(60):
        x = mpmath.mpf(-10)
        v = mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x**3)
        want = x / (1 + mpmath.exp(-2 * v))
    assert float(_at("gelu[approximate=tanh]", (), -10)) == pytest.approx(float(want), rel=1e-15)
    assert float(want) < -1e-38  # not 0, which 0.5*x*(1 + tanh(v)) is in float64


# -- kinks: where they are, the convention there, the other subgradients ---------------------------------------

# (bound op name, a point on a kink, the derivative there: the documented library convention)
KINKS = [
    ("softplus", 20, 1 / (1 + math.exp(-20))),  # torch: beta*x > threshold is false at equality: the log1p branch
    ("softplus[beta=2,threshold=10]", 5, 1 / (1 + math.exp(-10))),
    ("elu", 0, 1.0), ("elu[alpha=2]", 0, 2.0), ("selu", 0, 1.0507009873554805 * 1.6732632423543772),
    ("celu[alpha=1/2]", 0, 1.0), ("sign", 0, 0.0),
    ("leaky_relu", 0, 0.01), ("leaky_relu[negative_slope=2]", 0, 2.0),
    ("relu6", 0, 0.0), ("relu6", 6, 0.0), ("hardtanh", -1, 0.0), ("hardtanh", 1, 0.0),
    ("hardtanh[min_val=-2,max_val=1/2]", 0.5, 0.0), ("hardsigmoid", -3, 0.0), ("hardsigmoid", 3, 0.0),
    ("hardswish", -3, 0.0), ("hardswish", 3, 1.0), ("clamp[min=-1/2,max=1/2]", -0.5, 1.0),
    ("clamp[min=-1/2,max=1/2]", 0.5, 1.0), ("clamp[max=1]", 1, 1.0),
    ("softsign", 0, 1.0), ("logit[eps=1/4]", 0.25, 16 / 3), ("logit[eps=1/4]", 0.75, 16 / 3),
    ("hardshrink", 0.5, 0.0), ("hardshrink", -0.5, 0.0), ("hardshrink[lambd=1/4]", 0.25, 0.0),
    ("softshrink", 0.5, 0.0), ("softshrink", -0.5, 0.0), ("softshrink[lambd=2]", -2, 0.0),
    ("threshold[threshold=1,value=-3]", 1, 0.0), ("threshold", 0, 0.0),
]


def test_prelu_has_its_kink_at_zero_whatever_the_weight_with_torchs_slope_w() -> None:
    op = OPS["prelu"]
    assert op.kink is not None
    for w in ("0.25", "-3", "2"):
        at = [mpmath.mpf(0), mpmath.mpf(w)]
        assert op.kink.at(at) and op.kink.at([mpmath.mpf("1e-50"), mpmath.mpf(w)])
        assert not op.kink.at([mpmath.mpf("0.25"), mpmath.mpf(w)])
        assert float(_at("prelu", (0,), 0, float(w))) == float(w)  # d/dx = w at 0 (torch's kernel: x > 0 ? 1 : w)
        assert float(_at("prelu", (1,), 0, float(w))) == 0.0  # d/dw = x
        assert op.kink.interval_for(at) == ((min(float(w), 1.0), max(float(w), 1.0)), (0.0, 0.0))
    assert float(_at("prelu", (0, 1), -2, 0.25)) == 1.0 and float(_at("prelu", (0, 1), 2, 0.25)) == 0.0


@pytest.mark.parametrize("name, x, convention", KINKS, ids=[f"{n}@{x}" for n, x, _ in KINKS])
def test_each_kink_is_found_and_its_convention_is_what_sympy_derives(name: str, x: float, convention: float) -> None:
    op = OPS[name]
    assert op.kink is not None
    point = [mpmath.mpf(x)]
    assert op.kink.at(point)
    assert op.kink.at([mpmath.mpf(x) + mpmath.mpf("1e-50")])  # reached through high-precision rounding
    assert not op.kink.at([mpmath.mpf(x) + mpmath.mpf("0.25")])
    assert float(_at(name, (0,), x)) == pytest.approx(convention, rel=1e-15)
    ((lo, hi),) = op.kink.interval_for(point)
    assert lo - 1e-12 <= convention <= hi + 1e-12
    # the one-sided slopes are the interval's ends
    with mpmath.workdps(60):
        sides = sorted(float(derivative(name, (0,))([mpmath.mpf(x) + d])) for d in (mpmath.mpf("-1e-30"), mpmath.mpf("1e-30")))
    assert sides == pytest.approx([lo, hi], rel=1e-9, abs=1e-12)


def test_hardswish_has_a_different_interval_at_each_kink() -> None:
    kink = OPS["hardswish"].kink
    assert kink is not None
    assert kink.interval_for([mpmath.mpf(-3)]) == ((-0.5, 0.0),)
    assert kink.interval_for([mpmath.mpf(3)]) == ((1.0, 1.5),)
    assert OPS["relu"].kink is not None and OPS["relu"].kink.interval_for([mpmath.mpf(0)]) == ((0.0, 1.0),)


def test_binary_ties_split_the_gradient_and_where_gives_none_to_its_comparison() -> None:
    for name in ("maximum", "minimum"):
        op = OPS[name]
        assert op.kink is not None and op.kink.at([mpmath.mpf(2), mpmath.mpf(2)])
        assert not op.kink.at([mpmath.mpf(2), mpmath.mpf(3)])
        assert [float(_at(name, (k,), 2, 2)) for k in (0, 1)] == [0.5, 0.5]
    where = OPS["where[cmp=>=]"]
    assert where.kink is not None and where.kink.at([mpmath.mpf(1)] * 4)
    assert [float(_at("where[cmp=>=]", (k,), 1, 1, 5, 7)) for k in range(4)] == [0, 0, 1, 0]  # 1 >= 1: a
    assert [float(_at("where", (k,), 1, 1, 5, 7)) for k in range(4)] == [0, 0, 0, 1]  # 1 > 1 is false: b
    assert float(_at("where[cmp=!=]", (), 1, 2, 5, 7)) == 5


# -- each library's spelling against the row's float form --------------------------------------------------------


def _spelling_points(name: str) -> list[tuple[float, ...]]:
    return SPECIAL_POINTS[name]


def _variants(name: str) -> list[str]:
    extra = {"softplus": ["softplus[beta=2,threshold=10]"], "elu": ["elu[alpha=1/2]"], "celu": ["celu[alpha=2]"],
             "gelu": ["gelu[approximate=tanh]"], "leaky_relu": ["leaky_relu[negative_slope=1/5]"],
             "hardtanh": ["hardtanh[min_val=-2,max_val=1/2]"], "clamp": ["clamp[min=-1/2,max=1]", "clamp[max=0]"],
             "where": ["where[cmp=<]", "where[cmp=<=]", "where[cmp=>=]", "where[cmp===]", "where[cmp=!=]"],
             "logit": ["logit[eps=1/4]"], "hardshrink": ["hardshrink[lambd=1/4]", "hardshrink[lambd=-1/2]"],
             "softshrink": ["softshrink[lambd=0]"], "threshold": ["threshold[threshold=1,value=-3]"]}
    return [*([] if name == "clamp" else [name]), *extra.get(name, [])]  # clamp needs a bound


CASES = [(v, p) for n in sorted(SPECIAL) for v in _variants(n) for p in _spelling_points(n)]


@pytest.mark.parametrize("name, args", CASES, ids=[f"{n}{a}" for n, a in CASES])
def test_torch_spelling_computes_the_float_form(name: str, args: tuple[float, ...]) -> None:
    torch = pytest.importorskip("torch")
    op = OPS[name]
    assert op.torch is not None
    got = op.torch(torch, [torch.tensor(a, dtype=torch.float64) for a in args], op.kwargs)
    assert float(got) == pytest.approx(op.fn(*args), rel=4e-16 * 8, abs=1e-300)


@pytest.mark.parametrize("name, args", CASES, ids=[f"{n}{a}" for n, a in CASES])
def test_jax_spelling_computes_the_float_form(name: str, args: tuple[float, ...]) -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    op = OPS[name]
    assert op.jax is not None
    got = op.jax(jax, [jax.numpy.asarray(a, dtype="float64") for a in args], op.kwargs)
    assert float(got) == pytest.approx(op.fn(*args), rel=4e-16 * 8, abs=1e-300)


# tinygrad's erf (and so its exact gelu) is Abramowitz and Stegun 7.1.26, accurate to 1.5e-7
TINYGRAD_APPROXIMATE = {"erf", "gelu"}


@pytest.mark.parametrize("name, args", CASES, ids=[f"{n}{a}" for n, a in CASES])
def test_tinygrad_spelling_computes_the_float_form_or_says_what_it_lacks(name: str, args: tuple[float, ...]) -> None:
    os.environ.setdefault("DEV", "PYTHON")
    tinygrad = pytest.importorskip("tinygrad")
    op = OPS[name]
    if op.tinygrad is None:
        base = name.partition("[")[0]
        assert op.tinygrad_lacks == f"tinygrad has no {base}"
        assert not hasattr(tinygrad.Tensor, base)
        return
    assert op.tinygrad_lacks is None
    dtype = tinygrad.dtypes.float64
    got = op.tinygrad(tinygrad, [tinygrad.Tensor([a], dtype=dtype) for a in args], op.kwargs).numpy()[0]
    # the spelling computes the op; how accurately is the case library's question (tinygrad's erf, asin,
    # acos and atan are polynomial approximations, its selu constants have 5 digits: pinned below)
    rel = 3e-6 if name == "selu" else 1e-6
    assert float(got) == pytest.approx(op.fn(*args), rel=rel, abs=1.5e-7 if name in TINYGRAD_APPROXIMATE else 1e-300)


def test_tinygrad_approximations_seen_through_the_spellings() -> None:
    os.environ.setdefault("DEV", "PYTHON")
    tinygrad = pytest.importorskip("tinygrad")

    def run(name: str, x: float) -> float:
        op = OPS[name]
        assert op.tinygrad is not None
        return float(op.tinygrad(tinygrad, [tinygrad.Tensor([x], dtype=tinygrad.dtypes.float64)], op.kwargs).numpy()[0])

    assert 1e-10 < abs(run("erf", 0.5) - math.erf(0.5)) < 1.5e-7  # Abramowitz and Stegun 7.1.26
    assert 1e-9 < abs(run("asin", 0.5) - math.pi / 6) < 1e-7  # in float64
    assert run("selu", 0.5) == 0.5 * 1.0507  # scale 1.0507, not 1.0507009873554805: 9.4e-7 of itself off


def test_every_special_row_names_its_spellings() -> None:
    for name in SPECIAL:
        op = OPS[name]
        assert op.method == name and op.torch is not None and op.jax is not None, name
        assert (op.tinygrad is None) != (op.tinygrad_lacks is None), name
    assert {n for n in SPECIAL if OPS[n].tinygrad is None} == {
        "erfc", "log1p", "expm1", "atan2", "xlogy", "ndtr", "logit", "entr", "deg2rad", "rad2deg", "tanhshrink",
        "hardshrink", "softshrink", "threshold", "hypot", "logaddexp2", "xlog1py", "sinc", "prelu", "lgamma", "digamma",
        "log_ndtr"}
