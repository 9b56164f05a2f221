"""How far a correct engine's rounding can move each quantity: a deterministic first-order bound.

A float engine rounds every input it is given, every constant a binary float cannot hold, every op's
result, and, in backward, every local partial, every product ``adjoint * partial`` and every sum
that accumulates a gradient. Each rounding is a relative error of at most ``ulps * eps`` (the op
row's budget; half an ulp for a correctly rounded result), plus, for a result below the smallest
normal number, that number (underflow, or an engine that flushes subnormals to zero). To first order
a quantity moves by the sum, over the roundings, of ``|sensitivity to that rounding| * (its largest
error)``, and that sum is the allowance, computed exactly (mpmath) along the graph: no sampling, so
no luck.

Sensitivities. The value's sensitivity to a rounding of node ``m`` is the adjoint ``d out/d m``. A
gradient ``d out/d j`` is itself a function of every forward value, so its sensitivity to a rounding
of ``m`` is the second derivative ``d2 out/(dj dm)``: one forward-over-reverse sweep seeded at ``j``
gives that row of the Hessian for every ``m`` at once (the tangent ``t = d node/d j`` forward, then
its adjoint backward). The same tangent is the sensitivity of ``d out/d j`` to an error made in the
backward sweep at node ``a`` (the reverse sweep is linear in what flows through it). So each quantity
costs one extra sweep, whatever the number of roundings: a 10,000-step chain is four sweeps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from functools import cache

import mpmath
import sympy

from gradspec.graph.ir import Apply, Const, Graph, Leaf
from gradspec.ops.table import OPS
from gradspec.reference.chain import Partial, forward, local_partials
from gradspec.reference.exact import DPS
from gradspec.reference.mpeval import Scalar, compile_expr, to_mpf

__all__ = ["allowances", "bounds", "smallest_normal"]

# The smallest normal number of each IEEE format by its machine epsilon: below it results lose
# relative accuracy (and some engines flush them to zero), so each rounding may also err by this much.
_TINY = {2.0**-52: 2.0**-1022, 2.0**-23: 2.0**-126, 2.0**-10: 2.0**-14, 2.0**-7: 2.0**-126}


def smallest_normal(eps: float) -> float:
    return _TINY.get(eps, 2.0**-126 if eps > 1e-10 else 2.0**-1022)


@cache
def _second_partials(name: str) -> tuple[tuple[Partial, ...], ...]:
    """d2 op/(d a_k d a_l); zero for a piecewise op with a kink, whose derivative jumps rather than bends
    (an op whose kink only a keyword brings, as logit's eps, bends like any other without it)."""
    op = OPS[name]
    dummies = [sympy.Dummy(f"a{i}", real=True) for i in range(op.arity)]
    form = op.sympy(*dummies)

    def compiled(expr: sympy.Expr) -> Partial:
        body = compile_expr(expr)
        return lambda args: body({d: args[i] for i, d in enumerate(dummies)})

    if op.kink is not None and form.has(sympy.Piecewise):
        return tuple(tuple(compiled(sympy.Integer(0)) for _ in dummies) for _ in dummies)
    return tuple(tuple(compiled(sympy.diff(form, dk, dl)) for dl in dummies) for dk in dummies)


def _representable(x: Fraction, bits: int) -> bool:
    """Whether a binary float with ``bits`` significant bits holds ``x`` exactly (range aside)."""
    den = x.denominator
    if den & (den - 1):
        return False
    num = abs(x.numerator)
    if num == 0:
        return True
    num >>= (num & -num).bit_length() - 1  # strip trailing zero bits
    return num.bit_length() <= bits


def allowances(graph: Graph, point: tuple[tuple[str, Fraction], ...], eps: float) -> dict[str, float]:
    """The rounding allowance of every quantity of ``graph`` at ``point`` on an engine whose machine
    epsilon is ``eps``: absolute, keyed by input or intermediate name, ``""`` for the value. It
    includes what a partial rebuilt from the op's rounded output loses (the op row's ``partial_abs``).

    ``inf`` where the bound is undefined (an infinite or nan value along the way). Nothing is
    remembered here: :meth:`gradspec.reference.store.Reference.rounding` is the memo.
    """
    tight, rebuilt = bounds(graph, point, eps)
    return {name: tight[name] + rebuilt[name] for name in tight}


def bounds(graph: Graph, point: tuple[tuple[str, Fraction], ...], eps: float) -> tuple[dict[str, float], dict[str, float]]:
    """Two parts of :func:`allowances`: what an engine whose every local partial keeps its relative
    precision can err by (the precision bound: beyond it a quantity is ``imprecise``), and what partials
    rebuilt from a rounded output (``1 - t*t`` from a rounded ``tanh``) may lose on top of it, in absolute
    terms (beyond both, the engine fails)."""
    exact_point = dict(point)
    with mpmath.workdps(DPS):
        values, _ = forward(graph, {n: to_mpf(exact_point[n]) for n, _ in graph.inputs})
        leaves = [exact_point[s.name] if isinstance(s, Leaf) else s.value if isinstance(s, Const) else None
                  for s in graph.steps]
        return _bounds(graph, values, leaves, eps)


def _bounds(graph: Graph, values: list[Scalar], exact_leaves: Sequence[Fraction | None],
            eps: float) -> tuple[dict[str, float], dict[str, float]]:
    n = len(graph.steps)
    u = mpmath.mpf(eps) / 2
    tiny = mpmath.mpf(smallest_normal(eps))
    bits = round(1 - math.log2(eps))
    steps = graph.steps
    partials: list[list[Scalar]] = [[] for _ in range(n)]
    seconds: list[list[list[Scalar]]] = [[] for _ in range(n)]
    rounding: list[Scalar] = [mpmath.mpf(0)] * n  # the largest error of each node's forward value
    lost: list[Scalar] = [mpmath.mpf(0)] * n  # what values formed by cancelling terms (gelu) add to it
    scaled: list[list[Scalar]] = [[] for _ in range(n)]  # each argument's rounding inside the op (Op.arg_ulps)

    def below(x: Scalar) -> Scalar:  # underflow: a result below the smallest normal may lose it all
        return tiny if abs(x) < tiny else 0

    for i, step in enumerate(steps):
        v = abs(values[i])
        if not isinstance(step, Apply):
            leaf = exact_leaves[i]
            if leaf is not None and not _representable(leaf, bits):
                rounding[i] = v * u + below(v)
            continue
        op = OPS[step.op]
        args = [values[a] for a in step.args]
        partials[i] = [p(args) for p in local_partials(step.op)]
        seconds[i] = [[q(args) for q in row] for row in _second_partials(step.op)]
        own = op.rebuilt_abs(0, args, values[i]) * eps if graph.varying[i] else 0  # a folded constant: one rounding
        carried = mpmath.fsum(abs(partials[i][k]) * lost[a] for k, a in enumerate(step.args) if lost[a])
        lost[i] = own + carried if own or carried else lost[i]
        if op.arg_ulps:  # the op rounds a scaled copy of its arguments first
            scaled[i] = [abs(x) * op.arg_ulps * eps for x in args]
        if graph.varying[i]:
            rounding[i] = v * op.ulps * eps + (below(v) if op.ulps else 0)
            if scaled[i]:
                rounding[i] += mpmath.fsum(abs(p) * e for p, e in zip(partials[i], scaled[i], strict=True))
        else:  # folded in float64 by the engine layer, then handed to the engine as one constant
            rounding[i] = v * (u + op.ulps * 2.0**-52) + below(v)

    adj = _reverse(graph, partials)
    out: dict[str, float] = {"": _finite(mpmath.fsum(abs(a) * r for a, r in zip(adj, rounding, strict=True) if r))}
    rebuilt: dict[str, float] = {"": _finite(lost[graph.output])}

    # What the backward sweep itself rounds: each contribution adjoint * partial (its partial computed
    # to the op's partial budget, the product rounded once unless the partial is +-1), and each sum of
    # two or more contributions into one node.
    edge_error: list[list[Scalar]] = [[] for _ in range(n)]
    edge_rebuilt: list[list[Scalar]] = [[] for _ in range(n)]  # the partial_abs part, kept apart
    total: list[Scalar] = [mpmath.mpf(0)] * n
    count = [0] * n
    for i, step in enumerate(steps):
        if not isinstance(step, Apply) or adj[i] == 0:
            continue
        op = OPS[step.op]
        for k, a in enumerate(step.args):
            if not graph.varying[a]:
                edge_error[i].append(mpmath.mpf(0))
                edge_rebuilt[i].append(mpmath.mpf(0))
                continue
            p = partials[i][k]
            product = 0 if abs(p) == 1 else u
            err = abs(adj[i]) * (abs(p) * (op.partial_ulps * eps + product) + below(p)) + below(adj[i] * p)
            if scaled[i]:  # the partial, of arguments the op rounds first
                err += abs(adj[i]) * mpmath.fsum(abs(q) * e for q, e in zip(seconds[i][k], scaled[i], strict=True))
            edge_error[i].append(err)
            edge_rebuilt[i].append(abs(adj[i]) * op.rebuilt_abs(1, [values[b] for b in step.args], p) * eps)
            total[a] += abs(adj[i] * p)
            count[a] += 1
    accumulate = [u * (count[a] - 1) * total[a] if count[a] > 1 else mpmath.mpf(0) for a in range(n)]

    done: dict[int, tuple[float, float]] = {}
    for name, j in graph.inputs + graph.intermediates:
        if j not in done:
            tight, extra = _gradient_bound(graph, j, partials, seconds, adj, rounding, edge_error, edge_rebuilt,
                                           accumulate, lost)
            done[j] = _finite(tight), _finite(extra)
        out[name], rebuilt[name] = done[j]
    return out, rebuilt


def _reverse(graph: Graph, partials: list[list[Scalar]]) -> list[Scalar]:
    """d out/d node for every node, constants included (their rounding matters as much)."""
    adj = [mpmath.mpf(0)] * len(graph.steps)
    adj[graph.output] = mpmath.mpf(1)
    for i in range(len(graph.steps) - 1, -1, -1):
        step = graph.steps[i]
        if not isinstance(step, Apply) or adj[i] == 0:
            continue
        for k, a in enumerate(step.args):
            adj[a] += adj[i] * partials[i][k]
    return adj


def _gradient_bound(
    graph: Graph,
    j: int,
    partials: list[list[Scalar]],
    seconds: list[list[list[Scalar]]],
    adj: list[Scalar],
    rounding: list[Scalar],
    edge_error: list[list[Scalar]],
    edge_rebuilt: list[list[Scalar]],
    accumulate: list[Scalar],
    lost: list[Scalar],
) -> tuple[Scalar, Scalar]:
    """The allowance of d out/d node j (precision bound, rebuilt-partial part): one tangent sweep seeded
    at j, then its adjoint."""
    steps = graph.steps
    n = len(steps)
    tangent = [mpmath.mpf(0)] * n
    tangent[j] = mpmath.mpf(1)
    for i in range(j + 1, n):
        step = steps[i]
        if isinstance(step, Apply):
            tangent[i] = mpmath.fsum(partials[i][k] * tangent[a] for k, a in enumerate(step.args) if tangent[a])
    # The adjoint of the tangent: d(d out/d j)/d node, the Hessian's row j.
    second = [mpmath.mpf(0)] * n
    for i in range(n - 1, -1, -1):
        step = steps[i]
        if not isinstance(step, Apply):
            continue
        moving = [(m, tangent[a]) for m, a in enumerate(step.args) if tangent[a]]
        for k, a in enumerate(step.args):
            flow = second[i] * partials[i][k] if second[i] else 0
            bend = mpmath.fsum(seconds[i][k][m] * t for m, t in moving) * adj[i] if moving and adj[i] else 0
            if flow or bend:
                second[a] += flow + bend
    terms = [abs(second[m]) * rounding[m] for m in range(n) if rounding[m] and second[m]]
    for i, step in enumerate(steps):
        if not isinstance(step, Apply) or not edge_error[i]:
            continue
        terms.extend(abs(tangent[a]) * edge_error[i][k] for k, a in enumerate(step.args) if tangent[a])
    terms.extend(abs(tangent[a]) * accumulate[a] for a in range(n) if tangent[a] and accumulate[a])
    extra = [abs(tangent[a]) * edge_rebuilt[i][k] for i, step in enumerate(steps) if isinstance(step, Apply)
             and edge_rebuilt[i] for k, a in enumerate(step.args) if tangent[a] and edge_rebuilt[i][k]]
    extra.extend(abs(second[m]) * lost[m] for m in range(n) if lost[m] and second[m])
    return mpmath.fsum(terms), mpmath.fsum(extra)


def _finite(bound: Scalar) -> float:
    # An infinite or undefined sensitivity (an op pushed to inf or nan along the way): rounding can
    # move this quantity arbitrarily, which is the honest first-order answer.
    return math.inf if mpmath.isnan(bound) or mpmath.isinf(bound) else float(bound)
