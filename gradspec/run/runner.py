"""Running cases on engines: every case kind becomes a list of :class:`CheckResult`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from fractions import Fraction

from gradspec.casefile.model import Bounds, Case, CaseFile, Point, TensorPoint
from gradspec.checks.check import check_graph, prepare
from gradspec.checks.kinds import KINDS, CaseKind
from gradspec.diagnose.debug import as_yaml_case, primary, shrink, shrink_input
from gradspec.diagnose.debug import localise as _localise
from gradspec.engines.protocol import Engine
from gradspec.errors import GradspecError
from gradspec.graph.ir import Graph
from gradspec.limits import limited
from gradspec.results import CheckResult, CulpritKind, Tolerance, Verdict

__all__ = ["applies", "failed", "iter_case", "run_case", "run_files", "run_point", "shapes"]


def applies(case: Case, engine: Engine) -> str | None:
    """Why ``case`` does not run on ``engine`` (a skip reason), or None."""
    if case.skip:
        return case.skip
    if case.engines and engine.name not in case.engines and engine.name.split(":")[0] not in case.engines \
            and not (case.kind == CaseKind.FUNCTION and _family(engine) in case.engines):  # builtin: any Value class
        return f"case is only for engines: {', '.join(case.engines)}"
    return None


def _family(engine: Engine) -> str:
    from gradspec.engines.function import family  # NumPy, for function cases only

    return family(engine)


def run_case(case: Case, engine: Engine) -> list[CheckResult]:
    """Every point of ``case`` on ``engine``; the first failing point is also shrunk."""
    return [result for _, result in iter_case(case, engine)]


def iter_case(case: Case, engine: Engine, *, first: int = 0, shrunk: bool = False,
              starting: Callable[[int], object] = lambda _: None) -> Iterator[tuple[int, CheckResult]]:
    """The checks of ``case`` from index ``first`` on, as (index, result), each told to ``starting``
    before it runs. The first failing point that shrinks is shrunk, unless ``shrunk`` says an earlier
    run of the case already shrank one. A kind without points (training) is one check, index 0."""
    checks = KINDS[case.kind].checks(case)
    for i in range(first, len(checks)):
        starting(i)
        result = run_point(case, checks[i][0], engine, shrink=not shrunk)
        shrunk = shrunk or bool(result.shrunk)
        yield i, result


def run_files(files: Iterable[CaseFile], engines: Iterable[Engine]) -> Iterator[CheckResult]:
    engines = list(engines)
    for f in files:
        for case in f.cases:
            for engine in engines:
                yield from run_case(case, engine)


def run_point(case: Case, point: Point | TensorPoint | None, engine: Engine, *, apply_xfail: bool = True,
              shrink: bool = True, localise: bool = True) -> CheckResult:
    """One case at one point (None for training) on one engine.

    A failing gradient check is localised (the culprit op, or ``backward``) and, with ``shrink``,
    reduced to its smallest failing sub-expression. With ``apply_xfail``, a case marked ``xfail``
    turns a failure into ``xfail`` and a pass into a failure (strict), as pytest does; the pytest
    plugin leaves that to pytest's own mark.
    """
    result = _identify(_run(case, point, engine), case, point)
    if localise and result.verdict is Verdict.FAIL and result.quantities and case.graph is not None \
            and isinstance(point, Point) and (result.culprit is None or result.culprit.kind is CulpritKind.NONDETERMINISM):
        result = diagnose(result, case.graph, point.exact(), engine, case.tolerance, case.id if shrink else None,
                          case.domain)
    return _expected(case, result) if apply_xfail else result


def failed(case: Case, point: Point | TensorPoint | None, engine_name: str, message: str) -> CheckResult:
    """A failed check that never produced numbers: the engine was stopped, or took its process down."""
    result = CheckResult(case.expression, point.floats() if point else {}, engine_name, Verdict.FAIL, message=message)
    return _expected(case, _identify(result, case, point))


def _identify(result: CheckResult, case: Case, point: Point | TensorPoint | None) -> CheckResult:
    inputs = shapes(point) if isinstance(point, TensorPoint) else result.inputs
    return dataclasses.replace(result, case_id=case.id, path=case.path, line=point.line if point else case.line,
                               kind=case.kind, inputs=inputs)


def shapes(point: TensorPoint) -> str:
    """A tensor point's inputs as a failure header names them: ``x[3, 4], w[4]``; a scalar by its value."""
    return ", ".join(f"{name}={float(flat[0]):g}" if not shape else f"{name}[{', '.join(map(str, shape))}]"
                     for name, shape, flat in point.values)


def _expected(case: Case, result: CheckResult) -> CheckResult:
    """A case marked ``xfail``: a failure becomes ``xfail``, a pass becomes a failure (strict). A case of
    ``precision: strict``: an imprecise check fails (before ``xfail`` reads it)."""
    if case.precision == "strict" and result.verdict is Verdict.IMPRECISE:
        result = dataclasses.replace(result, verdict=Verdict.FAIL, message="; ".join(filter(None, [
            result.message, "imprecise, and the case asks for precision: strict"])))
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
    unstable = result.culprit if result.culprit is not None and result.culprit.kind is CulpritKind.NONDETERMINISM else None
    culprit = primary(_localise(graph, point, engine), unstable)
    shrunk = ""
    message = result.message
    if shrink_as is not None and culprit is not unstable:  # a failure that comes and goes does not shrink
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


def _run(case: Case, point: Point | TensorPoint | None, engine: Engine) -> CheckResult:
    reason = applies(case, engine)
    if reason:
        return CheckResult(case.expression, point.floats() if point else {}, engine.name, Verdict.SKIP, message=reason)
    with limited():  # one interval timer for every engine call of the check
        return KINDS[case.kind].run(case, point, engine)
