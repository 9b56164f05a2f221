"""Nested dual numbers over exact values with a rounding bound: the arithmetic of the mode references.

:class:`Dual` is ``re + du·ε`` with ε² = 0, one level per direction; its parts are Duals of one level
less, down to :class:`Err`: an exact value, a first-order bound of what float rounding can do to it (in
units of the engine's machine epsilon), and the largest and smallest magnitudes it was computed from.
An op applied to duals needs its partial derivatives of every order, which :func:`gradspec.reference.chain.derivative`
derives from the op table's exact form. :class:`Jets` is the scalar backend that evaluates a graph in
them (:func:`gradspec.graph.tensor.evaluate`), and tapes it for a reverse sweep where asked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from gradspec.errors import DomainError
from gradspec.ops.table import OPS
from gradspec.reference.chain import derivative
from gradspec.reference.mpeval import Scalar, to_mpf
from gradspec.reference.tensor import RATIONAL, Node, rational

__all__ = ["Dual", "Err", "Jets", "flatten", "plus"]


class Err:
    """An exact value, a bound on how far a float computation of it can be off (units of eps, a float or an
    mpf), and the
    largest and smallest nonzero magnitudes of the values it was computed from (``peak``, ``low``: past
    the float range an engine's intermediate step overflows, below its smallest normal number it
    underflows, whatever the final value)."""

    __slots__ = ("e", "low", "peak", "r", "v")

    def __init__(self, v: Scalar, e: float = 0.0, peak: float = 0.0, low: float = math.inf, r: float = 0.0) -> None:
        self.v = v
        self.e = e
        self.peak = peak
        self.low = low
        self.r = r  # what partials rebuilt from rounded outputs add to e (units of eps), kept apart

    def __add__(self, o: Any) -> Any:
        if isinstance(o, Dual):
            return NotImplemented
        o = _err(o)
        r = self.v + o.v
        m = abs(float(r))
        return Err(r, self.e + o.e + 0.5 * abs(r), max(self.peak, o.peak, m), _low(min(self.low, o.low), m), self.r + o.r)

    __radd__ = __add__

    def __sub__(self, o: Any) -> Any:
        if isinstance(o, Dual):
            return NotImplemented
        return self + (-_err(o))

    def __rsub__(self, o: Any) -> Any:
        return _err(o) - self

    def __mul__(self, o: Any) -> Any:
        if isinstance(o, Dual):
            return NotImplemented
        o = _err(o)
        peak, low = max(self.peak, o.peak), min(self.low, o.low)
        if not o.e and not o.r and o.v in _EXACT:  # by an exact 0 or ±1: no rounding
            return Err(self.v * o.v, self.e if o.v else 0.0, peak, low, self.r if o.v else 0.0)
        if not self.e and not self.r and self.v in _EXACT:
            return Err(self.v * o.v, o.e if self.v else 0.0, peak, low, o.r if self.v else 0.0)
        r = self.v * o.v
        m = abs(float(r))
        a, b = abs(self.v), abs(o.v)
        return Err(r, a * o.e + b * self.e + 0.5 * abs(r), max(peak, m), _low(low, m), a * o.r + b * self.r)

    __rmul__ = __mul__

    def __neg__(self) -> Err:
        return Err(-self.v, self.e, self.peak, self.low, self.r)


def _low(low: float, m: float) -> float:
    return min(low, m) if m else low


_ONE = mpmath.mpf(1)
_EXACT = (mpmath.mpf(0), _ONE, -_ONE)


def _err(x: Any) -> Err:
    return x if isinstance(x, Err) else Err(to_mpf(x))


class Dual:
    """``re + du·ε`` with ε² = 0; ``re`` and ``du`` are Duals of one level less, or :class:`Err`.
    A tangent that is exactly zero is None, so constants cost nothing."""

    __slots__ = ("du", "re")

    def __init__(self, re: Any, du: Any = None) -> None:
        self.re = re
        self.du = du

    def __add__(self, o: Any) -> Dual:
        if not isinstance(o, Dual):
            return Dual(self.re + o, self.du)
        return Dual(self.re + o.re, plus(self.du, o.du))

    __radd__ = __add__

    def __sub__(self, o: Any) -> Dual:
        return self + (-o)

    def __rsub__(self, o: Any) -> Dual:
        return (-self) + o

    def __neg__(self) -> Dual:
        return Dual(-self.re, None if self.du is None else -self.du)

    def __mul__(self, o: Any) -> Dual:
        if not isinstance(o, Dual):
            return Dual(self.re * o, None if self.du is None else self.du * o)
        return Dual(self.re * o.re, plus(None if o.du is None else self.re * o.du,
                                          None if self.du is None else self.du * o.re))

    __rmul__ = __mul__


def plus(a: Any, b: Any) -> Any:
    if a is None:
        return b
    return a if b is None else a + b


# -- ops on duals -------------------------------------------------------------------------------------


def _base(name: str, multi: tuple[int, ...], args: Sequence[Any], precise: Callable[[Any], float]) -> Err:
    """The op's derivative ``multi`` at exact arguments, with its rounding bound."""
    vals = [a.v if isinstance(a, Err) else to_mpf(a) for a in args]
    value = derivative(name, multi)(vals)
    if not mpmath.isfinite(value):
        order = len(multi)
        what = f"the derivative of order {order} of {name}" if order else name
        raise DomainError(f"{what} is not finite here")
    op = OPS[name]
    # The bounds are kept at mpmath's range: a partial beyond the float range (log' at exp(-1201)) times
    # an error below it is an ordinary number, where floats would make it inf * 0.
    rebuilt: Any = op.rebuilt_abs(len(multi), vals, value)
    if multi:  # the engine's rule for this derivative: its partial's budget, and more for each order up
        err: Any = (op.partial_ulps + 2.0 * (len(multi) - 1)) * abs(value)
    else:
        err = op.ulps * abs(value)
    peak = abs(float(value))
    low = _low(math.inf, peak)
    if peak:  # an engine may form a derivative through its reciprocal (1/x, then squared): count both; and
        # that of the derivative it scales (log10'' from log'': its reciprocal over log(10))
        peak, low = max(peak, 1 / peak), min(low, 1 / peak, op.derivative_scale / peak)
    for k, a in enumerate(args):
        e = a.e if isinstance(a, Err) else precise(a)
        if op.arg_ulps:
            e = e + op.arg_ulps * abs(vals[k])
        peak = max(peak, a.peak if isinstance(a, Err) else abs(float(a)))
        low = min(low, a.low) if isinstance(a, Err) else _low(low, abs(float(a)))
        r = a.r if isinstance(a, Err) else 0.0
        if e or r:
            moved = derivative(name, (*multi, k))(vals)
            err += abs(moved) * e if mpmath.isfinite(moved) else mpmath.inf
            rebuilt += abs(moved) * r if mpmath.isfinite(moved) and r else 0.0
    return Err(value, err, peak, low, rebuilt)


def _apply(name: str, multi: tuple[int, ...], args: Sequence[Any], precise: Callable[[Any], float]) -> Any:
    """``d^multi op`` at dual arguments: the outermost level split off, the chain rule through it."""
    if not any(isinstance(a, Dual) for a in args):
        return _base(name, multi, args, precise)
    inner = [a.re if isinstance(a, Dual) else a for a in args]
    du = None
    for k, a in enumerate(args):
        if isinstance(a, Dual) and a.du is not None:
            du = plus(du, _apply(name, (*multi, k), inner, precise) * a.du)
    return Dual(_apply(name, multi, inner, precise), du)


class Jets:
    """A scalar backend for :func:`evaluate` whose scalars are nested duals over :class:`Err`; with
    ``tape``, every node also records its parents and local partials for a reverse sweep."""

    def __init__(self, eps: float, tape: bool) -> None:
        self.float32 = eps >= 2.0**-23
        self.taped = tape
        self.values: list[Any] = []
        self.parents: list[tuple[tuple[int, Any], ...]] = []

    def precise(self, c: Any) -> float:
        """The rounding bound of a constant given to the engine: half an ulp unless its float is exact."""
        f = float(c)
        with np.errstate(over="ignore"):
            exact = f == c and (not self.float32 or float(np.float32(f)) == f)
        return 0.0 if exact else 0.5 * abs(f)

    def const(self, c: Any) -> Err:
        return Err(to_mpf(c), self.precise(c))

    def node(self, value: Any, parents: tuple[tuple[int, Any], ...] = ()) -> Any:
        if not self.taped:
            return value
        self.values.append(value)
        self.parents.append(parents)
        return Node(len(self.values) - 1)

    def op(self, name: str, *args: Any) -> Any:
        vals = [self.values[a.i] if isinstance(a, Node) else a if isinstance(a, Dual | Err) else self.const(a)
                for a in args]
        exact: tuple[Any, ...] | None = None  # the rational ops' partials come with their value
        if name in RATIONAL:
            value, exact = rational(name, vals[0], vals[1])
        elif name == "neg":
            value, exact = -vals[0], (-_ONE,)
        else:
            value = _apply(name, (), vals, self.precise)
        if not self.taped:
            return value
        parents = tuple((a.i, exact[k] if exact is not None else _apply(name, (k,), vals, self.precise))
                        for k, a in enumerate(args) if isinstance(a, Node))
        return self.node(value, parents)

    def shift(self, xs: Sequence[Any]) -> Fraction | None:
        # The value is the same either way; shifted as a float engine shifts, exp's intermediate values,
        # and the rounding bounds measured against them, stay within the float range as the engine's do.
        values = [flatten(self.values[x.i] if isinstance(x, Node) else x) for x in xs]
        top = max((float(v.v) if isinstance(v, Err) else float(v) for v in values if v is not None), default=0.0)
        return Fraction(top) if np.isfinite(top) and top != 0 else None

    def peek(self, x: Any) -> Any:
        found = flatten(self.values[x.i] if isinstance(x, Node) else x)
        return found.v if isinstance(found, Err) else found

    def sweep(self, seeds: Mapping[int, Any]) -> list[Any]:
        """Reverse accumulation in dual arithmetic from ``seeds`` (node -> cotangent)."""
        adj: list[Any] = [None] * len(self.values)
        for i, c in seeds.items():
            adj[i] = plus(adj[i], c)
        for i in range(len(self.values) - 1, -1, -1):
            a = adj[i]
            if a is None:
                continue
            for p, d in self.parents[i]:
                adj[p] = plus(adj[p], a * d)
        return adj


def flatten(x: Any) -> Any:
    """The base of a dual with no tangents left (a level that never met a tangent), or the Err itself."""
    while isinstance(x, Dual):
        x = x.re
    return x
