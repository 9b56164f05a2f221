"""Normalisation and layers lowered to scalar ops: the element-wise definitions of the rows in
:mod:`gradspec.ops.layer_rows`.

Normalisations share one form, the two-pass biased variance of their group of elements:
``(x - mean) / sqrt(var + eps)``, then the optional per-channel affine ``y * w + b``. Convolutions are
cross-correlations whose padding contributes no terms; max pooling folds windows through the basic
lowering's relu-based maximum, so a tie is relu's kink, and attention is a softmax over each row of
scores written as :func:`gradspec.ops.lowering.softmax` writes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from gradspec.errors import DomainError
from gradspec.ops.lowering import Scalars, _exps, _fold, _lanes, _max2, _sum

__all__ = ["attention", "avg_pool2d", "batch_norm", "conv", "conv_transpose2d", "embedding", "group_norm",
           "instance_norm", "layer_norm", "linear", "max_pool2d", "rms_norm"]

Array = Any  # a NumPy object array of scalar nodes (or Fractions, for data)
Kw = dict[str, Any]


def _standardize(b: Scalars, xs: list[Any], eps: Fraction) -> list[Any]:
    n = Fraction(len(xs))
    mu = b.op("div", _sum(b, xs), n)
    ds = [b.op("sub", x, mu) for x in xs]
    var = b.op("div", _sum(b, [b.op("mul", d, d) for d in ds]), n)
    scale = b.op("sqrt", b.op("add", var, eps) if eps else var)
    return [b.op("div", d, scale) for d in ds]


def _groups(b: Scalars, lanes: Array, eps: Fraction) -> Array:
    """Standardise every row of ``lanes`` (one group of elements per row)."""
    out = np.empty(lanes.shape, dtype=object)
    for i in range(lanes.shape[0]):
        out[i] = _filled(_standardize(b, list(lanes[i]), eps))
    return out


def _filled(items: list[Any]) -> Array:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _affine(b: Scalars, y: Array, params: Sequence[Array], axis: int) -> Array:
    """``y * w + b`` with ``w`` and ``b`` (either absent) along ``axis``."""
    if not params:
        return y
    out = np.empty(y.shape, dtype=object)
    for index in np.ndindex(y.shape):
        v = b.op("mul", y[index], params[0][index[axis]])
        out[index] = b.op("add", v, params[1][index[axis]]) if len(params) > 1 else v
    return out


def layer_norm(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """(x - mean) / sqrt(var + eps) over the last axis (biased variance), then ``* w + b`` if given."""
    x = args[0]
    y = _lanes(x, x.ndim - 1, lambda xs: _standardize(b, xs, Fraction(kw["eps"])))
    return _affine(b, y, args[1:], x.ndim - 1)


def batch_norm(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """Training statistics: each channel (axis 1) standardised over the batch and spatial axes."""
    x = args[0]
    moved = np.moveaxis(x, 1, 0)
    y = _groups(b, moved.reshape(moved.shape[0], -1), Fraction(kw["eps"])).reshape(moved.shape)
    return _affine(b, np.moveaxis(y, 0, 1), args[1:], 1)


def group_norm(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """Each sample's channels in ``groups`` groups, each standardised over its channels and spatial axes."""
    x = args[0]
    groups = kw["groups"]
    y = _groups(b, x.reshape(x.shape[0] * groups, -1), Fraction(kw["eps"])).reshape(x.shape)
    return _affine(b, y, args[1:], 1)


def instance_norm(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """Each sample's each channel standardised over its spatial axes."""
    x = args[0]
    return _groups(b, x.reshape(x.shape[0] * x.shape[1], -1), Fraction(kw["eps"])).reshape(x.shape)


def rms_norm(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """x / sqrt(mean(x^2) + eps) over the last axis, then ``* w`` if given."""
    x, eps = args[0], Fraction(kw["eps"])

    def lane(xs: list[Any]) -> list[Any]:
        ms = b.op("div", _sum(b, [b.op("mul", v, v) for v in xs]), Fraction(len(xs)))
        r = b.op("sqrt", b.op("add", ms, eps) if eps else ms)
        return [b.op("div", v, r) for v in xs]

    return _affine(b, _lanes(x, x.ndim - 1, lane), args[1:], x.ndim - 1)


def linear(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """y[..., o] = sum_i x[..., i] w[o, i] (+ bias[o])."""
    x, w = args[0], args[1]
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        o = index[-1]
        y = _sum(b, [b.op("mul", x[(*index[:-1], i)], w[o, i]) for i in range(w.shape[1])])
        out[index] = b.op("add", y, args[2][o]) if len(args) > 2 else y
    return out


def _index(value: Any, size: int, what: str) -> int:
    """A data element as an index in [0, size), or a domain error naming it."""
    if not isinstance(value, Fraction | int) or Fraction(value).denominator != 1 or not 0 <= value < size:
        shown = float(value) if isinstance(value, Fraction) else value
        raise DomainError(f"{what} {shown:g} is not an integer in [0, {size})")
    return int(value)


def embedding(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """The rows of ``table`` at the integer ``index`` (data)."""
    index, table = args
    out = np.empty(shape, dtype=object)
    for at in np.ndindex(index.shape):
        row = _index(index[at], table.shape[0], "embedding: index")
        for d in range(table.shape[1]):
            out[(*at, d)] = table[row, d]
    return out


def conv(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """conv1d and conv2d, cross-correlation: y[n, o, i] = sum_{c, p} x[n, g*C/g + c, i*s + p*d - pad]
    w[o, c, p] (+ bias[o]), g the group of ``o``; terms in the zero padding are absent."""
    x, w = args[0], args[1]
    s, pad, d = kw["stride"], kw["padding"], kw["dilation"]
    per_in, per_out = w.shape[1], shape[1] // kw["groups"]
    sizes, kernel = x.shape[2:], w.shape[2:]
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        n, o, at = index[0], index[1], index[2:]
        first = o // per_out * per_in
        terms = []
        for c in range(per_in):
            for k in np.ndindex(kernel):
                src = tuple(i * s + p * d - pad for i, p in zip(at, k, strict=True))
                if all(0 <= r < m for r, m in zip(src, sizes, strict=True)):
                    terms.append(b.op("mul", x[(n, first + c, *src)], w[(o, c, *k)]))
        y = _sum(b, terms)
        out[index] = b.op("add", y, args[2][o]) if len(args) > 2 else y
    return out


def conv_transpose2d(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """The adjoint of conv2d in x: y[n, o, i] = sum over input channels c of o's group and kernel taps p
    with i = r*s + p*d - pad of x[n, c, r] w[c, o mod O/g, p] (+ bias[o])."""
    x, w = args[0], args[1]
    s, pad, d = kw["stride"], kw["padding"], kw["dilation"]
    per_in, per_out = x.shape[1] // kw["groups"], w.shape[1]
    sizes, kernel = x.shape[2:], w.shape[2:]
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        n, o, at = index[0], index[1], index[2:]
        group, local = divmod(o, per_out)
        terms = []
        for c in range(group * per_in, (group + 1) * per_in):
            for k in np.ndindex(kernel):
                num = tuple(i + pad - p * d for i, p in zip(at, k, strict=True))
                src = tuple(v // s for v in num)
                if all(v % s == 0 and 0 <= r < m for v, r, m in zip(num, src, sizes, strict=True)):
                    terms.append(b.op("mul", x[(n, c, *src)], w[(c, local, *k)]))
        y = _sum(b, terms)
        out[index] = b.op("add", y, args[2][o]) if len(args) > 2 else y
    return out


def _windows(x: Array, kw: Kw, shape: tuple[int, ...]) -> Any:
    """Each output position of a 2-D pool over the last two axes, with its window's cells (those in the
    padding left out)."""
    k, pad = kw["kernel"], kw["padding"]
    s = k if kw["stride"] is None else kw["stride"]
    height, width = x.shape[-2:]
    for index in np.ndindex(shape):
        lead, (i, j) = index[:-2], index[-2:]
        cells = [x[(*lead, r, c)] for r in range(i * s - pad, i * s - pad + k) for c in range(j * s - pad, j * s - pad + k)
                 if 0 <= r < height and 0 <= c < width]
        yield index, cells


def avg_pool2d(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """The window's sum over kernel^2: padded cells count as zeros (torch's count_include_pad)."""
    out = np.empty(shape, dtype=object)
    for index, cells in _windows(args[0], kw, shape):
        out[index] = b.op("div", _sum(b, cells), Fraction(kw["kernel"] ** 2))
    return out


def max_pool2d(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """The window's maximum, folded pairwise through max(a, b) = b + relu(a - b): a tie is relu's kink.
    Padded cells are -inf, so they never win and are left out."""
    out = np.empty(shape, dtype=object)
    for index, cells in _windows(args[0], kw, shape):
        out[index] = _fold(b, _max2, cells)
    return out


def attention(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """softmax(q k^T * scale + mask) v over the last axis; scale defaults to 1/sqrt(E). ``causal=1`` leaves
    out the keys after each query (j > i), exactly (torch's boolean mask, -inf before the softmax)."""
    q, k, v = args[:3]
    length, keys = q.shape[-2], k.shape[-2]
    mask = np.broadcast_to(args[3], (*q.shape[:-1], keys)) if len(args) > 3 else None
    root = math.isqrt(q.shape[-1])
    out = np.empty(shape, dtype=object)
    for batch in np.ndindex(q.shape[:-2]):
        for i in range(length):
            scores = []
            for j in range(keys if not kw["causal"] else min(i + 1, keys)):
                dot = _sum(b, [b.op("mul", q[(*batch, i, e)], k[(*batch, j, e)]) for e in range(q.shape[-1])])
                if kw["scale"] is not None:
                    dot = b.op("mul", dot, Fraction(kw["scale"]))
                elif root * root == q.shape[-1]:
                    dot = b.op("div", dot, Fraction(root))
                else:
                    dot = b.op("div", dot, b.op("sqrt", Fraction(q.shape[-1])))
                scores.append(dot if mask is None else b.op("add", dot, mask[(*batch, i, j)]))
            es, _ = _exps(b, scores)
            total = _sum(b, es)
            ps = [b.op("div", e, total) for e in es]
            for f in range(v.shape[-1]):
                out[(*batch, i, f)] = _sum(b, [b.op("mul", p, v[(*batch, j, f)]) for j, p in enumerate(ps)])
    return out
