"""gradspec's own scalar autograd engine: reverse mode, forward mode, and derivatives of any order.

A small, readable engine in the micrograd style. Each op is one method that computes its value and
records its parents and its *partials*: one function per op, written once, that returns d(out)/d(parent)
for each parent as Values built with Value ops (a constant partial may be a plain float). Because the
partials are Values, every derivative the engine computes can itself be differentiated:

- :meth:`Value.backward` sets ``grad`` on every node of the graph: floats, or Values with
  ``create_graph=True``;
- :func:`grad` returns d(output)/d(input) for the inputs asked for and touches no node's ``grad``, like
  ``torch.autograd.grad``; with ``create_graph=True`` the gradients are Values, to differentiate again;
- :func:`jvp` is forward mode: the derivative of an output along tangents of its inputs, in one sweep from
  the inputs up.

Traversals are iterative, so graphs of any depth work without RecursionError. Float arithmetic follows
IEEE 754 (overflow gives inf, an undefined result gives nan) instead of raising, so that gradspec can
report what an engine computes at the edges of an op's domain. Nodes are told apart by identity.

Conventions, the same in every mode: relu'(0) = 0 and abs'(0) = 0; d/dx x**0 is 0 even at x = 0, with no
term at all (so no 0 * inf, and nothing to differentiate again); the exponent of ``x ** y`` gets nothing
where the gradient arriving at the power is exactly 0 and its partial ``x**y * log(x)`` is not finite. A
subclass may still give a node a hand-written float ``_backward`` closure, micrograd's way:
``backward()`` runs it, while ``grad``, ``jvp`` and ``create_graph``, which need partials, raise TypeError.

>>> x, y = Value(2.0), Value(3.0)
>>> z = (x * y + x) ** 2 - y.tanh()
>>> z.backward()
>>> round(x.grad, 6), round(y.grad, 6)
(64.0, 31.990134)

Second derivatives: ``grad`` with ``create_graph=True``, then ``grad`` again. For ``f = x*y*y + tanh(x)``,
d2f/dx2 = -2 tanh(x) (1 - tanh(x)**2), d2f/dxdy = 2y and d2f/dy2 = 2x:

>>> x, y = Value(0.5), Value(2.0)
>>> f = x * y * y + x.tanh()
>>> dfdx, dfdy = grad(f, [x, y], create_graph=True)
>>> round(dfdx.data, 6), dfdy.data
(4.786448, 2.0)
>>> [round(h, 6) for h in grad(dfdx, [x, y])]
[-0.726862, 4.0]
>>> grad(dfdy, [x, y])
[4.0, 1.0]

Forward mode: the derivative along ``u = (1, 3)`` is the gradient dotted with ``u``; forward over forward
gives ``u^T H w``, and forward over reverse a Hessian-vector product:

>>> round(jvp(f, {x: 1.0, y: 3.0}).data, 6)  # 4.786448 + 3 * 2
10.786448
>>> round(jvp(jvp(f, {x: 1.0, y: 3.0}), {x: 1.0}).data, 6)  # -0.726862 + 3 * 4
11.273138
>>> round(jvp(dfdx, {x: 1.0, y: 3.0}).data, 6)  # H u, its first entry
11.273138

``backward(create_graph=True)`` leaves Values in ``grad``, as torch does:

>>> x = Value(3.0)
>>> (x ** 3).backward(create_graph=True)
>>> x.grad.data, grad(x.grad, [x])
(27.0, [18.0])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Union

from gradspec.engine_activations import ActivationOps
from gradspec.engine_floats import _INF, _div, _ieee, _pow
from gradspec.engine_graph import _reverse, _topological, grad, jvp
from gradspec.engine_special import SpecialOps

__all__ = ["Value", "grad", "jvp"]

Operand = Union["Value", float, int]
# d(out)/d(parent): a Value, a constant, or None where the term is exactly 0 and left out altogether
# (so that 0 * inf or 0 * nan cannot appear in it).
Partial = Union["Value", float, None]
# An op's partials: given its output node and the value of the gradient arriving at it (1.0 in forward
# mode; only pow's exponent looks at it), d(out)/d(parent) for each parent, in the parents' order.
Partials = Callable[["Value", float], tuple[Partial, ...]]

class Value(SpecialOps, ActivationOps):
    """A scalar in a computation graph, with its value ``data`` and its gradient ``grad``.

    ``grad`` is a float, or a Value after ``backward(create_graph=True)``. The special functions and
    activations come from :class:`SpecialOps` (erf, log2, logit, atan2, ...) and :class:`ActivationOps`
    (softplus, gelu, hardshrink, maximum, where, ...).
    """

    __slots__ = ("_hand_written", "_op", "_parents", "_partials", "data", "grad", "label")

    def __init__(self, data: float, _parents: tuple[Value, ...] = (), _op: str = "", label: str = "",
                 _partials: Partials | None = None) -> None:
        self.data = float(data)
        self.grad: float | Value = 0.0
        self._partials = _partials  # set by the op that made this node; None for a leaf
        self._hand_written: Callable[[], None] | None = None  # see _backward
        self._parents = _parents
        self._op = _op
        self.label = label

    def __repr__(self) -> str:
        return f"Value(data={self.data!r}, grad={self.grad!r})"

    @staticmethod
    def _make(data: float, parents: tuple[Value, ...], op: str, partials: Partials) -> Value:
        """A node made by an op of :class:`SpecialOps` or :class:`ActivationOps`."""
        return Value(data, parents, op, "", partials)

    # -- binary ops -----------------------------------------------------------------------------
    def __add__(self, other: Operand) -> Value:
        other = _lift(other)
        return Value(self.data + other.data, (self, other), "add", "", _add_partials)

    def __mul__(self, other: Operand) -> Value:
        other = _lift(other)
        return Value(self.data * other.data, (self, other), "mul", "", _mul_partials)

    def __truediv__(self, other: Operand) -> Value:
        other = _lift(other)
        return Value(_div(self.data, other.data), (self, other), "div", "", _div_partials)

    def __pow__(self, other: Operand) -> Value:
        if isinstance(other, Value):
            return Value(_pow(self.data, other.data), (self, other), "pow", "", _pow_partials)
        n = float(other)

        def _pow_const_partials(out: Value, g: float) -> tuple[Partial, ...]:
            (x,) = out._parents
            # d/dx x**0 = 0 everywhere, even where 0 * x**-1 would be nan: no term at all.
            return (n * x ** (n - 1) if n else None,)

        return Value(_pow(self.data, n), (self,), "pow", "", _pow_const_partials)

    def __neg__(self) -> Value:
        return Value(-self.data, (self,), "neg", "", _neg_partials)

    def __sub__(self, other: Operand) -> Value:
        other = _lift(other)
        return Value(self.data - other.data, (self, other), "sub", "", _sub_partials)

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
        """A unary node whose derivative is the float ``local()``: a hook for subclasses. The node has
        a hand-written ``_backward``, so only ``backward()`` differentiates it; the built-in ops below
        give Value partials instead."""
        out = Value(data, (self,), op)

        def _backward() -> None:
            self.grad += local() * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        # relu'(0) = 0: the convention gradspec's op table declares.
        return Value(self.data if self.data > 0 else 0.0, (self,), "relu", "", _relu_partials)

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return Value(t, (self,), "tanh", "", _tanh_partials)

    def exp(self) -> Value:
        e = _ieee(math.exp, self.data)
        return Value(e, (self,), "exp", "", _exp_partials)

    def log(self) -> Value:
        x = self.data
        value = -_INF if x == 0.0 else _ieee(math.log, x)
        return Value(value, (self,), "log", "", _log_partials)

    def sigmoid(self) -> Value:
        x = self.data
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return Value(s, (self,), "sigmoid", "", _sigmoid_partials)

    def sin(self) -> Value:
        return Value(_ieee(math.sin, self.data), (self,), "sin", "", _sin_partials)

    def cos(self) -> Value:
        return Value(_ieee(math.cos, self.data), (self,), "cos", "", _cos_partials)

    def sqrt(self) -> Value:
        r = _ieee(math.sqrt, self.data)
        return Value(r, (self,), "sqrt", "", _sqrt_partials)

    def abs(self) -> Value:
        # abs'(0) = 0: the convention gradspec's op table declares.
        return Value(abs(self.data), (self,), "abs", "", _abs_partials)

    __abs__ = abs

    def _constant(self, x: Operand) -> Value:
        """``x`` as a node of this engine (the graph walks of :mod:`gradspec.engine_graph` build with it)."""
        return _lift(x)

    # -- backpropagation ------------------------------------------------------------------------
    def backward(self, create_graph: bool = False) -> None:
        """Set ``self.grad = 1`` and accumulate d(self)/d(node) into every node's ``grad``.

        With ``create_graph``, every node's ``grad`` becomes a Value (what it held plus d(self)/d(node),
        built from the partials with Value ops), which can be differentiated again.
        """
        order = _topological(self)
        if create_graph:
            self._backward_graph(order)
            return
        self.grad = 1.0
        for node in reversed(order):
            if node._hand_written is not None:
                node._hand_written()
            elif node._partials is not None:  # not a leaf
                node._step()

    @property
    def _backward(self) -> Callable[[], None]:
        """This node's step of :meth:`backward` (micrograd's ``_backward``): add d(self)/d(parent) times
        ``self.grad`` into each parent's ``grad``, from the partials; nothing for a leaf.

        A subclass may assign a hand-written float closure instead, micrograd's way; ``backward()`` runs
        it, while ``grad``, ``jvp`` and ``create_graph``, which need the partials, refuse such a node.
        """
        hand_written = self._hand_written
        return self._step if hand_written is None else hand_written

    @_backward.setter
    def _backward(self, closure: Callable[[], None]) -> None:
        self._hand_written = closure

    def _step(self) -> None:
        partials = self._partials
        if partials is None:
            return
        g = self.grad  # a Value only where an earlier backward(create_graph=True) left one
        for parent, d in zip(self._parents, partials(self, g.data if isinstance(g, Value) else g), strict=False):
            if d is not None:
                parent.grad += (d.data if isinstance(d, Value) else d) * g

    def _backward_graph(self, order: list[Value]) -> None:
        grads = _reverse(self, order, None, create_graph=True)
        for node in order:
            new = grads.get(id(node))
            old = node.grad
            if node is self:
                node.grad = Value(1.0)
            elif new is None:
                node.grad = _lift(old)
            elif isinstance(old, Value) or old != 0.0:
                node.grad = old + new
            elif isinstance(new, Value):
                # A gradient may be a node of the graph itself (d(x*y)/dx is y) or another node's
                # gradient: each grad gets a node of its own, so that no two share one.
                node.grad = new * 1.0
            else:
                node.grad = Value(new)


# -- the partials of each op, written once --------------------------------------------------------------


def _add_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return 1.0, 1.0


def _sub_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return 1.0, -1.0


def _neg_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (-1.0,)


def _mul_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x, y = out._parents
    return y, x


def _div_partials(out: Value, g: float) -> tuple[Partial, ...]:
    y = out._parents[1]
    # -x/y**2 as -(x/y)/y: the same value, and its own derivatives never form y**4, which underflows
    # for |y| near 1e-80 while the exact second derivative is a perfectly ordinary float.
    return 1 / y, -out / y


def _pow_partials(out: Value, g: float) -> tuple[Partial, ...]:
    x, y = out._parents
    # d/dx x**0 = 0 everywhere, even where 0 * x**-1 would be nan: no term at all.
    dx = y * x ** (y - 1) if y.data else None
    dy = out * x.log()
    if not g and not math.isfinite(dy.data):
        # Where the incoming gradient is exactly 0, the exponent gets nothing rather than 0 * nan
        # (a finite partial is kept: its term is 0 here, but it may have a derivative of its own).
        return dx, None
    return dx, dy


def _relu_partials(out: Value, g: float) -> tuple[Partial, ...]:
    (x,) = out._parents
    return (1.0 if x.data > 0 else 0.0,)


def _tanh_partials(out: Value, g: float) -> tuple[Partial, ...]:
    # 1 - t*t from the rounded t keeps every digit near 0 (and its own derivative, -2t(1 - t*t), is exact
    # there), but loses them all in the tails: tanh'(20) = 1.7e-17 would come out 0. There the same
    # function written through z = exp(-2|x|), 4z/(1 + z)**2, keeps them; both are exact identities, so
    # derivatives of every order stay right and only the rounding differs.
    (x,) = out._parents
    if abs(x.data) < 0.5:
        return (1 - out * out,)
    z = Value.exp(-2 * x if x.data > 0 else 2 * x)  # this engine's exp, whatever a subclass does with the name
    return (4 * z / ((1 + z) * (1 + z)),)


def _exp_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (out,)


def _log_partials(out: Value, g: float) -> tuple[Partial, ...]:
    (x,) = out._parents
    return (1 / x,)


def _sigmoid_partials(out: Value, g: float) -> tuple[Partial, ...]:
    # s*(1 - s) from the rounded s loses the tails (sigmoid'(40) = 4.2e-18 would be 0) and, near 0, the
    # second derivative s'*(1 - 2s); exact identities that keep both: (1 - tanh(x/2)**2)/4 near 0 and
    # z/(1 + z)**2 with z = exp(-|x|) elsewhere.
    (x,) = out._parents
    if abs(x.data) < 1:
        t = Value.tanh(x / 2)  # this engine's tanh, whatever a subclass does with the name
        return ((1 - t * t) / 4,)
    z = Value.exp(-x if x.data > 0 else x)
    return (z / ((1 + z) * (1 + z)),)


def _sin_partials(out: Value, g: float) -> tuple[Partial, ...]:
    (x,) = out._parents
    return (x.cos(),)


def _cos_partials(out: Value, g: float) -> tuple[Partial, ...]:
    (x,) = out._parents
    return (-x.sin(),)


def _sqrt_partials(out: Value, g: float) -> tuple[Partial, ...]:
    return (0.5 / out,)


def _abs_partials(out: Value, g: float) -> tuple[Partial, ...]:
    (x,) = out._parents
    return (0.0 if x.data == 0 else math.copysign(1.0, x.data),)


def _lift(x: Operand) -> Value:
    return x if isinstance(x, Value) else Value(x)
