"""Training cases: a small MLP learns from data on the engine under test.

A training case reads its model and data from the case file (:func:`load`), trains with the engine's
own primitives (:func:`train`), and is judged twice: the loss must fall by the declared ratio, and the
engine's first gradient must match the exact gradient of the same loss graph, replayed at high
precision. The layout follows :class:`gradspec.nn.MLP`, so the same seed gives the same weights.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Callable, Hashable, Sequence
from fractions import Fraction
from typing import Any

import mpmath

from gradspec.casefile.model import Case, Point, Reader, Training
from gradspec.diagnose.debug import localise
from gradspec.engines import call
from gradspec.engines.protocol import Engine
from gradspec.errors import CaseFileError, ExpressionError, GradspecError
from gradspec.graph.ir import Graph, GraphBuilder, build
from gradspec.lang.expr import Name, Program, parse
from gradspec.lang.numbers import exact_number
from gradspec.ops.table import OPS, Op
from gradspec.reference.chain import adjoints, forward
from gradspec.reference.exact import DPS
from gradspec.reference.numerical import relative_error
from gradspec.reference.store import exact
from gradspec.results import CheckResult, Culprit, Quantity, Role, Tolerance, Verdict, worst

__all__ = ["MAX_WORK", "initial_params", "load", "load_case", "mlp_loss", "run_case", "train"]

MAX_WORK = 50_000_000  # rows x steps x weights

Fail = Callable[..., CaseFileError]  # fail(message, *key path inside the case) -> a located error


# -- the spec, from a case's raw mapping ----------------------------------------------------------------


def load_case(reader: Reader, names: list[str]) -> tuple[None, Training]:
    """A training case builds no graph of its own: its spec is the model, the data and the schedule."""
    return None, load(reader.raw, reader.fail)


def run_case(case: Case, point: Point | None, engine: Engine) -> CheckResult:
    assert isinstance(case.spec, Training)
    return train(case.spec, case.tolerance, engine)


def load(raw: dict[str, Any], fail: Fail) -> Training:
    """The :class:`Training` spec of a schema-valid training case; located errors come from ``fail``."""
    model, data = raw["model"], raw["data"]
    sizes = tuple(int(s) for s in model["sizes"])
    if sizes[-1] != 1:
        raise fail("a training model has one output: the last size must be 1", "model", "sizes")
    rows = [tuple(float(v) for v in (r if isinstance(r, list) else [r])) for r in data["x"]]
    for i, r in enumerate(rows):
        if len(r) != sizes[0]:
            raise fail(f"row {i} has {len(r)} inputs; the model takes {sizes[0]}", "data", "x", i)
        if not all(math.isfinite(v) for v in r):
            raise fail(f"row {i} is not finite", "data", "x", i)
    if ("y" in data) == ("target" in data):
        raise fail("give the targets as `y` or as `target`, exactly one", "data")
    if "y" in data:
        ys = tuple(float(v) for v in data["y"])
        if len(ys) != len(rows):
            raise fail(f"{len(ys)} targets for {len(rows)} rows", "data", "y")
    else:
        ys = _targets(data["target"], rows, fail)
    work = len(rows) * int(raw["steps"]) * sum(a * b for a, b in itertools.pairwise(sizes))
    if work > MAX_WORK:
        raise fail("training case is too large (rows x steps x weights > 5e7)", "steps")
    return Training(sizes, model.get("activation", "relu"), int(model.get("seed", 0)), tuple(rows), ys,
                    int(raw["steps"]), float(raw["lr"]), float(raw["loss_ratio"]))


def _targets(text: str, rows: list[tuple[float, ...]], fail: Fail) -> tuple[float, ...]:
    """``data.target`` evaluated exactly at every row (inputs ``x``, or ``x0``, ``x1``, ...)."""
    where: tuple[Hashable, ...] = ("data", "target")
    try:
        program = parse(text)
    except ExpressionError as exc:
        raise fail(f"data.target: {exc.message}", *where) from None
    names = ["x"] if len(rows[0]) == 1 else [f"x{i}" for i in range(len(rows[0]))]
    missing = [n for n in program.inputs if n not in names]
    if missing:
        raise fail(f"data.target: undefined variable {missing[0]!r} (use {', '.join(names)})", *where)
    graph = build(program, tuple(n for n in names if n not in program.inputs))
    out = []
    for r in rows:
        try:
            ref = exact(graph, {n: exact_number(v) for n, v in zip(names, r, strict=True)})
        except GradspecError as exc:
            raise fail(f"target at {r}: {exc.message}", *where) from None
        out.append(float(ref.value))
    return tuple(out)


# -- the model, built from an engine's primitives ---------------------------------------------------------


def mlp_loss(engine: Engine, params: list[Any], spec: Training) -> Any:
    """Sum of squared errors of the MLP over the data set, built from the engine's own ops.

    The layout matches :class:`gradspec.nn.MLP`: per layer, per neuron, ``b + sum(w_i * x_i)``, the
    activation on hidden layers, a linear output. ``params`` holds each neuron's weights then its bias.
    """
    add, sub, mul = OPS["add"], OPS["sub"], OPS["mul"]
    act = OPS[spec.activation]
    total: Any = None
    for row, target in zip(spec.x, spec.y, strict=True):
        acts: list[Any] = [engine.const(v) for v in row]
        k = 0
        for layer, (nin, nout) in enumerate(itertools.pairwise(spec.sizes)):
            outs = []
            for _ in range(nout):
                z = params[k + nin]
                for i in range(nin):
                    z = engine.apply(add, [z, engine.apply(mul, [params[k + i], acts[i]])])
                k += nin + 1
                outs.append(engine.apply(act, [z]) if layer < len(spec.sizes) - 2 else z)
            acts = outs
        diff = engine.apply(sub, [acts[0], engine.const(target)])
        sq = engine.apply(mul, [diff, diff])
        total = sq if total is None else engine.apply(add, [total, sq])
    return total


def initial_params(spec: Training) -> list[float]:
    rng = random.Random(spec.seed)  # the same draws, in the same order, as gradspec.nn.MLP
    params: list[float] = []
    for nin, nout in itertools.pairwise(spec.sizes):
        for _ in range(nout):
            params += [rng.uniform(-1.0, 1.0) for _ in range(nin)] + [0.0]
    return params


class _Recorder(Engine):
    """Records what the training code builds as a gradspec graph, for the exact first-step gradient."""

    def __init__(self) -> None:
        self.graph = GraphBuilder()

    def leaf(self, x: float) -> int:
        return self.graph.leaf(f"p{len(self.graph.steps)}")

    def const(self, x: float) -> int:
        return self.graph.const(Fraction(repr(float(x))))

    def apply(self, op: Op, args: Sequence[Any]) -> int:
        return self.graph.apply(op.name, args)


def _loss_graph(spec: Training, params: list[float]) -> tuple[Graph, list[int]]:
    """The training loss as a gradspec graph, and the steps of its parameters (in ``params`` order)."""
    rec = _Recorder()
    leaves = [rec.leaf(p) for p in params]
    out = mlp_loss(rec, leaves, spec)
    return rec.graph.graph(Program("training loss", (), Name("loss"), ()), out), leaves


def _exact_first_gradient(spec: Training, params: list[float]) -> list[float]:
    graph, leaves = _loss_graph(spec, params)
    inputs = graph.inputs
    with mpmath.workdps(DPS):
        values, _ = forward(graph, {name: mpmath.mpf(p) for (name, _), p in zip(inputs, params, strict=True)})
        adj = adjoints(graph, values)
        return [float(adj[i]) for i in leaves]


def _culprit(spec: Training, params: list[float], engine: Engine) -> Culprit | None:
    """What the localiser finds on the loss graph at the first step's parameters, as for any graph."""
    graph, _ = _loss_graph(spec, params)
    point = {name: Fraction(p) for (name, _), p in zip(graph.inputs, params, strict=True)}
    return localise(graph, point, engine)


# -- training and judging -----------------------------------------------------------------------------


def train(spec: Training, tolerance: Tolerance, engine: Engine) -> CheckResult:
    """Train on ``engine`` and judge the loss it reaches and its first gradient."""
    model = f"MLP{list(spec.sizes)} {spec.activation}, {spec.steps} steps at lr {spec.lr:g}"

    def result(verdict: Verdict, message: str, quantities: tuple[Quantity, ...] = ()) -> CheckResult:
        return CheckResult(model, {}, engine.name, verdict, quantities, message)

    needed = [OPS[n] for n in ("add", "sub", "mul", spec.activation)]
    reason = next((r for r in (engine.missing(o, True) for o in needed) if r), None) or getattr(engine, "reason", None)
    if reason:
        return result(Verdict.SKIP, str(reason))
    params = initial_params(spec)
    losses: list[float] = []
    first: list[float | None] = []
    for step in range(spec.steps + 1):
        def build(params: list[float] = params) -> tuple[Any, list[Any]]:
            leaves = [engine.leaf(p) for p in params]
            return mlp_loss(engine, leaves, spec), leaves

        called = call.steps(engine, build, backward=step < spec.steps)
        if called.verdict is not None:
            where = f" at training step {step}" if called.timed_out else ""
            return result(called.verdict, called.message + where)
        loss, grads = called.get()
        losses.append(loss)
        if step == spec.steps:
            break
        if len(grads) != len(params):
            return result(Verdict.FAIL, f"engine broke the protocol: {len(grads)} gradients for {len(params)} parameters")
        if step == 0:
            first = grads
        params = [p - spec.lr * (g or 0.0) for p, g in zip(params, grads, strict=True)]
    initial, final = losses[0], losses[-1]
    ratio = final / initial if initial else math.inf
    ok = math.isfinite(final) and final < spec.loss_ratio * initial
    quantities = [Quantity("loss", Role.VALUE, final, None, None, None, ratio, spec.loss_ratio * initial,
                           Verdict.PASS if ok else Verdict.FAIL, note=f"initial loss {initial:.6g}")]
    quantities.append(_first_step(spec, initial_params(spec), first, tolerance, engine))
    message = f"loss {initial:.6g} -> {final:.6g} (x{ratio:.3g}; must fall below x{spec.loss_ratio:g})"
    verdict = worst([q.verdict for q in quantities])
    checked = result(verdict, message, tuple(quantities))
    if quantities[-1].verdict is Verdict.FAIL:  # the first gradient is wrong: name the op, as for any graph
        checked = dataclasses.replace(checked, culprit=_culprit(spec, initial_params(spec), engine))
    return checked


def _first_step(spec: Training, params: list[float], grads: list[float | None], tolerance: Tolerance,
                engine: Engine) -> Quantity:
    """The engine's first gradient of the loss against the exact one, worst parameter shown."""
    exact_grads = _exact_first_gradient(spec, params)
    scale = max((abs(e) for e in exact_grads), default=1.0)
    worst_q: tuple[float, int] = (-1.0, 0)
    for i, (g, e) in enumerate(zip(grads, exact_grads, strict=True)):
        err = math.inf if g is None or not math.isfinite(g) else abs(g - e)
        worst_q = max(worst_q, (err, i))
    err, i = worst_q
    g = grads[i]
    # Rounding in the engine's precision across a whole training graph: relative to the largest gradient.
    bound = tolerance.bound(exact_grads[i]) + 64 * engine.eps * len(params) * scale
    verdict = Verdict.PASS if err <= bound else Verdict.FAIL
    return Quantity(f"d loss/d p{i} (first step)", Role.PROPERTY, g, exact_grads[i], None, err,
                    relative_error(g, exact_grads[i]) if g is not None else None, bound, verdict,
                    note=f"worst of {len(params)} parameters against the exact gradient (chain rule at {DPS} digits)")
