"""Checking forward mode and higher order: the quantities a case's ``check:`` list adds to a check.

For one point (or draw) the directions are seeded: tangents ``u`` and ``w`` per differentiable input
and a cotangent ``v`` of the output's shape, nonzero multiples of 1/1024 in [-1, 1] (exact in float32).
Each quantity is compared element by element with its exact reference (:mod:`gradspec.reference.modes`)
within ``atol + rtol*|exact|`` plus the rounding allowance of the engine's precision:

    jvp                J u
    hvp x              ∇²(v·f) u for input x, reverse over reverse; "(fwd-rev)": forward over reverse
    jvp-of-jvp         ∂²f[u, w], forward over forward
    jacobian x (fwd)   the Jacobian by forward mode
    order k            D^k(v·f)[u^k], nested differentiation
    mode consistency   v·(J u) against (Jᵀ v)·u from the engine's own two modes

A mode the engine does not declare is a skip with the reason; a mode it declares and fails is a failure.
At a kink forward-mode and higher derivatives are not defined, and these quantities skip saying so.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from gradspec.checks.elements import JACOBIAN_LIMIT, Kernels, cotangent, jacobian_size, judge, seeded
from gradspec.engines import call
from gradspec.engines.protocol import FLOAT32_EPS, Engine, float_range
from gradspec.errors import DomainError, ExpressionError
from gradspec.graph.ir import Graph
from gradspec.graph.tensor import TensorGraph, build_tensor
from gradspec.modes import ORDER, Ask, Derivatives, Mode, ModeRow, needs, rows
from gradspec.ops.linalg_rows import project, structures
from gradspec.reference.conditioning import LIMIT, Sums, add, direction_sums, input_sums
from gradspec.reference.modes import Known, ModeReference, mode_reference
from gradspec.reference.precision import CONDITIONED, REBUILT, digits
from gradspec.reference.store import STORE
from gradspec.reference.tensor import exact_tensor
from gradspec.results import Quantity, Role, Tolerance, Verdict

__all__ = ["directions", "mode_quantities", "scalar_modes"]

_DIRECTIONS = 7919  # offsets the tangents' seed from the cotangents' of the same draw


class Found(NamedTuple):
    """The mode quantities of one check, a note for its message, and the largest radius of their exact
    values where they were computed in ball arithmetic (None otherwise)."""

    quantities: list[Quantity]
    note: str
    radius: float | None = None


def scalar_modes(graph: Graph, point: Mapping[str, Fraction], engine: Engine, tol: Tolerance,
                 modes: frozenset[Mode], order: int, kinks: Sequence[str]) -> Found:
    """:func:`mode_quantities` for a scalar expression case: its graph over 0-d inputs."""
    try:
        tensor = _as_tensor(graph)
    except ExpressionError as exc:
        return Found(_skipped(modes, order, f"not checked in these modes: {exc.message}"), "")
    arrays = {n: np.asarray(point[n], dtype=object) for n, _ in tensor.inputs}
    seed = random.Random(repr(sorted((n, str(v)) for n, v in point.items()))).randrange(2**31)
    return mode_quantities(tensor, arrays, engine, tol, modes, order, seed, kinks)


def _as_tensor(graph: Graph) -> TensorGraph:
    key = f"{graph.program.source} | {','.join(n for n, _ in graph.inputs)}"
    found: TensorGraph = STORE.lowered.get(key, lambda: build_tensor(graph.program, {n: () for n, _ in graph.inputs}))
    return found


def directions(graph: TensorGraph, modes: frozenset[Mode], order: int, seed: int) -> Ask:
    """The seeded directions of one draw: ``u`` and ``w`` per differentiable input, ``v`` for the output."""
    rng = random.Random(seed + _DIRECTIONS)
    shapes = [graph.steps[i].shape for _, i in graph.differentiable]
    # An input an op reads through a structure (cholesky's symmetric matrix) is perturbed within it.
    held = structures(graph.steps, graph.differentiable)
    names = [n for n, _ in graph.differentiable]
    u = tuple(_within(held.get(n), cotangent(s, rng)) for n, s in zip(names, shapes, strict=True))
    w = tuple(_within(held.get(n), cotangent(s, rng)) for n, s in zip(names, shapes, strict=True))
    v = seeded(graph.shape, seed, 1)[0]  # the first cotangent of the draw's VJP checks
    return Ask(modes, u, w, v, order)


def _within(structure: str | None, direction: Any) -> Any:
    return direction if structure is None else np.asarray(project(structure, direction), dtype=float)


def mode_quantities(graph: TensorGraph, point: Mapping[str, Any], engine: Engine, tol: Tolerance,
                    modes: frozenset[Mode], order: int, seed: int, kinks: Sequence[str],
                    fn: Callable[..., Any] | None = None, *, conditioned: bool = False) -> Found:
    """The quantities of ``modes`` (and ``order``) for ``graph`` at ``point`` (input -> array of
    Fractions) on ``engine``, and a message to add to the check's; ``fn`` is a user's function standing
    for the graph on the engine; ``conditioned``: judged by the function's conditioning bound
    (:mod:`gradspec.reference.conditioning`), as :func:`gradspec.checks.tensor.check_tensor` says."""
    if not modes and order < 2:
        return Found([], "")
    if kinks:
        return Found(_skipped(modes, order, f"at a kink ({', '.join(kinks)}): forward-mode and higher "
                                            "derivatives are not defined there"), "")
    out: list[Quantity] = []
    too_big: list[Quantity] = []
    runnable: set[Mode] = set()
    reach = 1
    for row in sorted(rows(modes, order), key=lambda r: (r.mode is None, r.key)):  # skips as listed before
        why = needs(row.key, engine.capabilities, engine.max_order, order)
        if why is not None:
            out.append(_skip(row.key if row.mode is not None else row.label.format(k=order), f"engine {engine.name} {why}"))
        elif row.whole and jacobian_size(graph) > JACOBIAN_LIMIT:
            too_big.append(_skip(row.key, f"the Jacobian has {jacobian_size(graph)} entries, more than {JACOBIAN_LIMIT}"))
        elif row.mode is None:
            reach = order
        else:
            runnable.add(row.mode)
    out += too_big
    if not runnable and reach < 2:
        return Found(out, "")
    ask = directions(graph, frozenset(runnable), reach, seed)
    try:
        ref = mode_reference(graph, point, ask, engine.eps)
    except DomainError as exc:
        return Found(out + _skipped(frozenset(runnable), reach, f"no exact reference: {exc.message}"), "")
    floats = {n: np.vectorize(float, otypes=[float])(np.asarray(v, dtype=object)) for n, v in point.items()}
    called = call.derivatives(engine, graph, floats, ask, fn)
    raised: frozenset[str] = frozenset()  # rows that raised on their own: failed above, not compared
    if called.ok:
        got = called.get()
    elif called.raised and len(runnable) + (reach >= 2) > 1:  # which mode raised: each asked alone
        got, failed, raised = _each_alone(engine, graph, floats, ask, fn)
        out += failed
    else:
        assert called.verdict is not None
        return Found(out + _skipped(frozenset(runnable), reach, called.message, called.verdict), "")
    sums = _conditioning(graph, point, ask, engine.eps) if conditioned else None
    kernels = Kernels(graph, point, lambda: exact_tensor(graph, point).value_floats, engine.eps)
    out += _compare(graph, ref, got, ask, engine, tol, sums, kernels, raised)
    return Found(out, f"directions seed {seed}", ref.radius)


def _each_alone(engine: Engine, graph: TensorGraph, floats: Mapping[str, Any], ask: Ask,
                fn: Callable[..., Any] | None) -> tuple[Derivatives, list[Quantity], frozenset[str]]:
    """The modes of ``ask`` asked one at a time (the same directions), after asking them together raised:
    what each computed, merged; the modes that raised on their own, failed with what they raised; and
    their rows' keys."""
    got = Derivatives()
    failed: list[Quantity] = []
    keys: set[str] = set()
    parts = [dataclasses.replace(ask, modes=frozenset({m}), order=1) for m in sorted(ask.modes)]
    parts += [dataclasses.replace(ask, modes=frozenset(), order=ask.order)] if ask.order >= 2 else []
    for part in parts:
        called = call.derivatives(engine, graph, floats, part, fn)
        if not called.ok:
            assert called.verdict is not None
            failed += _skipped(part.modes, part.order, called.message, called.verdict)
            keys |= {m.value for m in part.modes} | ({ORDER} if part.order >= 2 else set())
            continue
        alone = called.get()
        for f in dataclasses.fields(Derivatives):
            mine, theirs = getattr(got, f.name), getattr(alone, f.name)
            if isinstance(mine, dict):
                mine.update(theirs)
            elif mine is None:
                setattr(got, f.name, theirs)
    return got, failed, frozenset(keys)


class _Item(NamedTuple):
    """One quantity of an :class:`Ask`: its row, label, exact quantity and degree, the input it belongs to
    (None for a whole-output one), and how to read the engine's from what it computed; ``second``: the
    row's second composition, compared only where the engine has it."""

    row: ModeRow
    label: str
    known: Known | None
    degree: int
    name: str | None
    pick: Callable[[Any], Any]
    second: bool = False


def _read(slot: str, index: int | None, got: Any) -> Any:
    """The engine's quantity in ``slot`` of what it computed, at an input or order ``index`` (None: whole)."""
    computed = getattr(got, slot)
    if computed is None or index is None:
        return computed
    return computed.get(index) if isinstance(computed, Mapping) else computed[index]


def _items(ref: ModeReference, ask: Ask, names: Sequence[str]) -> Iterator[_Item]:
    """Every quantity of ``ask``, in the mode table's order: one per order for ``order: N``, one per input
    for a per-input row (its second composition beside it), else one."""
    for row in rows(ask.modes, ask.order):
        known = getattr(ref, row.slot)
        if row.mode is None:  # one quantity per order
            for k in ask.orders:
                yield _Item(row, row.label.format(k=k), None if known is None else known[k], k, None,
                            functools.partial(_read, row.slot, k))
        elif "{input}" not in row.label:
            yield _Item(row, row.label, known, row.degree, None, functools.partial(_read, row.slot, None))
        else:
            for i, name in enumerate(names):
                yield _Item(row, row.label.format(input=name), known[i], row.degree, name,
                            functools.partial(_read, row.slot, i))
                if row.second:
                    yield _Item(row, row.second_label.format(input=name), known[i], row.degree, name,
                                functools.partial(_read, row.second, i), second=True)


def _conditioning(graph: TensorGraph, point: Mapping[str, Any], ask: Ask, eps: float) -> Sums | None:
    """``S(q)`` of every quantity of ``ask``: over the inputs' elements and the directions' (u, w, v)."""
    names = [n for n, _ in graph.differentiable]
    directions = [*ask.u, *ask.w, ask.v]
    inputs = sum(np.asarray(point[n], dtype=object).size for n in names)
    if inputs + sum(int(np.size(d)) for d in directions) > LIMIT:
        return None

    def exact(r: ModeReference) -> dict[str, Any]:
        return {item.label: item.known.exact for item in _items(r, ask, names) if item.known is not None}

    terms = input_sums(lambda p: exact(mode_reference(graph, p, ask, eps)), point, names)
    if terms is None:
        return None
    n = len(names)

    def along(ds: Sequence[Any]) -> dict[str, Any]:
        moved = dataclasses.replace(ask, u=tuple(ds[:n]), w=tuple(ds[n:2 * n]), v=ds[2 * n])
        return exact(mode_reference(graph, point, moved, eps))

    return Sums(add(terms, direction_sums(along, directions)), inputs + math.prod(graph.shape))


def _compare(graph: TensorGraph, ref: ModeReference, got: Any, ask: Ask, engine: Engine,
             tol: Tolerance, sums: Sums | None = None, kernels: Kernels | None = None,
             raised: frozenset[str] = frozenset()) -> list[Quantity]:
    names = [n for n, _ in graph.differentiable]
    held = structures(graph.steps, graph.differentiable)
    out: list[Quantity] = []
    eps, limit = engine.eps, float_range(engine)
    smallest = float(np.finfo(np.float32 if eps >= FLOAT32_EPS else float).tiny)  # the smallest normal number
    # Below it an engine may flush to zero (DAZ/FTZ in vectorised kernels): a few of them are allowed in
    # absolute terms, beside the relative rounding bound, where the exact value is itself below it (a
    # floor above a normal exact value would let 0 pass for it). A normal quantity an engine forms as a sum
    # of terms loses each term it flushes, every one below the smallest normal number: where the quantity is
    # within a few of them its terms may all be (JAX's rsqrt'' as -0.5*(r'/x - r/x**2), r' = -0.5*r/x,
    # along directions that bring it to 1.2e-38: both terms subnormal, XLA's CPU flushes them, 0 comes
    # back). The same floor, for a normal exact value, as digits lost (imprecise), never a pass.
    floor = 16 * smallest

    def one(label: str, computed: Any, known: Known | None, key: str, degree: int, site: dict[str, Any]) -> None:
        if known is None:
            return
        bound = None if sums is None else sums.bound(label, known.floats, degree, eps)
        if kernels:  # what an engine's own kernel of an op loses (TensorOp.rebuilt)
            known = dataclasses.replace(known, rebuilt=np.asarray(known.rebuilt, dtype=float)
                                        + kernels.lost(known.floats, degree, **site))
        if bound is not None:  # the function's conditioning; what the reference's spelling loses: imprecise
            known = dataclasses.replace(known, allowance=bound, rebuilt=np.asarray(known.allowance, dtype=float)
                                        + np.asarray(known.rebuilt, dtype=float))
        if computed is None:
            if key not in raised:  # a row that raised on its own is failed already, with what it raised
                out.append(_skip(label, got.refused.get(key, "the engine did not compute it")))
            return
        exact = known.floats
        with np.errstate(invalid="ignore"):  # beyond the engine's float range, IEEE arithmetic gives inf
            exact = np.where(np.abs(exact) > limit, np.sign(exact) * np.inf, exact)
        allowance = np.asarray(known.allowance, dtype=float) + np.where(np.abs(exact) < smallest, floor, 0.0)
        rebuilt = np.asarray(known.rebuilt, dtype=float) + np.where(np.abs(exact) < smallest, 0.0, floor)
        given = np.asarray(computed, dtype=float)
        if known.peak is not None and given.shape == np.shape(allowance):
            # A value it is computed from is beyond the float range (or below its smallest normal number):
            # an engine's intermediate step overflows (or underflows) there, however representable the
            # result, and inf or nan is what IEEE gives. An underflow may also lose the relative precision:
            # digits lost that the quantity itself does not lose, so within it the verdict is imprecise
            # (tanh''(1e-300) = -2e-300 returned as 0), never a pass.
            # For a finite quantity of the engine's normal range the allowance stays finite: its inf or
            # nan is then digits lost to the intermediate (imprecise), never a pass.
            under = known.low < smallest
            normal = np.isfinite(exact) & (np.abs(exact) >= smallest)
            lost = ((known.peak > limit) | under) & ~np.isfinite(given)
            allowance = np.where(lost & ~normal, np.inf, allowance)
            rebuilt = np.where(under, rebuilt + np.abs(exact), rebuilt)
            rebuilt = np.where(lost & normal, np.inf, rebuilt)
        out.append(judge(label, Role.DERIVATIVE, computed, known.exact, exact, allowance, tol, eps=eps,
                         rebuilt=rebuilt, why=REBUILT if sums is None else CONDITIONED))

    for row, items in itertools.groupby(_items(ref, ask, names), key=lambda item: item.row):
        for item in items:
            computed = item.pick(got)
            if item.second and computed is None:  # the engine has no second composition
                continue
            mine, theirs = _onto(held.get(item.name), item.known, computed) if item.name else (item.known, computed)
            one(item.label, theirs, mine, row.key, item.degree, _site(item, ask))
        if row.consistency:
            out.append(_consistency(ref, got, ask, eps, tol, floor, limit))
    return out


def _site(item: _Item, ask: Ask) -> dict[str, Any]:
    """The directions a quantity is taken along, for :meth:`gradspec.checks.elements.Kernels.lost`."""
    if item.row.mode is None:  # order k: D^k(v·f)[u^k]
        return {"cotangent": ask.v, "tangents": (ask.u,) * item.degree}
    return {Mode.JVP: {"tangents": (ask.u,)},
            Mode.HVP: {"cotangent": ask.v, "tangents": (ask.u,), "wrt": item.name},
            Mode.JVP_OF_JVP: {"tangents": (ask.u, ask.w)},
            Mode.JACOBIAN: {"wrt": item.name, "whole": True}}.get(item.row.mode, {})


def _onto(structure: str | None, known: Known | None, computed: Any) -> tuple[Known | None, Any]:
    """A per-input quantity (its input's axes last) projected onto the structure its input is read
    through, on both sides (see :data:`gradspec.ops.linalg_rows.READS`)."""
    if structure is None or known is None:
        return known, computed
    mine = dataclasses.replace(known, exact=project(structure, known.exact),
                               allowance=project(structure, np.asarray(known.allowance, dtype=float)),
                               rebuilt=project(structure, np.broadcast_to(np.asarray(known.rebuilt, dtype=float),
                                                                          np.shape(known.exact))))
    return mine, None if computed is None else project(structure, np.asarray(computed, dtype=float))


def _consistency(ref: ModeReference, got: Any, ask: Ask, eps: float, tol: Tolerance, floor: float,
                 limit: float = math.inf) -> Quantity:
    """v·(J u) from the engine's JVP against (Jᵀ v)·u from its VJP: the two modes of one Jacobian."""
    label = "mode consistency"
    if got.jvp is None or got.vjp is None or ref.jvp is None:
        return _skip(label, got.refused.get(Mode.JVP, "the engine did not compute both modes"))
    v = np.asarray(ask.v, dtype=float)
    jvp = np.asarray(got.jvp, dtype=float)
    if jvp.shape != v.shape or any(np.shape(g) != np.shape(a) for g, a in zip(got.vjp, ask.u, strict=True)):
        return Quantity(label, Role.DERIVATIVE, None, None, None, math.inf, math.inf, None, Verdict.FAIL,
                        note="the JVP or a VJP has the wrong shape")
    with np.errstate(invalid="ignore", over="ignore"):
        forward = float(np.sum(v * jvp))
        backward = float(sum(np.sum(np.asarray(g, dtype=float) * a) for g, a in zip(got.vjp, ask.u, strict=True)))
        exact = float(np.sum(v * ref.jvp.floats))
    # Each side may be off by its own rounding: the JVP's allowance weighted by |v|, and the same bound
    # for the VJP side (it rounds the same products in another order), plus the two float64 sums.
    # Both from the exact JVP, so an engine's inf or nan never widens it.
    allowed = 2 * float(np.sum(np.abs(v) * np.asarray(ref.jvp.allowance, dtype=float))) \
        + 4 * eps * float(np.sum(np.abs(v * ref.jvp.floats)) + 1e-300)
    allowed += tol.atol + tol.rtol * abs(exact) + floor
    diff = 0.0 if forward == backward else abs(forward - backward)  # equal infinities agree
    verdict = Verdict.PASS if diff == 0 or (math.isfinite(diff) and diff <= allowed) else Verdict.FAIL
    note = f"v·(J u) = {forward:.17g} by forward mode, (Jᵀ v)·u = {backward:.17g} by reverse mode"
    # each side may also have rebuilt its partials from rounded outputs (tanh' as 1 - t*t): imprecise
    rebuilt = 2 * float(np.sum(np.abs(v) * np.asarray(ref.jvp.rebuilt, dtype=float)))
    if verdict is Verdict.FAIL and math.isfinite(diff) and diff <= allowed + rebuilt:
        verdict = Verdict.IMPRECISE
        note += f"; {digits(forward, exact, eps)} (within what partials rebuilt from rounded outputs lose)"
    overflowed = ref.jvp.peak is not None and bool(np.any((np.asarray(ref.jvp.peak) > limit)
                                                          | (np.asarray(ref.jvp.low) < floor / 16)))
    if verdict is Verdict.FAIL and not math.isfinite(diff) and overflowed:
        verdict = Verdict.IMPRECISE  # inf or nan from an intermediate beyond the float range, as IEEE gives
        note += "; an intermediate over- or underflows in the engine's precision"
    return Quantity(label, Role.DERIVATIVE, forward, exact, None, diff, diff / max(abs(exact), 1e-300), allowed,
                    verdict, note=note)


def _skip(label: str, note: str, verdict: Verdict = Verdict.SKIP) -> Quantity:
    return Quantity(label, Role.DERIVATIVE, None, None, None, None, None, None, verdict, note=note)


def _skipped(modes: frozenset[Mode], order: int, note: str, verdict: Verdict = Verdict.SKIP) -> list[Quantity]:
    labels = [m.value for m in sorted(modes)] + ([f"order {order}"] if order >= 2 else [])
    return [_skip(label, note, verdict) for label in labels]
