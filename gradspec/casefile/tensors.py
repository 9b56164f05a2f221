"""Tensor cases: inputs with shapes, read from a case's ``sample`` or ``at`` block.

A case is a tensor case when a sampled variable has a ``shape`` (or ``integers``, or
``differentiable: false``), when an ``at`` value is a nested list, or when its expression calls a tensor
op. Every distribution of scalar sampling applies per element; ``integers: [lo, hi)`` draws integers;
``differentiable: false`` (or the case's ``data_inputs`` list, for ``at`` points) marks inputs that are data,
such as class targets. Draws are seeded as scalar draws are, one draw after another, so adding draws
never moves earlier ones. Inputs are capped at ``LIMITS.elements`` elements each (:mod:`gradspec.limits`).
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable, Hashable, Mapping
from fractions import Fraction
from typing import Any

from gradspec.casefile import sampling as _sampling
from gradspec.casefile.model import Reader, TensorPoint, TensorSpec
from gradspec.errors import CaseFileError, DomainError, ExpressionError
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import Apply, Program
from gradspec.lang.numbers import exact_number
from gradspec.limits import too_large
from gradspec.ops.table import TENSOR_OPS

__all__ = ["check_points", "is_tensor_case", "load", "points"]

Fail = Callable[..., CaseFileError]
_TENSOR_KEYS = ("shape", "integers", "differentiable")


def is_tensor_case(raw: Mapping[str, Any], program: Program | None) -> bool:
    if raw.get("kind") == "tensor" or "data_inputs" in raw:
        return True
    variables = raw.get("sample", {}).get("vars", {}) if isinstance(raw.get("sample"), dict) else {}
    if any(isinstance(d, dict) and any(k in d for k in _TENSOR_KEYS) for d in variables.values()):
        return True
    at = raw.get("at")
    for item in ([at] if isinstance(at, dict) else at if isinstance(at, list) else []):
        if isinstance(item, dict) and any(isinstance(v, list) for v in item.values()):
            return True
    return program is not None and _uses_tensor_ops(program)


def load(reader: Reader, names: list[str]) -> tuple[None, TensorSpec]:
    """The tensor kind's loader: the points (with every input's shape) and the graph over those shapes,
    its shape errors located at the expression's column."""
    if "expect" in reader.raw:
        raise reader.fail("expect does not apply to a tensor case (the exact reference is the expectation)",
                          "expect", is_key=True)
    program = reader.parse("expr")
    found, shapes, data = points(reader.raw, reader.id, reader.defaults.get("seed", 0), reader.line, reader.fail)
    try:
        graph = build_tensor(program, shapes, data)
    except ExpressionError as exc:
        raise reader.expression_error(exc, "expr") from None
    return None, TensorSpec(graph, found)


def check_points(spec: TensorSpec, raw: Mapping[str, Any], fail: Fail) -> CaseFileError | None:
    """The first point outside an op's domain, or on a kink the case does not declare, as a located error."""
    from gradspec.reference.tensor import exact_tensor  # NumPy, imported only for tensor cases

    sampled = "sample" in raw
    for i, point in enumerate(spec.points):
        where = ("sample",) if sampled else (("at",) if isinstance(raw["at"], dict) else ("at", i))
        label = f"draw {i}" if sampled else f"point {i}"
        try:
            ref = exact_tensor(spec.graph, point.arrays())
        except DomainError as exc:
            hint = "; narrow the sampled range or add an exclusion" if sampled else ""
            return fail(f"{label} is outside the domain: {exc.message}{hint}", *where)
        if ref.kinks and raw.get("kink") is None:
            return fail(f"{label} lies on a kink ({', '.join(ref.kinks)}); declare `kink: convention` or `kink: any`",
                        *where)
    return None


def _uses_tensor_ops(program: Program) -> bool:
    stack = [program.output, *(node for _, node in program.assignments)]
    while stack:
        node = stack.pop()
        if isinstance(node, Apply):
            if node.op in TENSOR_OPS:
                return True
            stack.extend(node.args)
    return False


def points(raw: Mapping[str, Any], case_id: str, default_seed: int, line_of: Callable[[tuple[Hashable, ...]], int],
           fail: Fail) -> tuple[tuple[TensorPoint, ...], dict[str, tuple[int, ...]], frozenset[str]]:
    """The points of a tensor case, the shape of every input, and which inputs are data."""
    if "sample" in raw:
        return _sampled(raw["sample"], case_id, default_seed, line_of(("sample",)), fail)
    return _listed(raw["at"], raw.get("data_inputs", []), line_of, fail)


def _seed(spec: Mapping[str, Any], case_id: str, default_seed: int) -> int:
    seed = spec.get("seed")
    return int(seed) if seed is not None else zlib.crc32(f"{default_seed}:{case_id}".encode())


def _sampled(spec: Mapping[str, Any], case_id: str, default_seed: int, line: int,
             fail: Fail) -> tuple[tuple[TensorPoint, ...], dict[str, tuple[int, ...]], frozenset[str]]:
    seed = _seed(spec, case_id, default_seed)
    rng = random.Random(seed)
    shapes: dict[str, tuple[int, ...]] = {}
    data: set[str] = set()
    for name, dist in spec["vars"].items():
        shape = tuple(int(n) for n in dist.get("shape", ()))
        refused = too_large(name, math.prod(shape))
        if refused:
            raise fail(refused, "sample", "vars", name, "shape")
        shapes[name] = shape
        if "integers" in dist:
            lo, hi = dist["integers"]
            if not lo < hi:
                raise fail(f"integers needs low < high (the range is [low, high)), got {[lo, hi]}",
                           "sample", "vars", name, "integers")
        if not dist.get("differentiable", True):
            data.add(name)
    out = []
    for i in range(int(spec["count"])):
        values = []
        for name, dist in spec["vars"].items():
            n = math.prod(shapes[name])
            values.append((name, shapes[name], tuple(_elements(name, dist, rng, n, fail))))
        out.append(TensorPoint(tuple(values), line, zlib.crc32(f"{seed}:{i}".encode())))
    return tuple(out), shapes, frozenset(data)


def _elements(name: str, dist: Mapping[str, Any], rng: random.Random, n: int, fail: Fail) -> list[Fraction]:
    if "integers" in dist:
        others = [k for k in ("uniform", "loguniform", "normal", "choice") if k in dist]
        if others:
            raise fail(f"variable {name!r} needs exactly one of uniform, loguniform, normal, choice, integers",
                       "sample", "vars", name)
        lo, hi = dist["integers"]
        return [Fraction(rng.randrange(int(lo), int(hi))) for _ in range(n)]
    scalar = {k: v for k, v in dist.items() if k not in _TENSOR_KEYS}
    return [exact_number(v) for v in _sampling._draw(name, scalar, rng, n, fail)]


def _listed(at: Any, data: list[str], line_of: Callable[[tuple[Hashable, ...]], int],
            fail: Fail) -> tuple[tuple[TensorPoint, ...], dict[str, tuple[int, ...]], frozenset[str]]:
    items = [at] if isinstance(at, dict) else at
    shapes: dict[str, tuple[int, ...]] | None = None
    out = []
    for i, item in enumerate(items):
        where: tuple[Hashable, ...] = ("at",) if isinstance(at, dict) else ("at", i)
        values = []
        for name, v in item.items():
            def located(message: str, name: str = name, where: tuple[Hashable, ...] = where) -> CaseFileError:
                return fail(message, *where, name)

            shape, flat = _nested(v, located)
            values.append((name, shape, tuple(flat)))
        found = {n: s for n, s, _ in values}
        if shapes is not None and found != shapes:
            raise fail("every point must give the same variables with the same shapes", *where)
        shapes = found
        out.append(TensorPoint(tuple(values), line_of(where), zlib.crc32(f"at:{i}".encode())))
    assert shapes is not None
    unknown = [n for n in data if n not in shapes]
    if unknown:
        raise fail(f"data_inputs names {unknown[0]!r}, which is not an input", "data_inputs")
    return tuple(out), shapes, frozenset(data)


def _nested(value: Any, fail: Callable[[str], CaseFileError]) -> tuple[tuple[int, ...], list[Fraction]]:
    """A number or a rectangular nested list of numbers: its shape and its elements, row-major."""
    import numpy as np  # imported on use: loading scalar case files needs no NumPy (nor its threads)

    if not isinstance(value, list):
        if isinstance(value, float) and not math.isfinite(value):
            raise fail(f"{value} is not a finite number")
        return (), [exact_number(value)]
    try:
        arr = np.array(value, dtype=object)
    except ValueError:
        arr = None
    if arr is None or any(isinstance(v, list) for v in arr.flat) or arr.size == 0:
        raise fail("a tensor is a rectangular nested list of numbers, with no empty or ragged parts")
    refused = too_large("the tensor", arr.size)
    if refused:
        raise fail(refused.replace("input the tensor", "the tensor"))
    flat = []
    for v in arr.flat:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise fail(f"tensor elements must be numbers, found {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise fail(f"{v} is not a finite number")
        flat.append(exact_number(v))
    return tuple(arr.shape), flat
