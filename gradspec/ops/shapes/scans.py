"""Shape rules of the reductions and scans (:mod:`gradspec.ops.reduce_rows`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradspec.ops.shapes import Kw, Shape, ShapeError, axis_of, reduce, same_along_axis, show

__all__ = ["NORM_ORDERS", "norm", "scan", "topk", "variance"]


def _lane_size(name: str, shape: Shape, axis: int | None) -> int:
    return math.prod(shape) if axis is None else shape[axis_of(name, shape, axis)]


def variance(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """var and std: the reduced shape; the divisor n - correction must be positive (torch returns inf or
    nan otherwise, a case that is refused here)."""
    out = reduce(name, shapes, kw)
    n, correction = _lane_size(name, shapes[0], kw.get("axis")), kw["correction"]
    if correction < 0 or n - correction < 1:
        raise ShapeError(f"{name}: correction={correction} needs 0 <= correction < n, and the reduced "
                         f"{'axis' if kw.get('axis') is not None else 'input'} of {show(shapes[0])} has n = {n}")
    return out


#: The orders ``norm`` takes: 1, 2 and "inf" (the largest magnitude), written ord="inf".
NORM_ORDERS = (1, 2, "inf")


def norm(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    if kw["ord"] not in NORM_ORDERS:
        raise ShapeError(f'{name}: ord= takes 1, 2 or "inf", got {kw["ord"]!r}')
    return reduce(name, shapes, kw)


def scan(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """A scan or a sort along one axis: the same shape."""
    shape = same_along_axis(name, shapes, kw)
    if kw.get("descending", 0) not in (0, 1):
        raise ShapeError(f"{name}: descending= takes 0 or 1, got {kw['descending']}")
    return shape


def topk(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    (shape,) = shapes
    if not shape:
        raise ShapeError(f"{name}: needs at least one axis, got a scalar")
    axis = axis_of(name, shape, kw["axis"])
    if not 1 <= kw["k"] <= shape[axis]:
        raise ShapeError(f"{name}: k={kw['k']} needs 1 <= k <= {shape[axis]}, the size of axis {kw['axis']} of {show(shape)}")
    return (*shape[:axis], kw["k"], *shape[axis + 1:])
