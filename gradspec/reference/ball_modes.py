"""Forward mode and second order on the ball tape: JVPs and Hessian-vector products in ball arithmetic.

The tape of :mod:`gradspec.reference.ball` keeps, beside each op node's reverse rule, a forward rule that
builds the node's tangent from its arguments' with the same kernels (:meth:`Tape.tangents`): a matrix
product's is ``x' @ y + x @ y'``, an element-wise op's its partial times the argument's tangent, a sum's
the sum of the tangents. The tangents are nodes of the same tape, so the quantities of the mode table's
jvp and hvp rows are sweeps of it:

- the JVP ``J u`` is the tangent of the output along ``u``;
- the Hessian-vector product ``∇²(v·f) u`` is the reverse sweep of that tangent from ``v`` (the gradient
  of ``v·J(x) u``, reverse over forward), read at the inputs; the VJP ``Jᵀv`` is the ordinary sweep.

jvp-of-jvp (the tangent along ``w`` of the tangent along ``u``) is not taken here: the duals give each
second derivative of an op its own budget (two ulps more per order), which the composed tangents do not
always reach, so its reference stays in nested duals.

Every number is a ball, so each quantity certifies itself (``radius``). The rounding bound beside it is the
tape's, per node (:mod:`gradspec.reference.ball_ops`), of the float program that computes the quantity
this way; it is never below the nested duals' bound of :mod:`gradspec.reference.duals` (a test checks it
on every kernel). A graph or point the ball tape does not take raises :class:`Unsupported`, and the
caller evaluates the nested duals instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from flint import ctx

from gradspec.graph.tensor import TensorGraph
from gradspec.reference.ball import PREC, ball_tensor
from gradspec.reference.ball_ops import (
    Arr,
    Unsupported,
    constant,
    floats,
    objects,
    radii,
    relative_radius,
    to_balls,
    zeros,
)
from gradspec.reference.ball_scalar import REBUILT

__all__ = ["RANGE", "Directional", "directional"]

# The nested duals keep, per element, the largest and smallest magnitude a quantity was computed from, so
# that an engine's intermediate overflow or underflow is told apart from a wrong digit. Here a quantity
# whose values or tangents leave [1/RANGE, RANGE] goes to the duals instead: inside it, no product of two
# such numbers leaves float32's normal range, so neither the engine nor the bound overflows.
RANGE = 2.0**60


Quantity = tuple[Any, Any, Any]  # exact balls, rounding bound, rebuilt allowance (units of eps)


@dataclass(frozen=True)
class Directional:
    """The quantities asked for, each (exact balls, rounding bound, what partials rebuilt from rounded
    outputs may add; both in units of eps, before any safety factor): per differentiable input for
    ``vjp`` and ``hvp``; ``radius`` as :attr:`BallExact.radius`."""

    jvp: Quantity
    vjp: tuple[Quantity, ...]
    hvp: tuple[Quantity, ...]
    radius: float


def directional(graph: TensorGraph, point: Mapping[str, Any], u: Sequence[Any], v: Any | None) -> Directional:
    """The JVP along ``u`` (per differentiable input, in the graph's order); with ``v``, the VJP and the
    Hessian-vector product. Raises :class:`Unsupported`.

    A graph with an op whose partial engines rebuild from its rounded output (tanh) is swept twice: the
    rounding bound without what that loses, then with it; the difference is the rebuilt allowance, kept
    apart as the nested duals keep it (a quantity beyond the first and within both is imprecise)."""
    # Past the float range a bound is inf or nan (an overflowed partial, or one over an underflowed square,
    # times a zero error); every quantity and tangent is checked below, and such a point goes to the duals.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if not any(s.op in REBUILT for s in graph.steps):
            jvp, vjp, hvp, radius = _directional(graph, point, u, v, None)
            return Directional(_none(jvp), tuple(map(_none, vjp)), tuple(map(_none, hvp)), radius)
        jvp, vjp, hvp, radius = _directional(graph, point, u, v, False)
        wide = _directional(graph, point, u, v, True)
        return Directional(_apart(jvp, wide[0]), tuple(map(_apart, vjp, wide[1])), tuple(map(_apart, hvp, wide[2])),
                           radius)


def _none(q: tuple[Any, Any]) -> Quantity:
    return q[0], q[1], np.zeros(np.shape(q[1]))


def _apart(q: tuple[Any, Any], wide: tuple[Any, Any]) -> Quantity:
    # The wider bound counts every source the narrower does and more, each with a coefficient at least as
    # large, so the difference is what the rebuilt partials add.
    return q[0], q[1], np.maximum(np.asarray(wide[1], dtype=float) - q[1], 0.0)


def _directional(graph: TensorGraph, point: Mapping[str, Any], u: Sequence[Any], v: Any | None,
                 rebuilt: bool | None) -> tuple[tuple[Any, Any], list[tuple[Any, Any]], list[tuple[Any, Any]], float]:
    # A tape of its own: the tangents' nodes do not grow a remembered one.
    ref = ball_tensor(graph, point, rebuilt=rebuilt)
    names = [n for n, _ in graph.differentiable]
    largest = [ref.radius]
    with ctx.workprec(PREC):
        tape, out = ref.tape, ref.output
        if out.node is None:
            raise Unsupported("an output that does not depend on the inputs")
        along = _tangents(ref, names, u, out.node)
        jvp = along.get(out.node)
        vjp: list[tuple[Any, Any]] = []
        hvp: list[tuple[Any, Any]] = []
        if v is not None:
            seed = to_balls(np.asarray(v, dtype=float))
            vjp = _leaves(ref, names, tape.sweep(out.node, seed)[:2])
            if jvp is not None and jvp.node is not None:
                hvp = _leaves(ref, names, tape.sweep(jvp.node, seed)[:2])
            else:  # a tangent that does not move with the inputs: the Hessian is zero
                hvp = [(zeros(ref.leaves[n].value.shape), np.zeros(ref.leaves[n].value.shape)) for n in names]
        shape = graph.shape
        quantities = [_whole(jvp, shape), *vjp, *hvp]
        for exact, err in quantities:
            _in_range(exact, err)
            largest.append(relative_radius(radii(exact), floats(exact)))
        for t in along.values():
            _in_range(t.value, t.err)
    return _whole(jvp, shape), vjp, hvp, max(largest)


def _balls(a: Any) -> Any:
    return np.vectorize(Fraction, otypes=[object])(a) if np.ndim(a) else np.asarray(Fraction(float(a)), dtype=object)


def _tangents(ref: Any, names: list[str], direction: Sequence[Any], upto: int) -> dict[int, Arr]:
    seeds = {}
    for name, d in zip(names, direction, strict=True):
        leaf = ref.leaves[name]
        seeds[leaf.node] = constant(_balls(np.asarray(d, dtype=float)).reshape(leaf.value.shape))
    found: dict[int, Arr] = ref.tape.tangents(seeds, upto)
    return found


def _leaves(ref: Any, names: list[str], swept: tuple[dict[int, Any], dict[int, Any]]) -> list[tuple[Any, Any]]:
    adj, err = swept
    out = []
    for name in names:
        leaf = ref.leaves[name]
        shape = leaf.value.shape
        got = adj.get(leaf.node)
        out.append((objects(got) if got is not None else zeros(shape), np.asarray(err.get(leaf.node, np.zeros(shape)))))
    return out


def _whole(t: Arr | None, shape: tuple[int, ...]) -> tuple[Any, Any]:
    if t is None:
        return zeros(shape), np.zeros(shape)
    return np.asarray(t.value, dtype=object).reshape(shape), np.asarray(t.err, dtype=float).reshape(shape)


_ZERO = np.frompyfunc(lambda b: b.contains(0), 1, 1)


def _in_range(exact: Any, err: Any) -> None:
    """Raise :class:`Unsupported` past ``RANGE``, or below its inverse where the ball is not zero (a ball
    around zero, as a sum that cancels exactly gives, is zero for this purpose: nothing underflows there)."""
    mags = np.abs(floats(exact))
    small = (mags > 0) & (mags < 1 / RANGE)
    if np.any(small):
        small &= ~np.asarray(_ZERO(np.asarray(exact, dtype=object)), dtype=bool).reshape(small.shape)
    if np.any(mags > RANGE) or np.any(small) or not np.all(np.isfinite(err)):
        raise Unsupported("a derivative beyond the range where no float intermediate overflows")
