"""The chain rule at full precision, one step at a time: every step's exact value (checking each op's
domain and noting kinks) and every step's adjoint, from local partials SymPy derives from each op's form.

Used where one SymPy expression for the whole graph is too large or too deep, to explore the
subgradients at kinks, to localise a failure node by node, and to bound rounding (:mod:`gradspec.reference.rounding`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import mpmath
import sympy

from gradspec.errors import DomainError
from gradspec.graph.ir import Apply, Const, Graph, Leaf
from gradspec.graph.printer import step_text
from gradspec.ops.table import OPS
from gradspec.reference.mpeval import Scalar, compile_expr, to_mpf

#: An op, or one of its partial derivatives, as a function of the op's arguments.
Partial = Callable[[Sequence[Scalar]], Scalar]

__all__ = ["Kinked", "Partial", "adjoints", "derivative", "forward", "local_partials", "mp_apply", "subgradient_ranges"]


@dataclass(frozen=True)
class Kinked:
    step: int
    where: str  # "relu at 0"


def forward(graph: Graph, env: Mapping[str, Scalar]) -> tuple[list[Scalar], list[Kinked]]:
    """Every step's exact value, checking domains and noting kinks on the way."""
    values: list[Scalar] = []
    kinks: list[Kinked] = []
    for i, step in enumerate(graph.steps):
        if isinstance(step, Leaf):
            values.append(env[step.name])
            continue
        if isinstance(step, Const):
            values.append(to_mpf(step.value))
            continue
        op = OPS[step.op]
        args = [values[a] for a in step.args]
        if op.domain is not None:
            problem = op.domain(args, [graph.varying[a] for a in step.args])
            if problem:
                raise DomainError(f"{problem} (in {step_text(graph, i)})", col=step.col or None)
        if op.kink is not None and op.kink.at(args):
            kinks.append(Kinked(i, op.kink.where))
        values.append(mp_apply(step.op, args))
    return values, kinks


@cache
def derivative(name: str, multi: tuple[int, ...] = ()) -> Partial:
    """The op (``multi`` empty) or its partial derivative by its arguments ``multi``, in that order,
    derived by SymPy from the op's own form and compiled for exact evaluation."""
    op = OPS[name]
    dummies = [sympy.Dummy(f"a{i}", real=True) for i in range(op.arity)]
    form = op.sympy(*dummies)
    for k in multi:
        # abs'' and sign' are DiracDelta: zero away from the kink (where higher derivatives are not checked)
        form = sympy.diff(form, dummies[k]).replace(sympy.DiracDelta, lambda *_: sympy.S.Zero)
        # x**y*y/x as y*x**(y - 1): the same function, and defined at x = 0 where the first is 0/0
        form = sympy.powsimp(form, force=True)
    body = compile_expr(form)
    return lambda args: body({d: args[i] for i, d in enumerate(dummies)})


@cache
def local_partials(name: str) -> tuple[Partial, ...]:
    """d op / d argument for each argument."""
    return tuple(derivative(name, (k,)) for k in range(OPS[name].arity))


def mp_apply(name: str, args: list[Scalar]) -> Scalar:
    return derivative(name)(args)


def adjoints(
    graph: Graph,
    values: list[Scalar],
    local: Mapping[tuple[int, int], Scalar] | None = None,
) -> list[Scalar]:
    """Exact reverse accumulation: d output / d step for every step (chain rule at full precision).

    ``local`` overrides chosen local partials ``(step, argument) -> value``, used to explore the
    subgradients at kinks.
    """
    adj = [mpmath.mpf(0)] * len(graph.steps)
    adj[graph.output] = mpmath.mpf(1)
    for i in range(len(graph.steps) - 1, -1, -1):
        step = graph.steps[i]
        if not isinstance(step, Apply) or adj[i] == 0:
            continue
        args = [values[a] for a in step.args]
        partials = local_partials(step.op)
        for k, a in enumerate(step.args):
            if not graph.varying[a]:
                continue
            p = local[(i, k)] if local and (i, k) in local else partials[k](args)
            adj[a] += adj[i] * p
    return adj


# How many units in the last place an engine may err per op: IEEE arithmetic rounds correctly (1),


def subgradient_ranges(graph: Graph, values: list[Scalar], kinks: list[Kinked]) -> dict[str, tuple[Scalar, Scalar]]:
    """Gradient range over every corner of the kinks' subgradient intervals (multilinear in them)."""
    corners: list[dict[tuple[int, int], Scalar]] = [{}]
    for kink in kinks[:10]:  # 2**10 corners at most; more kinks than that keep the declared convention
        step = graph.steps[kink.step]
        assert isinstance(step, Apply)
        declared = OPS[step.op].kink
        assert declared is not None, "a kinked step is an op with a kink"
        interval = declared.interval_for([values[a] for a in step.args])
        corners = [c | {(kink.step, k): mpmath.mpf(end)} for c in corners for k in range(len(step.args)) for end in interval[k]]
    names = dict(graph.inputs + graph.intermediates)
    ranges: dict[str, tuple[Scalar, Scalar]] = {}
    for corner in corners:
        adj = adjoints(graph, values, corner)
        for name, index in names.items():
            lo, hi = ranges.get(name, (adj[index], adj[index]))
            ranges[name] = (min(lo, adj[index]), max(hi, adj[index]))
    return ranges
