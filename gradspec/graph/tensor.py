"""A parsed program over tensor inputs: steps with shapes, checked when the case is loaded.

Every step carries its result shape, worked out by the op's shape rule (element-wise scalar ops
broadcast as NumPy does), so a shape error is a load-time :class:`ExpressionError` at the column of the
call that cannot take its operands. :func:`evaluate` lowers the graph onto any scalar backend (the
exact tape, or an engine's Values) through the op table's element-wise definitions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any

from gradspec.errors import ExpressionError
from gradspec.lang.expr import Apply, Name, Node, Num, Program
from gradspec.ops.shapes import Shape, ShapeError, broadcast, show
from gradspec.ops.table import OPS, TENSOR_OPS, Capability

if TYPE_CHECKING:
    from gradspec.ops.lowering import Scalars

__all__ = ["TStep", "TensorGraph", "build_tensor", "evaluate"]


@dataclass(frozen=True)
class TStep:
    op: str | None  # a scalar or tensor op-table name; None for an input or a constant
    args: tuple[int, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    shape: Shape = ()
    name: str | None = None
    const: Fraction | None = None
    col: int = 0

    @property
    def kw(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.kwargs}


@dataclass(frozen=True, eq=False)
class TensorGraph:
    program: Program
    steps: tuple[TStep, ...]
    output: int
    inputs: tuple[tuple[str, int], ...]  # every input, data included
    intermediates: tuple[tuple[str, int], ...]
    data: frozenset[str]  # inputs that are never differentiated (targets, masks)
    varying: tuple[bool, ...]  # does the step depend on a differentiable input

    @property
    def shapes(self) -> dict[str, Shape]:
        return {n: self.steps[i].shape for n, i in self.inputs}

    @property
    def differentiable(self) -> tuple[tuple[str, int], ...]:
        return tuple((n, i) for n, i in self.inputs if n not in self.data)

    @property
    def shape(self) -> Shape:
        return self.steps[self.output].shape

    @cached_property
    def key(self) -> str:
        """What the graph is: its text, the input shapes and which inputs are data (a cache key)."""
        shapes = ", ".join(f"{n}{show(s)}" + ("!" if n in self.data else "") for n, s in self.shapes.items())
        return f"{self.program.source} | {shapes}"

    def label(self, index: int) -> str:
        for name, i in self.intermediates + self.inputs:
            if i == index:
                return name
        step = self.steps[index]
        return step.op or str(step.const)


def build_tensor(program: Program, shapes: Mapping[str, Shape], data: frozenset[str] = frozenset()) -> TensorGraph:
    """Lay out ``program`` over inputs of the given shapes; raises :class:`ExpressionError` at the column
    of an op whose operands do not fit, or of a class-target operand that is not integer data."""
    steps: list[TStep] = []
    env: dict[str, int] = {}
    consts: dict[Fraction, int] = {}

    def push(step: TStep) -> int:
        steps.append(step)
        return len(steps) - 1

    def emit(node: Node) -> int:
        stack: list[tuple[Node, bool]] = [(node, False)]
        done: dict[int, int] = {}
        while stack:
            item, ready = stack.pop()
            if isinstance(item, Name):
                done[id(item)] = env[item.name]
            elif isinstance(item, Num):
                if item.value not in consts:
                    consts[item.value] = push(TStep(None, const=item.value, col=item.col))
                done[id(item)] = consts[item.value]
            elif not ready:
                stack.append((item, True))
                stack.extend((a, False) for a in reversed(item.args))
            else:
                args = tuple(done[id(a)] for a in item.args)
                done[id(item)] = push(_step(item, args, steps, data))
        return done[id(node)]

    for name in program.inputs:
        if name not in shapes:
            raise ExpressionError(f"undefined variable {name!r} (inputs: {', '.join(shapes) or 'none'})",
                                  col=program.column_of(name))
    for name, shape in shapes.items():
        env[name] = push(TStep(None, shape=tuple(shape), name=name))
    inputs = tuple((n, env[n]) for n in shapes)
    intermediates: list[tuple[str, int]] = []
    for name, node in program.assignments:
        env[name] = emit(node)
        intermediates.append((name, env[name]))
    output = emit(program.output)
    varying: list[bool] = []
    for s in steps:
        varying.append((s.name is not None and s.name not in data) or (any(varying[a] for a in s.args)
                                                                         and not _indices(s)))
    for name, index in intermediates:
        if not varying[index]:
            raise ExpressionError(f"intermediate {name!r} does not depend on any differentiable input",
                                  col=steps[index].col or None)
    if not varying[output]:
        raise ExpressionError("the expression does not depend on any differentiable input", col=1)
    return TensorGraph(program, tuple(steps), output, inputs, tuple(intermediates), frozenset(data), tuple(varying))


def _indices(step: TStep) -> bool:
    """Is the step the integer indices of a multi-output op (``sort(x)[1]``): data, never differentiated."""
    row = TENSOR_OPS.get(step.op or "")
    return row is not None and bool(row.outputs) and row.outputs[dict(step.kwargs).get("output", 0)] == "indices"


def _step(node: Apply, args: tuple[int, ...], steps: list[TStep], data: frozenset[str]) -> TStep:
    shapes = [steps[a].shape for a in args]
    row = TENSOR_OPS.get(node.op)
    try:
        if row is None:
            if Capability.TENSOR not in OPS[node.op].capabilities:
                raise ShapeError(f"{node.op} does not apply to tensors (its op row does not declare it)")
            shape = broadcast(node.op, shapes)
        else:
            for position in row.data:
                target = steps[args[position]]
                if target.name is None or target.name not in data:
                    raise ShapeError(f"{row.name}: argument {position + 1} must be an input marked "
                                     "`differentiable: false` (data: class labels, indices or target probabilities)")
            kw = {k: list(v) if isinstance(v, tuple) else v for k, v in node.kwargs}
            shape = row.shape(row.name, shapes, kw)
    except ShapeError as exc:
        raise ExpressionError(str(exc), col=node.col) from None
    return TStep(node.op, args, node.kwargs, tuple(shape), col=node.col)


def evaluate(graph: TensorGraph, backend: Scalars, leaves: Mapping[str, Any],
             on_step: Callable[[int], object] | None = None) -> list[Any]:
    """Every step as an object array of the backend's scalars; ``leaves`` maps each input to its array
    (nodes for differentiable inputs, Fractions for data). ``on_step`` hears each step's index first."""
    from gradspec.ops import lowering  # NumPy: imported only when a tensor case runs

    out: list[Any] = []
    for i, step in enumerate(graph.steps):
        if on_step is not None:
            on_step(i)
        if step.name is not None:
            out.append(leaves[step.name])
        elif step.op is None:
            out.append(lowering.obj(step.const))
        elif step.op in OPS:
            out.append(lowering.elementwise(backend, step.op, [out[a] for a in step.args], step.shape))
        else:
            out.append(TENSOR_OPS[step.op].lower(backend, [out[a] for a in step.args], step.kw, step.shape))
    return out
