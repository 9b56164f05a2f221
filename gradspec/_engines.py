"""Engines: how gradspec builds a graph in an autograd engine and reads its gradients.

The protocol is small. An engine has a ``name``, says which ops of a graph it cannot apply
(``unsupported``) and runs a graph at a point (``run``), returning the output value and the gradient
of every input and named intermediate. :class:`ValueClassEngine` serves any micrograd-style class:
a constructor from a float, ``.data``, ``.grad``, ``.backward()``, Python operators with Values and
numbers on either side, and whichever op methods it has (the op table says how each op is spelled).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from gradspec._graph import Graph
from gradspec._ops import OPS
from gradspec.errors import EngineError

__all__ = ["Engine", "Outcome", "Unsupported", "ValueClassEngine", "resolve"]


class Unsupported(Exception):
    """Raised by an engine for an op or operand kind it does not have; the check is skipped."""


@dataclass
class Outcome:
    value: float
    grads: dict[str, float | None] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    name: str

    def unsupported(self, graph: Graph) -> str | None:
        """Why this engine cannot run ``graph`` (``"engine has no tanh"``), or None."""
        ...

    def run(self, graph: Graph, point: Mapping[str, float]) -> Outcome:
        """Build ``graph`` at ``point``, backpropagate from the output, read the gradients."""
        ...


class ValueClassEngine:
    """Adapter for a micrograd-style scalar ``Value`` class."""

    def __init__(self, cls: type, name: str | None = None) -> None:
        self.cls = cls
        self.name = name or f"{cls.__module__}:{cls.__qualname__}"

    def __repr__(self) -> str:
        return f"ValueClassEngine({self.name})"

    def unsupported(self, graph: Graph) -> str | None:
        for step in graph.steps:
            if step.op is None or not any(graph.varying[a] for a in step.args):
                continue
            needed = OPS[step.op].needs(value_left=graph.varying[step.args[0]])
            if not hasattr(self.cls, needed):
                return f"engine has no {needed}"
        for attr in ("backward",):
            if not hasattr(self.cls, attr):
                return f"engine has no {attr}()"
        return None

    def run(self, graph: Graph, point: Mapping[str, float]) -> Outcome:
        nodes: list[Any] = []
        for step in graph.steps:
            if step.name is not None:
                nodes.append(self.cls(float(point[step.name])))
            elif step.op is None:
                nodes.append(float(step.const))  # type: ignore[arg-type]
            else:
                nodes.append(self._apply(step.op, [nodes[a] for a in step.args], [graph.varying[a] for a in step.args]))
        out = nodes[graph.output]
        if not graph.varying[graph.output]:
            return Outcome(float(out), {n: 0.0 for n, _ in graph.inputs + graph.intermediates})
        out.backward()
        grads = {n: _grad(nodes[i]) for n, i in graph.inputs + graph.intermediates}
        return Outcome(float(out.data), grads)

    def _apply(self, name: str, args: list[Any], varying: list[bool]) -> Any:
        op = OPS[name]
        if not any(varying):
            return float(op.fn(*args))
        try:
            if op.method is not None:
                return getattr(args[0], op.method)()
            assert op.pyop is not None
            return op.pyop(*args)
        except (TypeError, NotImplementedError) as exc:
            raise Unsupported(f"engine cannot apply {name} to {_kinds(args)}: {exc}") from exc
        except AssertionError as exc:
            # micrograd-style classes assert on operand kinds they do not take (a Value exponent).
            if name == "pow" and varying[1]:
                raise Unsupported(f"engine's ** does not take a Value exponent: {exc}") from exc
            raise


def _kinds(args: list[Any]) -> str:
    return ", ".join("number" if isinstance(a, float) else "Value" for a in args)


def _grad(node: Any) -> float | None:
    g = getattr(node, "grad", None)
    if g is None:
        return None
    try:
        return float(g)
    except (TypeError, ValueError):
        return math.nan


def resolve(spec: str | Engine | type) -> Engine:
    """An engine from a spec: ``"builtin"``, ``"module.path:Name"``, a Value class, or an engine."""
    if isinstance(spec, type):
        return ValueClassEngine(spec)
    if not isinstance(spec, str):
        if isinstance(spec, Engine):
            return spec
        raise EngineError(f"not an engine: {spec!r}")
    if spec == "builtin":
        from gradspec.engine import Value

        return ValueClassEngine(Value, "builtin")
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise EngineError(f"unknown engine {spec!r}; use 'builtin' or 'module.path:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an engine module that fails to import is the user's error to see
        raise EngineError(f"cannot import engine module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise EngineError(f"module {module_name!r} has no {attr!r}")
    if isinstance(target, type) and not isinstance(target, Engine):
        if all(hasattr(target, a) for a in ("backward", "__add__", "__mul__")):
            return ValueClassEngine(target, spec)
        raise EngineError(f"{spec!r} is not a Value class: it needs backward(), + and *")
    if isinstance(target, Engine):
        return target
    raise EngineError(f"{spec!r} is neither a Value class nor an engine")
