"""The kernels of :mod:`gradspec.reference.ball`: the array tape, and one kernel per op.

An :class:`Arr` is one op's result: its exact values (an object array of ``arb`` balls), the tape's
running rounding bound beside them (a float array, in units of eps, the same quantity the scalar tape
keeps per node) and its node on the :class:`Tape` (None for constants and data). Each node keeps, per
argument, a function that takes the node's adjoint and its backward rounding bound and returns the
argument's share of both: the scalar tape's reverse sweep, summed over the op's scalar nodes.

``SCALAR`` holds the element-wise kernels (value, local partials as balls, and the second partials in
float, which bound how far a partial moves when its arguments move by their rounding bound); ``TENSOR``
the tensor ops, written as :mod:`gradspec.ops.lowering` writes them.
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

from gradspec.ops.table import OPS

__all__ = ["SCALAR", "Arr", "Tape", "constant", "elementwise", "floats", "objects", "relative_radius", "summed",
           "to_balls", "zeros"]

# (adjoint, its bound, |adjoint|) -> every argument's share of both
Back = Callable[[Any, Any, Any], "list[tuple[Any, Any]]"]


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


def relative_radius(a: Any) -> float:
    if not np.size(a):
        return 0.0
    rad = np.asarray(_rad(a), dtype=float)
    mag = np.abs(floats(a))
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

    def __init__(self) -> None:
        self.nodes: list[tuple[tuple[int | None, ...], Back | None]] = []
        self.leaves: set[int] = set()
        self.copy_of: dict[int, int] = {}  # a broadcast copy of a leaf -> the leaf

    def push(self, value: Any, err: Any, parents: Sequence[int | None] = (), back: Back | None = None) -> Arr:
        self.nodes.append((tuple(parents), back))
        return Arr(value, err, len(self.nodes) - 1)

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
            return [(_unbroadcast(g, source), _unbroadcast(ge + 2 * ag, source))]

        out = self.push(np.broadcast_to(a.value, shape), np.broadcast_to(a.err, shape), [a.node], back)
        if a.node in self.leaves:
            assert out.node is not None
            self.copy_of[out.node] = a.node
        return Arr(out.value, out.err, out.node, f=np.broadcast_to(midpoints(a), shape))

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
                    adj[parent] = adj[parent] + gp
                    err[parent] = err[parent] + ep
                else:
                    adj[parent], err[parent] = gp, ep
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


def _unbroadcast(a: Any, shape: tuple[int, ...]) -> Any:
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


# -- element-wise kernels -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kernel:
    """An element-wise op: its value, its local partials (balls, or the numbers 1, -1), and its second
    partials in float (``second(x, v)[k][j]`` = d partial_k / d x_j) for the bound on a moved partial.
    ``check`` raises :class:`Unsupported` where an element may sit on a kink or a domain edge."""

    value: Callable[[list[Any]], Any]
    partials: Callable[[list[Any], Any], list[Any]]
    second: Callable[[list[Any], Any], list[list[Any]]] | None = None
    check: Callable[[list[Any], list[bool]], None] | None = None


def _map(fn: Callable[..., Any]) -> Callable[..., Any]:
    f = np.frompyfunc(fn, 1, 1)
    return lambda x: np.asarray(f(x), dtype=object).reshape(np.shape(x))


_exp, _log, _sin, _cos, _sqrt = (_map(getattr(arb, n)) for n in ("exp", "log", "sin", "cos", "sqrt"))


def _all(pred: Callable[[Any], bool], a: Any) -> bool:
    return all(pred(x) for x in np.asarray(a, dtype=object).flat)


def _positive(args: list[Any], varying: list[bool]) -> None:
    if not _all(lambda x: x > 0, args[0]):
        raise Unsupported("an argument at or near its domain's edge")


def _nonzero_divisor(args: list[Any], varying: list[bool]) -> None:
    if not _all(lambda x: x > 0 or x < 0, args[1]):
        raise Unsupported("a divisor at or near zero")


def _off_kink(args: list[Any], varying: list[bool]) -> None:
    # The op table's kink test is |x| < 1e-40; a ball that reaches that close is left to the scalar tape.
    if not _all(lambda x: x > arb("1e-40") or x < arb("-1e-40"), args[0]):
        raise Unsupported("an element at or near a kink")


def _pow_check(args: list[Any], varying: list[bool]) -> None:
    if varying[1] or not _all(lambda e: e.is_integer() and e >= 1, args[1]):
        _positive(args, varying)


def _pow_value(a: list[Any]) -> Any:
    return np.frompyfunc(lambda x, e: x ** int(e.mid().floor().unique_fmpz()) if e.is_integer() and e.is_exact()
                         else (e * x.log()).exp(), 2, 1)(a[0], a[1])


def _pow_partials(a: list[Any], v: Any) -> list[Any]:
    x, e = a
    dx = np.frompyfunc(lambda x, e, v: e * x ** int(e.mid().floor().unique_fmpz() - 1)
                       if e.is_integer() and e.is_exact() else e * v / x, 3, 1)(x, e, v)
    de = np.frompyfunc(lambda x, v: v * x.log() if x > 0 else arb(0), 2, 1)(x, v)
    return [dx, de]


def _pow_second(x: list[Any], v: Any) -> list[list[Any]]:
    a, e = x
    with np.errstate(all="ignore"):
        la = np.log(np.abs(a))
        saa = e * (e - 1) * np.abs(a) ** (e - 2)
        sae = np.abs(a) ** (e - 1) * (1 + e * la)
        see = np.abs(v) * la * la
    return [[np.nan_to_num(saa, nan=np.inf), np.nan_to_num(sae, nan=np.inf)],
            [np.nan_to_num(sae, nan=np.inf), np.nan_to_num(see, nan=np.inf)]]


def _where(x: Any, positive: Any, negative: Any) -> Any:
    """Per element of ``x`` (kept off its kink by the op's check): ``positive`` where x > 0, else ``negative``."""
    out: Any = np.where(floats(x) > 0, positive, negative)
    return out


# No kernel for an op whose engines rebuild its partial from its rounded output (tanh, sigmoid: the op
# row's partial_abs): the scalar tape keeps what that loses apart from the precision bound (the precision
# verdict's second bound), which this sweep does not carry; graphs with such an op run on the tape.
SCALAR: dict[str, Kernel] = {
    "add": Kernel(lambda a: a[0] + a[1], lambda a, v: [1, 1]),
    "sub": Kernel(lambda a: a[0] - a[1], lambda a, v: [1, -1]),
    "mul": Kernel(lambda a: a[0] * a[1], lambda a, v: [a[1], a[0]]),
    "div": Kernel(lambda a: a[0] / a[1], lambda a, v: [1 / a[1], -v / a[1]],
                  lambda x, v: [[0 * v, -1 / x[1] ** 2], [-1 / x[1] ** 2, 2 * x[0] / x[1] ** 3]], _nonzero_divisor),
    "neg": Kernel(lambda a: -a[0], lambda a, v: [-1], lambda x, v: [[0 * v]]),
    "exp": Kernel(lambda a: _exp(a[0]), lambda a, v: [v], lambda x, v: [[np.exp(x[0])]]),
    "log": Kernel(lambda a: _log(a[0]), lambda a, v: [1 / a[0]], lambda x, v: [[-1 / x[0] ** 2]], _positive),
    "sin": Kernel(lambda a: _sin(a[0]), lambda a, v: [_cos(a[0])], lambda x, v: [[-np.sin(x[0])]]),
    "cos": Kernel(lambda a: _cos(a[0]), lambda a, v: [-_sin(a[0])], lambda x, v: [[-np.cos(x[0])]]),
    "sqrt": Kernel(lambda a: _sqrt(a[0]), lambda a, v: [1 / (2 * v)], lambda x, v: [[-1 / (4 * v**3)]], _positive),
    "pow": Kernel(_pow_value, _pow_partials, _pow_second, _pow_check),
    "relu": Kernel(lambda a: _where(a[0], a[0], arb(0)), lambda a, v: [_where(a[0], arb(1), arb(0))], None, _off_kink),
    "abs": Kernel(lambda a: _where(a[0], a[0], -a[0]), lambda a, v: [_where(a[0], arb(1), arb(-1))], None, _off_kink),
}
_RATIONAL = frozenset({"add", "sub", "mul"})


def elementwise(tape: Tape, name: str, args: Sequence[Arr], shape: tuple[int, ...], expand: bool = False) -> Arr:
    """A scalar op element by element with NumPy broadcasting. ``expand``: broadcast arguments as per-copy
    nodes, as a graph's element-wise step does; otherwise a broadcast argument is one node used many
    times, as inside the lowering of softmax."""
    op, kernel = OPS[name], SCALAR[name]
    if expand:
        args = [tape.copy(a, shape) if a.node is not None and a.value.shape != shape else a for a in args]
    vals = [np.broadcast_to(a.value, shape) for a in args]
    errs = [np.broadcast_to(a.err, shape) for a in args]
    varying = [a.node is not None for a in args]
    if kernel.check is not None:
        kernel.check(vals, varying)
    value = np.asarray(kernel.value(vals), dtype=object).reshape(shape)
    fv = floats(value)
    if not np.all(np.isfinite(fv)):
        raise Unsupported(f"{name} is not finite in float64 here")
    fx = [np.broadcast_to(midpoints(a), shape) for a in args]
    partials = kernel.partials(vals, value)

    def magnitude(p: Any) -> Any:
        if isinstance(p, int):
            return abs(p)
        known = fv if p is value else next((f for v, f in zip(vals, fx, strict=True) if p is v), None)
        return np.abs(known if known is not None else floats(np.broadcast_to(p, shape)))

    mags = [magnitude(p) for p in partials]
    if name in _RATIONAL:
        err = np.abs(fv)
        perr: list[Any] = [errs[1], errs[0]] if name == "mul" else [0.0, 0.0]
    else:
        err = max(1.0, op.ulps) * np.abs(fv)
        if kernel.second is not None and any(np.any(e) for e in errs):
            second = kernel.second(fx, fv)
            moved = [sum((np.abs(s) * e for s, e in zip(row, errs, strict=True)), np.zeros(shape)) for row in second]
        else:
            moved = [0.0] * len(args)
        perr = [moved[k] + max(1.0, op.partial_ulps) * mags[k] for k in range(len(args))]
    for k in range(len(args)):
        err = err + mags[k] * errs[k]
    err = np.broadcast_to(err, shape)
    if not any(varying):
        return Arr(value, err, f=fv)
    shares = [(partials[k], mags[k], perr[k], a.value.shape) for k, a in enumerate(args)]

    def back(g: Any, ge: Any, ag: Any) -> list[tuple[Any, Any]]:
        out = []
        for (p, mag, pe, source), a in zip(shares, args, strict=True):
            if a.node is None:
                out.append((None, None))
                continue
            gp = g * p if not isinstance(p, int) else (g if p == 1 else -g)
            out.append((_unbroadcast(gp, source), _unbroadcast(mag * ge + 2 * ag * mag + ag * pe, source)))
        return out

    out = tape.push(value, err, [a.node for a in args], back)
    return Arr(out.value, out.err, out.node, f=fv)


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
    return tape.push(v.reshape(out_shape), e.reshape(out_shape), [x.node], back)


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
