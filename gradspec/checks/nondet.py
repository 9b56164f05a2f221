"""Nondeterminism: every check runs the engine twice, on two fresh builds of the graph, and compares.

An engine whose backward depends on something other than the graph (a traversal ordered by a ``set`` of
nodes, a race between threads) gives different gradients from run to run; judged on one run, it passes
or fails by luck, and a report that mixes runs prints two engine values for one quantity. Here the
first run is the one judged, shown and localised; the second only says whether the first can be
trusted.

How far two runs may differ. Floating-point addition is not associative, so an engine that adds a
node's gradient contributions in an order taken from a ``set`` (micrograd and its many copies) gets a
result that differs in the last bit or two from one build to the next, and both are correct. By
default a difference is judged against rounding: the quantity's rounding allowance ``A``
(:mod:`gradspec.reference.rounding`, the bound the judge already adds to the case's tolerance) bounds,
to first order, how far *any* evaluation of the graph in the engine's precision can be from the exact
value. It bounds every order of summation, not one: each sum of ``n`` contributions is allowed
``(n - 1) * u * sum(|contribution|)``, the worst case over orders, and an error made early in the
backward sweep is carried to every gradient it reaches by its sensitivity. Two runs are two such
evaluations, each within ``A`` of the exact value, so a correct engine's runs differ by at most ``2 A``
(the triangle inequality), and that is the bound. A spread within it passes, noted in ulps; beyond it
the runs fail as nondeterministic with both values (noise of 1e-9 relative in a float64 gradient is
millions of times over). Where the allowance is not finite (a value that overflowed on the way), no
rounding argument applies and the runs must agree exactly.

A case's ``nondet_tol`` (as torch's gradcheck ``nondet_tol``) or ``gradspec run --nondet-tol`` is an
explicit absolute bound instead; ``deterministic: true`` or ``--deterministic`` ask for bitwise
agreement (``nondet_tol`` 0).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from gradspec.engines.call import Called
from gradspec.engines.protocol import FLOAT64_EPS, Outcome
from gradspec.results import Culprit, CulpritKind, Quantity, Role, Tolerance, Verdict

__all__ = ["Difference", "differences", "judge"]


@dataclasses.dataclass(frozen=True)
class Difference:
    name: str  # "value", or the input or intermediate whose gradient differs
    first: float | None
    second: float | None


def _same(a: float | None, b: float | None, tol: float) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= tol


def differences(first: Outcome, second: Outcome, tol: float = 0.0) -> list[Difference]:
    """The quantities on which two runs differ by more than ``tol``."""
    pairs: list[tuple[str, float | None, float | None]] = [("value", first.value, second.value)]
    pairs += [(name, g, second.grads.get(name)) for name, g in first.grads.items()]
    return [Difference(n, a, b) for n, a, b in pairs if not _same(a, b, tol)]


def judge(quantities: Sequence[Quantity], first: Outcome, second: Called[Outcome], tol: Tolerance,
          allowance: Callable[[str], float] | None = None, eps: float = FLOAT64_EPS,
          ) -> tuple[list[Quantity], Culprit | None, str]:
    """Fold the second run into the first run's judged quantities: each that differs beyond what is
    allowed (``tol.nondet``, or, where that is None, twice the quantity's rounding allowance,
    ``allowance(name)`` with ``""`` for the value) fails with both values. Returns the quantities, the
    culprit (the engine's nondeterminism) and a message: why the second run could not be compared, or
    the spread of runs that differ within rounding."""
    if not second.ok:
        message = f"nondeterministic: a second run of the same graph failed where the first returned ({second.message})"
        return list(quantities), Culprit("backward", CulpritKind.NONDETERMINISM, "", message=message), message
    found = {d.name: d for d in differences(first, second.get())}
    if not found:
        return list(quantities), None, ""
    out = []
    beyond: list[Difference] = []
    spread = 0.0  # the largest difference within rounding, in ulps of the engine's precision
    for q in quantities:
        d = found.get(q.name if q.role is not Role.VALUE else "value")
        if d is None or q.role is Role.PROPERTY:
            out.append(q)
            continue
        bound, by_rounding = _allowed(d.name, tol, allowance)
        within = _same(d.first, d.second, bound)
        note = f"nondeterministic: a second run on a fresh build gave {_g(d.second)} (this run {_g(d.first)})"
        if within and by_rounding:
            ulps = _ulps(d.first, d.second, eps)
            spread = max(spread, ulps)
            note = (f"runs differ by {_ulps_text(ulps)} ({_g(d.first)}, then {_g(d.second)}), within what "
                    f"rounding allows two runs ({bound:.2g}): the engine's sums are order-dependent")
        elif within:
            note += f", within nondet_tol {bound:g}"
        else:
            beyond.append(d)
            if by_rounding:
                note += f", more than rounding allows two runs ({bound:.2g})"
        out.append(dataclasses.replace(q, verdict=q.verdict if within else Verdict.FAIL,
                                       note="; ".join(filter(None, [q.note, note]))))
    if not beyond:
        spread_note = (f"runs differ by up to {_ulps_text(spread)}: the engine's sums are order-dependent"
                       if spread else "")
        return out, None, spread_note
    d = beyond[0]
    label = "the value" if d.name == "value" else f"d/d{d.name}"
    culprit = Culprit("backward" if d.name != "value" else "forward", CulpritKind.NONDETERMINISM, d.name,
                      engine=d.first, message=(
                          f"the engine is not deterministic: two runs of the same graph on fresh builds gave {label} = "
                          f"{_g(d.first)}, then {_g(d.second)} (an order taken from a set or a dict of nodes, say), "
                          f"{_beyond_text(d, tol, allowance)}; the table shows the first run"))
    return out, culprit, ""


def _allowed(name: str, tol: Tolerance, allowance: Callable[[str], float] | None) -> tuple[float, bool]:
    """How far two runs of quantity ``name`` may differ, and whether that bound is rounding's."""
    if tol.nondet is not None or allowance is None:
        return tol.nondet or 0.0, False
    a = allowance("" if name == "value" else name)
    return (2 * a, True) if math.isfinite(a) else (0.0, False)


def _beyond_text(d: Difference, tol: Tolerance, allowance: Callable[[str], float] | None) -> str:
    bound, by_rounding = _allowed(d.name, tol, allowance)
    if by_rounding:
        return (f"further apart than rounding in the engine's precision lets two runs be ({bound:.2g}; "
                "nondet_tol or --nondet-tol set an explicit bound)")
    if tol.nondet:
        return f"further apart than nondet_tol {bound:g}"
    if tol.nondet == 0:
        return "and the case asks for bitwise agreement (deterministic, or nondet_tol 0)"
    return "and no finite rounding bound covers this quantity (nondet_tol or --nondet-tol set an explicit one)"


def _ulps(a: float | None, b: float | None, eps: float) -> float:
    """|a - b| in units in the last place of the larger, in a precision of machine epsilon ``eps``."""
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or a == b:
        return 0.0
    big = max(abs(a), abs(b))
    return abs(a - b) / (eps * 2.0 ** (math.frexp(big)[1] - 1)) if big else 0.0


def _ulps_text(ulps: float) -> str:
    n = max(1, round(ulps))
    return f"{n} ulp" if n == 1 else f"{n} ulps"


def _g(x: float | None) -> str:
    return "nothing" if x is None else repr(x)  # the shortest text that reads back as the same float
