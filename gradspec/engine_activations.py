"""The built-in engine's activations: the methods :class:`gradspec.engine.Value` takes from
:class:`ActivationOps`, each with its partials, as the ops of :mod:`gradspec.engine` are written (the
special functions are :mod:`gradspec.engine_special`'s).

Every partial is built from Value ops, so it can be differentiated again, to any order, and is written
to keep its digits in the tails: ``softplus' = sigmoid(beta*x)`` (not ``1 - 1/(1 + exp)``),
``logsigmoid' = sigmoid(-x)``, ``silu' = s*(1 + x*sigmoid(-x))``, ``mish`` through ``1/cosh(sp)**2``
rather than ``1 - tanh(sp)**2``, gelu's ``Phi`` as ``erfc(-x/sqrt(2))/2``, ``softsign' = 1/(1 + |x|)**2``,
``tanhshrink' = tanh(x)**2``. Values use ``log1p``/``expm1`` where the direct form cancels, and
``tanhshrink`` a continued fraction near 0.

Conventions at the kinks are the op table's (torch's where it documents one): softplus returns x where
``beta*x > threshold``; elu'(0) = alpha, leaky_relu'(0) = negative_slope; relu6', hardtanh' and
hardsigmoid' are 0 at their bounds, clamp' is 1; hardswish' is the outer piece's slope at -3 and 3;
hardshrink', softshrink' and threshold' are 0 at their boundaries; prelu'(0) is the weight w; maximum
and minimum give 1/2 to each side of a tie.

>>> from gradspec.engine import Value, grad
>>> x = Value(-30.0)
>>> f'{grad(x.softplus(), [x])[0]:.6e}'  # sigmoid(-30), not 1 - 1/(1 + exp(-30)) = 0
'9.357623e-14'
>>> y = Value(0.0)
>>> grad(Value.where(y.data > 0, y, y * 0.01), [y])
[0.01]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradspec.engine import Operand, Partial, Value

from gradspec.engine_floats import _ncdf, _safe, _sigmoid, _softplus, _tanhshrink
from gradspec.engine_special import OpMixin, _x

__all__ = ["ActivationOps"]

_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_GELU_K = math.sqrt(2 / math.pi)
_GELU_C = 0.044715
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class ActivationOps(OpMixin):
    """Activations of a Value, one method each (a mixin of Value)."""

    __slots__ = ()

    # -- activations ---------------------------------------------------------------------------------
    def softplus(self, beta: float = 1.0, threshold: float = 20.0) -> Value:
        """``log(1 + exp(beta*x))/beta``, and x itself where ``beta*x > threshold`` (torch's)."""
        z = beta * self.data
        value = self.data if z > threshold else _softplus(z) / beta

        def partials(out: Value, g: float) -> tuple[Partial, ...]:
            (x,) = out._parents
            return (1.0 if beta * x.data > threshold else (x * beta).sigmoid(),)

        return self._one(value, "softplus", partials)

    def logsigmoid(self) -> Value:
        x = self.data
        return self._one(min(x, 0.0) - math.log1p(math.exp(-abs(x))), "logsigmoid", _logsigmoid_partials)

    def elu(self, alpha: float = 1.0) -> Value:
        x = self.data

        def partials(out: Value, g: float) -> tuple[Partial, ...]:
            (v,) = out._parents
            return (1.0 if v.data > 0 else v.exp() * alpha,)  # elu'(0) = alpha: torch's

        return self._one(x if x > 0 else alpha * _safe(math.expm1, x), "elu", partials)

    def selu(self) -> Value:
        x = self.data
        value = SELU_SCALE * (x if x > 0 else SELU_ALPHA * math.expm1(x))
        return self._one(value, "selu", _selu_partials)

    def celu(self, alpha: float = 1.0) -> Value:
        x = self.data

        def partials(out: Value, g: float) -> tuple[Partial, ...]:
            (v,) = out._parents
            return (1.0 if v.data > 0 else (v / alpha).exp(),)

        return self._one(x if x > 0 else alpha * _safe(math.expm1, x / alpha), "celu", partials)

    def gelu(self, approximate: str = "none") -> Value:
        """``x*Phi(x)``, or with ``approximate="tanh"`` ``x*sigmoid(2u)``, u = sqrt(2/pi)(x + 0.044715x**3)."""
        x = self.data
        if approximate == "tanh":
            u = _GELU_K * (x + _GELU_C * x * x * x)
            return self._one(x * _sigmoid(2 * u), "gelu", _gelu_tanh_partials)
        if approximate != "none":
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return self._one(x * _ncdf(x), "gelu", _gelu_partials)

    def silu(self) -> Value:
        x = self.data
        return self._one(x * _sigmoid(x), "silu", _silu_partials)

    def mish(self) -> Value:
        x = self.data
        return self._one(x * math.tanh(_softplus(x)), "mish", _mish_partials)

    def leaky_relu(self, negative_slope: float = 0.01) -> Value:
        x = self.data

        def partials(out: Value, g: float) -> tuple[Partial, ...]:
            return (1.0 if out._parents[0].data > 0 else negative_slope,)  # the slope at 0: torch's

        return self._one(x if x > 0 else negative_slope * x, "leaky_relu", partials)

    def hardtanh(self, min_val: float = -1.0, max_val: float = 1.0) -> Value:
        return self._bounded(min_val, max_val, "hardtanh")

    def relu6(self) -> Value:
        return self._bounded(0.0, 6.0, "relu6")

    def _bounded(self, lo: float, hi: float, op: str) -> Value:
        # Derivative 0 at the bounds themselves: torch's (and JAX's relu6).
        def partials(out: Value, g: float) -> tuple[Partial, ...]:
            return (1.0 if lo < out._parents[0].data < hi else 0.0,)

        return self._one(min(max(self.data, lo), hi), op, partials)

    def hardsigmoid(self) -> Value:
        x = self.data
        return self._one(min(max(x / 6 + 0.5, 0.0), 1.0), "hardsigmoid", _hardsigmoid_partials)

    def hardswish(self) -> Value:
        x = self.data
        return self._one(0.0 if x <= -3 else x if x >= 3 else x * (x + 3) / 6, "hardswish", _hardswish_partials)

    def clamp(self, min: float | None = None, max: float | None = None) -> Value:
        """x limited to [min, max]; derivative 1 at the bounds themselves (torch's)."""
        x = self.data
        value = max if max is not None and x > max else min if min is not None and x < min else x

        def partials(out: Value, g: float) -> tuple[Partial, ...]:
            v = out._parents[0].data
            inside = (min is None or v >= min) and (max is None or v <= max)
            return (1.0 if inside else 0.0,)

        return self._one(value, "clamp", partials)

    def softsign(self) -> Value:
        x = self.data
        return self._one(x / (1 + abs(x)), "softsign", _softsign_partials)

    def tanhshrink(self) -> Value:
        """``x - tanh(x)``, without the difference's cancellation near 0 (where it is x**3/3)."""
        return self._one(_tanhshrink(self.data), "tanhshrink", _tanhshrink_partials)

    def hardshrink(self, lambd: float = 0.5) -> Value:
        """0 on [-lambd, lambd], x elsewhere; derivative 0 at -lambd and lambd themselves (torch's)."""
        x = self.data

        def partials(out: Value, g: float) -> tuple[Partial, ...]:
            return (0.0 if -lambd <= out._parents[0].data <= lambd else 1.0,)

        return self._one(0.0 if -lambd <= x <= lambd else x, "hardshrink", partials)

    def softshrink(self, lambd: float = 0.5) -> Value:
        """x - lambd above lambd, x + lambd below -lambd, 0 between; derivative 0 at the bounds (torch's)."""
        x = self.data

        def partials(out: Value, g: float) -> tuple[Partial, ...]:
            return (0.0 if -lambd <= out._parents[0].data <= lambd else 1.0,)

        return self._one(x - lambd if x > lambd else x + lambd if x < -lambd else 0.0, "softshrink", partials)

    def threshold(self, threshold: float = 0.0, value: float = 0.0) -> Value:
        """x above ``threshold``, ``value`` elsewhere; derivative 0 at the threshold itself (torch's)."""
        x = self.data

        def partials(out: Value, g: float) -> tuple[Partial, ...]:
            return (1.0 if out._parents[0].data > threshold else 0.0,)

        return self._one(x if x > threshold else value, "threshold", partials)

    # -- binary ops ----------------------------------------------------------------------------------
    def maximum(self, other: Operand) -> Value:
        a, b = self.data, self._other(other)
        return self._two(other, a if a >= b else b, "maximum", _maximum_partials)

    def minimum(self, other: Operand) -> Value:
        a, b = self.data, self._other(other)
        return self._two(other, a if a <= b else b, "minimum", _minimum_partials)

    def prelu(self, other: Operand) -> Value:
        """``x`` above 0, ``w*x`` at and below it (torch's: d/dx = w at 0)."""
        x, w = self.data, self._other(other)
        return self._two(other, x if x > 0 else w * x, "prelu", _prelu_partials)

    @classmethod
    def where(cls, condition: bool, a: Operand, b: Operand) -> Value:
        """``a`` where ``condition`` holds, else ``b`` (torch.where): the condition is data, so only the
        chosen side gets a gradient (1) and the other 0."""
        chosen = bool(condition)
        left, right = (v if isinstance(v, OpMixin) else cls(v) for v in (a, b))
        return left._make(left.data if chosen else right.data, (left, right), "where",
                          _where_true if chosen else _where_false)


# -- partials ---------------------------------------------------------------------------------------------


def _logsigmoid_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return ((-_x(out)).sigmoid(),)  # sigmoid(-x), not 1 - sigmoid(x)


def _selu_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    return (SELU_SCALE if x.data > 0 else x.exp() * (SELU_SCALE * SELU_ALPHA),)


def _gelu_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    cdf = (x * -_SQRT1_2).erfc() * 0.5
    pdf = (x * x * -0.5).exp() * _INV_SQRT_2PI
    return (cdf + x * pdf,)


def _gelu_tanh_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    two_u = (x + x * x * x * _GELU_C) * (2 * _GELU_K)
    du = (x * x * (3 * _GELU_C) + 1) * (2 * _GELU_K)
    s, s_neg = two_u.sigmoid(), (-two_u).sigmoid()  # s and 1 - s, each to full precision
    return (s + x * s * s_neg * du,)


def _silu_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    return (x.sigmoid() * (x * (-x).sigmoid() + 1),)


def _mish_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    sp = x.softplus(threshold=math.inf)
    c = sp.cosh()
    return (sp.tanh() + x * x.sigmoid() / (c * c),)  # 1/cosh**2: 1 - tanh**2 would round to 0 in the tail


def _hardsigmoid_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (1 / 6 if -3 < _x(out).data < 3 else 0.0,)


def _hardswish_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x = _x(out)
    if x.data <= -3:
        return (0.0,)
    if x.data >= 3:
        return (1.0,)
    return (x * (1 / 3) + 0.5,)


def _softsign_partials(out: Value, g: float) -> tuple[Partial, ...]:
    a = _x(out).abs() + 1
    return (1 / (a * a),)  # not 1/(1 + |x|) - |x|/(1 + |x|)**2, which cancels for large |x|


def _tanhshrink_partials(out: Value, g: float) -> tuple[Partial, ...]:
    t = _x(out).tanh()
    return (t * t,)  # not 1 - (1 - t*t), which keeps nothing of a small tanh(x)**2


def _maximum_partials(out: Value, g: float) -> tuple[Partial, ...]:
    a, b = out._parents
    return (1.0, 0.0) if a.data > b.data else (0.0, 1.0) if a.data < b.data else (0.5, 0.5)


def _minimum_partials(out: Value, g: float) -> tuple[Partial, ...]:
    a, b = out._parents
    return (1.0, 0.0) if a.data < b.data else (0.0, 1.0) if a.data > b.data else (0.5, 0.5)


def _prelu_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x, w = out._parents
    return (1.0, 0.0) if x.data > 0 else (w, x)


def _where_true(out: Value, g: float) -> tuple[Partial, ...]:
    return (1.0, None)


def _where_false(out: Value, g: float) -> tuple[Partial, ...]:
    return (None, 1.0)
