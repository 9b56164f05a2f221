"""Comparing arrays element by element: the seeded cotangents and directions, the size of a full
Jacobian, and the judge of one array quantity (tensor cases, function cases and the modes beyond first
order all compare through :func:`judge`).

Every element is allowed ``atol + rtol*|exact|`` plus the rounding allowance of the engine's precision.
A failing quantity names its worst element, how many elements are over, and a pattern guess
(:mod:`gradspec.diagnose.patterns`).
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from gradspec.checks.check import abs_error, exact_text
from gradspec.diagnose.patterns import guess, unsummed_shape
from gradspec.engines.protocol import dtype_range
from gradspec.graph.tensor import TensorGraph
from gradspec.ops.rebuilt_tensor import Site
from gradspec.ops.table import TENSOR_OPS
from gradspec.reference.numerical import relative_error, relative_to
from gradspec.reference.precision import REBUILT, precision_note, representation, split
from gradspec.results import ElementErrors, Quantity, Role, Tolerance, Verdict

__all__ = ["JACOBIAN_LIMIT", "MAP_LIMIT", "Kernels", "cotangent", "jacobian_size", "judge", "seeded"]

JACOBIAN_LIMIT = 1000  # output elements x differentiable input elements
MAP_LIMIT = 4096  # elements of a failing quantity whose errors the result carries for a heat map


def cotangent(shape: tuple[int, ...], rng: random.Random) -> Any:
    """A seeded random cotangent: nonzero multiples of 1/1024 in [-1, 1], never all ones, held exactly by a
    float64 array (and by float32), so the reference and the engine get the same numbers."""
    size = math.prod(shape)
    steps = _steps(size, rng)
    if all(step == 1024 for step in steps):  # all ones: a backward that ignores its cotangent would pass
        steps[0] = 1023
    return (np.asarray(steps, dtype=float) / 1024).reshape(shape)


@functools.lru_cache(maxsize=256)
def seeded(shape: tuple[int, ...], seed: int, count: int) -> tuple[Any, ...]:
    """The first ``count`` cotangents of ``random.Random(seed)`` (:func:`cotangent`), read-only: every
    draw of a case, every run of a check, uses the same ones, drawn once per process."""
    rng = random.Random(seed)
    out = tuple(cotangent(shape, rng) for _ in range(count))
    for c in out:
        c.setflags(write=False)
    return out


def _steps(size: int, rng: random.Random) -> list[int]:
    """``[rng.choice((-1, 1)) * rng.randint(1, 1024) for _ in range(size)]``, the same numbers from the same
    stream four times faster: each of those calls is one rejection draw of ``getrandbits`` (2 bits for
    the sign, below 2; 11 for the step, below 1024), written out here without the four calls between.
    ``tests/test_tensor_check.py`` holds the two spellings equal, so the seeded directions never move."""
    bits = rng.getrandbits
    steps = []
    for _ in range(size):
        sign = bits(2)
        while sign >= 2:
            sign = bits(2)
        step = bits(11)
        while step >= 1024:
            step = bits(11)
        steps.append(step + 1 if sign else -step - 1)
    return steps


class Kernels:
    """The tensor ops of a graph whose engines' kernels lose more than the lowering's rounding
    (``TensorOp.rebuilt``: a dense linear-algebra kernel, logcumsumexp's weights), ready to say what that
    adds to each quantity's rebuilt allowance (imprecise, never pass).

    ``point``: input -> array of exact numbers; ``value``: the graph's exact value (floats), or a function
    that computes it (called only where an op sees the quantity's directions). An op applied
    to the graph's inputs whose output is the graph's sees the quantity's own directions (a
    :class:`~gradspec.ops.rebuilt_tensor.Site` with its operands); any other sees only the quantity."""

    def __init__(self, graph: TensorGraph, point: Mapping[str, Any], value: Any, eps: float) -> None:
        self.eps = eps
        self.sites: list[tuple[Any, Any, tuple[Any, ...] | None, tuple[tuple[int, ...], ...]]] = []
        inputs = {i: n for n, i in graph.inputs}
        self.names = [n for n, _ in graph.differentiable]
        for i, step in enumerate(graph.steps):
            row = TENSOR_OPS.get(step.op) if step.op else None
            if row is None or row.rebuilt is None:
                continue
            sources = [graph.steps[a] for a in step.args]
            direct = i == graph.output and all(a in inputs or s.const is not None for a, s in zip(step.args, sources, strict=True))
            operands = tuple(_floats(point[inputs[a]]) if a in inputs else np.asarray(float(s.const or 0))
                             for a, s in zip(step.args, sources, strict=True)) if direct else None
            self.sites.append((row, step, operands, tuple(s.shape for s in sources)))
        self.graph = graph
        direct = any(operands is not None for _, _, operands, _ in self.sites)
        self.value = (value() if callable(value) else value) if direct else None

    def __bool__(self) -> bool:
        return bool(self.sites)

    def lost(self, exact: Any, degree: int, *, cotangent: Any = None, tangents: Sequence[Sequence[Any]] = (),
             wrt: str | None = None, whole: bool = False) -> Any:
        """The allowance of a quantity with exact value ``exact`` (floats) and degree ``degree``: taken
        along ``cotangent`` (reverse) and ``tangents`` (one direction per differentiable input, per slot),
        with respect to input ``wrt`` (a per-input quantity), ``whole`` for a Jacobian."""
        total: Any = 0.0
        inputs = {i: n for n, i in self.graph.inputs}
        for row, step, operands, shapes in self.sites:
            where = None
            if operands is not None and wrt is not None:
                found = [k for k, a in enumerate(step.args) if inputs.get(a) == wrt]
                if len(found) == 1:
                    where = found[0]
                else:  # an input given as two operands (solve(a, a)): no one operand's direction
                    operands = None
            slots = tuple(tuple(t[self.names.index(inputs[a])] if inputs.get(a) in self.names else None
                                for a in step.args) for t in tangents) if operands is not None else ()
            site = Site(step.kw, shapes, exact, degree, self.eps, operands, self.value if operands is not None else None,
                        cotangent if operands is not None else None, slots, where, whole)
            total = total + np.nan_to_num(np.asarray(row.rebuilt(site), dtype=float), nan=0.0)
        return total


def _floats(values: Any) -> Any:
    return np.vectorize(float, otypes=[float])(np.asarray(values, dtype=object))


def jacobian_size(graph: TensorGraph) -> int:
    """Output elements times differentiable input elements: the entries of the full Jacobian."""
    return math.prod(graph.shape) * sum(math.prod(graph.steps[i].shape) for _, i in graph.differentiable)


def judge(label: str, role: Role, engine: Any, exact_mp: Any, exact: Any, allowance: Any, tol: Tolerance,
           span: tuple[Any, Any] | None = None, kink: str | None = None, copies: Any = (), output: Any = None,
           out_axes: int | None = None, *, eps: float = 0.0, rebuilt: Any = 0.0, why: str = REBUILT) -> Quantity:
    """Element by element: within ``atol + rtol*|exact|``, the precision bound ``allowance`` and how far
    the exact value is from the engine's dtype (``eps``), pass; beyond that but within ``rebuilt`` more
    (partials rebuilt from rounded outputs), imprecise; beyond both, fail. ``why`` names the two bounds
    in an imprecise quantity's note."""
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
    exact = np.asarray(exact, dtype=float)
    if np.isnan(exact).any():  # never judged against an undefined number
        return Quantity(label, role, None, None, None, None, None, None, Verdict.ERROR,
                        note="the exact value is not defined here (NaN): no reference to judge against")
    # An allowance that could not be computed (NaN) allows nothing: the element is judged by the case's
    # tolerance alone, never passed whatever the engine returns. Nor does one that overflowed a float for a
    # finite exact element (exp2'(1020) = 7.8e306 times 1020 ulps of its input, counted in units of eps):
    # the bound of a finite quantity is never infinite, and an infinite one would pass anything. The rebuilt
    # allowance may be: an infinite one makes any number imprecise, never a pass (an intermediate that
    # under- or overflows on the way: docs/verdicts.md).
    allowance = _nan_as_zero(allowance, exact)
    rebuilt = _nan_as_zero(rebuilt, None)
    bound = tol.atol + tol.rtol * np.abs(exact) + allowance + (representation(exact, eps) if eps else 0.0)
    if np.isfinite(engine).all():  # no inf - inf to mask (the exact element may still be inf)
        err = np.abs(engine - exact)
        finite = bool(np.isfinite(err).all())
    else:
        with np.errstate(invalid="ignore"):  # inf - inf: equal infinities agree
            err = np.abs(engine - exact)
            finite = False
            both_nan = np.isnan(engine) & np.isnan(exact)
            err = np.where(both_nan | (engine == exact), 0.0, err)
            err = np.where(np.isnan(err), np.inf, err)
    limit = dtype_range(eps)
    beyond = ~(np.abs(exact) < limit)
    if beyond.any():  # an exact element beyond the dtype's range (or infinite): IEEE's answer is that infinity
        top = np.sign(exact) * (limit if math.isfinite(limit) else np.finfo(float).max)
        agrees = (engine == np.sign(exact) * np.inf) | (engine == top)  # or the largest float, a rounding short
        err = np.where(beyond, np.where(agrees, 0.0, np.inf), err)
        bound = np.where(beyond, 0.0, bound)  # never inf, which would pass any number (NaN included)
        finite = False
    over: Any = None  # per element: beyond the bound the verdict names (None where every element passes)
    imprecise: Any = None
    if finite and (err <= bound).all():  # the usual case: nothing beyond the precision bound
        verdict = Verdict.PASS
    else:
        over, imprecise = split(err, bound, rebuilt)
        verdict = Verdict.FAIL if over.any() else Verdict.IMPRECISE if imprecise.any() else Verdict.PASS
        if verdict is Verdict.IMPRECISE:  # at a kink, another subgradient may explain it
            over = imprecise
    note = ""
    if over is not None and over.any() and span is not None:
        lo = np.vectorize(float, otypes=[float])(span[0])
        hi = np.vectorize(float, otypes=[float])(span[1])
        inside = (engine >= lo - bound) & (engine <= hi + bound)
        if np.all(inside | ~over):
            verdict = Verdict.PASS if kink == "any" else Verdict.CONVENTION
            note = "another subgradient at a kink" + (" (kink: any)" if kink == "any" else "")
            over = np.zeros_like(over)
    if verdict is Verdict.FAIL:
        bound = bound + rebuilt  # what it failed against: both bounds
    if finite and (not np.size(bound) or np.minimum.reduce(bound, axis=None) > 0):  # as the general case below
        ratio = err / bound
    else:
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
    e, x = float(engine[w]), float(exact[w])
    bound_w = float(bound[w] if np.shape(bound) == exact.shape else np.broadcast_to(bound, exact.shape)[w])
    if verdict is Verdict.IMPRECISE:
        count = int(imprecise.sum())
        head = f"{count} of {exact.size} elements beyond the precision bound; worst at {list(w)}: " if exact.size > 1 else ""
        note = head + precision_note(e, x, eps, bound_w, why)
    worst = _error(e, exact_w, x)
    return Quantity(label, role, e, x, None, worst, relative_to(worst, e, x), bound_w, verdict,
                    exact_text=exact_text(exact_w), note=note, index=w, elements=elements)


def _error(engine: float, exact: Any, nearest: float) -> float:
    """The worst element's |engine - exact| with the exact element as it is (an mpf, a ball's midpoint, a
    Fraction), not its nearest float ``nearest``: an engine that returns that float is off by its residual."""
    mpf = getattr(exact, "_mpf_", None)
    if mpf is not None:  # the mantissa as it is (make_mpf does not round it): a ball's 128 bits, an mpf's
        return abs_error(engine, mpmath.mp.make_mpf(mpf), nearest)
    if isinstance(exact, Fraction) and math.isfinite(engine):
        return float(abs(Fraction(engine) - exact))
    return abs_error(engine, mpmath.mpf(nearest), nearest)


def _nan_as_zero(allowance: Any, exact: Any) -> Any:
    """An allowance as a float array, NaN (not computed) as 0, and inf as 0 where the exact element is
    finite, given ``exact`` (NumPy's own call costs more than the rest of a small quantity's judgement:
    only where an element is not finite)."""
    allowance = np.asarray(allowance, dtype=float)
    if np.isfinite(allowance).all():
        return allowance
    unknown = np.isnan(allowance) if exact is None else np.isnan(allowance) | (np.isinf(allowance) & np.isfinite(exact))
    return np.where(unknown, 0.0, allowance)


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
