"""What engines' spellings of an op lose absolutely: the rebuilt allowance of the op table's rows.

Libraries form some values and derivatives as a difference of terms that cancels where the result is
small: a derivative read from the op's rounded output (``s*(1 - s)`` from a rounded sigmoid), a value
from a rounded library function near -1 (gelu's ``x/2*(1 + erf(x/sqrt(2)))``), a second derivative that
differentiates such a rule again. Each loses a few eps absolutely, times the size of the terms, however
small the result: beyond the precision bound, that is ``imprecise`` (docs/verdicts.md), not ``fail``.

Each function takes the derivative order ``k`` (0: the value), the arguments as floats, the exact value of
that derivative and the keyword values, and returns the absolute error in units of eps (``Op.rebuilt``).
Where a result is a polynomial in a rounded ``s`` (or ``t``) with coefficients up to 1, its derivative of
order ``j`` loses what the op's own partial loses, ``j`` times over: ``SIGMOID * j`` (``TANH * j``), as
the rows of sigmoid and tanh allow for their own derivatives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gradspec.engine_floats import _ndtr_ratio
from gradspec.ops.forms import LIBM, sigmoid

__all__ = ["SIGMOID", "TANH", "atanh", "digamma", "gelu", "hypot", "log_ndtr", "logaddexp2", "mish", "ndtr", "second_from",
           "silu", "sinc", "softplus", "tanhshrink"]

SIGMOID = LIBM + 1  # s*(1 - s) from a rounded s: s's ulps, absolutely, and the product's
TANH = 2 * LIBM + 1  # 1 - t*t from a rounded t: twice t's ulps, absolutely, and the difference's
_LN2 = 0.6931471805599453
_C = 0.7978845608028654  # sqrt(2/pi), gelu's tanh form: u = C*(x + 0.044715*x**3)


def gelu(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    x = abs(a[0])
    if k == 0:
        # x/2*(1 + erf(x/sqrt(2))) or x/2*(1 + tanh(u)): where erf (tanh) is near -1 the sum keeps erf's
        # ulps absolutely, times |x|/2; the sum and the product round once each
        return (LIBM + 2) * x / 2
    if kw.get("approximate") != "tanh":
        # gelu' = Phi + x*phi, Phi = (1 + erf)/2 from a rounded erf: erf's ulps absolutely, the sum and
        # the product's rounding where they cancel (x near -0.75); above, Phi's derivatives are the
        # Gaussian's, computed directly
        return 4 * LIBM * k
    # d^k/dx^k of x/2*(1 + t(u(x))): x/2 times t's k-th derivative in x plus k/2 times its (k-1)-th; each
    # is t's own derivatives (a polynomial in the rounded t: TANH per order) times up to k factors u'
    # and u'' (u' = C(1 + 0.134145 x^2), u'' = 0.26829 C x)
    du = _C * (1 + 0.134145 * x * x) + 0.26829 * _C * x
    return max(4 * LIBM * k, TANH * k * (x / 2 + k) * max(1.0, du) ** k)


def silu(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    # silu^(k) = x s^(k) + k s^(k-1), s = sigmoid(x) rounded: s^(j) loses SIGMOID*j for j >= 1 where s is near
    # 1 (silu' = s*(1 + x*(1 - s)) is 0 in float32 beyond x = 17 where (1 - s) is; silu'' likewise); where s is
    # small it keeps its relative precision, and so does the loss: times s
    if k == 0:
        return 0.0
    return SIGMOID * k * (abs(a[0]) + k - 1) * sigmoid(a[0])


def mish(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    # mish = x*t, t = tanh(softplus(x)): mish^(k) = x t^(k) + k t^(k-1); t' = (1 - t*t)*sigmoid(x), from
    # the rounded t and s: TANH + SIGMOID per order, where t is near 1; times t (about e^x) in the left tail
    if k == 0:
        return 0.0
    x = a[0]
    t = math.tanh(math.log1p(math.exp(x))) if x < 20 else 1.0
    return (TANH + SIGMOID) * k * (abs(x) + k - 1) * t


def softplus(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    # softplus' = z/(z + 1), z = exp(beta*x), differentiated again: beta*(z/(z + 1) - z^2/(z + 1)^2), two
    # terms near beta that cancel where the slope saturates; sigmoid's loss from the second order on, times
    # z/(z + 1) (terms of that size: in the left tail they keep their relative precision)
    beta = float(kw.get("beta", 1.0))
    return SIGMOID * (k - 1) * abs(beta) ** (k - 1) * sigmoid(beta * a[0]) if k >= 2 else 0.0


def second_from(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    """Ops whose first partials are sigmoids of their arguments (logsigmoid' = sigmoid(-x), logaddexp's
    sigmoid(a - b)): their second derivatives are ``s*(1 - s)`` from the rounded s."""
    return SIGMOID * (k - 1) if k >= 2 else 0.0



def logaddexp2(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    # the partials are sigmoid((a - b)*log(2)): each order up multiplies by log(2)
    return SIGMOID * (k - 1) * _LN2 ** (k - 1) if k >= 2 else 0.0


def ndtr(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    # (1 + erf(x/sqrt(2)))/2: erf's ulps near -1, absolutely, and the sum's; its derivatives are the
    # Gaussian's, computed directly
    return (LIBM + 2) / 2 if k == 0 else 0.0


def digamma(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    # the libraries' recurrence and asymptotic series sum terms of about 1 that cancel beside digamma's zero at
    # 1.4616 (-9.2e-17 at the float nearest it): their ulps, absolutely; its derivatives are computed directly
    return LIBM if k == 0 else 0.0


def log_ndtr(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    # the value as log(ndtr(x)) where ndtr is near 1 (JAX's, up to x = 8): ndtr's ulps of 1, absolutely, and
    # the log's. The slope r = phi/Phi as exp(-x*x/2 - log_ndtr(x))/sqrt(2*pi) (torch's; JAX's
    # exp(norm_logpdf(x) - log_ndtr(x))): in the left tail an exponent of two terms near x*x/2 that cancel,
    # x*x's rounding and log_ndtr's ulps of it, so r is off by delta = (LIBM + 1)*(x*x/2 + 1) eps, relatively.
    # Both libraries differentiate that rule again with the same rounded r (torch's autograd through it, JAX's
    # custom_jvp), so the k-th derivative is a polynomial P_k(x, r) of the rounded r: it loses
    # |dP_k/dr| * |r| * delta. P_2 = -r*(x + r), where x + r cancels (r is nearly -x below 0): |x + 2r| |r|
    # delta, about x**4 eps at a second derivative near -1 (x = -23.36: 2% in torch float32, 9% allowed)
    if k == 0:
        return LIBM + 1
    x = a[0]
    delta = (LIBM + 1) * (x * x / 2 + 1)
    return k * delta * abs(v) if k == 1 else abs(_log_ndtr_sensitivity(k, x)) * delta


def _log_ndtr_sensitivity(k: int, x: float) -> float:
    """d P_k / dr * r at (x, r = phi(x)/Phi(x)), where P_k(x, r) is log_ndtr's k-th derivative written in r:
    P_1 = r and P_(j+1) = dP_j/dx + dP_j/dr * r', with r' = -r*x - r*r (exact polynomials, {(i, j): c} for
    c x^i r^j)."""
    poly: dict[tuple[int, int], float] = {(0, 1): 1.0}
    for _ in range(k - 1):
        nxt: dict[tuple[int, int], float] = {}
        for (i, j), c in poly.items():
            if i:
                nxt[(i - 1, j)] = nxt.get((i - 1, j), 0.0) + c * i
            if j:  # c j x^i r^(j-1) * (-x r - r^2)
                nxt[(i + 1, j)] = nxt.get((i + 1, j), 0.0) - c * j
                nxt[(i, j + 1)] = nxt.get((i, j + 1), 0.0) - c * j
        poly = nxt
    r = _ndtr_ratio(x)
    return sum(c * j * x**i * r**j for (i, j), c in poly.items() if j)


def tanhshrink(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    # x - tanh(x): tanh's ulps of |tanh(x)| (at most |x|), absolutely, and the difference's; the slope is
    # 1 - (1 - t*t), tanh's rebuilt slope subtracted from 1: tanh's allowance and one eps more per order
    x = abs(a[0])
    return (LIBM + 1) * min(1.0, x) if k == 0 else (TANH + 1) * k


def sinc(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    # sin(y)/y, y = pi*x, differentiated by the chain and quotient rules: the k-th derivative is pi^k times
    # terms up to k!/|y|^k (|sin(y)| <= |y|) that cancel towards the result near 0 (sinc'(1e-10) = -3.3e-10
    # from two terms of 1e10): each term's own rounding (a library sin or cos, a quotient), absolutely
    if k == 0:
        return 0.0
    # (at 0 itself libraries take a branch of their own: its series, no cancellation)
    y = math.pi * abs(a[0])
    return (2 * LIBM + 2) * k * math.pi**k * math.factorial(k) * (max(1.0, 1 / y) if y else 1.0) ** k


def atanh(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    # atanh' as 1/((1 + x)(1 - x)), differentiated again: -1/((1 + x)^2 (1 - x)) + 1/((1 + x)(1 - x)^2),
    # two terms of 1/(1 - x^2)^2 that cancel near 0: a few eps of them, per order from the second
    return 4 * (k - 1) / (1 - a[0] * a[0]) ** k if k >= 2 else 0.0


def hypot(k: int, a: Sequence[float], v: float, kw: dict[str, Any]) -> float:
    # hypot's partials x/r and y/r, differentiated again: 1/r - y^2/r^3, two terms of 1/r that cancel where
    # y dominates (the exact x^2/r^3): a few eps of 1/r^(k-1) per order from the second
    r = (a[0] * a[0] + a[1] * a[1]) ** 0.5
    return 4 * (k - 1) / r ** (k - 1) if k >= 2 and r > 0 else 0.0
