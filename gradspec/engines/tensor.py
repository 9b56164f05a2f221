"""Running a tensor graph on an engine: its value and one vector-Jacobian product per cotangent.

Engines with tensors of their own (PyTorch, JAX) build the case from their real tensor ops through a
``run_tensor(graph, inputs, cotangents)`` method, so what is judged is the library's own kernels and
backward rules. Every other engine (the built-in Value, any micrograd-style class, an :class:`Engine`
with the scalar primitives) runs the case through the lowering of :mod:`gradspec.ops.lowering`, as a
tensor of its scalars: each product ``sum(cotangent * output)`` is built with the engine's own ops and
backpropagated with its own ``backward``, on a fresh graph per cotangent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from gradspec.engines.protocol import Engine, Unavailable, Unsupported
from gradspec.graph.tensor import TensorGraph, evaluate
from gradspec.ops.lowering import obj
from gradspec.ops.table import OPS, TENSOR_OPS, Capability, Op, TensorOp

__all__ = ["TensorOutcome", "Values", "build_steps", "constant", "objects", "run_tensor", "tensor_unsupported"]


@dataclass
class TensorOutcome:
    value: Any  # float array of the output's shape
    grads: list[dict[str, Any]]  # per cotangent: differentiable input -> float array (None: not reported)


def build_steps(graph: TensorGraph, env: Mapping[str, Any], const: Callable[[float], Any],
                scalar: Callable[[Op, list[Any]], Any], tensor: Callable[[TensorOp, list[Any], dict[str, Any]], Any]) -> Any:
    """The output of ``graph`` built from a library's own tensors: ``env`` maps every input to its tensor,
    ``const`` makes a constant, ``scalar`` applies an element-wise op-table op, ``tensor`` a tensor op."""
    nodes: list[Any] = []
    for step in graph.steps:
        if step.name is not None:
            nodes.append(env[step.name])
        elif step.op is None:
            assert step.const is not None  # a step without a name or an op is a constant
            nodes.append(const(float(step.const)))
        elif step.op in OPS:
            nodes.append(scalar(OPS[step.op], [nodes[a] for a in step.args]))
        else:
            nodes.append(tensor(TENSOR_OPS[step.op], [nodes[a] for a in step.args], step.kw))
    return nodes[graph.output]


def tensor_unsupported(engine: Engine, graph: TensorGraph) -> str | None:
    """Why ``engine`` cannot run ``graph``, or None. An engine runs tensor cases when it declares the
    tensor capability, and then it must: with a ``run_tensor`` of its own, or the scalar primitives."""
    if isinstance(engine, Unavailable):
        return engine.reason
    if Capability.TENSOR not in engine.capabilities:
        return f"engine {engine.name} does not run tensor cases (it does not declare the tensor capability)"
    if not hasattr(engine, "run_tensor") and type(engine).leaf is Engine.leaf:
        return f"engine {engine.name} declares tensors, yet has neither run_tensor nor the scalar primitives"
    return None


def run_tensor(engine: Engine, graph: TensorGraph, inputs: Mapping[str, Any],
               cotangents: Sequence[Any]) -> TensorOutcome:
    """The engine's value at ``inputs`` (name -> float64 array) and its VJP for each cotangent."""
    own = getattr(engine, "run_tensor", None)
    if own is not None:
        value, grads = own(graph, inputs, cotangents)
        return TensorOutcome(np.asarray(value, dtype=float), [{n: _floats(g) for n, g in d.items()} for d in grads])
    return _lowered(engine, graph, inputs, cotangents)


def _floats(g: Any) -> Any:
    return None if g is None else np.asarray(g, dtype=float)


class Values:
    """A scalar backend over an engine's own scalars (its Values)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def op(self, name: str, *args: Any) -> Any:
        op = OPS[name]
        varying = [not constant(a) for a in args]
        if not any(varying):
            return float(op.fn(*(float(a) for a in args)))
        reason = self.engine.missing(op, varying[0])
        if reason:
            raise Unsupported(reason)
        return self.engine._apply(op, [a if v else float(a) for a, v in zip(args, varying, strict=True)], varying)

    @staticmethod
    def data(arr: Any) -> Any:
        """A data input (never differentiated) as the lowering's exact constants."""
        return np.vectorize(lambda v: Fraction(float(v)), otypes=[object])(arr) if arr.size else arr

    def peek(self, x: Any) -> float:
        return float(x) if constant(x) else self.engine.value(x)

    def shift(self, xs: Sequence[Any]) -> Fraction | None:
        # A float engine needs exp's argument shifted by the lane's largest value to stay finite.
        values = [float(x) if constant(x) else self.engine.value(x) for x in xs]
        top = max(values)
        return Fraction(top) if np.isfinite(top) and top != 0 else None


def _lowered(engine: Engine, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> TensorOutcome:
    backend = Values(engine)
    value: Any = None
    grads: list[dict[str, Any]] = []
    differentiable = [n for n, _ in graph.differentiable]
    for cotangent in cotangents:
        engine.begin()
        leaves: dict[str, Any] = {}
        for name, _ in graph.inputs:
            arr = np.asarray(inputs[name], dtype=float)
            if name in graph.data:
                leaves[name] = backend.data(arr)
            else:
                leaves[name] = objects(arr, engine.leaf)
        out = evaluate(graph, backend, leaves)[graph.output]
        if value is None:
            value = np.vectorize(lambda n: float(n) if constant(n) else engine.value(n), otypes=[float])(out)
        terms = [backend.op("mul", out[i], Fraction(float(cotangent[i]))) for i in np.ndindex(out.shape)
                 if cotangent[i] and not constant(out[i])]
        flat = [leaf for n in differentiable for leaf in leaves[n].flat]
        if not terms:
            grads.append({n: np.zeros(leaves[n].shape) for n in differentiable})
            continue
        while len(terms) > 1:
            terms = [backend.op("add", terms[i], terms[i + 1]) for i in range(0, len(terms) - 1, 2)] + \
                ([terms[-1]] if len(terms) % 2 else [])
        got = engine.gradients(terms[0], flat)
        result: dict[str, Any] = {}
        at = 0
        for n in differentiable:
            size = leaves[n].size
            part = got[at:at + size]
            at += size
            result[n] = None if any(g is None for g in part) else np.asarray(part, dtype=float).reshape(leaves[n].shape)
        grads.append(result)
    return TensorOutcome(np.asarray(value, dtype=float), grads)


def constant(x: Any) -> bool:
    return isinstance(x, Fraction | float | int)


def objects(arr: Any, make: Any) -> Any:
    out = np.empty(arr.shape, dtype=object)
    for index in np.ndindex(arr.shape):
        out[index] = make(float(arr[index]))
    return out if arr.shape else obj(out[()])
