"""Tensor ops lowered to scalar ops: a tensor is a NumPy object array of scalar nodes.

Each function here is the element-wise definition of one tensor op in terms of the scalar op table
(softmax as ``exp(x_i - c) / sum_j exp(x_j - c)``). The same definition runs on two kinds of scalar:
the exact tape of :mod:`gradspec.reference.tensor` (so the reference differentiates exactly this) and
a micrograd-style engine's Values (so a scalar engine runs tensor cases as a tensor of Values). A
backend is any object with ``op(name, *args)`` (args are its nodes or :class:`~fractions.Fraction`
constants), ``shift(nodes)``, a constant to subtract before ``exp`` or None: a float engine needs
it to keep ``exp`` finite for large logits; the exact tape does not, and the result is the same
function either way, since softmax and logsumexp are invariant under the shift; and ``peek(node)``,
the node's value at the point (a float, or the tape's exact number), for the branches of an algorithm
whose result does not depend on them (a pivot's row in elimination, :mod:`.linalg`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

__all__ = ["Scalars", "elementwise", "log_softmax", "logsumexp", "matmul", "maximum", "mean", "minimum", "obj",
           "permute", "reshape", "softmax", "total", "transpose"]

Array = Any  # a NumPy object array of scalar nodes (or Fractions, for data)


class Scalars(Protocol):
    def op(self, name: str, *args: Any) -> Any: ...

    def shift(self, xs: Sequence[Any]) -> Fraction | None: ...

    def peek(self, x: Any) -> Any: ...


def obj(x: Any) -> Array:
    """A 0-d object array holding ``x`` (np.asarray would look inside sequences and numbers)."""
    out = np.empty((), dtype=object)
    out[()] = x
    return out


def _sum(b: Scalars, xs: Sequence[Any]) -> Any:
    """Pairwise: the graph stays log(n) deep, as a float engine's own reductions are. An empty sum
    (a convolution window entirely in the padding) is the constant 0."""
    xs = list(xs)
    if not xs:
        return Fraction(0)
    while len(xs) > 1:
        pairs = [b.op("add", xs[i], xs[i + 1]) for i in range(0, len(xs) - 1, 2)]
        xs = pairs + ([xs[-1]] if len(xs) % 2 else [])
    return xs[0]


def _along(x: Array, axis: int | None, fn: Callable[[list[Any]], Any]) -> Array:
    """``fn`` applied to every lane along ``axis`` (all elements when None); the axis is dropped."""
    if axis is None:
        return obj(fn(list(x.flat)))
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape[:-1], dtype=object)
    for index in np.ndindex(out.shape):
        out[index] = fn(list(moved[index]))
    return out


def _lanes(x: Array, axis: int, fn: Callable[[list[Any]], list[Any]]) -> Array:
    """``fn`` maps every lane along ``axis`` to a lane of the same length."""
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape, dtype=object)
    for index in np.ndindex(moved.shape[:-1]):
        out[index] = _filled(fn(list(moved[index])))
    return np.moveaxis(out, -1, axis)


def _filled(items: list[Any]) -> Array:
    out = np.empty(len(items), dtype=object)
    for i, v in enumerate(items):
        out[i] = v
    return out


def elementwise(b: Scalars, name: str, args: Sequence[Array], shape: tuple[int, ...]) -> Array:
    """A scalar op applied element by element, with NumPy broadcasting."""
    expand = getattr(b, "expand", None)
    spread = [expand(a, shape) if expand is not None and a.shape != shape else np.broadcast_to(a, shape) for a in args]
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = b.op(name, *(a[index] for a in spread))
    return out


def _axis(x: Array, kw: dict[str, Any]) -> int | None:
    axis = kw.get("axis")
    return None if axis is None else axis % x.ndim


def total(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return _along(args[0], _axis(args[0], kw), lambda xs: _sum(b, xs))


def mean(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return _along(args[0], _axis(args[0], kw), lambda xs: b.op("div", _sum(b, xs), Fraction(len(xs))))


def _max2(b: Scalars, m: Any, y: Any) -> Any:
    # max(m, y) = y + relu(m - y): a tie is relu's kink, so ties get relu's declared convention.
    return b.op("add", y, b.op("relu", b.op("sub", m, y)))


def _min2(b: Scalars, m: Any, y: Any) -> Any:
    return b.op("sub", y, b.op("relu", b.op("sub", y, m)))


def _fold(b: Scalars, fn: Callable[[Scalars, Any, Any], Any], xs: list[Any]) -> Any:
    while len(xs) > 1:
        xs = [fn(b, xs[i], xs[i + 1]) for i in range(0, len(xs) - 1, 2)] + ([xs[-1]] if len(xs) % 2 else [])
    return xs[0]


def maximum(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return _along(args[0], _axis(args[0], kw), lambda xs: _fold(b, _max2, xs))


def minimum(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return _along(args[0], _axis(args[0], kw), lambda xs: _fold(b, _min2, xs))


def _exps(b: Scalars, xs: list[Any]) -> tuple[list[Any], Fraction | None]:
    c = b.shift(xs)
    return [b.op("exp", x if c is None else b.op("sub", x, c)) for x in xs], c


def _lse(b: Scalars, xs: list[Any]) -> Any:
    es, c = _exps(b, xs)
    out = b.op("log", _sum(b, es))
    return out if c is None else b.op("add", out, c)


def logsumexp(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return _along(args[0], _axis(args[0], kw), lambda xs: _lse(b, xs))


def softmax(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    def lane(xs: list[Any]) -> list[Any]:
        es, _ = _exps(b, xs)
        s = _sum(b, es)
        return [b.op("div", e, s) for e in es]

    return _lanes(args[0], kw["axis"] % args[0].ndim, lane)


def log_softmax(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    def lane(xs: list[Any]) -> list[Any]:
        lse = _lse(b, xs)
        return [b.op("sub", x, lse) for x in xs]

    return _lanes(args[0], kw["axis"] % args[0].ndim, lane)






def reshape(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return args[0].reshape(shape)


def transpose(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return np.swapaxes(args[0], -1, -2)


def permute(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return np.transpose(args[0], kw["axes"])


def matmul(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    x, y = args
    x2 = x if x.ndim > 1 else x[None, :]
    y2 = y if y.ndim > 1 else y[:, None]
    batch = np.broadcast_shapes(x2.shape[:-2], y2.shape[:-2])
    xs = np.broadcast_to(x2, batch + x2.shape[-2:])
    ys = np.broadcast_to(y2, batch + y2.shape[-2:])
    m, k, n = x2.shape[-2], x2.shape[-1], y2.shape[-1]
    out = np.empty((*batch, m, n), dtype=object)
    for idx in np.ndindex(batch):
        for i in range(m):
            for j in range(n):
                out[(*idx, i, j)] = _sum(b, [b.op("mul", xs[(*idx, i, t)], ys[(*idx, t, j)]) for t in range(k)])
    return out.reshape(shape)
