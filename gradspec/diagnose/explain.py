"""Explaining a check: every node's value and gradient on the engine beside the exact ones, as rows or
as a Graphviz drawing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from gradspec.diagnose.localise import _close, _exact_state
from gradspec.diagnose.text import _label, _number
from gradspec.engines import call
from gradspec.engines.protocol import Engine, Outcome
from gradspec.errors import EngineError
from gradspec.graph.ir import Graph

__all__ = ["NodeReport", "explain", "render_dot"]


@dataclass(frozen=True)
class NodeReport:
    step: int
    label: str
    op: str
    value_engine: float | None
    value_exact: float
    grad_engine: float | None
    grad_exact: float
    ok: bool


def explain(graph: Graph, point: Mapping[str, Fraction], engine: Engine) -> tuple[list[NodeReport], Outcome]:
    """Every node of ``graph`` at ``point``: the engine's value and gradient beside the exact ones."""
    floats = {k: float(v) for k, v in point.items()}
    called = call.run(engine, graph, floats, every_node=True, representable=False)
    if called.verdict is not None:
        raise EngineError(f"{engine.name} cannot be explained here: {called.message}")
    outcome = called.get()
    values, adj = _exact_state(graph, point)
    rows = []
    for i, step in enumerate(graph.steps):
        if not graph.varying[i] or i not in outcome.node_grads:
            continue
        ge, gx = outcome.node_grads.get(i), float(adj[i])
        ve, vx = outcome.node_values.get(i), float(values[i])
        ok = _close(ge, gx) and (ve is None or _close(ve, vx))
        rows.append(NodeReport(i, _label(graph, i), step.op or "input", ve, vx, ge, gx, ok))
    return rows, outcome


def render_dot(graph: Graph, rows: list[NodeReport]) -> str:
    """The graph as Graphviz DOT, each node with its value and gradients, wrong ones in red."""
    by_step = {r.step: r for r in rows}
    lines = ["digraph gradspec {", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];']
    for i, step in enumerate(graph.steps):
        if step.op is None and step.name is None:
            lines.append(f'  n{i} [label="{_number(step.const)}", shape=plaintext];')
            continue
        r = by_step.get(i)
        title = step.name or step.op or ""
        detail = ""
        if r is not None:
            detail = f"\\nvalue {r.value_exact:.6g}\\ngrad {r.grad_engine} (exact {r.grad_exact:.6g})"
        colour = ', color="red", fontcolor="red"' if r is not None and not r.ok else ""
        lines.append(f'  n{i} [label="{title}{detail}"{colour}];')
        for a in step.args:
            lines.append(f"  n{a} -> n{i};")
    lines.append("}")
    return "\n".join(lines)
