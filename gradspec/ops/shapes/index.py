"""Shape rules of the indexing and shape ops (:mod:`gradspec.ops.index_rows`), and the subscript's items as
every stage reads them back (:func:`index_items`).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType

from gradspec.ops.shapes import Kw, Shape, ShapeError, axis_of, show

__all__ = ['concat', 'diagonal', 'einsum', 'einsum_terms', 'expand', 'gather', 'index', 'index_items', 'index_plan', 'index_select', 'on_axis', 'one_hot', 'pad', 'slice_text', 'squeeze', 'stack', 'triangle', 'unsqueeze']

# One item of a subscript (NumPy basic indexing): an integer, a slice, None (a new axis of size 1) or
# Ellipsis. The parser keeps a subscript as its canonical text ("1:3, ::-1, None, ..."), which every
# stage reads back with index_items.
Item = int | slice | EllipsisType | None


def index_items(spec: str) -> tuple[Item, ...]:
    """The items of a subscript's canonical text (written by the parser, never by a user directly)."""
    items: list[Item] = []
    for part in spec.split(","):
        part = part.strip()
        if part == "...":
            items.append(Ellipsis)
        elif part == "None":
            items.append(None)
        elif ":" in part:
            bounds = [int(p) if p else None for p in part.split(":")]
            items.append(slice(*bounds))
        else:
            items.append(int(part))
    return tuple(items)


def index_plan(name: str, shape: Shape, items: Sequence[Item]) -> list[Item]:
    """``items`` with the Ellipsis spelled out as full slices, after checking the count of indices."""
    taken = sum(1 for it in items if it is not None and it is not Ellipsis)
    if taken > len(shape):
        what = "a scalar (0-d tensor)" if not shape else f"a tensor of shape {show(shape)}"
        raise ShapeError(f"{name}: too many indices ({taken}) for {what}")
    if list(items).count(Ellipsis) > 1:
        raise ShapeError(f"{name}: at most one '...' in a subscript")
    out = list(items)
    at = out.index(Ellipsis) if Ellipsis in out else len(out)
    fill: list[Item] = [slice(None)] * (len(shape) - taken)
    return out[:at] + fill + out[at + 1:]


def index(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """NumPy basic indexing: an integer drops its axis, a slice keeps what it selects, None adds an axis."""
    (shape,) = shapes
    axis = 0
    out: list[int] = []
    for item in index_plan(name, shape, index_items(kw["spec"])):
        if item is None:
            out.append(1)
            continue
        size = shape[axis]
        if isinstance(item, int):
            if not -size <= item < size:
                raise ShapeError(f"{name}: index {item} is out of range for axis {axis} of size {size} "
                                 f"(shape {show(shape)})")
        elif isinstance(item, slice):
            if item.step == 0:
                raise ShapeError(f"{name}: a slice step cannot be zero")
            count = len(range(*item.indices(size)))
            if count == 0:
                raise ShapeError(f"{name}: slice {slice_text(item)} selects nothing from axis {axis} of size {size}")
            out.append(count)
        axis += 1
    return tuple(out)


def slice_text(item: slice) -> str:
    """A slice as a subscript writes it (``1:3``, ``::-1``)."""
    parts = ["" if v is None else str(v) for v in (item.start, item.stop, item.step)]
    return ":".join(parts if item.step is not None else parts[:2])


def gather(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """torch.gather: the index has x's number of axes and sizes at most x's off the axis; out = index's shape."""
    x, idx = shapes
    axis = axis_of(name, x, kw["axis"])
    if len(idx) != len(x) or any(i > s for d, (i, s) in enumerate(zip(idx, x, strict=True)) if d != axis):
        raise ShapeError(f"{name}: index {show(idx)} needs the {len(x)} axes of x {show(x)}, each no larger "
                         f"than x's off axis {kw['axis']}")
    return idx


def index_select(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    x, idx = shapes
    axis = axis_of(name, x, kw["axis"])
    if len(idx) != 1:
        raise ShapeError(f"{name}: the index must be 1-D, got {show(idx)}")
    return x[:axis] + idx + x[axis + 1:]


def stack(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    first = shapes[0]
    if any(s != first for s in shapes):
        raise ShapeError(f"{name}: every operand needs the same shape, got {', '.join(map(show, shapes))}")
    axis = axis_of(name, (*first, 1), kw["axis"])
    return (*first[:axis], len(shapes), *first[axis:])


def concat(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    first = shapes[0]
    if not first:
        raise ShapeError(f"{name}: needs operands with at least one axis, got a scalar")
    axis = axis_of(name, first, kw["axis"])
    if any(len(s) != len(first) or s[:axis] + s[axis + 1:] != first[:axis] + first[axis + 1:] for s in shapes):
        raise ShapeError(f"{name}: operands {', '.join(map(show, shapes))} differ off axis {kw['axis']}")
    return (*first[:axis], sum(s[axis] for s in shapes), *first[axis + 1:])


def pad(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """torch's F.pad: (left, right) pairs, the last axis first; sizes >= 0 (no cropping)."""
    (shape,) = shapes
    sizes = list(kw["pad"])
    if len(sizes) % 2 or len(sizes) > 2 * len(shape) or not sizes:
        raise ShapeError(f"{name}: pad= needs (left, right) pairs for at most the {len(shape)} axes of "
                         f"{show(shape)}, last axis first; got {show(sizes)}")
    if any(p < 0 for p in sizes):
        raise ShapeError(f"{name}: pad sizes must be >= 0, got {show(sizes)}")
    out = list(shape)
    for k in range(len(sizes) // 2):
        out[-1 - k] += sizes[2 * k] + sizes[2 * k + 1]
    return tuple(out)


def on_axis(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """flip and roll: the shape is kept; the axis must exist."""
    (shape,) = shapes
    axis_of(name, shape, kw["axis"])
    return shape


def triangle(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    (shape,) = shapes
    if len(shape) < 2:
        raise ShapeError(f"{name}: needs at least two axes (a matrix), got {show(shape)}")
    return shape


def diagonal(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """torch.diagonal(x): the diagonal of axes 0 and 1, appended as the last axis."""
    (shape,) = shapes
    if len(shape) < 2:
        raise ShapeError(f"{name}: needs at least two axes, got {show(shape)}")
    return (*shape[2:], min(shape[0], shape[1]))


def expand(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """torch's expand: new axes in front; -1 keeps a size; only a size-1 axis grows."""
    (shape,) = shapes
    target = list(kw["shape"])
    lead = len(target) - len(shape)
    if lead < 0:
        raise ShapeError(f"{name}: shape {show(target)} has fewer axes than {show(shape)}")
    for k, t in enumerate(target):
        own = shape[k - lead] if k >= lead else None
        if t == -1 and own is not None:
            target[k] = own
        elif t < 1 or (own is not None and own != 1 and own != t):
            raise ShapeError(f"{name}: cannot expand {show(shape)} to {show(kw['shape'])} (axis {k})")
    return tuple(target)


def squeeze(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    (shape,) = shapes
    if kw.get("axis") is None:
        return tuple(s for s in shape if s != 1)
    axis = axis_of(name, shape, kw["axis"])
    if shape[axis] != 1:
        raise ShapeError(f"{name}: axis {kw['axis']} of {show(shape)} has size {shape[axis]}, not 1")
    return shape[:axis] + shape[axis + 1:]


def unsqueeze(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    (shape,) = shapes
    axis = axis_of(name, (*shape, 1), kw["axis"])
    return (*shape[:axis], 1, *shape[axis:])


def one_hot(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    (shape,) = shapes
    if kw["classes"] < 1:
        raise ShapeError(f"{name}: classes= must be >= 1, got {kw['classes']}")
    return (*shape, kw["classes"])


def einsum_terms(name: str, equation: str, shapes: Sequence[Shape]) -> tuple[list[str], str, dict[str, int]]:
    """An einsum equation checked against the operands: each operand's letters, the output's letters
    (NumPy's implicit output, the letters used once in alphabetical order, when there is no ``->``) and
    every letter's size."""
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    letters = set(lhs.replace(",", "") + rhs)
    if not all(c.isascii() and c.isalpha() for c in letters):
        raise ShapeError(f"{name}: the equation {equation!r} may use only letters, ',' and one '->'")
    if len(terms) != len(shapes):
        raise ShapeError(f"{name}: the equation {equation!r} names {len(terms)} operand(s), the call gives {len(shapes)}")
    sizes: dict[str, int] = {}
    for k, (term, shape) in enumerate(zip(terms, shapes, strict=True)):
        if len(term) != len(shape):
            raise ShapeError(f"{name}: operand {k + 1} is {show(shape)}, but {term!r} names {len(term)} axes")
        for letter, size in zip(term, shape, strict=True):
            if sizes.setdefault(letter, size) != size:
                raise ShapeError(f"{name}: letter {letter!r} has sizes {sizes[letter]} and {size}")
    if not arrow:
        flat = lhs.replace(",", "")
        rhs = "".join(sorted(c for c in set(flat) if flat.count(c) == 1))
    if len(set(rhs)) != len(rhs) or any(c not in sizes for c in rhs):
        raise ShapeError(f"{name}: the output {rhs!r} must name distinct letters of the operands")
    return terms, rhs, sizes


def einsum(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    _, rhs, sizes = einsum_terms(name, kw["equation"], shapes)
    return tuple(sizes[c] for c in rhs)
