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

__all__ = ["SCALAR", "Kernel", "elementwise"]


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


_exp, _log, _sin, _cos, _sqrt = (_map(getattr(arb, n)) for n in ("exp", "log", "sin", "cos", "sqrt"))


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


def elementwise(tape: Tape, name: str, args: Sequence[Arr], shape: tuple[int, ...], expand: bool = False) -> Arr:
    """A scalar op element by element with NumPy broadcasting. ``expand``: broadcast arguments as per-copy
    nodes, as a graph's element-wise step does; otherwise a broadcast argument is one node used many
    times, as inside the lowering of softmax."""
    op, kernel = OPS[name], SCALAR[name]
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
        if kernel.second is not None and any(np.any(e) for e in errs):
            second = kernel.second(fx, fv)
            moved = [sum((np.abs(s) * e for s, e in zip(row, errs, strict=True)), np.zeros(shape)) for row in second]
        else:
            moved = [0.0] * len(args)
        perr = [moved[k] + max(1.0, op.partial_ulps) * mags[k] for k in range(len(args))]
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
    return Arr(out.value, out.err, out.node, f=fv)
