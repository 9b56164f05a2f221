"""Deliberately broken engines for gradspec's tests: small subclasses of :class:`gradspec.engine.Value`.

Every op of the builtin Value builds its result as a plain ``Value``; :class:`Same` re-classes each result
as the subclass it was applied on (``__slots__ = ()`` keeps the layout identical), so a graph built from
inputs of a broken class stays broken all the way to the output, whose ``backward()`` is the subclass's.
Each broken class changes exactly one thing.
"""

from __future__ import annotations

import math
import sys

from gradspec.engine import Value

_OPS = ("__add__", "__sub__", "__mul__", "__truediv__", "__pow__", "__neg__",
        "relu", "tanh", "exp", "log", "sigmoid", "sin", "cos", "sqrt", "abs")
_REFLECTED = ("__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__rpow__")


def _keeping_class(name: str):
    base = getattr(Value, name)

    def op(self, *args):
        out = base(self, *args)
        out.__class__ = type(self)
        return out

    op.__name__ = name
    return op


def _reflected(name: str):
    forward = name.replace("__r", "__", 1)

    def op(self, other):
        # Call the forward method directly: ``lifted * self`` would dispatch straight back here, since a
        # subclass's reflected method takes priority over its base class's forward one.
        lifted = other if isinstance(other, Value) else type(self)(other)
        return getattr(lifted, forward)(self)

    op.__name__ = name
    return op


class Same(Value):
    """The builtin engine, with every result of the subclass's own class (a correct engine)."""

    __slots__ = ()


for _name in _OPS:
    setattr(Same, _name, _keeping_class(_name))
for _name in _REFLECTED:
    setattr(Same, _name, _reflected(_name))
Same.__abs__ = Same.abs


def _node(cls: type, data: float, parents: tuple, op: str) -> Value:
    return cls(data, parents, op)


class MulAssign(Same):
    """``=`` instead of ``+=`` in mul's backward: a node used twice keeps only the last contribution."""

    __slots__ = ()

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = _node(type(self), self.data * other.data, (self, other), "mul")

        def _backward() -> None:
            self.grad = other.data * out.grad
            other.grad = self.data * out.grad

        out._backward = _backward
        return out


class TanhSignFlip(Same):
    """tanh' = 1 + t**2 instead of 1 - t**2."""

    __slots__ = ()

    def tanh(self):
        t = math.tanh(self.data)
        out = _node(type(self), t, (self,), "tanh")

        def _backward() -> None:
            self.grad += (1.0 + t * t) * out.grad

        out._backward = _backward
        return out


class PowWrongFactor(Same):
    """d x**n = (n - 1) * x**(n - 1) instead of n * x**(n - 1)."""

    __slots__ = ()

    def __pow__(self, other):
        n = float(other.data if isinstance(other, Value) else other)
        out = _node(type(self), self.data**n, (self,), "pow")

        def _backward() -> None:
            self.grad += (n - 1) * self.data ** (n - 1) * out.grad

        out._backward = _backward
        return out


class ExpNoChain(Same):
    """exp's backward adds its local gradient without the factor ``out.grad``."""

    __slots__ = ()

    def exp(self):
        e = math.exp(self.data)
        out = _node(type(self), e, (self,), "exp")

        def _backward() -> None:
            self.grad += e

        out._backward = _backward
        return out


class RecursiveBackward(Same):
    """micrograd's recursive topological sort: RecursionError on graphs deeper than the recursion limit."""

    __slots__ = ()

    def backward(self) -> None:
        topo: list[Value] = []
        visited: set[int] = set()

        def build(v: Value) -> None:
            if id(v) not in visited:
                visited.add(id(v))
                for p in v._parents:
                    build(p)
                topo.append(v)

        build(self)
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()


class _Missing:
    """A class attribute that is not there: ``hasattr(cls, name)`` is False."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None):
        raise AttributeError(self.name)


class NoTanh(Same):
    """An engine without tanh."""

    __slots__ = ()
    tanh = _Missing()


class Raises(Same):
    """backward() raises."""

    __slots__ = ()

    def backward(self) -> None:
        raise RuntimeError("backward exploded")


class NanTanh(Same):
    """tanh returns nan (value and gradient)."""

    __slots__ = ()

    def tanh(self):
        out = _node(type(self), math.nan, (self,), "tanh")

        def _backward() -> None:
            self.grad += math.nan * out.grad

        out._backward = _backward
        return out


class InfExp(Same):
    """exp overflows early: every exp is +inf."""

    __slots__ = ()

    def exp(self):
        out = _node(type(self), math.inf, (self,), "exp")

        def _backward() -> None:
            self.grad += math.inf * out.grad

        out._backward = _backward
        return out


class ReluOneAtZero(Same):
    """relu'(0) = 1: another valid subgradient at the kink."""

    __slots__ = ()

    def relu(self):
        x = self.data
        out = _node(type(self), x if x > 0 else 0.0, (self,), "relu")

        def _backward() -> None:
            self.grad += (1.0 if x >= 0 else 0.0) * out.grad

        out._backward = _backward
        return out


class ReluTwoAtZero(Same):
    """relu'(0) = 2: outside relu's subgradients [0, 1] at the kink."""

    __slots__ = ()

    def relu(self):
        x = self.data
        out = _node(type(self), x if x > 0 else 0.0, (self,), "relu")

        def _backward() -> None:
            self.grad += (1.0 if x > 0 else 2.0 if x == 0 else 0.0) * out.grad

        out._backward = _backward
        return out


class LogRaises(Same):
    """log of a non-positive number raises, as math.log does."""

    __slots__ = ()

    def log(self):
        x = self.data
        out = _node(type(self), math.log(x), (self,), "log")

        def _backward() -> None:
            self.grad += out.grad / x

        out._backward = _backward
        return out


class LogAbs(Same):
    """log(x) computed as log|x|: a finite value outside log's domain."""

    __slots__ = ()

    def log(self):
        x = self.data
        out = _node(type(self), math.log(abs(x)), (self,), "log")

        def _backward() -> None:
            self.grad += out.grad / x

        out._backward = _backward
        return out


class ZeroGrad(Same):
    """backward() does nothing: every gradient stays 0."""

    __slots__ = ()

    def backward(self) -> None:
        return None


assert sys.getrecursionlimit() < 10_000, "RecursiveBackward relies on the default recursion limit"


class BreadthFirst(Same):
    """backward visits nodes breadth-first from the output: a node shared by a short and a long path
    runs its backward before the long path's contribution arrives (a traversal bug; every rule is right)."""

    __slots__ = ()

    def backward(self) -> None:
        order: list[Value] = []
        seen: set[int] = set()
        queue: list[Value] = [self]
        while queue:
            node = queue.pop(0)
            if id(node) in seen:
                continue
            seen.add(id(node))
            order.append(node)
            queue.extend(node._parents)
        self.grad = 1.0
        for node in order:
            node._backward()


class SubSignFlip(Same):
    """d(a - b)/db = +1 instead of -1."""

    __slots__ = ()

    def __sub__(self, other):  # type: ignore[no-untyped-def]
        other = other if isinstance(other, Value) else type(self)(other)
        out = _node(type(self), self.data - other.data, (self, other), "sub")

        def _backward() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __rsub__(self, other):  # type: ignore[no-untyped-def]
        return type(self)(other) - self


class AbsDunderSignless(Same):
    """``x.abs()`` is right, but ``abs(x)`` (``__abs__``) passes the gradient through unsigned:
    d|x|/dx = 1 everywhere, wrong for x < 0."""

    __slots__ = ()

    def __abs__(self):
        out = _node(type(self), abs(self.data), (self,), "abs")

        def _backward() -> None:
            self.grad += out.grad

        out._backward = _backward
        return out


class TanhViaExp(Same):
    """tanh as (exp(2x) - 1) / (exp(2x) + 1): cancellation loses relative accuracy for tiny x
    (tanh(1e-12) off by about 2e-5 of itself), and math.exp raises OverflowError past x = 355."""

    __slots__ = ()

    def tanh(self):
        e = math.exp(2 * self.data)
        t = (e - 1) / (e + 1)
        out = _node(type(self), t, (self,), "tanh")

        def _backward() -> None:
            self.grad += (1 - t * t) * out.grad

        out._backward = _backward
        return out


class MathOverflow(Same):
    """exp and sigmoid through Python's math: OverflowError where IEEE 754 gives inf (exp(800)), and a
    naive sigmoid 1/(1 + exp(-x)) that raises for sigmoid(-800), whose exact value is finite."""

    __slots__ = ()

    def exp(self):
        e = math.exp(self.data)
        out = _node(type(self), e, (self,), "exp")

        def _backward() -> None:
            self.grad += e * out.grad

        out._backward = _backward
        return out

    def sigmoid(self):
        s = 1 / (1 + math.exp(-self.data))
        out = _node(type(self), s, (self,), "sigmoid")

        def _backward() -> None:
            self.grad += s * (1 - s) * out.grad

        out._backward = _backward
        return out


class AbsDunderOnlyMutates(Same):
    """No ``abs()`` method, only ``__abs__``, which (as in a real engine) overwrites its operand's value in
    place and returns the operand itself: no graph node is recorded, so d|x|/dx comes out 1 for x < 0,
    and the input's own value is changed under the engine's feet."""

    __slots__ = ()
    abs = _Missing()

    def __abs__(self):
        self.data = abs(self.data)
        return self
