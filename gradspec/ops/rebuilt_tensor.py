"""What engines' own kernels of a tensor op lose beyond the rounding of gradspec's lowering: the rebuilt
allowance of tensor-op rows (``TensorOp.rebuilt``).

The exact reference differentiates an op's lowering (elimination, a prefix's own log-sum-exp) and bounds
the rounding of that spelling. Engines spell some ops otherwise: a dense linear-algebra kernel whose
derivatives are matrix formulas of its factors, a scan whose backward forms its weights from the rounded
output. Where such a spelling cancels terms larger than the result (an element that is exactly 0), it
loses eps times those terms, which the lowering's bound does not see. What each loses is derived below
from the spelling, in absolute terms; it enters a quantity's rebuilt allowance: ``imprecise``, never
``pass`` (docs/verdicts.md).

Each function takes a :class:`Site`, the op as one quantity of a check sees it, and returns the
absolute allowance of every element (a float, or an array of the quantity's shape). The terms of a
spelling are known in the op's own operands and directions: where the op is applied to the graph's
inputs and its output is the graph's, a site has them; elsewhere ``operands`` is None and a function
falls back to what the quantity alone says (or to nothing).

NumPy is imported on use, as the lowering is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gradspec.ops.forms import LIBM

__all__ = ["Site", "dense", "scan_weights"]


@dataclass(frozen=True)
class Site:
    """One tensor op of a graph as one quantity of a check sees it.

    ``exact``: the quantity's exact value (floats); ``degree``: its order of differentiation (0 the value,
    1 a VJP, a JVP or a Jacobian, 2 an HVP or a JVP of a JVP, ``k`` for ``order: k``); ``shapes``: the op's
    operands' shapes. Where the op is applied to the graph's inputs and is its output (``operands`` not
    None): the operands and the output as float arrays, the cotangent ``v`` of a reverse quantity (None for
    a forward one, and for a Jacobian, whose cotangents are one-hot), one direction per operand for each
    tangent slot (None for an operand not differentiated), and for a per-input quantity the operand it is
    taken with respect to (``wrt``); ``whole``: a Jacobian, output elements by the ``wrt`` operand's."""

    kw: dict[str, Any]
    shapes: tuple[tuple[int, ...], ...]
    exact: Any
    degree: int
    eps: float
    operands: tuple[Any, ...] | None = None
    output: Any = None
    cotangent: Any = None
    tangents: tuple[tuple[Any, ...], ...] = field(default=())
    wrt: int | None = None
    whole: bool = False


def _norm(a: Any) -> float:
    import numpy as np

    return float(np.sqrt(np.sum(np.square(np.asarray(a, dtype=float)))))


def _smallest_matrix_norm(a: Any) -> float:
    """The smallest Frobenius norm of the matrices of a batch (a vector or a scalar: its own)."""
    import numpy as np

    arr = np.asarray(a, dtype=float)
    if arr.ndim <= 2:
        return _norm(arr)
    return float(np.min(np.sqrt(np.sum(np.square(arr), axis=(-2, -1)))))


def _condition(m: Any) -> float:
    """||M||_F ||M^+||_F of the worst matrix of a batch, from its singular values (inf where one is 0)."""
    import numpy as np

    arr = np.asarray(m, dtype=float)
    if arr.ndim < 2:
        return 1.0
    s = np.linalg.svd(arr, compute_uv=False)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero singular value: inf (nan for a zero matrix)
        inverse = np.sqrt(np.sum(1.0 / np.square(s), axis=-1))
        return float(np.max(np.sqrt(np.sum(np.square(s), axis=-1)) * inverse))


def dense(site: Site, matrix: Callable[[tuple[Any, ...], dict[str, Any]], Any] | None = None, power: int = 1) -> float:
    """A dense linear-algebra kernel (LAPACK's or its like) and the matrix formulas of its derivatives,
    normwise, in every element of a quantity (elements that are exactly 0 included).

    ``matrix`` gives, from the operands and the keywords, the matrix the kernel factors and whose inverse
    its derivatives carry (A of ``solve``, R's A of ``qr``, L of ``cholesky_solve``); ``power``: how often
    that inverse enters per order (2 for a Cholesky factor's L L^T). None: no derivation for the op (a
    spectral or matrix function), only the quantity's own largest element below.

    Derivation (Higham's model, Frobenius norms, ``n`` the matrix order, ``u`` = eps):

    - the kernel is backward stable: its factors are exact for ``A + dA``, ``|dA| <= 2 n u |A|``
      (Householder QR, Cholesky, LU with a small growth factor, to the first order);
    - a computed product of matrices errs by ``n u`` times the product of their norms, elementwise and
      normwise, so a formula whose every term is a product of at most ``2d + 1`` matrices errs by
      ``(2d + 1) n u`` times its terms' size;
    - the terms' size: with ``K = (|M|_F |M^-1|_F)^power``, a derivative along a direction ``t`` of an
      operand ``N`` moves an output ``F`` by at most ``K |F| |t| / |N|`` (``dA^-1 = -A^-1 dA A^-1``: one
      inverse per order; ``dX = A^-1 (dB - dA X)`` of a solve; ``L Phi(L^-1 dA L^-T)`` of Cholesky;
      ``dR = Phi(Q^T dA R^-1) R`` of QR), so the terms of a quantity of degree ``d`` are at most
      ``T = |F| |v| prod_slots K |t_slot| / |N_slot|``: the cotangent ``v`` of a reverse quantity, one
      slot per tangent, and a unit direction on the ``wrt`` operand of a per-input one (a Jacobian: a
      unit cotangent too);
    - the backward error moves the quantity by its derivative one order up along ``dA``:
      ``K * 2 n u * T``.

    So ``|error| <= n u (2K + 2d + 1) T``, and never less than ``4 n u`` times the quantity's own largest
    element (one of its terms; the whole allowance of a site inside a larger graph, whose directions at
    the op are not the graph's)."""
    import numpy as np

    n = max((max(s[-2:], default=0) for s in site.shapes[:1]), default=0)
    with np.errstate(invalid="ignore"):
        peak = float(np.max(np.abs(np.asarray(site.exact, dtype=float)), initial=0.0))
    base = 4 * n * site.eps * peak if math.isfinite(peak) else 0.0
    if site.operands is None or matrix is None or not n:
        return base
    k = _condition(matrix(site.operands, site.kw)) ** power
    sizes = [_smallest_matrix_norm(a) for a in site.operands]
    if not math.isfinite(k):
        return base
    terms = _norm(site.output) * (1.0 if site.cotangent is None else _norm(site.cotangent))
    if site.wrt is not None:
        if sizes[site.wrt] == 0:
            return base
        terms *= k / sizes[site.wrt]
    for slot in site.tangents:
        moved = [(_norm(t), s) for t, s in zip(slot, sizes, strict=True) if t is not None]
        if any(s == 0 for _, s in moved):
            return base
        terms *= k * sum(m / s for m, s in moved)
    bound = n * site.eps * (2 * k + 2 * site.degree + 1) * terms
    return max(base, bound) if math.isfinite(bound) else base


def scan_weights(site: Site) -> Any:
    """``logcumsumexp`` as torch differentiates it: by weights ``W_ik = exp(x_k - y_i)`` (k <= i along the
    axis) whose exponents are rounded at the magnitude of the numbers they subtract.

    torch's backward is ``exp(x + rev_logcumsumexp(log|v| - y))`` (for the positive and the negative part of
    the cotangent, subtracted): each weight's exponent sums ``x_k``, ``y_i`` and ``log|v_i|``, each rounded
    (``y`` rounded at 1e4 is 1e4 eps off), so the weight is off by ``R_ik = |x_k| + |y_i| + |log|v_i||``
    eps relatively, however close to 1 it is. Its forward mode is ``cumsum(exp(x - m) u) / cumsum(exp(x -
    m))``, ``m`` the line's largest element: ``R_ik = |x_k - m| + sum_l W_il |x_l - m|``, the numerator's
    exponent and the denominator's. Each adds the exponential's ``LIBM`` ulps and the scan's sum of ``N``
    terms up to ``N`` roundings; a pass through such a formula rounds up to 4 exponents (``log|v| - y``, the
    reversed scan's shift and its result, ``+ x``), and a quantity of degree ``d`` makes ``d`` passes
    (reverse over reverse runs that backward again inside it).

    The terms, element by element (the directions' magnitudes ``|u|``): a VJP element ``k`` is ``sum_i v_i
    W_ik``; a JVP element ``i`` is ``sum_k W_ik u_k``; each tangent slot beyond differentiates a weight into
    ``W_ik (delta_kl - W_il)``, at most ``|u_k| + sum_l W_il |u_l|`` (times the ways the product rule
    spreads it, ``(d - 1)!``). Each term is off by the sum of its weights' errors (``W_ik R_ik`` eps, the
    first order of a product), and the allowance is ``4 d`` times that. Where the exact result is far
    smaller than its terms (``x_k`` dominating its prefixes: the HVP is ``s (1 - s)`` with ``s`` near 1)
    that is all there is. The value rounds as the lowering does: nothing. A site inside a larger graph:
    nothing (its directions at the op are not the graph's)."""
    import numpy as np

    if site.operands is None or site.degree == 0:
        return 0.0
    axis = site.kw["axis"] % len(site.shapes[0])
    x = np.moveaxis(np.asarray(site.operands[0], dtype=float), axis, -1)
    y = np.moveaxis(np.asarray(site.output, dtype=float), axis, -1)
    size = x.shape[-1]
    below = np.tril(np.ones((size, size), dtype=bool))  # [i, k]: k <= i
    with np.errstate(over="ignore", invalid="ignore"):
        weights = np.where(below, np.exp(np.where(below, x[..., None, :] - y[..., :, None], 0.0)), 0.0)
    v = None if site.cotangent is None else np.moveaxis(np.abs(np.asarray(site.cotangent, dtype=float)), axis, -1)
    logs = np.zeros(y.shape) if v is None else np.abs(np.log(np.where(v > 0, v, 1.0)))
    backward = np.abs(x)[..., None, :] + np.abs(y)[..., :, None] + logs[..., :, None]
    apart = np.max(x, axis=-1, keepdims=True) - x  # |x_k - m|
    forward = apart[..., None, :] + (weights @ apart[..., :, None])
    spelled = forward if v is None and not site.whole else backward if not site.whole else np.maximum(forward, backward)
    errors = weights * (spelled + LIBM + size)  # each weight's absolute error, in eps
    slots = [np.moveaxis(np.abs(np.asarray(t[0] if t[0] is not None else np.zeros(site.shapes[0]), dtype=float)),
                         axis, -1) for t in site.tangents]

    def times(a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[Any, Any]:  # (terms, their error): a product
        return a[0] * b[0], a[0] * b[1] + a[1] * b[0]

    def moved(u: Any) -> tuple[Any, Any]:  # [..., i, k]: |u_k| + sum_l W_il |u_l|, and its error
        return u[..., None, :] + (weights @ u[..., :, None]), np.broadcast_to(errors @ u[..., :, None], weights.shape)

    def reverse(cot: Any) -> Any:  # [..., k]: the error of sum_i |v_i| W_ik prod_slots (...)
        terms = (cot[..., :, None] * weights, cot[..., :, None] * errors)
        for u in slots:
            terms = times(terms, moved(u))
        return terms[1].sum(axis=-2)

    found: Any
    if site.whole:  # a Jacobian: a one-hot cotangent per output element
        out_shape = tuple(int(n) for n in np.shape(site.output))
        rows = []
        for index in np.ndindex(*out_shape):
            one = np.zeros(out_shape)
            one[index] = 1.0
            rows.append(np.moveaxis(reverse(np.moveaxis(one, axis, -1)), -1, axis))
        found = np.stack(rows).reshape(out_shape + out_shape)
    elif v is not None:
        summed = reverse(v)  # order k (no wrt): the whole contraction, one number
        found = float(summed.sum()) if site.wrt is None else np.moveaxis(summed, -1, axis)
    else:  # forward: [..., i]: sum_k W_ik |u_k| prod_other_slots (...)
        terms = (weights * slots[0][..., None, :], errors * slots[0][..., None, :])
        for u in slots[1:]:
            terms = times(terms, moved(u))
        found = np.moveaxis(terms[1].sum(axis=-1), -1, axis)
    return 4 * site.degree * site.eps * math.factorial(max(site.degree - 1, 1)) * found
