"""Forward mode and higher order on an engine: what an :class:`~gradspec.modes.Ask` names, composed by
one driver from a few primitives of the engine's library.

An engine gives, for one function at one point, an object with the :class:`Primitives`: the value and the
VJP (keeping the gradient differentiable when asked), the gradient differentiated again along a
direction, forward mode (``jvp``) and the two compositions that nest it (``jvp_of``, ``vjp_of``). The
driver (:func:`compose`) reads the mode table (:data:`gradspec.modes.ROWS`) and builds every row from
them: a new mode is one row there, one function here and, where it needs one, a primitive per adapter.

Engines with tensors of their own (PyTorch, JAX, tinygrad) give the case as a function of its
differentiable inputs (``function_of``) and their primitives for it (``primitives``). Every other engine
that declares the modes (the built-in Value) runs the case through the lowering of
:mod:`gradspec.ops.lowering`, as a tensor of its scalars, and differentiates through its module's
``grad(output, inputs, create_graph=...)`` and ``jvp(output, tangents)`` (:mod:`gradspec.engine`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from gradspec.engines.protocol import Engine, Unsupported
from gradspec.engines.tensor import Values, constant, objects
from gradspec.graph.tensor import TensorGraph, evaluate
from gradspec.modes import ORDER, ROWS, Ask, Capability, Derivatives, Mode, rows

__all__ = ["COMPOSE", "Primitives", "columns", "compose", "derivatives"]


class Primitives(Protocol):
    """One function at one point, differentiated in its library's own terms. Directions come as float64
    arrays; what is returned as a "function" is only ever handed back to ``jvp``, ``jvp_of`` and ``vjp_of``."""

    function: Any  # the function itself, as ``jvp`` and its compositions take it

    @property
    def refused(self) -> Mapping[str, str]:
        """Rows of the mode table (by key) this function cannot be differentiated in, with why."""

    def reverse(self, v: Any, again: bool) -> tuple[Any, list[Any], Any]:
        """The value, the VJP with cotangent ``v`` (arrays), and the gradient for :meth:`again` (kept
        differentiable when ``again``)."""

    def again(self, grads: Any, u: Sequence[Any]) -> Any:
        """The gradient of ``grads · u``, itself differentiable: reverse over reverse."""

    def along(self, grads: Any, u: Sequence[Any]) -> float:
        """``grads · u`` as a number."""

    def arrays(self, grads: Any) -> list[Any]:
        """A gradient as float64 arrays, one per differentiable input."""

    def jvp(self, fn: Any, u: Sequence[Any]) -> Any:
        """Forward mode of ``fn`` at the point along ``u``, as float64 arrays (one, or one per input)."""

    def jvp_of(self, fn: Any, u: Sequence[Any]) -> Any:
        """``a -> J_fn(a) u``, for ``jvp`` to differentiate again (forward over forward)."""

    def vjp_of(self, v: Any) -> Any:
        """``a -> J_f(a)ᵀ v``, for ``jvp`` to differentiate (forward over reverse)."""

    def jacobian(self) -> list[Any] | None:
        """The library's own forward Jacobian per input (output shape + input shape), or None: by columns."""


_FORWARD = frozenset(row.key for row in ROWS if row.forward)  # rows composed from forward mode


def derivatives(engine: Engine, graph: TensorGraph, inputs: Mapping[str, Any], ask: Ask,
                fn: Callable[..., Any] | None = None) -> Derivatives:
    """The derivatives ``ask`` names of ``graph`` at ``inputs`` (name -> float64 array), or of ``fn``
    (a function of the differentiable inputs' arrays in the engine's own type) when given."""
    names = [n for n, _ in graph.differentiable]
    primals = [np.asarray(inputs[n], dtype=float) for n in names]
    own = getattr(engine, "primitives", None)
    whole = getattr(engine, "derivatives", None)  # an engine of the protocol's that composes the modes itself
    if own is not None or whole is not None:
        builds: Any = engine  # an engine with modes builds the case as a function of its own tensors
        f = fn if fn is not None else builds.function_of(graph, {n: inputs[n] for n in graph.data})
        if own is None:
            assert whole is not None
            computed: Derivatives = whole(f, primals, ask)
            return computed
        return compose(own(f, primals), ask, engine.capabilities, primals)
    if fn is not None:
        raise Unsupported(f"engine {engine.name} cannot differentiate a function it did not build")
    return compose(_Lowered(engine, graph, inputs), ask, engine.capabilities, primals)


def compose(p: Primitives, ask: Ask, capabilities: frozenset[Capability], primals: Sequence[Any]) -> Derivatives:
    """Every row ``ask`` names, from the primitives: a row the function refuses is left out with the reason."""
    asked = [row for row in rows(ask.modes, ask.order) if row.key not in p.refused]
    got = Derivatives(refused={row.key: p.refused[row.key] for row in rows(ask.modes, ask.order) if row.key in p.refused})
    got.value, got.vjp, grads = p.reverse(ask.v, any(row.again for row in asked))
    forward = Capability.JVP in capabilities and not _FORWARD & p.refused.keys()
    for row in asked:
        COMPOSE[row.key](p, ask, got, grads, forward, primals)
    return got


def _jvp(p: Primitives, ask: Ask, got: Derivatives, grads: Any, forward: bool, primals: Sequence[Any]) -> None:
    got.jvp = p.jvp(p.function, ask.u)


def _hvp(p: Primitives, ask: Ask, got: Derivatives, grads: Any, forward: bool, primals: Sequence[Any]) -> None:
    got.hvp = p.arrays(p.again(grads, ask.u))
    if forward:  # forward over reverse too, where the engine (and the function) has forward mode
        got.hvp_fwd = list(p.jvp(p.vjp_of(ask.v), ask.u))


def _jvp_of_jvp(p: Primitives, ask: Ask, got: Derivatives, grads: Any, forward: bool, primals: Sequence[Any]) -> None:
    got.jvp_of_jvp = p.jvp(p.jvp_of(p.function, ask.u), ask.w)


def _jacobian(p: Primitives, ask: Ask, got: Derivatives, grads: Any, forward: bool, primals: Sequence[Any]) -> None:
    own = p.jacobian()
    got.jacobian = own if own is not None else \
        [columns(lambda t: p.jvp(p.function, t), primals, i) for i in range(len(primals))]


def _orders(p: Primitives, ask: Ask, got: Derivatives, grads: Any, forward: bool, primals: Sequence[Any]) -> None:
    level = grads
    for k in ask.orders:
        level = p.again(level, ask.u)
        got.orders[k] = p.along(level, ask.u)


_Compose = Callable[[Primitives, Ask, Derivatives, Any, bool, Sequence[Any]], None]
#: How the driver composes each row of the mode table (:data:`gradspec.modes.ROWS`), by its key.
COMPOSE: dict[str, _Compose] = {Mode.JVP: _jvp, Mode.HVP: _hvp, Mode.JVP_OF_JVP: _jvp_of_jvp,
                                Mode.JACOBIAN: _jacobian, ORDER: _orders}


def columns(jvp: Callable[[Sequence[Any]], Any], primals: Sequence[Any], i: int) -> Any:
    """The Jacobian with respect to input ``i``, one JVP per element: output shape + input shape."""
    shape = np.shape(primals[i])
    cols = []
    for k in range(int(np.prod(shape))):
        hot = [np.zeros(np.shape(p)) for p in primals]
        hot[i].flat[k] = 1.0
        cols.append(np.asarray(jvp(hot), dtype=float))
    if not cols:
        return np.zeros((*np.shape(jvp([np.zeros(np.shape(p)) for p in primals])), *shape))
    return np.moveaxis(np.stack(cols), 0, -1).reshape((*cols[0].shape, *shape))


# -- a Value class: its module's grad() and jvp() over the lowered graph ---------------------------------


class _Lowered:
    """The primitives of a Value-class engine whose module has ``grad`` and ``jvp``: the case lowered to
    a tensor of its Values; a "function" here is the array of output nodes it stands for."""

    def __init__(self, engine: Engine, graph: TensorGraph, inputs: Mapping[str, Any]) -> None:
        self.refused: dict[str, str] = {}
        module = getattr(engine, "differentiator", None)
        if module is None:
            raise Unsupported(f"engine {engine.name} has no grad() and jvp() beside its Value class")
        self.engine, self.lib, self.backend = engine, module, Values(engine)
        engine.begin()
        leaves: dict[str, Any] = {}
        for name, _ in graph.inputs:
            arr = np.asarray(inputs[name], dtype=float)
            leaves[name] = self.backend.data(arr) if name in graph.data else objects(arr, engine.leaf)
        self.out = evaluate(graph, self.backend, leaves)[graph.output]
        names = [n for n, _ in graph.differentiable]
        self.flat = [leaf for n in names for leaf in leaves[n].flat]
        self.shapes = [leaves[n].shape for n in names]
        self.function = self.out

    def reverse(self, v: Any, again: bool) -> tuple[Any, list[Any], Any]:
        out = self.out
        s = self._dot([out[i] for i in np.ndindex(out.shape)], [float(np.asarray(v)[i]) for i in np.ndindex(out.shape)])
        grads = self.lib.grad(s, self.flat, create_graph=again) if not constant(s) else [0.0] * len(self.flat)
        value = np.vectorize(self._float, otypes=[float])(out)
        return value, self.arrays(grads), list(grads)

    def again(self, grads: Any, u: Sequence[Any]) -> Any:
        along = self._dot(grads, _flat(u))
        return [0.0] * len(self.flat) if constant(along) else list(self.lib.grad(along, self.flat, create_graph=True))

    def along(self, grads: Any, u: Sequence[Any]) -> float:
        return self._float(self._dot(grads, _flat(u)))

    def arrays(self, grads: Any) -> list[Any]:
        parts, at = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            parts.append(np.asarray([self._float(x) for x in grads[at:at + size]], dtype=float).reshape(shape))
            at += size
        return parts

    def jvp(self, fn: Any, u: Sequence[Any]) -> Any:
        if isinstance(fn, list):  # the gradient (vjp_of): one array per input
            return self.arrays(self.jvp_of(fn, u))
        nodes = np.asarray(fn, dtype=object)
        return np.vectorize(self._float, otypes=[float])(self.jvp_of(nodes, u)) if nodes.shape else \
            np.asarray(self._float(self.jvp_of(nodes, u)[()]), dtype=float)

    def jvp_of(self, fn: Any, u: Sequence[Any]) -> Any:
        tangents = _flat(u)
        if isinstance(fn, list):
            return [self._jvp(g, tangents) for g in fn]
        nodes = np.asarray(fn, dtype=object)
        out = np.empty(nodes.shape, dtype=object)
        for i in np.ndindex(nodes.shape):
            out[i] = self._jvp(nodes[i], tangents)
        return out

    def vjp_of(self, v: Any) -> Any:
        return self.reverse(v, True)[2]

    def jacobian(self) -> list[Any] | None:
        return None

    def _jvp(self, out: Any, tangents: Sequence[float]) -> Any:
        if constant(out):
            return 0.0
        return self.lib.jvp(out, {leaf: t for leaf, t in zip(self.flat, tangents, strict=True) if t})

    def _dot(self, xs: Sequence[Any], ys: Sequence[float]) -> Any:
        """``sum(x * y)`` in the engine's own ops (pairwise), skipping zero weights and constant terms."""
        terms = [self.backend.op("mul", x, y) for x, y in zip(xs, ys, strict=True) if y and not constant(x)]
        if not terms:
            return 0.0
        while len(terms) > 1:
            terms = [self.backend.op("add", terms[i], terms[i + 1]) for i in range(0, len(terms) - 1, 2)] + \
                ([terms[-1]] if len(terms) % 2 else [])
        return terms[0]

    def _float(self, x: Any) -> float:
        return float(x) if constant(x) else self.engine.value(x)


def _flat(arrays: Sequence[Any]) -> list[float]:
    return [float(x) for a in arrays for x in np.asarray(a).flat]
