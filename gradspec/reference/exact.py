"""The two references an engine is judged against.

*Exact*: the graph is rebuilt in SymPy over real symbols, differentiated with respect to every input
and every named intermediate, and each derivative is evaluated at the point taken as exact decimals,
with mpmath at ``DPS`` significant digits. Derivations are cached per graph, so many points cost one
derivation. A forward pass at the same precision checks every op's domain and finds kinks.

*Numerical*: the central difference of the float forms in the op table, refined by one Richardson
step, ``(4 D(h/2) - D(h)) / 3``, with ``h`` scaled by the magnitude of the variable.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache
from typing import Any

import mpmath
import sympy

from gradspec.errors import DomainError
from gradspec.graph.ir import Graph
from gradspec.limits import LIMITS, TimeLimit, deadline
from gradspec.ops.table import OPS
from gradspec.reference.cache import CACHE, decode, encode
from gradspec.reference.mpeval import Env, Scalar, compile_expr, to_mpf

__all__ = ["DPS", "Derivation", "Exact", "derive", "exact", "numerical", "numerical_all", "relative_error"]

DPS = 60  # working precision; results are trusted to well over 30 significant digits
mp = mpmath.mp



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
class Kinked:
    step: int
    where: str  # "relu at 0"


@dataclass(frozen=True)
class Exact:
    """Exact value and gradients of a graph at one point."""

    value: Scalar
    grads: dict[str, Scalar]
    kinks: tuple[Kinked, ...]
    # Per name: the (low, high) range the gradient spans over every subgradient choice at the kinks.
    subgradients: dict[str, tuple[Scalar, Scalar]]


@lru_cache(maxsize=2048)
def derive(graph: Graph) -> Derivation:
    """Differentiate ``graph`` once; every later point reuses the result."""
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
        elif step.name is not None:
            out.append(symbols[step.name])
        elif step.op is None:
            assert step.const is not None
            out.append(sympy.Rational(step.const.numerator, step.const.denominator))
        else:
            out.append(OPS[step.op].sympy(*(out[a] for a in step.args)))
    return out


SYMBOLIC_LIMIT = 400  # op steps; larger graphs are differentiated step by step
SYMBOLIC_DEPTH = 60  # nesting; SymPy and the compiled evaluators recurse once per level


_OVER_BUDGET: set[int] = set()  # graphs whose SymPy derivation ran out of time (by id; graphs are cached)


def over_budget(graph: Graph) -> str:
    """A note for a graph whose SymPy derivation ran out of time, else ""."""
    if id(graph) in _OVER_BUDGET or CACHE.over_budget(graph):
        return (f"the symbolic derivative is too large (SymPy needed over {LIMITS.derivation:g} s); "
                "exact values come from the chain rule, step by step")
    return ""


def symbolic(graph: Graph) -> bool:
    """Whether ``graph`` is differentiated as one SymPy expression: small, shallow, and within budget."""
    return _small(graph) and id(graph) not in _OVER_BUDGET


@lru_cache(maxsize=4096)
def _small(graph: Graph) -> bool:
    return sum(1 for s in graph.steps if s.op is not None) <= SYMBOLIC_LIMIT and graph.depth <= SYMBOLIC_DEPTH


def exact(graph: Graph, point: Mapping[str, Fraction]) -> Exact:
    """Exact value and gradients at ``point``; raises :class:`DomainError` outside an op's domain.

    Results are remembered on disk (:mod:`gradspec.reference.cache`), so a second run needs no SymPy.
    """
    key = {name: point[name] for name, _ in graph.inputs}
    memo_key = (graph, tuple(key.items()))
    found = _MEMO.get(memo_key)
    if found is not None:
        return found
    record = CACHE.get(graph, key)
    result = None
    if record is not None:
        with contextlib.suppress(KeyError, ValueError, TypeError):  # a damaged record is recomputed
            result = _decode(record)
    if result is None:
        result = _exact(graph, point)
        CACHE.put(graph, key, _encode(result))
        if id(graph) in _OVER_BUDGET:
            CACHE.mark_over_budget(graph)
    if len(_MEMO) > 100_000:
        _MEMO.clear()
    _MEMO[memo_key] = result
    return result


_MEMO: dict[tuple[Graph, tuple[tuple[str, Fraction], ...]], Exact] = {}  # this process's decoded results


def _encode(e: Exact) -> dict[str, object]:
    return {"v": encode(e.value), "g": {n: encode(g) for n, g in e.grads.items()},
            "k": [[k.step, k.where] for k in e.kinks],
            "s": {n: [encode(lo), encode(hi)] for n, (lo, hi) in e.subgradients.items()}}


def _decode(r: dict[str, Any]) -> Exact:
    with mpmath.workdps(DPS):
        return Exact(decode(r["v"]), {n: decode(g) for n, g in r["g"].items()},
                     tuple(Kinked(int(s), str(w)) for s, w in r["k"]),
                     {n: (decode(lo), decode(hi)) for n, (lo, hi) in r["s"].items()})


def _exact(graph: Graph, point: Mapping[str, Fraction]) -> Exact:
    with mpmath.workdps(DPS):
        env = {name: to_mpf(point[name]) for name, _ in graph.inputs}
        values, kinks = forward(graph, env)
        symbolic_result = _symbolic_exact(graph, env) if symbolic(graph) else None
        if symbolic_result is not None:
            value, grads = symbolic_result
        else:  # too deep or too large for one SymPy expression: the chain rule, one exact step at a time
            adj = adjoints(graph, values)
            value = values[graph.output]
            grads = {n: adj[i] for n, i in graph.inputs + graph.intermediates}
        ranges = _subgradient_ranges(graph, values, kinks) if kinks else {}
    return Exact(value, grads, tuple(kinks), ranges)


def _symbolic_exact(graph: Graph, env: Mapping[str, Scalar]) -> tuple[Scalar, dict[str, Scalar]] | None:
    """Value and gradients from the SymPy derivatives, or None when the derivation or its evaluation
    exploded past the time budget (the graph is then differentiated step by step from now on)."""
    try:
        with deadline(LIMITS.derivation):
            d = derive(graph)
            sym_env = {d.symbols[n]: v for n, v in env.items()}
            return d.evaluate("", sym_env), {n: d.evaluate(n, sym_env) for n in d.grads}
    except (TimeLimit, RecursionError):
        _OVER_BUDGET.add(id(graph))
        return None


def forward(graph: Graph, env: Mapping[str, Scalar]) -> tuple[list[Scalar], list[Kinked]]:
    """Every step's exact value, checking domains and noting kinks on the way."""
    values: list[Scalar] = []
    kinks: list[Kinked] = []
    for i, step in enumerate(graph.steps):
        if step.name is not None:
            values.append(env[step.name])
            continue
        if step.op is None:
            assert step.const is not None
            values.append(to_mpf(step.const))
            continue
        op = OPS[step.op]
        args = [values[a] for a in step.args]
        if op.domain is not None:
            problem = op.domain(args, [graph.varying[a] for a in step.args])
            if problem:
                raise DomainError(f"{problem} (in {_step_text(graph, i)})", col=step.col or None)
        if op.kink is not None and op.kink.at(args):
            kinks.append(Kinked(i, op.kink.where))
        values.append(_mp_apply(step.op, args))
    return values, kinks


def _step_text(graph: Graph, index: int) -> str:
    step = graph.steps[index]
    return f"{step.op}({', '.join(graph.label(a) for a in step.args)})"


@cache
def _local_partials(name: str) -> tuple[Callable[[Env], Scalar], ...]:
    """d op / d argument for each argument, derived by SymPy from the op's own form."""
    op = OPS[name]
    dummies = [sympy.Dummy(f"a{i}", real=True) for i in range(op.arity)]
    form = op.sympy(*dummies)
    return tuple(_compile_with(sympy.diff(form, d), dummies) for d in dummies)


@cache
def _op_value(name: str) -> Callable[[Env], Scalar]:
    op = OPS[name]
    dummies = [sympy.Dummy(f"a{i}", real=True) for i in range(op.arity)]
    return _compile_with(op.sympy(*dummies), dummies)


def _compile_with(expr: sympy.Expr, dummies: list[sympy.Dummy]) -> Callable[[Env], Scalar]:
    body = compile_expr(expr)
    return lambda args: body({d: args[i] for i, d in enumerate(dummies)})  # type: ignore[index]


def _mp_apply(name: str, args: list[Scalar]) -> Scalar:
    return _op_value(name)(args)  # type: ignore[arg-type]


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
        if step.op is None or adj[i] == 0:
            continue
        args = [values[a] for a in step.args]
        partials = _local_partials(step.op)
        for k, a in enumerate(step.args):
            if not graph.varying[a]:
                continue
            p = local[(i, k)] if local and (i, k) in local else partials[k](args)  # type: ignore[arg-type]
            adj[a] += adj[i] * p
    return adj


def _subgradient_ranges(graph: Graph, values: list[Scalar], kinks: list[Kinked]) -> dict[str, tuple[Scalar, Scalar]]:
    """Gradient range over every corner of the kinks' subgradient intervals (multilinear in them)."""
    corners: list[dict[tuple[int, int], Scalar]] = [{}]
    for kink in kinks[:10]:  # 2**10 corners at most; more kinks than that keep the declared convention
        step = graph.steps[kink.step]
        interval = OPS[step.op or ""].kink.interval  # type: ignore[union-attr]
        corners = [c | {(kink.step, k): mpmath.mpf(end)} for c in corners for k in range(len(step.args)) for end in interval[k]]
    names = dict(graph.inputs + graph.intermediates)
    ranges: dict[str, tuple[Scalar, Scalar]] = {}
    for corner in corners:
        adj = adjoints(graph, values, corner)
        for name, index in names.items():
            lo, hi = ranges.get(name, (adj[index], adj[index]))
            ranges[name] = (min(lo, adj[index]), max(hi, adj[index]))
    return ranges


# -- numerical reference ----------------------------------------------------------------------------


def float_forward(graph: Graph, inputs: Mapping[str, float], override: tuple[int, float] | None = None) -> float:
    """The graph's output in float64 through the op table's float forms; nan where they fail."""
    values: list[float] = []
    for i, step in enumerate(graph.steps):
        if override is not None and i == override[0]:
            values.append(override[1])
        elif step.name is not None:
            values.append(inputs[step.name])
        elif step.op is None:
            values.append(float(step.const))  # type: ignore[arg-type]
        else:
            try:
                values.append(float(OPS[step.op].fn(*(values[a] for a in step.args))))
            except (ArithmeticError, ValueError, TypeError):
                values.append(math.nan)
    return values[graph.output]


def numerical(graph: Graph, inputs: Mapping[str, float], name: str, h: float = 1e-4) -> float | None:
    """Central difference with one Richardson step for input or intermediate ``name``; None if the
    steps leave the function's domain."""
    index = graph.names[name]
    x0 = inputs[name] if name in dict(graph.inputs) else _float_value_of(graph, inputs, index)
    step = h * max(1.0, abs(x0))

    def f(x: float) -> float:
        return float_forward(graph, inputs, (index, x))

    def central(s: float) -> float:
        return (f(x0 + s) - f(x0 - s)) / (2 * s)

    for _ in range(4):  # shrink the step when it crosses a domain boundary
        d1, d2 = central(step), central(step / 2)
        if math.isfinite(d1) and math.isfinite(d2):
            return (4 * d2 - d1) / 3
        step /= 100
    return None


def numerical_all(graph: Graph, point: Mapping[str, Fraction], h: float) -> dict[str, float | None]:
    """The numerical reference for every input and intermediate, remembered on disk with the exact one."""
    key = {name: point[name] for name, _ in graph.inputs}
    field = f"n{h!r}"
    record = CACHE.get(graph, key)
    if record is not None and isinstance(record.get(field), dict):
        return {n: (None if v is None else float(v)) for n, v in record[field].items()}
    floats = {k: float(v) for k, v in key.items()}
    result = {n: numerical(graph, floats, n, h) for n, _ in graph.inputs + graph.intermediates}
    CACHE.note(graph, key, field, result)
    return result


def _float_value_of(graph: Graph, inputs: Mapping[str, float], index: int) -> float:
    sub = Graph(graph.program, graph.steps, index, graph.inputs, (), graph.varying)
    return float_forward(sub, inputs)


def relative_error(computed: float, reference: float, floor: float = 1e-8) -> float:
    """|computed - reference| / max(|computed|, |reference|, floor): the classic gradient-check metric."""
    if computed == reference:
        return 0.0
    if math.isnan(computed) or math.isnan(reference) or math.isinf(computed) or math.isinf(reference):
        return math.inf
    return abs(computed - reference) / max(abs(computed), abs(reference), floor)
