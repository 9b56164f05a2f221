"""Shape rules of the linear-algebra ops (:mod:`gradspec.ops.linalg_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence

from gradspec.ops.shapes import Kw, Shape, ShapeError, broadcast, show

__all__ = ['cholesky_solve', 'eigh', 'eigvalsh', 'linear_solve', 'pinv', 'qr', 'square_batch', 'square_same', 'svd',
           'svdvals', 'triangular_solve']

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


def eigvalsh(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """The eigenvalues of a batch of symmetric matrices [..., n, n]: [..., n]."""
    batch, n = _square(name, shapes[0])
    return (*batch, n)


def eigh(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """eigh(a) of [..., n, n]: the eigenvalues [..., n] (output 0) and the eigenvectors [..., n, n] (output 1)."""
    batch, n = _square(name, shapes[0])
    return (*batch, n) if kw["output"] == 0 else (*batch, n, n)


def svdvals(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """The singular values of [..., m, n]: [..., min(m, n)]."""
    batch, m, n = _matrix(name, shapes[0])
    return (*batch, min(m, n))


def svd(name: str, shapes: Sequence[Shape], kw: Kw) -> Shape:
    """The reduced SVD of [..., m, n], k = min(m, n): U [..., m, k] (output 0), S [..., k] (output 1) and
    Vᵀ [..., k, n] (output 2)."""
    batch, m, n = _matrix(name, shapes[0])
    k = min(m, n)
    return ((*batch, m, k), (*batch, k), (*batch, k, n))[kw["output"]]
