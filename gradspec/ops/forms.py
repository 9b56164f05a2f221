"""The forms of the op table's basic rows: exact and float forms that are more than one library call,
domains, the kink test, constant folding, and the rounding budget of a library transcendental.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import mpmath
import sympy

from gradspec.ops.row import show_number

__all__ = ["LIBM", "at_zero", "div_domain", "float_range", "fold_div", "fold_pow", "log_domain", "pow_domain",
           "pow_float", "relu_sym", "sigmoid", "sqrt_domain"]


def relu_sym(x: sympy.Expr) -> sympy.Expr:
    # Piecewise rather than Max(0, x): SymPy differentiates Max into Heaviside(x), which is 1/2 at 0;
    # this form makes the declared convention relu'(0) = 0 the derivative SymPy itself returns.
    return sympy.Piecewise((0, x <= 0), (x, True))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def div_domain(args: Sequence[mpmath.mpf], varying: Sequence[bool]) -> str | None:
    return "division by zero" if args[1] == 0 else None


def log_domain(args: Sequence[mpmath.mpf], varying: Sequence[bool]) -> str | None:
    return f"log needs x > 0, got x = {mpmath.nstr(args[0], 17)}" if args[0] <= 0 else None


def sqrt_domain(args: Sequence[mpmath.mpf], varying: Sequence[bool]) -> str | None:
    return f"sqrt needs x >= 0, got x = {mpmath.nstr(args[0], 17)}" if args[0] < 0 else None


def pow_domain(args: Sequence[mpmath.mpf], varying: Sequence[bool]) -> str | None:
    base, exponent = args
    integral = exponent == mpmath.floor(exponent)
    if base < 0 and not integral:
        return f"pow of a negative base needs an integer exponent, got {mpmath.nstr(exponent, 17)}"
    if base == 0 and exponent < 0:
        return "pow: zero to a negative power"
    if varying[1] and base <= 0:
        return "pow: the exponent depends on an input, so the base must be > 0 (d/dy x**y = x**y*log(x))"
    return None


def at_zero(args: Sequence[mpmath.mpf]) -> bool:
    # Exact inputs are evaluated at high precision, so a kink reached through arithmetic (x - 0.3 at
    # x = 0.3) can miss zero by rounding far below anything a float can resolve.
    return bool(abs(args[0]) < mpmath.mpf("1e-40"))


# IEEE 754 rounds + - * / and sqrt correctly (half an ulp); math libraries compute exp, log, tanh,
# sigmoid, sin, cos and pow to within a few ulps (XLA's float32 tanh among the least accurate).
LIBM = 4.0


def pow_float(x: float, y: float) -> float:
    return math.pow(x, y)


def float_range(fold: Callable[..., Fraction]) -> Callable[..., Fraction]:
    """``fold``, refusing a nonzero result that float64 cannot hold (it would be inf or 0 in an engine)."""

    def folded(*args: Fraction) -> Fraction:
        result = fold(*args)
        if result != 0 and not 1e-308 < abs(result) < 1.7e308:
            raise OverflowError(f"constant {show_number(result)} is outside the float64 range")
        return result

    return folded


def fold_div(a: Fraction, b: Fraction) -> Fraction:
    if b == 0:
        raise ZeroDivisionError("division by zero in a constant")
    return a / b


def fold_pow(base: Fraction, e: Fraction) -> Fraction | None:
    if e.denominator != 1:
        return None
    if base == 0 and e < 0:
        raise ZeroDivisionError("zero to a negative power in a constant")
    if base != 0 and abs(e) * abs(math.log10(abs(base))) > 308:  # refused before it is computed
        raise OverflowError(f"constant {show_number(base)}**{show_number(e)} is outside the float64 range")
    return base**e.numerator
