"""The central difference against its step size, for the report's step-size plot.

For one input of a checked graph, ``|(f(x+h) - f(x-h)) / 2h - exact|`` of the float forward pass for
``h = 1e-1 ... 1e-13``. Truncation error falls with ``h``; rounding error grows as ``h`` shrinks. The
check carries the series in its result, so a report draws it without parsing or evaluating anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

from gradspec.graph.ir import Graph
from gradspec.reference.numerical import float_forward

__all__ = ["MAX_STEPS", "STEP_EXPONENTS", "central_errors"]

STEP_EXPONENTS = tuple(range(-1, -14, -1))  # h = 1e-1 ... 1e-13
MAX_STEPS = 200  # graphs with more steps get no series: 26 forward passes each would cost more than the check


def central_errors(graph: Graph, point: Mapping[str, float], name: str, exact: float) -> tuple[tuple[int, float], ...]:
    """``|(f(x+h) - f(x-h)) / 2h - exact|`` for each ``h = 10**k`` of ``STEP_EXPONENTS`` (non-finite left out)."""
    if len(graph.steps) > MAX_STEPS or name not in graph.names:
        return ()
    return _central_errors(graph, tuple(point.items()), name, exact)


@lru_cache(maxsize=32768)  # above the checks of a library, so a run's second engine finds them all
def _central_errors(graph: Graph, point: tuple[tuple[str, float], ...], name: str, exact: float) -> tuple[tuple[int, float], ...]:
    # The same graph and point recur on every engine of a run: the series is worked out once.
    inputs = dict(point)
    index = graph.names[name]
    x0 = inputs[name]
    out = []
    for k in STEP_EXPONENTS:
        h = 10.0**k
        try:
            diff = (float_forward(graph, inputs, (index, x0 + h)) - float_forward(graph, inputs, (index, x0 - h))) / (2 * h)
        except (ArithmeticError, ValueError):
            continue
        err = abs(diff - exact)
        if math.isfinite(err):
            out.append((k, err))
    return tuple(out)
