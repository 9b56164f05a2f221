"""The culprit of an engine call that raised, read from where it raised.

A traceback says more than the exception's text: the frame of :meth:`Engine._apply` that the exception
came out of holds the op being built (its forward raised), and a RecursionError that came out of
``gradients`` is a backward that walks the graph recursively.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

from gradspec.graph.ir import Apply, Graph
from gradspec.graph.printer import label
from gradspec.results import Culprit, CulpritKind

__all__ = ["raised_culprit"]


def raised_culprit(graph: Graph, exc: BaseException) -> Culprit | None:
    """The culprit of an engine call that raised, read from where it raised: an op's forward (the
    exception came out of building that op), or the traversal (RecursionError in backward), else None."""
    frames = list(_frames(exc))
    in_backward = any(f.f_code.co_name == "gradients" for f in frames)
    if isinstance(exc, RecursionError) and in_backward:
        # the function that calls itself: the engine's own, the one most often on the stack
        name, depth = Counter(f.f_code.co_name for f in frames).most_common(1)[0]
        return Culprit("backward", CulpritKind.TRAVERSAL, label(graph, graph.output), message=(
            f"backward raised RecursionError on a graph {graph.depth} ops deep: it walks the graph recursively "
            f"({name} calls itself, {depth} deep when it stopped), which Python's recursion limit "
            f"({sys.getrecursionlimit()}) stops; an iterative traversal does not"))
    if in_backward:
        return None
    applying = next((f for f in frames if f.f_code.co_name == "_apply" and "op" in f.f_locals), None)
    if applying is None:
        return None
    op = applying.f_locals["op"]
    shown = [_num(a) for a in applying.f_locals.get("args", ())]
    producer = _non_number_producer(graph, frames)
    if producer is not None:  # the op before it handed it a node that holds no number
        i, held = producer
        made = graph.steps[i].op  # type: ignore[union-attr]
        return Culprit(made, CulpritKind.FORWARD, label(graph, i), message=(
            f"{made} at `{label(graph, i)}` returned a node whose value is a {type(held).__name__}, not a number; "
            f"{op.name}, which reads it, raised {type(exc).__name__}: {exc}"))
    return Culprit(op.name, CulpritKind.FORWARD, op.name, message=(
        f"{op.name} raised {type(exc).__name__} in its forward at ({', '.join(shown)}): {exc}"))


def _non_number_producer(graph: Graph, frames: list[Any]) -> tuple[int, Any] | None:
    """The step, among the operands of the op being built when the engine raised, whose node's value is
    not a number (a Value class's tanh that stores a Value in ``.data``), and that value; else None."""
    building = next((f for f in frames if f.f_code.co_name == "build" and {"nodes", "step"} <= f.f_locals.keys()),
                    None)
    if building is None:
        return None
    nodes, step = building.f_locals["nodes"], building.f_locals["step"]
    for a in getattr(step, "args", ()):
        if a >= len(nodes) or not isinstance(graph.steps[a], Apply):
            continue
        held = getattr(nodes[a], "data", nodes[a])
        try:
            float(held)
        except (TypeError, ValueError):
            return a, held
    return None


def _frames(exc: BaseException) -> Iterator[Any]:
    tb = exc.__traceback__
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _num(x: Any) -> str:
    try:
        return f"{float(getattr(x, 'data', x)):g}"
    except (TypeError, ValueError):
        return type(x).__name__
