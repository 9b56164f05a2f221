"""Function cases: a user's own differentiable function, per engine, against a declared reference.

The inputs are read as a tensor case's (``sample`` or ``at``: :mod:`gradspec.casefile.tensors`), the
``reference`` expression is built over their shapes, and every ``function`` is imported here, from the
current directory, and called once: a module that fails to import, a missing attribute, or a function
whose output has another shape than the reference's is a located error before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gradspec.casefile.model import FunctionSpec, Reader, TensorPoint
from gradspec.casefile.tensors import points
from gradspec.errors import EngineError, ExpressionError
from gradspec.graph.tensor import TensorGraph, build_tensor

__all__ = ["load"]


def load(reader: Reader, names: list[str]) -> tuple[None, FunctionSpec]:
    """The function kind's loader: points, the reference graph over their shapes, the functions."""
    from gradspec.engines.function import import_function  # NumPy: only when a function case is loaded
    if "expect" in reader.raw:
        raise reader.fail("expect does not apply to a function case (the reference is the expectation)",
                          "expect", is_key=True)
    program = reader.parse("reference")
    found, shapes, data = points(reader.raw, reader.id, reader.defaults.get("seed", 0), reader.line, reader.fail)
    listed = list(shapes)
    unknown = [n for n in program.inputs if n not in shapes]
    if unknown:
        exc = ExpressionError(f"undefined variable {unknown[0]!r} (inputs: {', '.join(listed)})",
                              col=program.column_of(unknown[0]))
        raise reader.expression_error(exc, "reference")
    try:
        graph = build_tensor(program, shapes, data)
    except ExpressionError as exc:
        raise reader.expression_error(exc, "reference") from None
    base = os.getcwd()
    functions = tuple((str(k), str(v)) for k, v in reader.raw["function"].items())
    for engine, target in functions:
        try:
            import_function(target, base)
        except EngineError as exc:
            raise reader.fail(exc.message, "function", engine) from None
    for engine, target in functions:
        problem = _output_shape(engine, import_function(target, base), target, graph, found[0])
        if problem:
            raise reader.fail(problem, "function", engine)
    dtype = reader.raw.get("dtype", "float64")
    dtypes = tuple(dtype) if isinstance(dtype, list) else (dtype,)
    return None, FunctionSpec(graph, found, functions=functions, dtypes=dtypes, base=base)


def _output_shape(family: str, fn: Callable[..., Any], target: str, graph: TensorGraph, point: TensorPoint) -> str:
    """Why ``fn`` cannot stand for the reference: it returns another shape at the case's first point.
    One forward through the guarded call; anything else the function does wrong is the run's to judge."""
    import numpy as np

    from gradspec.engines import call
    from gradspec.engines.function import FunctionEngine, OutputShape
    from gradspec.engines.protocol import Unavailable, resolve

    engine = resolve(family)
    if isinstance(engine, Unavailable):
        return ""  # the library is missing here: its checks skip with the reason
    floats = {n: np.asarray(np.vectorize(float, otypes=[float])(a), dtype=float) for n, a in point.arrays().items()}
    wrapped = FunctionEngine(engine, fn, target)
    called = call.guarded(lambda: wrapped.probe(graph, floats, [np.zeros(graph.shape)]))
    return called.error.message if isinstance(called.error, OutputShape) else ""
