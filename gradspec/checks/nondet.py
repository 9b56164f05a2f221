"""Nondeterminism: every check runs the engine twice, on two fresh builds of the graph, and compares.

An engine whose backward depends on something other than the graph (a traversal ordered by a ``set`` of
nodes, a race between threads) gives different gradients from run to run; judged on one run, it passes
or fails by luck, and a report that mixes runs prints two engine values for one quantity. Here the
first run is the one judged, shown and localised; the second only says whether the first can be
trusted. A difference beyond the case's ``nondet_tol`` (as torch's gradcheck ``nondet_tol``; default 0:
the runs must agree exactly) fails the quantity, with both values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from gradspec.engines.call import Called
from gradspec.engines.protocol import Outcome
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


def judge(quantities: Sequence[Quantity], first: Outcome, second: Called[Outcome],
          tol: Tolerance) -> tuple[list[Quantity], Culprit | None, str]:
    """Fold the second run into the first run's judged quantities: each that differs beyond
    ``tol.nondet`` fails with both values. Returns the quantities, the culprit (the engine's
    nondeterminism) and a message when the second run did not even finish as the first did."""
    if not second.ok:
        message = f"nondeterministic: a second run of the same graph failed where the first returned ({second.message})"
        return list(quantities), Culprit("backward", CulpritKind.NONDETERMINISM, "", message=message), message
    found = {d.name: d for d in differences(first, second.get())}
    if not found:
        return list(quantities), None, ""
    out = []
    beyond: list[Difference] = []
    for q in quantities:
        d = found.get(q.name if q.role is not Role.VALUE else "value")
        if d is None or q.role is Role.PROPERTY:
            out.append(q)
            continue
        within = _same(d.first, d.second, tol.nondet)
        note = (f"nondeterministic: a second run on a fresh build gave {_g(d.second)} (this run {_g(d.first)})"
                + (f", within nondet_tol {tol.nondet:g}" if within else ""))
        if not within:
            beyond.append(d)
        out.append(dataclasses.replace(q, verdict=q.verdict if within else Verdict.FAIL,
                                       note="; ".join(filter(None, [q.note, note]))))
    if not beyond:
        return out, None, ""
    d = beyond[0]
    label = "the value" if d.name == "value" else f"d/d{d.name}"
    culprit = Culprit("backward" if d.name != "value" else "forward", CulpritKind.NONDETERMINISM, d.name,
                      engine=d.first, message=(
                          f"the engine is not deterministic: two runs of the same graph on fresh builds gave {label} = "
                          f"{_g(d.first)}, then {_g(d.second)} (an order taken from a set or a dict of nodes, say); "
                          "the table shows the first run"))
    return out, culprit, ""


def _g(x: float | None) -> str:
    return "nothing" if x is None else repr(x)  # the shortest text that reads back as the same float
