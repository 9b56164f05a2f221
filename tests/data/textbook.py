"""A textbook micrograd-style engine, as a new user writes one, and one-bug variants of it.

:class:`Value` is correct: a node keeps a ``set`` of its children (so the order in which a backward adds
up gradient contributions changes from one fresh build to the next, within rounding), a recursive
topological sort, ``-`` written as ``+`` of ``*(-1)`` and ``/`` as ``*`` of ``**-1``, as micrograd does.
Every op builds its result with ``type(self)``, so a subclass that changes one op keeps its bug all
the way to the output. Each variant below changes exactly one thing.
"""

from __future__ import annotations

import math


class Value:
    def __init__(self, data, _children=(), _op=""):  # type: ignore[no-untyped-def]
        self.data = float(data)
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op

    def _lift(self, other):  # type: ignore[no-untyped-def]
        return other if isinstance(other, Value) else type(self)(other)

    def __add__(self, other):  # type: ignore[no-untyped-def]
        other = self._lift(other)
        out = type(self)(self.data + other.data, (self, other), "+")

        def _backward():  # type: ignore[no-untyped-def]
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):  # type: ignore[no-untyped-def]
        other = self._lift(other)
        out = type(self)(self.data * other.data, (self, other), "*")

        def _backward():  # type: ignore[no-untyped-def]
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, other):  # type: ignore[no-untyped-def]
        assert isinstance(other, int | float), "only supporting int/float powers for now"
        out = type(self)(self.data**other, (self,), f"**{other}")

        def _backward():  # type: ignore[no-untyped-def]
            self.grad += other * self.data ** (other - 1) * out.grad

        out._backward = _backward
        return out

    def _unary(self, value, local, op):  # type: ignore[no-untyped-def]
        out = type(self)(value, (self,), op)

        def _backward():  # type: ignore[no-untyped-def]
            self.grad += local(out.data) * out.grad

        out._backward = _backward
        return out

    def relu(self):  # type: ignore[no-untyped-def]
        return self._unary(max(0.0, self.data), lambda o: float(o > 0), "relu")

    def tanh(self):  # type: ignore[no-untyped-def]
        return self._unary(math.tanh(self.data), lambda t: 1 - t**2, "tanh")

    def exp(self):  # type: ignore[no-untyped-def]
        return self._unary(math.exp(self.data), lambda e: e, "exp")

    def log(self):  # type: ignore[no-untyped-def]
        x = self.data
        return self._unary(math.log(x), lambda _: 1 / x, "log")

    def sigmoid(self):  # type: ignore[no-untyped-def]
        x = self.data
        s = 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))
        return self._unary(s, lambda s: s * (1 - s), "sigmoid")

    def sin(self):  # type: ignore[no-untyped-def]
        x = self.data
        return self._unary(math.sin(x), lambda _: math.cos(x), "sin")

    def cos(self):  # type: ignore[no-untyped-def]
        x = self.data
        return self._unary(math.cos(x), lambda _: -math.sin(x), "cos")

    def sqrt(self):  # type: ignore[no-untyped-def]
        return self._unary(math.sqrt(self.data), lambda s: 0.5 / s if s else math.inf, "sqrt")

    def abs(self):  # type: ignore[no-untyped-def]
        x = self.data
        return self._unary(abs(x), lambda _: (x > 0) - (x < 0), "abs")

    def backward(self):  # type: ignore[no-untyped-def]
        topo = []
        visited = set()

        def build_topo(v):  # type: ignore[no-untyped-def]
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)

        build_topo(self)
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()

    def __neg__(self):  # type: ignore[no-untyped-def]
        return self * -1

    def __radd__(self, other):  # type: ignore[no-untyped-def]
        return self + other

    def __sub__(self, other):  # type: ignore[no-untyped-def]
        return self + (-other)

    def __rsub__(self, other):  # type: ignore[no-untyped-def]
        return other + (-self)

    def __rmul__(self, other):  # type: ignore[no-untyped-def]
        return self * other

    def __truediv__(self, other):  # type: ignore[no-untyped-def]
        return self * other**-1

    def __rtruediv__(self, other):  # type: ignore[no-untyped-def]
        return other * self**-1

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"


class MulAssign(Value):
    """mul's backward assigns the left operand's gradient (``=`` for ``+=``)."""

    def __mul__(self, other):  # type: ignore[no-untyped-def]
        other = self._lift(other)
        out = type(self)(self.data * other.data, (self, other), "*")

        def _backward():  # type: ignore[no-untyped-def]
            self.grad = other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out


class TanhNoSquare(Value):
    """tanh's local derivative ``1 - t`` where it is ``1 - t**2``."""

    def tanh(self):  # type: ignore[no-untyped-def]
        return self._unary(math.tanh(self.data), lambda t: 1 - t, "tanh")


class TanhCancelling(Value):
    """tanh as ``(exp(x) - exp(-x)) / (exp(x) + exp(-x))``: a difference of two numbers near 1 that
    cancels for tiny x (tanh(1e-12) keeps about 4 of its 16 digits); its derivative is right."""

    def tanh(self):  # type: ignore[no-untyped-def]
        x = self.data
        if abs(x) > 20:  # where exp would overflow: the library's own tanh
            return super().tanh()
        a, b = math.exp(x), math.exp(-x)
        return self._unary((a - b) / (a + b), lambda t: 1 - math.tanh(x) ** 2, "tanh")


class TanhCancellingMulAssign(TanhCancelling, MulAssign):
    """Both: a tanh a few digits short (right to 1e-13 at moderate x) and mul's ``=`` for ``+=``."""


class SqrtDividing(Value):
    """sqrt's slope as ``0.5 / s`` in Python floats: at 0 it raises ZeroDivisionError where IEEE gives inf."""

    def sqrt(self):  # type: ignore[no-untyped-def]
        return self._unary(math.sqrt(self.data), lambda s: 0.5 / s, "sqrt")


class NumberFree(Value):
    """Values that refuse Python numbers (``other.data`` of a float raises AttributeError), as some public
    micrograd ports are written."""

    def _lift(self, other):  # type: ignore[no-untyped-def]
        return other


class NumberFreeMulAssign(NumberFree, MulAssign):
    """mul's ``=`` for ``+=`` in an engine whose Values refuse Python numbers."""


class AbsInPlace(Value):
    """``abs`` that writes into its input and returns it (``self.data = abs(self.data); return self``)."""

    def abs(self):  # type: ignore[no-untyped-def]
        self.data = abs(self.data)
        return self


class TanhWrapsValue(Value):
    """tanh that stores a Value in ``.data`` (``Value(Value(...))``): the op after it cannot read a number."""

    def tanh(self):  # type: ignore[no-untyped-def]
        out = type(self)(0.0, (self,), "tanh")
        out.data = type(self)(math.tanh(self.data))
        return out
