"""gradspec's own scalar reverse-mode engine.

A small, readable engine in the micrograd style: each op is one method that records its parents and a
local ``_backward`` closure; :meth:`Value.backward` orders the graph once and runs those closures in
reverse. Traversal and topological sort are iterative, so graphs of any depth backpropagate without
RecursionError. Float arithmetic follows IEEE 754 (overflow gives inf, an undefined result gives nan)
instead of raising, so that gradspec can report what an engine computes at the edges of an op's domain.

>>> x, y = Value(2.0), Value(3.0)
>>> z = (x * y + x) ** 2 - y.tanh()
>>> z.backward()
>>> round(x.grad, 6), round(y.grad, 6)
(64.0, 31.990134)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Union

__all__ = ["Value"]

Operand = Union["Value", float, int]

_INF = math.inf


def _ieee(fn: Callable[..., float], *args: float) -> float:
    """``fn(*args)`` with IEEE results where Python's math raises."""
    try:
        result = fn(*args)
    except OverflowError:
        return _INF
    except (ValueError, ZeroDivisionError):
        return math.nan
    if isinstance(result, complex):  # (-8) ** (1/3)
        return math.nan
    return float(result)


def _div(a: float, b: float) -> float:
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(_INF, a) * math.copysign(1.0, b)
    return a / b


def _pow(a: float, b: float) -> float:
    if a == 0.0 and b < 0:
        return _INF
    return _ieee(math.pow, a, b)


class Value:
    """A scalar in a computation graph, with its value ``data`` and its gradient ``grad``."""

    __slots__ = ("_backward", "_op", "_parents", "data", "grad", "label")

    def __init__(self, data: float, _parents: tuple[Value, ...] = (), _op: str = "", label: str = "") -> None:
        self.data = float(data)
        self.grad = 0.0
        self._backward: Callable[[], None] = _noop
        self._parents = _parents
        self._op = _op
        self.label = label

    def __repr__(self) -> str:
        return f"Value(data={self.data!r}, grad={self.grad!r})"

    # -- binary ops -----------------------------------------------------------------------------
    def __add__(self, other: Operand) -> Value:
        other = _lift(other)
        out = Value(self.data + other.data, (self, other), "add")

        def _backward() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: Operand) -> Value:
        other = _lift(other)
        out = Value(self.data * other.data, (self, other), "mul")

        def _backward() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __truediv__(self, other: Operand) -> Value:
        other = _lift(other)
        out = Value(_div(self.data, other.data), (self, other), "div")

        def _backward() -> None:
            self.grad += _div(out.grad, other.data)
            other.grad += -_div(self.data, other.data * other.data) * out.grad

        out._backward = _backward
        return out

    def __pow__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            out = Value(_pow(self.data, other.data), (self, other), "pow")

            def _backward() -> None:
                if other.data:  # d/dx x**0 = 0 everywhere, even where 0 * x**-1 would be nan
                    self.grad += other.data * _pow(self.data, other.data - 1) * out.grad
                if out.grad:
                    other.grad += out.data * _ieee(math.log, self.data) * out.grad

            out._backward = _backward
            return out
        n = float(other)
        out = Value(_pow(self.data, n), (self,), "pow")

        def _backward_const() -> None:
            if n:
                self.grad += n * _pow(self.data, n - 1) * out.grad

        out._backward = _backward_const
        return out

    def __neg__(self) -> Value:
        out = Value(-self.data, (self,), "neg")

        def _backward() -> None:
            self.grad += -out.grad

        out._backward = _backward
        return out

    def __sub__(self, other: Operand) -> Value:
        other = _lift(other)
        out = Value(self.data - other.data, (self, other), "sub")

        def _backward() -> None:
            self.grad += out.grad
            other.grad += -out.grad

        out._backward = _backward
        return out

    def __radd__(self, other: Operand) -> Value:
        return _lift(other) + self

    def __rmul__(self, other: Operand) -> Value:
        return _lift(other) * self

    def __rsub__(self, other: Operand) -> Value:
        return _lift(other) - self

    def __rtruediv__(self, other: Operand) -> Value:
        return _lift(other) / self

    def __rpow__(self, other: Operand) -> Value:
        return _lift(other) ** self

    # -- unary ops ------------------------------------------------------------------------------
    def _unary(self, data: float, op: str, local: Callable[[], float]) -> Value:
        out = Value(data, (self,), op)

        def _backward() -> None:
            self.grad += local() * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        # relu'(0) = 0: the convention gradspec's op table declares.
        return self._unary(self.data if self.data > 0 else 0.0, "relu", lambda: 1.0 if self.data > 0 else 0.0)

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return self._unary(t, "tanh", lambda: 1.0 - t * t)

    def exp(self) -> Value:
        e = _ieee(math.exp, self.data)
        return self._unary(e, "exp", lambda: e)

    def log(self) -> Value:
        x = self.data
        value = -_INF if x == 0.0 else _ieee(math.log, x)
        return self._unary(value, "log", lambda: _div(1.0, x))

    def sigmoid(self) -> Value:
        x = self.data
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return self._unary(s, "sigmoid", lambda: s * (1.0 - s))

    def sin(self) -> Value:
        x = self.data
        return self._unary(_ieee(math.sin, x), "sin", lambda: _ieee(math.cos, x))

    def cos(self) -> Value:
        x = self.data
        return self._unary(_ieee(math.cos, x), "cos", lambda: -_ieee(math.sin, x))

    def sqrt(self) -> Value:
        r = _ieee(math.sqrt, self.data)
        return self._unary(r, "sqrt", lambda: _div(0.5, r))

    def abs(self) -> Value:
        # abs'(0) = 0: the convention gradspec's op table declares.
        x = self.data
        return self._unary(abs(x), "abs", lambda: 0.0 if x == 0 else math.copysign(1.0, x))

    __abs__ = abs

    # -- backpropagation ------------------------------------------------------------------------
    def backward(self) -> None:
        """Set ``self.grad = 1`` and accumulate d(self)/d(node) into every node's ``grad``."""
        order: list[Value] = []
        seen: set[int] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:  # iterative post-order DFS: a node is emitted after all of its parents
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents if id(p) not in seen)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


def _noop() -> None:
    return None


def _lift(x: Operand) -> Value:
    return x if isinstance(x, Value) else Value(x)
