"""Checking a function under test: a user's own differentiable function against a declared reference.

Per draw and dtype, the tensor check (:mod:`gradspec.checks.tensor`) judges the function's value, its
VJPs with seeded random cotangents and, when small, its full Jacobian against the exact derivatives of
the ``reference`` expression. Then the properties that finite-difference checkers leave out, each a
named quantity with its own verdict, from one more forward and five backward passes (cotangents u, v,
a*u + b*v, zero, and u again):

- ``linear in the cotangent``: VJP(a*u + b*v) = a*VJP(u) + b*VJP(v), a = 3/4, b = -5/4 (a + b != 1, so
  a backward that ignores its cotangent fails), within rounding; where only rounding inside the function
  breaks the sum, VJP(2u) = 2*VJP(u) exactly says so;
- ``zero cotangent``: a zero cotangent gives zero gradients;
- ``repeatable``: two identical backward passes agree within the case's tolerance;
- ``gradient shapes and dtypes``: each gradient has its input's shape and dtype, and data inputs get none;
- ``inputs unmodified``: the function does not write into its inputs.

The combinations are exact in binary (the cotangents are multiples of 1/1024), so the allowance for
linearity is the rounding of the three VJPs in the engine's precision, element by element: each VJP's
rounding bound from the exact tape (:mod:`gradspec.reference.tensor`), which follows the magnitudes of
the terms that cancel to form the element rather than the element itself, plus the rounding of
``a*VJP(u) + b*VJP(v)`` and the case's tolerance.

A function case checks ``[value, vjp]`` unless its ``check:`` list opts in to more (a user's function need
not have forward mode): ``jvp``, ``hvp``, ``jvp-of-jvp``, ``jacobian`` and ``order: N`` are then compared
as for a tensor case (:mod:`gradspec.checks.modes`), on torch and JAX, through the library's own transforms
applied to the function. A mode the function does not have (no ``jvp`` on a ``torch.autograd.Function``,
a ``jax.custom_vjp`` under forward mode), as its adapter reads from what the function defines, is
skipped with the reason; a mode it has and gets wrong fails. An ``hvp`` of zeros where the exact one is not says the backward is not differentiable.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradspec.casefile.model import Case, FunctionSpec, Point, TensorPoint
from gradspec.checks.elements import cotangent
from gradspec.checks.tensor import check_tensor
from gradspec.engines import call
from gradspec.engines.function import FunctionEngine, Probe, family, import_function
from gradspec.engines.protocol import Engine
from gradspec.engines.resolve import resolve
from gradspec.engines.targets import accept
from gradspec.errors import DomainError, EngineError
from gradspec.graph.tensor import TensorGraph, build_tensor
from gradspec.lang.expr import parse
from gradspec.lang.numbers import exact_number
from gradspec.modes import DEFAULT, Mode
from gradspec.reference.tensor import exact_tensor
from gradspec.results import CheckResult, Culprit, CulpritKind, Quantity, Role, Tolerance, Verdict, without_dtype, worst

__all__ = ["LINEAR", "check_function", "check_graph_function", "run_case"]

LINEAR = (0.75, -1.25)  # a, b of the linearity property
_FIRST = {Role.VALUE: 0, Role.PROPERTY: 1}  # which failure a culprit names: a wrong value, then a property


def run_case(case: Case, point: Point | TensorPoint | None, engine: Engine) -> CheckResult:
    """The function kind's run: one draw of ``case`` on ``engine``, in each of the case's dtypes."""
    spec = case.spec
    assert isinstance(spec, FunctionSpec) and isinstance(point, TensorPoint)
    targets = dict(spec.functions)
    fam = family(engine)

    def stop(verdict: Verdict, message: str) -> CheckResult:
        return CheckResult(expression=spec.graph.program.source, point={}, engine=engine.name, verdict=verdict,
                           kind="function", message=message)

    if fam not in targets:
        return stop(Verdict.SKIP, f"the case gives no function for {fam}")
    try:  # the one place a case's function is imported: running the case runs the code it names
        fn = accept(import_function(targets[fam], spec.base), fam, targets[fam])
    except EngineError as exc:
        return stop(Verdict.ERROR, exc.message)
    explicit = [p for p in engine.name.split(":")[1:] if p in ("float32", "float64")]
    # a Value class computes in Python floats: its one dtype is float64, whatever the case lists
    dtypes = explicit or (["float64"] if fam == "builtin" else list(spec.dtypes))
    engines = [engine if explicit or _dtype(engine) == d else _at_dtype(engine, d) for d in dtypes]
    return check_graph_function(spec.graph, point.arrays(), engines, fn, targets[fam], case.tolerance, seed=point.seed,
                                modes=_modes(case.modes), order=case.order, kink=case.kink)


def _modes(check: Sequence[Mode | str] | None) -> frozenset[Mode]:
    """The modes beyond the value and reverse mode that a function check compares: those its ``check:``
    list names. By default none: a user's function need not have forward mode."""
    return frozenset(Mode(m) for m in (DEFAULT if check is None else check)) - {Mode.VALUE, Mode.VJP}


def _at_dtype(engine: Engine, dtype: str) -> Engine:
    return resolve(f"{without_dtype(engine.name)}:{dtype}")


def check_function(fn: Callable[..., Any], reference: str, inputs: Mapping[str, Any], *, engine: str | Engine = "torch",
                   data: Sequence[str] = (), tolerance: Tolerance | None = None, seed: int = 0,
                   check: Sequence[Mode | str] | None = None, order: int = 1, **tolerances: float) -> CheckResult:
    """Check ``fn``, a differentiable function of ``inputs`` (positionally, in their order), against the
    exact derivatives of ``reference``; ``data`` names inputs that are not differentiated. ``check`` and
    ``order`` are a case file's keys: the modes compared (default ``["value", "vjp"]``; add ``"jvp"``,
    ``"hvp"``, ``"jvp-of-jvp"``, ``"jacobian"``) and nested derivatives up to ``order``.

    ``engine`` is the library ``fn`` takes tensors of: ``torch`` (or ``torch:float32``), ``jax``, or
    ``builtin`` (or a Value class) for a scalar function over Values. Returns a :class:`CheckResult`;
    raises :class:`~gradspec.errors.ExpressionError` for a reference that does not parse or does not
    fit the inputs' shapes.
    """
    arrays = {}
    for name, value in inputs.items():
        arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=float)
        out = np.empty(arr.shape, dtype=object)
        for index in np.ndindex(arr.shape):
            out[index] = exact_number(float(arr[index]))
        arrays[name] = out
    graph = build_tensor(parse(reference), {n: a.shape for n, a in arrays.items()}, frozenset(data))
    owner = getattr(fn, "__self__", None)  # Function.apply is bound to the user's own Function class
    label = f"{owner.__qualname__}.apply" if isinstance(owner, type) else getattr(fn, "__qualname__", None) or repr(fn)
    return check_graph_function(graph, arrays, [resolve(engine)], fn, label, tolerance or Tolerance(**tolerances),
                                seed=seed, modes=_modes(check), order=int(order))


def check_graph_function(graph: TensorGraph, point: Mapping[str, Any], engines: Sequence[Engine], fn: Callable[..., Any],
                         label: str, tol: Tolerance, *, seed: int = 0, modes: frozenset[Mode] = frozenset(),
                         order: int = 1, kink: str | None = None) -> CheckResult:
    """``fn`` at ``point`` (input -> array of Fractions) on each engine (one per dtype), as one result;
    ``modes`` and ``order`` add forward-mode and higher-order quantities (:mod:`gradspec.checks.modes`);
    ``kink`` is the case's declaration at a kink, as for a tensor case."""
    results = []
    for engine in engines:
        try:
            wrapped = FunctionEngine(engine, fn, label)
        except EngineError as exc:
            return CheckResult(expression=graph.program.source, point={}, engine=engine.name, verdict=Verdict.SKIP,
                               kind="function", message=exc.message)
        result = _explained(check_tensor(graph, point, wrapped, tol, seed=seed, localise=False, modes=modes,
                                         order=order, kink=kink, conditioned=True), wrapped)
        quantities = list(result.quantities)
        if result.verdict not in (Verdict.ERROR, Verdict.SKIP) and result.quantities:
            quantities += _properties(graph, point, wrapped, tol, seed)
        prefix = f"{_dtype(engine)}: " if len(engines) > 1 else ""
        results.append((engine, result, [Quantity(**{**q.__dict__, "name": prefix + q.name}) for q in quantities]))
    # a mode the function does not have is said in the message; it does not turn the verdict (as for a tensor case)
    verdict = worst([r.verdict for _, r, _ in results] + [q.verdict for _, _, qs in results for q in qs
                                                           if not (q.role is Role.DERIVATIVE and q.verdict is Verdict.SKIP)])
    every = tuple(q for _, _, qs in results for q in qs)
    messages = [f"{_dtype(e)}: {r.message}" if len(results) > 1 else r.message for e, r, _ in results if r.message]
    out = CheckResult(expression=graph.program.source, point={}, engine=engines[0].name, verdict=verdict,
                      quantities=every, kind="function", message="; ".join(messages),
                      kinks=results[0][1].kinks)
    if verdict is Verdict.FAIL:
        # a failing property names the bug more precisely than the element-wise comparison it explains
        bad = sorted((q for q in every if q.verdict is Verdict.FAIL), key=lambda q: _FIRST.get(q.role, 2))
        what = f"{bad[0].name}: {bad[0].note}" if bad else out.message
        kind = CulpritKind.FORWARD if bad and bad[0].role is Role.VALUE else CulpritKind.RULE
        out = CheckResult(**{**out.__dict__, "culprit": Culprit(label, kind, label, message=f"{label} is wrong: {what}")})
    return out


_NOT_DIFFERENTIABLE = ("the gradient does not move with the inputs: the backward is not differentiable (a .detach() "
                       "or stop_gradient in it, or a computation outside the library's autodiff)")


def _explained(result: CheckResult, engine: FunctionEngine) -> CheckResult:
    """``result`` with what a zero second derivative says about a function: a Hessian-vector product (or
    a higher derivative) of zeros where the exact one is not means the backward is not differentiable."""
    # what a zero means in the adapter's library (torch.func and a Function's jvp rule)
    notes: dict[str, str] = getattr(engine.base, "zero_notes", {})
    quantities = []
    for q in result.quantities:
        zeros = q.verdict is Verdict.FAIL and "pattern: all zeros" in q.note
        if zeros and q.name.startswith(("hvp", "order ")):
            q = dataclasses.replace(q, note=f"{q.note}; {_NOT_DIFFERENTIABLE}")
        elif zeros and q.name in notes:
            q = dataclasses.replace(q, note=f"{q.note}; {notes[q.name]}")
        quantities.append(q)
    return dataclasses.replace(result, quantities=tuple(quantities))


def _dtype(engine: Engine) -> str:
    return "float32" if engine.eps > 1e-10 else "float64"


def _properties(graph: TensorGraph, point: Mapping[str, Any], engine: FunctionEngine, tol: Tolerance,
                seed: int) -> list[Quantity]:
    floats = {n: np.asarray(np.vectorize(float, otypes=[float])(np.asarray(v, dtype=object)), dtype=float)
              for n, v in point.items()}
    rng = random.Random(seed ^ 0x5EED)
    u, v = cotangent(graph.shape, rng), cotangent(graph.shape, rng)
    a, b = LINEAR
    cotangents = [u, v, a * u + b * v, np.zeros(graph.shape), u, 2 * u]
    called = call.guarded(lambda: engine.probe(graph, floats, cotangents))
    if not called.ok:  # the value and the VJPs came back; these five passes did not
        return [_quantity("properties", called.verdict or Verdict.FAIL, called.message)]
    probe = called.get()
    differentiable = [n for n, _ in graph.differentiable]
    try:
        ref = exact_tensor(graph, point)
        grads = [ref.vjp(c) for c in cotangents[:3]]
        with np.errstate(over="ignore"):  # near the top of the float range: the largest float, times eps
            terms = {n: engine.eps * np.minimum(sum(abs(k) * (g.rounding[n] + g.rebuilt[n])
                                                    for k, g in zip((a, b, 1), grads, strict=True)), np.finfo(float).max)
                     for n in differentiable}
    except DomainError:  # the value check already says so
        terms = {}
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf in a gradient that overflowed: judged below
        return [_linear(probe, differentiable, engine.eps, tol, terms), _zero(probe, differentiable, tol),
                _repeat(probe, differentiable, tol), _kinds(probe, graph), _unmodified(probe)]


def _quantity(name: str, verdict: Verdict, note: str, err: float | None = None, bound: float | None = None,
              index: tuple[int, ...] | None = None) -> Quantity:
    return Quantity(name, Role.PROPERTY, None, None, None, err, None, bound, verdict, note=note, index=index)


def _worst(name: str, pairs: list[tuple[str, Any, Any]], tol: Tolerance, describe: str) -> Quantity:
    """The worst element over ``(input, error, allowed)`` arrays: pass when every error is within its bound."""
    worst_ratio, at = -1.0, None
    for n, err, bound in pairs:
        # NaN is no agreement (a NaN gradient for a zero cotangent), and a NaN bound allows nothing
        err, bound = np.where(np.isnan(err), np.inf, err), np.where(np.isnan(bound), 0.0, bound)
        with np.errstate(invalid="ignore", over="ignore"):  # inf / inf: an overflow both sides share
            ratio = np.where(bound > 0, err / np.where(bound > 0, bound, 1), np.where(err > 0, np.inf, 0))
        ratio = np.nan_to_num(ratio, nan=0.0)
        if ratio.size and float(np.max(ratio)) > worst_ratio:
            k = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape))
            worst_ratio, at = float(ratio[k]), (n, k, float(err[k]), float(bound[k]))
    if at is None:
        return _quantity(name, Verdict.SKIP, "no gradients to compare")
    n, k, err, bound = at
    verdict = Verdict.FAIL if worst_ratio > 1 else Verdict.PASS
    note = f"{describe}; worst: {n}{list(k)} off by {err:.3g} (allowed {bound:.3g})" if verdict is Verdict.FAIL else ""
    return _quantity(name, verdict, note, err, bound, k)


def _missing(probe: Probe, names: list[str]) -> str:
    gone = [n for n in names for g in probe.grads if g.get(n) is None]
    return f"no gradient returned for {gone[0]}" if gone else ""


def _linear(probe: Probe, names: list[str], eps: float, tol: Tolerance, terms: Mapping[str, Any]) -> Quantity:
    """``terms``: per input, the rounding bound of VJP(w) + |a|*VJP(u) + |b|*VJP(v) from the exact tape.

    That bound is the reference's spelling's: a function that loses digits inside (a difference of two
    halves of the cotangent: logaddexp(x, -x) at 1e-5 in float32) can miss it by as much as its VJPs miss
    the exact ones, which their own comparisons judge. What rounding cannot do is break homogeneity:
    doubling the cotangent doubles every rounded product and sum exactly, so VJP(2u) = 2*VJP(u) bit for
    bit in a backward linear in its cotangent, and a term that does not scale with it breaks that. Where
    only the sum departs from linearity and doubling holds (and a zero cotangent gives zero), this
    property passes, saying so."""
    name = "linear in the cotangent"
    if _missing(probe, names):
        return _quantity(name, Verdict.SKIP, _missing(probe, names))
    a, b = LINEAR
    pairs = []
    for n in names:
        gu, gv, gw = probe.grads[0][n], probe.grads[1][n], probe.grads[2][n]
        if not gu.shape == gv.shape == gw.shape:
            return _quantity(name, Verdict.FAIL, f"the gradients of {n} change shape with the cotangent")
        if not all(np.isfinite(g).all() for g in (gu, gv, gw)):
            return _quantity(name, Verdict.SKIP, f"not judged: a gradient of {n} is not finite (its VJPs are "
                                                 "compared with the exact ones above)")
        rhs = a * gu + b * gv
        if n in terms and np.shape(terms[n]) == gu.shape:
            # each VJP within its own bound, then a*gu + b*gv rounded twice
            allowed = terms[n] + eps * (np.abs(a * gu) + np.abs(b * gv))
        else:
            allowed = 8 * eps * (np.abs(a * gu) + np.abs(b * gv) + np.abs(gw))
        pairs.append((n, np.abs(gw - rhs), tol.atol + tol.rtol * np.abs(rhs) + allowed))
    same = all(np.array_equal(probe.grads[0][n], probe.grads[k][n]) for n in names for k in (1, 2))
    why = "pattern: ignored cotangent: every cotangent gives the same gradient" if same else \
        "the backward adds a term that does not scale with its cotangent"
    judged = _worst(name, pairs, tol, f"VJP({a}*u + {b}*v) != {a}*VJP(u) + {b}*VJP(v); {why}")
    if judged.verdict is Verdict.FAIL and not same and _homogeneous(probe, names):
        return _quantity(name, Verdict.PASS, "VJP(2u) = 2*VJP(u) exactly and a zero cotangent gives zero: the "
                                             "sum's departure is rounding inside the function, which the VJPs' own "
                                             "comparisons judge", judged.abs_error, judged.tolerance, judged.index)
    return judged


def _homogeneous(probe: Probe, names: list[str]) -> bool:
    """Whether doubling the cotangent doubled every gradient exactly, and a zero one gave zeros."""
    return all(probe.grads[k].get(n) is not None for k in (3, 5) for n in names) and all(
        np.array_equal(probe.grads[5][n], 2 * np.asarray(probe.grads[0][n])) and not np.any(probe.grads[3][n])
        for n in names)


def _zero(probe: Probe, names: list[str], tol: Tolerance) -> Quantity:
    name = "zero cotangent"
    pairs = [(n, np.abs(probe.grads[3][n]), np.full(np.shape(probe.grads[3][n]), tol.atol)) for n in names
             if probe.grads[3].get(n) is not None]
    undefined = any(np.isnan(np.asarray(err)).any() for _, err, _ in pairs)
    return _worst(name, pairs, tol, "a zero cotangent gives NaN gradients (0 times an infinite intermediate, or "
                                    "a division by the cotangent)" if undefined else
                  "a zero cotangent gives nonzero gradients")


def _repeat(probe: Probe, names: list[str], tol: Tolerance) -> Quantity:
    name = "repeatable"
    if _missing(probe, names):
        return _quantity(name, Verdict.SKIP, _missing(probe, names))
    pairs = []
    for n in names:
        first, again = probe.grads[0][n], probe.grads[4][n]
        if first.shape != again.shape:
            return _quantity(name, Verdict.FAIL, f"two identical backward passes give {n} different shapes")
        pairs.append((n, np.abs(first - again), tol.atol + tol.rtol * np.abs(first)))
    return _worst(name, pairs, tol, "two identical backward passes disagree (a nondeterministic backward)")


def _kinds(probe: Probe, graph: TensorGraph) -> Quantity:
    name = "gradient shapes and dtypes"
    problems = [f"data input {n} received a gradient" for n in probe.data_grads] + probe.raw_shapes
    for kinds in probe.kinds[:1]:
        for n, _ in graph.differentiable:
            shape = tuple(graph.shapes[n])
            if n not in kinds:
                problems.append(f"no gradient for {n}")
                continue
            got_shape, got_dtype = kinds[n]
            if got_shape != shape:
                problems.append(f"the gradient of {n} has shape {list(got_shape)}, the input {list(shape)}")
            if got_dtype != probe.dtypes[n]:
                problems.append(f"the gradient of {n} is {got_dtype}, the input {probe.dtypes[n]}")
    return _quantity(name, Verdict.FAIL if problems else Verdict.PASS, "; ".join(problems))


def _unmodified(probe: Probe) -> Quantity:
    name = "inputs unmodified"
    if probe.mutated:
        return _quantity(name, Verdict.FAIL, f"the function modified {', '.join(probe.mutated)} in place")
    return _quantity(name, Verdict.PASS, "")
