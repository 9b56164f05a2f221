"""The built-in engine's special functions: the methods :class:`gradspec.engine.Value` takes from
:class:`SpecialOps`, each with its partials, as the ops of :mod:`gradspec.engine` are written, and
:class:`OpMixin`, what it shares with the activations (:mod:`gradspec.engine_activations`).

Every partial is built from Value ops, so it can be differentiated again, to any order, and is written
to keep its digits in the tails: ``asin' = 1/sqrt((1 - x)*(1 + x))`` (not ``1 - x*x``), ``expm1'`` from
``exp(x)`` rather than the output plus 1, ``logit' = 1/(x*(1 - x))``, ``entr' = -log1p((x - 1/e)*e)``
near its zero at 1/e, the partials of logaddexp and logaddexp2 as sigmoids. Values use ``log1p``/``expm1``
where the direct form cancels, ``logit`` ``log1p((2x - 1)/(1 - x))`` near 1/2, ``ndtr`` the normal CDF
with its argument's rounding corrected, and ``sinc`` sin(pi*x) without pi*x's rounding and each of its
derivatives from its Taylor series near 0; ``lgamma' = digamma`` and each polygamma function's derivative
the next one; ``log_ndtr' = phi/Phi`` as ``g - x`` with ``g = x + phi/Phi`` from Mills' ratio in the left
tail (phi/Phi is nearly -x there). sign' = 0.

>>> import math
>>> from gradspec.engine import Value, grad
>>> x = Value(-40.0)
>>> grad(x.expm1(), [x]) == [math.exp(-40.0)]  # exp(x), not expm1(x) + 1 = 0
True
>>> Value(0.5 + 2**-30).logit().data  # log(x/(1 - x)) keeps 8 of its digits
3.725290298461914e-09
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradspec.engine import Operand, Partial, Partials, Value

from gradspec.engine_floats import (
    _lgamma,
    _log_ndtr,
    _logit,
    _ncdf,
    _ndtr_gap,
    _ndtr_ratio,
    _polygamma,
    _safe,
    _sinc_d,
)

__all__ = ["OpMixin", "SpecialOps"]

_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_LN2, _LN10 = math.log(2), math.log(10)
_DEG, _RAD = math.radians(1), math.degrees(1)  # pi/180 and 180/pi, each correctly rounded
_INV_E, _INV_E_LO = math.exp(-1), -1.2428753672788363e-17  # 1/e as a float, and what that float lacks of it


def _log(fn: Any, x: float) -> float:
    return -math.inf if x == 0 else _safe(fn, x)


class OpMixin:
    """What the mixins of Value share: how an op makes its node, and its operands' values."""

    __slots__ = ()

    if TYPE_CHECKING:
        data: float
        _parents: tuple[Value, ...]

        # The mixin's self is the Value it is mixed into: its constructor and node maker take mixin nodes.
        def __init__(self, data: float) -> None: ...
        def _make(self, data: float, parents: tuple[Any, ...], op: str, partials: Partials) -> Value: ...
        def sigmoid(self) -> Value: ...
        def exp(self) -> Value: ...
        def log(self) -> Value: ...
        def sqrt(self) -> Value: ...
        def tanh(self) -> Value: ...
        def abs(self) -> Value: ...

    def _one(self, data: float, op: str, partials: Partials) -> Value:
        return self._make(data, (self,), op, partials)

    def _two(self, other: Operand, data: float, op: str, partials: Partials) -> Value:
        o = other if isinstance(other, OpMixin) else type(self)(other)
        return self._make(data, (self, o), op, partials)

    def _other(self, other: Operand) -> float:
        return other if isinstance(other, float | int) else other.data


class SpecialOps(OpMixin):
    """Special functions of a Value, one method each (a mixin of Value)."""

    __slots__ = ()

    # -- special functions --------------------------------------------------------------------------
    def erf(self) -> Value:
        return self._one(math.erf(self.data), "erf", _erf_partials)

    def erfc(self) -> Value:
        return self._one(math.erfc(self.data), "erfc", _erfc_partials)

    def log1p(self) -> Value:
        x = self.data
        return self._one(-math.inf if x == -1.0 else _safe(math.log1p, x), "log1p", _log1p_partials)

    def expm1(self) -> Value:
        return self._one(_safe(math.expm1, self.data), "expm1", _expm1_partials)

    def tan(self) -> Value:
        return self._one(_safe(math.tan, self.data), "tan", _tan_partials)

    def atan(self) -> Value:
        return self._one(math.atan(self.data), "atan", _atan_partials)

    def asin(self) -> Value:
        return self._one(_safe(math.asin, self.data), "asin", _asin_partials)

    def acos(self) -> Value:
        return self._one(_safe(math.acos, self.data), "acos", _acos_partials)

    def sinh(self) -> Value:
        return self._one(_safe(math.sinh, self.data), "sinh", _sinh_partials)

    def cosh(self) -> Value:
        return self._one(_safe(math.cosh, self.data), "cosh", _cosh_partials)

    def asinh(self) -> Value:
        return self._one(math.asinh(self.data), "asinh", _asinh_partials)

    def acosh(self) -> Value:
        return self._one(_safe(math.acosh, self.data), "acosh", _acosh_partials)

    def atanh(self) -> Value:
        x = self.data
        value = math.copysign(math.inf, x) if abs(x) == 1.0 else _safe(math.atanh, x)
        return self._one(value, "atanh", _atanh_partials)

    def reciprocal(self) -> Value:
        x = self.data
        return self._one(math.copysign(math.inf, x) if x == 0 else 1.0 / x, "reciprocal", _reciprocal_partials)

    def rsqrt(self) -> Value:
        x = self.data
        value = math.inf if x == 0 else (math.nan if x < 0 else 1.0 / math.sqrt(x))
        return self._one(value, "rsqrt", _rsqrt_partials)

    def square(self) -> Value:
        return self._one(self.data * self.data, "square", _square_partials)

    def sign(self) -> Value:
        # sign' = 0 on both sides of 0, and at 0: the convention gradspec's op table declares.
        x = self.data
        return self._one(float((x > 0) - (x < 0)), "sign", _zero_partials)

    def log2(self) -> Value:
        return self._one(_log(math.log2, self.data), "log2", _log2_partials)

    def log10(self) -> Value:
        return self._one(_log(math.log10, self.data), "log10", _log10_partials)

    def exp2(self) -> Value:
        return self._one(_safe(math.exp2, self.data), "exp2", _exp2_partials)

    def deg2rad(self) -> Value:
        return self._one(self.data * _DEG, "deg2rad", lambda out, g: (_DEG,))

    def rad2deg(self) -> Value:
        return self._one(self.data * _RAD, "rad2deg", lambda out, g: (_RAD,))

    def ndtr(self) -> Value:
        """The standard normal CDF, ``erfc(-x/sqrt(2))/2`` with the argument's rounding corrected."""
        return self._one(_ncdf(self.data), "ndtr", _ndtr_partials)

    def logit(self, eps: float | None = None) -> Value:
        """``log(x/(1 - x))``, of x clamped to [eps, 1 - eps] where eps is given; derivative 0 outside that
        interval and the inner slope at its ends (torch's)."""
        x = self.data

        def partials(out: Value, g: float) -> tuple[Partial, ...]:
            v = _x(out)
            if eps is not None and not eps <= v.data <= 1 - eps:
                return (0.0,)
            return (1 / (v * (1 - v)),)

        return self._one(_logit(x if eps is None else min(max(x, eps), 1 - eps)), "logit", partials)

    def sinc(self) -> Value:
        """``sin(pi*x)/(pi*x)``, 1 at 0 (torch's); each derivative from its own series near 0, none a 0/0."""
        return self._sinc(0)

    def _sinc(self, n: int) -> Value:
        # sinc's n-th derivative as a node whose partial is the next one: differentiable to any order
        return self._one(_sinc_d(self.data, n), "sinc", lambda out, g: (_x(out)._sinc(n + 1),))

    def log_ndtr(self) -> Value:
        """``log(Phi(x))``, both tails kept; its slope r = phi/Phi, below 0 as g - x with g = x + phi/Phi
        computed whole (r is nearly -x there), else as r itself (nearly 0 in the right tail)."""

        def partials(out: Value, g: float) -> tuple[Partial, ...]:
            x = _x(out)
            return (x._ndtr_gap() - x if x.data < 0 else x._ndtr_ratio(),)

        return self._one(_log_ndtr(self.data), "log_ndtr", partials)

    def _ndtr_gap(self) -> Value:
        # g = x + phi/Phi; with r = g - x, r' = -r*g and g' = 1 - r*g, in Value ops: differentiable to any order
        return self._one(_ndtr_gap(self.data), "log_ndtr", lambda out, g: (1 - (out - _x(out)) * out,))

    def _ndtr_ratio(self) -> Value:
        # r = phi/Phi, r' = -r*(x + r)
        return self._one(_ndtr_ratio(self.data), "log_ndtr", lambda out, g: (-out * (_x(out) + out),))

    def lgamma(self) -> Value:
        """``log|Gamma(x)|``; +inf at a pole (0, -1, -2, ...), as torch's; its derivative is digamma."""
        return self._one(_lgamma(self.data), "lgamma", lambda out, g: (_x(out).digamma(),))

    def digamma(self) -> Value:
        """The derivative of ``lgamma``; nan at a pole."""
        return self._polygamma(0)

    def _polygamma(self, n: int) -> Value:
        # the n-th polygamma function as a node whose partial is the next one: differentiable to any order
        return self._one(_polygamma(n, self.data), "digamma", lambda out, g: (_x(out)._polygamma(n + 1),))

    def entr(self) -> Value:
        """``-x*log(x)``: 0 at 0, -inf below."""
        x = self.data
        return self._one(-x * math.log(x) if x > 0 else 0.0 if x == 0 else -math.inf, "entr", _entr_partials)

    # -- binary ops ----------------------------------------------------------------------------------
    def atan2(self, other: Operand) -> Value:
        """``atan2(self, other)``: the angle of the point (other, self), as ``math.atan2(y, x)``."""
        return self._two(other, math.atan2(self.data, self._other(other)), "atan2", _atan2_partials)

    def logaddexp(self, other: Operand) -> Value:
        a, b = self.data, self._other(other)
        value = max(a, b) + math.log1p(math.exp(-abs(a - b))) if math.isfinite(a - b) else max(a, b)
        return self._two(other, value, "logaddexp", _logaddexp_partials)

    def xlogy(self, other: Operand) -> Value:
        """``self * log(other)``, 0 where self is 0 (even at other = 0)."""
        x, y = self.data, self._other(other)
        value = 0.0 if x == 0 else x * (-math.inf if y == 0 else _safe(math.log, y))
        return self._two(other, value, "xlogy", _xlogy_partials)

    def hypot(self, other: Operand) -> Value:
        return self._two(other, math.hypot(self.data, self._other(other)), "hypot", _hypot_partials)

    def logaddexp2(self, other: Operand) -> Value:
        a, b = self.data, self._other(other)
        value = max(a, b) + math.log1p(2.0 ** -abs(a - b)) / _LN2 if math.isfinite(a - b) else max(a, b)
        return self._two(other, value, "logaddexp2", _logaddexp2_partials)

    def xlog1py(self, other: Operand) -> Value:
        """``self * log1p(other)``, 0 where self is 0 (even at other = -1)."""
        x, y = self.data, self._other(other)
        value = 0.0 if x == 0 else x * (-math.inf if y == -1 else _safe(math.log1p, y))
        return self._two(other, value, "xlog1py", _xlog1py_partials)


# -- partials ---------------------------------------------------------------------------------------------


def _x(out: Value) -> Value:
    return out._parents[0]


def _erf_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    return ((-(x * x)).exp() * (2 / math.sqrt(math.pi)),)


def _erfc_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    return ((-(x * x)).exp() * (-2 / math.sqrt(math.pi)),)


def _log1p_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (1 / (_x(out) + 1),)


def _expm1_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (_x(out).exp(),)  # not out + 1, which loses the digits of a small exp(x) - 1


def _tan_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (out * out + 1,)


def _atan_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    return (1 / (x * x + 1),)


def _asin_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    return (1 / ((1 - x) * (1 + x)).sqrt(),)  # (1 - x)(1 + x), not 1 - x*x, near |x| = 1


def _acos_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    return (-1 / ((1 - x) * (1 + x)).sqrt(),)


def _sinh_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (_x(out).cosh(),)


def _cosh_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (_x(out).sinh(),)


def _asinh_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    if abs(x.data) > 1:  # 1/(|x| sqrt(1 + 1/x**2)): x*x would overflow long before the result underflows
        r = 1 / x
        return (1 / (x.abs() * (r * r + 1).sqrt()),)
    return (1 / (x * x + 1).sqrt(),)


def _acosh_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    return (1 / ((x - 1).sqrt() * (x + 1).sqrt()),)


def _atanh_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    return (1 / ((1 - x) * (1 + x)),)


def _reciprocal_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (-(out * out),)


def _rsqrt_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (out / _x(out) * -0.5,)


def _square_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (_x(out) * 2,)


def _zero_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (0.0,)


def _atan2_partials(out: Value, g: float) -> tuple[Partial, ...]:
    y, x = out._parents
    r2 = x * x + y * y
    return (x / r2, -y / r2)


def _logaddexp_partials(out: Value, g: float) -> tuple[Partial, ...]:
    a, b = out._parents
    return ((a - b).sigmoid(), (b - a).sigmoid())


def _xlogy_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x, y = out._parents
    return (y.log(), x / y)

def _log2_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (1 / (_x(out) * _LN2),)


def _log10_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (1 / (_x(out) * _LN10),)


def _exp2_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (out * _LN2,)


def _ndtr_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    return ((x * x * -0.5).exp() * _INV_SQRT_2PI,)


def _entr_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    if 0.25 <= x.data <= 0.5:
        # log(x) + 1 = log1p((x - 1/e)*e) near its zero at 1/e: x - 1/e is exact here and its low part is
        # added after, so the slope keeps its digits where log(x) + 1 would cancel
        return (-(((x - _INV_E) - _INV_E_LO) * math.e).log1p(),)
    return (-(x.log() + 1),)


def _hypot_partials(out: Value, g: float) -> tuple[Partial, ...]:
    a, b = out._parents
    return (a / out, b / out)


def _logaddexp2_partials(out: Value, g: float) -> tuple[Partial, ...]:
    a, b = out._parents
    return (((a - b) * _LN2).sigmoid(), ((b - a) * _LN2).sigmoid())


def _xlog1py_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x, y = out._parents
    return (y.log1p(), x / (y + 1))
