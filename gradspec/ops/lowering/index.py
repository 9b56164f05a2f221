"""Indexing and shape ops lowered to scalar ops (the rows of :mod:`gradspec.ops.index_rows`).

Most of these ops only move elements: their lowering is NumPy's own indexing of an object array of
scalar nodes, so an output element *is* the input's node and its gradient flows unchanged. Elements an
op makes up (pad's value, the zeros of tril and triu, one_hot's 0/1) are exact constants with no
gradient. Index tensors are integer data: each element is checked to be an integer in range, and a
bad one is a :class:`~gradspec.errors.DomainError` at the op's column.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from gradspec.errors import DomainError
from gradspec.ops.lowering import Array, Scalars, _sum, obj
from gradspec.ops.shapes.index import einsum_terms, index_items, index_plan

__all__ = ["concat", "diagonal", "einsum", "expand", "flip", "gather", "index", "index_select", "one_hot", "pad",
           "roll", "select", "squeeze", "stack", "tril", "triu", "unsqueeze"]

Kw = dict[str, Any]
Shape = tuple[int, ...]


def _array(x: Any) -> Array:
    """NumPy indexing that picks one element returns the element itself: keep it an array."""
    return x if isinstance(x, np.ndarray) else obj(x)


def _positions(b: Scalars, op: str, idx: Array, size: int) -> Array:
    """Integer data as positions in ``[0, size)``, or a DomainError naming the bad element."""
    out = np.empty(idx.shape, dtype=np.int64)
    for at in np.ndindex(idx.shape):
        v = Fraction(idx[at])
        if v.denominator != 1 or not 0 <= v < size:
            where = f" at {list(at)}" if at else ""
            raise DomainError(f"{op}: index {float(v):g}{where} is not an integer in [0, {size})",
                              col=getattr(b, "col", 0) or None)
        out[at] = int(v)
    return out


def select(items: Sequence[Any], shape: Shape) -> tuple[Any, ...]:
    """A subscript as NumPy takes it (the Ellipsis spelled out); the shape rule has checked it."""
    return tuple(index_plan("index", shape, items))


def index(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    x = args[0]
    return _array(x[select(index_items(kw["spec"]), x.shape)])


def gather(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    """out[i][j] = x[i][idx[i][j]] along ``axis`` (torch.gather)."""
    x, idx = args
    axis = kw["axis"] % x.ndim
    pos = _positions(b, "gather", idx, x.shape[axis])
    out = np.empty(shape, dtype=object)
    for at in np.ndindex(shape):
        out[at] = x[(*at[:axis], pos[at], *at[axis + 1:])]
    return out


def index_select(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    x, idx = args
    axis = kw["axis"] % x.ndim
    return np.take(x, _positions(b, "index_select", idx, x.shape[axis]), axis=axis)


def stack(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    return _copy(np.stack(list(args), axis=kw["axis"]))


def concat(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    return _copy(np.concatenate(list(args), axis=kw["axis"]))


def _copy(x: Array) -> Array:
    # np.stack of 0-d object arrays holding nodes keeps them as they are; an explicit object array
    # guards against NumPy looking inside an element.
    out = np.empty(x.shape, dtype=object)
    for at in np.ndindex(x.shape):
        out[at] = x[at]
    return out


def pad(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    x = args[0]
    sizes = kw["pad"]
    out = np.full(shape, Fraction(kw["value"]), dtype=object)
    window = [slice(None)] * x.ndim
    for k in range(len(sizes) // 2):
        axis = x.ndim - 1 - k
        window[axis] = slice(sizes[2 * k], sizes[2 * k] + x.shape[axis])
    out[tuple(window)] = x
    return out


def flip(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    return np.flip(args[0], axis=kw["axis"])


def roll(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    return np.roll(args[0], kw["shift"], axis=kw["axis"])


def _triangle(x: Array, k: int, lower: bool) -> Array:
    rows, cols = x.shape[-2:]
    out = x.copy()
    for i in range(rows):
        for j in range(cols):
            if (j - i > k) if lower else (j - i < k):
                out[..., i, j] = Fraction(0)
    return out


def tril(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    return _triangle(args[0], kw["k"], lower=True)


def triu(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    return _triangle(args[0], kw["k"], lower=False)


def diagonal(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    return _copy(np.diagonal(args[0], axis1=0, axis2=1))


def expand(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    """Broadcasting copies; the exact tape gives each copy a node of its own (``expand``), so an
    engine that forgets to sum an expanded axis in its backward is caught as it is for broadcasting."""
    spread = getattr(b, "expand", None)
    x = args[0]
    return spread(x, shape) if spread is not None and x.shape != shape else _copy(np.broadcast_to(x, shape))


def squeeze(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    return args[0].reshape(shape)


def unsqueeze(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    return args[0].reshape(shape)


def one_hot(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    classes = kw["classes"]
    pos = _positions(b, "one_hot", args[0], classes)
    out = np.full(shape, Fraction(0), dtype=object)
    for at in np.ndindex(pos.shape):
        out[(*at, pos[at])] = Fraction(1)
    return out


def einsum(b: Scalars, args: Sequence[Array], kw: Kw, shape: Shape) -> Array:
    """Each output element is the (pairwise) sum over the letters not in the output of the product
    of the operands' elements, multiplied left to right."""
    terms, rhs, sizes = einsum_terms("einsum", kw["equation"], [a.shape for a in args])
    summed = sorted({c for t in terms for c in t} - set(rhs))
    out = np.empty(shape, dtype=object)
    for at in np.ndindex(shape):
        fixed = dict(zip(rhs, at, strict=True))
        products = []
        for inner in np.ndindex(*(sizes[c] for c in summed)):
            value = {**fixed, **dict(zip(summed, inner, strict=True))}
            factors = [a[tuple(value[c] for c in t)] for a, t in zip(args, terms, strict=True)]
            product = factors[0]
            for f in factors[1:]:
                product = b.op("mul", product, f)
            products.append(product)
        out[at] = _sum(b, products)
    return out
