"""Shape rules of the tensor ops: what shape an op returns, or why its operands do not fit.

Each rule takes the argument shapes and the call's keyword values and returns the result shape, or
raises :class:`ShapeError` with a message that names the op and both shapes; the tensor graph builder
turns it into an :class:`~gradspec.errors.ExpressionError` at the call's column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "Shape",
    "ShapeError",
    "attention",
    "axis_of",
    "batch_norm",
    "broadcast",
    "class_loss",
    "conv",
    "conv_transpose2d",
    "embedding",
    "group_norm",
    "instance_norm",
    "layer_norm",
    "linear",
    "matmul",
    "permute",
    "pointwise_loss",
    "pool2d",
    "reduce",
    "reshape",
    "rms_norm",
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


# -- normalisation and layers --------------------------------------------------------------------------
# Optional operands are absent from ``shapes`` (batch_norm(x) has one shape, batch_norm(x, w, b) three).

def _eps(name: str, kw: Kw) -> None:
    if kw["eps"] < 0:
        raise ShapeError(f"{name}: eps must be >= 0, got {float(kw['eps']):g}")


def _per(name: str, what: str, shapes: Sequence[Shape], size: int) -> None:
    """Every affine operand (weight, bias) is a vector of ``size`` elements."""
    for label, s in zip(("weight", "bias"), shapes, strict=False):
        if s != (size,):
            raise ShapeError(f"{name}: {label} must have shape [{size}] (one per {what}), got {show(s)}")


def _channels(name: str, x: Shape) -> None:
    if len(x) < 2:
        raise ShapeError(f"{name}: needs input [N, C, ...], got {show(x)}")


def _spread(name: str, count: int, over: str) -> None:
    # One element normalises to 0 / sqrt(0 + eps): torch refuses it, and with eps = 0 it divides by zero.
    if count < 2:
        raise ShapeError(f"{name}: needs more than one value per {over} to normalise, got {count}")


def layer_norm(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """Over the last axis; weight and bias, when given, are [last]."""
    x = shapes[0]
    if not x:
        raise ShapeError(f"{name}: needs at least one axis, got a scalar")
    _eps(name, kw)
    if x[-1] == 1 and kw["eps"] == 0:
        raise ShapeError(f"{name}: a last axis of size 1 with eps = 0 divides by zero")
    _per(name, "element of the last axis", shapes[1:], x[-1])
    return x


def batch_norm(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    x = shapes[0]
    _channels(name, x)
    _eps(name, kw)
    _spread(name, math.prod(x) // x[1], "channel (batch and spatial axes)")
    _per(name, "channel", shapes[1:], x[1])
    return x


def group_norm(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    x, groups = shapes[0], kw["groups"]
    _channels(name, x)
    _eps(name, kw)
    if groups < 1 or x[1] % groups:
        raise ShapeError(f"{name}: groups={groups} must be >= 1 and divide the {x[1]} channels of {show(x)}")
    if x[1] // groups * math.prod(x[2:]) == 1 and kw["eps"] == 0:
        raise ShapeError(f"{name}: one element per group with eps = 0 divides by zero")
    _per(name, "channel", shapes[1:], x[1])
    return x


def instance_norm(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    x = shapes[0]
    _channels(name, x)
    _eps(name, kw)
    _spread(name, math.prod(x[2:]), "instance (spatial axes)")
    return x


def rms_norm(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    x = shapes[0]
    if not x:
        raise ShapeError(f"{name}: needs at least one axis, got a scalar")
    _eps(name, kw)
    _per(name, "element of the last axis", shapes[1:], x[-1])
    return x


def linear(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    x, w = shapes[0], shapes[1]
    if not x or len(w) != 2 or x[-1] != w[1]:
        raise ShapeError(f"{name}: needs input [..., in] and weight [out, in], got {show(x)} and {show(w)}")
    if len(shapes) > 2 and shapes[2] != (w[0],):
        raise ShapeError(f"{name}: bias must have shape [{w[0]}] (one per output), got {show(shapes[2])}")
    return (*x[:-1], w[0])


def embedding(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    index, table = shapes
    if len(table) != 2:
        raise ShapeError(f"{name}: needs a table [rows, dim], got {show(table)}")
    return (*index, table[1])


def _conv_keywords(name: str, kw: Kw) -> None:
    if kw["stride"] < 1 or kw["padding"] < 0 or kw["dilation"] < 1 or kw["groups"] < 1:
        raise ShapeError(f"{name}: needs stride >= 1, padding >= 0, dilation >= 1 and groups >= 1, got "
                         f"stride={kw['stride']}, padding={kw['padding']}, dilation={kw['dilation']}, groups={kw['groups']}")


def _conv_shapes(name: str, shapes: Sequence[Shape], kw: Kw, spatial: int, into: int, out: int) -> None:
    """Input [N, C, *spatial], weight [*, *, *kernel], groups dividing ``into`` (the weight's input side)
    and ``out``; the bias, when given, is [out]."""
    x, w = shapes[0], shapes[1]
    axes = "H, W" if spatial == 2 else "L"
    if len(x) != 2 + spatial or len(w) != 2 + spatial:
        raise ShapeError(f"{name}: needs input [N, C, {axes}] and a weight with {2 + spatial} axes, "
                         f"got {show(x)} and {show(w)}")
    _conv_keywords(name, kw)
    groups = kw["groups"]
    if into % groups or out % groups:
        raise ShapeError(f"{name}: groups={groups} must divide the input channels ({into}) and the output "
                         f"channels ({out})")
    if len(shapes) > 2 and shapes[2] != (out,):
        raise ShapeError(f"{name}: bias must have shape [{out}] (one per output channel), got {show(shapes[2])}")


def conv(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """conv1d and conv2d: input [N, C, *spatial], weight [O, C / groups, *kernel]."""
    x, w = shapes[0], shapes[1]
    spatial = 1 if name == "conv1d" else 2
    _conv_shapes(name, shapes, kw, spatial, x[1] if len(x) > 1 else 0, w[0] if w else 0)
    if x[1] != w[1] * kw["groups"]:
        raise ShapeError(f"{name}: input {show(x)} has {x[1]} channels, weight {show(w)} with groups="
                         f"{kw['groups']} expects {w[1] * kw['groups']}")
    s, p, d = kw["stride"], kw["padding"], kw["dilation"]
    sizes = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k in zip(x[2:], w[2:], strict=True))
    if min(sizes) < 1:
        dilated = f" (dilation {d})" if d != 1 else ""
        raise ShapeError(f"{name}: kernel {show(w[2:])}{dilated} is larger than the padded input {show(x[2:])}")
    return (x[0], w[0], *sizes)


def conv_transpose2d(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """Input [N, C, H, W], weight [C, O / groups, kH, kW]; out = (n - 1) s - 2 p + d (k - 1) + 1."""
    x, w = shapes[0], shapes[1]
    groups = kw["groups"]
    _conv_shapes(name, shapes, kw, 2, x[1] if len(x) > 1 else 0, w[1] * groups if len(w) > 1 else 0)
    if x[1] != w[0]:
        raise ShapeError(f"{name}: input {show(x)} has {x[1]} channels, weight {show(w)} expects {w[0]}")
    s, p, d = kw["stride"], kw["padding"], kw["dilation"]
    sizes = tuple((n - 1) * s - 2 * p + d * (k - 1) + 1 for n, k in zip(x[2:], w[2:], strict=True))
    if min(sizes) < 1:
        raise ShapeError(f"{name}: padding {p} leaves no output for input {show(x[2:])} and kernel {show(w[2:])}")
    return (x[0], w[1] * groups, *sizes)


def pool2d(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """Over the last two axes of [N, C, H, W] or [C, H, W]; stride defaults to the kernel."""
    (x,) = shapes
    k, p = kw["kernel"], kw["padding"]
    s = k if kw["stride"] is None else kw["stride"]
    if len(x) not in (3, 4):
        raise ShapeError(f"{name}: needs input [N, C, H, W] or [C, H, W], got {show(x)}")
    if k < 1 or s < 1 or p < 0:
        raise ShapeError(f"{name}: needs kernel >= 1, stride >= 1 and padding >= 0, got kernel={k}, stride={s}, padding={p}")
    if 2 * p > k:
        raise ShapeError(f"{name}: padding {p} is more than half the kernel {k}")
    sizes = tuple((n + 2 * p - k) // s + 1 for n in x[-2:])
    if min(sizes) < 1:
        raise ShapeError(f"{name}: kernel {k} is larger than the padded input {show(x[-2:])}")
    return (*x[:-2], *sizes)


def attention(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """q [..., L, E], k [..., S, E], v [..., S, Ev] with equal batch axes; an additive mask broadcasts
    to [..., L, S]."""
    q, k, v = shapes[:3]
    if len(q) < 2 or len(k) != len(q) or len(v) != len(q):
        raise ShapeError(f"{name}: needs q [..., L, E], k [..., S, E] and v [..., S, Ev] with the same number "
                         f"of axes (at least 2), got {show(q)}, {show(k)} and {show(v)}")
    if q[:-2] != k[:-2] or q[:-2] != v[:-2] or q[-1] != k[-1] or k[-2] != v[-2]:
        raise ShapeError(f"{name}: q {show(q)}, k {show(k)} and v {show(v)} do not fit (batch axes equal, "
                         "q and k the same E, k and v the same S)")
    full = (*q[:-1], k[-2])
    if len(shapes) > 3:
        if kw["causal"]:
            raise ShapeError(f"{name}: a mask and causal=1 together (torch refuses both; give one)")
        try:
            fits = len(shapes[3]) <= len(full) and broadcast(name, [shapes[3], full]) == full
        except ShapeError:
            fits = False
        if not fits:
            raise ShapeError(f"{name}: mask {show(shapes[3])} does not broadcast to the scores {show(full)}")
    if kw["causal"] not in (0, 1):
        raise ShapeError(f"{name}: causal= takes 0 or 1, got {kw['causal']}")
    if kw["scale"] is not None and kw["scale"] <= 0:
        raise ShapeError(f"{name}: scale must be > 0, got {float(kw['scale']):g}")
    return (*q[:-1], v[-1])


# -- losses --------------------------------------------------------------------------------------------

def _reduced(kw: Kw, unreduced: Shape) -> Shape:
    return unreduced if kw["reduction"] == "none" else ()


def pointwise_loss(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """Two operands of one shape (an input and its target), element by element, then reduced."""
    a, b = shapes
    if a != b:
        raise ShapeError(f"{name}: input {show(a)} and target {show(b)} must have the same shape")
    for key, low, strict in (("beta", 0, False), ("delta", 0, True)):
        if key in kw and (kw[key] < low or (strict and kw[key] == low)):
            raise ShapeError(f"{name}: {key} must be {'>' if strict else '>='} {low}, got {float(kw[key]):g}")
    if kw["reduction"] == "batchmean" and not a:
        raise ShapeError(f"{name}: reduction=\"batchmean\" divides by the first axis; a scalar has none")
    if kw.get("log_target", 0) not in (0, 1):
        raise ShapeError(f"{name}: log_target= takes 0 or 1, got {kw['log_target']}")
    return _reduced(kw, a)


def class_loss(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """Scores [N, C] and class indices [N] (data); cross_entropy also takes probabilities [N, C]."""
    scores, target = shapes
    soft = name == "cross_entropy" and target == scores
    if len(scores) != 2 or (target != scores[:1] and not soft):
        wanted = "targets [batch] or probabilities [batch, classes]" if name == "cross_entropy" else "targets [batch]"
        what = "logits" if name == "cross_entropy" else "log-probabilities"
        raise ShapeError(f"{name}: needs {what} [batch, classes] and {wanted}, got {show(scores)} and {show(target)}")
    smoothing = kw.get("label_smoothing", 0)
    if not 0 <= smoothing <= 1:
        raise ShapeError(f"{name}: label_smoothing must be in [0, 1], got {float(smoothing):g}")
    return _reduced(kw, scores[:1])


# -- indexing and shape (gradspec.ops.index_rows) -------------------------------------------------------

from types import EllipsisType  # noqa: E402

__all__ += ["Item", "concat", "diagonal", "einsum", "einsum_terms", "expand", "gather", "index", "index_items",
            "index_plan", "index_select", "on_axis", "one_hot", "pad", "slice_text", "squeeze", "stack", "triangle",
            "unsqueeze"]

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
# -- linear algebra (gradspec.ops.linalg_rows) ------------------------------------------------------


def _matrix(name: str, shape: Shape, what: str = "a") -> tuple[Shape, int, int]:
    if len(shape) < 2:
        raise ShapeError(f"{name}: {what} needs at least two axes (a matrix, batched over leading axes), "
                         f"got {show(shape)}")
    return shape[:-2], shape[-2], shape[-1]


def _square(name: str, shape: Shape, what: str = "a") -> tuple[Shape, int]:
    batch, m, n = _matrix(name, shape, what)
    if m != n:
        raise ShapeError(f"{name}: {what} must be square (its last two axes equal), got {show(shape)}")
    return batch, n


def _upper(name: str, kw: Kw) -> None:
    if "upper" in kw and kw["upper"] not in (0, 1):
        raise ShapeError(f"{name}: upper must be 0 (lower triangle) or 1 (upper triangle), got {kw['upper']}")


def square_batch(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """det, slogdet: a batch of square matrices to one number each."""
    return _square(name, shapes[0])[0]


def square_same(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """inv, cholesky, cholesky_inverse, matrix_power: a batch of square matrices to matrices as large."""
    _upper(name, kw)
    _square(name, shapes[0])
    return shapes[0]


def _batch_of(name: str, a: Shape, b: Shape, batches: tuple[Shape, Shape]) -> Shape:
    try:
        return broadcast(name, list(batches))
    except ShapeError:
        raise ShapeError(f"{name}: batch axes of {show(a)} and {show(b)} do not broadcast") from None


def linear_solve(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """solve(a, b): a [..., n, n]; b [n] (one vector) or [..., n, k] (columns, batch axes broadcast). b with
    one axis fewer than a is refused as ambiguous (torch reads it as a batch of vectors, JAX as a matrix)."""
    a, b = shapes
    batch, n = _square(name, a)
    if len(b) == 1:
        if b[0] != n:
            raise ShapeError(f"{name}: a {show(a)} takes a vector b of length {n}, got {show(b)}")
        return (*batch, n)
    if len(b) == len(a) - 1:
        raise ShapeError(f"{name}: b {show(b)} has one axis fewer than a {show(a)}: ambiguous (a batch of vectors "
                         "or a matrix?); write b as [..., n, 1] columns")
    return _columns(name, a, b, batch, n)


def _columns(name: str, a: Shape, b: Shape, batch: Shape, n: int) -> Shape:
    rhs_batch, rows, k = _matrix(name, b, "b")
    if rows != n:
        raise ShapeError(f"{name}: a {show(a)} needs b with {n} rows, got {show(b)}")
    return (*_batch_of(name, a, b, (batch, rhs_batch)), n, k)


def triangular_solve(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """solve_triangular(a, b), lu_solve(lu, b): a [..., n, n], b [..., n, k]."""
    _upper(name, kw)
    a, b = shapes
    batch, n = _square(name, a)
    return _columns(name, a, b, batch, n)


def cholesky_solve(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """cholesky_solve(b, l): b [..., n, k] first, as torch orders them; the factor l [..., n, n]."""
    _upper(name, kw)
    b, factor = shapes
    batch, n = _square(name, factor, "l")
    return _columns(name, factor, b, batch, n)


def pinv(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    batch, m, n = _matrix(name, shapes[0])
    return (*batch, n, m)


def qr(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """The reduced QR of a [..., m, n]: Q [..., m, k] (output 0) and R [..., k, n] (output 1), k = min(m, n)."""
    batch, m, n = _matrix(name, shapes[0])
    k = min(m, n)
    return (*batch, m, k) if kw["output"] == 0 else (*batch, k, n)
