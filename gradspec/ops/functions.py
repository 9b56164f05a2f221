"""The SymPy functions of gradspec's own that the exact forms of the op table use, and how mpmath evaluates
each (:mod:`gradspec.reference.mpeval` reads :data:`MPMATH`).

SymPy writes some functions in ways that lose digits at a fixed precision: ``erfc(-x)`` becomes
``2 - erfc(x)``, ``log(1 + exp(x))`` has nothing of ``exp(-200)`` left, ``x - tanh(x)`` at ``1e-30`` keeps
none of its 50 digits. Each function here is kept whole, differentiates into SymPy's own functions, and is
evaluated by an mpmath function that keeps every digit: ``log1p`` and ``expm1`` (SymPy's codegen
functions), the normal CDF :class:`Phi`, :class:`TanhShrink` and :class:`Sinc` with its derivatives, whose
removable singularity at 0 SymPy's own ``sinc`` differentiates into 0/0 (its second derivative there is
``-pi**2/3``, not 0), and :class:`LogGamma` (log|Gamma(x)|, real on the whole line, where SymPy's
``loggamma`` is complex below 0) with the polygamma functions :class:`Psi` it differentiates into (kept
apart from SymPy's ``polygamma``, which rewrites itself at rational points), and :class:`LogNdtr`,
log(Phi(x)), whose right tail ``log(Phi(40))`` would be 0 at any fixed precision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import sympy
from sympy.codegen.cfunctions import expm1, log1p
from sympy.core.function import ArgumentIndexError

__all__ = ["MPMATH", "LogGamma", "LogNdtr", "Phi", "Psi", "Sinc", "TanhShrink", "expm1", "log1p", "mp_lgamma", "mp_log_ndtr", "mp_psi",
           "mp_sinc", "mp_tanhshrink"]


class _Whole(sympy.Function):
    """A function kept whole: a number is evaluated by its mpmath form in :data:`MPMATH` at the working
    precision (any further arguments are integer orders)."""

    def _eval_evalf(self, prec: int) -> sympy.Expr | None:
        x = self.args[0]._eval_evalf(prec)
        if x is None or not x.is_Number:
            return None
        with mpmath.workprec(prec):
            return sympy.Float(MPMATH[type(self)](x._to_mpmath(prec), *(int(a) for a in self.args[1:])),
                               precision=prec)


class _Derivatives(_Whole):
    """``F(x)`` and ``F(x, n)``, its ``n``-th derivative, which is what it differentiates into."""

    nargs = (1, 2)

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        x, n = self.args[0], (self.args[1] if len(self.args) > 1 else sympy.Integer(0))
        return type(self)(x, n + 1)


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


class TanhShrink(_Whole):
    """``x - tanh(x)``, kept whole so that its digits near 0 are kept (torch's tanhshrink)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        (x,) = self.args
        return sympy.tanh(x) ** 2


def mp_sinc(x: Any, n: Any = 0) -> Any:
    """The ``n``-th derivative of ``sin(pi*x)/(pi*x)`` (1 at 0) in mpmath at the working precision: near 0
    from its Taylor series, term by term; elsewhere from Leibniz's rule on ``sin(pi*x) * (pi*x)**-1``, with
    ``sin(pi*x + m*pi/2)`` as ``sinpi(x + m/2)``, so no rounding of ``pi*x`` enters."""
    n = int(n)
    if not mpmath.isfinite(x):
        return mpmath.nan if mpmath.isnan(x) else mpmath.mpf(0)
    with mpmath.extraprec(24 + 4 * n):
        y, scale = mpmath.pi * x, mpmath.pi**n
        if abs(y) <= 2:  # sum over 2k >= n of (-1)**k y**(2k - n)/((2k + 1)(2k - n)!)
            total, k = mpmath.mpf(0), (n + 1) // 2
            tiny = mpmath.mpf(2) ** -(mpmath.mp.prec + 8)
            while True:
                term = (-1) ** k * y ** (2 * k - n) / ((2 * k + 1) * mpmath.factorial(2 * k - n))
                total += term
                if abs(term) <= tiny * abs(total) or (not total and k > n + 60):
                    break
                k += 1
        else:
            total = mpmath.fsum(mpmath.binomial(n, k) * (-1) ** k * mpmath.factorial(k) * mpmath.sinpi(x + mpmath.mpf(n - k) / 2)
                                / y ** (k + 1) for k in range(n + 1))
        value = scale * total
    return +value


class Sinc(_Derivatives):
    """``sin(pi*x)/(pi*x)``, 1 at 0 (torch's and NumPy's sinc), kept whole; ``Sinc(x, n)`` is its ``n``-th
    derivative, which is what it differentiates into, so every derivative is exact at 0 too."""



def _pole(x: Any) -> bool:
    return bool(x <= 0 and x == mpmath.floor(x))


def mp_lgamma(x: Any) -> Any:
    """log|Gamma(x)| in mpmath: the real part of its loggamma, which keeps the digits beside the zeros at 1
    and 2; +inf at a pole (0, -1, -2, ...), as torch.lgamma."""
    if not mpmath.isfinite(x):
        return mpmath.inf if not mpmath.isnan(x) else x
    return mpmath.inf if _pole(x) else mpmath.re(mpmath.loggamma(x))


def mp_psi(x: Any, n: Any = 0) -> Any:
    """The n-th polygamma function (n = 0: digamma) in mpmath; nan at a pole."""
    return mpmath.nan if not mpmath.isfinite(x) or _pole(x) else mpmath.psi(int(n), x)


def mp_log_ndtr(x: Any) -> Any:
    """log(Phi(x)) in mpmath: log1p(-Phi(-x)) above 0, where Phi(x) rounds to 1 (log_ndtr(40) = -3.6e-350)."""
    if mpmath.isnan(x):
        return x
    return mpmath.log1p(-mpmath.ncdf(-x)) if x > 0 else mpmath.log(mpmath.ncdf(x))


class LogNdtr(_Whole):
    """``log(Phi(x))`` (torch.special.log_ndtr), kept whole so both tails keep their digits; its derivative
    is phi(x)/Phi(x), with Phi kept whole too."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        (x,) = self.args
        return sympy.exp(-x**2 / 2) / (sympy.sqrt(2 * sympy.pi) * Phi(x))


class Psi(_Derivatives):
    """``Psi(x)`` is digamma, the derivative of log|Gamma(x)|; ``Psi(x, n)`` its n-th derivative, which is
    what it differentiates into."""



class LogGamma(_Whole):
    """log|Gamma(x)| (torch.lgamma, scipy's gammaln), real wherever Gamma has no pole; its derivative is
    digamma on both sides of 0."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return Psi(self.args[0])


#: Each function's mpmath evaluation (mpfs in, an mpf out).
MPMATH: dict[type, Callable[[Any], Any]] = {
    log1p: lambda v: -mpmath.inf if v == -1 else (mpmath.log1p(v) if v > -1 else mpmath.nan),
    expm1: mpmath.expm1,
    Phi: mpmath.ncdf,
    TanhShrink: mp_tanhshrink,
    Sinc: mp_sinc,  # Sinc(x) and Sinc(x, n), n an integer
    LogGamma: mp_lgamma,
    LogNdtr: mp_log_ndtr,
    Psi: mp_psi,  # Psi(x) and Psi(x, n)
}
