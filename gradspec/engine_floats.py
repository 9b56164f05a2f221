"""The float arithmetic of the built-in engine (:mod:`gradspec.engine`, :mod:`gradspec.engine_special`,
:mod:`gradspec.engine_activations`): IEEE results where Python's math raises (overflow is inf, an undefined
result nan), and the few functions written for their digits (a sigmoid that cannot overflow, Phi with its
argument's rounding corrected by an exact product, logit near 1/2, x - tanh(x) near 0, sin(pi*x) without
pi*x's rounding, and sinc's derivatives).
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__: list[str] = []  # private to the built-in engine

_SQRT1_2 = math.sqrt(0.5)
_INF = math.inf


def _ieee(fn: Callable[..., float], *args: float) -> float:
    """``fn(*args)`` with IEEE results where Python's math raises."""
    try:
        result = fn(*args)
    except OverflowError:
        return _INF
    except (ValueError, ZeroDivisionError):
        return math.nan
    if isinstance(result, complex):  # (-8) ** (1/3)
        return math.nan
    return float(result)


def _div(a: float, b: float) -> float:
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(_INF, a) * math.copysign(1.0, b)
    return a / b


def _pow(a: float, b: float) -> float:
    if a == 0.0 and b < 0:
        return _INF
    return _ieee(math.pow, a, b)



def _safe(fn: Callable[..., float], *args: float) -> float:
    """``fn(*args)`` with IEEE results where Python's math raises: nan off the domain, a signed
    infinity on overflow (sinh(-1000) is -inf)."""
    try:
        return float(fn(*args))
    except OverflowError:
        return math.copysign(math.inf, args[0]) if fn is math.sinh else math.inf
    except (ValueError, ZeroDivisionError):
        return math.nan


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _two_product(a: float, b: float) -> tuple[float, float]:
    """``a*b`` as ``p + e`` exactly (Dekker's product, by Veltkamp's splitting)."""
    p = a * b
    if not math.isfinite(p):
        return p, 0.0

    def split(v: float) -> tuple[float, float]:
        c = 134217729.0 * v  # 2**27 + 1
        hi = c - (c - v)
        return hi, v - hi

    (ah, al), (bh, bl) = split(a), split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


_SQRT1_2_LO = -4.833646656726457e-17  # sqrt(1/2) - _SQRT1_2, the part of sqrt(1/2) a float cannot hold


def _ncdf(x: float) -> float:
    """Phi(x) = erfc(-x/sqrt(2))/2 with the argument's rounding corrected: erfc is conditioned like 2z**2,
    so far in the left tail the rounding of -x/sqrt(2) alone would cost ~100 ulps at x = -10."""
    z, e = _two_product(-x, _SQRT1_2)
    dz = e - x * _SQRT1_2_LO
    value = math.erfc(z)
    if dz and math.isfinite(z):
        value -= dz * (2 / math.sqrt(math.pi)) * math.exp(-z * z)
    return value / 2


def _softplus(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def _logit(z: float) -> float:
    """``log(z/(1 - z))``: -inf at 0, inf at 1, nan outside [0, 1]."""
    if z == 0 or z == 1:
        return math.copysign(_INF, z - 0.5)
    if not 0 < z < 1:
        return math.nan
    if 0.25 <= z <= 0.75:  # 2z - 1 is exact here, and log1p keeps the digits of a logit near 0
        return math.log1p((2 * z - 1) / (1 - z))
    return math.log(z) - math.log1p(-z)


def _tanhshrink(x: float) -> float:
    """``x - tanh(x)``. Near 0 it is ``x*q/(1 + q)``, ``q = x**2/(3 + x**2/(5 + ...))`` (Lambert's continued
    fraction of tanh): every term positive, so nothing cancels; 20 terms reach float64's precision for
    |x| <= 2, beyond which the difference loses no digits."""
    if not abs(x) <= 2:
        return x - math.tanh(x)
    x2, s = x * x, 41.0
    for k in range(19, 0, -1):
        s = 2 * k + 1 + x2 / s
    q = x2 / s
    return x * q / (1 + q)


def _sinpi(x: float) -> float:
    """``sin(pi*x)`` with x reduced exactly to [-1/2, 1/2] first (each step is an exact subtraction), so the
    rounding of pi*x never enters: 0 at every integer, and every digit near one."""
    if not math.isfinite(x):
        return math.nan
    r = math.fmod(x, 2.0)
    r = r - 2 if r > 1 else r + 2 if r < -1 else r
    r = 1 - r if r > 0.5 else -1 - r if r < -0.5 else r
    return math.sin(math.pi * r)


def _cospi(x: float) -> float:
    """``cos(pi*x)``, reduced as :func:`_sinpi` is: 0 at every half-integer."""
    if not math.isfinite(x):
        return math.nan
    r = math.fmod(abs(x), 2.0)
    r = 2 - r if r > 1 else r
    return math.cos(math.pi * r) if r < 0.25 else -math.sin(math.pi * (r - 0.5))


def _sinc_d(x: float, n: int) -> float:
    """The ``n``-th derivative of ``sin(pi*x)/(pi*x)`` (1 at 0): within 2 of 0 (in pi*x) its Taylor series
    term by term, so no derivative is 0/0 or a cancelling difference there; elsewhere Leibniz's rule on
    ``sin(pi*x) * (pi*x)**-1``, with sin and cos of pi*x from :func:`_sinpi` and :func:`_cospi`."""
    y = math.pi * x
    if abs(y) <= 2:
        terms, k = [], (n + 1) // 2
        while True:  # (-1)**k y**(2k - n)/((2k + 1)(2k - n)!) over 2k >= n
            terms.append((-1) ** k * y ** (2 * k - n) / ((2 * k + 1) * math.factorial(2 * k - n)))
            if abs(terms[-1]) <= 2.0**-60 * abs(terms[0]) or not terms[-1]:
                break
            k += 1
        return math.pi**n * math.fsum(terms)
    trig = (_sinpi(x), _cospi(x), -_sinpi(x), -_cospi(x))  # sin(pi*x + m*pi/2)
    return math.pi**n * math.fsum(math.comb(n, k) * (-1) ** k * math.factorial(k) * trig[(n - k) % 4] / _ieee(math.pow, y, k + 1)
                                  for k in range(n + 1))

