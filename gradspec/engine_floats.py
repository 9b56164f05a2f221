"""The float arithmetic of the built-in engine (:mod:`gradspec.engine`, :mod:`gradspec.engine_special`,
:mod:`gradspec.engine_activations`): IEEE results where Python's math raises (overflow is inf, an undefined
result nan), and the few functions written for their digits (a sigmoid that cannot overflow, Phi with its
argument's rounding corrected by an exact product, logit near 1/2, x - tanh(x) near 0, sin(pi*x) without
pi*x's rounding, sinc's derivatives, and the polygamma functions).
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



# B_2k / (2k)! for k = 1..10: the asymptotic series of the polygamma functions
_BERNOULLI = (1 / 12, -1 / 720, 1 / 30240, -1 / 1209600, 1 / 47900160, -691 / 1307674368000, 1 / 74724249600,
              -3617 / 10670622842880000, 43867 / 5109094217170944000, -174611 / 802857662698291200000)


# digamma's positive zero (as a float and what it lacks) and its Taylor coefficients there, psi^(k)(x0)/k!
_ROOT_HI, _ROOT_LO = 1.4616321449683622, 9.549995429965697e-17
_AT_ROOT = (0.9676722454476212, -0.4427631689835921, 0.258499760955651, -0.16394270544240652, 0.10782405069126237,
            -0.07219956125645471, 0.04880428816414311, -0.03316112647484736, 0.022597648232218104,
            -0.01542476590494896, 0.010538791616612175, -0.007204534386356869, 0.004926781395729853,
            -0.003369801655439328, 0.002305126326734928, -0.0015769367714301972, 0.0010788252019162967,
            -0.0007380709389960052, 0.000504953265834602, -0.0003454680251063077, 0.00023635601564027053)


def _polygamma(n: int, x: float) -> float:
    """psi^(n)(x), the n-th derivative of digamma (n = 0: digamma): x shifted up to 10 or more by the
    recurrence psi^(n)(x) = psi^(n)(x + 1) - (-1)^n n! / x^(n+1), then the asymptotic series
    (-1)^(n+1) [(n-1)!/x^n + n!/(2 x^(n+1)) + sum_k B_2k (2k+n-1)!/(2k)! / x^(2k+n)] (n = 0: log(x) - 1/(2x)
    - sum_k B_2k/(2k x^2k)). Within 1/5 of digamma's zero x0 = 1.4616..., where they cancel to nothing of
    it, digamma is its Taylor series in x - x0 (x0 held in two floats). A pole (0, -1, -2, ...) is nan;
    below -1e6 the recurrence is too long: nan."""
    if math.isnan(x) or (x <= 0 and x == math.floor(x)) or x < -1e6:
        return math.nan
    if n == 0 and abs(x - _ROOT_HI) <= 0.2:
        d = (x - _ROOT_HI) - _ROOT_LO  # x - _ROOT_HI is exact there (Sterbenz)
        total = 0.0
        for c in reversed(_AT_ROOT):
            total = (total + c) * d
        return total
    if math.isinf(x):
        return _INF if n == 0 else 0.0
    sign = -1.0 if n % 2 == 0 else 1.0  # -(-1)^n: the recurrence's term is sign * n! / x^(n+1)
    shift = 0.0
    while x < 10:
        shift += x ** -(n + 1)
        x += 1
    factorial = math.factorial(n)
    inv, inv2 = 1 / x, 1 / (x * x)
    if n == 0:
        tail = math.log(x) - inv / 2 - sum(b * math.factorial(2 * k - 1) * inv2**k for k, b in enumerate(_BERNOULLI, 1))
    else:
        head = math.factorial(n - 1) * inv**n + factorial * inv ** (n + 1) / 2
        tail = (-1) ** (n + 1) * (head + sum(b * math.factorial(2 * k + n - 1) * inv ** (2 * k + n)
                                             for k, b in enumerate(_BERNOULLI, 1)))
    return tail + sign * factorial * shift


# zeta(k) - 1 for k = 2..26: the Taylor coefficients of lgamma at 1 and 2
_ZETA_1 = (0.6449340668482264, 0.2020569031595943, 0.08232323371113819, 0.03692775514336993, 0.01734306198444914,
           0.008349277381922827, 0.00407735619794434, 0.0020083928260822143, 0.0009945751278180853,
           0.0004941886041194645, 0.0002460865533080483, 0.00012271334757848915, 6.124813505870483e-05,
           3.058823630702049e-05, 1.528225940865187e-05, 7.637197637899763e-06, 3.81729326499984e-06,
           1.908212716553939e-06, 9.539620338727962e-07, 4.769329867878064e-07, 2.38450502727733e-07,
           1.1921992596531106e-07, 5.960818905125948e-08, 2.980350351465228e-08, 1.4901554828365043e-08)
_EULER = 0.5772156649015329


def _lgamma(x: float) -> float:
    """log|Gamma(x)|, +inf at a pole. math.lgamma keeps only a few digits beside its zeros at 1 and 2 (7e-4
    off at 1 + 2**-40) and is some 30 ulps off at 2.2; here, below 10: the Taylor series lgamma(1 + z) =
    -gamma z + sum_k (-1)^k zeta(k) z^k/k for |z| <= 1/5, else lgamma(2 + z) = (1 - gamma) z + sum_k (-1)^k
    (zeta(k) - 1) z^k/k with x moved into [3/2, 5/2] by lgamma(x + 1) = lgamma(x) + log(x); below 0 the
    reflection log(pi/|sin(pi x)|) - lgamma(1 - x)."""
    if math.isnan(x) or (x <= 0 and x == math.floor(x)):
        return _INF if x == x else x
    if x < 0:
        return math.log(math.pi / abs(_sinpi(x))) - _lgamma(1 - x)
    if x >= 10:
        return _safe(math.lgamma, x)
    if abs(x - 1) <= 0.2:
        return _lgamma_series(x - 1, -_EULER, 1.0)
    logs = 0.0
    while x < 1.5:
        logs -= math.log(x)
        x += 1
    while x > 2.5:
        x -= 1
        logs += math.log(x)
    return _lgamma_series(x - 2, 1 - _EULER, 0.0) + logs


def _lgamma_series(z: float, linear: float, extra: float) -> float:
    total, power = 0.0, -z
    for k, zeta in enumerate(_ZETA_1, 2):
        power *= -z
        total += (zeta + extra) * power / k
    return linear * z + total


_HALF_LOG_2PI = 0.9189385332046728  # log(2*pi)/2


def _log_ndtr(x: float) -> float:
    """log(Phi(x)): log1p(-Phi(-x)) above 0, log(Phi(x)) down to -30, and below it the asymptotic series
    -x**2/2 - log(-x) - log(2*pi)/2 + log1p(sum_k (-1)^k (2k-1)!!/x^(2k)) (Phi underflows below -38)."""
    if math.isnan(x):
        return x
    if x > 0:
        return math.log1p(-_ncdf(-x))
    if x > -30:
        return math.log(_ncdf(x))
    if x == -math.inf:
        return x
    inv2, term, total = 1 / (x * x), 1.0, 0.0
    for k in range(1, 12):  # the terms fall below 1e-17 of 1 by k = 11 at |x| = 30
        term *= -(2 * k - 1) * inv2
        total += term
    hi, lo = _two_product(x, x)
    return (-hi / 2 - math.log(-x) - _HALF_LOG_2PI) + (math.log1p(total) - lo / 2)


def _ndtr_gap(x: float) -> float:
    """x + phi(x)/Phi(x), the slope of log(Phi(x)) plus x: below -1 the continued fraction of Mills' ratio,
    1/(t + 2/(t + 3/(t + ...))) with t = -x, which is this gap itself with no cancellation (phi/Phi is
    nearly -x there); above, x + :func:`_ndtr_ratio`."""
    if math.isnan(x):
        return x
    if x <= -1:
        t, acc = -x, 0.0
        for k in range(600, 0, -1):  # below 1 ulp at t = 1 (and fewer terms would do further out)
            acc = k / (t + acc)
        return acc
    return x + _ndtr_ratio(x)


def _ndtr_ratio(x: float) -> float:
    """phi(x)/Phi(x), the slope of log(Phi(x)): exp(-x*x/2) of the exact square over Phi above -1, the
    continued fraction's gap minus x below."""
    if x <= -1:
        return _ndtr_gap(x) - x
    hi, lo = _two_product(x, x)
    return math.exp(-hi / 2) * (1 - lo / 2) / math.sqrt(2 * math.pi) / _ncdf(x)
