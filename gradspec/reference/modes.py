"""Exact references for forward mode and higher order: nested dual numbers over exact values.

One evaluation of the graph, lowered to scalar ops (:func:`gradspec.graph.tensor.evaluate`), in
nested dual numbers gives every directional derivative a check asks for: one level per direction, so
``Dual(Dual(f, ∂f[u]), Dual(∂f[w], ∂²f[u, w]))`` carries the value, both JVPs and the second
derivative at once, and ``order: N`` nests N levels along ``u``. An op applied to duals needs the op's
partial derivatives of every order, which SymPy derives from the op's exact form in the op table (the
same form the first-order references differentiate). The Hessian-vector product is forward over
reverse: the graph is taped in duals along ``u`` and swept back from the cotangent ``v`` in dual
arithmetic, so the adjoints carry ``Jᵀv`` and ``∇²(v·f) u`` together.

Beside each exact number rides a first-order bound of what float rounding can do to it, in units of
the engine's machine epsilon (:class:`Err`): every input and inexact constant is off by half an ulp,
every addition and product adds half an ulp of its result, and every op and partial adds the op
row's ulp budget; errors of arguments propagate through the next derivative up. No random signs:
the bound is a deterministic function of the graph and the point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from gradspec.errors import DomainError
from gradspec.graph.tensor import TensorGraph, evaluate
from gradspec.modes import ORDER, Ask, Mode, rows
from gradspec.ops.table import OPS
from gradspec.reference.chain import derivative
from gradspec.reference.exact import DPS
from gradspec.reference.mpeval import Scalar, to_mpf
from gradspec.reference.store import STORE
from gradspec.reference.tensor import RATIONAL, Node, exact_tensor, rational

__all__ = ["Dual", "Err", "Known", "ModeReference", "mode_reference"]

_SAFETY = 2.0  # the bound is first order: allow twice what it says


class Err:
    """An exact value, a bound on how far a float computation of it can be off (units of eps), and the
    largest and smallest nonzero magnitudes of the values it was computed from (``peak``, ``low``: past
    the float range an engine's intermediate step overflows, below its smallest normal number it
    underflows, whatever the final value)."""

    __slots__ = ("e", "low", "peak", "v")

    def __init__(self, v: Scalar, e: float = 0.0, peak: float = 0.0, low: float = math.inf) -> None:
        self.v = v
        self.e = e
        self.peak = peak
        self.low = low

    def __add__(self, o: Any) -> Any:
        if isinstance(o, Dual):
            return NotImplemented
        o = _err(o)
        r = self.v + o.v
        m = abs(float(r))
        return Err(r, self.e + o.e + 0.5 * m, max(self.peak, o.peak, m), _low(min(self.low, o.low), m))

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
        if not o.e and o.v in _EXACT:  # by an exact 0 or ±1: no rounding
            return Err(self.v * o.v, self.e if o.v else 0.0, peak, low)
        if not self.e and self.v in _EXACT:
            return Err(self.v * o.v, o.e if self.v else 0.0, peak, low)
        r = self.v * o.v
        m = abs(float(r))
        return Err(r, abs(float(self.v)) * o.e + abs(float(o.v)) * self.e + 0.5 * m, max(peak, m), _low(low, m))

    __rmul__ = __mul__

    def __neg__(self) -> Err:
        return Err(-self.v, self.e, self.peak, self.low)


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
        return Dual(self.re + o.re, _plus(self.du, o.du))

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
        return Dual(self.re * o.re, _plus(None if o.du is None else self.re * o.du,
                                          None if self.du is None else self.du * o.re))

    __rmul__ = __mul__


def _plus(a: Any, b: Any) -> Any:
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
    if multi:  # the engine's rule for this derivative: its partial's budget, and more for each order up
        err = (op.partial_ulps + 2.0 * (len(multi) - 1)) * abs(float(value)) + op.partial_abs * len(multi)
    else:
        err = op.ulps * abs(float(value))
    peak = abs(float(value))
    low = _low(math.inf, peak)
    if peak:  # an engine may form a derivative through its reciprocal (1/x, then squared): count both
        peak, low = max(peak, 1 / peak), min(low, 1 / peak)
    for k, a in enumerate(args):
        e = a.e if isinstance(a, Err) else precise(a)
        peak = max(peak, a.peak if isinstance(a, Err) else abs(float(a)))
        low = min(low, a.low) if isinstance(a, Err) else _low(low, abs(float(a)))
        if e:
            moved = derivative(name, (*multi, k))(vals)
            err += abs(float(moved)) * e if mpmath.isfinite(moved) else float("inf")
    return Err(value, err, peak, low)


def _apply(name: str, multi: tuple[int, ...], args: Sequence[Any], precise: Callable[[Any], float]) -> Any:
    """``d^multi op`` at dual arguments: the outermost level split off, the chain rule through it."""
    if not any(isinstance(a, Dual) for a in args):
        return _base(name, multi, args, precise)
    inner = [a.re if isinstance(a, Dual) else a for a in args]
    du = None
    for k, a in enumerate(args):
        if isinstance(a, Dual) and a.du is not None:
            du = _plus(du, _apply(name, (*multi, k), inner, precise) * a.du)
    return Dual(_apply(name, multi, inner, precise), du)


class _Jets:
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
        values = [_flatten(self.values[x.i] if isinstance(x, Node) else x) for x in xs]
        top = max((float(v.v) if isinstance(v, Err) else float(v) for v in values if v is not None), default=0.0)
        return Fraction(top) if np.isfinite(top) and top != 0 else None

    def sweep(self, seeds: Mapping[int, Any]) -> list[Any]:
        """Reverse accumulation in dual arithmetic from ``seeds`` (node -> cotangent)."""
        adj: list[Any] = [None] * len(self.values)
        for i, c in seeds.items():
            adj[i] = _plus(adj[i], c)
        for i in range(len(self.values) - 1, -1, -1):
            a = adj[i]
            if a is None:
                continue
            for p, d in self.parents[i]:
                adj[p] = _plus(adj[p], a * d)
        return adj


# -- the reference --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """An exact quantity (object array of mpf) and its rounding allowance (float array, absolute)."""

    exact: Any
    allowance: Any
    peak: Any = None  # float array: the largest magnitude the quantity was computed from
    low: Any = None  # float array: the smallest nonzero one

    @property
    def floats(self) -> Any:
        return np.vectorize(float, otypes=[float])(self.exact) if np.ndim(self.exact) else np.asarray(float(self.exact))


@dataclass(frozen=True)
class ModeReference:
    """The exact derivatives an :class:`Ask` names, for an engine of machine epsilon ``eps``."""

    jvp: Known | None = None
    vjp: tuple[Known, ...] = ()
    hvp: tuple[Known, ...] = ()
    jvp_of_jvp: Known | None = None
    jacobian: tuple[Known, ...] = ()  # per differentiable input: output shape + input shape
    orders: Mapping[int, Known] | None = None


def mode_reference(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float) -> ModeReference:
    """The exact references of ``ask`` for ``graph`` at ``point`` (input -> array of Fractions), their
    allowances scaled to ``eps``. Raises :class:`DomainError` where a derivative asked for is not finite.
    Remembered by what they are, in the store, so every engine of one precision checked at one draw shares them."""
    key = (graph.key, _key(point.values()), _key(ask.u), _key(ask.w), _key([ask.v]), tuple(sorted(ask.modes)),
           ask.order, eps >= 2.0**-23)

    def compute() -> ModeReference:
        with mpmath.workdps(DPS):
            return _reference(graph, point, ask, eps)

    return _scaled(STORE.modes.get(key, compute), eps)


def _key(arrays: Any) -> tuple[Any, ...]:
    return tuple((np.shape(a), tuple(str(x) for x in np.asarray(a, dtype=object).flat)) for a in arrays)


def _scaled(ref: ModeReference, eps: float) -> ModeReference:
    def s(k: Known | None) -> Any:
        return None if k is None else Known(k.exact, k.allowance * (_SAFETY * eps), k.peak, k.low)

    return ModeReference(s(ref.jvp), tuple(s(k) for k in ref.vjp), tuple(s(k) for k in ref.hvp), s(ref.jvp_of_jvp),
                         tuple(Known(k.exact, eps * k.allowance) for k in ref.jacobian),
                         None if ref.orders is None else {n: s(k) for n, k in ref.orders.items()})


def _reference(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float) -> ModeReference:
    names = [n for n, _ in graph.differentiable]
    found: dict[str, Any] = {}
    # Deepest first: two levels of duals carry the first level too, so a JVP asked beside a JVP of a JVP
    # is read from the same evaluation (a row skips what an earlier one filled).
    for row in sorted(rows(ask.modes, ask.order), key=lambda r: -_LEVELS.get(r.key, 1)):
        if row.slot not in found:
            found |= _REFERENCES[row.key](graph, point, ask, eps, names)
    return ModeReference(**found)


def _jvp(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float, names: list[str]) -> dict[str, Any]:
    out = _forward(graph, point, eps, lambda name, i, x: Dual(x, Err(_at(ask.u, names, name, i))))
    return {"jvp": _known(out, lambda d: _part(d, "du"))}


def _jvp_of_jvp(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float, names: list[str]) -> dict[str, Any]:
    # two levels: inner along u, outer along w
    out = _forward(graph, point, eps, lambda name, i, x: Dual(Dual(x, Err(_at(ask.u, names, name, i))),
                                                              Dual(Err(_at(ask.w, names, name, i)))))
    return {"jvp": _known(out, lambda d: _part(_part(d, "re"), "du")),
            "jvp_of_jvp": _known(out, lambda d: _part(_part(d, "du"), "du"))}


def _hvp(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float, names: list[str]) -> dict[str, Any]:
    vjp, hvp = _forward_over_reverse(graph, point, ask, eps, names)
    return {"vjp": vjp, "hvp": hvp}


def _jacobian(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float, names: list[str]) -> dict[str, Any]:
    """Row by row from the exact tensor tape: its rounding bound is already a bound, so it is scaled by eps
    alone (:func:`_scaled`), without the first-order bound's safety factor."""
    exact = exact_tensor(graph, point)
    size = math.prod(graph.shape)
    grads = []
    for r in range(size):
        hot = np.zeros(size)
        hot[r] = 1.0
        grads.append(exact.vjp(hot.reshape(graph.shape)))
    out = []
    for name in names:
        shape = (*graph.shape, *grads[0].exact[name].shape)
        out.append(Known(np.stack([g.exact[name] for g in grads]).reshape(shape),
                         np.stack([g.rounding[name] for g in grads]).reshape(shape)))
    return {"jacobian": tuple(out)}


def _orders(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float, names: list[str]) -> dict[str, Any]:
    def nest(name: str, i: tuple[int, ...], x: Err) -> Any:
        t = Err(_at(ask.u, names, name, i))
        value: Any = x
        for level in range(ask.order):  # d^k along u: every level carries the same tangent
            value = Dual(value, _lift_tangent(t, level))
        return value

    out = _forward(graph, point, eps, nest)
    contracted = _contract(out, ask.v)
    return {"orders": {k: Known(*(np.asarray(part, dtype=object) for part in _component(contracted, k)))
                       for k in ask.orders}}


_Reference = Callable[[TensorGraph, Mapping[str, Any], Ask, float, list[str]], dict[str, Any]]
#: How each row of the mode table (:data:`gradspec.modes.ROWS`) is computed exactly, by its key.
_REFERENCES: dict[str, _Reference] = {Mode.JVP: _jvp, Mode.HVP: _hvp, Mode.JVP_OF_JVP: _jvp_of_jvp,
                                      Mode.JACOBIAN: _jacobian, ORDER: _orders}
_LEVELS: dict[str, int] = {Mode.JVP_OF_JVP: 2}  # nesting depth, where a row's evaluation also serves shallower ones


def _lift_tangent(t: Err, level: int) -> Any:
    """The tangent of a leaf at nesting ``level``: the same direction, as a dual of ``level`` levels."""
    value: Any = t
    for _ in range(level):
        value = Dual(value)
    return value


def _at(arrays: Sequence[Any], names: list[str], name: str, index: tuple[int, ...]) -> Scalar:
    return to_mpf(float(np.asarray(arrays[names.index(name)])[index]))


def _forward(graph: TensorGraph, point: Mapping[str, Any], eps: float,
             seed: Callable[[str, tuple[int, ...], Err], Any]) -> Any:
    backend = _Jets(eps, tape=False)
    return evaluate(graph, backend, _leaves(graph, point, backend, seed))[graph.output]


def _leaves(graph: TensorGraph, point: Mapping[str, Any], backend: _Jets,
            seed: Callable[[str, tuple[int, ...], Err], Any]) -> dict[str, Any]:
    """Every input as an array: data as given, each differentiable element ``seed(name, index, x)``."""
    leaves: dict[str, Any] = {}
    for name, _ in graph.inputs:
        values = np.asarray(point[name], dtype=object)
        if name in graph.data:
            leaves[name] = values
            continue
        arr = np.empty(values.shape, dtype=object)
        for i in np.ndindex(values.shape):
            arr[i] = seed(name, i, backend.const(values[i]))
        leaves[name] = arr
    return leaves


def _known(out: Any, pick: Callable[[Any], Any]) -> Known:
    exact = np.empty(out.shape, dtype=object)
    allow, peak, low = np.zeros(out.shape), np.zeros(out.shape), np.full(out.shape, np.inf)
    for i in np.ndindex(out.shape):
        exact[i], allow[i], peak[i], low[i] = _parts(_flatten(pick(out[i])))
    return Known(exact, allow, peak, low)


def _parts(x: Err | None) -> tuple[Scalar, float, float, float]:
    return (x.v, x.e, x.peak, x.low) if x is not None else (mpmath.mpf(0), 0.0, 0.0, math.inf)


def _part(x: Any, which: str) -> Any:
    """One part of a dual level; an Err (a constant at that level) has a zero tangent."""
    if isinstance(x, Dual):
        return getattr(x, which)
    return x if which == "re" else None


def _flatten(x: Any) -> Any:
    """The base of a dual with no tangents left (a level that never met a tangent), or the Err itself."""
    while isinstance(x, Dual):
        x = x.re
    return x


def _contract(out: Any, v: Any) -> Any:
    """``sum(v * out)`` in the same arithmetic (pairwise, as the engines' reductions)."""
    terms = [out[i] * Err(to_mpf(float(np.asarray(v)[i]))) for i in np.ndindex(out.shape) if np.asarray(v)[i]]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)] + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0] if terms else Err(mpmath.mpf(0))


def _component(x: Any, k: int) -> tuple[Scalar, float, float, float]:
    """The part of a nested dual with ``k`` of its levels' ε (all along one direction: D^k f[u^k])."""
    # The levels are symmetric, so any k of them will do: take the outermost k.
    for _ in range(k):
        x = x.du if isinstance(x, Dual) else None
        if x is None:
            return _parts(None)
    return _parts(_flatten(x))


def _forward_over_reverse(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float,
                          names: list[str]) -> tuple[tuple[Known, ...], tuple[Known, ...]]:
    backend = _Jets(eps, tape=True)
    leaves = _leaves(graph, point, backend, lambda name, i, x: backend.node(Dual(x, Err(_at(ask.u, names, name, i)))))
    out = evaluate(graph, backend, leaves)[graph.output]
    v = np.asarray(ask.v)
    seeds: dict[int, Any] = {}
    for i in np.ndindex(out.shape):
        if v[i] and isinstance(out[i], Node):
            seeds[out[i].i] = _plus(seeds.get(out[i].i), Err(to_mpf(float(v[i]))))
    adj = backend.sweep(seeds)
    firsts, seconds = [], []
    for name in names:
        arr = leaves[name]
        first, second = np.empty(arr.shape, dtype=object), np.empty(arr.shape, dtype=object)
        e1, e2, p1, p2 = (np.zeros(arr.shape) for _ in range(4))
        l1, l2 = np.full(arr.shape, np.inf), np.full(arr.shape, np.inf)
        for i in np.ndindex(arr.shape):
            a = adj[arr[i].i]
            first[i], e1[i], p1[i], l1[i] = _parts(a.re if isinstance(a, Dual) else a)
            second[i], e2[i], p2[i], l2[i] = _parts(a.du if isinstance(a, Dual) else None)
        firsts.append(Known(first, e1, p1, l1))
        seconds.append(Known(second, e2, p2, l2))
    return tuple(firsts), tuple(seconds)
