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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import sympy

from gradspec.graph.ir import Apply, Const, Graph, Leaf
from gradspec.ops.table import OPS
from gradspec.reference.chain import Kinked, adjoints, forward, subgradient_ranges
from gradspec.reference.mpeval import Env, Scalar, compile_expr, to_mpf

__all__ = ["DPS", "SYMBOLIC_DEPTH", "SYMBOLIC_LIMIT", "Derivation", "Exact", "Kinked", "derive", "exact_at", "small"]

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
