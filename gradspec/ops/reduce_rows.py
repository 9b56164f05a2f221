"""The tensor ops of one group of the op table: reductions and scans (prod, var, cumsum, sort, ...).

Each row is a :class:`~gradspec.ops.row.TensorOp`; :mod:`gradspec.ops.table` joins the groups into
``TENSOR_OPS``. Their element-wise definitions are in :mod:`gradspec.ops.lowering.reduce`. Keyword names
follow PyTorch (``axis`` is its ``dim``); ``norm``'s ``ord`` is 1, 2 or the string "inf".

The multi-output ops (sort, topk, cummax, cummin) return (values, indices); a bare call means the
values, ``op(...)[1]`` the indices, which every library returns as integers: they are cast to the
float dtype of the values, and have no derivative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradspec.ops import shapes as _shape
from gradspec.ops.rebuilt_tensor import scan_weights
from gradspec.ops.row import Keyword, TensorOp
from gradspec.ops.shapes import scans as _scans

__all__ = ["ROWS"]

_AXIS = Keyword("axis", "int", None)  # None: every element
_SCAN = Keyword("axis", "int")  # scans name their axis, as torch's dim= is required
_LAST = Keyword("axis", "int", -1)
_CORRECTION = Keyword("correction", "int", 1)
_OUTPUT = Keyword("output", "int", 0, internal=True)
_PAIR = ("values", "indices")


def _dims(kw: dict[str, Any]) -> dict[str, Any]:
    return {} if kw.get("axis") is None else {"dim": kw["axis"]}


def _pick(pair: Any, kw: dict[str, Any], like: Any) -> Any:
    """One output of a (values, indices) pair; the integer indices as ``like``'s float dtype."""
    if not kw["output"]:
        return pair[0]
    indices = pair[1]
    return indices.astype(like.dtype) if hasattr(indices, "astype") else indices.to(like.dtype)


def _torch_norm(t: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    order = float("inf") if kw["ord"] == "inf" else kw["ord"]
    return t.linalg.vector_norm(a[0], ord=order, dim=kw["axis"])


def _jax_norm(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    order = j.numpy.inf if kw["ord"] == "inf" else kw["ord"]
    return j.numpy.linalg.vector_norm(a[0], ord=order, axis=kw["axis"])


def _jax_running(j: Any, a: Sequence[Any], kw: dict[str, Any], larger: bool) -> Any:
    """lax.cummax / cummin for the values; the indices, which lax does not return, from lax's own scan: the
    latest position whose element equals the running value there (at a tie the latest, as torch's)."""
    x = a[0]
    axis = kw["axis"] % x.ndim
    values = (j.lax.cummax if larger else j.lax.cummin)(x, axis=axis)
    if not kw["output"]:
        return values
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    positions = j.numpy.arange(x.shape[axis]).reshape(shape)
    hits = j.numpy.where(x == values, positions, -1)
    return j.lax.cummax(hits, axis=axis).astype(x.dtype)


def _jax_sort(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    np = j.numpy
    down = bool(kw["descending"])
    if not kw["output"]:
        return np.sort(a[0], axis=kw["axis"], descending=down, stable=True)
    return np.argsort(a[0], axis=kw["axis"], descending=down, stable=True).astype(a[0].dtype)


def _tinygrad_sort(tg: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    values, indices = a[0].sort(kw["axis"], descending=bool(kw["descending"]))
    return _tinygrad_pair((values, indices), kw, a[0])


def _tinygrad_pair(pair: Any, kw: dict[str, Any], like: Any) -> Any:
    # detached: the indices are integers, and tinygrad fails differentiating the comparisons under them
    return pair[1].cast(like.dtype).detach() if kw["output"] else pair[0]


ROWS: tuple[TensorOp, ...] = (
    TensorOp("prod", 1, (_AXIS,), _shape.reduce, "reduce.product",
             lambda t, a, kw: a[0].prod(**_dims(kw)), lambda j, a, kw: j.numpy.prod(a[0], axis=kw["axis"]),
             "product of the elements (along axis), pairwise; exact where a factor is 0",
             tinygrad=lambda tg, a, kw: a[0].prod(kw["axis"])),
    TensorOp("var", 1, (_AXIS, _CORRECTION), _scans.variance, "reduce.variance",
             lambda t, a, kw: t.var(a[0], dim=kw["axis"], correction=kw["correction"]),
             lambda j, a, kw: j.numpy.var(a[0], axis=kw["axis"], ddof=kw["correction"]),
             "sum_i (x_i - mean)^2 / (n - correction) (along axis), two passes",
             tinygrad=lambda tg, a, kw: a[0].var(kw["axis"], correction=kw["correction"])),
    TensorOp("std", 1, (_AXIS, _CORRECTION), _scans.variance, "reduce.deviation",
             lambda t, a, kw: t.std(a[0], dim=kw["axis"], correction=kw["correction"]),
             lambda j, a, kw: j.numpy.std(a[0], axis=kw["axis"], ddof=kw["correction"]),
             "sqrt(var(x, axis, correction))",
             tinygrad=lambda tg, a, kw: a[0].std(kw["axis"], correction=kw["correction"])),
    # ord is 1, 2 or "inf": an "int" keyword whose choices add the string (torch's float('inf'))
    TensorOp("norm", 1, (Keyword("ord", "int", 2, choices=("inf",)), _AXIS), _scans.norm, "reduce.norm",
             _torch_norm, _jax_norm,
             "ord 1: sum |x_i|; ord 2: sqrt(sum x_i^2); ord \"inf\": max |x_i| (along axis); kinks at 0 and ties"),
    TensorOp("cumsum", 1, (_SCAN,), _scans.scan, "reduce.cumsum",
             lambda t, a, kw: t.cumsum(a[0], dim=kw["axis"]), lambda j, a, kw: j.numpy.cumsum(a[0], axis=kw["axis"]),
             "y_k = y_(k-1) + x_k along axis",
             tinygrad=lambda tg, a, kw: a[0].cumsum(kw["axis"])),
    TensorOp("cumprod", 1, (_SCAN,), _scans.scan, "reduce.cumprod",
             lambda t, a, kw: t.cumprod(a[0], dim=kw["axis"]), lambda j, a, kw: j.numpy.cumprod(a[0], axis=kw["axis"]),
             "y_k = y_(k-1) * x_k along axis (prefix products: exact at a zero factor)",
             tinygrad=lambda tg, a, kw: a[0].cumprod(kw["axis"])),
    TensorOp("logcumsumexp", 1, (_SCAN,), _scans.scan, "reduce.logcumsumexp",
             lambda t, a, kw: t.logcumsumexp(a[0], dim=kw["axis"]),
             lambda j, a, kw: j.lax.cumlogsumexp(a[0], axis=kw["axis"] % a[0].ndim),
             "y_k = log(sum_(i <= k) exp(x_i)) along axis, each prefix shifted by its own largest element",
             tinygrad=lambda tg, a, kw: a[0].logcumsumexp(kw["axis"]), rebuilt=scan_weights),
    TensorOp("cummax", 1, (_SCAN, _OUTPUT), _scans.scan, "reduce.cummax",
             lambda t, a, kw: _pick(t.cummax(a[0], dim=kw["axis"]), kw, a[0]),
             lambda j, a, kw: _jax_running(j, a, kw, larger=True),
             "m_k = x_k + relu(m_(k-1) - x_k) along axis; the index of the latest maximum (a tie: relu's kink)",
             tinygrad=lambda tg, a, kw: _tinygrad_pair(a[0].cummax(kw["axis"]), kw, a[0]),
             outputs=_PAIR),
    TensorOp("cummin", 1, (_SCAN, _OUTPUT), _scans.scan, "reduce.cummin",
             lambda t, a, kw: _pick(t.cummin(a[0], dim=kw["axis"]), kw, a[0]),
             lambda j, a, kw: _jax_running(j, a, kw, larger=False),
             "m_k = x_k - relu(x_k - m_(k-1)) along axis; the index of the latest minimum (a tie: relu's kink)",
             tinygrad=lambda tg, a, kw: _tinygrad_pair(a[0].cummin(kw["axis"]), kw, a[0]),
             outputs=_PAIR),
    TensorOp("sort", 1, (_LAST, Keyword("descending", "int", 0), _OUTPUT), _scans.scan, "reduce.sort",
             lambda t, a, kw: _pick(t.sort(a[0], dim=kw["axis"], descending=bool(kw["descending"]), stable=True),
                                    kw, a[0]),
             _jax_sort,
             "odd-even transposition network of compare-exchanges (a - r, b + r), r = relu(a - b): stable; "
             "a tie is relu's kink",
             tinygrad=_tinygrad_sort, outputs=_PAIR),
    TensorOp("topk", 1, (Keyword("k", "int"), _LAST, _OUTPUT), _scans.topk, "reduce.topk",
             lambda t, a, kw: _pick(t.topk(a[0], kw["k"], dim=kw["axis"]), kw, a[0]),
             lambda j, a, kw: _pick(j.lax.top_k(a[0], kw["k"], axis=kw["axis"] % a[0].ndim), kw, a[0]),
             "the first k of the descending sort (largest first); a tie at the k-th is a kink",
             tinygrad=lambda tg, a, kw: _tinygrad_pair(a[0].topk(kw["k"], kw["axis"]), kw, a[0]),
             outputs=_PAIR),
)
