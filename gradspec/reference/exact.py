"""The exact reference: value and gradients of a graph at a point, to far more digits than any float.

The graph is rebuilt in SymPy over real symbols, differentiated with respect to every input and every
named intermediate, and each derivative is evaluated at the point taken as exact decimals, with mpmath
at ``DPS`` significant digits. Graphs too large or too deep for one SymPy expression, or whose
derivation runs out of time, are differentiated by the chain rule step by step
(:mod:`gradspec.reference.chain`). A forward pass at the same precision checks every op's domain and
finds kinks; at a kink the range of gradients over every subgradient choice is worked out too.

Nothing here remembers anything: :mod:`gradspec.reference.store` owns the memo and the disk cache.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import sympy

from gradspec.graph.ir import Apply, Const, Graph, Leaf
from gradspec.ops.table import OPS
from gradspec.reference.chain import Kinked, adjoints, forward, subgradient_ranges
from gradspec.reference.chain import local_partials as _local_partials
from gradspec.reference.chain import mp_apply as _mp_apply
from gradspec.reference.mpeval import Env, Scalar, compile_expr, to_mpf

__all__ = ["DPS", "SYMBOLIC_DEPTH", "SYMBOLIC_LIMIT", "Derivation", "Exact", "Kinked", "conditioning", "derive",
           "exact_at", "small"]

DPS = 60  # working precision; results are trusted to well over 30 significant digits
SYMBOLIC_LIMIT = 400  # op steps; larger graphs are differentiated step by step
SYMBOLIC_DEPTH = 60  # nesting; SymPy and the compiled evaluators recurse once per level

#: Value and gradients at one point from a graph's SymPy derivation, or None when it ran out of budget.
Symbolic = Callable[[Mapping[str, Scalar]], "tuple[Scalar, dict[str, Scalar]] | None"]


@dataclass(frozen=True)
class Derivation:
    """The symbolic side of a graph: output and derivatives as SymPy expressions, compiled."""

    symbols: dict[str, sympy.Symbol]
    value: sympy.Expr
    grads: dict[str, sympy.Expr]  # input or intermediate name -> d output / d name
    _compiled: dict[str, Callable[[Env], Scalar]]

    def evaluate(self, name: str, env: Env) -> Scalar:
        return self._compiled[name](env)



@dataclass(frozen=True)
class Exact:
    """Exact value and gradients of a graph at one point."""

    value: Scalar
    grads: dict[str, Scalar]
    kinks: tuple[Kinked, ...]
    # Per name: the (low, high) range the gradient spans over every subgradient choice at the kinks.
    subgradients: dict[str, tuple[Scalar, Scalar]]



def derive(graph: Graph) -> Derivation:
    """Differentiate ``graph`` symbolically (slow: the store keeps the result for every later point)."""
    symbols = {name: sympy.Symbol(name, real=True) for name, _ in graph.inputs}
    exprs = _sympy_steps(graph, symbols, {})
    value = exprs[graph.output]
    grads: dict[str, sympy.Expr] = {name: sympy.diff(value, symbols[name]) for name, _ in graph.inputs}
    input_of = {i: n for n, i in graph.inputs}
    done: dict[int, sympy.Expr] = {}
    for name, index in graph.intermediates:
        if index in input_of:  # `a = x`: the same node as an input
            grads[name] = grads[input_of[index]]
            continue
        if index in done:  # `b = a`: the same node as another intermediate
            grads[name] = done[index]
            continue
        hole = sympy.Dummy(name, real=True)
        around = _sympy_steps(graph, symbols, {index: hole})[graph.output]
        grads[name] = done[index] = sympy.diff(around, hole).subs(hole, exprs[index])
    compiled = {"": compile_expr(value)} | {n: compile_expr(g) for n, g in grads.items()}
    return Derivation(symbols, value, grads, compiled)


def _sympy_steps(graph: Graph, symbols: dict[str, sympy.Symbol], holes: dict[int, sympy.Expr]) -> list[sympy.Expr]:
    out: list[sympy.Expr] = []
    for i, step in enumerate(graph.steps):
        if i in holes:
            out.append(holes[i])
            continue
        match step:
            case Leaf():
                out.append(symbols[step.name])
            case Const():
                out.append(sympy.Rational(step.value.numerator, step.value.denominator))
            case Apply():
                out.append(OPS[step.op].sympy(*(out[a] for a in step.args)))
    return out



def small(graph: Graph) -> bool:
    """Whether ``graph`` is small and shallow enough to be differentiated as one SymPy expression."""
    return graph.op_count <= SYMBOLIC_LIMIT and graph.depth <= SYMBOLIC_DEPTH


def exact_at(graph: Graph, point: Mapping[str, Fraction], symbolic: Symbolic | None) -> Exact:
    """Exact value and gradients at ``point``; raises :class:`~gradspec.errors.DomainError` outside an
    op's domain. ``symbolic`` evaluates the graph's SymPy derivation; without it, or when it gives up,
    the gradients come from the chain rule, one exact step at a time."""
    with mpmath.workdps(DPS):
        env = {name: to_mpf(point[name]) for name, _ in graph.inputs}
        values, kinks = forward(graph, env)
        found = symbolic(env) if symbolic is not None else None
        if found is not None:
            value, grads = found
        else:
            adj = adjoints(graph, values)
            value = values[graph.output]
            grads = {n: adj[i] for n, i in graph.inputs + graph.intermediates}
        ranges = subgradient_ranges(graph, values, kinks) if kinks else {}
    return Exact(value, grads, tuple(kinks), ranges)


_ULPS = {"exp": 4, "log": 4, "tanh": 4, "sigmoid": 4, "sin": 4, "cos": 4, "pow": 4}
# Backward formulas that lose absolute rather than relative accuracy: tanh' = 1 - t*t and
# sigmoid' = s*(1 - s) are computed from an output near 1 that is off by a few ulps.
_ABSOLUTE_ROUNDING = {"tanh": 2 * _ULPS["tanh"], "sigmoid": _ULPS["sigmoid"]}
_CONDITION_SAMPLES = 4
_CONDITION_SAFETY = 3


def conditioning(graph: Graph, point: tuple[tuple[str, Fraction], ...]) -> dict[str, Scalar]:
    """How much rounding can move each quantity, in units of the engine's machine epsilon.

    A float engine rounds every input, every op's result and every local partial it multiplies. This
    replays the graph exactly with each of those perturbed by a tiny relative amount of random sign
    (seeded, so results repeat), and measures how far the value and each gradient move. The largest
    movement over a few samples, times a safety factor, estimates the first-order rounding error per
    unit of epsilon: a float32 engine is allowed about 2**29 times more than a float64 one, and an
    ill-conditioned point more than a well-conditioned one. Names map to scales; "" is the value.
    """
    tau = mpmath.mpf("1e-30")
    names = dict(graph.inputs + graph.intermediates)
    with mpmath.workdps(DPS):
        env = {name: to_mpf(v) for name, v in point}
        values, _ = forward(graph, env)
        base = adjoints(graph, values)
        worst = dict.fromkeys(["", *names], mpmath.mpf(0))
        rng = random.Random(len(graph.steps))
        # A derivative that jumps (relu, abs) keeps its exact value: rounding that moves an argument
        # across a kink is not a first-order effect, and the kink has its own rules.
        kinks = {(i, k): _local_partials(step.op)[k]([values[a] for a in step.args])  # type: ignore[arg-type]
                 for i, step in enumerate(graph.steps) if isinstance(step, Apply) and OPS[step.op].kink is not None
                 for k in range(len(step.args))}
        for _ in range(_CONDITION_SAMPLES):
            def sign() -> int:
                return 1 if rng.random() < 0.5 else -1

            moved: list[Scalar] = []
            for i, step in enumerate(graph.steps):
                op = step.op if isinstance(step, Apply) else ""
                v = _mp_apply(op, [moved[a] for a in step.args]) if op else values[i]
                # Inputs, op results and constants that binary floats cannot hold (0.1, not 2 or 0.5) are
                # rounded; a constant is rounded once, so every use shares its error.
                ulps = _ULPS.get(op, 1)
                inexact = isinstance(step, Const) and _inexact(step.value)
                moved.append(v * (1 + sign() * ulps * tau) if graph.varying[i] or inexact else v)

            def jitter(op: str, p: Scalar) -> Scalar:
                return p * (1 + sign() * tau) + sign() * tau * _ABSOLUTE_ROUNDING.get(op, 0)

            adj = adjoints(graph, moved, local=kinks, jitter=jitter)
            for name, i in names.items():
                worst[name] = _larger(worst[name], adj[i] - base[i], tau)
            worst[""] = _larger(worst[""], moved[graph.output] - values[graph.output], tau)
    return {k: v * _CONDITION_SAFETY for k, v in worst.items()}


def _inexact(const: Fraction | None) -> bool:
    """A constant that a binary float cannot represent exactly (its denominator is not a power of 2)."""
    return const is not None and const.denominator & (const.denominator - 1) != 0


def _larger(current: Scalar, change: Scalar, tau: Scalar) -> Scalar:
    if mpmath.isnan(change):  # a perturbation left the domain: rounding can break this quantity
        return mpmath.inf
    return max(current, abs(change) / tau)

