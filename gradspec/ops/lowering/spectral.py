"""Spectral linear algebra lowered to scalar ops: iterations run at the point until they have converged.

``eigvalsh`` and ``eigh`` are cyclic Jacobi: rotations that zero one off-diagonal entry each, sweep after
sweep, until the off-diagonal part is below ``TOLERANCE`` of the matrix (relative, in the Frobenius norm)
at the point, then ``EXTRA`` sweeps more; the diagonal, sorted, is the eigenvalues and the product of the
rotations the eigenvectors. ``svdvals`` is the square roots of the eigenvalues of AᵀA (A Aᵀ when A is
wide); ``svd`` adds their eigenvectors V (U when wide) and the other side, U = A V Σ⁻¹ (V = Aᵀ U Σ⁻¹).
``matrix_exp`` is scaling and squaring: a Taylor polynomial of ``TERMS`` terms at A / 2^s, with
|A / 2^s| at most 1/2, squared s times. The number of sweeps, the scaling s, the sign of every rotation's
formula and the sorting are branches read at the point (the backend's ``peek``), like a pivot.

Why the derivatives of these finite computations are those of the exact functions, to the reference's
digits, is argued in docs/linalg.md: every rotation is exactly orthogonal and zeroes its entry
identically (so its derivatives too), the off-diagonal part left after a sweep is of second order in the
one before it, and EXTRA = 3 sweeps past convergence make every derivative up to order 7 of what is left
as small as the residual at the point; the Taylor remainder is a convergent tail whose derivatives are
bounded by Cauchy's estimates.

Conditions: two eigenvalues (singular values) that coincide at the point, or a zero singular value,
raise :class:`~gradspec.errors.DomainError` (the sorted spectrum has a kink there, the eigenvectors are
not determined); the smallest spacing against the largest magnitude is told to the exact tape (``gap``),
so a check reports a spectrum too close for the engine's precision instead of judging it.

Inputs read through a structure: ``eigvalsh`` and ``eigh`` read the lower triangle of a symmetric matrix,
as torch and LAPACK do (``uplo="U"``: the upper one). An eigenvector's sign is free; ``eigh`` makes the
first entry of each column whose magnitude is at least half the column's largest positive, and so do the
engine spellings (:mod:`gradspec.ops.linalg_rows`), so values and derivatives are compared with the same
signs. A singular pair (u_k, v_k) has one free sign, shared: ``svd`` reads the same rule on U's column and
flips U's column and Vᵀ's row together.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from gradspec.ops.lowering import Scalars
from gradspec.ops.lowering.matrices import (
    SINGULAR,
    Array,
    Mat,
    arith,
    batched,
    eye,
    fail,
    gap,
    is_const,
    mm,
    peek,
    transposed,
)

__all__ = ["EXTRA", "TERMS", "TOLERANCE", "eigh", "eigvalsh", "matrix_exp", "svd", "svdvals"]

TOLERANCE = 1e-60  # the off-diagonal part at the point, against the matrix, where Jacobi has converged
EXTRA = 3  # sweeps past convergence: what is left then vanishes to order 2**EXTRA - 1 = 7 (docs/linalg.md)
_SWEEPS = 60  # a bound on the sweeps (quadratic convergence takes about ten)
TERMS = 50  # Taylor terms of exp at |X| <= 1/2: the remainder and its derivatives are below 1e-59
_ZERO_SINGULAR = 1e-50  # a squared singular value this small against the largest is a zero one
_SIGN_MARGIN = 1e-6  # an entry this close to half its column's largest makes the sign convention unreadable


def _symmetric(a: Mat, uplo: str = "L") -> Mat:
    """The symmetric matrix read through the lower triangle of ``a`` (``uplo="U"``: the upper one)."""
    n = len(a)
    if uplo == "U":
        return [[a[min(i, j)][max(i, j)] for j in range(n)] for i in range(n)]
    return [[a[max(i, j)][min(i, j)] for j in range(n)] for i in range(n)]


def _exact(b: Scalars, x: Any) -> Any:
    """The value at the point as the backend holds it (the tape's 60 digits, an engine's float): spacings
    and orders of eigenvalues closer than a float resolves are read from it, never from a rounded copy."""
    return float(x) if is_const(x) else b.peek(x)


def _squares(b: Scalars, m: Mat, off: bool) -> Any:
    n = len(m)
    return sum(_exact(b, m[i][j]) ** 2 for i in range(n) for j in range(n) if not off or i != j)


def _rotate(b: Scalars, m: Mat, v: Mat, p: int, q: int) -> None:
    """One Jacobi rotation in the plane (p, q) that zeroes m[p][q], applied to m (both sides) and to the
    accumulated rotations v (on the right). t = tan(theta) = a_pq / (d + sign(d) sqrt(d^2 + a_pq^2)) with
    d = (a_qq - a_pp) / 2 is analytic wherever (d, a_pq) is not (0, 0), so it is taken even where a_pq is
    0 at the point: it is 0 there, and its derivatives are not. Where both are 0 the plane is left alone."""
    apq = m[p][q]
    if is_const(apq) and apq == 0:
        return
    d = arith(b, "mul", Fraction(1, 2), arith(b, "sub", m[q][q], m[p][p]))
    if _exact(b, d) == 0 and _exact(b, apq) == 0:
        return
    r = b.op("sqrt", arith(b, "add", arith(b, "mul", d, d), arith(b, "mul", apq, apq)))
    t = arith(b, "div", apq, arith(b, "add" if _exact(b, d) >= 0 else "sub", d, r))
    c = arith(b, "div", Fraction(1), b.op("sqrt", arith(b, "add", Fraction(1), arith(b, "mul", t, t))))
    s = arith(b, "mul", t, c)
    tau = arith(b, "div", s, arith(b, "add", Fraction(1), c))
    shift = arith(b, "mul", t, apq)
    m[p][p] = arith(b, "sub", m[p][p], shift)
    m[q][q] = arith(b, "add", m[q][q], shift)
    m[p][q] = m[q][p] = Fraction(0)  # identically zero as a function of the entries: so are its derivatives

    def turn(g: Any, h: Any) -> tuple[Any, Any]:  # (c g - s h, s g + c h), in the stable form
        return (arith(b, "sub", g, arith(b, "mul", s, arith(b, "add", h, arith(b, "mul", g, tau)))),
                arith(b, "add", h, arith(b, "mul", s, arith(b, "sub", g, arith(b, "mul", h, tau)))))

    for k in range(len(m)):
        if k not in (p, q):
            m[k][p], m[k][q] = turn(m[k][p], m[k][q])
            m[p][k], m[q][k] = m[k][p], m[k][q]
        v[k][p], v[k][q] = turn(v[k][p], v[k][q])


def _jacobi(b: Scalars, a: Mat, name: str) -> tuple[list[Any], Mat]:
    """The eigenvalues of the symmetric ``a`` (ascending) and the eigenvectors (columns, same order)."""
    n = len(a)
    m = [row[:] for row in a]
    v = eye(n)
    scale = _squares(b, m, off=False)
    sweeps, extra = 0, 0
    while extra < EXTRA:
        if extra or _squares(b, m, off=True) <= TOLERANCE**2 * scale:
            extra += 1
        elif sweeps >= _SWEEPS:
            raise fail(b, f"{name}: Jacobi did not converge in {_SWEEPS} sweeps")
        for p in range(n - 1):
            for q in range(p + 1, n):
                _rotate(b, m, v, p, q)
        sweeps += 1
    order = sorted(range(n), key=lambda k: _exact(b, m[k][k]))
    return [m[k][k] for k in order], [[v[i][k] for k in order] for i in range(n)]


def _spectrum(b: Scalars, values: Sequence[Any], name: str, what: str, why: str) -> None:
    """Refuse coinciding values of a sorted spectrum (exact values at the point); tell the tape its
    smallest spacing against its largest magnitude."""
    top = float(max((abs(x) for x in values), default=0.0))
    spacings = [float(values[k + 1] - values[k]) for k in range(len(values) - 1)]
    for k, s in enumerate(spacings):
        if s <= SINGULAR * top or top == 0:
            raise fail(b, f"{name}: {what}s {k + 1} and {k + 2} are repeated (both {float(values[k]):.6g}): {why}")
    if spacings:
        gap(b, name, f"{what} spacing", min(spacings), top)


def _eigen(b: Scalars, a: Mat, name: str, why: str, uplo: str) -> tuple[list[Any], Mat]:
    values, vectors = _jacobi(b, _symmetric(a, uplo), name)
    _spectrum(b, [_exact(b, x) for x in values], name, "eigenvalue", why)
    return values, vectors


def eigvalsh(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """The eigenvalues, ascending, of the symmetric matrix read through the lower (upper) triangle."""
    why = "the sorted eigenvalues are not differentiable where two meet"
    return batched(args, [2], shape, lambda a: _eigen(b, a, "eigvalsh", why, kw["uplo"])[0])


def _flips(b: Scalars, columns: Mat, name: str, what: str) -> list[bool]:
    """For each column: is the first entry whose magnitude is at least half the column's largest negative?"""
    n = len(columns)
    out = []
    for k in range(len(columns[0])):
        mags = [abs(peek(b, columns[i][k])) for i in range(n)]
        top = max(mags)
        if any(abs(x / top - 0.5) <= _SIGN_MARGIN for x in mags):
            raise fail(b, f"{name}: {what} {k + 1} has an entry at half its largest: the sign convention "
                          "(the first entry at least half the largest is positive) cannot be read reliably")
        first = next(i for i in range(n) if mags[i] >= top / 2)
        out.append(peek(b, columns[first][k]) < 0)
    return out


def _negated(b: Scalars, columns: Mat, flips: Sequence[bool]) -> Mat:
    """``columns`` with the columns ``flips`` names times -1."""
    return [[arith(b, "mul", Fraction(-1), x) if flip else x for x, flip in zip(row, flips, strict=True)]
            for row in columns]


def eigh(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """(eigenvalues ascending, eigenvectors as columns with the sign convention of :func:`_flips`)."""
    why = "the eigenvectors are not determined where two eigenvalues meet"

    def one(a: Mat) -> Any:
        values, vectors = _eigen(b, a, "eigh", why, kw["uplo"])
        return values if kw["output"] == 0 else _negated(b, vectors, _flips(b, vectors, "eigh", "eigenvector"))

    return batched(args, [2], shape, one)


def _singular(b: Scalars, a: Mat, name: str, vectors: bool) -> tuple[list[Any], Mat, Mat]:
    """The singular values of ``a`` (m x n), descending, and with ``vectors`` U (m x k) and V (n x k), k =
    min(m, n), as columns in the same order: the eigenvectors of AᵀA are V and U = A V Σ⁻¹ (wide: the
    eigenvectors of A Aᵀ are U and V = Aᵀ U Σ⁻¹), with no sign convention yet."""
    at = transposed(a)
    tall = len(a) >= len(at)
    gram = mm(b, at, a) if tall else mm(b, a, at)
    squares, eigenvectors = _jacobi(b, gram, name)
    top = max(_exact(b, x) for x in squares)
    for k, x in enumerate(squares):
        if _exact(b, x) <= _ZERO_SINGULAR * top or top <= 0:
            raise fail(b, f"{name}: singular value {len(squares) - k} is zero: the singular values are "
                          "not differentiable there (as |x| at 0)")
    sigma = [b.op("sqrt", x) for x in reversed(squares)]
    ascending = [_exact(b, x) for x in reversed(sigma)]
    why = "the singular values are not differentiable where two meet" if not vectors else \
        "the singular vectors are not determined where two singular values meet"
    _spectrum(b, ascending, name, "singular value", why)
    gap(b, name, "smallest singular value", float(ascending[0]), float(ascending[-1]))  # from a zero one
    if not vectors:
        return sigma, [], []
    side = [row[::-1] for row in eigenvectors]  # columns in the order of sigma
    other = [[arith(b, "div", x, s) for x, s in zip(row, sigma, strict=True)] for row in mm(b, a if tall else at, side)]
    return (sigma, other, side) if tall else (sigma, side, other)


def svdvals(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """The singular values, descending: square roots of the eigenvalues of AᵀA (A Aᵀ when A is wide)."""
    return batched(args, [2], shape, lambda a: _singular(b, a, "svdvals", vectors=False)[0])


def svd(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """The reduced SVD (U, S, Vᵀ) with S descending; each singular pair's sign read on U's column by the
    rule of :func:`_flips`, U's column and Vᵀ's row flipped together."""

    def one(a: Mat) -> Any:
        sigma, u, v = _singular(b, a, "svd", vectors=kw["output"] != 1)
        if kw["output"] == 1:
            return sigma
        flips = _flips(b, u, "svd", "left singular vector")
        return _negated(b, u, flips) if kw["output"] == 0 else transposed(_negated(b, v, flips))

    return batched(args, [2], shape, one)


def _scaling(b: Scalars, a: Mat) -> int:
    """The least s >= 0 with |A|_inf / 2^s <= 1/2."""
    norm = max(sum(abs(_exact(b, x)) for x in row) for row in a)
    s = 0
    while norm > 0.5 * 2**s:
        s += 1
    return s


def _expm(b: Scalars, a: Mat) -> Mat:
    n = len(a)
    s = _scaling(b, a)
    x = [[arith(b, "mul", Fraction(1, 2**s), e) for e in row] for row in a]
    out = eye(n)
    for k in range(TERMS, 0, -1):  # Horner: I + X (I + X/2 (I + ... (I + X/TERMS)))
        step = mm(b, x, out)
        out = [[arith(b, "add", Fraction(int(i == j)), arith(b, "div", step[i][j], Fraction(k))) for j in range(n)]
               for i in range(n)]
    for _ in range(s):
        out = mm(b, out, out)
    return out


def matrix_exp(b: Scalars, args: Sequence[Array], kw: dict[str, Any], shape: tuple[int, ...]) -> Array:
    """exp(A) by scaling and squaring with a Taylor polynomial of TERMS terms."""
    return batched(args, [2], shape, lambda a: _expm(b, a))
