"""Function cases: a user's own differentiable function, per engine, against a declared reference.

The inputs are read as a tensor case's (``sample`` or ``at``: :mod:`gradspec.casefile.tensors`), the
``reference`` expression is built over their shapes, and every ``function`` is located without being
imported (:func:`gradspec.engines.targets.locate`): loading a case file, as ``gradspec validate`` and
pytest's collection do, never runs the code it names. A target in the standard library, a module that
is not there or does not define the attribute is a located error; the import, and what the imported
object is, belong to the run (:mod:`gradspec.checks.function`).
"""

from __future__ import annotations

import os

from gradspec.casefile.model import FunctionSpec, Reader
from gradspec.casefile.tensors import points
from gradspec.engines.targets import locate
from gradspec.errors import ExpressionError
from gradspec.graph.tensor import build_tensor

__all__ = ["load"]


def load(reader: Reader, names: list[str]) -> tuple[None, FunctionSpec]:
    """The function kind's loader: points, the reference graph over their shapes, the functions."""
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
        problem = locate(target, base)
        if problem:
            raise reader.fail(problem, "function", engine)
    dtype = reader.raw.get("dtype", "float64")
    dtypes = tuple(dtype) if isinstance(dtype, list) else (dtype,)
    return None, FunctionSpec(graph, found, functions=functions, dtypes=dtypes, base=base)

