"""Engines: how gradspec builds a graph in an autograd engine and reads its gradients.

The engine protocol is a handful of primitives; gradspec drives every check, property and training
case through them, so an engine that implements them runs the whole library::

    name           how reports name it ("torch:float32")
    eps            machine epsilon of its floating-point type (tolerances scale with it)
    capabilities   the modes it can be checked in (:class:`gradspec.ops.table.Capability`; reverse mode)
    missing(op, value_left) -> str | None     why it cannot apply an op ("engine has no tanh")
    begin()        start a new graph (a tape-based engine clears its tape)
    leaf(x)        a differentiable input holding the float x
    const(x)       a constant operand (a plain float unless the engine needs its own type)
    apply(op, args)                           apply an op-table op to leaves, results and constants
    gradients(out, nodes) -> [float | None]   backpropagate from out; d out / d node for each node
    value(node) -> float                      a node's forward value

and, for forward mode and higher order (:mod:`gradspec.modes`; an engine declares ``Capability.JVP``
and ``Capability.HVP`` and its ``max_order``)::

    function_of(tensor_graph, data) -> f      the case as a function of its differentiable inputs
    primitives(f, primals) -> Primitives      value, vjp, jvp and differentiating again, from which one
                                              driver composes every mode and order (:mod:`gradspec.engines.modes`)

:class:`ValueClassEngine` serves any micrograd-style class: a constructor from a float, ``.data``,
``.grad``, ``.backward()``, Python operators with Values and numbers on either side, and whichever op
methods it has. Where the class's module also has ``grad(output, inputs, create_graph=False)`` and
``jvp(output, tangents)`` (as :mod:`gradspec.engine` does), it is checked in forward mode and to higher
order too (:mod:`gradspec.engines.modes`). A class that spells them otherwise (``.value``, ``.derivative``, ``ReLU()``) is served
through a :class:`NamedEngine` whose attribute and method names are read as data. Adapters for PyTorch, JAX and tinygrad live in :mod:`gradspec.engines.adapters`; third-party
engines register a factory under the ``gradspec.engines`` entry-point group.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gradspec.engines.delegation import delegates
from gradspec.engines.named import NamedEngine
from gradspec.engines.probe import Probe, probe_value_class
from gradspec.graph.ir import Apply, Const, Graph, Leaf
from gradspec.ops.table import OPS, REVERSE_AND_TENSOR, REVERSE_ONLY, Capability, Op

__all__ = ["FLOAT32_EPS", "FLOAT32_MAX", "FLOAT64_EPS", "Engine", "NamedEngine", "NotANumber", "Outcome", "Unavailable",
           "Unsupported", "ValueClassEngine", "dtype_range", "float_range"]

FLOAT64_EPS = 2.0**-52
FLOAT32_EPS = 2.0**-23
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_SMALLEST = 1.401298464324817e-45  # the smallest subnormal


def float_range(engine: Any) -> float:
    """The largest finite magnitude of the engine's float type (inf: whatever float64 holds)."""
    return getattr(engine, "max", None) or dtype_range(getattr(engine, "eps", FLOAT64_EPS))


def dtype_range(eps: float) -> float:
    """The largest finite magnitude of the float type of machine epsilon ``eps`` (inf: whatever float64
    holds, so that a magnitude is beyond it where its float is inf)."""
    return FLOAT32_MAX if eps >= FLOAT32_EPS else math.inf


class Unsupported(Exception):
    """Raised by an engine for an op or operand kind it does not have; the check is skipped."""


class NotANumber(Exception):
    """The engine handed back something gradspec cannot read as a float (a string, a complex, a list).

    Raised by gradspec's own conversion, so that a report says what the engine returned instead of
    blaming the engine for an exception it never raised."""


@dataclass
class Outcome:
    value: float
    grads: dict[str, float | None] = field(default_factory=dict)
    node_grads: dict[int, float | None] = field(default_factory=dict)  # step -> gradient, on request
    node_values: dict[int, float] = field(default_factory=dict)  # step -> forward value, on request
    # The same graph built with Python's other spelling of some ops (abs(x) rather than x.abs()),
    # keyed by what was spelled differently; judged like the main outcome.
    spelled: dict[str, Outcome] = field(default_factory=dict)


class Engine:
    """Base class of engines: subclasses provide the primitives, this class drives them."""

    name: str = "engine"
    eps: float = FLOAT64_EPS
    capabilities: frozenset[Capability] = REVERSE_ONLY
    max_order: int = 1  # the highest derivative order it can be checked to (nested differentiation)
    time_limit_hits: int = 0  # calls that ran past the time limit (counted by gradspec.engines.call)
    unavailable: str | None = None  # why it cannot run here at all (its library is missing), or None

    @property
    def keeps_intermediates(self) -> bool:
        """Whether gradients() reports d out/d node for nodes that are not leaves."""
        return True

    def protocol_problem(self) -> str | None:
        """Why this engine cannot take part in a run at all (found once, before any check), or None."""
        return None

    # -- primitives -----------------------------------------------------------------------------
    def begin(self) -> None:
        """Called before each graph is built (engines that record a tape start a new one)."""

    def missing(self, op: Op, value_left: bool) -> str | None:
        return None

    def leaf(self, x: float) -> Any:
        raise NotImplementedError

    def const(self, x: float) -> Any:
        return x

    def apply(self, op: Op, args: Sequence[Any]) -> Any:
        if op.method is not None:
            return getattr(args[0], op.method)(*args[1:], **op.kwargs)
        assert op.pyop is not None
        return op.pyop(*args)

    def gradients(self, out: Any, nodes: Sequence[Any]) -> list[float | None]:
        raise NotImplementedError

    def value(self, node: Any) -> float:
        raise NotImplementedError

    # -- drivers --------------------------------------------------------------------------------
    def unrepresentable(self, graph: Graph, point: Mapping[str, float]) -> str | None:
        """Why the point (or a constant) cannot be given to this engine: it does not fit its dtype."""
        if self.eps < FLOAT32_EPS:
            return None  # float64 holds every value gradspec passes
        values = [(f"input {n} = {point[n]:g}", point[n]) for n, _ in graph.inputs]
        values += [(f"constant {float(s.value):g}", float(s.value)) for s in graph.steps if isinstance(s, Const)]
        for what, v in values:
            if abs(v) > FLOAT32_MAX or 0 < abs(v) < FLOAT32_SMALLEST:
                return f"{what} is not representable in float32, the engine's precision"
        return None

    def unsupported(self, graph: Graph) -> str | None:
        """Why this engine cannot run ``graph``, or None."""
        for op, value_left in graph.moving_ops:
            reason = self.missing(OPS[op], value_left)
            if reason:
                return reason
        return None

    def run(self, graph: Graph, point: Mapping[str, float], *, every_node: bool = False) -> Outcome:
        """Build ``graph`` at ``point``, backpropagate from the output, read every gradient.

        With ``every_node``, also read the value and gradient of every op node (for localisation).
        """
        self.begin()
        nodes = self.build(graph, {n: self.leaf(float(point[n])) for n, _ in graph.inputs})
        names = graph.inputs + graph.intermediates
        if not graph.varying[graph.output]:
            return Outcome(float(nodes[graph.output]), {n: 0.0 for n, _ in names})
        out = nodes[graph.output]
        used = graph.reaches_output
        wanted = [(n, i) for n, i in names if used[i]]
        steps = [i for i, s in enumerate(graph.steps) if used[i] and graph.varying[i]] if every_node else []
        grads = self.gradients(out, [nodes[i] for _, i in wanted] + [nodes[i] for i in steps])
        if not self.keeps_intermediates:  # not reported, which is not the same as wrong
            leaves = {i for _, i in graph.inputs}
            grads = [g if i in leaves else None for i, g in zip([i for _, i in wanted] + steps, grads, strict=True)]
        result: dict[str, float | None] = {n: 0.0 for n, _ in names}  # a node the output does not use: 0
        result.update({n: g for (n, _), g in zip(wanted, grads, strict=False)})
        outcome = Outcome(self.value(out), result)
        if every_node:
            outcome.node_grads = dict(zip(steps, grads[len(wanted):], strict=True))
            outcome.node_values = {i: self.value(nodes[i]) for i in steps}
        return outcome

    def build(self, graph: Graph, leaves: Mapping[str, Any]) -> list[Any]:
        """Every node of ``graph``, built from the given leaves with this engine's ops.

        Constants stay plain floats, and a sub-expression of constants only is folded in float64.
        """
        nodes: list[Any] = []
        for step in graph.steps:
            match step:
                case Leaf():
                    nodes.append(leaves[step.name])
                case Const():
                    nodes.append(float(step.value))
                case Apply():
                    args = [nodes[a] for a in step.args]
                    nodes.append(self._apply(OPS[step.op], args, [graph.varying[a] for a in step.args]))
        return nodes

    def _apply(self, op: Op, args: list[Any], varying: list[bool]) -> Any:
        if not any(varying):
            return float(op.fn(*args))
        args = [a if v else self.const(a) for a, v in zip(args, varying, strict=True)]
        try:
            return self.apply(op, args)
        except (TypeError, NotImplementedError, AssertionError, AttributeError) as exc:
            # micrograd-style classes raise TypeError, or assert, on operand kinds they do not take (a Value
            # exponent), and AttributeError where they read a plain number's .data (no number wrapping).
            # Whether that is what happened is asked of the engine: the same op on the same operand kinds at
            # harmless values. If that works, the engine takes these operands and raised on these values (a
            # complex result of (-8) ** 0.5): its error, not a missing feature. An AttributeError with no
            # number among the operands is the engine's own error.
            if self.takes(op, varying) or (isinstance(exc, AttributeError) and all(varying)):
                raise
            if isinstance(exc, AssertionError):
                refused = op.asserts_on_value  # the op's row says which argument such an assert is about
                if refused is not None and varying[refused[0]]:
                    raise Unsupported(f"{refused[1]}: {exc}") from exc
                raise
            raise Unsupported(f"engine cannot apply {op.name} to {_kinds(varying)}: {exc}") from exc

    def takes(self, op: Op, varying: list[bool]) -> bool:
        """Whether the engine applies ``op`` to these operand kinds at all (at 0.5, inside every domain)."""
        try:
            self.apply(op, [self.leaf(0.5) if v else self.const(0.5) for v in varying])
        except Exception:
            return False
        return True


def _kinds(varying: list[bool]) -> str:
    return ", ".join("Value" if v else "number" for v in varying)


class ValueClassEngine(Engine):
    """Adapter for a micrograd-style scalar ``Value`` class (tensor cases run as a tensor of Values).

    ``data``, ``grad`` and ``methods`` are the class's names for the forward value, the gradient and
    the op methods (and ``backward``), where they differ from micrograd's.
    """

    capabilities = REVERSE_AND_TENSOR

    def __init__(self, cls: type, name: str | None = None, *, data: str = "data", grad: str = "grad",
                 methods: Mapping[str, str] | None = None) -> None:
        self.cls = cls
        self.name = name or f"{cls.__module__}:{cls.__qualname__}"
        self.data_attr = data
        self.grad_attr = grad
        self.methods = dict(methods or {})
        self._builtins = False  # apply ops through Python's builtin spelling (abs(x)): builtin_spelling()
        self._probed: Probe | None = None
        # The class's module, where it differentiates graphs of its Values as gradspec.engine does
        # (grad(output, inputs, create_graph=...) and jvp(output, tangents)): then it is checked in every mode.
        module = sys.modules.get(cls.__module__)
        self.differentiator: Any = None
        if callable(getattr(module, "grad", None)) and callable(getattr(module, "jvp", None)):
            self.differentiator = module
            self.capabilities = REVERSE_AND_TENSOR | {Capability.JVP, Capability.HVP}
            self.max_order = 4

    def __repr__(self) -> str:
        return f"ValueClassEngine({self.name})"

    def _spelt(self, name: str) -> str:
        return self.methods.get(name, name)

    def unsupported(self, graph: Graph) -> str | None:
        if not hasattr(self.cls, self._spelt("backward")):
            return f"engine has no {self._spelt('backward')}()"
        return super().unsupported(graph)

    def _probe(self) -> Probe:
        """What the probe finds, found on first use and then kept."""
        if self._probed is None:
            self._probed = probe_value_class(self.cls, self.name, data=self.data_attr, grad=self.grad_attr,
                                             backward=self._spelt("backward"), methods=self.methods)
        return self._probed

    def protocol_problem(self) -> str | None:
        return self._probe().problem

    def begin(self) -> None:
        self._probe()  # probed before the first graph, never between two runs of one check

    @property
    def keeps_intermediates(self) -> bool:
        return self._probe().problem is not None or self._probe().keeps_intermediates

    def missing(self, op: Op, value_left: bool) -> str | None:
        needed = self._spelt(op.needs(value_left))
        if hasattr(self.cls, needed) or (op.builtin is not None and hasattr(self.cls, op.builtin[0])):
            return None  # either of Python's spellings will do: the class is checked in the ones it has
        return f"engine has no {needed}"

    def leaf(self, x: float) -> Any:
        return self.cls(x)

    def apply(self, op: Op, args: Sequence[Any]) -> Any:
        if op.builtin is not None and hasattr(type(args[0]), op.builtin[0]) and (
                self._builtins or not hasattr(type(args[0]), self._spelt(op.needs(True)))):
            return op.builtin[1](*args)  # the builtin spelling: asked for, or the only one the class has
        if op.value_call is not None:  # where: the class's method, given the comparison of its values
            return op.value_call(lambda name: getattr(self.cls, self._spelt(name)), self._number, args, op.kwargs)
        if op.method is not None:
            first = args[0] if len(args) == 1 or not isinstance(args[0], float | int) else self.cls(args[0])
            return getattr(first, self._spelt(op.method))(*args[1:], **op.kwargs)
        return super().apply(op, args)

    def _number(self, x: Any) -> float:
        return float(x) if isinstance(x, float | int) else self.value(x)

    def run(self, graph: Graph, point: Mapping[str, float], *, every_node: bool = False) -> Outcome:
        """As :meth:`Engine.run`; where the class has both of Python's spellings of an op in the graph
        (``x.abs()`` and ``__abs__`` for ``abs(x)``), the graph is built and differentiated once with
        each, and the second outcome is kept in ``spelled``: either spelling may be the broken one."""
        outcome = super().run(graph, point, every_node=every_node)
        seconds = self.second_spellings(graph)
        if seconds and not every_node:
            outcome.spelled[", ".join(seconds)] = Engine.run(self.builtin_spelling(), graph, point)
        return outcome

    def builtin_spelling(self) -> ValueClassEngine:
        """This engine, applying ops through Python's builtin spelling (``abs(x)``) where the class has it."""
        other = copy.copy(self)
        other._builtins = True
        return other

    def second_spellings(self, graph: Graph) -> tuple[str, ...]:
        """The builtin spellings (``__abs__``) of ops in ``graph`` this class has beside their own spelling."""
        found: list[str] = []
        for step in graph.steps:
            op = OPS[step.op] if isinstance(step, Apply) and graph.varying[step.args[0]] else None
            if op is None or op.builtin is None:
                continue
            if hasattr(self.cls, op.builtin[0]) and hasattr(self.cls, self._spelt(op.needs(True))) \
                    and op.builtin[0] not in found:
                found.append(op.builtin[0])
        return tuple(found)

    def delegates(self, op: str) -> tuple[str, ...]:
        """The other ops the class runs to apply ``op`` (``x - y`` as ``x + (-y)``), for the localiser."""
        return delegates(self.cls, op, self.methods)

    def gradients(self, out: Any, nodes: Sequence[Any]) -> list[float | None]:
        getattr(out, self._spelt("backward"))()
        return [None if (g := getattr(n, self.grad_attr, None)) is None else as_float(g, "gradient") for n in nodes]

    def value(self, node: Any) -> float:
        return as_float(getattr(node, self.data_attr), "value")


def as_float(x: Any, what: str) -> float:
    """``float(x)``, or :class:`NotANumber` saying what the engine returned instead of a number."""
    try:
        return float(x)
    except (TypeError, ValueError, OverflowError) as exc:
        raise NotANumber(f"engine returned a non-number as a {what}: {_shown(x)} ({type(x).__name__}), "
                         f"which float() rejects: {exc}") from exc


def _shown(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


class Unavailable(Engine):
    """An engine whose library is missing here: every check skips with the reason."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = self.unavailable = reason

    def unsupported(self, graph: Graph) -> str | None:
        return self.reason
