"""tinygrad: ``tinygrad`` (float64) and ``tinygrad:float32``, through its Tensor API.

Runs on the device named by the ``DEV`` environment variable; gradspec sets ``DEV=PYTHON`` when it
is unset, which needs no compiler for kernels. Leaves are one-element tensors; gradients come from
``Tensor.gradient``, realized together.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from gradspec.engines.protocol import Engine, Unavailable
from gradspec.errors import EngineError
from gradspec.ops.table import Op


def create(options: str) -> Engine:
    dtype = options or "float64"
    if dtype not in ("float32", "float64"):
        raise EngineError(f"unknown tinygrad option {options!r}; use float32 or float64")
    name = "tinygrad" if dtype == "float64" else "tinygrad:float32"
    os.environ.setdefault("DEV", "PYTHON")
    try:
        from tinygrad import Tensor, dtypes
    except ImportError:
        return Unavailable(name, "tinygrad is not installed (pip install 'gradspec[tinygrad]')")
    dt = getattr(dtypes, dtype)
    try:
        (Tensor([1.0], dtype=dt) - 2.0).tolist()
    except FileNotFoundError as exc:  # its CPU device compiles helpers with clang
        return Unavailable(name, f"tinygrad cannot run here: {exc.filename or exc} is missing (apt-get install clang)")
    return TinygradEngine(Tensor, name, dt)


class TinygradEngine(Engine):
    def __init__(self, tensor: Any, name: str, dtype: Any) -> None:
        self.Tensor = tensor
        self.name = name
        self.dtype = dtype
        self.eps = 2.0**-52 if dtype.itemsize == 8 else 2.0**-23

    def missing(self, op: Op, value_left: bool) -> str | None:
        needed = op.needs(value_left)
        return None if hasattr(self.Tensor, needed) else f"tinygrad Tensor has no {needed}"

    def leaf(self, x: float) -> Any:
        return self.Tensor([x], dtype=self.dtype)

    def gradients(self, out: Any, nodes: Sequence[Any]) -> list[float | None]:
        grads = out.sum().gradient(*nodes)
        self.Tensor.realize(out, *grads)
        return [float(g.tolist()[0]) for g in grads]

    def value(self, node: Any) -> float:
        return float(node.tolist()[0])
