"""The judge: one graph on one engine at one point, against the exact and numerical references.

The public entry points built on it (``check``, ``check_function``, ``check_gradients``) are in
:mod:`gradspec.checks.api`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any

import mpmath
from mpmath.libmp import to_str

from gradspec.checks import nondet
from gradspec.checks.stepsize import central_errors
from gradspec.diagnose.debug import localise, primary
from gradspec.diagnose.raised import raised_culprit
from gradspec.engines import call
from gradspec.engines.protocol import FLOAT64_EPS, Engine, Outcome, float_range
from gradspec.errors import DomainError, ExpressionError, GradspecError
from gradspec.graph.ir import Graph, build
from gradspec.lang.expr import parse
from gradspec.limits import limited
from gradspec.reference.exact import DPS, Exact
from gradspec.reference.numerical import relative_error, relative_to
from gradspec.reference.precision import precision_note, representation
from gradspec.reference.store import Reference, reference
from gradspec.results import OVERFLOW_POLICY, CheckResult, Quantity, Role, Tolerance, Verdict, worst

__all__ = ["abs_error", "check_graph", "compare", "exact_text", "overflow_verdict", "prepare"]

def prepare(expression: str, names: Sequence[str]) -> Graph:
    """Parse and lay out ``expression`` for a point over ``names``; undefined names are errors."""
    program = parse(expression)
    missing = [n for n in program.inputs if n not in names]
    if missing:
        col = program.column_of(missing[0])
        given = ", ".join(names) or "none"
        raise ExpressionError(f"undefined variable {missing[0]!r} (inputs given: {given})", col=col)
    extra = tuple(n for n in names if n not in program.inputs and n not in program.intermediates)
    return build(program, extra)


def check_graph(graph: Graph, point: Mapping[str, Fraction], engine: Engine, tol: Tolerance, *,
                localise_failures: bool = False,
                expect: Callable[[Quantity, bool], Quantity] | None = None,
                extra: Callable[[Outcome], tuple[list[Quantity], str]] | None = None,
                domain_error: Callable[[str], CheckResult] | None = None,
                ieee: bool = False) -> CheckResult:
    """``graph`` on ``engine`` at ``point``: exact reference, skip, run, compare, worst verdict.

    A case's own declarations hook in: ``expect(quantity, at_kink)`` folds them into each judged
    quantity, ``extra(outcome)`` adds property quantities (and a problem to report), and
    ``domain_error(problem)`` judges a point outside an op's domain that the case expects. An
    OverflowError from the engine is judged by :func:`overflow_verdict` (``ieee``: the case demands inf).
    """
    with limited():  # one interval timer for both engine runs (and the localisation's)
        return _check_graph(graph, point, engine, tol, localise_failures, expect, extra, domain_error, ieee)


def _check_graph(graph: Graph, point: Mapping[str, Fraction], engine: Engine, tol: Tolerance, localise_failures: bool,
                 expect: Callable[[Quantity, bool], Quantity] | None,
                 extra: Callable[[Outcome], tuple[list[Quantity], str]] | None,
                 domain_error: Callable[[str], CheckResult] | None, ieee: bool) -> CheckResult:
    floats = {k: float(v) for k, v in point.items()}

    def result(verdict: Verdict, message: str = "") -> CheckResult:
        return CheckResult(graph.program.source, floats, engine.name, verdict, message=message)

    refs = reference(graph, point)
    try:
        ref = refs.exact()
    except DomainError as exc:
        return domain_error(exc.message) if domain_error is not None else result(Verdict.ERROR, exc.message)
    except GradspecError as exc:
        return result(Verdict.ERROR, exc.message)
    called = call.run(engine, graph, floats)
    if called.verdict is not None:
        failed = result(called.verdict, called.message)
        if isinstance(called.error, OverflowError | ZeroDivisionError):  # IEEE's inf, raised: may be a convention
            failed = result(*overflow_verdict(ref, engine, called.error, ieee=ieee))
            if failed.verdict is not Verdict.FAIL:
                return failed
        if called.raised and called.error is not None:  # where it raised can name the culprit
            failed = dataclasses.replace(failed, culprit=raised_culprit(graph, called.error))
        return failed
    outcome = called.get()
    quantities = list(compare(graph, ref, outcome, point, tol, engine, refs=refs))
    if expect is not None:
        quantities = [expect(q, ref.kinks != ()) for q in quantities]
    # A second run on a fresh build: the first is judged, the second says whether it can be trusted.
    eps = getattr(engine, "eps", FLOAT64_EPS)
    quantities, unstable, problem = nondet.judge(quantities, outcome, call.run(engine, graph, floats), tol,
                                                 lambda name: refs.rounding(eps)[name], eps)
    message = "; ".join(filter(None, [refs.over_budget, problem]))
    if extra is not None:
        more, problem = extra(outcome)
        quantities += more
        message = "; ".join(filter(None, [message, problem]))
    verdict = worst([q.verdict for q in quantities])
    if unstable is not None and verdict is Verdict.PASS:  # the second run failed; the first passed
        verdict = Verdict.FAIL
    step_input = ""
    step_errors: tuple[tuple[int, float], ...] = ()
    if not ref.kinks:  # a difference across a kink measures the kink, not the step size
        q = next((q for q in quantities if q.role is Role.INPUT and q.exact is not None and math.isfinite(q.exact)), None)
        if q is not None and q.exact is not None:
            step_input, step_errors = q.name, central_errors(graph, floats, q.name, q.exact)
    checked = CheckResult(graph.program.source, floats, engine.name, verdict, tuple(quantities), message,
                          tuple(k.where for k in ref.kinks), step_errors=step_errors, step_input=step_input,
                          culprit=unstable)
    if checked.verdict is Verdict.FAIL and localise_failures:
        checked = dataclasses.replace(checked, culprit=primary(localise(graph, point, engine), unstable))
    return checked


def overflow_verdict(ref: Exact, engine: Engine, exc: ArithmeticError, *, ieee: bool) -> tuple[Verdict, str]:
    """The verdict on an engine that raised OverflowError, or ZeroDivisionError (Python's ``0.5 / 0.0``).

    Where the exact value or a gradient is beyond the engine's float range (or infinite: sqrt'(0)) there
    is no right float to return: IEEE 754 gives inf, Python raises, and both are accepted (a convention
    difference) unless the case demands IEEE behaviour. Where every exact quantity is finite
    (sigmoid(-800) is about 0) the overflow is a bug in how the engine computes it.
    """
    limit = float_range(engine)
    beyond = [name or "value" for name, q in [("", ref.value), *ref.grads.items()]
              if math.isinf(float(q)) or abs(float(q)) > limit]
    what = type(exc).__name__
    raised = f"engine raised {what}: {exc}"
    if not beyond:
        return Verdict.FAIL, f"{raised}; the exact value and gradients are finite in the engine's precision"
    if ieee:
        return Verdict.FAIL, f"{raised}; the case expects IEEE 754 behaviour (inf for {', '.join(beyond)})"
    return Verdict.CONVENTION, f"{OVERFLOW_POLICY}: raised {what} where IEEE 754 gives inf ({', '.join(beyond)}: {exc})"


def compare(
    graph: Graph,
    ref: Exact,
    outcome: Outcome,
    point: Mapping[str, Fraction],
    tol: Tolerance,
    engine: Engine,
    *,
    refs: Reference | None = None,
) -> tuple[Quantity, ...]:
    """Judge an engine's value and gradients against the exact reference, quantity by quantity (``refs``:
    the references of ``graph`` at ``point``, where the caller has them)."""
    refs = reference(graph, point) if refs is None else refs
    formulas = refs.formulas
    eps = getattr(engine, "eps", FLOAT64_EPS)
    limit = float_range(engine)

    def rounding(name: str) -> tuple[float, float]:
        return refs.precision(eps)[name], refs.rounding(eps)[name]

    out = [_judge("value", Role.VALUE, outcome.value, ref.value, None, tol, None, formulas.get("", ""),
                  lambda: rounding(""), limit, eps)]
    roles = [(n, Role.INPUT) for n, _ in graph.inputs] + [(n, Role.INTERMEDIATE) for n, _ in graph.intermediates]
    nums = refs.numerical(tol.h)
    for name, role in roles:
        num = nums[name]
        out.append(_judge(name, role, outcome.grads.get(name), ref.grads[name], num, tol, ref.subgradients.get(name),
                          formulas.get(name, ""), functools.partial(rounding, name), limit, eps))
    for spelling, other in outcome.spelled.items():
        # The graph built with the other spelling: only numbers that differ can be judged differently.
        same = {"value": outcome.value, **outcome.grads}
        for q in compare(graph, ref, other, point, tol, engine, refs=refs):
            if not _identical(q.engine, same.get(q.name)):
                out.append(dataclasses.replace(q, name=f"{q.name} via {spelling}",
                                               note="; ".join(filter(None, [f"built with {spelling}", q.note]))))
    return tuple(out)


def _identical(a: float | None, b: float | None) -> bool:
    return a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b))


def _judge(
    name: str,
    role: Role,
    engine: float | None,
    exact_mp: mpmath.mpf,
    num: float | None,
    tol: Tolerance,
    subgradients: tuple[mpmath.mpf, mpmath.mpf] | None,
    symbolic: str,
    rounding: Callable[[], tuple[float, float]],
    limit: float,
    eps: float = FLOAT64_EPS,
) -> Quantity:
    """One quantity's verdict: within the case's tolerance plus the precision bound (``rounding()[0]``),
    pass; beyond it but within the full rounding allowance (``rounding()[1]``, partials rebuilt from
    rounded outputs included), imprecise; beyond both, fail (:mod:`gradspec.reference.precision`)."""
    text = exact_text(exact_mp)
    exact_f = float(exact_mp)
    if abs(exact_f) > limit:  # beyond the engine's float range: IEEE arithmetic overflows to inf
        exact_mp = mpmath.inf if exact_f > 0 else -mpmath.inf
        exact_f = float(exact_mp)
    if engine is None:
        return Quantity(name, role, None, exact_f, num, None, None, None, Verdict.SKIP, text, symbolic,
                        "the engine does not report this gradient")
    bound = tol.bound(exact_f)
    err = abs_error(engine, exact_mp, exact_f)
    note = ""
    verdict = Verdict.PASS if err <= bound else Verdict.FAIL
    if bound < err < math.inf:
        # Beyond the case's tolerance: allow what rounding in the engine's precision can do here.
        tight, full = (b + representation(exact_f, eps) for b in rounding())
        if err <= bound + tight:
            verdict, note = Verdict.PASS, f"within the rounding allowance of the engine's precision ({tight:.2g})"
        elif err <= bound + full:
            verdict, note = Verdict.IMPRECISE, precision_note(engine, exact_f, eps, bound + tight)
        bound += tight if verdict is not Verdict.FAIL else full
    if verdict is not Verdict.PASS and subgradients is not None:
        lo, hi = (float(v) for v in subgradients)
        if lo - tol.bound(lo) <= engine <= hi + tol.bound(hi):
            verdict = Verdict.CONVENTION
            note = f"another subgradient at a kink: any value in [{lo:g}, {hi:g}] is valid, convention gives {exact_f:g}"
    if num is not None and math.isfinite(exact_f) and relative_error(num, exact_f) > 1e-5 and not subgradients:
        note = note or "the central difference is poor here; the exact value decides"
    # of the exact difference, as abs_error: an engine that returns the float nearest the exact value is
    # off by that float's residual, not by 0
    return Quantity(name, role, engine, exact_f, num, err, relative_to(err, engine, exact_f), bound, verdict,
                    text, symbolic, note)


def abs_error(engine: float, exact_mp: mpmath.mpf, exact_f: float) -> float:
    """``|engine - exact|``; ``exact_f`` is ``float(exact_mp)`` (overflow rounds to inf, as the engine's own
    arithmetic does)."""
    if math.isnan(exact_f) or math.isnan(engine):
        return 0.0 if math.isnan(exact_f) and math.isnan(engine) else math.inf
    if math.isinf(exact_f) or math.isinf(engine):
        return 0.0 if engine == exact_f else math.inf
    err = abs(engine - exact_f)
    if err > 8 * math.ulp(exact_f):  # rounding the exact value to float64 cannot matter here
        return err
    # Within 8 ulps engine - exact_f is exact (Sterbenz), and the exact value is exact_f plus a residual
    # below half an ulp of it (remembered per exact value): the error to within an ulp of itself, without
    # a multiple-precision subtraction per quantity.
    return abs((engine - exact_f) - _residual(exact_mp))


@lru_cache(maxsize=65536)
def _residual(exact_mp: mpmath.mpf) -> float:
    """How far an exact value is from its nearest float64."""
    with mpmath.workdps(DPS):
        return float(exact_mp - mpmath.mpf(float(exact_mp)))


def exact_text(exact: Any) -> str:
    """An exact value to 30 significant digits: an mpf, or a ball's midpoint (``_mpf_``), as it is; anything
    else (a Fraction) rounded to the reference's precision first."""
    mpf = getattr(exact, "_mpf_", None)
    if mpf is not None:
        return _digits(mpf)
    with mpmath.workdps(DPS):
        return str(mpmath.nstr(mpmath.mpf(exact), 30))


@lru_cache(maxsize=65536)
def _digits(mpf: tuple[int, int, int, int]) -> str:
    """30 digits of an mpf by its (sign, mantissa, exponent, bits): the same numbers recur across engines,
    draws and runs."""
    return str(to_str(mpf, 30))
