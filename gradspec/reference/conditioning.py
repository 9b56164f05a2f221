"""The conditioning bound: what rounding may do to a quantity of a function, whatever its spelling.

For an expression case the engine builds the graph the case writes, so the rounding bound of that graph
(:mod:`gradspec.reference.rounding`, the tapes and jets) is what a correct engine may lose. A function
case is different: its ``reference`` describes the function, and the library computes it by an algorithm
of its own (a fused kernel, a stable rewrite). The reference's spelling then says nothing about what a
correct library loses: ``log(1 + exp(x))`` cancels where ``x + log(1 + exp(-x))`` does not, and a
bound from either would let a 0 through for one spelling and not the other.

A correct library computes each quantity ``q`` as the exact ``q`` of inputs and directions (cotangent,
tangents) each moved by a few roundings, then rounds it: to first order

    |q^ - q|  <=  eps * ( m * S(q)  +  4 (d + 1) |q| ),    S(q) = sum_j |dq/dz_j| |z_j|

where ``z_j`` runs over every element of the differentiable inputs and of the directions the quantity
is taken along, ``d`` is the quantity's order of differentiation (0 for the value, 1 for a VJP or a JVP,
2 for an HVP, ``k`` for ``order: k``) and ``m = (d + 1)(n_in + n_out)``: each of the ``d + 1`` sweeps
that form the quantity sums at most ``n_in + n_out`` terms into an element, and recursive summation of
``N`` terms moves each by at most ``N - 1`` roundings; ``4`` is the ulp budget of a library's
transcendental op (the op table's largest ``ulps``) for the quantity's own last steps. ``S`` is the
quantity's condition number times its inputs: it follows the function, not any spelling of it.

``dq/dz_j`` is not needed to more than a few digits: for an input element it is a central difference of
the exact quantity at ``z_j (1 +- 2^-64)`` (Fractions, so the points are exact, evaluated at the
reference's 50 digits or 128-bit balls, where the difference keeps over 19 digits); a direction element
is moved by ``+-2^-30`` (an exact float, and the quantity is a polynomial of low degree in it). An input
element that is 0 is not moved (a relative rounding leaves it 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from gradspec.errors import DomainError

__all__ = ["LIMIT", "Sums", "add", "allowance", "direction_sums", "input_sums", "magnitudes"]

LIMIT = 256  # input and direction elements a check may move; beyond that, the reference's bound stands
_STEP = Fraction(1, 2**64)  # relative move of an input element
_DIRECTION_STEP = 2.0**-30  # absolute move of a direction element (they are multiples of 1/1024 in [-1, 1])
_LAST_ULPS = 4  # a library op's own rounding of its result (the op table's largest ``ulps``)
# ``S`` is kept in units of 2^52 (times 2^-52): it is only ever used times eps, and a quantity near the top of
# the float range (exp2'(1020) = 7.8e306, times |x| = 1020) has an S beyond it that its bound is not.
_SCALE = 2.0**-52

Quantities = Callable[[Mapping[str, Any]], Mapping[str, Any]]  # point -> {label: exact array}


def allowance(sums: Any, exact: Any, order: int, elements: int, eps: float) -> Any:
    """The conditioning bound of a quantity of derivative ``order``, from its ``S`` (``sums``), its
    exact value (float array) and the function's input plus output elements."""
    multiplier = (order + 1) * elements
    return (eps / _SCALE) * multiplier * np.asarray(sums, dtype=float) + eps * _LAST_ULPS * (order + 1) * np.abs(exact)


def magnitudes(values: Any) -> Any:
    """An object array of mpf or arb balls as floats (an arb by its midpoint)."""
    def one(x: Any) -> float:
        mid = getattr(x, "mid", None)
        return float(mid()) if mid is not None else float(x)
    return np.vectorize(one, otypes=[float])(np.asarray(values, dtype=object))


def _moves(point: Mapping[str, Any], names: Sequence[str]) -> Iterator[tuple[Fraction, dict[str, Any], dict[str, Any]]]:
    """Per nonzero element of the named inputs: (|x_j| * step, the point moved up by it, moved down)."""
    for name in names:
        values = np.asarray(point[name], dtype=object)
        for index, value in np.ndenumerate(values):
            x = Fraction(value)
            if x == 0:
                continue
            h = abs(x) * _STEP
            up, down = values.copy(), values.copy()
            up[index], down[index] = x + h, x - h
            yield h, {**point, name: up}, {**point, name: down}


def input_sums(quantities: Quantities, point: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any] | None:
    """``sum_j |dq/dx_j| |x_j|`` (times 2^-52) over the named inputs' elements, for every quantity
    ``quantities`` returns at a point; None where the function is not differentiable across a move (a domain's edge)."""
    total: dict[str, Any] = {}
    for h, up, down in _moves(point, names):
        try:
            hi, lo = quantities(up), quantities(down)
        except DomainError:
            return None
        x = float(abs(h / _STEP))
        for label, value in hi.items():
            slope = np.abs(magnitudes(np.asarray(value, dtype=object) - np.asarray(lo[label], dtype=object)))
            total[label] = total.get(label, 0.0) + slope * (x / (2 * float(h)) * _SCALE)
    return total


def direction_sums(quantities: Callable[[Sequence[Any]], Mapping[str, Any]],
                   directions: Sequence[Any]) -> dict[str, Any]:
    """``sum_j |dq/dd_j| |d_j|`` (times 2^-52) over the elements of float ``directions`` (arrays), for every quantity
    ``quantities`` returns given the directions."""
    total: dict[str, Any] = {}
    for k, direction in enumerate(directions):
        arr = np.asarray(direction, dtype=float)
        for index in np.ndindex(arr.shape):
            d = float(arr[index])
            if d == 0:
                continue
            up, down = arr.copy(), arr.copy()
            up[index] += _DIRECTION_STEP
            down[index] -= _DIRECTION_STEP
            moved = [*directions]
            hi = quantities([*moved[:k], up, *moved[k + 1:]])
            lo = quantities([*moved[:k], down, *moved[k + 1:]])
            h = float(up[index] - down[index])
            for label, value in hi.items():
                slope = np.abs(magnitudes(np.asarray(value, dtype=object) - np.asarray(lo[label], dtype=object)))
                total[label] = total.get(label, 0.0) + slope * (abs(d) / h * _SCALE)
    return total


def add(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in {*a, *b}}


@dataclass(frozen=True)
class Sums:
    """A check's conditioning: per quantity label, ``S(q)``, and how many input and output elements the
    function has (``n_in + n_out``)."""

    terms: Mapping[str, Any]
    elements: int

    def bound(self, label: str, exact: Any, order: int, eps: float) -> Any:
        """The conditioning bound of the quantity ``label`` (None when it has no ``S``)."""
        if label not in self.terms:
            return None
        return allowance(self.terms[label], exact, order, self.elements, eps)
