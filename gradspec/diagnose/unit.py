"""Testing one op alone: the little graphs that tell a wrong rule from a lost accumulation.

Each suspect op is run on its own at given argument values: alone, under an upstream gradient that is
not 1, beside another use of its input (``+ a + b``), and with one node in both operand slots. An op
whose code calls other ops (micrograd's ``x - y`` is ``x + (-y)``) is followed into them
(:mod:`gradspec.engines.delegation`), so the culprit is the op the bug is in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import mpmath

from gradspec.engines import call
from gradspec.engines.protocol import Engine
from gradspec.errors import DomainError, GradspecError
from gradspec.graph.ir import Graph, GraphBuilder
from gradspec.lang.expr import Name, Program
from gradspec.ops.table import OPS
from gradspec.reference.chain import adjoints, forward
from gradspec.reference.exact import DPS
from gradspec.reference.store import reference
from gradspec.results import Culprit, CulpritKind

__all__ = ["close", "delegated", "exact_state", "shown", "unit_culprit", "unit_test", "writes_into"]

_UPSTREAM = 1.75  # an upstream gradient that is not 1, so a missing chain factor shows
_OWN_ROUNDING = 8  # times the rounding bound: how far one op's gradient may be from exact before its rule is blamed


def exact_state(graph: Graph, point: Mapping[str, Fraction]) -> tuple[list[Any], list[Any]]:
    with mpmath.workdps(DPS):
        env = {n: mpmath.mpf(v.numerator) / v.denominator for n, v in point.items()}
        values, _ = forward(graph, env)
        return values, adjoints(graph, values)


def close(engine: float | None, exact: float, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    if engine is None:
        return False
    if math.isinf(exact) or math.isnan(exact):
        return engine == exact or (math.isnan(engine) and math.isnan(exact))
    return abs(engine - exact) <= atol + rtol * abs(exact)


def shown(x: float | None) -> str:
    return "nothing" if x is None else f"{x:.10g}"


_Finding = str | tuple[str, float, float | None]  # what _unit_test found


def unit_culprit(name: str, args: list[tuple[float, bool]], engine: Engine, where: str) -> Culprit | None:
    """Op ``name`` tested alone at its argument values (value, varying), or the op it delegates to; the
    culprit when one fails, named ``where`` ("mul inside matmul at column 12"), else None."""
    found = unit_test(name, args, engine)
    if found is None:
        return None
    culprit, found = delegated(name, args, found, engine)
    if culprit != name:
        where = f"{culprit} (which {where} calls)"
    at = ", ".join(f"{v:g}" for v, _ in args)
    if found == "rule":
        return Culprit(culprit, CulpritKind.RULE, where, message=f"{where}: its backward rule is wrong in isolation "
                                                                   f"at ({at})")
    if found == "accumulation":
        return Culprit(culprit, CulpritKind.ACCUMULATION, where, message=(
            f"{where}: overwrites the gradient of its input instead of adding to it (= for +=): alone it is "
            f"right, beside another use of its input (at {at}) the other contribution is lost"))
    assert isinstance(found, tuple)
    shared, exact_shared, engine_shared = found
    return Culprit(culprit, CulpritKind.ACCUMULATION, where, "both", message=(
        f"{where}: with one node in both operand slots ({shared}), it gives d/da = {shown(engine_shared)} where the "
        f"exact value is {exact_shared:.10g}: the two slots' contributions are not both counted"))


def delegated(name: str, args: list[tuple[float, bool]], verdict: _Finding, engine: Engine) -> tuple[str, _Finding]:
    """The op a failing op's bug is in: ``name`` itself, or an op it runs (``x - y`` spelt ``x + (-y)``)
    that fails alone at the same argument values, followed down as far as it goes."""
    seen = {name}
    found = True
    while found:
        found = False
        for other in getattr(engine, "delegates", lambda op: ())(name):
            if other in seen:
                continue
            seen.add(other)
            arity = OPS[other].arity
            other_args = (args * 2)[:arity] if arity > len(args) else args[:arity]
            result = unit_test(other, other_args, engine, ran=True)
            if result is not None:
                name, verdict, found = other, result, True
                break
    return name, verdict


def unit_test(name: str, args: list[tuple[float, bool]], engine: Engine, *, ran: bool = False) -> _Finding | None:
    """Test op ``name`` alone at its argument values (value, varying): "rule" when it fails alone,
    "accumulation" when it fails beside another use of its input, and (the graph, exact, engine d/da) when
    it fails only with one node in both operand slots; None when it passes every test. With ``ran``, a
    test the engine cannot even run (a ``**`` that refuses a Value exponent) is no failure. An argument
    beyond the float range (an intermediate whose exact value overflows) gives no test: None."""
    if not all(math.isfinite(v) for v, _ in args):
        return None
    op = OPS[name]
    # An engine whose Values refuse Python numbers (no __rmul__, no wrapping) is tested without them.
    upstream = _UPSTREAM if _takes_numbers(engine) else None
    for scale in dict.fromkeys((None, upstream)):  # alone, then under an upstream gradient that is not 1
        if _fails(_mini(op.name, args, accumulate=False, shared=False, upstream=scale), engine, ran=ran):
            return "rule"
    if _fails(_mini(op.name, args, accumulate=True, shared=False, upstream=upstream), engine, ran=ran):
        return "accumulation"
    if op.arity == 2 and all(v for _, v in args):
        graph_shared, point = _mini(op.name, args, accumulate=False, shared=True)
        if _fails((graph_shared, point), engine, ran=ran):
            _, adj = exact_state(graph_shared, point)
            called = call.run(engine, graph_shared, {k: float(v) for k, v in point.items()}, representable=False)
            got = called.get().grads.get("a") if called.ok else None
            text = f"{op.symbol or op.name}".join(["a ", " a"]) if op.symbol else f"{op.name}(a, a)"
            return (f"1.75 * ({text}) at a = {args[0][0]:g}", float(adj[graph_shared.inputs[0][1]]), got)
    return None


def _takes_numbers(engine: Engine) -> bool:
    """Whether the engine multiplies one of its values by a Python number (``a * 1.75``); asked once per
    engine of a process."""
    known = _TAKES_NUMBERS.get(engine.name)
    if known is None:
        b = GraphBuilder()
        out = b.apply("mul", (b.leaf("a"), b.const(Fraction(7, 4))))
        graph = b.graph(Program("unit test of a constant", (), Name("out"), ("a",)), out)
        known = _TAKES_NUMBERS[engine.name] = call.run(engine, graph, {"a": 0.5}, representable=False).verdict is None
    return known


_TAKES_NUMBERS: dict[str, bool] = {}


def writes_into(op: str, value: float, engine: Engine) -> bool:
    """Whether ``op`` alone, on an input holding ``value`` (both operands, for a binary op), changes it."""
    b = GraphBuilder()
    a = b.leaf("a")
    out = b.apply(op, (a,) * OPS[op].arity)
    graph = b.graph(Program(f"unit test of {op}", (), Name("out"), ("a",)), out)
    called = call.run(engine, graph, {"a": value}, every_node=True, representable=False)
    return called.verdict is None and called.get().node_values.get(0, value) != value


def _mini(op: str, args: list[tuple[float, bool]], *, accumulate: bool, shared: bool,
          upstream: float | None = _UPSTREAM) -> tuple[Graph, dict[str, Fraction]]:
    """``1.75 * op(a, b)`` (optionally ``+ a + b``, or ``op(a, a)``; ``op(a, b)`` alone without
    ``upstream``) as a graph with its point."""
    b = GraphBuilder()
    point: dict[str, Fraction] = {}
    operands: list[int] = []
    for k, (value, is_input) in enumerate(args):
        if is_input and not (shared and k == 1):
            name = "ab"[k] if len(args) == 2 else "a"
            point[name] = Fraction(value)
            operands.append(b.leaf(name))
        elif is_input:
            operands.append(operands[0])
        else:
            operands.append(b.const(Fraction(value)))
    out = b.apply(op, operands)
    if upstream is not None:
        out = b.apply("mul", (out, b.const(Fraction(upstream))))
    if accumulate:
        for k in dict.fromkeys(o for o, (_, v) in zip(operands, args, strict=True) if v):
            out = b.apply("add", (out, k))
    program = Program(f"unit test of {op}", (), Name("out"), tuple(point))
    return b.graph(program, out), point


def _fails(mini: tuple[Graph, dict[str, Fraction]], engine: Engine, *, ran: bool = False) -> bool:
    """Whether the op's little graph fails on the engine, twice in a row: a failure that does not repeat
    is the engine's run-to-run order (a traversal that changes between runs), not the op's rule."""
    return _fails_once(mini, engine, ran=ran) and _fails_once(mini, engine, ran=ran)


def _fails_once(mini: tuple[Graph, dict[str, Fraction]], engine: Engine, *, ran: bool = False) -> bool:
    graph, point = mini
    called = call.run(engine, graph, {k: float(v) for k, v in point.items()}, representable=False)
    if called.verdict is not None:  # the op alone cannot even be run: it is the culprit (unless it must run)
        return not ran
    outcome = called.get()
    try:
        _, adj = exact_state(graph, point)
    except DomainError:  # the test's own point is outside the op's domain (a / a at a = 0): it proves nothing
        return False
    except Exception:
        return not ran
    # One op's gradient on its own is as precise as the op: only what rounding can do to it (the judge's own
    # first-order bound, with room to spare), never the 1e-9 that a whole graph's walk allows, may separate it
    # from exact (a tiny derivative off by half of itself is a wrong rule; a/a's two cancelling slots are not).
    eps = getattr(engine, "eps", 2.0**-52)
    try:
        allowed = reference(graph, point).rounding(eps)
    except GradspecError:
        allowed = {}
    return any(not close(outcome.grads.get(name), float(adj[i]), atol=_OWN_ROUNDING * (eps + allowed.get(name, 0.0)))
               for name, i in graph.inputs)
