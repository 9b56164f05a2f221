"""A parsed program laid out as a flat list of steps (single assignment, arguments before users).

Every consumer walks this one layout: the exact forward pass, the numerical reference, SymPy
construction and engine building. Named intermediates and inputs are step indices, so a name used
twice is one node, as it is in an engine's graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from gradspec.errors import ExpressionError
from gradspec.lang.expr import Apply, Name, Node, Num, Program
from gradspec.ops.table import OPS

__all__ = ["Graph", "Step", "build"]


@dataclass(frozen=True)
class Step:
    op: str | None  # an op table name; None for an input or a constant
    args: tuple[int, ...] = ()
    name: str | None = None  # the input's name, for inputs
    const: Fraction | None = None
    col: int = 0


@dataclass(frozen=True, eq=False)  # identity: graphs are built once per program and cached by it
class Graph:
    program: Program
    steps: tuple[Step, ...]
    output: int
    inputs: tuple[tuple[str, int], ...]  # (name, step), every input including unused ones
    intermediates: tuple[tuple[str, int], ...]  # (name, step)
    varying: tuple[bool, ...]  # does the step depend on an input

    @property
    def depth(self) -> int:
        """The longest chain of ops from an input to the output."""
        level = [0] * len(self.steps)
        for i, s in enumerate(self.steps):
            if s.op is not None:
                level[i] = 1 + max(level[a] for a in s.args)
        return level[self.output]

    @property
    def names(self) -> dict[str, int]:
        return dict(self.inputs + self.intermediates)

    def label(self, index: int) -> str:
        """A readable name for a step: its input or intermediate name, else its op."""
        for name, i in self.intermediates + self.inputs:
            if i == index:
                return name
        step = self.steps[index]
        return step.op or str(step.const)


@lru_cache(maxsize=4096)
def build(program: Program, extra_inputs: tuple[str, ...] = ()) -> Graph:
    """Lay out ``program``; ``extra_inputs`` are inputs the expression does not use (gradient 0)."""
    steps: list[Step] = []
    env: dict[str, int] = {}
    interned: dict[Node, int] = {}

    def emit(node: Node) -> int:
        # Iterative post-order: programs may be deep (templates repeated many times).
        stack: list[tuple[Node, bool]] = [(node, False)]
        while stack:
            item, ready = stack.pop()
            if isinstance(item, Name):
                continue
            if isinstance(item, Num):
                if item not in interned:
                    interned[item] = _push(Step(None, const=item.value, col=item.col))
                continue
            if not ready:
                stack.append((item, True))
                stack.extend((a, False) for a in reversed(item.args))
                continue
            args = tuple(env[a.name] if isinstance(a, Name) else _index(a) for a in item.args)
            _push_apply(item, args)
        return env[node.name] if isinstance(node, Name) else _index(node)

    applied: dict[int, int] = {}

    def _index(node: Node) -> int:
        if isinstance(node, Num):
            return interned[node]
        return applied[id(node)]

    def _push(step: Step) -> int:
        steps.append(step)
        return len(steps) - 1

    def _push_apply(node: Apply, args: tuple[int, ...]) -> None:
        if node.op not in OPS:  # a tensor op: only a tensor case (inputs with shapes) lays it out
            raise ExpressionError(f"{node.op} is a tensor op; give the inputs shapes (a tensor case)", col=node.col)
        applied[id(node)] = _push(Step(node.op, args, col=node.col))

    for name in (*program.inputs, *extra_inputs):
        if name not in env:
            env[name] = _push(Step(None, name=name))
    inputs = tuple((n, env[n]) for n in (*program.inputs, *extra_inputs) if n in env)
    intermediates: list[tuple[str, int]] = []
    for name, node in program.assignments:
        env[name] = emit(node)
        intermediates.append((name, env[name]))
    output = emit(program.output)
    varying = _varying(steps)
    for name, index in intermediates:
        if not varying[index]:
            col = steps[index].col
            raise ExpressionError(f"intermediate {name!r} does not depend on any input", col=col or None)
    if not varying[output] and not inputs:
        raise ExpressionError("the expression has no inputs", col=1)
    return Graph(program, tuple(steps), output, inputs, tuple(intermediates), varying)


def _varying(steps: Sequence[Step]) -> tuple[bool, ...]:
    out: list[bool] = []
    for s in steps:
        out.append(s.name is not None or any(out[a] for a in s.args))
    return tuple(out)


@lru_cache(maxsize=256)
def unroll(init: Program, step: Program, var: str, repeat: int, inputs: tuple[str, ...]) -> Graph:
    """The graph of ``z = init; z = step(z)`` applied ``repeat`` times, laid out without recursion.

    Used for deep compositions; its exact reference is the chain rule evaluated step by step.
    """
    steps: list[Step] = []
    env: dict[str, int] = {}
    for name in inputs:
        steps.append(Step(None, name=name))
        env[name] = len(steps) - 1
    consts: dict[Fraction, int] = {}

    def emit(program: Program, names: dict[str, int]) -> int:
        local = dict(names)
        for name, node in program.assignments:
            local[name] = _emit_tree(node, local)
        return _emit_tree(program.output, local)

    def _emit_tree(node: Node, names: dict[str, int]) -> int:
        stack: list[tuple[Node, bool]] = [(node, False)]
        done: dict[int, int] = {}
        while stack:
            item, ready = stack.pop()
            if isinstance(item, Name):
                done[id(item)] = names[item.name]
            elif isinstance(item, Num):
                if item.value not in consts:
                    steps.append(Step(None, const=item.value, col=item.col))
                    consts[item.value] = len(steps) - 1
                done[id(item)] = consts[item.value]
            elif not ready:
                stack.append((item, True))
                stack.extend((a, False) for a in reversed(item.args))
            else:
                steps.append(Step(item.op, tuple(done[id(a)] for a in item.args), col=item.col))
                done[id(item)] = len(steps) - 1
        return done[id(node)]

    current = emit(init, env)
    for _ in range(repeat):
        current = emit(step, {**env, var: current})
    program = Program(f"{var} = {init.source}; repeat {repeat}: {var} = {step.source}", (), Name(var), inputs)
    return Graph(program, tuple(steps), current, tuple((n, env[n]) for n in inputs), (), _varying(steps))
