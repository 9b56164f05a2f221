"""Expression cases (gradient, stationary, deep): how they load from a case and how one point is checked.

Every kind that compares an engine's gradients of one graph with the exact ones runs through
:func:`run`: the shared check (:func:`gradspec.checks.check.check_graph`) with the case's own
declarations folded in: expected conventions at kinks, ``expect.finite``, and points the case expects
to lie outside an op's domain.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import mpmath

from gradspec.casefile.model import Case, Point, Reader
from gradspec.checks.check import check_graph
from gradspec.engines import call
from gradspec.engines.protocol import Engine, NotANumber, Outcome
from gradspec.errors import ExpressionError
from gradspec.graph.ir import Graph, unroll
from gradspec.modes import asked
from gradspec.reference.exact import Exact
from gradspec.results import CheckResult, Quantity, Verdict, worst

__all__ = ["Extra", "load_deep", "load_expr", "run", "run_gradient", "stationary", "with_modes"]

Extra = Callable[[Outcome], tuple[list[Quantity], str]]  # property quantities from the engine's outcome


def load_expr(reader: Reader, names: list[str]) -> tuple[Graph, None]:
    """``expr``, laid out over the case's inputs."""
    return reader.layout("expr", reader.parse("expr"), names), None


def load_deep(reader: Reader, names: list[str]) -> tuple[Graph, None]:
    """``init``, then ``step`` applied ``repeat`` times to the running value ``var``."""
    var = reader.raw.get("var", "z")
    init, step = reader.parse("init"), reader.parse("step")
    if var in names:
        raise reader.fail(f"{var!r} names the running value; it cannot also be an input", "var")
    for key, prog, allowed in (("init", init, set(names)), ("step", step, {*names, var})):
        stray = [n for n in prog.inputs if n not in allowed]
        if stray:
            raise reader.fail(f"{key}: undefined variable {stray[0]!r}", key)
    if var not in step.inputs:
        raise reader.fail(f"step does not use {var!r}, so nothing is composed", "step")
    try:
        return unroll(init, step, var, int(reader.raw["repeat"]), tuple(names)), None
    except ExpressionError as exc:
        raise reader.expression_error(exc, "step") from None


def stationary(case: Case, point: Point, ref: Exact) -> list[str]:
    """A stationary case's point must have a zero exact gradient."""
    return [f"point {point.label} is not stationary: d/d{name} = {mpmath.nstr(g, 12)} exactly"
            for name, g in ref.grads.items() if abs(float(g)) > case.tolerance.atol]


def run(case: Case, point: Point | None, engine: Engine, extra: Extra | None = None) -> CheckResult:
    """``case`` at ``point`` on ``engine``, with ``extra`` adding property quantities."""
    assert case.graph is not None and point is not None

    def domain_error(problem: str) -> CheckResult:
        return _expected_domain_error(case, point, engine, problem)

    result = check_graph(case.graph, point.exact(), engine, case.tolerance,
                         expect=lambda q, at_kink: _apply_expectations(case, q, at_kink), extra=extra,
                         domain_error=domain_error if case.expect.error == "domain" else None,
                         ieee=case.expect.ieee)
    return dataclasses.replace(result, expression=case.expression, point=point.floats(), engine=engine.name)


def run_gradient(case: Case, point: Point | None, engine: Engine) -> CheckResult:
    """:func:`run`, with the modes the case's ``check:`` list (or the engine's default) adds: forward mode
    and higher order (:mod:`gradspec.checks.modes`), once the value and gradients have been judged."""
    result = run(case, point, engine)
    if result.verdict in (Verdict.SKIP, Verdict.ERROR) or case.expect.error is not None:
        return result
    modes = asked(case.modes, engine.capabilities)
    if not modes and case.order < 2:
        return result
    from gradspec.checks.modes import scalar_modes  # NumPy: these checks only

    assert case.graph is not None and point is not None
    return with_modes(result, *scalar_modes(case.graph, point.exact(), engine, case.tolerance, modes, case.order,
                                            result.kinks))


def with_modes(result: CheckResult, more: list[Quantity], note: str, radius: float | None = None) -> CheckResult:
    """``result`` with the mode quantities added, its verdict the worst of all; ``radius``: the largest
    radius of their exact values, where they were computed in ball arithmetic."""
    if not more:
        return result
    quantities = (*result.quantities, *more)
    # A mode the engine lacks is said in the message; it does not turn the judged quantities' verdict.
    skipped: dict[str, list[str]] = {}  # reason -> the quantities it skips, said once
    for q in more:
        if q.verdict is Verdict.SKIP:
            skipped.setdefault(q.note, []).append(q.name)
    said = [f"{', '.join(names)} not checked: {reason}" for reason, names in skipped.items()]
    message = "; ".join(filter(None, [result.message, note, *said]))
    verdict = worst([result.verdict, *(q.verdict for q in more if q.verdict is not Verdict.SKIP)])
    if radius is not None:
        radius = max(radius, result.radius or 0.0)
    return dataclasses.replace(result, quantities=quantities, verdict=verdict, message=message,
                               radius=result.radius if radius is None else radius)


def _apply_expectations(case: Case, q: Quantity, at_kink: bool) -> Quantity:
    """Fold the case's declarations into one judged quantity."""
    expect = case.expect
    if expect.finite and q.engine is not None and not math.isfinite(q.engine) and q.exact is not None \
            and math.isfinite(q.exact):
        # (an exact value beyond the engine's float range is inf there: that is the right answer)
        return dataclasses.replace(q, verdict=Verdict.FAIL, note="expected a finite value")
    if not at_kink or q.role == "value" or q.engine is None:
        return q
    declared = dict(expect.grad).get(q.name)
    if case.kink == "any" and q.verdict is Verdict.CONVENTION:
        return dataclasses.replace(q, verdict=Verdict.PASS, note="a valid subgradient at a kink (kink: any)")
    if declared is not None and q.tolerance is not None:
        bound = case.tolerance.bound(declared)
        if abs(q.engine - declared) <= bound:
            return dataclasses.replace(q, verdict=Verdict.PASS, note=f"the declared convention {declared:g} at a kink")
        if q.verdict is Verdict.PASS:  # matched the op table's convention, not the case's declared one
            return dataclasses.replace(q, verdict=Verdict.CONVENTION,
                                       note=f"declared convention is {declared:g}; engine took another subgradient")
    return q


def _expected_domain_error(case: Case, point: Point, engine: Engine, problem: str) -> CheckResult:
    assert case.graph is not None
    called = call.run(engine, case.graph, point.floats(), representable=False)

    def result(verdict: Verdict, message: str) -> CheckResult:
        return CheckResult(case.expression, point.floats(), engine.name, verdict, message=message)

    if called.raised:
        return result(Verdict.PASS, f"outside the domain ({problem}); engine raised {type(called.error).__name__} as expected")
    if isinstance(called.error, NotANumber):  # a complex (-4) ** 0.5: no real number, which is the point here
        return result(Verdict.PASS, f"outside the domain ({problem}); {called.message}")
    if called.verdict is not None:
        return result(called.verdict, called.message)
    out = called.get()
    signalled = [name for name, v in [("value", out.value), *out.grads.items()] if v is not None and not math.isfinite(v)]
    if not signalled:  # every number it gave, so the one that has no right value is in view
        given = ", ".join(f"{name if name == 'value' else 'd/d' + name} {v:g}"
                          for name, v in [("value", out.value), *out.grads.items()] if v is not None)
        return result(Verdict.FAIL, f"outside the domain ({problem}), yet the engine returned finite numbers: {given}")
    return result(Verdict.PASS, f"outside the domain ({problem}); engine gave non-finite {', '.join(signalled)}")

