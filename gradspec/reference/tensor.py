"""The exact reference of a tensor case: the graph lowered to scalar nodes on a tape, swept in reverse.

SymPy's element-wise Jacobians stop being practical at toy sizes, so a tensor graph is lowered
(:mod:`gradspec.ops.lowering`) onto a tape of scalar nodes evaluated at ``DPS`` digits; each node
records its local partials from the op table's exact forms, the same ones the scalar step-by-step path
uses (:func:`gradspec.reference.chain.local_partials`). A vector-Jacobian product is then one reverse
sweep from any cotangent, and a Jacobian row one sweep from a one-hot cotangent.

Beside the exact numbers the tape carries a first-order running bound of what float rounding can do,
in units of the engine's machine epsilon: forward, every op adds a few ulps of its result to the
propagated error of its arguments; backward, every accumulation adds its own rounding and the error
of its local partial, which is how far the partial moves when its arguments move by their bound.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any

import mpmath
import numpy as np

from gradspec.errors import DomainError
from gradspec.graph.tensor import TensorGraph, evaluate
from gradspec.ops.table import OPS
from gradspec.reference.chain import local_partials, mp_apply
from gradspec.reference.exact import DPS

if TYPE_CHECKING:
    from gradspec.reference.ball import BallExact
from gradspec.reference.mpeval import Scalar, to_mpf
from gradspec.reference.store import STORE

__all__ = ["RATIONAL", "Node", "TensorExact", "exact_tensor", "rational"]



def _carried(partial: Scalar, error: Scalar) -> Scalar:
    """``|partial| * error``, the error an argument carries into a result: none where the argument has
    none, and computed exactly where a float would overflow (1/u for u = exp(-800) is 1e347, and inf * 0
    would make the allowance NaN, which accepts anything; an error beyond the float range stays an mpf)."""
    if not error:
        return 0.0
    term = abs(float(partial)) * error
    if isinstance(term, float) and math.isfinite(term):
        return term
    return _magnitude(abs(partial) * mpmath.mpf(error))


def _magnitude(x: Any) -> Scalar:
    """``|x|`` as a float, or as an mpf where it is beyond the float range: an intermediate whose exact value
    overflows a float (x*x at x = 1e200) keeps a finite bound, which the engine's inf then exceeds."""
    try:
        m = abs(float(x))
    except OverflowError:  # a Fraction beyond the float range
        m = math.inf
    return m if m != math.inf else abs(mpmath.mpf(x))


def _eps_units(ulps: float) -> float:
    """An op row's rounding budget in whole units of eps: the tape's running bound counts at least one
    eps per rounding (twice the unit roundoff of a correctly rounded op), cruder than the first-order
    bound of :mod:`gradspec.reference.rounding` and so never tighter than it."""
    return max(1.0, ulps)


_SAFETY = 2


def _bound(units: Scalar) -> float:
    """A running bound (units of eps) as the allowance's float, doubled: a finite one beyond the float
    range (exp2(1020)'s 1020 ulps of its input times 7.8e306) as the largest float, whose absolute
    allowance (times eps) is still 4e292, never inf, which would allow anything."""
    doubled = float(units * _SAFETY)
    return doubled if doubled != math.inf or not mpmath.isfinite(units) else sys.float_info.max


class Node:
    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i


@dataclass(frozen=True)
class _Kink:
    node: int
    where: str
    interval: tuple[tuple[float, float], ...]


def rational(name: str, a: Scalar, b: Scalar) -> tuple[Scalar, tuple[Scalar, Scalar]]:
    """Value and local partials of the rational ops, which every lowering uses thousands of times;
    equal to what :func:`local_partials` derives from their SymPy forms (a test pins this)."""
    if name == "add":
        return a + b, (_ONE, _ONE)
    if name == "sub":
        return a - b, (_ONE, -_ONE)
    return a * b, (b, a)


_ONE = mpmath.mpf(1)
RATIONAL = frozenset({"add", "sub", "mul"})  # the ops rational() serves


class Tape:
    """A scalar backend for :func:`gradspec.graph.tensor.evaluate` that computes exactly.

    Values and adjoints are exact (mpmath at ``DPS`` digits); the rounding bounds beside them are
    magnitudes, kept as Python floats.
    """

    def __init__(self) -> None:
        self.values: list[Scalar] = []
        self.parents: list[tuple[tuple[int, Scalar], ...]] = []
        self.partial_error: list[tuple[float, ...]] = []  # how far each local partial can move
        self.rebuilt: list[tuple[float, ...]] = []  # per parent: a partial rebuilt from a rounded output, its absolute error
        self.lost: list[float] = []  # a value formed by cancelling terms (gelu), carried forward: its absolute error
        self.error: list[float] = []  # forward rounding bound, in units of eps
        self.kinks: list[_Kink] = []
        # (where, how ill-conditioned: 1/eps of an engine that cannot resolve it, that number in words): the
        # matrices a linear-algebra op factors, the spectra it computes
        self.conditions: list[tuple[str, float, str]] = []
        self.expanded: list[tuple[Any, Any]] = []  # (source array, its per-copy broadcast nodes)
        self.step = ""  # the op being lowered, for domain messages
        self.col = 0

    def leaf(self, v: Fraction) -> Node:
        x = to_mpf(v)
        # An engine gets the nearest float: half an ulp off unless the decimal is a binary float.
        return self._push(x, (), (), _magnitude(x) / 2 if float(v) != v else 0.0)

    def _push(self, value: Scalar, parents: tuple[tuple[int, Scalar], ...], perr: tuple[float, ...],
              error: float, rebuilt: tuple[float, ...] = (), lost: float = 0.0) -> Node:
        self.values.append(value)
        self.parents.append(parents)
        self.partial_error.append(perr)
        self.rebuilt.append(rebuilt)
        self.error.append(error)
        self.lost.append(lost)
        return Node(len(self.values) - 1)

    def _lost(self, args: Sequence[Any]) -> list[float]:
        return [self.lost[a.i] if isinstance(a, Node) else 0.0 for a in args]

    def shift(self, xs: Sequence[Any]) -> Fraction | None:
        """The lane's largest value as a float engine takes it (mpmath's exponents need no shift, but the
        rounding bound is that of a float engine, whose exp must stay finite: unshifted, exp(1e4)
        overflows the bound and the engine's result, which shifts, cannot be judged). The value is the
        same either way: softmax and logsumexp are invariant under the shift."""
        top = max((float(self.values[x.i]) if isinstance(x, Node) else float(x) for x in xs), default=0.0)
        return Fraction(top) if math.isfinite(top) and top != 0 else None

    def peek(self, x: Any) -> Scalar:
        return self.values[x.i]

    def condition(self, name: str, a: Sequence[Sequence[Any]]) -> None:
        """Note the condition number of a matrix an op factors (:mod:`gradspec.ops.lowering.linalg`)."""
        matrix = mpmath.matrix([[to_mpf(x) if isinstance(x, Fraction) else x for x in row] for row in a])
        try:
            value = float(mpmath.cond(matrix, norm=lambda m: mpmath.mnorm(m, 1)))
        except ZeroDivisionError:
            value = math.inf
        self.conditions.append((f"{name} ({self.step or name})", value, f"condition number {value:.3g} (1-norm)"))

    def gap(self, name: str, what: str, spacing: float, scale: float) -> None:
        """Note the smallest spacing of a spectrum an op computes (:mod:`gradspec.ops.lowering.spectral`)
        against the spectrum's largest magnitude: an engine errs by eps times that magnitude."""
        ratio = scale / spacing if spacing > 0 else math.inf
        self.conditions.append((f"{name} ({self.step or name})", ratio,
                                f"{what} {spacing:.3g} against a largest magnitude of {scale:.3g} "
                                f"(ratio {ratio:.3g})"))

    def expand(self, a: Any, shape: tuple[int, ...]) -> Any:
        """Broadcast ``a`` as per-copy identity nodes, so the adjoint of every copy can be read: an
        engine that forgets to sum a broadcast axis returns one of those copies."""
        spread = np.broadcast_to(a, shape)
        out = np.empty(shape, dtype=object)
        for index in np.ndindex(shape):
            v = spread[index]
            out[index] = self._push(self.values[v.i], ((v.i, _ONE),), (0.0,), self.error[v.i],
                                    lost=self.lost[v.i]) if isinstance(v, Node) else v
        self.expanded.append((a, out))
        return out

    def op(self, name: str, *args: Any) -> Node:
        op = OPS[name]
        vals = [self.values[a.i] if isinstance(a, Node) else to_mpf(a) for a in args]
        if name in RATIONAL:
            return self._rational(name, args, vals)
        varying = [isinstance(a, Node) for a in args]
        if op.domain is not None:
            problem = op.domain(vals, varying)
            if problem:
                raise DomainError(f"{problem} (in {self.step})", col=self.col or None)
        value = mp_apply(name, vals)
        if not mpmath.isfinite(value):
            raise DomainError(f"{name} is not finite here (in {self.step})", col=self.col or None)
        partials = local_partials(name)
        parents: list[tuple[int, Scalar]] = []
        perr: list[float] = []
        err = _eps_units(op.ulps) * _magnitude(value)
        errs = self._errors(args, vals)
        if op.arg_ulps:  # the op rounds a scaled copy of its arguments first
            errs = [e + op.arg_ulps * _magnitude(v) for e, v in zip(errs, vals, strict=True)]
        losts = self._lost(args)
        lost = op.rebuilt_abs(0, vals, value)
        rebuilt: list[float] = []
        for k, a in enumerate(args):
            if not isinstance(a, Node):
                continue
            try:
                p = partials[k](vals)
            except ZeroDivisionError:
                p = mpmath.inf
            if not mpmath.isfinite(p):  # no derivative here (sqrt at 0, as in norm's at the zero vector)
                raise DomainError(f"the derivative of {name} is not finite here (in {self.step})", col=self.col or None)
            parents.append((a.i, p))
            err += _carried(p, errs[k])
            lost += _carried(p, losts[k])
            # The partial moves with its arguments, and is itself rounded (or read from a rounded output).
            perr.append(self._moved(partials[k], vals, errs, p) + _eps_units(op.partial_ulps) * abs(float(p)))
            rebuilt.append(op.rebuilt_abs(1, vals, p) + self._moved(partials[k], vals, losts, p))
        if op.kink is not None and op.kink.at(vals):
            self.kinks.append(_Kink(len(self.values), op.kink.where, op.kink.interval_for(vals)))
        return self._push(value, tuple(parents), tuple(perr), err, tuple(rebuilt), lost)

    def _errors(self, args: Sequence[Any], vals: Sequence[Scalar]) -> list[float]:
        return [self.error[a.i] if isinstance(a, Node) else (_magnitude(v) / 2 if float(a) != a else 0.0)
                for a, v in zip(args, vals, strict=True)]

    def _rational(self, name: str, args: Sequence[Any], vals: list[Scalar]) -> Node:
        value, partials = rational(name, vals[0], vals[1])
        errs = self._errors(args, vals)
        losts = self._lost(args)
        err = _magnitude(value)
        lost = 0.0
        parents: list[tuple[int, Scalar]] = []
        perr: list[float] = []
        rebuilt: list[float] = []
        for k, a in enumerate(args):
            if isinstance(a, Node):
                parents.append((a.i, partials[k]))
                err += _carried(partials[k], errs[k])
                lost += _carried(partials[k], losts[k])
                perr.append(errs[1 - k] if name == "mul" else 0.0)  # d(a*b)/da = b moves as b does
                rebuilt.append(losts[1 - k] if name == "mul" else 0.0)
        return self._push(value, tuple(parents), tuple(perr), err, tuple(rebuilt) if any(rebuilt) else (), lost)

    @staticmethod
    def _moved(partial: Callable[[Any], Scalar], vals: list[Scalar], errs: list[float], p: Scalar) -> float:
        """How far a local partial moves when every argument moves by its rounding bound (either way)."""
        if not any(errs):
            return 0.0
        tau = mpmath.mpf("1e-25")
        worst = 0.0
        for sign in (1, -1):
            try:
                moved = partial([v + sign * tau * e for v, e in zip(vals, errs, strict=True)])
            except (ZeroDivisionError, ValueError):
                return float("inf")
            if not mpmath.isfinite(moved):
                return float("inf")
            worst = max(worst, _magnitude(abs(moved - p) / tau))  # an mpf beyond the float range
        return worst

    def sweep(self, seeds: Mapping[int, Scalar], override: Mapping[tuple[int, int], Scalar] | None = None,
              ) -> tuple[list[Scalar], list[float], list[float]]:
        """Reverse accumulation from ``seeds`` (node -> cotangent): every node's adjoint, the bound on
        the rounding error a float engine's backward pass can add to it (units of eps), and what
        partials rebuilt from rounded outputs may add on top (units of eps, kept apart: the precision
        verdict's second bound)."""
        n = max(seeds) + 1 if seeds else 0
        zero = mpmath.mpf(0)
        adj: list[Scalar] = [zero] * n
        err = [0.0] * n
        extra = [0.0] * n
        for i, c in seeds.items():
            adj[i] += c
        parents, perrs, rebuilt = self.parents, self.partial_error, self.rebuilt
        for i in range(n - 1, -1, -1):
            a = adj[i]
            if not a and not err[i] and not extra[i]:
                continue
            fa, ei, xi, ri = _magnitude(a), err[i], extra[i], rebuilt[i]
            for k, (p, d) in enumerate(parents[i]):
                if override and (i, k) in override:
                    d = override[(i, k)]
                contribution = a * d
                adj[p] += contribution
                fd = _magnitude(d)
                err[p] += fd * ei + 2 * fa * fd + fa * perrs[i][k]
                if xi or ri:
                    extra[p] += fd * xi + (fa * ri[k] if ri else 0.0)
        return adj, err, extra


def _cotangent_key(cotangent: Any) -> tuple[Any, ...]:
    arr = np.asarray(cotangent)
    if arr.dtype.kind == "f":  # float cotangents are exact binary fractions: their bytes identify them
        return (arr.shape, arr.tobytes())
    return (arr.shape, *arr.flat)


def _floats(values: Any) -> Any:
    out = np.empty(values.shape, dtype=float)
    for index in np.ndindex(values.shape):
        out[index] = float(values[index])
    return out


@dataclass(frozen=True)
class Grad:
    """One exact vector-Jacobian product: per differentiable input, the exact array and its rounding bound."""

    exact: dict[str, Any]  # name -> object array of mpf
    rounding: dict[str, Any]  # name -> float array, the allowance in units of eps
    copies: dict[str, list[tuple[tuple[int, ...], Any]]]  # name -> [(broadcast shape, per-copy adjoints as floats)]
    floats: dict[str, Any]  # name -> the exact array rounded to float64
    rebuilt: dict[str, Any] = field(default_factory=dict)  # name -> float array: partials rebuilt from rounded outputs (eps)
    radius: dict[str, Any] = field(default_factory=dict)  # name -> each element's radius: none here (60 digits)


@dataclass(frozen=True, eq=False)
class TensorExact:
    """The exact value of a tensor graph at one point, and reverse sweeps from any cotangent."""

    graph: TensorGraph
    tape: Tape
    outputs: Any  # object array of output nodes
    leaves: dict[str, Any]  # differentiable input -> object array of leaf nodes
    value: Any  # object array of mpf
    value_rounding: Any  # float array: the forward allowance in units of eps
    kinks: tuple[str, ...]
    arrays: list[Any]  # every step's array of nodes (or data), for checking one op at a time
    conditions: tuple[tuple[str, float, str], ...] = ()  # every matrix a linear-algebra op factors: (where, cond, what)
    value_lost: Any = 0.0  # float array: what values formed by cancelling terms may add (units of eps, kept apart)
    grads: dict[tuple[Any, ...], Grad] = field(default_factory=dict, repr=False)  # by cotangent (bounded)
    value_radius: float = 0.0  # no ball here: 60 digits, as BallExact.value_radius has none to give

    @cached_property
    def value_floats(self) -> Any:
        floats = _floats(self.value)
        floats.setflags(write=False)  # worked out once, handed to every check of the draw
        return floats

    @property
    def radius(self) -> float | None:
        return None  # mpmath at DPS digits carries no error radius (the ball reference does)

    def values_of(self, step: int) -> Any:
        """The exact values of one step (an object array of mpf, or the data's Fractions)."""
        return np.vectorize(lambda n: self.tape.values[n.i] if isinstance(n, Node) else n, otypes=[object])(
            self.arrays[step])

    def vjp(self, cotangent: Any, override: Mapping[tuple[int, int], Scalar] | None = None) -> Grad:
        """The exact gradient of ``sum(cotangent * output)`` for every differentiable input (remembered
        per cotangent, so every engine checked at this point shares one sweep)."""
        key = _cotangent_key(cotangent) if override is None else None
        if key is not None and key in self.grads:
            return self.grads[key]
        grad = self._vjp(cotangent, override)
        if key is not None:
            if len(self.grads) >= 2048:
                self.grads.clear()
            self.grads[key] = grad
        return grad

    def _vjp(self, cotangent: Any, override: Mapping[tuple[int, int], Scalar] | None) -> Grad:
        seeds: dict[int, Scalar] = {}
        with mpmath.workdps(DPS):
            for index in np.ndindex(self.outputs.shape):
                c = cotangent[index]
                if c and isinstance(self.outputs[index], Node):  # a constant element has no gradient
                    node = self.outputs[index].i
                    seeds[node] = seeds.get(node, mpmath.mpf(0)) + (to_mpf(c) if isinstance(c, Fraction) else mpmath.mpf(float(c)))
            adj, err, extra = self.tape.sweep(seeds, override)

            def read(nodes: Any, table: list[Scalar]) -> Any:
                    return np.vectorize(lambda n: table[n.i] if n.i < len(table) else 0, otypes=[object])(nodes)

            exact = {n: read(a, adj) for n, a in self.leaves.items()}
            with np.errstate(over="ignore"):  # a bound beyond the float range: _bound says what it is
                rounding = {n: np.vectorize(_bound, otypes=[float])(read(a, err)) for n, a in self.leaves.items()}
                rebuilt = {n: np.vectorize(_bound, otypes=[float])(read(a, extra)) for n, a in self.leaves.items()}
            copies: dict[str, list[tuple[tuple[int, ...], Any]]] = {}
            for name, a in self.leaves.items():
                for source, spread in self.tape.expanded:
                    if source is a:
                        copies.setdefault(name, []).append((spread.shape, _floats(read(spread, adj))))
        return Grad(exact, rounding, copies, {n: _floats(a) for n, a in exact.items()}, rebuilt)

    def subgradient_range(self, cotangent: Any) -> dict[str, tuple[Any, Any]] | None:
        """Per input, the element-wise range of the VJP over the corners of every kink's subgradient
        interval; None when there are too many kinks to enumerate (more than 8)."""
        kinks = self.tape.kinks
        if len(kinks) > 8:
            return None
        corners: list[dict[tuple[int, int], Scalar]] = [{}]
        for kink in kinks:
            for k, (lo, hi) in enumerate(kink.interval):
                corners = [c | {(kink.node, k): mpmath.mpf(end)} for c in corners for end in (lo, hi)]
        lows: dict[str, Any] = {}
        highs: dict[str, Any] = {}
        for corner in corners:
            g = self.vjp(cotangent, corner).exact
            for name, arr in g.items():
                lows[name] = arr if name not in lows else np.minimum(lows[name], arr)
                highs[name] = arr if name not in highs else np.maximum(highs[name], arr)
        return {n: (lows[n], highs[n]) for n in lows}


def exact_tensor(graph: TensorGraph, point: Mapping[str, Any], *,
                 read_from: Mapping[str, Any] | None = None) -> TensorExact | BallExact:
    """Lower ``graph`` at ``point`` (input -> array of Fractions) onto an exact tape; raises
    :class:`DomainError` at the op's column when an element leaves an op's domain.

    The last few results are remembered by what they are (the graph's text and shapes, the point's
    elements), in the store (:data:`gradspec.reference.store.STORE`): loading a case computes them, and
    every engine's check then reuses them. ``read_from``: the float64 arrays the point is the shortest
    decimals of (:func:`gradspec.reference.store.Store.decimals`), which say what the point is more
    cheaply than its elements do.
    """
    if read_from is not None:
        key: Any = (graph.key, "decimals of", tuple((n, a.shape, a.tobytes()) for n, a in sorted(read_from.items())))
    else:
        key = (graph.key, tuple((n, _numbers(v)) for n, v in sorted(point.items())))
    size = sum(math.prod(s.shape) for s in graph.steps)
    found: TensorExact | BallExact = STORE.tensors.get(key, lambda: _fast(graph, point) or _exact_tensor(graph, point),
                                                       size=size)
    return found


def _numbers(values: Any) -> tuple[Any, ...]:
    """An input's elements as plain integers (numerator, denominator, ...): hashing a Fraction costs a
    modular inverse, which a million inputs feel."""
    return tuple(n for v in np.asarray(values, dtype=object).flat
                 for n in ((v.numerator, v.denominator) if isinstance(v, Fraction) else (v, None)))


def _fast(graph: TensorGraph, point: Mapping[str, Any]) -> BallExact | None:
    """The reference one tensor op at a time in ball arithmetic, where every op has a kernel and no
    element sits on a kink or a domain's edge; None where the scalar tape must run (it then says why)."""
    from gradspec.reference.ball import Unsupported, ball_tensor, supported
    from gradspec.reference.ball_scalar import REBUILT

    if not supported(graph, rebuilt=True):
        return None
    try:
        if not any(s.op in REBUILT for s in graph.steps):
            return ball_tensor(graph, point)
        # an op whose partial engines rebuild from its rounded output (tanh): swept without what that loses
        # and with it, the difference kept apart as the scalar tape keeps it (imprecise, never pass)
        return replace(ball_tensor(graph, point, rebuilt=False), wide=ball_tensor(graph, point, rebuilt=True))
    except Unsupported:
        return None


def _exact_tensor(graph: TensorGraph, point: Mapping[str, Any]) -> TensorExact:
    tape = Tape()
    with mpmath.workdps(DPS):
        leaves: dict[str, Any] = {}
        given: dict[str, Any] = {}
        for name, _ in graph.inputs:
            values = np.asarray(point[name], dtype=object)
            if name in graph.data:
                given[name] = values
            else:
                leaves[name] = given[name] = np.vectorize(tape.leaf, otypes=[object])(values) if values.size \
                    else values
        steps = graph.steps
        def at(i: int) -> None:
            tape.step, tape.col = _describe(graph, i), steps[i].col

        arrays = evaluate(graph, tape, given, on_step=at)
        outputs = arrays[graph.output]
        value = np.vectorize(lambda n: tape.values[n.i] if isinstance(n, Node) else to_mpf(n), otypes=[object])(outputs)
        with np.errstate(over="ignore"):  # a bound beyond the float range: _bound says what it is
            rounding = np.vectorize(lambda n: _bound(tape.error[n.i]) if isinstance(n, Node) else 0.0,
                                    otypes=[float])(outputs)
            lost = np.vectorize(lambda n: _bound(tape.lost[n.i]) if isinstance(n, Node) else 0.0, otypes=[float])(outputs)
    return TensorExact(graph, tape, outputs, leaves, value, rounding, tuple(dict.fromkeys(k.where for k in tape.kinks)),
                       arrays, conditions=tuple(tape.conditions), value_lost=lost)


def _describe(graph: TensorGraph, index: int) -> str:
    step = graph.steps[index]
    return f"{step.op}({', '.join(graph.label(a) for a in step.args)})"
