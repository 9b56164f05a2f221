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

import functools
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import mpmath
import numpy as np

from gradspec.casefile.model import Case, Point, TensorPoint, TensorSpec
from gradspec.checks.elements import JACOBIAN_LIMIT, Kernels, jacobian_size, judge, seeded
from gradspec.checks.expression import with_modes
from gradspec.checks.modes import mode_quantities
from gradspec.diagnose.lowered import scalar_culprit
from gradspec.engines import call
from gradspec.engines.protocol import FLOAT32_EPS, FLOAT32_MAX, Engine, float_range
from gradspec.engines.tensor import TensorOutcome
from gradspec.errors import DomainError, GradspecError
from gradspec.graph.tensor import TensorGraph, build_tensor
from gradspec.lang.expr import Apply, Name, Node, Num, parse
from gradspec.modes import Mode, asked
from gradspec.ops.linalg_rows import project, sign_notes, structures
from gradspec.reference.conditioning import LIMIT, Sums, add, direction_sums, input_sums, magnitudes
from gradspec.reference.precision import CONDITIONED, REBUILT
from gradspec.reference.tensor import TensorExact, exact_tensor

if TYPE_CHECKING:
    from gradspec.reference.ball import BallExact
from gradspec.results import (
    CheckResult,
    Culprit,
    CulpritKind,
    Quantity,
    Role,
    Tolerance,
    Verdict,
    worst,
)

__all__ = ["COTANGENTS", "check_tensor", "run_case"]

COTANGENTS = 2  # seeded random cotangents per draw (one where the output is one element)



def run_case(case: Case, point: Point | TensorPoint | None, engine: Engine) -> CheckResult:
    """The tensor kind's run: one draw of ``case`` on ``engine``."""
    assert isinstance(case.spec, TensorSpec) and isinstance(point, TensorPoint)
    return check_tensor(case.spec.graph, point.arrays(), engine, case.tolerance, seed=point.seed, kink=case.kink,
                        modes=asked(case.modes, engine.capabilities), order=case.order)


def check_tensor(graph: TensorGraph, point: Mapping[str, Any], engine: Engine, tol: Tolerance, *, seed: int = 0,
                 kink: str | None = None, localise: bool = True, modes: frozenset[Mode] = frozenset(),
                 order: int = 1, conditioned: bool = False, read_from: Mapping[str, Any] | None = None) -> CheckResult:
    """Check ``graph`` at ``point`` (input -> array of Fractions) on ``engine``; ``modes`` and ``order``
    add forward-mode and higher-order quantities (:mod:`gradspec.checks.modes`). ``conditioned``: the
    engine computes the graph by an algorithm of its own (a user's function, one library kernel), so a
    quantity passes within its conditioning bound (:mod:`gradspec.reference.conditioning`), and what the
    graph's own spelling loses beyond that is imprecise. ``read_from``: the float64 arrays whose shortest
    decimals the point is (a user's floats), given to the engine as they are."""
    base: dict[str, Any] = {"expression": graph.program.source, "point": {}, "engine": engine.name, "kind": "tensor"}
    try:
        ref = exact_tensor(graph, point, read_from=read_from)
    except DomainError as exc:
        return CheckResult(**base, verdict=Verdict.ERROR, message=exc.message)
    floats = dict(read_from) if read_from is not None else \
        {n: np.asarray(np.vectorize(float, otypes=[float])(np.asarray(v, dtype=object)), dtype=float)
         for n, v in point.items()}
    reason = _unrepresentable(engine, floats) or _ill_conditioned(ref, engine.eps)
    if reason:
        return CheckResult(**base, verdict=Verdict.SKIP, message=reason)
    size = math.prod(graph.shape)
    # A one-element output's VJP is its gradient times the cotangent: one non-unit cotangent checks the
    # backward and its scaling by the cotangent, and the Jacobian's one row is the gradient with the unit
    # cotangent of loss.backward() (tinygrad folds a product with 1 differently).
    vjps = 1 if size == 1 else COTANGENTS
    cotangents = list(seeded(graph.shape, seed, vjps))
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
    sums = conditioning(graph, point, ref, cotangents, vjps) if conditioned else None
    kernels = Kernels(graph, point, ref.value_floats, engine.eps)
    quantities = _compare(graph, ref, outcome, cotangents, vjps, engine.eps, tol, kink, sums, kernels)
    verdict = worst([q.verdict for q in quantities])
    shapes = ", ".join(f"{n}{list(s)}" for n, s in graph.shapes.items())
    named = [n for n, _ in graph.intermediates]
    message = "; ".join([f"inputs {shapes}; cotangent seed {seed}" + (f"; full Jacobian compared ({size} rows)" if rows else ""),
                         *sign_notes(graph.steps),
                         *([f"intermediates not compared: {', '.join(named)} (a tensor case compares its inputs' "
                            "gradients)"] if named else [])])
    if ref.kinks and kink is None:
        message = "; ".join(filter(None, [message, "at a kink not declared by the case: the op table's convention applies"]))
    result = CheckResult(**base, verdict=verdict, quantities=tuple(quantities), kinks=ref.kinks, message=message,
                         radius=ref.radius)
    if modes or order >= 2:
        result = with_modes(result, *mode_quantities(graph, point, engine, tol, modes, order, seed, ref.kinks,
                                                     conditioned=conditioned))
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


def _ill_conditioned(ref: TensorExact | BallExact, eps: float) -> str | None:
    """A matrix a linear-algebra op factors whose condition number is beyond what the engine's precision
    resolves (more than 1/eps), or a spectrum whose spacing is (its largest magnitude over its smallest
    spacing beyond 1/eps): the answer may lose every digit, so it is reported, not judged."""
    for where, cond, what in getattr(ref, "conditions", ()):
        if cond * eps > 1:
            return f"{what} beyond 1/eps = {1 / eps:.3g} of the engine's precision, in {where}; not judged"
    return None


def _compare(graph: TensorGraph, ref: TensorExact | BallExact, outcome: TensorOutcome, cotangents: list[Any], vjps: int,
             eps: float, tol: Tolerance, kink: str | None, sums: Sums | None = None,
             kernels: Kernels | None = None) -> list[Quantity]:
    """The value, the first ``vjps`` cotangents' VJPs, and the Jacobian from the one-hot cotangents after them."""
    rows = len(cotangents) - vjps
    value = ref.value_floats

    def bounds(label: str, exact: Any, rounding: Any, rebuilt: Any, order: int, unknown: Any = 0.0,
               **site: Any) -> tuple[Any, Any]:
        """(precision bound, rebuilt allowance): the graph's, or the function's conditioning bound and
        then what the graph's own spelling loses (see gradspec.reference.conditioning); ``site``: the
        quantity's directions, for what an engine's own kernel of an op loses (``TensorOp.rebuilt``).
        ``unknown``: each exact element's radius, where the reference is a ball: an engine within it of
        the midpoint cannot be told wrong (an element that cancels below the radius, as softmax's gradient
        at logits hundreds apart, whose exact value is e^-250 and whose ball is 1e-39 wide)."""
        bound = None if sums is None else sums.bound(label, exact, order, eps)
        if kernels:
            rebuilt = rebuilt + kernels.lost(exact, order, **site)
        return (rounding + unknown, rebuilt) if bound is None else (bound + unknown, rounding + rebuilt)

    why = CONDITIONED if sums is not None else REBUILT
    allowed, lost = bounds("value", value, eps * ref.value_rounding, eps * np.asarray(ref.value_lost), 0,
                           ref.value_radius)
    out = [judge("value", Role.VALUE, outcome.value, ref.value, value, allowed, tol, eps=eps, rebuilt=lost, why=why)]
    # An input an op reads through a structure (cholesky's symmetric matrix, a triangular factor) is
    # judged on that structure: both gradients projected onto it (see gradspec.ops.linalg_rows.READS).
    held = structures(graph.steps, graph.differentiable)

    def onto(name: str, x: Any) -> Any:
        return x if x is None or name not in held else project(held[name], x)

    for k in range(vjps):
        grad = ref.vjp(cotangents[k])
        ranges = ref.subgradient_range(cotangents[k]) if ref.kinks else None
        for name, _ in graph.differentiable:
            span = ranges.get(name) if ranges else None
            got = outcome.grads[k].get(name)
            allowed, lost = bounds(f"{name} (vjp{k})", grad.floats[name], eps * grad.rounding[name],
                                   eps * grad.rebuilt[name], 1, grad.radius.get(name, 0.0), cotangent=cotangents[k],
                                   wrt=name)
            out.append(judge(f"{name} (vjp{k})", Role.INPUT, onto(name, None if got is None else np.asarray(got, dtype=float)),
                              onto(name, grad.exact[name]), onto(name, grad.floats[name]),
                              onto(name, allowed), tol, span, kink, grad.copies.get(name, ()),
                              value, eps=eps, rebuilt=onto(name, lost), why=why))
    if rows:
        grads = [ref.vjp(c) for c in cotangents[vjps:]]
        for name, _ in graph.differentiable:
            engine_rows: list[Any] = [outcome.grads[vjps + r].get(name) for r in range(rows)]
            stacked = None if any(g is None for g in engine_rows) or len({np.shape(g) for g in engine_rows}) > 1 \
                else np.stack(engine_rows).reshape((*graph.shape, *np.shape(engine_rows[0])))
            shape = (*graph.shape, *grads[0].exact[name].shape)
            exact = np.stack([g.exact[name] for g in grads]).reshape(shape)
            floats = np.stack([g.floats[name] for g in grads]).reshape(shape)
            allowed = np.stack([g.rounding[name] for g in grads]).reshape(shape)
            rebuilt = np.stack([g.rebuilt[name] for g in grads]).reshape(shape)
            unknown = np.stack([np.broadcast_to(g.radius.get(name, 0.0), g.floats[name].shape) for g in grads])
            allowed, lost = bounds(f"{name} (jacobian)", floats, eps * allowed, eps * rebuilt, 1, unknown.reshape(shape),
                                   wrt=name, whole=True)
            out.append(judge(f"{name} (jacobian)", Role.INPUT, onto(name, stacked), onto(name, exact), onto(name, floats),
                              onto(name, allowed), tol, out_axes=len(graph.shape), eps=eps,
                              rebuilt=onto(name, lost), why=why))
    return out


def conditioning(graph: TensorGraph, point: Mapping[str, Any], ref: TensorExact | BallExact, cotangents: list[Any],
                 vjps: int) -> Sums | None:
    """The ``S(q)`` of the value, each VJP and the Jacobian of a check; None at a kink, beyond
    :data:`LIMIT` moved elements, or where a move leaves an op's domain (the graph's bound then stands)."""
    names = [n for n, _ in graph.differentiable]
    rows = len(cotangents) - vjps
    seeded = cotangents[:vjps]
    inputs = sum(np.asarray(point[n], dtype=object).size for n in names)
    if ref.kinks or inputs + sum(np.size(c) for c in seeded) > LIMIT:
        return None

    def at(r: TensorExact | BallExact, cs: Sequence[Any], first: int = 0) -> dict[str, Any]:
        out = {}
        for k, c in enumerate(cs, start=first):
            g = r.vjp(c).exact
            out.update({f"{n} (vjp{k})": g[n] for n in names})
        return out

    def everything(p: Mapping[str, Any]) -> dict[str, Any]:
        r = exact_tensor(graph, p)
        out = {"value": r.value, **at(r, seeded)}
        if rows:
            out.update({f"{n} (jacobian)": np.stack([r.vjp(c).exact[n] for c in cotangents[vjps:]])
                       .reshape((*graph.shape, *np.shape(r.vjp(cotangents[0]).exact[n]))) for n in names})
        return out

    terms = input_sums(everything, point, names)
    if terms is None:
        return None
    for k, c in enumerate(seeded):  # a VJP moves with its cotangent's elements too
        terms = add(terms, direction_sums(functools.partial(at, ref, first=k), [c]))
    return Sums(terms, inputs + math.prod(graph.shape))


def _localise(graph: TensorGraph, ref: TensorExact | BallExact, engine: Engine, tol: Tolerance, seed: int,
              modes: frozenset[Mode], order: int) -> Culprit | None:
    """The first op, in graph order, that fails when checked alone at its exact operands; or that overflows:
    whose exact value is beyond the engine's float range, where no float computation of the graph as
    written keeps it."""
    limit = float_range(engine)
    for i, step in enumerate(graph.steps):
        if step.op is None:
            continue
        values = np.asarray(ref.values_of(i), dtype=object).ravel()
        with np.errstate(over="ignore"):  # what it looks for: a value whose float is inf
            beyond = values[~(np.abs(magnitudes(values)) < limit)]
        if beyond.size:
            top = max(beyond, key=lambda v: abs(mpmath.mpf(v)))
            return Culprit(step.op, CulpritKind.FORWARD, graph.label(i), message=(
                f"{step.op} at column {step.col} overflows: its exact value reaches {mpmath.nstr(mpmath.mpf(top), 4)}, "
                f"beyond the engine's float range; the expression as written cannot be computed in its floats here"))
        if not graph.varying[i]:
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
