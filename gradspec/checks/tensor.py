"""Checking a tensor case: one graph on one engine at one draw, element by element.

What is compared: the value, element-wise; vector-Jacobian products with seeded random cotangents
(dyadic rationals in [-1, 1], never all ones: a sum's gradient cannot see a sign-flipped softmax
backward); and, when the Jacobian has at most ``JACOBIAN_LIMIT`` entries and no kink is involved, the
full Jacobian row by row. Every element is allowed ``atol + rtol*|exact|`` plus the rounding bound of
the engine's precision (:mod:`gradspec.reference.tensor`). A failing quantity names its worst
element, how many elements are over, and a pattern guess (:mod:`gradspec.diagnose.patterns`); a
failing check is then localised by checking each op of the graph alone at its exact operands.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from gradspec.casefile.model import Case, Point, TensorPoint, TensorSpec
from gradspec.diagnose.lowered import scalar_culprit
from gradspec.diagnose.patterns import guess, unsummed_shape
from gradspec.engines import call
from gradspec.engines.protocol import FLOAT32_EPS, FLOAT32_MAX, Engine
from gradspec.engines.tensor import TensorOutcome
from gradspec.errors import DomainError, GradspecError
from gradspec.graph.tensor import TensorGraph, build_tensor
from gradspec.lang.expr import Apply, Name, Node, Num, parse
from gradspec.modes import Mode, asked
from gradspec.reference.exact import DPS
from gradspec.reference.numerical import relative_error
from gradspec.reference.tensor import TensorExact, exact_tensor
from gradspec.results import (
    CheckResult,
    Culprit,
    CulpritKind,
    ElementErrors,
    Quantity,
    Role,
    Tolerance,
    Verdict,
    worst,
)

__all__ = ["COTANGENTS", "JACOBIAN_LIMIT", "MAP_LIMIT", "check_tensor", "cotangent", "jacobian_size", "judge",
           "run_case"]

COTANGENTS = 2  # seeded random cotangents per draw
JACOBIAN_LIMIT = 1000  # output elements x differentiable input elements
MAP_LIMIT = 4096  # elements of a failing quantity whose errors the result carries for a heat map


def cotangent(shape: tuple[int, ...], rng: random.Random) -> Any:
    """A seeded random cotangent: nonzero multiples of 1/1024 in [-1, 1], held exactly by a float64 array
    (and by float32), so the reference and the engine get the same numbers."""
    size = math.prod(shape)
    steps = [rng.choice((-1, 1)) * rng.randint(1, 1024) for _ in range(size)]
    return (np.asarray(steps, dtype=float) / 1024).reshape(shape)


def jacobian_size(graph: TensorGraph) -> int:
    """Output elements times differentiable input elements: the entries of the full Jacobian."""
    return math.prod(graph.shape) * sum(math.prod(graph.steps[i].shape) for _, i in graph.differentiable)


def run_case(case: Case, point: Point | TensorPoint | None, engine: Engine) -> CheckResult:
    """The tensor kind's run: one draw of ``case`` on ``engine``."""
    assert isinstance(case.spec, TensorSpec) and isinstance(point, TensorPoint)
    return check_tensor(case.spec.graph, point.arrays(), engine, case.tolerance, seed=point.seed, kink=case.kink,
                        modes=asked(case.modes, engine.capabilities), order=case.order)


def check_tensor(graph: TensorGraph, point: Mapping[str, Any], engine: Engine, tol: Tolerance, *, seed: int = 0,
                 kink: str | None = None, localise: bool = True, modes: frozenset[Mode] = frozenset(),
                 order: int = 1) -> CheckResult:
    """Check ``graph`` at ``point`` (input -> array of Fractions) on ``engine``; ``modes`` and ``order``
    add forward-mode and higher-order quantities (:mod:`gradspec.checks.modes`)."""
    base: dict[str, Any] = {"expression": graph.program.source, "point": {}, "engine": engine.name, "kind": "tensor"}
    try:
        ref = exact_tensor(graph, point)
    except DomainError as exc:
        return CheckResult(**base, verdict=Verdict.ERROR, message=exc.message)
    floats = {n: np.asarray(np.vectorize(float, otypes=[float])(np.asarray(v, dtype=object)), dtype=float)
              for n, v in point.items()}
    reason = _unrepresentable(engine, floats)
    if reason:
        return CheckResult(**base, verdict=Verdict.SKIP, message=reason)
    rng = random.Random(seed)
    cotangents = [cotangent(graph.shape, rng) for _ in range(COTANGENTS)]
    size = math.prod(graph.shape)
    rows = size if jacobian_size(graph) <= JACOBIAN_LIMIT and not ref.kinks else 0
    for r in range(rows):
        one_hot = np.zeros(size)
        one_hot[r] = 1.0
        cotangents.append(one_hot.reshape(graph.shape))
    called = call.tensor(engine, graph, floats, cotangents)
    if not called.ok:
        assert called.verdict is not None
        return CheckResult(**base, verdict=called.verdict, message=called.message)
    outcome = called.get()
    quantities = _compare(graph, ref, outcome, cotangents, rows, engine.eps, tol, kink)
    verdict = worst([q.verdict for q in quantities])
    shapes = ", ".join(f"{n}{list(s)}" for n, s in graph.shapes.items())
    message = f"inputs {shapes}; cotangent seed {seed}" + (f"; full Jacobian compared ({size} rows)" if rows else "")
    if ref.kinks and kink is None:
        message = "; ".join(filter(None, [message, "at a kink not declared by the case: the op table's convention applies"]))
    result = CheckResult(**base, verdict=verdict, quantities=tuple(quantities), kinks=ref.kinks, message=message)
    if modes or order >= 2:
        from gradspec.checks.expression import with_modes
        from gradspec.checks.modes import mode_quantities

        result = with_modes(result, *mode_quantities(graph, point, engine, tol, modes, order, seed, ref.kinks))
    if result.verdict is Verdict.FAIL and localise:
        culprit = _localise(graph, ref, engine, tol, seed, modes, order)
        if culprit is not None:
            result = CheckResult(**{**result.__dict__, "culprit": culprit})
    return result


def _unrepresentable(engine: Engine, floats: Mapping[str, Any]) -> str | None:
    if engine.eps < FLOAT32_EPS:
        return None
    for name, values in floats.items():
        if values.size and float(np.max(np.abs(values))) > FLOAT32_MAX:
            return f"input {name} has an element beyond float32's range, the engine's precision"
    return None


def _compare(graph: TensorGraph, ref: TensorExact, outcome: TensorOutcome, cotangents: list[Any], rows: int,
             eps: float, tol: Tolerance, kink: str | None) -> list[Quantity]:
    value = ref.value_floats
    out = [judge("value", Role.VALUE, outcome.value, ref.value, value, eps * ref.value_rounding, tol)]
    for k in range(COTANGENTS):
        grad = ref.vjp(cotangents[k])
        ranges = ref.subgradient_range(cotangents[k]) if ref.kinks else None
        for name, _ in graph.differentiable:
            span = ranges.get(name) if ranges else None
            out.append(judge(f"{name} (vjp{k})", Role.INPUT, outcome.grads[k].get(name), grad.exact[name],
                              grad.floats[name], eps * grad.rounding[name], tol, span, kink, grad.copies.get(name, ()),
                              value))
    if rows:
        grads = [ref.vjp(c) for c in cotangents[COTANGENTS:]]
        for name, _ in graph.differentiable:
            engine_rows: list[Any] = [outcome.grads[COTANGENTS + r].get(name) for r in range(rows)]
            stacked = None if any(g is None for g in engine_rows) or len({np.shape(g) for g in engine_rows}) > 1 \
                else np.stack(engine_rows).reshape((*graph.shape, *np.shape(engine_rows[0])))
            shape = (*graph.shape, *grads[0].exact[name].shape)
            exact = np.stack([g.exact[name] for g in grads]).reshape(shape)
            floats = np.stack([g.floats[name] for g in grads]).reshape(shape)
            allowed = np.stack([g.rounding[name] for g in grads]).reshape(shape)
            out.append(judge(f"{name} (jacobian)", Role.INPUT, stacked, exact, floats, eps * allowed, tol,
                              out_axes=len(graph.shape)))
    return out


def judge(label: str, role: Role, engine: Any, exact_mp: Any, exact: Any, allowance: Any, tol: Tolerance,
           span: tuple[Any, Any] | None = None, kink: str | None = None, copies: Any = (), output: Any = None,
           out_axes: int | None = None) -> Quantity:
    if engine is None:
        return Quantity(label, role, None, None, None, None, None, None, Verdict.SKIP,
                        note="the engine does not report this gradient")
    engine = np.asarray(engine, dtype=float)
    if engine.shape != exact.shape:
        unsummed = (engine.size > exact.size and engine.ndim >= exact.ndim
                    and engine.shape[engine.ndim - exact.ndim:] == exact.shape) \
            or any(shape == engine.shape for shape, _ in copies)
        note = unsummed_shape(engine.shape, exact.shape) if unsummed else \
            f"the engine's array has shape {list(engine.shape)}, the exact one {list(exact.shape)}"
        return Quantity(label, role, None, None, None, math.inf, math.inf, None, Verdict.FAIL, note=note)
    bound = tol.atol + tol.rtol * np.abs(exact) + allowance
    both_nan = np.isnan(engine) & np.isnan(exact)
    with np.errstate(invalid="ignore"):  # inf - inf: equal infinities agree
        err = np.where(both_nan | (engine == exact), 0.0, np.abs(engine - exact))
    err = np.where(np.isnan(err), np.inf, err)
    over = err > bound
    verdict = Verdict.FAIL if over.any() else Verdict.PASS
    note = ""
    if over.any() and span is not None:
        lo = np.vectorize(float, otypes=[float])(span[0])
        hi = np.vectorize(float, otypes=[float])(span[1])
        inside = (engine >= lo - bound) & (engine <= hi + bound)
        if np.all(inside | ~over):
            verdict = Verdict.PASS if kink == "any" else Verdict.CONVENTION
            note = "another subgradient at a kink" + (" (kink: any)" if kink == "any" else "")
            over = np.zeros_like(over)
    with np.errstate(invalid="ignore"):  # inf / inf: an overflow the allowance accepts
        ratio = np.where(bound > 0, err / np.where(bound > 0, bound, 1), np.where(err > 0, np.inf, 0))
    ratio = np.nan_to_num(ratio, nan=0.0)
    w = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), exact.shape)) if exact.size else ()
    elements = None
    if verdict is Verdict.FAIL:
        elements = _element_errors(engine, exact, over, out_axes)
        count = int(over.sum())
        pattern = guess(engine, exact, bound, copies, output)
        note = "; ".join(filter(None, [_non_finite(engine, exact),
                                       f"{count} of {exact.size} elements over tolerance; worst at {list(w)}",
                                       f"pattern: {pattern}" if pattern else ""]))
    exact_w = exact_mp[w] if exact.shape else exact_mp[()]
    with mpmath.workdps(DPS):
        exact_text = mpmath.nstr(mpmath.mpf(exact_w), 30)
    e, x = float(engine[w]), float(exact[w])
    return Quantity(label, role, e, x, None, float(err[w]), relative_error(e, x), float(bound[w]), verdict,
                    exact_text=exact_text, note=note, index=w, elements=elements)


def _non_finite(engine: Any, exact: Any) -> str:
    """What the engine returned that is not a finite number where the exact element is ("3 of 15
    elements are NaN"): a NaN or an inf is a different bug from a number off by a little."""
    parts = []
    for what, found in (("NaN", np.isnan(engine) & ~np.isnan(exact)),
                        ("inf", np.isinf(engine) & np.isfinite(exact))):
        n = int(found.sum())
        if n:
            parts.append(f"{n} of {exact.size} element{'s' if exact.size > 1 else ''} {'is' if n == 1 else 'are'} {what}")
    return ", ".join(parts)


def _element_errors(engine: Any, exact: Any, over: Any, out_axes: int | None) -> ElementErrors | None:
    """Every element's relative error on a grid: a 2-D quantity as it is; a Jacobian as output elements by
    input elements. None for other shapes and for more than ``MAP_LIMIT`` elements."""
    shape = tuple(int(n) for n in exact.shape)
    if out_axes is not None and 0 < out_axes < len(shape):
        rows = out_axes
    elif len(shape) == 2:
        rows = 1
    else:
        return None
    if exact.size > MAP_LIMIT:
        return None
    both_nan = np.isnan(engine) & np.isnan(exact)
    errors = [0.0 if agree else relative_error(float(e), float(x))
              for e, x, agree in zip(engine.ravel(), exact.ravel(), both_nan.ravel(), strict=True)]
    return ElementErrors(shape, rows, tuple(errors), tuple(bool(o) for o in over.ravel()))


def _localise(graph: TensorGraph, ref: TensorExact, engine: Engine, tol: Tolerance, seed: int,
              modes: frozenset[Mode], order: int) -> Culprit | None:
    """The first op, in graph order, that fails when checked alone at its exact operands."""
    for i, step in enumerate(graph.steps):
        if step.op is None or not graph.varying[i]:
            continue
        args: list[Node] = []
        shapes: dict[str, tuple[int, ...]] = {}
        point: dict[str, Any] = {}
        data: set[str] = set()
        for k, a in enumerate(step.args):
            source = graph.steps[a]
            if source.const is not None:
                args.append(Num(source.const, _const_text(source.const)))
                continue
            name = f"a{k}"
            args.append(Name(name))
            shapes[name] = source.shape
            values = ref.values_of(a)
            point[name] = np.vectorize(lambda v: Fraction(float(v)), otypes=[object])(values) if values.size else values
            if not graph.varying[a]:
                data.add(name)
        text = str(Apply(step.op, tuple(args), 0, step.kwargs))
        try:
            alone = build_tensor(parse(text), shapes, frozenset(data))
            # On a scalar engine the op is the user's scalar ops: each is tested alone, which does not
            # depend on the order a backward happens to take this time (a set-ordered engine's = for +=)
            inside = scalar_culprit(alone, point, engine, step.op, step.col)
            if inside is not None:
                return inside
            result = check_tensor(alone, point, engine, tol, seed=seed, localise=False, modes=modes, order=order)
        except GradspecError:
            continue
        if result.verdict is Verdict.FAIL:
            bad = [q for q in result.quantities if q.verdict is Verdict.FAIL]
            kind = CulpritKind.FORWARD if bad and bad[0].role == Role.VALUE else CulpritKind.RULE
            detail = f"{bad[0].name}: {bad[0].note}" if bad else result.message
            label = graph.label(i)
            return Culprit(step.op, kind, label, message=f"{step.op} at column {step.col} ({text}) fails on its own: {detail}")
    return None


def _const_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"({value.numerator}/{value.denominator})"
