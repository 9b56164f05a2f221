"""The array tape of :mod:`gradspec.reference.ball`, and the sums and matrix products of its kernels.

An :class:`Arr` is one op's result: its exact values (an object array of ``arb`` balls), the tape's
running rounding bound beside them (a float array, in units of eps, the same quantity the scalar tape
keeps per node) and its node on the :class:`Tape` (None for constants and data). Each node keeps one
function that takes the node's adjoint and its backward rounding bound and returns every argument's
share of both: the scalar tape's reverse sweep, summed over the op's scalar nodes. The element-wise
kernels are in :mod:`gradspec.reference.ball_scalar`, the tensor ops in :mod:`gradspec.reference.kernels`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

import numpy as np
from flint import arb, arb_mat, fmpz_mat

__all__ = ["Arr", "Rule", "Tape", "Unsupported", "constant", "contract", "depths", "floats", "midpoints", "objects", "pairsum",
           "radii", "relative_radius", "summed", "to_balls", "unbroadcast", "zeros"]

# (adjoint, its bound, |adjoint|) -> every argument's share of both
Back = Callable[[Any, Any, Any], "list[tuple[Any, Any]]"]
# the arguments' tangents (None: zero) -> the node's tangent, built on the tape from the same kernels
Rule = Callable[["list[Arr | None]"], "Arr | None"]


class Unsupported(Exception):
    """Raised where the scalar tape must run instead (see :class:`gradspec.reference.ball.Unsupported`)."""


@dataclass(frozen=True, eq=False)
class Arr:
    value: Any  # object array of arb
    err: Any  # float array: the forward rounding bound, units of eps
    node: int | None = None
    # Inputs and constants: (object array of ints, d) with value == ints / d exactly. A matrix product
    # of integers is many times faster than one of full-precision balls.
    ints: tuple[Any, int] | None = None
    f: Any = None  # the values as float64, where already known


def midpoints(a: Arr) -> Any:
    """``a``'s values as float64 (converted once per op result where the kernel knows them)."""
    return a.f if a.f is not None else floats(a.value)


_float = np.frompyfunc(float, 1, 1)
_rad = np.frompyfunc(lambda x: float(x.rad()), 1, 1)
_ball = np.frompyfunc(lambda x: arb(x) if not isinstance(x, Fraction) else arb(x.numerator) / x.denominator, 1, 1)


def floats(a: Any) -> Any:
    """The balls' midpoints as float64 (the exact values rounded to the nearest float)."""
    return np.asarray(_float(a), dtype=float).reshape(np.shape(a))


def radii(a: Any) -> Any:
    """The balls' radii as float64: how far each exact value may lie from its midpoint."""
    return np.asarray(_rad(a), dtype=float).reshape(np.shape(a)) if np.size(a) else np.zeros(np.shape(a))


def relative_radius(rad: Any, mid: Any) -> float:
    """The largest of balls' radii ``rad`` relative to their midpoints ``mid`` (their :func:`radii` and
    :func:`floats`; absolute where the midpoint is 0)."""
    if not np.size(rad):
        return 0.0
    mag = np.abs(mid)
    return float(np.max(np.where(mag > 0, rad / np.where(mag > 0, mag, 1), rad)))


def to_balls(a: Any) -> Any:
    out = np.empty(np.shape(a), dtype=object)
    out[...] = _ball(np.asarray(a, dtype=object)) if np.size(a) else out
    return out


def zeros(shape: tuple[int, ...]) -> Any:
    out = np.empty(shape, dtype=object)
    out[...] = arb(0)
    return out


def _not_binary(v: Any) -> bool:
    """Is ``v`` not a float64 exactly? A Fraction is one when its denominator is a power of two and its
    numerator fits in 53 bits (faster than comparing with float(v), which a million inputs feel)."""
    if isinstance(v, Fraction):
        d = v.denominator
        if d & (d - 1):
            return True  # in lowest terms with an odd factor below: no binary float is that number
        if abs(v.numerator).bit_length() <= 53 and d.bit_length() <= 1000:
            return False
    return bool(float(v) != v)


_inexact = np.frompyfunc(_not_binary, 1, 1)


def constant(values: Any) -> Arr:
    """Fractions (inputs, data, constants) as balls; an engine gets the nearest float, half an ulp off
    unless the decimal is a binary float."""
    vals = np.asarray(values, dtype=object)
    f = floats(vals)
    inexact = np.asarray(_inexact(vals), dtype=bool).reshape(vals.shape)
    return Arr(to_balls(vals), np.where(inexact, np.abs(f) / 2, 0.0), ints=_integers(vals), f=f)


def _integers(vals: Any) -> tuple[Any, int] | None:
    if not vals.size or not all(isinstance(v, Fraction | int) for v in vals.flat):
        return None
    d = math.lcm(*{v.denominator for v in vals.flat})
    if d.bit_length() > 64:
        return None
    out = np.empty(vals.shape, dtype=object)
    out.reshape(-1)[:] = [v.numerator * (d // v.denominator) if isinstance(v, Fraction) else v * d for v in vals.flat]
    return out, d


class Tape:
    """Op nodes: each keeps its arguments' nodes (None for constants) and one function from its adjoint,
    the adjoint's backward bound and the adjoint's magnitude to every argument's share of both."""

    def __init__(self, rebuilt: bool | None = None) -> None:
        # None: no op whose partial is rebuilt from its rounded output (tanh) is taken; False: taken, what
        # that loses left out of the bound; True: counted in it (see ball_scalar.REBUILT).
        self.rebuilt = rebuilt
        self.nodes: list[tuple[tuple[int | None, ...], Back | None]] = []
        self.leaves: set[int] = set()
        self.copy_of: dict[int, int] = {}  # a broadcast copy of a leaf -> the leaf
        self.rules: dict[int, Rule] = {}  # each op node's forward rule (forward mode: :meth:`tangents`)

    def push(self, value: Any, err: Any, parents: Sequence[int | None] = (), back: Back | None = None,
             rule: Rule | None = None) -> Arr:
        self.nodes.append((tuple(parents), back))
        if rule is not None:
            self.rules[len(self.nodes) - 1] = rule
        return Arr(value, err, len(self.nodes) - 1)

    def tangents(self, seeds: dict[int, Arr], upto: int) -> dict[int, Arr]:
        """A forward sweep: the tangent of every node up to ``upto`` from the leaves' (``seeds``), each op's
        built by its rule from its arguments' on this tape, so that the tangents are nodes too (swept in
        reverse for a Hessian-vector product)."""
        out = dict(seeds)
        for i in range(upto + 1):
            parents, _ = self.nodes[i]
            if i in out or i in self.leaves:
                continue
            ts = [None if p is None else out.get(p) for p in parents]
            if all(t is None for t in ts):
                continue
            rule = self.rules.get(i)
            if rule is None:
                raise Unsupported("an op without a forward rule")
            t = rule(ts)
            if t is not None:
                out[i] = t
        return out

    def leaf(self, arr: Arr) -> Arr:
        out = self.push(arr.value, arr.err)
        assert out.node is not None
        self.leaves.add(out.node)
        return Arr(out.value, out.err, out.node, arr.ints, arr.f)

    def copy(self, a: Arr, shape: tuple[int, ...]) -> Arr:
        """Broadcast ``a`` as per-copy nodes (the scalar tape's ``expand``): each copy's adjoint can be read,
        and each adds its own accumulation to the source's backward bound."""
        assert a.node is not None
        source = a.value.shape

        def back(g: Any, ge: Any, ag: Any) -> list[tuple[Any, Any]]:
            return [(unbroadcast(g, source), unbroadcast(ge + 2 * ag, source))]

        out = self.push(np.broadcast_to(a.value, shape), np.broadcast_to(a.err, shape), [a.node], back,
                        lambda ts: self.spread(ts[0], shape))
        if a.node in self.leaves:
            assert out.node is not None
            self.copy_of[out.node] = a.node
        return Arr(out.value, out.err, out.node, f=np.broadcast_to(midpoints(a), shape))

    def spread(self, t: Arr | None, shape: tuple[int, ...]) -> Arr | None:
        """``t`` broadcast to ``shape``: a copy node of a node, a view of a constant."""
        if t is None or t.node is not None:
            return None if t is None else self.copy(t, shape)
        return Arr(np.broadcast_to(t.value, shape), np.broadcast_to(t.err, shape), f=np.broadcast_to(midpoints(t), shape))

    def sweep(self, out: int | None, seed: Any) -> tuple[dict[int, Any], dict[int, Any], dict[int, list[Any]]]:
        """Reverse accumulation from ``seed`` at node ``out``: the adjoints and backward bounds of the
        leaves (and of the nodes not yet released), and the adjoints of each leaf's broadcast copies."""
        adj: dict[int, Any] = {}
        err: dict[int, Any] = {}
        copies: dict[int, list[Any]] = {}
        if out is None:
            return adj, err, copies
        adj[out], err[out] = seed, np.zeros(np.shape(seed))
        for i in range(out, -1, -1):
            if i in self.leaves or i not in adj:
                continue
            g, ge = objects(adj.pop(i)), np.asarray(err.pop(i), dtype=float)  # released as it is used
            if i in self.copy_of:
                copies.setdefault(self.copy_of[i], []).append((g.shape, g))
            parents, back = self.nodes[i]
            if back is None:
                continue
            for parent, (gp, ep) in zip(parents, back(g, ge, np.abs(floats(g))), strict=True):
                if parent is None:
                    continue
                if parent in adj:
                    adj[parent] = objects(adj[parent] + gp)
                    err[parent] = err[parent] + ep
                else:
                    adj[parent], err[parent] = objects(gp), ep
        for found in copies.values():
            found.reverse()  # in the order the copies were made, as the scalar tape lists them
        return adj, err, copies


def objects(a: Any) -> Any:
    """Arithmetic on 0-d object arrays returns the element itself: put it back in an array."""
    if isinstance(a, np.ndarray):
        return a
    out = np.empty((), dtype=object)
    out[()] = a
    return out


def unbroadcast(a: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``a`` over the axes that broadcasting added to reach it from ``shape``."""
    a = objects(a) if isinstance(a, arb) else np.asarray(a)
    if a.shape == shape:
        return a
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + k for k, n in enumerate(shape) if n == 1 and a.shape[lead + k] != 1)
    return summed(a, axes).reshape(shape) if axes else a.reshape(shape)


def summed(a: Any, axes: tuple[int, ...]) -> Any:
    s = np.sum(a, axis=axes)
    return objects(s) if isinstance(s, arb) else np.asarray(s)


# -- sums and contractions -----------------------------------------------------------------------------

@cache
def depths(n: int) -> Any:
    """How many pairwise additions (:func:`gradspec.ops.lowering._sum`) each of ``n`` terms passes through:
    at every level the groups pair up in order, an odd last group waiting for the next level."""
    depth = np.zeros(n)
    group = np.arange(n)
    groups = n
    while groups > 1:
        depth += group < groups // 2 * 2
        group //= 2  # the waiting last group (groups - 1, groups odd) becomes groups // 2 as well
        groups = (groups + 1) // 2
    return depth


def pairsum(tape: Tape, x: Arr, axis: int | None, keep: bool) -> Arr:
    """The lowering's pairwise sum along ``axis`` (every element when None), the axis kept as size 1 when
    ``keep``. The bound is the scalar tape's exactly: each addition adds the magnitude of its partial sum."""
    shape = x.value.shape
    if axis is None:
        v, e = x.value.reshape(1, -1), x.err.reshape(1, -1)
        out_shape: tuple[int, ...] = ()
    else:
        v, e = np.moveaxis(x.value, axis, -1), np.moveaxis(x.err, axis, -1)
        out_shape = shape[:axis] + ((1,) if keep else ()) + shape[axis + 1:]
    n = v.shape[-1]
    if n == 0:
        raise Unsupported("an empty sum")
    f = floats(v)
    while v.shape[-1] > 1:
        m = v.shape[-1] // 2 * 2
        pv = v[..., 0:m:2] + v[..., 1:m:2]
        pf = f[..., 0:m:2] + f[..., 1:m:2]
        pe = e[..., 0:m:2] + e[..., 1:m:2] + np.abs(pf)
        if v.shape[-1] % 2:
            pv, pf, pe = (np.concatenate([p, q[..., -1:]], axis=-1) for p, q in ((pv, v), (pf, f), (pe, e)))
        v, f, e = pv, pf, pe
    depth = depths(n)
    lane_shape = np.moveaxis(x.value, axis, -1).shape if axis is not None else (1, n)

    def back(g: Any, ge: Any, ag: Any) -> list[tuple[Any, Any]]:
        gl = np.broadcast_to(np.asarray(g, dtype=object).reshape((*lane_shape[:-1], 1)), lane_shape)
        el = ge.reshape((*lane_shape[:-1], 1)) + 2 * depth * ag.reshape((*lane_shape[:-1], 1))
        if axis is None:
            return [(gl.reshape(shape), el.reshape(shape))]
        return [(np.moveaxis(gl, -1, axis), np.moveaxis(el, -1, axis))]

    if x.node is None:
        return Arr(v.reshape(out_shape), e.reshape(out_shape))
    return tape.push(v.reshape(out_shape), e.reshape(out_shape), [x.node], back,
                     lambda ts: None if ts[0] is None else pairsum(tape, ts[0], axis, keep))


def _product(a: Any, b: Any, ia: tuple[Any, int] | None = None, ib: tuple[Any, int] | None = None) -> Any:
    """An exact matrix product of two object arrays of balls (one C-level call); ``ia``, ``ib``: the
    operands as integers over a denominator, where they are inputs."""
    m, n = a.shape[0], b.shape[1]
    if a.shape[1] == 0:
        return zeros((m, n))
    if ia is not None and ib is not None:
        product = arb_mat(fmpz_mat(ia[0].tolist()) * fmpz_mat(ib[0].tolist())) / (ia[1] * ib[1])
    else:
        left = arb_mat(a.tolist() if ia is None else ia[0].tolist())
        right = arb_mat(b.tolist() if ib is None else ib[0].tolist())
        scale = (1 if ia is None else ia[1]) * (1 if ib is None else ib[1])
        product = left * right if scale == 1 else left * right / scale
    out = np.empty(m * n, dtype=object)
    out[:] = product.entries()
    return out.reshape(m, n)


def _t(ints: tuple[Any, int] | None) -> tuple[Any, int] | None:
    return None if ints is None else (ints[0].T, ints[1])


def contract(x: Arr, y: Arr, depth: Any, valid: Any = None) -> tuple[Any, Any, Callable[..., Any]]:
    """z = x @ y for 2-D arrays, each z_ij the pairwise sum over t of x_it y_tj (only the terms where
    ``valid``, when given); ``depth`` (broadcast to x's shape) is each term's number of additions.
    Returns the value, the forward bound and a function (g, ge, ag) -> (gx, gex, gy, gey)."""
    fx, fy = midpoints(x), midpoints(y)
    ax, ay = np.abs(fx), np.abs(fy)
    value = _product(x.value, y.value, x.ints, y.ints)
    err = ax @ ay + x.err @ ay + ax @ y.err + _partial_sums(fx, fy, depth, valid)

    def back(g: Any, ge: Any, ag: Any) -> tuple[Any, Any, Any, Any]:
        gx = _product(g, y.value.T, None, _t(y.ints))
        gy = _product(x.value.T, g, _t(x.ints))
        ex = ge @ ay.T + (2 * depth + 2) * (ag @ ay.T) + ag @ y.err.T
        ey = ax.T @ ge + ((2 * depth + 2) * ax).T @ ag + x.err.T @ ag
        return gx, ex, gy, ey

    return value, err, back


_TREE_LIMIT = 1 << 21  # products held at once to add up the partial sums of every pairwise tree exactly


def _partial_sums(fx: Any, fy: Any, depth: Any, valid: Any) -> Any:
    """The magnitudes of every partial sum in each z_ij's pairwise tree, added up: the tape's forward
    bound for those additions. Above ``_TREE_LIMIT`` products, sum_t depth_t |x_it y_tj| bounds it."""
    m, k = fx.shape
    n = fy.shape[1]
    if m * k * n > _TREE_LIMIT:
        return (np.abs(fx) * depth) @ np.abs(fy)
    out = np.zeros((m, n))
    rows = np.ones((m, k), dtype=bool) if valid is None else valid
    patterns, which = np.unique(rows, axis=0, return_inverse=True)
    for p, cols in enumerate(patterns):
        picked = np.flatnonzero(which.reshape(-1) == p)
        terms = fx[picked][:, cols][:, :, None] * fy[cols][None, :, :]  # (rows, terms, n)
        while terms.shape[1] > 1:
            even = terms.shape[1] // 2 * 2
            pairs = terms[:, 0:even:2] + terms[:, 1:even:2]
            out[picked] += np.abs(pairs).sum(axis=1)
            terms = np.concatenate([pairs, terms[:, even:]], axis=1)
    return out
