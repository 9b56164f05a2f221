"""A parsed program laid out as a flat list of steps (single assignment, arguments before users).

Every consumer walks this one layout: the exact forward pass, the numerical reference, SymPy
construction and engine building. Named intermediates and inputs are step indices, so a name used
twice is one node, as it is in an engine's graph.

A step is one of three kinds, each its own type: a :class:`Leaf` (an input), a :class:`Const` and an
:class:`Apply` (an op on earlier steps). Walkers dispatch with ``match`` or ``isinstance``; only an
``Apply`` has an op. Every graph is laid out by :class:`GraphBuilder`, and a graph is identified by its
content (:attr:`Graph.key`), so two graphs built from the same text are equal and hash alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property, lru_cache
from typing import ClassVar

from gradspec.errors import ExpressionError
from gradspec.lang import tree
from gradspec.lang.tree import Program
from gradspec.ops.table import OPS

__all__ = ["Apply", "Const", "Graph", "GraphBuilder", "Leaf", "Step", "build", "unroll"]


@dataclass(frozen=True)
class Leaf:
    """An input, by name."""

    name: str
    col: int = 0
    args: ClassVar[tuple[int, ...]] = ()

    @property
    def text(self) -> str:
        return f"input {self.name}"


@dataclass(frozen=True)
class Const:
    """An exact constant."""

    value: Fraction
    col: int = 0
    args: ClassVar[tuple[int, ...]] = ()

    @property
    def text(self) -> str:
        return f"const {self.value.numerator}/{self.value.denominator}"


@dataclass(frozen=True)
class Apply:
    """An op table op applied to earlier steps."""

    op: str
    args: tuple[int, ...]
    col: int = 0

    @property
    def text(self) -> str:
        return " ".join((self.op, *map(str, self.args)))


Step = Leaf | Const | Apply


@dataclass(frozen=True, eq=False)
class Graph:
    program: Program
    steps: tuple[Step, ...]
    output: int
    inputs: tuple[tuple[str, int], ...]  # (name, step), every input including unused ones
    intermediates: tuple[tuple[str, int], ...]  # (name, step)
    varying: tuple[bool, ...] = field(init=False)  # does the step depend on an input

    def __post_init__(self) -> None:
        object.__setattr__(self, "varying", _varying(self.steps))

    @cached_property
    def key(self) -> str:
        """The graph's canonical text: its steps, output and names, and nothing else (columns and the
        program's spelling do not change what is computed). Equal keys are equal graphs."""
        lines = [s.text for s in self.steps]
        lines.append(f"output {self.output}")
        lines.append("inputs " + " ".join(f"{n}={i}" for n, i in self.inputs))
        lines.append("intermediates " + " ".join(f"{n}={i}" for n, i in self.intermediates))
        return "\n".join(lines)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self is other or self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @cached_property
    def depth(self) -> int:
        """The longest chain of ops from an input to the output."""
        level = [0] * len(self.steps)
        for i, s in enumerate(self.steps):
            if isinstance(s, Apply):
                level[i] = 1 + max(level[a] for a in s.args)
        return level[self.output]

    @cached_property
    def op_count(self) -> int:
        return sum(1 for s in self.steps if isinstance(s, Apply))

    @cached_property
    def moving_ops(self) -> tuple[tuple[str, bool], ...]:
        """The ops an engine runs on a value that depends on an input, in step order, each with whether
        its first argument does (constants alone are folded in float64, never given to an engine)."""
        return tuple((s.op, self.varying[s.args[0]]) for s in self.steps
                     if isinstance(s, Apply) and any(self.varying[a] for a in s.args))

    @cached_property
    def reaches_output(self) -> tuple[bool, ...]:
        """Which steps the output depends on."""
        used = [False] * len(self.steps)
        used[self.output] = True
        for i in range(len(self.steps) - 1, -1, -1):
            if used[i]:
                for a in self.steps[i].args:
                    used[a] = True
        return tuple(used)

    @property
    def names(self) -> dict[str, int]:
        return dict(self.inputs + self.intermediates)

    def label(self, index: int) -> str:
        """A readable name for a step: its input or intermediate name, else its op or constant."""
        for name, i in self.intermediates + self.inputs:
            if i == index:
                return name
        step = self.steps[index]
        return step.op if isinstance(step, Apply) else str(step.value) if isinstance(step, Const) else step.name

    def rooted_at(self, index: int) -> Graph:
        """The same steps with ``index`` as the output (its value is that step's value)."""
        return Graph(self.program, self.steps, index, self.inputs, ())


def _varying(steps: Sequence[Step]) -> tuple[bool, ...]:
    out: list[bool] = []
    for s in steps:
        out.append(isinstance(s, Leaf) or any(out[a] for a in s.args))
    return tuple(out)


class GraphBuilder:
    """Lays out steps: inputs once per name, constants once per value, ops in the order given."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self._inputs: dict[str, int] = {}
        self._consts: dict[Fraction, int] = {}
        self._intermediates: list[tuple[str, int]] = []

    def _push(self, step: Step) -> int:
        self.steps.append(step)
        return len(self.steps) - 1

    def leaf(self, name: str) -> int:
        if name not in self._inputs:
            self._inputs[name] = self._push(Leaf(name))
        return self._inputs[name]

    def const(self, value: Fraction, col: int = 0) -> int:
        if value not in self._consts:
            self._consts[value] = self._push(Const(value, col))
        return self._consts[value]

    def apply(self, op: str, args: Sequence[int], col: int = 0) -> int:
        if op not in OPS:  # a tensor op: only a tensor case (inputs with shapes) lays it out
            raise ExpressionError(f"{op} is a tensor op; give the inputs shapes (a tensor case)", col=col or None)
        return self._push(Apply(op, tuple(args), col))

    def name(self, name: str, index: int) -> None:
        """Name step ``index`` as an intermediate."""
        self._intermediates.append((name, index))

    def tree(self, node: tree.Node, names: Mapping[str, int]) -> int:
        """Emit an expression tree; its names are looked up in ``names``. Iterative post-order, as
        programs may be deep (templates repeated many times)."""
        stack: list[tuple[tree.Node, bool]] = [(node, False)]
        done: dict[int, int] = {}
        while stack:
            item, ready = stack.pop()
            if isinstance(item, tree.Name):
                done[id(item)] = names[item.name]
            elif isinstance(item, tree.Num):
                done[id(item)] = self.const(item.value, item.col)
            elif not ready:
                stack.append((item, True))
                stack.extend((a, False) for a in reversed(item.args))
            else:
                done[id(item)] = self.apply(item.op, [done[id(a)] for a in item.args], item.col)
        return done[id(node)]

    def program(self, program: Program, names: Mapping[str, int], *, named: bool = False) -> int:
        """Emit ``program``'s assignments and output; ``named`` records its intermediates."""
        local = dict(names)
        for name, node in program.assignments:
            local[name] = self.tree(node, local)
            if named:
                self.name(name, local[name])
        return self.tree(program.output, local)

    def graph(self, program: Program, output: int, inputs: Sequence[str] | None = None) -> Graph:
        """The graph laid out so far; ``inputs`` orders the inputs (default: the order of their leaves)."""
        order = self._inputs if inputs is None else inputs
        return Graph(program, tuple(self.steps), output, tuple((n, self._inputs[n]) for n in order),
                     tuple(self._intermediates))


@lru_cache(maxsize=4096)
def build(program: Program, extra_inputs: tuple[str, ...] = ()) -> Graph:
    """Lay out ``program``; ``extra_inputs`` are inputs the expression does not use (gradient 0)."""
    b = GraphBuilder()
    names = {name: b.leaf(name) for name in (*program.inputs, *extra_inputs)}
    output = b.program(program, names, named=True)
    graph = b.graph(program, output)
    for name, index in graph.intermediates:
        if not graph.varying[index]:
            col = graph.steps[index].col
            raise ExpressionError(f"intermediate {name!r} does not depend on any input", col=col or None)
    if not graph.varying[output] and not graph.inputs:
        raise ExpressionError("the expression has no inputs", col=1)
    return graph


@lru_cache(maxsize=256)
def unroll(init: Program, step: Program, var: str, repeat: int, inputs: tuple[str, ...]) -> Graph:
    """The graph of ``z = init; z = step(z)`` applied ``repeat`` times, laid out without recursion.

    Used for deep compositions; its exact reference is the chain rule evaluated step by step.
    """
    b = GraphBuilder()
    env = {name: b.leaf(name) for name in inputs}
    current = b.program(init, env)
    for _ in range(repeat):
        current = b.program(step, {**env, var: current})
    program = Program(f"{var} = {init.source}; repeat {repeat}: {var} = {step.source}", (), tree.Name(var), inputs)
    return b.graph(program, current)
