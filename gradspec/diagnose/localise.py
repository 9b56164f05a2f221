"""Localisation: the op (or ``backward``) that makes an engine wrong, found node by node and confirmed
by unit-testing each suspect op alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import mpmath

from gradspec.checks.results import Culprit, CulpritKind
from gradspec.diagnose.text import _label, _short
from gradspec.engines import call
from gradspec.engines.protocol import Engine, Outcome
from gradspec.graph.ir import Graph, Step
from gradspec.lang.expr import Name, Program
from gradspec.ops.table import OPS
from gradspec.reference.exact import DPS, _local_partials, adjoints, forward

__all__ = ["localise"]

_UPSTREAM = 1.75  # an upstream gradient that is not 1, so a missing chain factor shows


def _exact_state(graph: Graph, point: Mapping[str, Fraction]) -> tuple[list[Any], list[Any]]:
    with mpmath.workdps(DPS):
        env = {n: mpmath.mpf(v.numerator) / v.denominator for n, v in point.items()}
        values, _ = forward(graph, env)
        return values, adjoints(graph, values)


def _close(engine: float | None, exact: float, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    if engine is None:
        return False
    if math.isinf(exact) or math.isnan(exact):
        return engine == exact or (math.isnan(engine) and math.isnan(exact))
    return abs(engine - exact) <= atol + rtol * abs(exact)


def localise(graph: Graph, point: Mapping[str, Fraction], engine: Engine) -> Culprit | None:
    """Name the op (or ``backward``) that makes ``engine`` wrong on ``graph`` at ``point``."""
    floats = {k: float(v) for k, v in point.items()}
    called = call.run(engine, graph, floats, every_node=True, representable=False)
    if called.verdict is not None:  # the engine failing to run is reported by the check itself
        return None
    outcome = called.get()
    values, adj = _exact_state(graph, point)
    forward_bug = _first_wrong_value(graph, outcome, values)
    if forward_bug is not None:
        return forward_bug
    grads = outcome.node_grads
    for j in range(len(graph.steps) - 1, -1, -1):
        if j not in grads or j == graph.output:
            continue
        if _close(grads[j], float(adj[j])):
            continue
        return _blame(graph, j, values, grads, engine)
    return None


def _first_wrong_value(graph: Graph, outcome: Outcome, values: list[Any]) -> Culprit | None:
    for i, step in enumerate(graph.steps):
        if step.op is None or i not in outcome.node_values:
            continue
        ve, vx = outcome.node_values[i], float(values[i])
        if not _close(ve, vx):
            return Culprit(step.op, CulpritKind.FORWARD, _label(graph, i), exact=vx, engine=ve,
                           message=f"{step.op} at `{_label(graph, i)}` computes the wrong value: exact {vx:.10g}, "
                                   f"engine {ve:.10g}")
    return None


def _side(op: str, k: int) -> str:
    return ("left", "right")[k] if OPS[op].arity == 2 else "input"


def _blame(graph: Graph, j: int, values: list[Any], grads: Mapping[int, float | None], engine: Engine) -> Culprit:
    """Node ``j`` is the first wrong one from the output: find which consumer's rule, or the traversal."""
    consumers = [(i, k) for i, s in enumerate(graph.steps) for k, a in enumerate(s.args) if a == j and i in grads]
    expected = 0.0
    with mpmath.workdps(DPS):
        for i, k in consumers:
            args = [values[a] for a in graph.steps[i].args]
            expected += (grads[i] or 0.0) * float(_local_partials(graph.steps[i].op or "")[k](args))  # type: ignore[arg-type]
    got = grads[j]
    node = _short(graph, j)
    for op_name in dict.fromkeys(graph.steps[i].op or "" for i, _ in consumers):
        i, k = next((i, k) for i, k in consumers if graph.steps[i].op == op_name)
        verdict = _unit_test(graph, i, values, engine)
        if verdict is None:
            continue
        where = f"{op_name} at `{_label(graph, i)}`"
        if verdict == "rule":
            single = len(consumers) == 1
            exact_passed = expected if single else None
            detail = (f"d/d({_side(op_name, k)}) exact {expected:.10g}, engine passed {got:.10g}" if single and got is not None
                      else f"its backward rule is wrong in isolation (d/d{node} exact {expected:.10g}, engine {got})")
            return Culprit(op_name, CulpritKind.RULE, node, _side(op_name, k), exact_passed, got, f"{where}: {detail}")
        return Culprit(op_name, CulpritKind.ACCUMULATION, node, _side(op_name, k), expected, got,
                       f"{where}: overwrites the gradient of its input instead of adding to it (= for +=); "
                       f"d/d{node} exact {expected:.10g}, engine {got}")
    return Culprit("backward", CulpritKind.TRAVERSAL, node, "", expected, got,
                   f"every op's backward rule is right in isolation, yet d/d{node} is {got} where the ops above it "
                   f"pass {expected:.10g}: the engine ran a backward before all of its gradient arrived, or dropped "
                   "an accumulation")


def _unit_test(graph: Graph, i: int, values: list[Any], engine: Engine) -> str | None:
    """Test op ``i`` alone at its argument values: "rule" or "accumulation" when it fails, else None."""
    step = graph.steps[i]
    op = OPS[step.op or ""]
    args = [(float(values[a]), graph.varying[a]) for a in step.args]
    for upstream in (None, _UPSTREAM):  # alone, then under an upstream gradient that is not 1
        if _fails(_mini(op.name, args, accumulate=False, shared=False, upstream=upstream), engine):
            return "rule"
    if _fails(_mini(op.name, args, accumulate=True, shared=False), engine):
        return "accumulation"
    if op.arity == 2 and all(v for _, v in args) and _fails(_mini(op.name, args, accumulate=False, shared=True), engine):
        return "accumulation"
    return None


def _mini(op: str, args: list[tuple[float, bool]], *, accumulate: bool, shared: bool,
          upstream: float | None = _UPSTREAM) -> tuple[Graph, dict[str, Fraction]]:
    """``1.75 * op(a, b)`` (optionally ``+ a + b``, or ``op(a, a)``; ``op(a, b)`` alone without
    ``upstream``) as a graph with its point."""
    steps: list[Step] = []
    point: dict[str, Fraction] = {}
    operands: list[int] = []
    for k, (value, is_input) in enumerate(args):
        if is_input and not (shared and k == 1):
            name = "ab"[k] if len(args) == 2 else "a"
            steps.append(Step(None, name=name))
            point[name] = Fraction(value)
            operands.append(len(steps) - 1)
        elif is_input:
            operands.append(operands[0])
        else:
            steps.append(Step(None, const=Fraction(value)))
            operands.append(len(steps) - 1)
    steps.append(Step(op, tuple(operands)))
    if upstream is not None:
        steps.append(Step(None, const=Fraction(upstream)))
        steps.append(Step("mul", (len(steps) - 2, len(steps) - 1)))
    if accumulate:
        for k in dict.fromkeys(o for o, (_, v) in zip(operands, args, strict=True) if v):
            steps.append(Step("add", (len(steps) - 1, k)))
    inputs = tuple((s.name or "", i) for i, s in enumerate(steps) if s.name is not None)
    varying: list[bool] = []
    for s in steps:
        varying.append(s.name is not None or any(varying[a] for a in s.args))
    program = Program(f"unit test of {op}", (), Name("out"), tuple(n for n, _ in inputs))
    return Graph(program, tuple(steps), len(steps) - 1, inputs, (), tuple(varying)), point


def _fails(mini: tuple[Graph, dict[str, Fraction]], engine: Engine) -> bool:
    graph, point = mini
    called = call.run(engine, graph, {k: float(v) for k, v in point.items()}, representable=False)
    if called.verdict is not None:  # the op alone cannot even be run: it is the culprit
        return True
    outcome = called.get()
    try:
        _, adj = _exact_state(graph, point)
    except Exception:
        return True
    return any(not _close(outcome.grads.get(name), float(adj[i])) for name, i in graph.inputs)
