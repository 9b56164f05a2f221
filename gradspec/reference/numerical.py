"""The numerical reference: the central difference of the float forms in the op table, refined by one
Richardson step, ``(4 D(h/2) - D(h)) / 3``, with ``h`` scaled by the magnitude of the variable. It is a
witness beside the exact reference, never the judge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gradspec.graph.ir import Const, Graph, Leaf
from gradspec.ops.table import OPS

__all__ = ["float_forward", "numerical", "relative_error", "relative_to"]


def float_forward(graph: Graph, inputs: Mapping[str, float], override: tuple[int, float] | None = None) -> float:
    """The graph's output in float64 through the op table's float forms; nan where they fail."""
    values: list[float] = []
    for i, step in enumerate(graph.steps):
        if override is not None and i == override[0]:
            values.append(override[1])
        elif isinstance(step, Leaf):
            values.append(inputs[step.name])
        elif isinstance(step, Const):
            values.append(float(step.value))
        else:
            try:
                values.append(float(OPS[step.op].fn(*(values[a] for a in step.args))))
            except (ArithmeticError, ValueError, TypeError):
                values.append(math.nan)
    return values[graph.output]


def numerical(graph: Graph, inputs: Mapping[str, float], name: str, h: float = 1e-4) -> float | None:
    """Central difference with one Richardson step for input or intermediate ``name``; None if the
    steps leave the function's domain."""
    index = graph.names[name]
    x0 = inputs[name] if name in dict(graph.inputs) else _float_value_of(graph, inputs, index)
    step = h * max(1.0, abs(x0))

    def f(x: float) -> float:
        return float_forward(graph, inputs, (index, x))

    def central(s: float) -> float:
        return (f(x0 + s) - f(x0 - s)) / (2 * s)

    for _ in range(4):  # shrink the step when it crosses a domain boundary
        d1, d2 = central(step), central(step / 2)
        if math.isfinite(d1) and math.isfinite(d2):
            return (4 * d2 - d1) / 3
        step /= 100
    return None



def _float_value_of(graph: Graph, inputs: Mapping[str, float], index: int) -> float:
    return float_forward(graph.rooted_at(index), inputs)


def relative_error(computed: float, reference: float, floor: float = 1e-8) -> float:
    """|computed - reference| / max(|computed|, |reference|, floor): the classic gradient-check metric."""
    if computed == reference:
        return 0.0
    if math.isnan(computed) or math.isnan(reference) or math.isinf(computed) or math.isinf(reference):
        return math.inf
    return abs(computed - reference) / max(abs(computed), abs(reference), floor)


def relative_to(error: float, computed: float, reference: float, floor: float = 1e-8) -> float:
    """:func:`relative_error` of an absolute error worked out exactly (``reference`` is the exact value's
    nearest float, which ``computed`` may equal while the exact value differs)."""
    if 0 < error < math.inf:
        return error / max(abs(computed), abs(reference), floor)
    return relative_error(computed, reference)
