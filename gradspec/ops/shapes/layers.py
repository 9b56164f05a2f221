"""Shape rules of the normalisation, layer and loss ops (:mod:`gradspec.ops.layer_rows`, :mod:`gradspec.ops.loss_rows`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradspec.ops.shapes import Kw, Shape, ShapeError, broadcast, show

__all__ = ['attention', 'batch_norm', 'class_loss', 'conv', 'conv_transpose2d', 'embedding', 'group_norm', 'instance_norm', 'layer_norm', 'linear', 'pointwise_loss', 'pool2d', 'rms_norm']

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
