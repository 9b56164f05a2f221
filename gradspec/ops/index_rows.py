"""The tensor ops of one group of the op table: indexing and shape (gather, stack, pad, einsum, ...).

Each row is a :class:`~gradspec.ops.row.TensorOp`; :mod:`gradspec.ops.table` joins the groups into
``TENSOR_OPS``. Their element-wise definitions are in :mod:`gradspec.ops.lowering.index`. A subscript
(``x[1:3, None]``) is the row ``index``, spelled ``[]`` and written only as syntax: its internal keyword
``spec`` holds the subscript's canonical text. Index tensors (gather's, index_select's, one_hot's
input) are integer data (``data``): inputs marked ``differentiable: false``, cast to the library's
integer type where it needs one.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from gradspec.ops.row import Keyword, TensorOp
from gradspec.ops.shapes import index as _shape

__all__ = ["ROWS", "torch_items"]

_AXIS = Keyword("axis", "int")
_AXIS0 = Keyword("axis", "int", 0)
Kw = dict[str, Any]


def _items(x: Any, kw: Kw) -> tuple[Any, ...]:
    return tuple(_shape.index_plan("index", tuple(x.shape), _shape.index_items(kw["spec"])))


def torch_items(shape: Sequence[int], items: Sequence[Any]) -> tuple[list[int], tuple[Any, ...]]:
    """torch refuses negative slice steps: the axes to flip first, and the subscript of the flipped
    tensor that selects the same elements in the same order."""
    flips: list[int] = []
    out: list[Any] = []
    axis = 0
    for item in items:
        if item is None:
            out.append(None)
            continue
        if isinstance(item, slice) and item.step is not None and item.step < 0:
            n = shape[axis]
            picked = range(*item.indices(n))  # non-empty: the shape rule refuses empty slices
            flips.append(axis)
            item = slice(n - 1 - picked[0], n - picked[-1], -item.step)
        out.append(item)
        axis += 1
    return flips, tuple(out)


def _torch_index(t: Any, a: Sequence[Any], kw: Kw) -> Any:
    flips, items = torch_items(a[0].shape, _items(a[0], kw))
    return (t.flip(a[0], flips) if flips else a[0])[items]


def _jax_gather(j: Any, a: Sequence[Any], kw: Kw) -> Any:
    # take_along_axis broadcasts the index against x; torch.gather reads only x's leading part off the
    # axis. Cutting x to the index's sizes first makes the two the same function.
    x, idx = a
    axis = kw["axis"] % x.ndim
    cut = tuple(slice(None) if d == axis else slice(0, idx.shape[d]) for d in range(x.ndim))
    return j.numpy.take_along_axis(x[cut], idx.astype("int32"), axis=axis)


def _jax_pad(j: Any, a: Sequence[Any], kw: Kw) -> Any:
    x, sizes = a[0], kw["pad"]
    pairs = [(0, 0)] * x.ndim
    for k in range(len(sizes) // 2):
        pairs[x.ndim - 1 - k] = (sizes[2 * k], sizes[2 * k + 1])
    return j.numpy.pad(x, pairs, constant_values=float(kw["value"]))


def _expanded(x: Any, kw: Kw) -> tuple[int, ...]:
    return _shape.expand("expand", [tuple(x.shape)], kw)


def _tg_index_select(tg: Any, a: Sequence[Any], kw: Kw) -> Any:
    axis = kw["axis"] % a[0].ndim
    return a[0][(slice(None),) * axis + (a[1].cast(tg.dtypes.int32),)]


ROWS: tuple[TensorOp, ...] = (
    TensorOp("index", 1, (Keyword("spec", "str", internal=True),), _shape.index, "index.index",
             _torch_index, lambda j, a, kw: a[0][_items(a[0], kw)],
             "NumPy basic indexing: x[i], x[a:b:s], x[..., None]; the selected elements, unchanged",
             symbol="[]", tinygrad=lambda tg, a, kw: a[0][_items(a[0], kw)]),
    TensorOp("gather", 2, (_AXIS,), _shape.gather, "index.gather",
             lambda t, a, kw: t.gather(a[0], kw["axis"], a[1].long()), _jax_gather,
             "out[i][j] = x[i][index[i][j]] along axis (torch.gather); index: integer data", data=(1,),
             tinygrad=lambda tg, a, kw: a[0].gather(kw["axis"], a[1].cast(tg.dtypes.int32))),
    TensorOp("index_select", 2, (_AXIS,), _shape.index_select, "index.index_select",
             lambda t, a, kw: t.index_select(a[0], kw["axis"], a[1].long()),
             lambda j, a, kw: j.numpy.take(a[0], a[1].astype("int32"), axis=kw["axis"]),
             "the slices of x at the positions of a 1-D index along axis; index: integer data", data=(1,),
             tinygrad=_tg_index_select),
    TensorOp("stack", 1, (_AXIS0,), _shape.stack, "index.stack",
             lambda t, a, kw: t.stack(list(a), dim=kw["axis"]), lambda j, a, kw: j.numpy.stack(a, axis=kw["axis"]),
             "operands of one shape along a new axis", max_arity=-1,
             tinygrad=lambda tg, a, kw: a[0].stack(*a[1:], dim=kw["axis"])),
    TensorOp("concat", 1, (_AXIS0,), _shape.concat, "index.concat",
             lambda t, a, kw: t.cat(list(a), dim=kw["axis"]),
             lambda j, a, kw: j.numpy.concatenate(a, axis=kw["axis"]),
             "operands joined along an existing axis", max_arity=-1,
             tinygrad=lambda tg, a, kw: a[0].cat(*a[1:], dim=kw["axis"])),
    TensorOp("pad", 1, (Keyword("pad", "ints"), Keyword("value", "number", Fraction(0))), _shape.pad, "index.pad",
             lambda t, a, kw: t.nn.functional.pad(a[0], list(kw["pad"]), value=float(kw["value"])), _jax_pad,
             "constant padding, (left, right) pairs, last axis first (torch's F.pad); padding has no gradient",
             tinygrad=lambda tg, a, kw: a[0].pad(tuple(kw["pad"]), value=float(kw["value"]))),
    TensorOp("flip", 1, (_AXIS,), _shape.on_axis, "index.flip",
             lambda t, a, kw: t.flip(a[0], [kw["axis"]]), lambda j, a, kw: j.numpy.flip(a[0], axis=kw["axis"]),
             "the elements along axis in reverse order",
             tinygrad=lambda tg, a, kw: a[0].flip(kw["axis"])),
    TensorOp("roll", 1, (Keyword("shift", "int"), _AXIS), _shape.on_axis, "index.roll",
             lambda t, a, kw: t.roll(a[0], kw["shift"], kw["axis"]),
             lambda j, a, kw: j.numpy.roll(a[0], kw["shift"], axis=kw["axis"]),
             "out[i] = x[(i - shift) mod n] along axis",
             tinygrad=lambda tg, a, kw: a[0].roll(kw["shift"], kw["axis"])),
    TensorOp("tril", 1, (Keyword("k", "int", 0),), _shape.triangle, "index.tril",
             lambda t, a, kw: t.tril(a[0], kw["k"]), lambda j, a, kw: j.numpy.tril(a[0], kw["k"]),
             "x[..., i, j] where j - i <= k, else 0 (no gradient)",
             tinygrad=lambda tg, a, kw: a[0].tril(kw["k"])),
    TensorOp("triu", 1, (Keyword("k", "int", 0),), _shape.triangle, "index.triu",
             lambda t, a, kw: t.triu(a[0], kw["k"]), lambda j, a, kw: j.numpy.triu(a[0], kw["k"]),
             "x[..., i, j] where j - i >= k, else 0 (no gradient)",
             tinygrad=lambda tg, a, kw: a[0].triu(kw["k"])),
    TensorOp("diagonal", 1, (), _shape.diagonal, "index.diagonal",
             lambda t, a, kw: t.diagonal(a[0]), lambda j, a, kw: j.numpy.diagonal(a[0]),
             "x[i, i, ...] over axes 0 and 1, as the last axis (torch.diagonal)",
             tinygrad=lambda tg, a, kw: a[0].diagonal()),
    TensorOp("expand", 1, (Keyword("shape", "ints"),), _shape.expand, "index.expand",
             lambda t, a, kw: a[0].expand(*kw["shape"]),
             lambda j, a, kw: j.numpy.broadcast_to(a[0], _expanded(a[0], kw)),
             "size-1 axes repeated to shape (new axes in front, -1 keeps a size); the gradient sums the copies",
             tinygrad=lambda tg, a, kw: a[0].expand(_expanded(a[0], kw))),
    TensorOp("squeeze", 1, (Keyword("axis", "int", None),), _shape.squeeze, "index.squeeze",
             lambda t, a, kw: a[0].squeeze() if kw["axis"] is None else a[0].squeeze(kw["axis"]),
             lambda j, a, kw: j.numpy.squeeze(a[0], axis=kw["axis"]),
             "a size-1 axis removed (omitted: every size-1 axis)",
             tinygrad=lambda tg, a, kw: a[0].squeeze(kw["axis"])),
    TensorOp("unsqueeze", 1, (_AXIS,), _shape.unsqueeze, "index.unsqueeze",
             lambda t, a, kw: a[0].unsqueeze(kw["axis"]), lambda j, a, kw: j.numpy.expand_dims(a[0], kw["axis"]),
             "a new axis of size 1 at axis",
             tinygrad=lambda tg, a, kw: a[0].unsqueeze(kw["axis"])),
    TensorOp("one_hot", 1, (Keyword("classes", "int"),), _shape.one_hot, "index.one_hot",
             lambda t, a, kw: t.nn.functional.one_hot(a[0].long(), kw["classes"]).to(a[0].dtype),
             lambda j, a, kw: j.nn.one_hot(a[0].astype("int32"), kw["classes"], dtype=a[0].dtype),
             "1 at each integer's position along a new last axis of size classes, else 0 (data, no gradient)",
             data=(0,),
             tinygrad=lambda tg, a, kw: a[0].cast(tg.dtypes.int32).one_hot(kw["classes"]).cast(a[0].dtype)),
    TensorOp("einsum", 1, (Keyword("equation", "str", internal=True),), _shape.einsum, "index.einsum",
             lambda t, a, kw: t.einsum(kw["equation"], *a), lambda j, a, kw: j.numpy.einsum(kw["equation"], *a),
             'sums of products over the letters the output omits: einsum("ij,jk->ik", a, b)', max_arity=-1,
             tinygrad=lambda tg, a, kw: tg.Tensor.einsum(kw["equation"], *a)),
)
