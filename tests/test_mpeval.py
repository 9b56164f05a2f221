"""SymPy expressions compiled to mpmath closures: values at high precision, edges, and refusals."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest
import sympy

from gradspec.reference.mpeval import compile_expr, to_mpf

x, y = sympy.symbols("x y", real=True)


def at(expr: sympy.Basic, **values: str) -> mpmath.mpf:
    env = {sympy.Symbol(k, real=True): mpmath.mpf(v) for k, v in values.items()}
    with mpmath.workdps(50):
        return compile_expr(expr)(env)


def test_to_mpf_takes_fractions_exactly() -> None:
    with mpmath.workdps(50):
        assert to_mpf(Fraction(1, 10)) == mpmath.mpf(1) / 10
        assert to_mpf(Fraction(1, 10)) != mpmath.mpf(0.1)  # not the nearest binary float
        assert to_mpf("2.5") == mpmath.mpf(5) / 2
        assert to_mpf(3) == 3


def test_arithmetic_at_fifty_digits() -> None:
    with mpmath.workdps(50):
        assert at(x * y + x, x="2", y="3") == 8
        assert at(x / 3, x="1") == mpmath.mpf(1) / 3
        assert mpmath.nstr(at(x / 3, x="1"), 45) == "0." + "3" * 45
        assert at(x**2 - 2 * y, x="1.5", y="1") == mpmath.mpf("0.25")
        assert at(sympy.sqrt(x), x="2") == mpmath.sqrt(2)
        assert at(sympy.Rational(1, 7) * x, x="7") == 1


def test_functions_and_constants() -> None:
    with mpmath.workdps(50):
        assert at(sympy.tanh(x) + sympy.exp(y), x="0.5", y="1") == mpmath.tanh(mpmath.mpf("0.5")) + mpmath.e
        assert at(sympy.sin(x) ** 2 + sympy.cos(x) ** 2, x="0.3") == pytest.approx(1, abs=1e-45)
        assert at(sympy.log(x), x="1") == 0
        assert at(sympy.Abs(x), x="-2") == 2 and at(sympy.sign(x), x="-2") == -1
        assert at(sympy.pi * x, x="1") == +mpmath.pi
        assert at(sympy.E + 0 * x, x="1") == mpmath.e
        assert at(sympy.sinh(x) + sympy.cosh(x) - sympy.exp(x) + sympy.tan(0 * x), x="0.7") == pytest.approx(0, abs=1e-45)


def test_values_outside_the_real_domain_are_nan_or_inf_not_complex() -> None:
    with mpmath.workdps(50):
        assert mpmath.isnan(at(sympy.log(x), x="-1"))
        assert at(sympy.log(x), x="0") == -mpmath.inf
        assert at(x ** -1, x="0") == mpmath.inf
        assert mpmath.isnan(at(x ** sympy.Rational(1, 2), x="-4"))
        assert at(x**3, x="-2") == -8  # an integer power of a negative base is real
        assert mpmath.isnan(compile_expr(sympy.nan)({}))
        assert compile_expr(sympy.oo)({}) == mpmath.inf
        assert compile_expr(sympy.zoo)({}) == mpmath.inf
        assert compile_expr(-sympy.oo)({}) == -mpmath.inf


def test_piecewise_and_conditions() -> None:
    relu = sympy.Piecewise((0, x <= 0), (x, True))
    assert at(relu, x="-3") == 0 and at(relu, x="2") == 2 and at(relu, x="0") == 0
    both = sympy.Piecewise((1, sympy.And(x > 0, y >= 1)), (2, sympy.Or(x < -5, sympy.Not(y < 0))), (3, True))
    assert [at(both, x=a, y=b) for a, b in [("1", "1"), ("1", "0"), ("-6", "-1"), ("-1", "-1")]] == [1, 2, 2, 3]
    eq = sympy.Piecewise((5, sympy.Eq(x, 2)), (6, sympy.Ne(x, 3)), (7, True))
    assert [at(eq, x=v) for v in ("2", "4", "3")] == [5, 6, 7]
    none_true = sympy.Piecewise((1, x > 0), (2, x < 0))
    assert mpmath.isnan(at(none_true, x="0"))
    ite = sympy.Piecewise((1, sympy.ITE(x > 0, y > 0, y < 0)), (0, True))
    assert [at(ite, x=a, y=b) for a, b in [("1", "1"), ("1", "-1"), ("-1", "-1"), ("-1", "1")]] == [1, 0, 1, 0]


def test_an_expression_without_an_mpmath_form_is_refused() -> None:
    with pytest.raises(NotImplementedError, match="no mpmath form for gamma"):
        compile_expr(sympy.gamma(x))
    with pytest.raises(NotImplementedError, match="no mpmath form for condition"):
        compile_expr(sympy.Piecewise((1, sympy.Contains(x, sympy.Interval(0, 1))), (0, True)))
