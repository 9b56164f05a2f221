"""Matrices of scalar nodes for the linear-algebra lowerings (:mod:`.linalg`, :mod:`.spectral`).

A matrix is a list of rows of a backend's scalars or exact :class:`~fractions.Fraction` constants;
``arith`` folds constants, so the identity and the zeros of a triangle stay exact and cost no node.
``peek`` reads a value at the point for a branch (a pivot's row, a sign, the number of sweeps of an
iteration); ``fail`` makes the load error of an op's condition; ``note`` and ``gap`` tell a backend
that listens (the exact tape) how well conditioned a matrix or a spectrum is; ``batched`` maps a
function of one matrix over the leading axes of its operands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from gradspec.errors import DomainError
from gradspec.ops.lowering import Scalars

__all__ = ["SINGULAR", "Array", "Mat", "add_all", "arith", "array", "batched", "dot", "eye", "fail", "gap", "is_const",
           "mm", "note", "peek", "peek_exact", "rows", "transposed"]

Array = Any
Mat = list[list[Any]]

# A pivot this small against the matrix's largest entry is zero: the tape carries 60 digits, and a float
# engine cannot tell such a matrix from a singular one either.
SINGULAR = 1e-40


def is_const(x: Any) -> bool:
    return isinstance(x, Fraction | int | float)


def peek(b: Scalars, x: Any) -> float:
    """The value of ``x`` at the point, for a branch (a pivot choice, a sign)."""
    return float(x) if is_const(x) else float(b.peek(x))


def arith(b: Scalars, name: str, x: Any, y: Any) -> Any:
    """``b.op`` that folds exact constants, so the identity and the zeros of a triangle stay exact."""
    if is_const(x) and is_const(y):
        fx, fy = Fraction(x), Fraction(y)
        if name == "div":
            return fx / fy
        return fx + fy if name == "add" else fx - fy if name == "sub" else fx * fy
    if name == "mul" and ((is_const(x) and x == 0) or (is_const(y) and y == 0)):
        return Fraction(0)
    if name == "mul" and is_const(x) and x == 1:
        return y
    if name in ("mul", "div") and is_const(y) and y == 1:
        return x
    if name == "add" and is_const(x) and x == 0:
        return y
    if name in ("add", "sub") and is_const(y) and y == 0:
        return x
    if name == "sub" and is_const(x) and x == 0:
        return b.op("neg", y)
    return b.op(name, x, y)


def add_all(b: Scalars, xs: Sequence[Any]) -> Any:
    xs = [x for x in xs if not (is_const(x) and x == 0)]
    if not xs:
        return Fraction(0)
    while len(xs) > 1:
        xs = [arith(b, "add", xs[i], xs[i + 1]) for i in range(0, len(xs) - 1, 2)] + ([xs[-1]] if len(xs) % 2 else [])
    return xs[0]


def dot(b: Scalars, xs: Sequence[Any], ys: Sequence[Any]) -> Any:
    return add_all(b, [arith(b, "mul", x, y) for x, y in zip(xs, ys, strict=True)])


def _where(b: Scalars) -> str:
    step = getattr(b, "step", "")
    return f" (in {step})" if step else ""


def fail(b: Scalars, message: str) -> DomainError:
    return DomainError(message + _where(b), col=getattr(b, "col", 0) or None)


def note(b: Scalars, name: str, a: Mat) -> None:
    """Tell a backend that listens (the exact tape) the condition number of a matrix ``name`` factors."""
    condition = getattr(b, "condition", None)
    if condition is not None:
        condition(name, [[peek_exact(b, x) for x in row] for row in a])


def gap(b: Scalars, name: str, what: str, spacing: float, scale: float) -> None:
    """Tell a backend that listens the smallest spacing of a spectrum ``name`` computes against its largest
    magnitude ``scale`` (``what`` names it: "eigenvalue spacing", "smallest singular value"): an engine
    cannot resolve a spacing below eps times the scale, and the derivatives divide by it."""
    listen = getattr(b, "gap", None)
    if listen is not None:
        listen(name, what, spacing, scale)


def peek_exact(b: Scalars, x: Any) -> Any:
    return Fraction(x) if is_const(x) else b.peek(x)


# -- batching ---------------------------------------------------------------------------------------


def rows(x: Array) -> Mat:
    return [list(r) for r in x]


def array(items: Any) -> Array:
    """A list (of lists) of scalars as an object array; a scalar as a 0-d one."""
    if not isinstance(items, list):
        out = np.empty((), dtype=object)
        out[()] = items
        return out
    shape = (len(items), len(items[0])) if items and isinstance(items[0], list) else (len(items),)
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = items[index[0]][index[1]] if len(shape) == 2 else items[index[0]]
    return out


def batched(args: Sequence[Array], cores: Sequence[int], shape: tuple[int, ...],
            fn: Callable[..., Any]) -> Array:
    """``fn`` applied to every batch element (the leading axes, broadcast) of ``args``, each of which
    has ``cores[k]`` trailing core axes; ``fn`` gets lists (of lists) and returns one (or a scalar)."""
    batch = np.broadcast_shapes(*(a.shape[:a.ndim - c] for a, c in zip(args, cores, strict=True)))
    spread = [np.broadcast_to(a, batch + a.shape[a.ndim - c:]) for a, c in zip(args, cores, strict=True)]
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(batch):
        parts = [s[idx] for s in spread]
        result = array(fn(*[rows(p) if p.ndim == 2 else list(p) for p in parts]))
        out[idx] = result if result.ndim else result[()]
    return out


def eye(n: int) -> Mat:
    return [[Fraction(int(i == j)) for j in range(n)] for i in range(n)]


def transposed(a: Mat) -> Mat:
    return [list(r) for r in zip(*a, strict=True)]


def mm(b: Scalars, x: Mat, y: Mat) -> Mat:
    cols = transposed(y)
    return [[dot(b, row, col) for col in cols] for row in x]
