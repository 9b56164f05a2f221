"""Debugging a failing check: the graph node by node, the culprit op, and the smallest failing case.

*Localisation* reads the engine's gradient at every node and compares it with the exact adjoint. The
first wrong node, walking back from the output, is where a backward went wrong; the ops that wrote
into it are the suspects. Each suspect is then unit-tested on its own, at the same argument values,
with an upstream gradient that is not 1, with its result accumulated alongside another use of its
input, and with one leaf in both operand slots. A suspect that fails alone has a wrong rule; one that
fails only when sharing a leaf does not accumulate (``=`` for ``+=``); when every suspect passes alone
the rules are right and the engine's traversal or accumulation is not: the culprit is ``backward``.

*Shrinking* tries every sub-expression of a failing graph on the engine and keeps the smallest that
still fails, as a ready-to-paste YAML case.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import mpmath

from gradspec.diagnose.raised import raised_culprit
from gradspec.diagnose.unit import close as _close
from gradspec.diagnose.unit import delegated as _delegated
from gradspec.diagnose.unit import exact_state as _exact_state
from gradspec.diagnose.unit import shown as _g
from gradspec.diagnose.unit import unit_culprit, writes_into
from gradspec.diagnose.unit import unit_test as _unit_test
from gradspec.engines import call
from gradspec.engines.protocol import FLOAT32_EPS, FLOAT32_MAX, FLOAT64_EPS, Engine, Outcome, float_range
from gradspec.errors import EngineError
from gradspec.graph.ir import Apply, Const, Graph, Leaf
from gradspec.graph.printer import ancestors as _ancestors
from gradspec.graph.printer import label as _label
from gradspec.graph.printer import number as _number
from gradspec.graph.printer import short as _short
from gradspec.graph.printer import subexpression, subprogram
from gradspec.ops.table import OPS
from gradspec.reference.chain import local_partials as _local_partials
from gradspec.reference.chain import mp_apply
from gradspec.reference.exact import DPS
from gradspec.results import Culprit, CulpritKind

__all__ = ["Culprit", "NodeReport", "as_yaml_case", "explain", "localise", "primary", "render_dot", "shrink",
           "subexpression", "subprogram", "unit_culprit"]

_SHRINK_LIMIT = 200  # steps; larger graphs are not shrunk


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
        rows.append(NodeReport(i, _label(graph, i), step.op if isinstance(step, Apply) else "input", ve, vx, ge, gx, ok))
    return rows, outcome


_RERUNS = 3  # runs of a graph that the check found wrong, before the localiser gives up finding a wrong node


def localise(graph: Graph, point: Mapping[str, Fraction], engine: Engine) -> Culprit | None:
    """Name the op (or ``backward``) that makes ``engine`` wrong on ``graph`` at ``point``.

    An engine whose backward order comes from a ``set`` may add up its gradients right in one run and
    wrong in the next: where a run shows no wrong node, the graph is run again, a few times."""
    values, adj = _exact_state(graph, point)
    for _ in range(_RERUNS):
        found, wrong = _localise_run(graph, point, engine, values, adj)
        if found is not None or wrong:
            return found
    return _sweep(graph, values, engine)


def _sweep(graph: Graph, values: list[Any], engine: Engine) -> Culprit | None:
    """Every op of the graph tested alone at its operands, when no rerun of the graph showed a wrong
    node: the first that fails is the culprit (an ``=`` for ``+=`` that only loses a contribution in
    some of the orders a ``set`` of nodes gives)."""
    tested: set[tuple[str, tuple[bool, ...]]] = set()
    for i, step in enumerate(graph.steps):
        if not isinstance(step, Apply) or not graph.varying[i]:
            continue
        args = [(float(values[a]), graph.varying[a]) for a in step.args]
        key = (step.op, tuple(v for _, v in args))
        if key in tested:
            continue
        tested.add(key)
        found = unit_culprit(step.op, args, engine, f"{step.op} at `{_label(graph, i)}`")
        if found is not None:
            return replace(found, message=f"{found.message}; found by testing each op alone, since reruns of the "
                                          "whole graph came out right (its result changes from run to run)")
    return None


def _localise_run(graph: Graph, point: Mapping[str, Fraction], engine: Engine, values: list[Any],
                  adj: list[Any]) -> tuple[Culprit | None, bool]:
    """One run of the localiser: the culprit, and whether this run showed a wrong node at all."""
    floats = {k: float(v) for k, v in point.items()}
    called = call.run(engine, graph, floats, every_node=True, representable=False)
    if called.verdict is not None:  # the check reports the failure; where it raised may name the culprit
        return (raised_culprit(graph, called.error) if called.raised and called.error is not None else None), True
    outcome = called.get()
    written = _written_input(graph, outcome, floats, engine)
    if written is not None:
        return written, True
    forward_bug = _first_wrong_value(graph, outcome, values, engine)
    if forward_bug is not None and not _minor(forward_bug):
        return forward_bug, True
    # a value off in its last digits (a tanh of exponentials) is named only where no backward rule is wrong
    grads = outcome.node_grads
    for j in range(len(graph.steps) - 1, -1, -1):
        if j not in grads or j == graph.output or grads[j] is None:  # None: not reported, so not judged
            continue
        if _close(grads[j], float(adj[j])):
            continue
        if any(grads[i] is None for i, s in enumerate(graph.steps) if j in s.args and i in grads):
            return forward_bug, True  # what its consumers passed down is not reported: nothing says which erred
        return _blame(graph, j, values, adj, grads, engine), True
    return forward_bug, forward_bug is not None


def _written_input(graph: Graph, outcome: Outcome, floats: Mapping[str, float], engine: Engine) -> Culprit | None:
    """An input whose node holds another number after the run than it was given: an op wrote into it (a
    Value class's ``__abs__`` that sets ``self.data``), and every op after it read the new number. The op
    is the consumer that writes into its input when run alone."""
    single = getattr(engine, "eps", FLOAT64_EPS) >= FLOAT32_EPS  # a float32 engine holds its input rounded
    for i, step in enumerate(graph.steps):
        held = outcome.node_values.get(i)
        if not isinstance(step, Leaf) or held is None or math.isnan(held):
            continue
        given = floats[step.name]
        if held == (struct.unpack("f", struct.pack("f", given))[0] if single and abs(given) < FLOAT32_MAX else given):
            continue
        # named only where a consumer does it again alone: an engine that holds an input another way (a
        # flushed subnormal, say) is localised as before
        for j, user in enumerate(graph.steps):
            if isinstance(user, Apply) and i in user.args and writes_into(user.op, given, engine):
                return Culprit(user.op, CulpritKind.FORWARD, _label(graph, j), exact=given, engine=held, message=(
                    f"{user.op} at `{_label(graph, j)}` writes into its input: {step.name} holds {held!r} after "
                    f"it runs, given {given!r}, and every op that reads {step.name} after it reads {held!r}"))
    return None


_MINOR = 1e-7  # a wrong value within this relative error (7 digits right) gives way to a wrong backward rule


def _minor(culprit: Culprit) -> bool:
    """Whether a wrong value keeps all but its last digits: too close to explain a failure on its own."""
    e, x = culprit.engine, culprit.exact
    return e is not None and x is not None and math.isfinite(e) and x != 0 and math.isfinite(x) \
        and abs(e - x) <= _MINOR * abs(x)


def primary(found: Culprit | None, unstable: Culprit | None) -> Culprit | None:
    """The culprit to report when two runs of a check disagreed (``unstable``) and the localiser ran on it.

    An op whose rule or value is wrong on its own is the bug, and often the very reason two runs
    differ: an ``=`` for ``+=`` loses a different contribution in each order a ``set`` of nodes gives.
    It is named first, with the disagreement beside it; without such an op, the nondeterminism is the
    culprit."""
    if unstable is None:
        return found
    if found is None or found.kind not in (CulpritKind.RULE, CulpritKind.ACCUMULATION, CulpritKind.FORWARD):
        return unstable
    differ = unstable.message.split(" (an order")[0].removeprefix("the engine is not deterministic: ")
    return replace(found, message=f"{found.message}; {differ}, as a wrong rule does in a backward whose order "
                                  "changes from run to run")


def _first_wrong_value(graph: Graph, outcome: Outcome, values: list[Any], engine: Engine) -> Culprit | None:
    """The first op whose value is wrong given the engine's own operand values: what the op makes of
    exactly those floats, against what the engine made of them, within a few ulps of the op's rounding.

    Judged op by op rather than against the exact value of the whole graph, so rounding carried in from
    earlier ops (``x - 0.3`` near 0.3) is not blamed on a later one, and a tiny value computed with no
    digits to spare (tanh(1e-12) as a difference of exponentials) is, however small its absolute error.
    An op whose exact value on those floats is beyond the engine's float range is named as overflowing."""
    eps = getattr(engine, "eps", FLOAT64_EPS)
    for i, step in enumerate(graph.steps):
        if not isinstance(step, Apply) or outcome.node_values.get(i) is None:
            continue
        ve = outcome.node_values[i]
        operands = [_operand(graph, a, outcome, values) for a in step.args]
        try:
            with mpmath.workdps(DPS):
                exact = mp_apply(step.op, [mpmath.mpf(x) for x in operands])
                local = float(exact)
        except (ValueError, ZeroDivisionError, ArithmeticError, TypeError):
            continue  # outside the op's domain at the engine's operands: the value check says so
        if mpmath.isfinite(exact) and not abs(local) < float_range(engine):
            shown = ", ".join(f"{x!r}" for x in operands)
            return Culprit(step.op, CulpritKind.FORWARD, _label(graph, i), exact=local, engine=ve,
                           message=f"{step.op} at `{_label(graph, i)}` overflows: on the engine's operands ({shown}) its "
                                   f"exact value is {mpmath.nstr(exact, 4)}, beyond the engine's float range, so the "
                                   f"engine gives {ve!r}; the expression as written cannot be computed in its floats here")
        if not math.isfinite(local) or not math.isfinite(ve):
            if ve == local or (math.isnan(ve) and math.isnan(local)) or not math.isfinite(local):
                continue
        elif abs(ve - local) <= _VALUE_ULPS * max(OPS[step.op].ulps, 1.0) * eps * abs(local) or ve == local:
            continue
        vx = float(values[i])
        shown = ", ".join(f"{x!r}" for x in operands)
        return Culprit(step.op, CulpritKind.FORWARD, _label(graph, i), exact=vx, engine=ve,
                       message=f"{step.op} at `{_label(graph, i)}` computes the wrong value: on the engine's own "
                               f"operands ({shown}) it is {local!r}, the engine gives {ve!r} "
                               f"({_digits(ve, local)} of 16 digits right)")
    return None


_VALUE_ULPS = 16  # how far, in the op's own rounding budget, an op's value may be from exact on its operands


def _operand(graph: Graph, a: int, outcome: Outcome, values: list[Any]) -> float:
    """The float the engine held for node ``a``: its own value, a constant as written, a leaf as given."""
    step = graph.steps[a]
    if isinstance(step, Const):
        return float(step.value)
    got = outcome.node_values.get(a)
    return got if got is not None else float(values[a])


def _digits(engine: float, exact: float) -> int:
    if engine == exact:
        return 16
    if exact == 0 or not math.isfinite(engine - exact):
        return 0
    return max(0, min(16, int(-math.log10(abs(engine - exact) / abs(exact)))))


def _op(graph: Graph, i: int) -> str:
    step = graph.steps[i]
    assert isinstance(step, Apply), "only an op step has consumers' rules to blame"
    return step.op


def _side(op: str, k: int) -> str:
    return ("left", "right")[k] if OPS[op].arity == 2 else "input"


def _blame(graph: Graph, j: int, values: list[Any], adj: list[Any], grads: Mapping[int, float | None],
           engine: Engine) -> Culprit:
    """Node ``j`` is the first wrong one from the output: find which consumer's rule, or the traversal."""
    consumers = [(i, k) for i, s in enumerate(graph.steps) for k, a in enumerate(s.args) if a == j and i in grads]
    expected = 0.0
    with mpmath.workdps(DPS):
        for i, k in consumers:
            args = [values[a] for a in graph.steps[i].args]
            expected += (grads[i] or 0.0) * float(_local_partials(_op(graph, i))[k](args))
    got = grads[j]
    node = _short(graph, j)
    for named in dict.fromkeys(_op(graph, i) for i, _ in consumers):
        i, k = next((i, k) for i, k in consumers if _op(graph, i) == named)
        args = [(float(values[a]), graph.varying[a]) for a in graph.steps[i].args]
        verdict = _unit_test(named, args, engine)
        if verdict is None:
            continue
        op_name, verdict = _delegated(named, args, verdict, engine)
        where = f"{op_name} at `{_label(graph, i)}`" if op_name == named else \
            f"{op_name} (which {named} at `{_label(graph, i)}` calls)"
        if verdict == "rule":
            single = len(consumers) == 1
            exact_passed = expected if single else None
            detail = (f"d/d({_side(op_name, k)}) exact {expected:.10g}, engine passed {got:.10g}" if single and got is not None
                      else f"its backward rule is wrong in isolation (d/d{node} exact {expected:.10g}, engine {got})")
            return Culprit(op_name, CulpritKind.RULE, node, _side(op_name, k), exact_passed, got, f"{where}: {detail}")
        if verdict == "accumulation":
            return Culprit(op_name, CulpritKind.ACCUMULATION, node, _side(op_name, k), expected, got,
                           f"{where}: overwrites the gradient of its input instead of adding to it (= for +=): "
                           f"alone it is right, beside another use of its input the other contribution is lost; "
                           f"d/d{node} exact {expected:.10g}, engine {got}")
        assert isinstance(verdict, tuple)
        shared, exact_shared, engine_shared = verdict
        return Culprit(op_name, CulpritKind.ACCUMULATION, node, "both", expected, got,
                       f"{where}: with one node in both operand slots ({shared}), it gives d/da = {_g(engine_shared)}"
                       f" where the exact value is {exact_shared:.10g}: the two slots' contributions are not both "
                       "counted (alone, and beside another use of its input, it is right); "
                       f"d/d{node} exact {expected:.10g}, engine {got}")
    if got is not None and _close(got, expected, atol=0.0):
        # The node holds exactly what its consumers passed down, and each consumer's rule is right alone:
        # a consumer's own gradient was already wrong, by less than the walk's absolute tolerance (a tiny
        # gradient off by half of itself). Follow it up rather than blame the traversal.
        for i, _ in sorted(consumers, reverse=True):
            if i != graph.output and grads[i] is not None and not _close(grads[i], float(adj[i]), atol=0.0):
                return _blame(graph, i, values, adj, grads, engine)
    return Culprit("backward", CulpritKind.TRAVERSAL, node, "", expected, got,
                   f"every op's backward rule is right in isolation, yet d/d{node} is {got} where the ops above it "
                   f"pass {expected:.10g}: the engine ran a backward before all of its gradient arrived, or dropped "
                   "an accumulation")


def shrink(graph: Graph, point: Mapping[str, Fraction], engine: Engine, still_fails: Any) -> tuple[str, dict[str, Fraction]] | None:
    """The smallest sub-expression of ``graph`` that still fails on ``engine``, with its point.

    ``still_fails(text, point)`` decides whether a candidate fails (the caller's own check).
    """
    if len(graph.steps) > _SHRINK_LIMIT:
        return None
    candidates = []
    for i, step in enumerate(graph.steps):
        if not isinstance(step, Apply) or not graph.varying[i]:
            continue
        text = subprogram(graph, i)
        used = {s.name for s in (graph.steps[a] for a in _ancestors(graph, i)) if isinstance(s, Leaf)}
        candidates.append((_size(graph, i), text, {n: v for n, v in point.items() if n in used}))
    for _, text, sub_point in sorted(candidates, key=lambda c: (c[0], c[1])):
        if still_fails(text, sub_point):
            return text, sub_point
    return None


def _size(graph: Graph, index: int) -> int:
    return sum(1 for i in _ancestors(graph, index) if isinstance(graph.steps[i], Apply))


def as_yaml_case(case_id: str, text: str, point: Mapping[str, Fraction], note: str) -> str:
    """A ready-to-paste case for a case file's ``cases:`` list."""
    at = ", ".join(f"{k}: {_number(v)}" for k, v in point.items())
    return f"- id: {case_id}\n  description: {json.dumps(note)}\n  expr: {json.dumps(text)}\n  at: {{{at}}}\n"


def render_dot(graph: Graph, rows: list[NodeReport]) -> str:
    """The graph as Graphviz DOT, each node with its value and gradients, wrong ones in red."""
    by_step = {r.step: r for r in rows}
    lines = ["digraph gradspec {", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];']
    for i, step in enumerate(graph.steps):
        if isinstance(step, Const):
            lines.append(f'  n{i} [label="{_number(step.value)}", shape=plaintext];')
            continue
        r = by_step.get(i)
        title = step.name if isinstance(step, Leaf) else step.op
        detail = ""
        if r is not None:
            detail = f"\\nvalue {r.value_exact:.6g}\\ngrad {r.grad_engine} (exact {r.grad_exact:.6g})"
        colour = ', color="red", fontcolor="red"' if r is not None and not r.ok else ""
        lines.append(f'  n{i} [label="{title}{detail}"{colour}];')
        for a in step.args:
            lines.append(f"  n{a} -> n{i};")
    lines.append("}")
    return "\n".join(lines)


def shrink_input(point: Mapping[str, Fraction], bounds: Mapping[str, Any], still_fails: Any) -> dict[str, Fraction]:
    """A simpler failing input, Hypothesis-style: each variable in turn moves to the simplest value it
    can take (0, then integers, then fewer decimals, then halfway towards those) while the check still
    fails and the value stays inside its sampled domain. Deterministic: no randomness at all."""
    current = dict(point)
    for name in current:
        allows = bounds[name].allows if name in bounds else (lambda v: True)
        for _ in range(60):  # each accepted step makes the value strictly simpler
            better = next((c for c in _simpler(current[name]) if allows(float(c))
                           and still_fails({**current, name: c})), None)
            if better is None:
                break
            current[name] = better
    return current


def _simpler(v: Fraction) -> list[Fraction]:
    """Candidates simpler than ``v``, simplest first."""
    sign = 1 if v >= 0 else -1
    out = [Fraction(0), *(Fraction(sign * k) for k in range(1, min(abs(round(v)), 20))), Fraction(round(v))]
    out += [Fraction(round(float(v), k)).limit_denominator(10**k) for k in range(0, 6)]
    out += [v / 2, Fraction(round(v)) + (v - round(v)) / 2]
    seen = []
    for c in out:
        if c != v and c not in seen and _complexity(c) < _complexity(v):
            seen.append(c)
    return seen


def _complexity(v: Fraction) -> tuple[int, float]:
    """Fewer decimals first, then nearer 0."""
    decimals = next((k for k in range(21) if (v * 10**k).denominator == 1), 99)
    return (decimals, abs(float(v)))
