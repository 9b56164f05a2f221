"""The pieces of the special-function and activation rows of the op table (:mod:`gradspec.ops.table`).

Each row there names, for one op, functions defined here: its exact SymPy form, its float form, its
domain and the points where it is not differentiable (how each library spells it is in
:mod:`gradspec.ops.spellings`). A row with keywords (``softplus(x, beta=2)``) gets their values as
keyword arguments: SymPy Rationals in the exact form, mpmath numbers in the domain and kink tests, floats
(or strings) everywhere else.

Exact forms are written so that their values and derivatives keep every digit in the tails: ``log1p``,
``expm1``, the normal CDF ``Phi`` and ``x - tanh(x)`` are SymPy functions of their own, evaluated by
mpmath's ``log1p``, ``expm1`` and ``ncdf`` and at the precision the difference needs, so ``gelu(-20)``
is not ``1 - 0.99999...``, ``softplus(-200)`` is not ``log(1 + 1e-87)`` and ``tanhshrink(1e-30)`` is not
0; SymPy would otherwise rewrite ``erfc(-x)`` into ``2 - erfc(x)``. ``logit`` is ``log(x) - log1p(-x)``.

Piecewise forms state each library's documented convention at its boundaries, which SymPy then
differentiates: torch's ``softplus`` returns ``x`` where ``beta*x > threshold``; ``hardtanh`` and
``relu6`` have derivative 0 at their bounds, ``clamp`` 1; ``sign'(0) = 0``; ``gelu`` is ``x*Phi(x)``;
``hardshrink``, ``softshrink`` and ``threshold`` have derivative 0 at their boundaries, and ``logit``
with ``eps`` the inner slope at ``eps`` and ``1 - eps`` (torch's).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import sympy

from gradspec.engine_floats import _lgamma, _log_ndtr, _polygamma, _tanhshrink
from gradspec.ops.functions import Phi, expm1, log1p

__all__ = ["COMPARE"]

Args = Sequence[Any]


#: The comparisons ``where`` takes: spelling -> (Python operator, SymPy relation).
COMPARE: dict[str, tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = {
    "<": (operator.lt, sympy.Lt), "<=": (operator.le, sympy.Le), ">": (operator.gt, sympy.Gt),
    ">=": (operator.ge, sympy.Ge), "==": (operator.eq, sympy.Eq), "!=": (operator.ne, sympy.Ne),
}

# SELU's constants as torch and JAX write them (the published values to 32 digits).
SELU_ALPHA = sympy.Rational("1.6732632423543772848170429916717")
SELU_SCALE = sympy.Rational("1.0507009873554804934193349852946")
_GELU_C = sympy.Rational(44715, 1_000_000)


def _near(a: Any, b: Any) -> bool:
    # Exact inputs are evaluated at high precision: a boundary reached through arithmetic can miss by
    # rounding far below anything a float resolves (as for relu's kink at 0).
    return bool(abs(a - b) < mpmath.mpf("1e-40"))


# -- exact forms ---------------------------------------------------------------------------------------


def softplus(x: Any, beta: Any, threshold: Any) -> Any:
    return sympy.Piecewise((x, beta * x > threshold), (log1p(sympy.exp(beta * x)) / beta, True))


def elu(x: Any, alpha: Any) -> Any:
    return sympy.Piecewise((x, x > 0), (alpha * expm1(x), True))


def celu(x: Any, alpha: Any) -> Any:
    return sympy.Piecewise((x, x > 0), (alpha * expm1(x / alpha), True))


def gelu(x: Any, approximate: str) -> Any:
    if approximate == "tanh":  # x (1 + tanh(u)) / 2 = x * sigmoid(2u): no 1 - 0.999... in the left tail
        u = sympy.sqrt(2 / sympy.pi) * (x + _GELU_C * x**3)
        return x / (1 + sympy.exp(-2 * u))
    return x * Phi(x)


def hardtanh(x: Any, min_val: Any, max_val: Any) -> Any:
    return sympy.Piecewise((min_val, x <= min_val), (max_val, x >= max_val), (x, True))


def clamp(x: Any, min: Any, max: Any) -> Any:
    pieces = []
    if max is not None:
        pieces.append((max, x > max))
    if min is not None:
        pieces.append((min, x < min))
    return sympy.Piecewise(*pieces, (x, True))


def hardswish(x: Any) -> Any:
    return sympy.Piecewise((0, x <= -3), (x, x >= 3), (x * (x + 3) / 6, True))


def maximum(a: Any, b: Any) -> Any:
    return sympy.Piecewise((a, a > b), (b, a < b), ((a + b) / 2, True))


def minimum(a: Any, b: Any) -> Any:
    return sympy.Piecewise((a, a < b), (b, a > b), ((a + b) / 2, True))


def xlogy(x: Any, y: Any) -> Any:
    return sympy.Piecewise((x * sympy.log(y), y > 0), (0, True))


def where(lhs: Any, rhs: Any, a: Any, b: Any, cmp: str) -> Any:
    return sympy.Piecewise((a, COMPARE[cmp][1](lhs, rhs)), (b, True))



def hardshrink(x: Any, lambd: Any) -> Any:
    return sympy.Piecewise((0, (x >= -lambd) & (x <= lambd)), (x, True))


def softshrink(x: Any, lambd: Any) -> Any:
    return sympy.Piecewise((x - lambd, x > lambd), (x + lambd, x < -lambd), (0, True))


def threshold(x: Any, threshold: Any, value: Any) -> Any:
    return sympy.Piecewise((x, x > threshold), (value, True))


def _logit(z: Any) -> Any:
    return sympy.log(z) - log1p(-z)


def logit(x: Any, eps: Any) -> Any:
    if eps is None:
        return _logit(x)
    return sympy.Piecewise((_logit(eps), x < eps), (_logit(1 - eps), x > 1 - eps), (_logit(x), True))


def logaddexp2(a: Any, b: Any) -> Any:
    return sympy.log(2**a + 2**b) / sympy.log(2)


def xlog1py(x: Any, y: Any) -> Any:
    return sympy.Piecewise((x * log1p(y), y > -1), (0, True))


def entr(x: Any) -> Any:
    return sympy.Piecewise((-x * sympy.log(x), x > 0), (0, True))


def prelu(x: Any, w: Any) -> Any:
    return sympy.Piecewise((x, x > 0), (w * x, True))

# -- float forms ---------------------------------------------------------------------------------------


def f_softplus(x: float, beta: float, threshold: float) -> float:
    z = beta * x
    if z > threshold:
        return x
    return (max(z, 0.0) + math.log1p(math.exp(-abs(z)))) / beta


def f_logsigmoid(x: float) -> float:
    return min(x, 0.0) - math.log1p(math.exp(-abs(x)))


def f_elu(x: float, alpha: float) -> float:
    return x if x > 0 else alpha * math.expm1(x)


def f_celu(x: float, alpha: float) -> float:
    return x if x > 0 else alpha * math.expm1(x / alpha)


def f_gelu(x: float, approximate: str) -> float:
    if approximate == "tanh":
        u = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
        return x / (1 + math.exp(min(-2 * u, 700.0)))
    return x * math.erfc(-x / math.sqrt(2)) / 2


def f_silu(x: float) -> float:
    return x / (1 + math.exp(min(-x, 700.0)))


def f_mish(x: float) -> float:
    return x * math.tanh(f_softplus(x, 1.0, math.inf))


def f_clamp(x: float, min: float | None, max: float | None) -> float:
    if max is not None and x > max:
        return max
    if min is not None and x < min:
        return min
    return x


def f_hardswish(x: float) -> float:
    return 0.0 if x <= -3 else x if x >= 3 else x * (x + 3) / 6


def f_logaddexp(a: float, b: float) -> float:
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def f_xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)


def f_where(lhs: float, rhs: float, a: float, b: float, cmp: str) -> float:
    return a if COMPARE[cmp][0](lhs, rhs) else b



# x - tanh(x) without its cancellation near 0: the built-in engine's float form, which the row shares
f_tanhshrink = _tanhshrink


def f_hardshrink(x: float, lambd: float) -> float:
    return 0.0 if -lambd <= x <= lambd else x


def f_softshrink(x: float, lambd: float) -> float:
    return x - lambd if x > lambd else x + lambd if x < -lambd else 0.0


def f_threshold(x: float, threshold: float, value: float) -> float:
    return x if x > threshold else value


def f_logit(x: float, eps: float | None) -> float:
    z = x if eps is None else min(max(x, eps), 1 - eps)
    if 0.25 <= z <= 0.75:  # 2z - 1 is exact here, and log1p keeps the digits of a logit near 0
        return math.log1p((2 * z - 1) / (1 - z))
    return math.log(z) - math.log1p(-z)


def f_logaddexp2(a: float, b: float) -> float:
    return max(a, b) + math.log1p(2.0 ** -abs(a - b)) / math.log(2)


def f_xlog1py(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log1p(y)


def f_entr(x: float) -> float:
    return -x * math.log(x) if x > 0 else 0.0 if x == 0 else -math.inf


def f_log_ndtr(x: float) -> float:
    return _log_ndtr(x)


def f_lgamma(x: float) -> float:
    return _lgamma(x)


def f_digamma(x: float) -> float:
    return _polygamma(0, x)


def f_prelu(x: float, w: float) -> float:
    return x if x > 0 else w * x


def f_ndtr(x: float) -> float:
    return math.erfc(-x / math.sqrt(2)) / 2


def f_sinc(x: float) -> float:
    if x == 0:
        return 1.0
    r = math.fmod(x, 2.0)  # sin(pi*x) of x reduced exactly to [-1/2, 1/2]: pi*x's rounding never enters
    r = r - 2 if r > 1 else r + 2 if r < -1 else r
    r = 1 - r if r > 0.5 else -1 - r if r < -0.5 else r
    return math.sin(math.pi * r) / (math.pi * x)

# -- domains: (exact arguments, which vary) -> what is wrong, or None --------------------------------------


def _show(v: Any) -> str:
    return str(mpmath.nstr(v, 17))


def d_log1p(a: Args, varying: Sequence[bool]) -> str | None:
    return f"log1p needs x > -1, got x = {_show(a[0])}" if a[0] <= -1 else None


def d_unit(name: str, closed: bool) -> Callable[[Args, Sequence[bool]], str | None]:
    def domain(a: Args, varying: Sequence[bool]) -> str | None:
        bad = abs(a[0]) > 1 if closed else abs(a[0]) >= 1
        return f"{name} needs {'|x| <= 1' if closed else '|x| < 1'}, got x = {_show(a[0])}" if bad else None
    return domain


def d_acosh(a: Args, varying: Sequence[bool]) -> str | None:
    return f"acosh needs x >= 1, got x = {_show(a[0])}" if a[0] < 1 else None


def d_nonzero(name: str) -> Callable[[Args, Sequence[bool]], str | None]:
    def domain(a: Args, varying: Sequence[bool]) -> str | None:
        return f"{name} of zero (division by zero)" if a[0] == 0 else None
    return domain


def d_rsqrt(a: Args, varying: Sequence[bool]) -> str | None:
    return f"rsqrt needs x > 0, got x = {_show(a[0])}" if a[0] <= 0 else None


def d_atan2(a: Args, varying: Sequence[bool]) -> str | None:
    return "atan2(0, 0) is undefined" if a[0] == 0 and a[1] == 0 else None


def d_xlogy(a: Args, varying: Sequence[bool]) -> str | None:
    x, y = a
    if y > 0 or (y == 0 and x == 0 and not varying[0] and not varying[1]):
        return None
    return f"xlogy needs y > 0 (0 only for a constant x = 0), got y = {_show(y)}"


def d_softplus(a: Args, varying: Sequence[bool], beta: Any, threshold: Any) -> str | None:
    return f"softplus needs beta > 0, got beta = {_show(beta)}" if beta <= 0 else None


def d_celu(a: Args, varying: Sequence[bool], alpha: Any) -> str | None:
    return "celu needs alpha != 0" if alpha == 0 else None


def d_hardtanh(a: Args, varying: Sequence[bool], min_val: Any, max_val: Any) -> str | None:
    return f"hardtanh needs min_val < max_val, got {_show(min_val)} and {_show(max_val)}" if min_val >= max_val else None


def d_clamp(a: Args, varying: Sequence[bool], min: Any, max: Any) -> str | None:
    if min is None and max is None:
        return "clamp needs min= or max="
    if min is not None and max is not None and min > max:
        return f"clamp needs min <= max, got {_show(min)} and {_show(max)}"
    return None



def d_positive(name: str) -> Callable[[Args, Sequence[bool]], str | None]:
    def domain(a: Args, varying: Sequence[bool]) -> str | None:
        return f"{name} needs x > 0, got x = {_show(a[0])}" if a[0] <= 0 else None
    return domain


def d_hypot(a: Args, varying: Sequence[bool]) -> str | None:
    # sqrt(a*a + b*b) is a cone at the origin: no derivative there (torch's is nan, JAX's 1/2 each)
    at_origin = a[0] == 0 and a[1] == 0
    return "hypot has no derivative at (0, 0)" if at_origin and (varying[0] or varying[1]) else None


def d_xlog1py(a: Args, varying: Sequence[bool]) -> str | None:
    x, y = a
    if y > -1 or (y == -1 and x == 0 and not varying[0] and not varying[1]):
        return None
    return f"xlog1py needs y > -1 (-1 only for a constant x = 0), got y = {_show(y)}"


def d_entr(a: Args, varying: Sequence[bool]) -> str | None:
    if a[0] > 0 or (a[0] == 0 and not varying[0]):
        return None
    return f"entr needs x > 0 (0 only as a constant), got x = {_show(a[0])}"


def d_gamma_pole(name: str) -> Callable[[Args, Sequence[bool]], str | None]:
    def check(a: Args, varying: Sequence[bool]) -> str | None:
        x = a[0]
        if x <= 0 and x == mpmath.floor(x):
            return f"{name} has a pole at every integer x <= 0, got x = {_show(x)}"
        return None
    return check


def d_logit(a: Args, varying: Sequence[bool], eps: Any) -> str | None:
    if eps is not None:
        return None if 0 < eps < 0.5 else f"logit needs 0 < eps < 0.5, got eps = {_show(eps)}"
    return None if 0 < a[0] < 1 else f"logit needs 0 < x < 1 (or eps=), got x = {_show(a[0])}"


def d_softshrink(a: Args, varying: Sequence[bool], lambd: Any) -> str | None:
    return f"softshrink needs lambd >= 0, got lambd = {_show(lambd)}" if lambd < 0 else None

# -- kinks: where the op is not differentiable ------------------------------------------------------------


def at_points(*points: float) -> Callable[[Args], bool]:
    return lambda a: any(_near(a[0], p) for p in points)


def k_softplus(a: Args, beta: Any, threshold: Any) -> bool:
    return _near(beta * a[0], threshold)


def k_bounds(a: Args, **bounds: Any) -> bool:
    return any(v is not None and _near(a[0], v) for v in bounds.values())


def k_tie(a: Args, cmp: str = "") -> bool:
    return _near(a[0], a[1])


def k_softplus_interval(a: Args, beta: Any, threshold: Any) -> tuple[tuple[float, float], ...]:
    return ((float(1 / (1 + mpmath.exp(-threshold))), 1.0),)


def k_hardswish_interval(a: Args) -> tuple[tuple[float, float], ...]:
    return ((-0.5, 0.0),) if a[0] < 0 else ((1.0, 1.5),)


def k_shrink(a: Args, lambd: Any) -> bool:
    return lambd >= 0 and (_near(a[0], lambd) or _near(a[0], -lambd))


def k_threshold(a: Args, threshold: Any, value: Any) -> bool:
    return _near(a[0], threshold)


def k_logit(a: Args, eps: Any) -> bool:
    return eps is not None and (_near(a[0], eps) or _near(a[0], 1 - eps))


def k_logit_interval(a: Args, eps: Any) -> tuple[tuple[float, float], ...]:
    return ((0.0, float(1 / (eps * (1 - eps)))),)


def k_prelu_interval(a: Args) -> tuple[tuple[float, float], ...]:
    w = float(a[1])  # the slope on either side of 0 in x; d/dw = x is 0 on both
    return ((min(w, 1.0), max(w, 1.0)), (0.0, 0.0))
