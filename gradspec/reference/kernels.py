"""The tensor ops' kernels in ball arithmetic: one function per op-table row that has one.

Each is written as :mod:`gradspec.ops.lowering` writes the op (the lowering is the definition; a test
checks every kernel against it), but over whole arrays: the same scalar ops, the same pairwise sums,
and matrix products in one C-level call. A tensor op absent here (``cross_entropy``, ``max``, ``min``)
makes the whole graph run on the scalar tape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from gradspec.reference.ball_ops import Arr, Tape, Unsupported, constant, contract, depths, midpoints, pairsum, summed
from gradspec.reference.ball_scalar import elementwise

__all__ = ["TENSOR"]

Kernel = Callable[[Tape, Sequence[Arr], dict[str, Any], tuple[int, ...]], Arr]


def _const(x: Fraction) -> Arr:
    out = np.empty((), dtype=object)
    out[()] = x
    return constant(out)


def _axis(x: Arr, kw: dict[str, Any]) -> int | None:
    axis = kw.get("axis")
    return None if axis is None else axis % x.value.ndim


def _total(tape: Tape, args: Sequence[Arr], kw: dict[str, Any], shape: tuple[int, ...]) -> Arr:
    return pairsum(tape, args[0], _axis(args[0], kw), keep=False)


def _mean(tape: Tape, args: Sequence[Arr], kw: dict[str, Any], shape: tuple[int, ...]) -> Arr:
    axis = _axis(args[0], kw)
    n = args[0].value.size if axis is None else args[0].value.shape[axis]
    s = pairsum(tape, args[0], axis, keep=False)
    return elementwise(tape, "div", [s, _const(Fraction(n))], shape)


def _exps(tape: Tape, x: Arr, axis: int | None) -> tuple[Arr, Arr | None]:
    """``exp(x - c)`` with ``c`` each lane's largest element as a float, subtracted as a float engine does
    (its exp must stay finite) and as the lowering does on every backend (the value is the same either
    way; the rounding bound counts the subtraction); ``exp(x)`` where every lane's largest element is 0."""
    top = np.max(midpoints(x), axis=axis, keepdims=True)
    if not np.all(np.isfinite(top)):
        raise Unsupported("a lane beyond the float range")
    if not np.any(top):
        return elementwise(tape, "exp", [x], x.value.shape), None
    c = constant(np.vectorize(Fraction, otypes=[object])(top))
    return elementwise(tape, "exp", [elementwise(tape, "sub", [x, c], x.value.shape)], x.value.shape), c


def _lse(tape: Tape, x: Arr, axis: int | None, keep: bool) -> Arr:
    es, c = _exps(tape, x, axis)
    s = pairsum(tape, es, axis, keep)
    out = elementwise(tape, "log", [s], s.value.shape)
    if c is None:
        return out
    size = out.value.shape
    kept = c if keep else Arr(c.value.reshape(size), c.err.reshape(size), f=midpoints(c).reshape(size))
    return elementwise(tape, "add", [out, kept], out.value.shape)


def _logsumexp(tape: Tape, args: Sequence[Arr], kw: dict[str, Any], shape: tuple[int, ...]) -> Arr:
    return _lse(tape, args[0], _axis(args[0], kw), keep=False)


def _softmax(tape: Tape, args: Sequence[Arr], kw: dict[str, Any], shape: tuple[int, ...]) -> Arr:
    x = args[0]
    axis = kw["axis"] % x.value.ndim
    es, _ = _exps(tape, x, axis)
    s = pairsum(tape, es, axis, keep=True)
    return elementwise(tape, "div", [es, s], shape)


def _log_softmax(tape: Tape, args: Sequence[Arr], kw: dict[str, Any], shape: tuple[int, ...]) -> Arr:
    x = args[0]
    lse = _lse(tape, x, kw["axis"] % x.value.ndim, keep=True)
    return elementwise(tape, "sub", [x, lse], shape)


def _layer_norm(tape: Tape, args: Sequence[Arr], kw: dict[str, Any], shape: tuple[int, ...]) -> Arr:
    if len(args) > 1:
        raise Unsupported("layer norm with a weight or bias")  # the scalar tape runs the affine form
    x = args[0]
    axis = x.value.ndim - 1
    n = _const(Fraction(x.value.shape[-1]))
    mu = elementwise(tape, "div", [pairsum(tape, x, axis, keep=True), n], (*x.value.shape[:-1], 1))
    ds = elementwise(tape, "sub", [x, mu], shape)
    squares = elementwise(tape, "mul", [ds, ds], shape)
    var = elementwise(tape, "div", [pairsum(tape, squares, axis, keep=True), n], mu.value.shape)
    eps = Fraction(kw["eps"])
    scale = elementwise(tape, "sqrt", [elementwise(tape, "add", [var, _const(eps)], var.value.shape) if eps else var],
                        var.value.shape)
    return elementwise(tape, "div", [ds, scale], shape)


def _view(tape: Tape, x: Arr, forward: Callable[[Any], Any], backward: Callable[[Any], Any]) -> Arr:
    def back(g: Any, ge: Any, ag: Any) -> list[tuple[Any, Any]]:
        return [(backward(g), backward(ge))]

    ints = None if x.ints is None else (forward(x.ints[0]), x.ints[1])
    f = None if x.f is None else forward(x.f)
    if x.node is None:
        return Arr(forward(x.value), forward(x.err), ints=ints, f=f)
    out = tape.push(forward(x.value), forward(x.err), [x.node], back,
                    lambda ts: None if ts[0] is None else _view(tape, ts[0], forward, backward))
    return Arr(out.value, out.err, out.node, ints, f)


def _reshape(tape: Tape, args: Sequence[Arr], kw: dict[str, Any], shape: tuple[int, ...]) -> Arr:
    source = args[0].value.shape
    return _view(tape, args[0], lambda a: a.reshape(shape), lambda g: g.reshape(source))


def _transpose(tape: Tape, args: Sequence[Arr], kw: dict[str, Any], shape: tuple[int, ...]) -> Arr:
    return _view(tape, args[0], lambda a: np.swapaxes(a, -1, -2), lambda g: np.swapaxes(g, -1, -2))


def _permute(tape: Tape, args: Sequence[Arr], kw: dict[str, Any], shape: tuple[int, ...]) -> Arr:
    axes = [a % len(shape) for a in kw["axes"]]  # argsort inverts the permutation only with axes counted from 0
    return _view(tape, args[0], lambda a: np.transpose(a, axes), lambda g: np.transpose(g, np.argsort(axes)))


def _matmul(tape: Tape, args: Sequence[Arr], kw: dict[str, Any], shape: tuple[int, ...]) -> Arr:
    x, y = args
    xv, xe = (x.value, x.err) if x.value.ndim > 1 else (x.value[None, :], x.err[None, :])
    yv, ye = (y.value, y.err) if y.value.ndim > 1 else (y.value[:, None], y.err[:, None])
    batch = np.broadcast_shapes(xv.shape[:-2], yv.shape[:-2])
    m, k, n = xv.shape[-2], xv.shape[-1], yv.shape[-1]
    xs, xes = np.broadcast_to(xv, (*batch, m, k)), np.broadcast_to(xe, (*batch, m, k))
    ys, yes = np.broadcast_to(yv, (*batch, k, n)), np.broadcast_to(ye, (*batch, k, n))
    depth = depths(k)
    value = np.empty((*batch, m, n), dtype=object)
    err = np.empty((*batch, m, n))
    backs = {}
    xi = None if x.ints is None else np.broadcast_to(x.ints[0] if x.value.ndim > 1 else x.ints[0][None, :], (*batch, m, k))
    yi = None if y.ints is None else np.broadcast_to(y.ints[0] if y.value.ndim > 1 else y.ints[0][:, None], (*batch, k, n))
    xf = np.broadcast_to(midpoints(x).reshape(xv.shape), (*batch, m, k))
    yf = np.broadcast_to(midpoints(y).reshape(yv.shape), (*batch, k, n))
    for idx in np.ndindex(batch):
        left = Arr(xs[idx], xes[idx], ints=None if xi is None or x.ints is None else (xi[idx], x.ints[1]), f=xf[idx])
        right = Arr(ys[idx], yes[idx], ints=None if yi is None or y.ints is None else (yi[idx], y.ints[1]), f=yf[idx])
        value[idx], err[idx], backs[idx] = contract(left, right, depth)

    def grads(g: Any, ge: Any, ag: Any) -> tuple[Any, Any, Any, Any]:
        g, ge, ag = (a.reshape((*batch, m, n)) for a in (g, ge, ag))
        gx, ex = np.empty((*batch, m, k), dtype=object), np.empty((*batch, m, k))
        gy, ey = np.empty((*batch, k, n), dtype=object), np.empty((*batch, k, n))
        for idx in np.ndindex(batch):
            gx[idx], ex[idx], gy[idx], ey[idx] = backs[idx](g[idx], ge[idx], ag[idx])
        return _fold(gx, xv.shape).reshape(x.value.shape), _fold(ex, xv.shape).reshape(x.value.shape), \
            _fold(gy, yv.shape).reshape(y.value.shape), _fold(ey, yv.shape).reshape(y.value.shape)

    return _two(tape, x, y, value.reshape(shape), err.reshape(shape), grads,
                lambda a, b: _matmul(tape, [a, b], kw, shape))


def _fold(a: Any, shape: tuple[int, ...]) -> Any:
    """Sum a batched gradient over the batch axes its operand was broadcast along."""
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape[:-2]) if s == 1 and a.shape[lead + i] != 1)
    return summed(a, axes).reshape(shape) if axes else a


def _two(tape: Tape, x: Arr, y: Arr, value: Any, err: Any, grads: Callable[..., tuple[Any, Any, Any, Any]],
         again: Callable[[Arr, Arr], Arr]) -> Arr:
    """A bilinear op's node; ``again`` applies the op to other arguments (its tangent is
    ``again(x', y) + again(x, y')``, as an engine's forward mode writes it)."""
    if x.node is None and y.node is None:
        return Arr(value, err)

    def back(g: Any, ge: Any, ag: Any) -> list[tuple[Any, Any]]:
        gx, ex, gy, ey = grads(g, ge, ag)
        return [(gx, ex), (gy, ey)]

    def rule(ts: list[Arr | None]) -> Arr | None:
        terms = [again(t, y) if k == 0 else again(x, t) for k, t in enumerate(ts) if t is not None]
        return terms[0] if len(terms) == 1 else elementwise(tape, "add", terms, terms[0].value.shape)

    return tape.push(value, err, [x.node, y.node], back, rule)


def _conv2d(tape: Tape, args: Sequence[Arr], kw: dict[str, Any], shape: tuple[int, ...]) -> Arr:
    """Cross-correlation through one matrix product per image: the windows as rows (zero where the window
    leaves the input, those terms absent from the pairwise sums, as in the lowering)."""
    if len(args) > 2 or kw["dilation"] != 1 or kw["groups"] != 1:
        raise Unsupported("a convolution with a bias, dilation or groups")  # the scalar tape runs these
    x, w = args
    stride, pad = kw["stride"], kw["padding"]
    batch, channels, height, width = x.value.shape
    outs, _, kh, kw_ = w.value.shape
    oh, ow = shape[2], shape[3]
    i, j, c, p, q = np.meshgrid(np.arange(oh), np.arange(ow), np.arange(channels), np.arange(kh), np.arange(kw_),
                                indexing="ij")
    r, s = i * stride + p - pad, j * stride + q - pad
    valid = ((r >= 0) & (r < height) & (s >= 0) & (s < width)).reshape(oh * ow, -1)
    index = (c * height * width + np.clip(r, 0, height - 1) * width + np.clip(s, 0, width - 1)).reshape(oh * ow, -1)
    depth = np.zeros(valid.shape)
    for row in range(valid.shape[0]):
        depth[row, valid[row]] = depths(int(valid[row].sum()))
    wm = Arr(w.value.reshape(outs, -1).T, w.err.reshape(outs, -1).T,
             ints=None if w.ints is None else (w.ints[0].reshape(outs, -1).T, w.ints[1]))
    zero = _const(Fraction(0)).value[()]
    cols, backs = [], []
    value = np.empty(shape, dtype=object)
    err = np.empty(shape)
    for n in range(batch):
        xv = np.where(valid, x.value[n].reshape(-1)[index], zero)
        xe = np.where(valid, x.err[n].reshape(-1)[index], 0.0)
        xi = None if x.ints is None else (np.where(valid, x.ints[0][n].reshape(-1)[index], 0), x.ints[1])
        v, e, back = contract(Arr(xv, xe, ints=xi), wm, depth, valid)
        value[n], err[n] = v.T.reshape(outs, oh, ow), e.T.reshape(outs, oh, ow)
        cols.append(xv)
        backs.append(back)

    def grads(g: Any, ge: Any, ag: Any) -> tuple[Any, Any, Any, Any]:
        gx = np.empty(x.value.shape, dtype=object)
        gx.reshape(-1)[...] = zero
        ex = np.zeros(x.value.shape)
        gw, ew = None, None
        for n in range(batch):
            gxn, exn, gwn, ewn = backs[n](*(a[n].reshape(outs, -1).T for a in (g, ge, ag)))
            flat_g, flat_e = gx[n].reshape(-1), ex[n].reshape(-1)
            np.add.at(flat_g, index[valid], gxn[valid])
            np.add.at(flat_e, index[valid], exn[valid])
            gw = gwn if gw is None else gw + gwn
            ew = ewn if ew is None else ew + ewn
        assert gw is not None and ew is not None  # an empty batch is refused below, before any gradient
        return gx, ex, gw.T.reshape(w.value.shape), ew.T.reshape(w.value.shape)

    if batch == 0:
        raise Unsupported("an empty batch")
    return _two(tape, x, w, value, err, grads, lambda a, b: _conv2d(tape, [a, b], kw, shape))


TENSOR: dict[str, Kernel] = {
    "sum": _total,
    "mean": _mean,
    "logsumexp": _logsumexp,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "layer_norm": _layer_norm,
    "reshape": _reshape,
    "transpose": _transpose,
    "permute": _permute,
    "matmul": _matmul,
    "conv2d": _conv2d,
}
