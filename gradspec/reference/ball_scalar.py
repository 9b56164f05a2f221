"""The element-wise kernels of the ball reference: one row per scalar op of the op table that has one.

A row gives the op's value on balls, its local partials (balls, or the numbers 1 and -1), and its second
partials in float, which bound how far a partial moves when its arguments move by their rounding bound
(the scalar tape evaluates the moved partial instead); ``check`` sends an element that may sit on a kink
or a domain's edge to the scalar tape. :func:`elementwise` applies a row with NumPy broadcasting and
keeps the scalar tape's rounding bound beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from flint import arb

from gradspec.ops.table import OPS
from gradspec.reference.ball_ops import Arr, Tape, Unsupported, floats, midpoints, unbroadcast

__all__ = ["REBUILT", "SCALAR", "Kernel", "elementwise"]


@dataclass(frozen=True)
class Kernel:
    """An element-wise op: its value, its local partials (balls, or the numbers 1, -1), and its second
    partials in float (``second(x, v)[k][j]`` = d partial_k / d x_j) for the bound on a moved partial.
    ``check`` raises :class:`Unsupported` where an element may sit on a kink or a domain edge."""

    forward: Callable[[list[Any]], Any]  # the op on balls
    partials: Callable[[list[Any], Any], list[Any]]
    second: Callable[[list[Any], Any], list[list[Any]]] | None = None
    check: Callable[[list[Any], list[bool]], None] | None = None


def _map(fn: Callable[..., Any]) -> Callable[..., Any]:
    f = np.frompyfunc(fn, 1, 1)
    return lambda x: np.asarray(f(x), dtype=object).reshape(np.shape(x))


_exp, _log, _sin, _cos, _sqrt, _tanh = (_map(getattr(arb, n)) for n in ("exp", "log", "sin", "cos", "sqrt", "tanh"))
_sech2 = _map(lambda x: 1 / x.cosh() ** 2)  # tanh' without 1 - t*t's cancellation where |t| is near 1


def _all(pred: Callable[[Any], bool], a: Any) -> bool:
    return all(pred(x) for x in np.asarray(a, dtype=object).flat)


def _positive(args: list[Any], varying: list[bool]) -> None:
    if not _all(lambda x: x > 0, args[0]):
        raise Unsupported("an argument at or near its domain's edge")


def _nonzero_divisor(args: list[Any], varying: list[bool]) -> None:
    if not _all(lambda x: x > 0 or x < 0, args[1]):
        raise Unsupported("a divisor at or near zero")


def _off_kink(args: list[Any], varying: list[bool]) -> None:
    # The op table's kink test is |x| < 1e-40; a ball that reaches that close is left to the scalar tape.
    if not _all(lambda x: x > arb("1e-40") or x < arb("-1e-40"), args[0]):
        raise Unsupported("an element at or near a kink")


def _pow_check(args: list[Any], varying: list[bool]) -> None:
    if varying[1] or not _all(lambda e: e.is_integer() and e >= 1, args[1]):
        _positive(args, varying)


def _pow_value(a: list[Any]) -> Any:
    return np.frompyfunc(lambda x, e: x ** int(e.mid().floor().unique_fmpz()) if e.is_integer() and e.is_exact()
                         else (e * x.log()).exp(), 2, 1)(a[0], a[1])


def _pow_partials(a: list[Any], v: Any) -> list[Any]:
    x, e = a
    dx = np.frompyfunc(lambda x, e, v: e * x ** int(e.mid().floor().unique_fmpz() - 1)
                       if e.is_integer() and e.is_exact() else e * v / x, 3, 1)(x, e, v)
    de = np.frompyfunc(lambda x, v: v * x.log() if x > 0 else arb(0), 2, 1)(x, v)
    return [dx, de]


def _pow_second(x: list[Any], v: Any) -> list[list[Any]]:
    a, e = x
    with np.errstate(all="ignore"):
        la = np.log(np.abs(a))
        saa = e * (e - 1) * np.abs(a) ** (e - 2)
        sae = np.abs(a) ** (e - 1) * (1 + e * la)
        see = np.abs(v) * la * la
    return [[np.nan_to_num(saa, nan=np.inf), np.nan_to_num(sae, nan=np.inf)],
            [np.nan_to_num(sae, nan=np.inf), np.nan_to_num(see, nan=np.inf)]]


def _where(x: Any, positive: Any, negative: Any) -> Any:
    """Per element of ``x`` (kept off its kink by the op's check): ``positive`` where x > 0, else ``negative``."""
    out: Any = np.where(floats(x) > 0, positive, negative)
    return out


# No kernel for an op whose engines rebuild its partial from its rounded output (tanh, sigmoid: the op
# row's partial_abs): the scalar tape keeps what that loses apart from the precision bound (the precision
# verdict's second bound), which this sweep does not carry; graphs with such an op run on the tape.
SCALAR: dict[str, Kernel] = {
    "add": Kernel(lambda a: a[0] + a[1], lambda a, v: [1, 1]),
    "sub": Kernel(lambda a: a[0] - a[1], lambda a, v: [1, -1]),
    "mul": Kernel(lambda a: a[0] * a[1], lambda a, v: [a[1], a[0]]),
    "div": Kernel(lambda a: a[0] / a[1], lambda a, v: [1 / a[1], -v / a[1]],
                  lambda x, v: [[0 * v, -1 / x[1] ** 2], [-1 / x[1] ** 2, 2 * x[0] / x[1] ** 3]], _nonzero_divisor),
    "neg": Kernel(lambda a: -a[0], lambda a, v: [-1], lambda x, v: [[0 * v]]),
    "exp": Kernel(lambda a: _exp(a[0]), lambda a, v: [v], lambda x, v: [[np.exp(x[0])]]),
    "log": Kernel(lambda a: _log(a[0]), lambda a, v: [1 / a[0]], lambda x, v: [[-1 / x[0] ** 2]], _positive),
    "sin": Kernel(lambda a: _sin(a[0]), lambda a, v: [_cos(a[0])], lambda x, v: [[-np.sin(x[0])]]),
    "cos": Kernel(lambda a: _cos(a[0]), lambda a, v: [-_sin(a[0])], lambda x, v: [[-np.cos(x[0])]]),
    "sqrt": Kernel(lambda a: _sqrt(a[0]), lambda a, v: [1 / (2 * v)], lambda x, v: [[-1 / (4 * v**3)]], _positive),
    "pow": Kernel(_pow_value, _pow_partials, _pow_second, _pow_check),
    "relu": Kernel(lambda a: _where(a[0], a[0], arb(0)), lambda a, v: [_where(a[0], arb(1), arb(0))], None, _off_kink),
    "abs": Kernel(lambda a: _where(a[0], a[0], -a[0]), lambda a, v: [_where(a[0], arb(1), arb(-1))], None, _off_kink),
}
_RATIONAL = frozenset({"add", "sub", "mul"})
# The ops whose engines rebuild the partial from the rounded output, taken only by a tape that keeps what
# that loses (``Tape.rebuilt`` not None: the references build the tape twice, without and with it, and keep
# the difference apart as the rebuilt allowance).
REBUILT: dict[str, Kernel] = {
    "tanh": Kernel(lambda a: _tanh(a[0]), lambda a, v: [_sech2(a[0])], lambda x, v: [[-2 * v / np.cosh(x[0]) ** 2]]),
}


def elementwise(tape: Tape, name: str, args: Sequence[Arr], shape: tuple[int, ...], expand: bool = False) -> Arr:
    """A scalar op element by element with NumPy broadcasting. ``expand``: broadcast arguments as per-copy
    nodes, as a graph's element-wise step does; otherwise a broadcast argument is one node used many
    times, as inside the lowering of softmax."""
    op, kernel = OPS[name], SCALAR[name] if name in SCALAR else REBUILT[name]
    if name in REBUILT and tape.rebuilt is None:
        raise Unsupported(f"{name}: a partial rebuilt from a rounded output, on a tape that does not keep it")
    if expand:
        args = [tape.copy(a, shape) if a.node is not None and a.value.shape != shape else a for a in args]
    vals = [np.broadcast_to(a.value, shape) for a in args]
    errs = [np.broadcast_to(a.err, shape) for a in args]
    varying = [a.node is not None for a in args]
    if kernel.check is not None:
        kernel.check(vals, varying)
    value = np.asarray(kernel.forward(vals), dtype=object).reshape(shape)
    fv = floats(value)
    if not np.all(np.isfinite(fv)):
        raise Unsupported(f"{name} is not finite in float64 here")
    fx = [np.broadcast_to(midpoints(a), shape) for a in args]
    partials = kernel.partials(vals, value)

    def magnitude(p: Any) -> Any:
        if isinstance(p, int):
            return abs(p)
        known = fv if p is value else next((f for v, f in zip(vals, fx, strict=True) if p is v), None)
        return np.abs(known if known is not None else floats(np.broadcast_to(p, shape)))

    mags = [magnitude(p) for p in partials]
    if name in _RATIONAL:
        err = np.abs(fv)
        perr: list[Any] = [errs[1], errs[0]] if name == "mul" else [0.0, 0.0]
    else:
        err = max(1.0, op.ulps) * np.abs(fv)
        moved: list[Any]
        if kernel.second is not None and any(np.any(e) for e in errs):
            second = kernel.second(fx, fv)
            with np.errstate(invalid="ignore"):  # an infinite second partial times an error of 0 moves nothing
                moved = [sum((np.where(np.asarray(e) == 0, 0.0, np.abs(s) * e) for s, e in zip(row, errs, strict=True)),
                             np.zeros(shape)) for row in second]
        else:
            moved = [0.0] * len(args)
        lost = op.partial_abs if tape.rebuilt else 0.0  # nonzero only for the ops of REBUILT
        perr = [moved[k] + max(1.0, op.partial_ulps) * mags[k] + lost for k in range(len(args))]
    for k in range(len(args)):
        err = err + mags[k] * errs[k]
    err = np.broadcast_to(err, shape)
    if not any(varying):
        return Arr(value, err, f=fv)
    shares = [(partials[k], mags[k], perr[k], a.value.shape) for k, a in enumerate(args)]

    def back(g: Any, ge: Any, ag: Any) -> list[tuple[Any, Any]]:
        out = []
        for (p, mag, pe, source), a in zip(shares, args, strict=True):
            if a.node is None:
                out.append((None, None))
                continue
            gp = g * p if not isinstance(p, int) else (g if p == 1 else -g)
            out.append((unbroadcast(gp, source), unbroadcast(mag * ge + 2 * ag * mag + ag * pe, source)))
        return out

    out = tape.push(value, err, [a.node for a in args], back)
    made = Arr(out.value, out.err, out.node, f=fv)

    def rule(ts: list[Arr | None]) -> Arr | None:
        t = _TANGENT[name](tape, list(args), made, ts)
        if t is None:
            return None
        if t.value.shape != shape:  # the tangent of one broadcast argument alone
            t = tape.spread(t, shape)
            assert t is not None
        # Never below the nested duals' bound of the same tangent, sum_k p_k t_k with each partial off by
        # its own bound (perr: the op row's partial budget and how far the arguments' errors move it):
        # the kernels above spell a partial in ops whose budgets may add up to less than the row's.
        floor = np.zeros(shape)
        for p_mag, p_err, tk in zip(mags, perr, ts, strict=True):
            if tk is not None:
                tf = np.abs(midpoints(tk))
                floor = floor + p_mag * tk.err + tf * p_err + p_mag * tf
        floor = floor + (sum(tk is not None for tk in ts) - 1) * np.abs(midpoints(t))
        return Arr(t.value, np.maximum(t.err, floor), t.node, t.ints, t.f)

    assert out.node is not None
    tape.rules[out.node] = rule
    return made


# -- forward mode --------------------------------------------------------------------------------------
# Each op's tangent written in the ops that have kernels, as an engine's forward mode writes it: the
# partial times the argument's tangent, summed over the arguments. Built on the tape, the tangent is
# itself differentiable (swept in reverse, it gives a Hessian-vector product).

Tangent = Callable[[Tape, list[Arr], Arr, "list[Arr | None]"], "Arr | None"]


def _op(tape: Tape, name: str, *args: Arr) -> Arr:
    return elementwise(tape, name, args, np.broadcast_shapes(*(a.value.shape for a in args)))


def _plus(tape: Tape, a: Arr | None, b: Arr | None, sub: bool = False) -> Arr | None:
    if b is None:
        return a
    if a is None:
        return _op(tape, "neg", b) if sub else b
    return _op(tape, "sub" if sub else "add", a, b)


def _times(tape: Tape, partial: Arr, t: Arr | None) -> Arr | None:
    return None if t is None else _op(tape, "mul", partial, t)


def _number(like: Arr, x: int) -> Arr:
    """A constant of ``like``'s shape holding the exact integer ``x`` (no rounding: err 0)."""
    out = np.empty(like.value.shape, dtype=object)
    out[...] = arb(x)
    return Arr(out, np.zeros(like.value.shape), f=np.full(like.value.shape, float(x)))


def _mask(a: Arr, positive: int, negative: int) -> Arr:
    """The exact partial of relu or abs off its kink: ``positive`` where ``a > 0``, else ``negative``."""
    out = np.asarray(_where(a.value, arb(positive), arb(negative)), dtype=object)
    return Arr(out, np.zeros(out.shape), f=floats(out))


def _div_tangent(tape: Tape, a: list[Arr], v: Arr, t: list[Arr | None]) -> Arr | None:
    # d(x/y) = x'/y - (x/y) y'/y
    first = None if t[0] is None else _op(tape, "div", t[0], a[1])
    second = None if t[1] is None else _op(tape, "div", _op(tape, "mul", v, t[1]), a[1])
    return _plus(tape, first, second, sub=True)


def _pow_tangent(tape: Tape, a: list[Arr], v: Arr, t: list[Arr | None]) -> Arr | None:
    if t[1] is not None or a[1].node is not None:
        raise Unsupported("a power with a moving exponent in forward mode")  # the scalar path takes it
    e = a[1]
    if all(x == 1 for x in np.asarray(e.value).flat):
        return t[0]
    less = Arr(np.asarray(e.value - 1, dtype=object), e.err, f=np.asarray(midpoints(e) - 1))
    return _times(tape, _op(tape, "mul", e, _op(tape, "pow", a[0], less)), t[0])


def _slope(tape: Tape, x: Arr, y: Arr) -> Arr:
    """tanh's partial ``1 - y*y`` at ``x`` (``y = tanh(x)``; in balls as sech²) as one node, with the op
    row's budget for it and for its own derivative ``-2 y (1 - y*y)``, as the nested duals give a derivative
    of each order: relative ``partial_ulps + 2 (order - 1)``, and, on a tape that keeps it,
    ``partial_abs * order`` absolute for the partial rebuilt from the rounded output."""
    op = OPS["tanh"]
    p = _sech2(x.value)
    fy = midpoints(y)
    fp = floats(p)  # not 1 - fy*fy, which is 0 in float64 where |x| > 19
    d1 = np.abs(-2 * fy * fp)
    d2 = np.abs(-2 * fp * (1 - 3 * fy * fy))
    lost = op.partial_abs if tape.rebuilt else 0.0
    err = max(1.0, op.partial_ulps) * np.abs(fp) + d1 * x.err + lost
    if x.node is None:
        return Arr(p, err, f=fp)
    slope = np.asarray(-2 * y.value * p, dtype=object)
    perr = max(1.0, op.partial_ulps + 2) * d1 + d2 * x.err + 2 * lost

    def back(g: Any, ge: Any, ag: Any) -> list[tuple[Any, Any]]:
        return [(g * slope, d1 * ge + 2 * ag * d1 + ag * perr)]

    out = tape.push(p, err, [x.node], back)
    return Arr(out.value, out.err, out.node, f=fp)


_TANGENT: dict[str, Tangent] = {
    "add": lambda tape, a, v, t: _plus(tape, t[0], t[1]),
    "sub": lambda tape, a, v, t: _plus(tape, t[0], t[1], sub=True),
    "mul": lambda tape, a, v, t: _plus(tape, _times(tape, a[1], t[0]), _times(tape, a[0], t[1])),
    "div": _div_tangent,
    "neg": lambda tape, a, v, t: None if t[0] is None else _op(tape, "neg", t[0]),
    "exp": lambda tape, a, v, t: _times(tape, v, t[0]),
    "log": lambda tape, a, v, t: None if t[0] is None else _op(tape, "div", t[0], a[0]),
    "sin": lambda tape, a, v, t: _times(tape, _op(tape, "cos", a[0]), t[0]),
    "cos": lambda tape, a, v, t: _times(tape, _op(tape, "neg", _op(tape, "sin", a[0])), t[0]),
    "sqrt": lambda tape, a, v, t: None if t[0] is None else _op(tape, "div", t[0], _op(tape, "mul", _number(v, 2), v)),
    "pow": _pow_tangent,
    "relu": lambda tape, a, v, t: _times(tape, _mask(a[0], 1, 0), t[0]),
    "abs": lambda tape, a, v, t: _times(tape, _mask(a[0], 1, -1), t[0]),
    "tanh": lambda tape, a, v, t: _times(tape, _slope(tape, a[0], v), t[0]),
}
