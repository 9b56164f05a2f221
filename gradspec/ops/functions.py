"""The SymPy functions of gradspec's own that the exact forms of the op table use, and how mpmath evaluates
each (:mod:`gradspec.reference.mpeval` reads :data:`MPMATH`).

SymPy writes some functions in ways that lose digits at a fixed precision: ``erfc(-x)`` becomes
``2 - erfc(x)``, ``log(1 + exp(x))`` has nothing of ``exp(-200)`` left, ``x - tanh(x)`` at ``1e-30`` keeps
none of its 50 digits. Each function here is kept whole, differentiates into SymPy's own functions, and is
evaluated by an mpmath function that keeps every digit: ``log1p`` and ``expm1`` (SymPy's codegen
functions), the normal CDF :class:`Phi` and :class:`TanhShrink`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import sympy
from sympy.codegen.cfunctions import expm1, log1p

__all__ = ["MPMATH", "Phi", "TanhShrink", "expm1", "log1p", "mp_tanhshrink"]


class Phi(sympy.Function):
    """The standard normal CDF, ``erfc(-x/sqrt(2))/2``, kept whole so its tail keeps its digits."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        (x,) = self.args
        return sympy.exp(-x**2 / 2) / sympy.sqrt(2 * sympy.pi)

    def _eval_evalf(self, prec: int) -> sympy.Expr:
        (x,) = self.args
        return (sympy.erfc(-x / sympy.sqrt(2)) / 2)._eval_evalf(prec)


def mp_tanhshrink(x: Any) -> Any:
    """``x - tanh(x)`` in mpmath at the working precision: near 0 it is ``x**3/3``, so the difference is
    taken with the ``2*log2(1/|x|)`` bits it cancels added."""
    if not x or not mpmath.isfinite(x):
        return x - mpmath.tanh(x)
    with mpmath.extraprec(max(0, -2 * int(mpmath.mag(x))) + 16):
        value = x - mpmath.tanh(x)
    return +value


class TanhShrink(sympy.Function):
    """``x - tanh(x)``, kept whole so that its digits near 0 are kept (torch's tanhshrink)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        (x,) = self.args
        return sympy.tanh(x) ** 2

    def _eval_evalf(self, prec: int) -> sympy.Expr | None:
        x = self.args[0]._eval_evalf(prec)
        if x is None or not x.is_Number:
            return None
        with mpmath.workprec(prec):
            return sympy.Float(mp_tanhshrink(x._to_mpmath(prec)), precision=prec)


#: Each function's mpmath evaluation (an mpf in, an mpf out).
MPMATH: dict[type, Callable[[Any], Any]] = {
    log1p: lambda v: -mpmath.inf if v == -1 else (mpmath.log1p(v) if v > -1 else mpmath.nan),
    expm1: mpmath.expm1,
    Phi: mpmath.ncdf,
    TanhShrink: mp_tanhshrink,
}
