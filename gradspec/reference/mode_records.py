"""A forward-mode and higher-order reference as a record of the disk cache, and back.

The nested duals and SymPy's derivatives of every order cost most of a run of the built-in library
(tens of milliseconds a check); kept on disk, as the first-order references are, a second run reads
them. Exact numbers are written as their binary mantissa and exponent (a second run reads every bit
the first worked out, and reports the same errors), a ball's radius as its own (the conversion back
rounds it up, by at most 2^-29 of itself), floats exactly, and a reference whose arrays
hold more than ``LIMIT`` numbers is not kept (a large tensor's, in ball arithmetic, is cheap to work
out again and large to write).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import flint
import mpmath
import numpy as np

__all__ = ["LIMIT", "read", "record"]

LIMIT = 4096  # numbers in all of a reference's arrays
_FIELDS = ("exact", "allowance", "peak", "low", "rebuilt")


class _Unkept(Exception):
    """A value the record has no spelling for, or a reference too large to keep."""


def record(ref: Any) -> Any:
    """``ref`` (a :class:`~gradspec.reference.modes.ModeReference`) as JSON data, or None where it is not kept."""
    size = [0]

    def known(k: Any) -> Any:
        return None if k is None else [_value(getattr(k, f), size) for f in _FIELDS]

    try:
        data = {"jvp": known(ref.jvp), "vjp": [known(k) for k in ref.vjp], "hvp": [known(k) for k in ref.hvp],
                "jvp_of_jvp": known(ref.jvp_of_jvp), "jacobian": [known(k) for k in ref.jacobian],
                "orders": None if ref.orders is None else [[n, known(k)] for n, k in ref.orders.items()],
                "radius": ref.radius}
    except _Unkept:  # _value counts the numbers and refuses past LIMIT
        return None
    return data


def read(data: Any, known: Any, reference: Any) -> Any:
    """The reference ``data`` spells, built with the ``Known`` and ``ModeReference`` classes given."""
    def k(d: Any) -> Any:
        return None if d is None else known(*(_unvalue(v) for v in d))

    return reference(k(data["jvp"]), tuple(k(d) for d in data["vjp"]), tuple(k(d) for d in data["hvp"]),
                     k(data["jvp_of_jvp"]), tuple(k(d) for d in data["jacobian"]),
                     None if data["orders"] is None else {n: k(d) for n, d in data["orders"]}, data["radius"])


def _value(x: Any, size: list[int]) -> Any:
    """An array (its dtype, shape and elements) or one number, as JSON data."""
    if isinstance(x, np.ndarray):
        size[0] += x.size
        if size[0] > LIMIT:
            raise _Unkept
        return {"dtype": str(x.dtype), "shape": list(x.shape), "flat": [_number(e) for e in x.flat]}
    return _number(x)


def _number(x: Any) -> Any:
    if x is None or isinstance(x, (bool, int, float)):
        return x
    if isinstance(x, np.floating | np.integer):
        return x.item()
    if isinstance(x, mpmath.mpf):
        if not mpmath.isfinite(x):
            return {"mpf": str(x)}
        sign, man, exp, _ = x._mpf_
        return {"mpf": [-man if sign else man, exp]}
    if isinstance(x, Fraction):
        return {"fraction": [x.numerator, x.denominator]}
    if isinstance(x, flint.arb) and x.is_finite():
        return {"arb": [int(n) for n in (*x.mid().man_exp(), *x.rad().man_exp())]}
    raise _Unkept


def _unvalue(d: Any) -> Any:
    if isinstance(d, dict) and "flat" in d:
        flat = [_unnumber(e) for e in d["flat"]]
        out = np.empty(len(flat), dtype=d["dtype"])
        out[:] = flat
        return out.reshape(d["shape"])
    return _unnumber(d)


def _unnumber(d: Any) -> Any:
    if isinstance(d, dict):
        if "fraction" in d:
            return Fraction(*d["fraction"])
        if "arb" in d:
            man, exp, rman, rexp = d["arb"]
            with flint.ctx.workprec(max(53, int(man).bit_length(), int(rman).bit_length())):  # exact products
                return flint.arb(flint.arb(man) * flint.arb(2) ** exp, flint.arb(rman) * flint.arb(2) ** rexp)
        if isinstance(d["mpf"], str):
            return mpmath.mpf(d["mpf"])
        man, exp = d["mpf"]
        with mpmath.workprec(max(53, int(man).bit_length())):  # every bit of the mantissa
            return mpmath.ldexp(mpmath.mpf(man), exp)
    return d
