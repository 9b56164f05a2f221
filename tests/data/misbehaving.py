"""Engines that break gradspec's assumptions rather than a single gradient rule, written for the tests.

:class:`Scalar` is a small, complete micrograd-style engine of its own (not a subclass of gradspec's
Value), so that its subclasses can rename or drop what the protocol expects (``.grad``, ``.data``,
``backward``), keep only the leaves' gradients, or keep local derivatives in a dict keyed by operand.
The rest subclass the builtin Value through ``engines.Same`` and change one behaviour each.
"""

from __future__ import annotations

import math
import os
import random

from engines import Same, _node

from gradspec.engine import Value


class Scalar:
    """A scalar reverse-mode engine: each op records ``(parent, local derivative)`` pairs; backward
    walks a topological order iteratively and adds ``local * grad`` into each parent."""

    def __init__(self, data, _edges=()):
        self.data = float(data)
        self.grad = 0.0
        self._edges = tuple(_edges)  # (parent, d self / d parent)

    @classmethod
    def lift(cls, x):
        return x if isinstance(x, Scalar) else cls(x)

    def _make(self, data, edges):
        return type(self)(data, edges)

    def __add__(self, o):
        o = self.lift(o)
        return self._make(self.data + o.data, [(self, 1.0), (o, 1.0)])

    def __sub__(self, o):
        o = self.lift(o)
        return self._make(self.data - o.data, [(self, 1.0), (o, -1.0)])

    def __mul__(self, o):
        o = self.lift(o)
        return self._make(self.data * o.data, [(self, o.data), (o, self.data)])

    def __truediv__(self, o):
        o = self.lift(o)
        return self._make(self.data / o.data, [(self, 1 / o.data), (o, -self.data / o.data**2)])

    def __pow__(self, o):
        o = self.lift(o)
        out = self.data**o.data
        edges = [(self, o.data * self.data ** (o.data - 1))]
        if self.data > 0:
            edges.append((o, out * math.log(self.data)))
        return self._make(out, edges)

    def __neg__(self):
        return self._make(-self.data, [(self, -1.0)])

    def __radd__(self, o):
        return self.lift(o) + self

    def __rsub__(self, o):
        return type(self)(o) - self

    def __rmul__(self, o):
        return type(self)(o) * self

    def __rtruediv__(self, o):
        return type(self)(o) / self

    def __rpow__(self, o):
        return type(self)(o) ** self

    def tanh(self):
        t = math.tanh(self.data)
        return self._make(t, [(self, 1 - t * t)])

    def exp(self):
        e = math.exp(self.data)
        return self._make(e, [(self, e)])

    def log(self):
        return self._make(math.log(self.data), [(self, 1 / self.data)])

    def sin(self):
        return self._make(math.sin(self.data), [(self, math.cos(self.data))])

    def relu(self):
        return self._make(max(self.data, 0.0), [(self, 1.0 if self.data > 0 else 0.0)])

    def _order(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p, _ in node._edges)
        return order

    def backward(self):
        self.grad = 1.0
        for node in reversed(self._order()):
            for parent, local in node._edges:
                parent.grad += local * node.grad


class Derivative(Scalar):
    """Keeps gradients in ``.derivative`` (as minitorch does): there is no ``.grad`` at all."""

    def __init__(self, data, _edges=()):
        self.data = float(data)
        self.derivative = 0.0
        self._edges = tuple(_edges)

    def backward(self):
        self.derivative = 1.0
        for node in reversed(self._order()):
            for parent, local in node._edges:
                parent.derivative += local * node.derivative


class Payload:
    """A minimal engine (+ and * only) that keeps its number in ``.payload``: there is no ``.data``."""

    def __init__(self, payload, _edges=()):
        self.payload = float(payload)
        self.grad = 0.0
        self._edges = tuple(_edges)

    def __add__(self, o):
        o = o if isinstance(o, Payload) else Payload(o)
        return Payload(self.payload + o.payload, [(self, 1.0), (o, 1.0)])

    def __mul__(self, o):
        o = o if isinstance(o, Payload) else Payload(o)
        return Payload(self.payload * o.payload, [(self, o.payload), (o, self.payload)])

    def backward(self):
        self.grad = 1.0
        for node in reversed(Scalar._order(self)):  # the same walk: it reads only _edges
            for parent, local in node._edges:
                parent.grad += local * node.grad


class NoBackward(Scalar):
    """Backpropagates through ``.backprop()``; ``backward`` is not there."""

    backprop = Scalar.backward
    backward = None


class LeafGradients(Scalar):
    """Stores gradients on leaves only (``grad`` of every intermediate stays None), as minitorch does;
    and its sin's backward rule is wrong (cos x + 0.5), so that checks with a sin fail."""

    def __init__(self, data, _edges=()):
        super().__init__(data, _edges)
        self.grad = 0.0 if not _edges else None

    def sin(self):
        return self._make(math.sin(self.data), [(self, math.cos(self.data) + 0.5)])

    def backward(self):
        upstream = {id(self): 1.0}
        for node in reversed(self._order()):
            g = upstream.pop(id(node), 0.0)
            if not node._edges:
                node.grad += g
            for parent, local in node._edges:
                upstream[id(parent)] = upstream.get(id(parent), 0.0) + local * g


class OperandDict(Scalar):
    """Keeps each node's local derivatives in a dict keyed by operand: ``x - x`` stores d/dx = 1, then
    overwrites it with -1. Every rule is right, and a node used by two ops accumulates correctly."""

    def _make(self, data, edges):
        local = {}
        parents = {}
        for parent, d in edges:
            local[id(parent)] = d
            parents[id(parent)] = parent
        return type(self)(data, [(parents[k], local[k]) for k in local])


class SetOrder(Scalar):
    """Runs backward in the order of a ``set`` of nodes (hash order, different from build to build): the
    gradient of a node that is shared depends on which of its consumers happened to come first."""

    def backward(self):
        nodes = set(self._order())
        order = sorted(nodes, key=lambda _: random.random())
        self.grad = 1.0
        for node in order:
            for parent, local in node._edges:
                parent.grad += local * node.grad


class TanhByExp(Same):
    """tanh as (exp(2x) - 1) / (exp(2x) + 1) in IEEE arithmetic: for x past 355, exp overflows to inf and
    the forward value is inf / inf = nan; below that it is right (its backward uses 1 - t**2)."""

    __slots__ = ()

    def tanh(self):
        e = math.exp(2 * self.data) if self.data < 355 else math.inf
        t = (e - 1) / (e + 1) if math.isfinite(e) else math.nan
        out = _node(type(self), t, (self,), "tanh")

        def _backward() -> None:
            self.grad += (1 - t * t) * out.grad

        out._backward = _backward
        return out


class TanhOverflows(Same):
    """tanh as (exp(2x) - 1) / (exp(2x) + 1) through math.exp, which raises OverflowError past x = 355."""

    __slots__ = ()

    def tanh(self):
        e = math.exp(2 * self.data)
        t = (e - 1) / (e + 1)
        out = _node(type(self), t, (self,), "tanh")

        def _backward() -> None:
            self.grad += (1 - t * t) * out.grad

        out._backward = _backward
        return out


class ComplexPow(Same):
    """``**`` with any exponent through Python's own ``**``: a negative base and a fractional exponent
    give a complex number, which ``float`` in the constructor rejects with TypeError."""

    __slots__ = ()

    def __pow__(self, other):
        o = other if isinstance(other, Value) else type(self)(other)
        out = _node(type(self), self.data**o.data, (self, o), "pow")

        def _backward() -> None:
            self.grad += o.data * self.data ** (o.data - 1) * out.grad
            o.grad += out.data * math.log(self.data) * out.grad

        out._backward = _backward
        return out


class ComplexExp(Same):
    """exp's result holds its number as a complex: gradspec's float() of it fails, the engine raised nothing."""

    __slots__ = ()

    def exp(self):
        out = Same.exp(self)
        out.data = complex(out.data, 0.0)  # type: ignore[assignment]
        return out


class PreorderBackward(Same):
    """backward runs nodes in depth-first preorder from the output: a node reached again by a longer
    path has already passed its gradient on before that path's part arrives (every rule is right)."""

    __slots__ = ()

    def backward(self) -> None:
        order, seen, stack = [], set(), [self]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            order.append(node)
            stack.extend(reversed(node._parents))
        self.grad = 1.0
        for node in order:
            node._backward()


class HangsOnTanh(Same):
    """backward never returns once the graph has a tanh (a busy loop, in Python)."""

    __slots__ = ()

    def backward(self) -> None:
        stack, seen = [self], set()
        while stack:
            node = stack.pop()
            if node._op == "tanh":
                while True:
                    pass
            if id(node) not in seen:
                seen.add(id(node))
                stack.extend(node._parents)
        Same.backward(self)


class ExitsInExp(Same):
    """exp takes the process down with it (``os._exit``), as a crash in native code would."""

    __slots__ = ()

    def exp(self):
        os._exit(70)


class RTrueDivSwapped(Same):
    """``c / x`` with a number on the left computes x / c (its __rtruediv__ swaps the operands); x / c and
    x / y are right."""

    __slots__ = ()

    def __rtruediv__(self, other):
        return self / other


class Alternating(Scalar):
    """Every other backward runs its nodes in build order (leaves first) instead of reverse topological
    order, so a gradient that has to pass through intermediates is lost on those runs: the runs of one
    graph disagree, as with an order taken from a set, but predictably."""

    runs = 0

    def backward(self):
        Alternating.runs += 1
        order = self._order()
        if Alternating.runs % 2:
            order.reverse()
        self.grad = 1.0
        for node in order:
            for parent, local in node._edges:
                parent.grad += local * node.grad


class LastBit(Scalar):
    """Correct, except that every other backward moves each leaf's gradient by one unit in the last place,
    as summing the same contributions in another order can."""

    runs = 0

    def backward(self):
        super().backward()
        LastBit.runs += 1
        if LastBit.runs % 2 == 0:
            for node in self._order():
                if not node._edges:
                    node.grad = math.nextafter(node.grad, math.inf)


class DeeperFirstPreorder(Same):
    """backward runs nodes in depth-first preorder from the output, visiting the deeper operand first
    (the longer chain of ops below it). That is right wherever one consumer of a shared node lies on the
    other's path (``sin(t) * t``: the deeper path reaches ``t`` last), and wrong for a diamond: ``t``
    used by two sibling consumers ``sin(t) * cos(t)`` runs before the second has passed its gradient on."""

    __slots__ = ()

    def backward(self) -> None:
        depth: dict[int, int] = {}

        def deep(node: Value) -> int:  # iterative: a deep chain must not hit the recursion limit
            stack = [node]
            while stack:
                top = stack[-1]
                todo = [p for p in top._parents if id(p) not in depth]
                if todo:
                    stack.extend(todo)
                    continue
                stack.pop()
                depth[id(top)] = 1 + max((depth[id(p)] for p in top._parents), default=0)
            return depth[id(node)]

        deep(self)
        order, seen, stack = [], set(), [self]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            order.append(node)
            # the stack pops its last item first: push the shallower operands first
            stack.extend(sorted(node._parents, key=lambda p: depth[id(p)]))
        self.grad = 1.0
        for node in order:
            node._backward()


class NoisyMul(Same):
    """mul's backward scales each contribution by 1 + 1e-9 * r, r in [-1, 1) drawn anew on every run: far
    inside any case's rtol, and a million times more than summing in another order can do in float64."""

    __slots__ = ()

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = _node(type(self), self.data * other.data, (self, other), "mul")

        def _backward() -> None:
            self.grad += other.data * out.grad * (1 + 1e-9 * (2 * random.random() - 1))
            other.grad += self.data * out.grad * (1 + 1e-9 * (2 * random.random() - 1))

        out._backward = _backward
        return out

    def __rmul__(self, other):
        return type(self)(other) * self


class SetChildren(Scalar):
    """micrograd's backward: a topological sort that walks each node's operands as a ``set`` (hash order,
    which follows the objects' addresses and so changes from build to build). The order is always a valid
    one, so every gradient is right; only the order in which a node's contributions are added changes,
    and with it the last bits of the sum."""

    def backward(self):
        topo, visited = [], set()

        def build(v):
            if v not in visited:
                visited.add(v)
                for child in {p for p, _ in v._edges}:
                    build(child)
                topo.append(v)

        build(self)
        self.grad = 1.0
        for node in reversed(topo):
            for parent, local in node._edges:
                parent.grad += local * node.grad


class ExitsInLog(Same):
    """log takes the process down with it (``os._exit(1)``), as a crash in native code would; every other
    op is right."""

    __slots__ = ()

    def log(self):
        os._exit(1)
