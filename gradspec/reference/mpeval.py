"""SymPy expressions compiled to mpmath closures: no code strings, no ``lambdify``.

The exact reference evaluates SymPy's derivatives at high precision many times; each expression is
walked once into nested closures over an environment of symbol -> mpf.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, TypeAlias

import mpmath
import sympy

from gradspec.ops.functions import MPMATH

__all__ = ["Env", "Scalar", "compile_expr", "to_mpf"]

Scalar: TypeAlias = Any  # an mpmath.mpf (mpmath ships no type information)
Env = Mapping[object, Scalar]

def to_mpf(x: Fraction | float | int | str) -> Scalar:
    if isinstance(x, Fraction):
        return mpmath.mpf(x.numerator) / x.denominator
    return mpmath.mpf(x)


_FUNCS: dict[type, Callable[[Scalar], Scalar]] = {
    sympy.exp: mpmath.exp,
    sympy.log: lambda v: -mpmath.inf if v == 0 else (mpmath.log(v) if v > 0 else mpmath.nan),
    sympy.tanh: mpmath.tanh,
    sympy.sinh: mpmath.sinh,
    sympy.cosh: mpmath.cosh,
    sympy.sin: mpmath.sin,
    sympy.cos: mpmath.cos,
    sympy.tan: mpmath.tan,
    sympy.Abs: mpmath.fabs,
    sympy.sign: mpmath.sign,
    # the special functions and activations of the op table (gradspec.ops.special)
    sympy.erf: mpmath.erf,
    sympy.erfc: mpmath.erfc,
    **MPMATH,  # log1p, expm1, Phi, x - tanh(x), sinc: gradspec's own SymPy functions (gradspec.ops.functions)
    sympy.atan: mpmath.atan,
    sympy.asin: lambda v: mpmath.asin(v) if abs(v) <= 1 else mpmath.nan,
    sympy.acos: lambda v: mpmath.acos(v) if abs(v) <= 1 else mpmath.nan,
    sympy.asinh: mpmath.asinh,
    sympy.acosh: lambda v: mpmath.acosh(v) if v >= 1 else mpmath.nan,
    sympy.atanh: lambda v: mpmath.atanh(v) if abs(v) < 1 else (mpmath.nan if abs(v) > 1 else mpmath.inf * v),
}

_RELATIONS: dict[type, Callable[[Scalar, Scalar], bool]] = {
    sympy.StrictLessThan: lambda a, b: a < b,
    sympy.LessThan: lambda a, b: a <= b,
    sympy.StrictGreaterThan: lambda a, b: a > b,
    sympy.GreaterThan: lambda a, b: a >= b,
}


def _power(base: Scalar, exponent: Scalar) -> Scalar:
    if base == 0 and exponent < 0:
        return mpmath.inf
    if base < 0 and exponent != mpmath.floor(exponent):
        return mpmath.nan
    return mpmath.power(base, exponent)


def compile_expr(expr: sympy.Basic) -> Callable[[Env], Scalar]:
    """Turn a SymPy expression into a closure over an environment of symbol -> mpf (no code strings)."""
    if isinstance(expr, sympy.Symbol):
        return lambda env: env[expr]
    if expr is sympy.zoo:  # complex infinity (1/0) is not a Number to SymPy
        return lambda env: mpmath.inf
    if expr.is_Number:
        if expr is sympy.nan:
            return lambda env: mpmath.nan
        if expr is sympy.oo:
            return lambda env: mpmath.inf
        if expr is sympy.S.NegativeInfinity:
            return lambda env: -mpmath.inf
        p, q = sympy.fraction(expr) if expr.is_Rational else (expr, 1)
        if expr.is_Rational:
            num, den = int(p), int(q)
            return lambda env: mpmath.mpf(num) / den
        text = str(expr)
        return lambda env: mpmath.mpf(text)
    if expr is sympy.pi:
        return lambda env: +mpmath.pi
    if expr is sympy.E:
        return lambda env: mpmath.e
    if isinstance(expr, sympy.Add):
        parts = [compile_expr(a) for a in expr.args]
        return lambda env: mpmath.fsum(p(env) for p in parts)
    if isinstance(expr, sympy.Mul):
        parts = [compile_expr(a) for a in expr.args]

        def product(env: Env) -> Scalar:
            out = mpmath.mpf(1)
            for p in parts:
                out *= p(env)
            return out

        return product
    if isinstance(expr, sympy.Pow):
        base, exponent = compile_expr(expr.args[0]), compile_expr(expr.args[1])
        return lambda env: _power(base(env), exponent(env))
    if isinstance(expr, sympy.Piecewise):
        pieces = [(compile_expr(e), _compile_condition(c)) for e, c in expr.args]

        def piecewise(env: Env) -> Scalar:
            for value, cond in pieces:
                if cond(env):
                    return value(env)
            return mpmath.nan

        return piecewise
    if isinstance(expr, sympy.DiracDelta):  # sign' and abs'': zero away from the kink, which is declared
        return lambda env: mpmath.mpf(0)
    if isinstance(expr, sympy.atan2):
        y, x = compile_expr(expr.args[0]), compile_expr(expr.args[1])
        return lambda env: mpmath.atan2(y(env), x(env))
    fn = _FUNCS.get(type(expr))
    if fn is not None and len(expr.args) == 1:
        arg = compile_expr(expr.args[0])
        return lambda env: fn(arg(env))
    if fn is not None:  # a function of gradspec's own with more arguments (Sinc(x, n): its n-th derivative)
        args = [compile_expr(a) for a in expr.args]
        return lambda env: fn(*(a(env) for a in args))
    raise NotImplementedError(f"no mpmath form for {type(expr).__name__}")


def _compile_condition(cond: sympy.Basic) -> Callable[[Env], bool]:
    if cond is sympy.true:
        return lambda env: True
    if cond is sympy.false:
        return lambda env: False
    rel = _RELATIONS.get(type(cond))
    if rel is not None:
        lhs, rhs = compile_expr(cond.args[0]), compile_expr(cond.args[1])
        return lambda env: rel(lhs(env), rhs(env))
    if isinstance(cond, sympy.And):
        parts = [_compile_condition(c) for c in cond.args]
        return lambda env: all(p(env) for p in parts)
    if isinstance(cond, sympy.Or):
        parts = [_compile_condition(c) for c in cond.args]
        return lambda env: any(p(env) for p in parts)
    if isinstance(cond, sympy.Not):
        inner = _compile_condition(cond.args[0])
        return lambda env: not inner(env)
    if isinstance(cond, sympy.ITE):  # nested Piecewise conditions: if a then b else c
        a, b, c = (_compile_condition(x) for x in cond.args)
        return lambda env: b(env) if a(env) else c(env)
    if isinstance(cond, sympy.Eq | sympy.Ne):
        lhs, rhs = compile_expr(cond.args[0]), compile_expr(cond.args[1])
        equal = isinstance(cond, sympy.Eq)
        return lambda env: (lhs(env) == rhs(env)) == equal
    raise NotImplementedError(f"no mpmath form for condition {type(cond).__name__}")
