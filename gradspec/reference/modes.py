"""Exact references for forward mode and higher order: nested dual numbers over exact values.

One evaluation of the graph, lowered to scalar ops (:func:`gradspec.graph.tensor.evaluate`), in
nested dual numbers gives every directional derivative a check asks for: one level per direction, so
``Dual(Dual(f, ∂f[u]), Dual(∂f[w], ∂²f[u, w]))`` carries the value, both JVPs and the second
derivative at once, and ``order: N`` nests N levels along ``u``. An op applied to duals needs the op's
partial derivatives of every order, which SymPy derives from the op's exact form in the op table (the
same form the first-order references differentiate). The Hessian-vector product is forward over
reverse: the graph is taped in duals along ``u`` and swept back from the cotangent ``v`` in dual
arithmetic, so the adjoints carry ``Jᵀv`` and ``∇²(v·f) u`` together. Where the ball tape takes the
graph, jvp and hvp are computed there instead (:mod:`gradspec.reference.ball_modes`, one tensor op at a
time in ball arithmetic), and the duals run for the rest.

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
from typing import Any, cast

import mpmath
import numpy as np

from gradspec.graph.tensor import TensorGraph, evaluate
from gradspec.modes import ORDER, Ask, Mode, rows
from gradspec.reference import mode_records
from gradspec.reference.duals import Dual, Err, Jets, flatten, plus
from gradspec.reference.exact import DPS
from gradspec.reference.mpeval import Scalar, to_mpf
from gradspec.reference.store import STORE
from gradspec.reference.tensor import Node, exact_tensor

__all__ = ["Dual", "Err", "Known", "ModeReference", "mode_reference"]

_SAFETY = 2.0  # the bound is first order: allow twice what it says


# -- the reference --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """An exact quantity (object array of mpf) and its rounding allowance (float array, absolute)."""

    exact: Any
    allowance: Any
    peak: Any = None  # float array: the largest magnitude the quantity was computed from
    low: Any = None  # float array: the smallest nonzero one
    rebuilt: Any = 0.0  # float array: what partials rebuilt from rounded outputs may add (absolute)

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
    # The largest radius of the quantities computed in ball arithmetic (relative, as BallExact.radius);
    # None where the nested duals computed them.
    radius: float | None = None


def mode_reference(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float) -> ModeReference:
    """The exact references of ``ask`` for ``graph`` at ``point`` (input -> array of Fractions), their
    allowances scaled to ``eps``. Raises :class:`DomainError` where a derivative asked for is not finite.
    Remembered by what they are, in the store, so every engine of one precision checked at one draw shares them."""
    key = (graph.key, _key(point.values()), _key(ask.u), _key(ask.w), _key([ask.v]), tuple(sorted(ask.modes)),
           ask.order, eps >= 2.0**-23)

    def compute() -> ModeReference:
        text = repr(key)
        with mpmath.workdps(DPS):
            kept = STORE.disk.record(text)
            if kept is not None:
                return cast(ModeReference, mode_records.read(kept, Known, ModeReference))
            found = _reference(graph, point, ask, eps)
        data = mode_records.record(found)
        if data is not None:
            STORE.disk.keep(text, data)
        return found

    return _scaled(STORE.modes.get(key, compute), eps)


def _key(arrays: Any) -> tuple[Any, ...]:
    return tuple((np.shape(a), tuple(str(x) for x in np.asarray(a, dtype=object).flat)) for a in arrays)


def _scaled(ref: ModeReference, eps: float) -> ModeReference:
    def s(k: Known | None) -> Any:
        return None if k is None else Known(k.exact, k.allowance * (_SAFETY * eps), k.peak, k.low,
                                            np.asarray(k.rebuilt) * (_SAFETY * eps))

    return ModeReference(s(ref.jvp), tuple(s(k) for k in ref.vjp), tuple(s(k) for k in ref.hvp), s(ref.jvp_of_jvp),
                         tuple(Known(k.exact, eps * k.allowance, rebuilt=eps * np.asarray(k.rebuilt))
                               for k in ref.jacobian),
                         None if ref.orders is None else {n: s(k) for n, k in ref.orders.items()}, ref.radius)


def _reference(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float) -> ModeReference:
    names = [n for n, _ in graph.differentiable]
    found: dict[str, Any] = _in_balls(graph, point, ask)
    # Deepest first: two levels of duals carry the first level too, so a JVP asked beside a JVP of a JVP
    # is read from the same evaluation (a row skips what an earlier one filled).
    for row in sorted(rows(ask.modes, ask.order), key=lambda r: -_LEVELS.get(r.key, 1)):
        if row.slot not in found:
            found |= _REFERENCES[row.key](graph, point, ask, eps, names)
    return ModeReference(**found)


_DIRECTIONAL = frozenset({Mode.JVP, Mode.HVP})


def _in_balls(graph: TensorGraph, point: Mapping[str, Any], ask: Ask) -> dict[str, Any]:
    """The rows of forward mode and second order (jvp, hvp and its vjp) in ball arithmetic, one
    tensor op at a time (:mod:`gradspec.reference.ball_modes`), where the ball tape takes the graph and the
    point; otherwise nothing, and the rows' nested duals run."""
    from gradspec.reference.ball import supported
    from gradspec.reference.ball_modes import directional
    from gradspec.reference.ball_ops import Unsupported

    asked = ask.modes & _DIRECTIONAL
    if not asked or not supported(graph, rebuilt=True):
        return {}
    try:
        with mpmath.workdps(DPS):  # beside the work precision of the balls: nothing here evaluates mpmath
            got = directional(graph, point, ask.u, ask.v if Mode.HVP in asked else None)
    except Unsupported:
        return {}

    def known(q: tuple[Any, Any, Any]) -> Known:
        return Known(q[0], q[1], rebuilt=q[2])

    found: dict[str, Any] = {"jvp": known(got.jvp), "radius": got.radius}
    if Mode.HVP in asked:
        found |= {"vjp": tuple(known(q) for q in got.vjp), "hvp": tuple(known(q) for q in got.hvp)}
    return found


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
                         np.stack([g.rounding[name] for g in grads]).reshape(shape),
                         rebuilt=np.stack([g.rebuilt[name] for g in grads]).reshape(shape)))
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
    backend = Jets(eps, tape=False)
    return evaluate(graph, backend, _leaves(graph, point, backend, seed))[graph.output]


def _leaves(graph: TensorGraph, point: Mapping[str, Any], backend: Jets,
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
    allow, peak, low, rebuilt = np.zeros(out.shape), np.zeros(out.shape), np.full(out.shape, np.inf), np.zeros(out.shape)
    for i in np.ndindex(out.shape):
        exact[i], allow[i], peak[i], low[i], rebuilt[i] = _parts(flatten(pick(out[i])))
    return Known(exact, allow, peak, low, rebuilt)


def _parts(x: Err | None) -> tuple[Scalar, float, float, float, float]:
    return (x.v, float(x.e), x.peak, x.low, float(x.r)) if x is not None else (mpmath.mpf(0), 0.0, 0.0, math.inf, 0.0)


def _part(x: Any, which: str) -> Any:
    """One part of a dual level; an Err (a constant at that level) has a zero tangent."""
    if isinstance(x, Dual):
        return getattr(x, which)
    return x if which == "re" else None


def _contract(out: Any, v: Any) -> Any:
    """``sum(v * out)`` in the same arithmetic (pairwise, as the engines' reductions)."""
    terms = [out[i] * Err(to_mpf(float(np.asarray(v)[i]))) for i in np.ndindex(out.shape) if np.asarray(v)[i]]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)] + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0] if terms else Err(mpmath.mpf(0))


def _component(x: Any, k: int) -> tuple[Scalar, float, float, float, float]:
    """The part of a nested dual with ``k`` of its levels' ε (all along one direction: D^k f[u^k])."""
    # The levels are symmetric, so any k of them will do: take the outermost k.
    for _ in range(k):
        x = x.du if isinstance(x, Dual) else None
        if x is None:
            return _parts(None)
    return _parts(flatten(x))


def _forward_over_reverse(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float,
                          names: list[str]) -> tuple[tuple[Known, ...], tuple[Known, ...]]:
    backend = Jets(eps, tape=True)
    leaves = _leaves(graph, point, backend, lambda name, i, x: backend.node(Dual(x, Err(_at(ask.u, names, name, i)))))
    out = evaluate(graph, backend, leaves)[graph.output]
    v = np.asarray(ask.v)
    seeds: dict[int, Any] = {}
    for i in np.ndindex(out.shape):
        if v[i] and isinstance(out[i], Node):
            seeds[out[i].i] = plus(seeds.get(out[i].i), Err(to_mpf(float(v[i]))))
    adj = backend.sweep(seeds)
    firsts, seconds = [], []
    for name in names:
        arr = leaves[name]
        first, second = np.empty(arr.shape, dtype=object), np.empty(arr.shape, dtype=object)
        e1, e2, p1, p2, r1, r2 = (np.zeros(arr.shape) for _ in range(6))
        l1, l2 = np.full(arr.shape, np.inf), np.full(arr.shape, np.inf)
        for i in np.ndindex(arr.shape):
            a = adj[arr[i].i]
            first[i], e1[i], p1[i], l1[i], r1[i] = _parts(a.re if isinstance(a, Dual) else a)
            second[i], e2[i], p2[i], l2[i], r2[i] = _parts(a.du if isinstance(a, Dual) else None)
        firsts.append(Known(first, e1, p1, l1, r1))
        seconds.append(Known(second, e2, p2, l2, r2))
    return tuple(firsts), tuple(seconds)
