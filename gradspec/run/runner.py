"""Running cases on engines: every case kind becomes a list of :class:`CheckResult`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from fractions import Fraction

from gradspec.casefile.model import Bounds, Case, CaseFile, ChainRule, Linearity, Point, Training
from gradspec.checks.check import check_graph, prepare
from gradspec.checks.results import CheckResult, Quantity, Tolerance, Verdict
from gradspec.checks.training import train
from gradspec.diagnose.debug import as_yaml_case, shrink, shrink_input
from gradspec.diagnose.debug import localise as _localise
from gradspec.engines import call
from gradspec.engines.protocol import Engine, Outcome
from gradspec.errors import GradspecError
from gradspec.graph.ir import Graph
from gradspec.reference.numerical import relative_error
from gradspec.reference.store import reference

__all__ = ["applies", "failed", "iter_case", "run_case", "run_files", "run_point"]


def applies(case: Case, engine: Engine) -> str | None:
    """Why ``case`` does not run on ``engine`` (a skip reason), or None."""
    if case.skip:
        return case.skip
    if case.engines and engine.name not in case.engines and engine.name.split(":")[0] not in case.engines:
        return f"case is only for engines: {', '.join(case.engines)}"
    return None


def run_case(case: Case, engine: Engine) -> list[CheckResult]:
    """Every point of ``case`` on ``engine``; the first failing point is also shrunk."""
    return [result for _, result in iter_case(case, engine)]


def iter_case(case: Case, engine: Engine, *, first: int = 0, shrunk: bool = False,
              starting: Callable[[int], object] = lambda _: None) -> Iterator[tuple[int, CheckResult]]:
    """The points of ``case`` from index ``first`` on, as (index, result), each told to ``starting``
    before it runs. The first failing point that shrinks is shrunk, unless ``shrunk`` says an earlier
    run of the case already shrank one. A training case is one check, index 0."""
    if case.kind == "training":
        starting(0)
        yield 0, run_point(case, None, engine)
        return
    for i in range(first, len(case.points)):
        starting(i)
        result = run_point(case, case.points[i], engine, shrink=not shrunk)
        shrunk = shrunk or bool(result.shrunk)
        yield i, result


def run_files(files: Iterable[CaseFile], engines: Iterable[Engine]) -> Iterator[CheckResult]:
    engines = list(engines)
    for f in files:
        for case in f.cases:
            for engine in engines:
                yield from run_case(case, engine)


def run_point(case: Case, point: Point | None, engine: Engine, *, apply_xfail: bool = True,
              shrink: bool = True, localise: bool = True) -> CheckResult:
    """One case at one point (None for training) on one engine.

    A failing gradient check is localised (the culprit op, or ``backward``) and, with ``shrink``,
    reduced to its smallest failing sub-expression. With ``apply_xfail``, a case marked ``xfail``
    turns a failure into ``xfail`` and a pass into a failure (strict), as pytest does; the pytest
    plugin leaves that to pytest's own mark.
    """
    result = _identify(_run(case, point, engine), case, point)
    if localise and result.verdict is Verdict.FAIL and result.quantities and case.graph is not None and point is not None \
            and result.culprit is None:  # a culprit already (the engine's nondeterminism) needs no re-run to find
        result = diagnose(result, case.graph, point.exact(), engine, case.tolerance, case.id if shrink else None,
                          case.domain)
    return _expected(case, result) if apply_xfail else result


def failed(case: Case, point: Point | None, engine_name: str, message: str) -> CheckResult:
    """A failed check that never produced numbers: the engine was stopped, or took its process down."""
    result = CheckResult(**_base(case, point, engine_name), verdict=Verdict.FAIL, message=message)  # type: ignore[arg-type]
    return _expected(case, _identify(result, case, point))


def _identify(result: CheckResult, case: Case, point: Point | None) -> CheckResult:
    return dataclasses.replace(result, case_id=case.id, path=case.path, line=point.line if point else case.line,
                               kind=case.kind)


def _expected(case: Case, result: CheckResult) -> CheckResult:
    """A case marked ``xfail``: a failure becomes ``xfail``, a pass becomes a failure (strict)."""
    if case.xfail:
        if result.verdict is Verdict.FAIL:
            return dataclasses.replace(result, verdict=Verdict.XFAIL, message=f"expected failure: {case.xfail}")
        if result.verdict in (Verdict.PASS, Verdict.CONVENTION):
            return dataclasses.replace(result, verdict=Verdict.FAIL, message=f"unexpectedly passed (xfail: {case.xfail})")
    return result


def diagnose(result: CheckResult, graph: Graph, point: Mapping[str, Fraction], engine: Engine, tol: Tolerance,
             shrink_as: str | None, domain: Sequence[Bounds] = ()) -> CheckResult:
    """Attach the culprit of a failing check and, when ``shrink_as`` names the case, its smallest
    failing sub-expression as a YAML case. For a sampled case (``domain``), the input is shrunk first:
    the smallest failing input is reported next to the sampled one."""
    culprit = _localise(graph, point, engine)
    shrunk = ""
    message = result.message
    if shrink_as is not None:
        def still_fails(text: str, sub: Mapping[str, Fraction]) -> bool:
            try:
                return check_graph(prepare(text, list(sub)), sub, engine, tol).verdict is Verdict.FAIL
            except GradspecError:
                return False

        if domain:
            smaller = shrink_input(point, {b.name: b for b in domain},
                                   lambda p: still_fails(graph.program.source, p))
            if smaller != dict(point):
                point = smaller
                text = ", ".join(f"{k}={float(v):g}" for k, v in smaller.items())
                message = "; ".join(filter(None, [message, f"smallest failing input: {text}"]))

        found = shrink(graph, point, engine, still_fails)
        if found is not None:
            text, sub = found
            shrunk = as_yaml_case(f"{shrink_as}-shrunk", text, sub,
                                  f"smallest failing part of {shrink_as} on {engine.name}")
    return dataclasses.replace(result, culprit=culprit, shrunk=shrunk, message=message)


def _base(case: Case, point: Point | None, engine_name: str) -> dict[str, object]:
    return {"expression": case.expression, "point": point.floats() if point else {}, "engine": engine_name}


def _run(case: Case, point: Point | None, engine: Engine) -> CheckResult:
    base = _base(case, point, engine.name)
    reason = applies(case, engine)
    if reason:
        return CheckResult(**base, verdict=Verdict.SKIP, message=reason)  # type: ignore[arg-type]
    if isinstance(case.spec, Training):
        return train(case.spec, case.tolerance, engine, base)
    assert case.graph is not None and point is not None
    spec = case.spec

    def extra(outcome: Outcome) -> tuple[list[Quantity], str]:
        if isinstance(spec, Linearity):
            return _linearity(case, spec, point, engine, outcome)
        if isinstance(spec, ChainRule):
            return _chain_rule(case, spec, point, engine, outcome)
        return [], ""

    def domain_error(problem: str) -> CheckResult:
        return _expected_domain_error(case, point, engine, problem)

    result = check_graph(case.graph, point.exact(), engine, case.tolerance,
                         expect=lambda q, at_kink: _apply_expectations(case, q, at_kink), extra=extra,
                         domain_error=domain_error if case.expect.error == "domain" else None)
    return dataclasses.replace(result, **base)  # type: ignore[arg-type]


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
    base = _base(case, point, engine.name)
    assert case.graph is not None
    called = call.run(engine, case.graph, point.floats(), representable=False)
    if called.raised:
        return CheckResult(**base, verdict=Verdict.PASS,  # type: ignore[arg-type]
                           message=f"outside the domain ({problem}); engine raised {type(called.error).__name__} as expected")
    if called.verdict is not None:
        return CheckResult(**base, verdict=called.verdict, message=called.message)  # type: ignore[arg-type]
    out = called.get()
    signalled = [name for name, v in [("value", out.value), *out.grads.items()] if v is not None and not math.isfinite(v)]
    if not signalled:
        return CheckResult(**base, verdict=Verdict.FAIL,  # type: ignore[arg-type]
                           message=f"outside the domain ({problem}), yet the engine returned a finite value "
                                   f"{out.value:g} and finite gradients")
    return CheckResult(**base, verdict=Verdict.PASS,  # type: ignore[arg-type]
                       message=f"outside the domain ({problem}); engine gave non-finite {', '.join(signalled)}")


def _property(name: str, engine_value: float | None, reference: float, case: Case, note: str,
              rounding: Callable[[], float]) -> Quantity:
    """The engine against itself: both sides carry the engine's rounding, allowed as for exact checks."""
    if engine_value is None:
        return Quantity(name, "property", None, None, reference, None, None, None, Verdict.SKIP, note=note)
    err = abs(engine_value - reference) if math.isfinite(engine_value) and math.isfinite(reference) else math.inf
    bound = case.tolerance.bound(reference)
    if bound < err < math.inf:
        bound += rounding()
    return Quantity(name, "property", engine_value, reference, None, err, relative_error(engine_value, reference), bound,
                    Verdict.PASS if err <= bound else Verdict.FAIL, note=note)


def _scale(engine: Engine, graph: Graph, point: Point, name: str) -> float:
    """The rounding allowance of one quantity on ``engine`` (see :meth:`gradspec.reference.store.Reference.conditioning`)."""
    return engine.eps * float(reference(graph, point.exact()).conditioning()[name])


def _linearity(case: Case, spec: Linearity, point: Point, engine: Engine, h: Outcome) -> tuple[list[Quantity], str]:
    a, b = float(point.exact()["a"]), float(point.exact()["b"])
    fun_point = Point(tuple((n, v) for n, v in point.values if n not in ("a", "b")), point.line)
    runs = [call.run(engine, g, fun_point.floats()) for g in (spec.f, spec.g)]
    if any(r.verdict is not None for r in runs):
        problem = next(r.message for r in runs if r.verdict is not None)
        return [Quantity("linearity", "property", None, None, None, None, None, None, Verdict.FAIL, note=problem)], problem
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
        return [Quantity("chain rule", "property", None, None, None, None, None, None, Verdict.FAIL, note=called.message)], called.message
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
