"""Forward mode and higher order on an engine: what an :class:`~gradspec.modes.Ask` names, computed
in the engine's own modes.

Engines with tensors of their own (PyTorch, JAX) give the case as a function of its differentiable
inputs (``function_of``) and differentiate it with their own transforms (``derivatives``). Every
other engine that declares the modes (the built-in Value) runs the case through the lowering of
:mod:`gradspec.ops.lowering`, as a tensor of its scalars, and differentiates through its module's
``grad(output, inputs, create_graph=...)`` and ``jvp(output, tangents)`` (:mod:`gradspec.engine`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradspec.engines.protocol import Engine, Unsupported
from gradspec.engines.tensor import Values, constant, objects
from gradspec.graph.tensor import TensorGraph, evaluate
from gradspec.modes import Ask, Derivatives, Mode

__all__ = ["derivatives"]


def derivatives(engine: Engine, graph: TensorGraph, inputs: Mapping[str, Any], ask: Ask,
                fn: Callable[..., Any] | None = None) -> Derivatives:
    """The derivatives ``ask`` names of ``graph`` at ``inputs`` (name -> float64 array), or of ``fn``
    (a function of the differentiable inputs' arrays in the engine's own type) when given."""
    names = [n for n, _ in graph.differentiable]
    primals = [np.asarray(inputs[n], dtype=float) for n in names]
    own = getattr(engine, "derivatives", None)
    if own is not None:
        f = fn if fn is not None else engine.function_of(graph, {n: inputs[n] for n in graph.data})  # type: ignore[attr-defined]
        return own(f, primals, ask)  # type: ignore[no-any-return]
    if fn is not None:
        raise Unsupported(f"engine {engine.name} cannot differentiate a function it did not build")
    return _lowered(engine, graph, inputs, ask)


def _module(engine: Engine) -> Any:
    """What differentiates a Value-class engine's graphs: its class's module, with ``grad`` and ``jvp``."""
    module = getattr(engine, "differentiator", None)
    if module is None:
        raise Unsupported(f"engine {engine.name} has no grad() and jvp() beside its Value class")
    return module


def _lowered(engine: Engine, graph: TensorGraph, inputs: Mapping[str, Any], ask: Ask) -> Derivatives:
    lib = _module(engine)
    backend = Values(engine)
    engine.begin()
    leaves: dict[str, Any] = {}
    for name, _ in graph.inputs:
        arr = np.asarray(inputs[name], dtype=float)
        leaves[name] = backend.data(arr) if name in graph.data else objects(arr, engine.leaf)
    out = evaluate(graph, backend, leaves)[graph.output]
    names = [n for n, _ in graph.differentiable]
    flat = [leaf for n in names for leaf in leaves[n].flat]
    shapes = [leaves[n].shape for n in names]

    def per_input(values: Sequence[Any]) -> list[Any]:
        parts, at = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            parts.append(np.asarray([_float(engine, x) for x in values[at:at + size]], dtype=float).reshape(shape))
            at += size
        return parts

    u = [float(x) for a in ask.u for x in np.asarray(a).flat]
    w = [float(x) for a in ask.w for x in np.asarray(a).flat]
    got = Derivatives(value=np.vectorize(lambda n: _float(engine, n), otypes=[float])(out))
    s = _dot(backend, [out[i] for i in np.ndindex(out.shape)], [float(np.asarray(ask.v)[i]) for i in np.ndindex(out.shape)])
    nested = Mode.HVP in ask.modes or ask.order >= 2
    grads = lib.grad(s, flat, create_graph=nested) if not constant(s) else [0.0] * len(flat)
    got.vjp = per_input(grads)
    if Mode.HVP in ask.modes:
        along = _dot(backend, grads, u)
        got.hvp = per_input(_grad(lib, along, flat))
        got.hvp_fwd = per_input([_jvp(lib, g, flat, u) for g in grads])
    if ask.order >= 2:
        level = grads
        for k in ask.orders:
            level = _grad(lib, _dot(backend, level, u), flat, create_graph=True)
            got.orders[k] = _float(engine, _dot(backend, level, u))
    elements = [out[i] for i in np.ndindex(out.shape)]
    if Mode.JVP in ask.modes:
        got.jvp = np.asarray([_float(engine, _jvp(lib, o, flat, u)) for o in elements], dtype=float).reshape(out.shape)
    if Mode.JVP_OF_JVP in ask.modes:
        got.jvp_of_jvp = np.asarray([_float(engine, _jvp(lib, _jvp(lib, o, flat, u), flat, w)) for o in elements],
                                    dtype=float).reshape(out.shape)
    if Mode.JACOBIAN in ask.modes:
        columns = [[_float(engine, _jvp(lib, o, [leaf], [1.0])) for o in elements] for leaf in flat]
        got.jacobian = []
        at = 0
        for shape in shapes:
            size = int(np.prod(shape))
            block = np.asarray(columns[at:at + size], dtype=float).reshape((*shape, *out.shape))
            got.jacobian.append(np.moveaxis(block, tuple(range(len(shape))), tuple(range(out.ndim, out.ndim + len(shape))))
                                if shape else block.reshape(out.shape))
            at += size
    return got


def _dot(backend: Values, xs: Sequence[Any], ys: Sequence[float]) -> Any:
    """``sum(x * y)`` in the engine's own ops (pairwise), skipping zero weights and constant terms."""
    terms = [backend.op("mul", x, y) for x, y in zip(xs, ys, strict=True) if y and not constant(x)]
    if not terms:
        return 0.0
    while len(terms) > 1:
        terms = [backend.op("add", terms[i], terms[i + 1]) for i in range(0, len(terms) - 1, 2)] + \
            ([terms[-1]] if len(terms) % 2 else [])
    return terms[0]


def _grad(lib: Any, out: Any, flat: Sequence[Any], *, create_graph: bool = False) -> list[Any]:
    if constant(out):
        return [0.0] * len(flat)
    return list(lib.grad(out, flat, create_graph=create_graph))


def _jvp(lib: Any, out: Any, flat: Sequence[Any], tangents: Sequence[float]) -> Any:
    if constant(out):
        return 0.0
    return lib.jvp(out, {leaf: t for leaf, t in zip(flat, tangents, strict=True) if t})


def _float(engine: Engine, x: Any) -> float:
    return float(x) if constant(x) else engine.value(x)
