"""Shape rules of the tensor ops: what shape an op returns, or why its operands do not fit.

Each rule takes the argument shapes and the call's keyword values and returns the result shape, or
raises :class:`ShapeError` with a message that names the op and both shapes; the tensor graph builder
turns it into an :class:`~gradspec.errors.ExpressionError` at the call's column. The basic tensor ops'
rules are here; each group of the op table has its own module (``layers``: normalisation, layers and
losses; ``index``; ``linalg``; ``reduce``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "Shape",
    "ShapeError",
    "axis_of",
    "broadcast",
    "matmul",
    "permute",
    "reduce",
    "reshape",
    "same_along_axis",
    "show",
    "transpose",
]

Shape = tuple[int, ...]
Kw = Mapping[str, Any]


class ShapeError(ValueError):
    """Operands whose shapes the op cannot take."""


def show(shape: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def broadcast(name: str, shapes: Sequence[Shape]) -> Shape:
    """NumPy broadcasting: trailing axes must be equal or 1."""
    ndim = max((len(s) for s in shapes), default=0)
    out: list[int] = []
    for k in range(ndim, 0, -1):
        sizes = {s[-k] for s in shapes if len(s) >= k} - {1}
        if len(sizes) > 1:
            raise ShapeError(f"{name}: shapes {' and '.join(show(s) for s in shapes)} do not broadcast "
                             f"(axis {-k}: sizes {' and '.join(map(str, sorted(sizes)))})")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def axis_of(name: str, shape: Shape, axis: int) -> int:
    """A possibly negative axis as an index into ``shape``."""
    if not -len(shape) <= axis < len(shape):
        raise ShapeError(f"{name}: axis {axis} is out of range for shape {show(shape)}")
    return axis % len(shape)


def reduce(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    (shape,) = shapes
    if kw.get("axis") is None:
        return ()
    axis = axis_of(name, shape, kw["axis"])
    return shape[:axis] + shape[axis + 1:]


def same_along_axis(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    (shape,) = shapes
    if not shape:
        raise ShapeError(f"{name}: needs at least one axis, got a scalar")
    axis_of(name, shape, kw["axis"])
    return shape




def reshape(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    (shape,) = shapes
    target = list(kw["shape"])
    size = math.prod(shape)
    if target.count(-1) > 1 or any(t == 0 or t < -1 for t in target):
        raise ShapeError(f"{name}: shape {show(target)} needs sizes >= 1 and at most one -1")
    if -1 in target:
        rest = math.prod(t for t in target if t != -1)
        if size % rest:
            raise ShapeError(f"{name}: cannot reshape {show(shape)} ({size} elements) to {show(target)}")
        target[target.index(-1)] = size // rest
    if math.prod(target) != size:
        raise ShapeError(f"{name}: cannot reshape {show(shape)} ({size} elements) to {show(target)}")
    return tuple(target)


def transpose(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    (shape,) = shapes
    if len(shape) < 2:
        raise ShapeError(f"{name}: needs at least two axes (it swaps the last two), got {show(shape)}")
    return (*shape[:-2], shape[-1], shape[-2])


def permute(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    (shape,) = shapes
    axes = [a % len(shape) if -len(shape) <= a < len(shape) else None for a in kw["axes"]]
    if sorted(a for a in axes if a is not None) != list(range(len(shape))) or None in axes:
        raise ShapeError(f"{name}: axes {show(kw['axes'])} are not a permutation of the {len(shape)} axes of {show(shape)}")
    return tuple(shape[a] for a in axes if a is not None)


def matmul(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """NumPy's matmul: 1-D operands are promoted and the promoted axis dropped; batch axes broadcast."""
    a, b = shapes
    if not a or not b:
        raise ShapeError(f"{name}: {show(a)} @ {show(b)}: both operands need at least one axis")
    a2 = a if len(a) > 1 else (1, *a)
    b2 = b if len(b) > 1 else (*b, 1)
    if a2[-1] != b2[-2]:
        raise ShapeError(f"{name}: {show(a)} @ {show(b)}: inner dimensions {a2[-1]} and {b2[-2]} differ")
    try:
        batch = broadcast(name, [a2[:-2], b2[:-2]])
    except ShapeError:
        raise ShapeError(f"{name}: {show(a)} @ {show(b)}: batch axes {show(a2[:-2])} and {show(b2[:-2])} "
                         "do not broadcast") from None
    return batch + ((a2[-2],) if len(a) > 1 else ()) + ((b2[-1],) if len(b) > 1 else ())
