"""Linear algebra lowered to scalar ops: elimination with the pivots chosen at the point.

Every op here is the textbook exact algorithm (Gaussian elimination with partial pivoting, forward and
back substitution, Cholesky, Householder QR) written in the scalar ops ``add``, ``sub``, ``mul``,
``div``, ``sqrt``, ``log`` and ``neg``. A pivot choice is a branch: it is taken by reading the pivot
candidates' values at the point (the backend's ``peek``), and the function does not depend on it, so
the exact tape differentiates the same rational (or algebraic) function whichever row it picks. A
point where an op's condition fails (a singular matrix, one that is not positive definite) raises
:class:`~gradspec.errors.DomainError`, which the loader reports as a load error; an exact tape also
hears the condition number of every matrix it factors (``condition``), so a check can report a
matrix too ill-conditioned for the engine's precision instead of judging it.

Conventions (docs/linalg.md): ``cholesky`` reads the lower triangle of its input, ``cholesky_solve``
and ``cholesky_inverse`` the triangle ``upper`` names, ``solve_triangular`` the triangle it is told;
``lu_solve(lu, b)`` takes LAPACK's packed factorisation without row exchanges (pivots 1..n); ``qr``
makes LAPACK's Householder sign choice (R_kk = -sign(alpha_k) * |x_k|, no reflection for an empty or
zero sub-column), so its signs are those of torch and JAX on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from gradspec.errors import DomainError
from gradspec.ops.lowering import Scalars
from gradspec.ops.lowering.matrices import (
    SINGULAR,
    Array,
    Mat,
    add_all,
    arith,
    batched,
    dot,
    eye,
    fail,
    mm,
    note,
    peek,
    transposed,
)

__all__ = ["cholesky", "cholesky_inverse", "cholesky_solve", "det", "inv", "lu_solve", "matrix_power", "pinv", "qr",
           "slogdet", "solve", "solve_triangular"]

# -- elimination --------------------------------------------------------------------------------------


def _lu(b: Scalars, a: Mat, name: str) -> tuple[list[int], int, Mat, Mat]:
    """P A = L U with partial pivoting: (row order, its sign, the multipliers, U)."""
    n = len(a)
    note(b, name, a)
    scale = max((abs(peek(b, x)) for row in a for x in row), default=0.0)
    m = [row[:] for row in a]
    order, sign = list(range(n)), 1
    low: Mat = [[Fraction(0)] * n for _ in range(n)]
    for k in range(n):
        p = max(range(k, n), key=lambda i: abs(peek(b, m[i][k])))
        if abs(peek(b, m[p][k])) <= SINGULAR * scale or scale == 0:
            raise fail(b, f"{name}: the matrix is singular (no nonzero pivot in column {k + 1} after elimination)")
        if p != k:
            m[k], m[p] = m[p], m[k]
            low[k], low[p] = low[p], low[k]
            order[k], order[p] = order[p], order[k]
            sign = -sign
        for i in range(k + 1, n):
            f = arith(b, "div", m[i][k], m[k][k])
            low[i][k] = f
            m[i][k] = Fraction(0)
            for j in range(k + 1, n):
                m[i][j] = arith(b, "sub", m[i][j], arith(b, "mul", f, m[k][j]))
    return order, sign, low, m


def _forward(b: Scalars, low: Mat, rhs: Mat, unit: bool) -> Mat:
    """L y = rhs for a lower triangle (unit diagonal when ``unit``), column by column of ``rhs``."""
    n = len(low)
    y: Mat = [[Fraction(0)] * len(rhs[0]) for _ in range(n)]
    for j in range(len(rhs[0])):
        for i in range(n):
            s = arith(b, "sub", rhs[i][j], dot(b, low[i][:i], [y[t][j] for t in range(i)]))
            y[i][j] = s if unit else arith(b, "div", s, low[i][i])
    return y


def _back(b: Scalars, up: Mat, rhs: Mat) -> Mat:
    """U x = rhs for an upper triangle."""
    n = len(up)
    x: Mat = [[Fraction(0)] * len(rhs[0]) for _ in range(n)]
    for j in range(len(rhs[0])):
        for i in range(n - 1, -1, -1):
            s = arith(b, "sub", rhs[i][j], dot(b, up[i][i + 1:], [x[t][j] for t in range(i + 1, n)]))
            x[i][j] = arith(b, "div", s, up[i][i])
    return x


def _lu_solve(b: Scalars, a: Mat, rhs: Mat, name: str) -> Mat:
    order, _, low, up = _lu(b, a, name)
    return _back(b, up, _forward(b, low, [rhs[i] for i in order], unit=True))


def _triangle(a: Mat, upper: bool, unit: bool = False) -> Mat:
    """The triangle an op reads, the rest exact zeros (and ones on the diagonal when ``unit``)."""
    n = len(a)
    return [[Fraction(1) if unit and i == j else a[i][j] if (j > i if upper else j < i) or (i == j and not unit)
             else Fraction(0) for j in range(n)] for i in range(n)]


def _check_diagonal(b: Scalars, t: Mat, name: str) -> None:
    scale = max((abs(peek(b, x)) for row in t for x in row), default=0.0)
    for k in range(len(t)):
        if scale == 0 or abs(peek(b, t[k][k])) <= SINGULAR * scale:
            raise fail(b, f"{name}: the triangular matrix is singular (diagonal entry {k + 1} is zero)")


def _tri_solve(b: Scalars, t: Mat, rhs: Mat, upper: bool, name: str) -> Mat:
    _check_diagonal(b, t, name)
    note(b, name, t)
    if upper:
        return _back(b, t, rhs)
    return _forward(b, t, rhs, unit=False)


# -- the ops ----------------------------------------------------------------------------------------


def _det(b: Scalars, a: Mat, name: str) -> Any:
    _, sign, _, up = _lu(b, a, name)
    out: Any = up[0][0]
    for k in range(1, len(a)):
        out = arith(b, "mul", out, up[k][k])
    return out if sign > 0 else arith(b, "mul", Fraction(-1), out)


def det(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return batched(args, [2], shape, lambda a: _det(b, a, "det"))


def slogdet(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """(sign, log|det|): the sign is piecewise constant (an exact ±1), log|det| the sum of log|u_kk|, each
    taken as log(u) or log(-u) by the pivot's sign at the point."""

    def one(a: Mat) -> Any:
        _, sign, _, up = _lu(b, a, "slogdet")
        pivots = [up[k][k] for k in range(len(a))]
        negative = sum(peek(b, u) < 0 for u in pivots)
        if kw["output"] == 0:
            return Fraction(sign * (-1) ** negative)
        return add_all(b, [b.op("log", u if peek(b, u) > 0 else b.op("neg", u)) for u in pivots])

    return batched(args, [2], shape, one)


def inv(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return batched(args, [2], shape, lambda a: _lu_solve(b, a, eye(len(a)), "inv"))


def solve(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """A X = B for a matrix B (batched, broadcast), or A x = b for a vector b (one dimension)."""
    if args[1].ndim == 1:
        return batched(args, [2, 1], shape, lambda a, v: [r[0] for r in _lu_solve(b, a, [[x] for x in v], "solve")])
    return batched(args, [2, 2], shape, lambda a, rhs: _lu_solve(b, a, rhs, "solve"))


def matrix_power(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """A^n by repeated squaring; a negative n is the inverse's power."""
    n = kw["n"]

    def one(a: Mat) -> Mat:
        base = _lu_solve(b, a, eye(len(a)), "matrix_power") if n < 0 else a
        out: Mat | None = None
        k = abs(n)
        while k:
            if k & 1:
                out = base if out is None else mm(b, out, base)
            k >>= 1
            if k:
                base = mm(b, base, base)
        return eye(len(a)) if out is None else out

    return batched(args, [2], shape, one)


def solve_triangular(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """A X = B reading only the triangle of A that ``upper`` names."""
    upper = bool(kw["upper"])
    return batched(args, [2, 2], shape,
                    lambda a, rhs: _tri_solve(b, _triangle(a, upper), rhs, upper, "solve_triangular"))


def _cholesky(b: Scalars, a: Mat, name: str) -> Mat:
    """A = L L^T reading the lower triangle of A: L_jj = sqrt(a_jj - sum_k L_jk^2)."""
    n = len(a)
    note(b, name, [[a[max(i, j)][min(i, j)] for j in range(n)] for i in range(n)])
    low: Mat = [[Fraction(0)] * n for _ in range(n)]
    for j in range(n):
        d = arith(b, "sub", a[j][j], dot(b, low[j][:j], low[j][:j]))
        if peek(b, d) <= 0:
            raise fail(b, f"{name}: the matrix is not positive definite (pivot {j + 1} is "
                           f"{peek(b, d):.6g} after eliminating the earlier ones)")
        low[j][j] = b.op("sqrt", d)
        for i in range(j + 1, n):
            low[i][j] = arith(b, "div", arith(b, "sub", a[i][j], dot(b, low[i][:j], low[j][:j])), low[j][j])
    return low


def cholesky(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    return batched(args, [2], shape, lambda a: _cholesky(b, a, "cholesky"))


def _factor(given: Mat, upper: bool) -> Mat:
    """The lower factor L of A = L L^T that ``cholesky_solve``/``cholesky_inverse`` read from the given one."""
    return transposed(_triangle(given, True)) if upper else _triangle(given, False)


def _cho_solve(b: Scalars, low: Mat, rhs: Mat, name: str) -> Mat:
    y = _tri_solve(b, low, rhs, False, name)
    return _tri_solve(b, transposed(low), y, True, name)


def cholesky_solve(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """X with L L^T X = B (``upper``: U^T U X = B), reading only the factor's triangle."""
    upper = bool(kw["upper"])
    return batched(args, [2, 2], shape, lambda rhs, f: _cho_solve(b, _factor(f, upper), rhs, "cholesky_solve"))


def cholesky_inverse(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    upper = bool(kw["upper"])
    return batched(args, [2], shape,
                    lambda f: _cho_solve(b, _factor(f, upper), eye(len(f)), "cholesky_inverse"))


def lu_solve(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """X with L U X = B, L and U packed in ``lu`` as LAPACK packs them (L's unit diagonal implied), no
    row exchanges."""

    def one(lu: Mat, rhs: Mat) -> Mat:
        up = _triangle(lu, True)
        _check_diagonal(b, up, "lu_solve")
        note(b, "lu_solve", up)
        return _back(b, up, _forward(b, _triangle(lu, False, unit=True), rhs, unit=True))

    return batched(args, [2, 2], shape, one)


def pinv(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """The pseudo-inverse of a full-rank matrix by the normal equations: (A^T A)^-1 A^T when tall,
    A^T (A A^T)^-1 when wide (a rank-deficient A has a singular Gram matrix, refused)."""

    def one(a: Mat) -> Mat:
        at = transposed(a)
        if len(a) >= len(at):
            return _lu_solve(b, mm(b, at, a), at, "pinv")
        return transposed(_lu_solve(b, mm(b, a, at), a, "pinv"))

    try:
        return batched(args, [2], shape, one)
    except DomainError as exc:
        raise DomainError(exc.message.replace("the matrix is singular", "the matrix is rank deficient (its Gram "
                                              "matrix is singular)"), col=exc.col) from None


def _qr(b: Scalars, a: Mat) -> tuple[Mat, Mat]:
    """Householder QR as LAPACK's geqrf and orgqr compute it (their sign choice), reduced."""
    m, n = len(a), len(a[0])
    r = [row[:] for row in a]
    kk = min(m, n)
    reflectors: list[tuple[Any, list[Any], int]] = []
    for k in range(kk):
        alpha, rest = r[k][k], [r[i][k] for i in range(k + 1, m)]
        norm2 = dot(b, rest, rest)
        if not rest or peek(b, norm2) == 0:
            continue  # LAPACK's dlarfg: tau = 0, no reflection
        beta = b.op("sqrt", arith(b, "add", arith(b, "mul", alpha, alpha), norm2))
        if peek(b, alpha) >= 0:
            beta = b.op("neg", beta)
        scale = arith(b, "sub", alpha, beta)
        v = [Fraction(1), *[arith(b, "div", x, scale) for x in rest]]
        tau = arith(b, "div", arith(b, "sub", beta, alpha), beta)
        reflectors.append((tau, v, k))
        r[k][k] = beta
        for i in range(k + 1, m):
            r[i][k] = Fraction(0)
        for j in range(k + 1, n):
            w = arith(b, "mul", tau, dot(b, v, [r[i][j] for i in range(k, m)]))
            for i in range(k, m):
                r[i][j] = arith(b, "sub", r[i][j], arith(b, "mul", v[i - k], w))
    q: Mat = [[Fraction(int(i == j)) for j in range(kk)] for i in range(m)]
    for tau, v, k in reversed(reflectors):
        for j in range(kk):
            w = arith(b, "mul", tau, dot(b, v, [q[i][j] for i in range(k, m)]))
            for i in range(k, m):
                q[i][j] = arith(b, "sub", q[i][j], arith(b, "mul", v[i - k], w))
    return q, [[r[i][j] if j >= i else Fraction(0) for j in range(n)] for i in range(kk)]


def qr(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    def one(a: Mat) -> Mat:
        scale = max(abs(peek(b, x)) for row in a for x in row)
        q, r = _qr(b, a)
        if any(abs(peek(b, r[k][k])) <= SINGULAR * scale for k in range(len(r))) or scale == 0:
            raise fail(b, "qr: the matrix is rank deficient (a zero diagonal entry of R): Q is not determined")
        return q if kw["output"] == 0 else r

    return batched(args, [2], shape, one)
