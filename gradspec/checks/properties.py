"""Property cases (linearity, chain-rule): the engine against itself, beside the exact check.

A linearity case builds ``a*f + b*g`` and compares the engine's gradient with ``a*grad f + b*grad g``
from the same engine; a chain-rule case builds ``outer(inner)`` and compares its gradient with
``outer'(inner) * inner'``. Both sides carry the engine's rounding, allowed as for exact checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from gradspec.casefile.model import Case, ChainRule, Linearity, Point, Reader
from gradspec.checks import expression
from gradspec.engines import call
from gradspec.engines.protocol import Engine, Outcome
from gradspec.graph.ir import Graph
from gradspec.lang.expr import parse
from gradspec.reference.numerical import relative_error
from gradspec.reference.store import reference
from gradspec.results import CheckResult, Quantity, Role, Verdict

__all__ = ["load_chain_rule", "load_linearity", "run_chain_rule", "run_linearity"]


def load_linearity(reader: Reader, names: list[str]) -> tuple[Graph, Linearity]:
    """``a*f + b*g`` for the engine, and ``f`` and ``g`` alone for the property."""
    f, g = reader.single("f"), reader.single("g")
    for key, prog in (("f", f), ("g", g)):
        for coef in ("a", "b"):
            if coef in prog.inputs:
                raise reader.fail(f"{key} uses {coef!r}, which names a linearity coefficient", key)
    for coef in ("a", "b"):
        if coef not in names:
            raise reader.fail(f"a linearity case needs the coefficient {coef!r} among its inputs",
                              "sample" if "sample" in reader.raw else "at")
    fun = [n for n in names if n not in ("a", "b")]
    h = parse(f"a*({f.source}) + b*({g.source})")
    return reader.layout("f", h, names), Linearity(reader.layout("f", f, fun), reader.layout("g", g, fun))


def load_chain_rule(reader: Reader, names: list[str]) -> tuple[Graph, ChainRule]:
    """``outer(inner)`` for the engine, with the inner function's value named ``via``."""
    via = reader.raw.get("via", "u")
    inner, outer = reader.single("inner"), reader.single("outer")
    stray = [n for n in outer.inputs if n != via]
    if stray:
        raise reader.fail(f"outer may only use {via!r} (the inner function's value), not {stray[0]!r}", "outer")
    if via in names:
        raise reader.fail(f"{via!r} names the inner function's value; it cannot also be an input", "via")
    composed = parse(f"{via} = {inner.source}\n{outer.source}")
    return reader.layout("outer", composed, names), ChainRule(reader.layout("inner", inner, names), via)


def run_linearity(case: Case, point: Point | None, engine: Engine) -> CheckResult:
    assert isinstance(case.spec, Linearity) and point is not None
    spec = case.spec
    return expression.run(case, point, engine, lambda outcome: _linearity(case, spec, point, engine, outcome))


def run_chain_rule(case: Case, point: Point | None, engine: Engine) -> CheckResult:
    assert isinstance(case.spec, ChainRule) and point is not None
    spec = case.spec
    return expression.run(case, point, engine, lambda outcome: _chain_rule(case, spec, point, engine, outcome))


def _property(name: str, engine_value: float | None, reference: float, case: Case, note: str,
              rounding: Callable[[], float]) -> Quantity:
    """The engine against itself: both sides carry the engine's rounding, allowed as for exact checks."""
    if engine_value is None:
        return Quantity(name, Role.PROPERTY, None, None, reference, None, None, None, Verdict.SKIP, note=note)
    err = abs(engine_value - reference) if math.isfinite(engine_value) and math.isfinite(reference) else math.inf
    bound = case.tolerance.bound(reference)
    if bound < err < math.inf:
        bound += rounding()
    return Quantity(name, Role.PROPERTY, engine_value, reference, None, err, relative_error(engine_value, reference), bound,
                    Verdict.PASS if err <= bound else Verdict.FAIL, note=note)


def _scale(engine: Engine, graph: Graph, point: Point, name: str) -> float:
    """The rounding allowance of one quantity on ``engine`` (see :meth:`gradspec.reference.store.Reference.rounding`)."""
    return reference(graph, point.exact()).rounding(engine.eps)[name]


def _linearity(case: Case, spec: Linearity, point: Point, engine: Engine, h: Outcome) -> tuple[list[Quantity], str]:
    a, b = float(point.exact()["a"]), float(point.exact()["b"])
    fun_point = Point(tuple((n, v) for n, v in point.values if n not in ("a", "b")), point.line)
    runs = [call.run(engine, g, fun_point.floats()) for g in (spec.f, spec.g)]
    if any(r.verdict is not None for r in runs):
        problem = next(r.message for r in runs if r.verdict is not None)
        return [Quantity("linearity", Role.PROPERTY, None, None, None, None, None, None, Verdict.FAIL, note=problem)], problem
    f_out, g_out = (r.get() for r in runs)
    out = []
    for name, _ in spec.f.inputs:
        gf, gg, gh = f_out.grads.get(name), g_out.grads.get(name), h.grads.get(name)
        if gf is None or gg is None:
            continue
        def rounding(name: str = name) -> float:
            assert case.graph is not None
            return (_scale(engine, case.graph, point, name) + abs(a) * _scale(engine, spec.f, fun_point, name)
                    + abs(b) * _scale(engine, spec.g, fun_point, name))

        out.append(_property(f"linearity d/d{name}", gh, a * gf + b * gg, case,
                             "engine's grad(a*f + b*g) against a*grad f + b*grad g from the same engine", rounding))
    return out, ""


def _chain_rule(case: Case, spec: ChainRule, point: Point, engine: Engine, composed: Outcome) -> tuple[list[Quantity], str]:
    called = call.run(engine, spec.inner, point.floats())
    if called.verdict is not None:
        return [Quantity("chain rule", Role.PROPERTY, None, None, None, None, None, None, Verdict.FAIL, note=called.message)], called.message
    inner = called.get()
    outer_grad = composed.grads.get(spec.via)
    out = []
    for name, _ in spec.inner.inputs:
        inner_grad = inner.grads.get(name)
        if outer_grad is None or inner_grad is None:
            continue
        def rounding(name: str = name, inner_grad: float = inner_grad, outer_grad: float = outer_grad) -> float:
            assert case.graph is not None
            return (_scale(engine, case.graph, point, name) + abs(inner_grad) * _scale(engine, case.graph, point, spec.via)
                    + abs(outer_grad) * _scale(engine, spec.inner, point, name))

        out.append(_property(f"chain rule d/d{name}", composed.grads.get(name), outer_grad * inner_grad, case,
                             f"engine's d outer(inner)/d{name} against outer'(inner) * inner' from the same engine",
                             rounding))
    return out, ""
