"""The pieces of the special-function and activation rows of the op table (:mod:`gradspec.ops.table`).

Each row there names, for one op, functions defined here: its exact SymPy form, its float form, its
domain and the points where it is not differentiable, and how PyTorch, JAX and tinygrad spell it. A
row with keywords (``softplus(x, beta=2)``) gets their values as keyword arguments: SymPy Rationals in
the exact form, mpmath numbers in the domain and kink tests, floats (or strings) everywhere else.

Exact forms are written so that their values and derivatives keep every digit in the tails: ``log1p``,
``expm1`` and the normal CDF ``Phi`` are SymPy functions of their own, evaluated by mpmath's
``log1p``, ``expm1`` and ``ncdf``, so ``gelu(-20)`` is not ``1 - 0.99999...`` and ``softplus(-200)``
is not ``log(1 + 1e-87)``; SymPy would otherwise rewrite ``erfc(-x)`` into ``2 - erfc(x)``.

Piecewise forms state each library's documented convention at its boundaries, which SymPy then
differentiates: torch's ``softplus`` returns ``x`` where ``beta*x > threshold``; ``hardtanh`` and
``relu6`` have derivative 0 at their bounds, ``clamp`` 1; ``sign'(0) = 0``; ``gelu`` is ``x*Phi(x)``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import sympy
from sympy.codegen.cfunctions import expm1, log1p

__all__ = ["COMPARE", "Phi", "expm1", "log1p"]

Args = Sequence[Any]


class Phi(sympy.Function):
    """The standard normal CDF, ``erfc(-x/sqrt(2))/2``, kept whole so its tail keeps its digits."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        (x,) = self.args
        return sympy.exp(-x**2 / 2) / sympy.sqrt(2 * sympy.pi)

    def _eval_evalf(self, prec: int) -> sympy.Expr:
        (x,) = self.args
        return (sympy.erfc(-x / sympy.sqrt(2)) / 2)._eval_evalf(prec)


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


# -- engine spellings: (library module, arguments, keyword values) -> result ------------------------------


def torch_where(t: Any, a: Args, kw: dict[str, Any]) -> Any:
    cond = COMPARE[kw["cmp"]][0](a[0], a[1])
    if isinstance(cond, bool):  # a comparison of constants
        return a[2] if cond else a[3]
    return t.where(cond, a[2], a[3])


def torch_clamp(t: Any, a: Args, kw: dict[str, Any]) -> Any:
    return t.clamp(a[0], min=kw["min"], max=kw["max"])


def jax_softplus(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    # jax.nn.softplus has neither beta nor threshold; torch's threshold is spelled with jnp.where.
    beta, x = kw["beta"], a[0]
    return j.numpy.where(beta * x > kw["threshold"], x, j.nn.softplus(beta * x) / beta)


def jax_hardtanh(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    if (kw["min_val"], kw["max_val"]) == (-1.0, 1.0):
        return j.nn.hard_tanh(a[0])
    # jax.nn.hard_tanh's bounds are fixed at -1 and 1; other bounds as it is written, with jnp.where.
    x = a[0]
    return j.numpy.where(x > kw["max_val"], kw["max_val"], j.numpy.where(x < kw["min_val"], kw["min_val"], x))


def jax_where(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    cond = COMPARE[kw["cmp"]][0](a[0], a[1])
    if isinstance(cond, bool):  # a comparison of constants
        return a[2] if cond else a[3]
    return j.numpy.where(cond, a[2], a[3])


def jax_special(name: str) -> Callable[[Any, Args, dict[str, Any]], Any]:
    def spelled(j: Any, a: Args, kw: dict[str, Any]) -> Any:
        import jax.scipy.special  # noqa: F401  (loads the submodule that j.scipy.special names)

        return getattr(j.scipy.special, name)(*a)
    return spelled


def tinygrad_softplus(tg: Any, a: Args, kw: dict[str, Any]) -> Any:
    x, beta = a[0], kw["beta"]
    return (x * beta > kw["threshold"]).where(x, x.softplus(beta))


def tinygrad_where(tg: Any, a: Args, kw: dict[str, Any]) -> Any:
    cond = COMPARE[kw["cmp"]][0](a[0], a[1])
    if isinstance(cond, bool):  # a comparison of constants
        return a[2] if cond else a[3]
    return cond.where(a[2], a[3])


def value_where(method: Callable[[str], Any], number: Callable[[Any], float], a: Args, kw: dict[str, Any]) -> Any:
    """A Value class's ``where(cond, a, b)``, with ``cond`` the comparison of the engine's own values."""
    return method("where")(COMPARE[kw["cmp"]][0](number(a[0]), number(a[1])), a[2], a[3])
