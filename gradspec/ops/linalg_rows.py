"""The tensor ops of one group of the op table: linear algebra (det, solve, cholesky, qr, eigh, ...).

Each row is a :class:`~gradspec.ops.row.TensorOp`; :mod:`gradspec.ops.table` joins the groups into
``TENSOR_OPS``. Their element-wise definitions are in :mod:`gradspec.ops.lowering.linalg` (elimination
with the pivots chosen at the point) and :mod:`gradspec.ops.lowering.spectral` (iterations run at the
point until they converge); every op is batched over leading axes. The conventions (which triangle an
op reads, qr's signs, eigenvectors' signs, lu_solve's packed operand) are in docs/linalg.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from gradspec.ops.rebuilt_tensor import dense
from gradspec.ops.row import Keyword, TensorOp
from gradspec.ops.shapes import linalg as _shape

__all__ = ["ROWS"]

_OUTPUT = Keyword("output", "int", 0, internal=True)
_UPPER = Keyword("upper", "int", 0)
_UPLO = Keyword("uplo", "str", "L", choices=("L", "U"))  # the triangle a symmetric matrix is read through


def _jax_batch(j: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """``a`` and ``b`` with their batch axes broadcast (lax's triangular solve wants them equal)."""
    batch = j.numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return j.numpy.broadcast_to(a, batch + a.shape[-2:]), j.numpy.broadcast_to(b, batch + b.shape[-2:])


def _jax_triangular(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    t, b = _jax_batch(j, a[0], a[1])
    return j.lax.linalg.triangular_solve(t, b, left_side=True, lower=not kw["upper"])


def _jax_cho_solve(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    import jax.scipy.linalg

    factor, b = _jax_batch(j, a[1], a[0])
    return jax.scipy.linalg.cho_solve((factor, not kw["upper"]), b)


def _jax_cho_inverse(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    import jax.scipy.linalg

    eye = j.numpy.broadcast_to(j.numpy.eye(a[0].shape[-1], dtype=a[0].dtype), a[0].shape)
    return jax.scipy.linalg.cho_solve((a[0], not kw["upper"]), eye)


def _torch_lu_solve(t: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    # No row exchanges: LAPACK's 1-based pivots 1..n.
    n = a[0].shape[-1]
    pivots = t.arange(1, n + 1, dtype=t.int32).expand(*a[0].shape[:-2], n)
    return t.linalg.lu_solve(a[0], pivots, a[1])


def _jax_lu_solve(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    import jax.scipy.linalg

    lu, b = _jax_batch(j, a[0], a[1])
    n = lu.shape[-1]
    pivots = j.numpy.broadcast_to(j.numpy.arange(n, dtype="int32"), (*lu.shape[:-2], n))  # 0-based here
    return jax.scipy.linalg.lu_solve((lu, pivots), b)


# An eigenvector's sign is free, and so is a singular pair's (u_k, v_k), shared by the two: the engine
# spellings make the first entry of each column (of the eigenvectors, of U) whose magnitude is at least
# half the column's largest positive, as the lowering does, and flip Vh's row k with U's column k (a
# constant ±1 per column, so the engine's derivatives are flipped with its values and compared as they are).


def _torch_signs(t: Any, columns: Any) -> Any:
    """The sign of each column's first entry at least half its largest: [..., 1, k]."""
    mags = columns.abs()
    first = (mags >= mags.amax(dim=-2, keepdim=True) / 2).to(t.int64).argmax(dim=-2, keepdim=True)
    return t.sign(t.gather(columns, -2, first)).detach()


def _jax_signs(j: Any, columns: Any) -> Any:
    mags = j.numpy.abs(columns)
    first = j.numpy.argmax(mags >= j.numpy.max(mags, axis=-2, keepdims=True) / 2, axis=-2, keepdims=True)
    return j.lax.stop_gradient(j.numpy.sign(j.numpy.take_along_axis(columns, first, axis=-2)))


def _torch_eigh(t: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    values, vectors = t.linalg.eigh(a[0], UPLO=kw["uplo"])
    return values if kw["output"] == 0 else vectors * _torch_signs(t, vectors)


def _jax_eigh(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    values, vectors = j.numpy.linalg.eigh(a[0], UPLO=kw["uplo"])
    return values if kw["output"] == 0 else vectors * _jax_signs(j, vectors)


def _torch_svd(t: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    u, s, vh = t.linalg.svd(a[0], full_matrices=False)
    signs = _torch_signs(t, u)
    return (u * signs, s, vh * signs.transpose(-1, -2))[kw["output"]]


def _jax_svd(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    u, s, vh = j.numpy.linalg.svd(a[0], full_matrices=False)
    signs = _jax_signs(j, u)
    return (u * signs, s, vh * j.numpy.swapaxes(signs, -1, -2))[kw["output"]]


def _jax_expm(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    import jax.scipy.linalg

    return jax.scipy.linalg.expm(a[0])


# -- what a dense kernel's derivatives invert (gradspec.ops.rebuilt_tensor.dense) ---------------------


def _dense(matrix: Callable[[Sequence[Any], dict[str, Any]], Any] | None = None, power: int = 1) -> Callable[[Any], Any]:
    """The rebuilt allowance of a dense kernel whose derivatives carry the inverse of ``matrix`` (of the
    operands and keywords, as float arrays) ``power`` times per order; None: a spectral or matrix function,
    allowed only its quantity's own largest element (:func:`gradspec.ops.rebuilt_tensor.dense`)."""
    return functools.partial(dense, matrix=matrix, power=power)


def _first(a: Sequence[Any], kw: dict[str, Any]) -> Any:
    return a[0]


def _symmetric(a: Sequence[Any], kw: dict[str, Any]) -> Any:
    """The symmetric matrix read through the lower triangle (cholesky's)."""
    import numpy as np

    low = np.tril(a[0])
    return low + np.swapaxes(np.tril(a[0], -1), -1, -2)


def _triangle(index: int) -> Callable[[Sequence[Any], dict[str, Any]], Any]:
    """The triangle of operand ``index`` that ``upper`` names: the factor a solve reads."""
    def read(a: Sequence[Any], kw: dict[str, Any]) -> Any:
        import numpy as np

        return np.triu(a[index]) if kw.get("upper") else np.tril(a[index])

    return read


def _packed(a: Sequence[Any], kw: dict[str, Any]) -> Any:
    """L U from lu_solve's packed operand (L's unit diagonal implied)."""
    import numpy as np

    lu = np.asarray(a[0], dtype=float)
    return (np.tril(lu, -1) + np.eye(lu.shape[-1])) @ np.triu(lu)


ROWS: tuple[TensorOp, ...] = (
    TensorOp("det", 1, (), _shape.square_batch, "linalg.det",
             lambda t, a, kw: t.linalg.det(a[0]), lambda j, a, kw: j.numpy.linalg.det(a[0]),
             "the product of U's diagonal in P A = L U (partial pivoting), times the permutation's sign",
             rebuilt=_dense(_first)),
    TensorOp("slogdet", 1, (_OUTPUT,), _shape.square_batch, "linalg.slogdet",
             lambda t, a, kw: t.linalg.slogdet(a[0])[kw["output"]],
             lambda j, a, kw: j.numpy.linalg.slogdet(a[0])[kw["output"]],
             "(sign of det, log|det|): the sign an exact ±1, log|det| = sum_k log|u_kk| of P A = L U",
             outputs=("sign", "logabsdet"), bare=None,
             rebuilt=_dense(_first)),
    TensorOp("inv", 1, (), _shape.square_same, "linalg.inv",
             lambda t, a, kw: t.linalg.inv(a[0]), lambda j, a, kw: j.numpy.linalg.inv(a[0]),
             "A^-1 = U^-1 L^-1 P by substitution on the identity",
             rebuilt=_dense(_first)),
    TensorOp("solve", 2, (), _shape.linear_solve, "linalg.solve",
             lambda t, a, kw: t.linalg.solve(a[0], a[1]), lambda j, a, kw: j.numpy.linalg.solve(a[0], a[1]),
             "X with A X = B: P A = L U, forward then back substitution",
             rebuilt=_dense(_first)),
    TensorOp("matrix_power", 1, (Keyword("n", "int"),), _shape.square_same, "linalg.matrix_power",
             lambda t, a, kw: t.linalg.matrix_power(a[0], kw["n"]),
             lambda j, a, kw: j.numpy.linalg.matrix_power(a[0], kw["n"]),
             "A^n by repeated squaring (n < 0: the inverse's power; n = 0: the identity)",
             rebuilt=_dense()),
    TensorOp("solve_triangular", 2, (Keyword("upper", "int"),), _shape.triangular_solve, "linalg.solve_triangular",
             lambda t, a, kw: t.linalg.solve_triangular(a[0], a[1], upper=bool(kw["upper"])), _jax_triangular,
             "X with T X = B by substitution, T the triangle of A that upper names (the other one is not read)",
             rebuilt=_dense(_triangle(0))),
    TensorOp("cholesky", 1, (), _shape.square_same, "linalg.cholesky",
             lambda t, a, kw: t.linalg.cholesky(a[0]), lambda j, a, kw: j.numpy.linalg.cholesky(a[0]),
             "L with L L^T = A, reading A's lower triangle: L_jj = sqrt(a_jj - sum_k L_jk^2), "
             "L_ij = (a_ij - sum_k L_ik L_jk) / L_jj",
             rebuilt=_dense(_symmetric)),
    TensorOp("cholesky_solve", 2, (_UPPER,), _shape.cholesky_solve, "linalg.cholesky_solve",
             lambda t, a, kw: t.cholesky_solve(a[0], a[1], upper=bool(kw["upper"])), _jax_cho_solve,
             "X with L L^T X = B (upper=1: U^T U X = B), reading only the factor's triangle",
             rebuilt=_dense(_triangle(1), power=2)),
    TensorOp("cholesky_inverse", 1, (_UPPER,), _shape.square_same, "linalg.cholesky_inverse",
             lambda t, a, kw: t.cholesky_inverse(a[0], upper=bool(kw["upper"])), _jax_cho_inverse,
             "(L L^T)^-1 (upper=1: (U^T U)^-1), reading only the factor's triangle",
             rebuilt=_dense(_triangle(0), power=2)),
    TensorOp("lu_solve", 2, (), _shape.triangular_solve, "linalg.lu_solve", _torch_lu_solve, _jax_lu_solve,
             "X with L U X = B, L (unit diagonal) and U packed in lu as LAPACK packs them, no row exchanges",
             rebuilt=_dense(_packed)),
    TensorOp("pinv", 1, (), _shape.pinv, "linalg.pinv",
             lambda t, a, kw: t.linalg.pinv(a[0]), lambda j, a, kw: j.numpy.linalg.pinv(a[0]),
             "full rank only: (A^T A)^-1 A^T when tall, A^T (A A^T)^-1 when wide",
             rebuilt=_dense(_first)),
    TensorOp("qr", 1, (_OUTPUT,), _shape.qr, "linalg.qr",
             lambda t, a, kw: t.linalg.qr(a[0])[kw["output"]], lambda j, a, kw: j.numpy.linalg.qr(a[0])[kw["output"]],
             "reduced Q and R by Householder reflections with LAPACK's signs (R_kk = -sign(alpha_k) |x_k|)",
             outputs=("Q", "R"), bare=None,
             rebuilt=_dense(_first)),
    TensorOp("eigvalsh", 1, (_UPLO,), _shape.eigvalsh, "spectral.eigvalsh",
             lambda t, a, kw: t.linalg.eigvalsh(a[0], UPLO=kw["uplo"]),
             lambda j, a, kw: j.numpy.linalg.eigvalsh(a[0], UPLO=kw["uplo"]),
             "the eigenvalues, ascending, of the symmetric matrix read through A's lower triangle (uplo=\"U\": "
             "the upper): the diagonal of cyclic Jacobi rotations run at the point to 1e-60 of A, and 3 sweeps more",
             rebuilt=_dense()),
    TensorOp("eigh", 1, (_OUTPUT, _UPLO), _shape.eigh, "spectral.eigh", _torch_eigh, _jax_eigh,
             "(eigenvalues ascending, eigenvectors as columns) of the symmetric matrix read through A's lower "
             "triangle (uplo=\"U\": the upper), by cyclic Jacobi; each column's first entry at least half its "
             "largest is positive", outputs=("eigenvalues", "eigenvectors"), bare=None,
             rebuilt=_dense()),
    TensorOp("svdvals", 1, (), _shape.svdvals, "spectral.svdvals",
             lambda t, a, kw: t.linalg.svdvals(a[0]), lambda j, a, kw: j.numpy.linalg.svdvals(a[0]),
             "the singular values, descending: sqrt of the eigenvalues of A^T A (A A^T when wide), by Jacobi",
             rebuilt=_dense()),
    TensorOp("svd", 1, (_OUTPUT,), _shape.svd, "spectral.svd", _torch_svd, _jax_svd,
             "the reduced SVD (U, S, Vh), S descending: V the eigenvectors of A^T A by Jacobi, U = A V / S (wide: "
             "U those of A A^T, V = A^T U / S); each column of U has its first entry at least half its largest "
             "positive, Vh's row flipped with it", outputs=("U", "S", "Vh"), bare=None,
             rebuilt=_dense()),
    TensorOp("matrix_exp", 1, (), _shape.square_same, "spectral.matrix_exp",
             lambda t, a, kw: t.linalg.matrix_exp(a[0]), _jax_expm,
             "exp(A) = T(A / 2^s)^(2^s), T the Taylor polynomial of 50 terms, |A / 2^s|_inf <= 1/2",
             rebuilt=_dense()),
)


# -- what part of an operand an op reads -------------------------------------------------------------
# cholesky, eigvalsh and eigh read a symmetric matrix through its lower triangle; a factor is read through
# its triangle. A differentiable input given straight to such an operand is perturbed only within that
# structure (symmetric tangents, triangular ones), and its gradients are compared projected onto it: an
# engine that symmetrises a gradient, or returns one on the triangle it never reads, follows a convention,
# and is judged where every convention agrees (docs/linalg.md).


def _side(kw: dict[str, Any]) -> str:
    return "upper" if kw.get("upper") else "lower"


READS: dict[str, Any] = {
    "cholesky": lambda kw: {0: "symmetric"},
    "eigvalsh": lambda kw: {0: "symmetric"},
    "eigh": lambda kw: {0: "symmetric"},
    "cholesky_solve": lambda kw: {1: _side(kw)},
    "cholesky_inverse": lambda kw: {0: _side(kw)},
    "solve_triangular": lambda kw: {0: _side(kw)},
}


# -- outputs whose signs gradspec fixes --------------------------------------------------------------
# eigh's eigenvectors and svd's U and Vh have a free sign per column (pair); the lowering and the engine
# spellings fix it by one rule, and a report says so wherever such an output is compared.

SIGNS: dict[str, tuple[tuple[int, ...], str]] = {
    "eigh": ((1,), "signs of eigenvectors fixed by gradspec's rule (docs/linalg.md)"),
    "svd": ((0, 2), "signs of singular vectors fixed by gradspec's rule (docs/linalg.md)"),
}


def sign_notes(steps: Sequence[Any]) -> list[str]:
    """What a report says of the sign-normalised outputs the steps use (each note once, in table order)."""
    used = {step.op for step in steps if step.op in SIGNS and step.kw.get("output") in SIGNS[step.op][0]}
    return [note for op, (_, note) in SIGNS.items() if op in used]


def project(structure: str, x: Any) -> Any:
    """``x`` (an array whose last two axes are a matrix) projected onto ``structure``: its symmetric part,
    or its lower or upper triangle (the other entries an exact zero)."""
    import numpy as np

    arr = np.asarray(x)
    if structure == "symmetric":
        return (arr + np.swapaxes(arr, -1, -2)) / 2
    n, m = arr.shape[-2:]
    keep = np.tril(np.ones((n, m), dtype=bool)) if structure == "lower" else np.triu(np.ones((n, m), dtype=bool))
    return np.where(keep, arr, arr * 0)


def structures(steps: Sequence[Any], differentiable: Sequence[tuple[str, int]]) -> dict[str, str]:
    """The differentiable inputs (by name) that some op reads through a structure, and that structure."""
    index = {i: name for name, i in differentiable}
    found: dict[str, str] = {}
    for step in steps:
        reads = READS.get(step.op) if step.op else None
        if reads is None:
            continue
        for position, structure in reads(step.kw).items():
            name = index.get(step.args[position])
            if name is not None:
                found.setdefault(name, structure)
    return found
