"""The reductions and scans written in scalar ops (:mod:`gradspec.ops.reduce_rows`).

Every piecewise op is built from relu, as the basic ``max`` reduction is (:func:`_max2`): a tie is
relu's kink at 0, so the exact tape records it and a case must declare it (``kink: convention`` or
``kink: any``) exactly as it must for relu. Sorting is a network of compare-exchanges whose two outputs
share one relu node, so at a tie the subgradients are the convex hull of the two routings, and the
convention (relu'(0) = 0) keeps tied elements in their order, as a stable sort does.

The index outputs (``sort(x)[1]``, ``cummax(x)[1]``, ...) are chosen with ``where`` on the values at
the point: integers whose derivative is 0 everywhere, as the libraries' integer tensors are; at a tie
the comparison is where's kink.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from gradspec.ops.lowering import Array, Scalars, _along, _axis, _fold, _lanes, _lse, _max2, _min2, _sum

__all__ = ["cummax", "cummin", "cumprod", "cumsum", "deviation", "logcumsumexp", "norm", "product", "sort",
           "topk", "variance"]


def product(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """Pairwise products: only multiplications, so the derivative is exact where a factor is 0."""
    return _along(args[0], _axis(args[0], kw), lambda xs: _fold(b, lambda b, x, y: b.op("mul", x, y), xs))


def _variance(b: Scalars, xs: list[Any], correction: int) -> Any:
    # Two passes, as the libraries compute it: the mean, then the squared deviations from it.
    n = Fraction(len(xs))
    mu = b.op("div", _sum(b, xs), n)
    ds = [b.op("sub", x, mu) for x in xs]
    return b.op("div", _sum(b, [b.op("mul", d, d) for d in ds]), n - correction)


def variance(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return _along(args[0], _axis(args[0], kw), lambda xs: _variance(b, xs, kw["correction"]))


def deviation(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return _along(args[0], _axis(args[0], kw), lambda xs: b.op("sqrt", _variance(b, xs, kw["correction"])))


def norm(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """ord 1: sum |x|; ord 2: sqrt(sum x*x); ord "inf": the largest |x| (a relu fold: ties are kinks)."""
    order = kw["ord"]

    def lane(xs: list[Any]) -> Any:
        if order == 2:
            return b.op("sqrt", _sum(b, [b.op("mul", x, x) for x in xs]))
        magnitudes = [b.op("abs", x) for x in xs]
        return _sum(b, magnitudes) if order == 1 else _fold(b, _max2, magnitudes)

    return _along(args[0], _axis(args[0], kw), lane)


def _scan(b: Scalars, args: Sequence[Array], kw: dict[str, Any], step: Any) -> Array:
    """A running fold along the axis, one element after another, as the libraries' scans run."""
    def lane(xs: list[Any]) -> list[Any]:
        out = [xs[0]]
        for x in xs[1:]:
            out.append(step(out[-1], x))
        return out

    return _lanes(args[0], kw["axis"] % args[0].ndim, lane)


def cumsum(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return _scan(b, args, kw, lambda s, x: b.op("add", s, x))


def cumprod(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """Prefix products p_k = p_(k-1) * x_k: no division, so every derivative is exact at a zero factor."""
    return _scan(b, args, kw, lambda p, x: b.op("mul", p, x))


def logcumsumexp(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """Each prefix's own log-sum-exp, shifted by that prefix's largest element in a float engine: an early
    prefix far below a later element keeps its own scale (and its derivative)."""
    return _lanes(args[0], kw["axis"] % args[0].ndim, lambda xs: [_lse(b, xs[:k + 1]) for k in range(len(xs))])


def _running(b: Scalars, args: Sequence[Array], kw: dict[str, Any], larger: bool) -> Array:
    # m_k = max(m_(k-1), x_k) = x_k + relu(m_(k-1) - x_k): at a tie x_k takes the gradient, and the index
    # is the latest one, as torch's cummax and cummin report it.
    def lane(xs: list[Any]) -> list[Any]:
        values: list[Any] = [xs[0]]
        indices: list[Any] = [Fraction(0)]
        for k, x in enumerate(xs[1:], start=1):
            m = values[-1]
            values.append(_max2(b, m, x) if larger else _min2(b, m, x))
            if kw["output"]:  # only then: an engine without where still runs the values
                ahead = (m, x) if larger else (x, m)  # the running value stays where it beats x strictly
                indices.append(b.op("where", *ahead, indices[-1], Fraction(k)))
        return indices if kw["output"] else values

    return _lanes(args[0], kw["axis"] % args[0].ndim, lane)


def cummax(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return _running(b, args, kw, larger=True)


def cummin(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return _running(b, args, kw, larger=False)


def _sorted(b: Scalars, xs: list[Any], descending: bool, indices: bool) -> list[Any]:
    """Odd-even transposition sort: n rounds of compare-exchanges of neighbours. A compare-exchange's two
    outputs are a - r and b + r with one r = relu(a - b) (descending: a + r and b - r, r = relu(b - a)), so
    at a tie relu'(0) = 0 leaves the pair in order: a stable sort, torch's ``stable=True``."""
    vs = list(xs)
    ix: list[Any] = [Fraction(i) for i in range(len(xs))]
    for r in range(len(vs)):
        for i in range(r % 2, len(vs) - 1, 2):
            u, v = vs[i], vs[i + 1]
            first, second = (v, u) if descending else (u, v)  # swap when first > second
            gap = b.op("relu", b.op("sub", first, second))
            if descending:
                vs[i], vs[i + 1] = b.op("add", u, gap), b.op("sub", v, gap)
            else:
                vs[i], vs[i + 1] = b.op("sub", u, gap), b.op("add", v, gap)
            if indices:
                ix[i], ix[i + 1] = (b.op("where", first, second, ix[i + 1], ix[i]),
                                    b.op("where", first, second, ix[i], ix[i + 1]))
    return ix if indices else vs


def sort(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return _lanes(args[0], kw["axis"] % args[0].ndim,
                  lambda xs: _sorted(b, xs, bool(kw["descending"]), bool(kw["output"])))


def topk(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """The k largest, largest first: the first k of the descending sort (a tie at the k-th is a kink)."""
    import numpy as np

    axis = kw["axis"] % args[0].ndim
    full = _lanes(args[0], axis, lambda xs: _sorted(b, xs, True, bool(kw["output"])))
    return np.take(full, range(kw["k"]), axis=axis)
