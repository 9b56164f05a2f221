"""A minimal third-party engine for gradspec's tests: forward-mode dual numbers over plain floats.

It shares no code with gradspec's own engine or references. ``leaf`` and ``apply`` record a tape;
``gradients`` replays the tape once per requested node with dual numbers ``(value, tangent)``, seeding
that node's tangent with 1 (an additive perturbation there), so the output's tangent is d output / d node
for inputs and named intermediates alike. Local derivatives are written out by hand below.

Importable as ``adapter_dual`` once ``tests/data`` is on ``sys.path``: ``adapter_dual:DualEngine`` (an
Engine subclass) and ``adapter_dual:ENGINE`` (an instance) are engine specs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from gradspec.engines.protocol import Engine
from gradspec.ops.table import Op

__all__ = ["ENGINE", "DualEngine", "Node"]


def _sigmoid(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a)) if a >= 0 else math.exp(a) / (1.0 + math.exp(a))


def _pow(a: float, b: float) -> tuple[float, float, float]:
    value = a**b
    try:
        da = b * a ** (b - 1)
    except ZeroDivisionError:  # 0 ** negative: the slope is infinite
        da = math.inf
    db = value * math.log(a) if a > 0 else math.nan
    return value, da, db


def _sqrt(a: float) -> tuple[float, float]:
    r = math.sqrt(a)
    return r, (0.5 / r if r > 0 else math.inf)


# op name -> (args) -> (value, d/d arg0[, d/d arg1])
_RULES: dict[str, Callable[..., tuple[float, ...]]] = {
    "add": lambda a, b: (a + b, 1.0, 1.0),
    "sub": lambda a, b: (a - b, 1.0, -1.0),
    "mul": lambda a, b: (a * b, b, a),
    "div": lambda a, b: (a / b, 1.0 / b, -a / (b * b)),
    "pow": _pow,
    "neg": lambda a: (-a, -1.0),
    "relu": lambda a: (max(a, 0.0), 1.0 if a > 0 else 0.0),
    "tanh": lambda a: (math.tanh(a), 1.0 - math.tanh(a) ** 2),
    "exp": lambda a: (math.exp(a), math.exp(a)),
    "log": lambda a: (math.log(a), 1.0 / a),
    "sigmoid": lambda a: (_sigmoid(a), _sigmoid(a) * (1.0 - _sigmoid(a))),
    "sin": lambda a: (math.sin(a), math.cos(a)),
    "cos": lambda a: (math.cos(a), -math.sin(a)),
    "sqrt": _sqrt,
    "abs": lambda a: (abs(a), float((a > 0) - (a < 0))),
}


class Node:
    """A position on the tape."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class DualEngine(Engine):
    """Forward-mode automatic differentiation with dual numbers, replayed once per gradient."""

    name = "dual"

    def __init__(self, options: str = "") -> None:
        self.options = options
        self.tape: list[tuple[Any, ...]] = []
        self.replays = 0

    def begin(self) -> None:
        self.tape = []

    def missing(self, op: Op, value_left: bool) -> str | None:
        return None if op.name in _RULES else f"dual numbers have no {op.name}"

    def leaf(self, x: float) -> Node:
        self.tape.append(("leaf", float(x)))
        return Node(len(self.tape) - 1)

    def apply(self, op: Op, args: Sequence[Any]) -> Node:
        self.tape.append(("op", op.name, tuple(args)))
        return Node(len(self.tape) - 1)

    def _replay(self, seed: int | None, upto: int) -> tuple[float, float]:
        self.replays += 1
        duals: list[tuple[float, float]] = []
        for i, entry in enumerate(self.tape[: upto + 1]):
            if entry[0] == "leaf":
                value, tangent = entry[1], 0.0
            else:
                _, name, args = entry
                pairs = [duals[a.index] if isinstance(a, Node) else (float(a), 0.0) for a in args]
                value, *partials = _RULES[name](*(v for v, _ in pairs))
                # a zero tangent contributes nothing, even where the partial is inf or nan
                tangent = sum((p * t for p, (_, t) in zip(partials, pairs, strict=True) if t != 0.0), 0.0)
            if i == seed:
                tangent += 1.0
            duals.append((value, tangent))
        return duals[upto]

    def gradients(self, out: Any, nodes: Sequence[Any]) -> list[float | None]:
        return [self._replay(n.index, out.index)[1] for n in nodes]

    def value(self, node: Any) -> float:
        return self._replay(None, node.index)[0]


ENGINE = DualEngine("instance")
