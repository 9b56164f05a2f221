"""Culprits inside a tensor op that gradspec lowered onto a scalar engine's own ops.

A micrograd-style engine runs a tensor case as a tensor of its Values: ``matmul`` is gradspec's
lowering, built from the user's ``*`` and ``+``. When such an op fails on its own, the bug is in one of
those scalar ops, so each scalar op the lowering applies is tested alone, at the first operands the
lowering gives it (for each mix of Values and constants), and the first that fails is named with the tensor op it sits in ("mul inside matmul
at column 12").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from gradspec.diagnose.unit import unit_culprit
from gradspec.engines.protocol import Engine
from gradspec.graph.tensor import TensorGraph, evaluate
from gradspec.ops.table import OPS
from gradspec.results import Culprit

__all__ = ["scalar_culprit"]


class _Var:
    """A differentiable scalar of the recording backend: its float value only."""

    __slots__ = ("v",)

    def __init__(self, v: float) -> None:
        self.v = v


class _Recorder:
    """A scalar backend in float64 that notes each op's first operands (value, varying)."""

    def __init__(self) -> None:
        # (op, which operands are Values) -> the first operands: -y and x - y may fail where x - 1 passes
        self.first: dict[tuple[str, tuple[bool, ...]], list[tuple[float, bool]]] = {}

    def op(self, name: str, *args: Any) -> Any:
        floats = [a.v if isinstance(a, _Var) else float(a) for a in args]
        result = float(OPS[name].fn(*floats))
        if not any(isinstance(a, _Var) for a in args):
            return result
        varying = tuple(isinstance(a, _Var) for a in args)
        self.first.setdefault((name, varying), list(zip(floats, varying, strict=True)))
        return _Var(result)

    def peek(self, x: Any) -> float:
        return x.v if isinstance(x, _Var) else float(x)

    def shift(self, xs: Sequence[Any]) -> Fraction | None:
        top = max(x.v if isinstance(x, _Var) else float(x) for x in xs)
        return Fraction(top) if np.isfinite(top) and top != 0 else None


def scalar_culprit(alone: TensorGraph, point: Mapping[str, Any], engine: Engine, op: str, col: int) -> Culprit | None:
    """The scalar op of ``engine`` that fails alone inside the tensor op ``op`` (the graph ``alone`` at
    ``point``, name -> array of exact numbers), or None: an engine with tensors of its own, an op whose
    scalar ops all pass alone, or operands the float lowering cannot evaluate."""
    if hasattr(engine, "run_tensor"):
        return None  # its tensor ops are its own kernels: the tensor op is the culprit
    recorder = _Recorder()
    leaves = {}
    for name, values in point.items():
        floats = np.vectorize(float, otypes=[float])(np.asarray(values, dtype=object))
        wrap = (lambda v: Fraction(float(v))) if name in alone.data else (lambda v: _Var(float(v)))
        arr = np.empty(floats.shape, dtype=object)
        for index in np.ndindex(floats.shape):
            arr[index] = wrap(floats[index])
        leaves[name] = arr
    try:
        evaluate(alone, recorder, leaves)
    except (ArithmeticError, ValueError):
        return None
    for (name, _), args in recorder.first.items():
        where = f"{name} at column {col}" if name == op else f"{name} inside {op} at column {col}"
        found = unit_culprit(name, args, engine, where)
        if found is not None:
            return found
    # An op that only moves elements (gather, expand, stack) applies none of the engine's ops: a repeated
    # element's gradient is summed by the engine's own backward, through the products sum(cotangent *
    # output) that gradspec builds with the engine's mul and add to ask for a VJP.
    for name, args in (("mul", [(1.5, True), (0.75, False)]), ("add", [(1.5, True), (0.75, True)])):
        if (name, tuple(v for _, v in args)) not in recorder.first:
            found = unit_culprit(name, args, engine, f"{name}, which weighs the outputs of {op} at column {col} "
                                                     "by the cotangent")
            if found is not None:
                return found
    return None
