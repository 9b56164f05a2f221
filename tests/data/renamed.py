"""A scalar engine that spells everything its own way, for the configuration tests: the forward value
is ``.value``, the gradient ``.derivative``, the ops ``ReLU()``, ``Tanh()`` and ``Exp()``, and
backpropagation ``backprop()``. It has no ``data``, ``grad``, ``relu``, ``tanh``, ``exp`` or
``backward`` at all, so only a correct mapping runs it. :class:`TanhWrong` has one wrong rule.
"""

from __future__ import annotations

import math


class Value:
    __slots__ = ("_back", "_parents", "derivative", "value")

    def __init__(self, value: float, parents: tuple[Value, ...] = ()) -> None:
        self.value = float(value)
        self.derivative = 0.0
        self._parents = parents
        self._back = lambda: None

    def _lift(self, other: object) -> Value:
        return other if isinstance(other, Value) else type(self)(float(other))  # type: ignore[arg-type]

    def _node(self, value: float, parents: tuple[Value, ...], local: tuple[float, ...]) -> Value:
        out = type(self)(value, parents)

        def back() -> None:
            for p, d in zip(parents, local, strict=True):
                p.derivative += d * out.derivative

        out._back = back
        return out

    def __add__(self, other: object) -> Value:
        o = self._lift(other)
        return self._node(self.value + o.value, (self, o), (1.0, 1.0))

    def __mul__(self, other: object) -> Value:
        o = self._lift(other)
        return self._node(self.value * o.value, (self, o), (o.value, self.value))

    def __neg__(self) -> Value:
        return self * -1.0

    def __sub__(self, other: object) -> Value:
        return self + -self._lift(other)

    def __radd__(self, other: object) -> Value:
        return self + other

    def __rmul__(self, other: object) -> Value:
        return self * other

    def __rsub__(self, other: object) -> Value:
        return self._lift(other) - self

    def ReLU(self) -> Value:
        return self._node(max(self.value, 0.0), (self,), (1.0 if self.value > 0 else 0.0,))

    def Tanh(self) -> Value:
        t = math.tanh(self.value)
        return self._node(t, (self,), (1.0 - t * t,))

    def Exp(self) -> Value:
        e = math.exp(self.value)
        return self._node(e, (self,), (e,))

    def backprop(self) -> None:
        order: list[Value] = []
        seen: set[int] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node._parents)
        self.derivative = 1.0
        for node in reversed(order):
            node._back()


class TanhWrong(Value):
    __slots__ = ()

    def Tanh(self) -> Value:
        t = math.tanh(self.value)
        return self._node(t, (self,), (1.0 + t * t,))
