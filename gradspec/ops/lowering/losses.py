"""Losses lowered to scalar ops: the element-wise definitions of the rows in :mod:`gradspec.ops.loss_rows`.

Each loss is a tensor of per-element (or per-sample) terms, then reduced as PyTorch's ``reduction=``
says: ``"mean"`` (the default), ``"sum"``, ``"none"`` (the terms themselves), and for ``kl_div`` also
``"batchmean"`` (the sum over the first axis' size). A target that is data (a Fraction) is folded into
the terms as a constant, so a zero weight leaves its term out, as ``0 * log 0 = 0`` asks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from gradspec.ops.lowering import Scalars, _lse, _sum, obj
from gradspec.ops.lowering.layers import _index

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "huber_loss", "kl_div",
           "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss"]

Array = Any  # a NumPy object array of scalar nodes (or Fractions, for data)
Kw = dict[str, Any]
_ONE = Fraction(1)


def _reduce(b: Scalars, terms: Array, kw: Kw) -> Array:
    how = kw["reduction"]
    if how == "none":
        return terms
    total = _sum(b, list(terms.flat))
    if how == "sum":
        return obj(total)
    count = terms.shape[0] if how == "batchmean" else terms.size
    return obj(b.op("div", total, Fraction(count)))


def _pointwise(b: Scalars, args: Sequence[Array], kw: Kw, term: Callable[[Any, Any], Any]) -> Array:
    a, t = args
    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape):
        out[index] = term(a[index], t[index])
    return _reduce(b, out, kw)


def _const(v: Any) -> bool:
    return isinstance(v, Fraction | int)


def mse_loss(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    def term(a: Any, t: Any) -> Any:
        d = b.op("sub", a, t)
        return b.op("mul", d, d)

    return _pointwise(b, args, kw, term)


def l1_loss(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """|a - t|: abs's kink at a = t (abs'(0) = 0, as torch's sign(0))."""
    return _pointwise(b, args, kw, lambda a, t: b.op("abs", b.op("sub", a, t)))


def _huber(b: Scalars, d: Any, delta: Fraction) -> Any:
    """m (d - m/2) with m = clamp(d, -delta, delta) = d - relu(d - delta) + relu(-d - delta): 0.5 d^2 inside,
    delta (|d| - delta/2) outside; |d| = delta is relu's kink (first derivative continuous there)."""
    m = b.op("add", b.op("sub", d, b.op("relu", b.op("sub", d, delta))), b.op("relu", b.op("sub", b.op("neg", d), delta)))
    return b.op("mul", m, b.op("sub", d, b.op("div", m, Fraction(2))))


def huber_loss(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    delta = Fraction(kw["delta"])
    return _pointwise(b, args, kw, lambda a, t: _huber(b, b.op("sub", a, t), delta))


def smooth_l1_loss(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """huber(beta) / beta; beta = 0 is |d| (torch's l1)."""
    beta = Fraction(kw["beta"])
    if not beta:
        return l1_loss(b, args, kw, shape)
    return _pointwise(b, args, kw, lambda a, t: b.op("div", _huber(b, b.op("sub", a, t), beta), beta))




def nll_loss(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """-logp[n, target_n] per sample; the targets are data (integers)."""
    logp, target = args
    terms = np.empty(logp.shape[:1], dtype=object)
    for n in range(logp.shape[0]):
        terms[n] = b.op("neg", logp[n, _index(target[n], logp.shape[1], "nll_loss: target")])
    return _reduce(b, terms, kw)


def cross_entropy(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """logsumexp(z_n) - z_n[target_n] per sample; with label smoothing e, (1 - e) of that plus e times
    logsumexp(z_n) - mean(z_n). A target of the logits' shape holds probabilities t: sum_c t'_c
    (logsumexp(z_n) - z_nc) with t' = (1 - e) t + e / C. Targets are data."""
    z, target = args
    classes, e = z.shape[1], Fraction(kw["label_smoothing"])
    terms = np.empty(z.shape[:1], dtype=object)
    for n in range(z.shape[0]):
        row = list(z[n])
        lse = _lse(b, row)
        if target.ndim == 2:
            weights = [(1 - e) * Fraction(t) + e / classes for t in target[n]]
            terms[n] = _sum(b, [b.op("mul", b.op("sub", lse, x), w) for x, w in zip(row, weights, strict=True) if w])
            continue
        nll = b.op("sub", lse, z[n, _index(target[n], classes, "cross_entropy: target")])
        if e:
            smooth = b.op("sub", lse, b.op("div", _sum(b, row), Fraction(classes)))
            nll = b.op("add", b.op("mul", nll, 1 - e), b.op("mul", smooth, e))
        terms[n] = nll
    return _reduce(b, terms, kw)


def _weighted(b: Scalars, w: Any, x: Any) -> Any | None:
    """w * x, or None where w is the constant 0 (the term is absent)."""
    if _const(w):
        return None if w == 0 else x if w == 1 else b.op("mul", x, Fraction(w))
    return b.op("mul", x, w)


def _plus(b: Scalars, terms: list[Any]) -> Any:
    present = [t for t in terms if t is not None]
    return _sum(b, present)


def binary_cross_entropy(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """-(y log p + (1 - y) log(1 - p)) for p in (0, 1); torch clamps each log at -100, which matters only
    for p within e^-100 of 0 or 1."""
    def term(p: Any, y: Any) -> Any:
        rest = _ONE - y if _const(y) else b.op("sub", _ONE, y)
        parts = [_weighted(b, y, b.op("log", p)), _weighted(b, rest, b.op("log", b.op("sub", _ONE, p)))]
        return b.op("neg", _plus(b, parts))

    return _pointwise(b, args, kw, term)


def binary_cross_entropy_with_logits(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """(1 - y) z - logsigmoid(z), which is -(y log sigmoid(z) + (1 - y) log sigmoid(-z))."""
    def term(z: Any, y: Any) -> Any:
        rest = _ONE - y if _const(y) else b.op("sub", _ONE, y)
        first = _weighted(b, rest, z)
        tail = b.op("logsigmoid", z)
        return b.op("neg", tail) if first is None else b.op("sub", first, tail)

    return _pointwise(b, args, kw, term)


def kl_div(b: Scalars, args: Sequence[Array], kw: Kw, shape: tuple[int, ...]) -> Array:
    """Pointwise p (log p - logq), with xlogy(p, p) so that p = 0 contributes 0; ``log_target=1``: the
    target is log p, and the term exp(log p) (log p - logq)."""
    def term(logq: Any, p: Any) -> Any:
        if kw["log_target"]:
            return b.op("mul", b.op("exp", p), b.op("sub", p, logq))
        if _const(p) and p == 0:
            return Fraction(0)
        return b.op("sub", b.op("xlogy", p, p), b.op("mul", p, logq))

    return _pointwise(b, args, kw, term)
