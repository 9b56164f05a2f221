"""Numbers as people write them: the exact rational a decimal literal means."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

__all__ = ["Number", "exact_float", "exact_number"]

Number = float | int | str | Fraction | Decimal


def exact_number(x: Number) -> Fraction:
    """A number as the decimal a person wrote: 0.1 is 1/10, not the nearest binary float."""
    if isinstance(x, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"{x} is not a finite number")
        return Fraction(repr(x))
    if isinstance(x, str):
        return Fraction(x.strip())
    return Fraction(x)


def exact_float(x: float) -> Fraction:
    """:func:`exact_number` of a finite float, several times faster (a tensor of a million inputs): the
    shortest decimal that reads back as ``x`` (its repr) as digits over a power of ten."""
    x = float(x)  # a NumPy float's repr names its type
    text = repr(x)
    if "e" in text or "n" in text:  # exponent form, inf, nan: the general path
        return exact_number(x)
    whole, _, frac = text.partition(".")
    return Fraction(int(whole + frac), 10 ** len(frac))
