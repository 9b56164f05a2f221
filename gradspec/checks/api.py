"""The public checks: an expression at a point, a hand-written function, any callable on an engine.

:mod:`gradspec` re-exports these three; each is built on the judge (:mod:`gradspec.checks.check`) or the
tensor and function checks, which import NumPy and are imported only when a check needs them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gradspec.casefile.tensors import is_tensor_case
from gradspec.checks.check import check_graph, prepare
from gradspec.engine import Value
from gradspec.engines import call
from gradspec.engines.protocol import Engine
from gradspec.engines.resolve import resolve
from gradspec.errors import GradspecError
from gradspec.graph.tensor import TensorGraph, build_tensor
from gradspec.lang.expr import parse
from gradspec.lang.numbers import Number, exact_float, exact_number
from gradspec.limits import limited, too_large
from gradspec.modes import Mode
from gradspec.reference.numerical import relative_error
from gradspec.reference.store import STORE
from gradspec.results import CheckResult, Quantity, Role, Tolerance, Verdict, worst

__all__ = ["check", "check_function", "check_gradients"]


def check(
    expression: str,
    point: Mapping[str, Any],
    *,
    engine: str | Engine | type = "builtin",
    tolerance: Tolerance | None = None,
    **tolerances: float,
) -> CheckResult:
    """Check ``expression`` on ``engine`` at ``point``.

    >>> result = check("(x*y + x)**2 - tanh(y)", {"x": 2.0, "y": 3.0})
    >>> result.verdict.value, [q.name for q in result.quantities]
    ('pass', ['value', 'x', 'y'])

    Tensors are nested lists (or arrays); the expression may then use tensor ops:

    >>> check("softmax(x, axis=-1) @ w", {"x": [[1, 2], [3, 4]], "w": [0.5, -1.5]}).verdict.value
    'pass'

    Raises :class:`~gradspec.errors.ExpressionError` for an expression that does not parse or uses an
    undefined name; a point outside an op's domain gives a result with verdict ``error``.
    """
    tol = tolerance or Tolerance(**tolerances)
    if any(not isinstance(v, Number) for v in point.values()) or _tensor_ops(expression):
        with limited():  # one interval timer for every engine call of the check
            return _check_tensor(expression, point, resolve(engine), tol)
    graph = prepare(expression, list(point))
    exact_point = {k: exact_number(v) for k, v in point.items()}
    return check_graph(graph, exact_point, resolve(engine), tol, localise_failures=True)


def check_function(fn: Callable[..., Any], reference: str, inputs: Mapping[str, Any], *, engine: str | Engine = "torch",
                   data: Sequence[str] = (), tolerance: Tolerance | None = None, seed: int = 0,
                   check: Sequence[Mode | str] | None = None, order: int = 1, **tolerances: float) -> CheckResult:
    """Check ``fn``, a hand-written differentiable function of ``inputs`` (passed positionally, in their
    order), against the exact derivatives of ``reference``; ``data`` names inputs never differentiated.

    ``engine`` is the library whose tensors ``fn`` takes: ``torch`` (or ``torch:float32``), ``jax``, or
    ``builtin`` (or a Value class) for a scalar function over Values. The result holds the value, the
    VJPs, the Jacobian when small, and the properties of the backward (:mod:`gradspec.checks.function`);
    ``check`` and ``order`` add forward mode and higher order as a case file's keys do (default
    ``["value", "vjp"]``). Raises :class:`~gradspec.errors.ExpressionError` for a reference that does
    not parse or fit the inputs.
    """
    from gradspec.checks import function  # NumPy, for tensor checks only

    with limited():  # one interval timer for every call of the check
        return function.check_function(fn, reference, inputs, engine=engine, data=data, tolerance=tolerance, seed=seed,
                                       check=check, order=order, **tolerances)


def _tensor_ops(expression: str) -> bool:
    return is_tensor_case({}, parse(expression))


def _check_tensor(expression: str, point: Mapping[str, Any], engine: Engine, tol: Tolerance) -> CheckResult:
    """A tensor check: the inputs as exact decimals, every one differentiable."""
    import numpy as np  # tensor checks only

    from gradspec.checks.tensor import check_tensor

    arrays, read = {}, {}
    for name, value in point.items():
        refused = too_large(name, _size(value))  # before any work: converting a point is work too
        if refused:
            raise GradspecError(refused)
    for name, value in point.items():
        floats = _floats(value, np)
        if floats is not None:  # every element a finite float: its decimals remembered by its bytes
            arrays[name], read[name] = STORE.decimals(floats), floats
            continue
        arr = np.asarray(value, dtype=object)
        out = np.empty(arr.shape, dtype=object)
        flat = out.reshape(-1)
        for i, v in enumerate(arr.flat):
            v = v.item() if isinstance(v, np.generic) else v
            if isinstance(v, list | tuple | np.ndarray):
                raise TypeError(f"input {name} is a nested list of unequal lengths, not an array")
            flat[i] = exact_float(v) if type(v) is float else exact_number(v)
        arrays[name] = out
    graph = _graph(expression, tuple((n, a.shape) for n, a in arrays.items()))
    return check_tensor(graph, arrays, engine, tol, read_from=read if len(read) == len(arrays) else None)


@functools.lru_cache(maxsize=256)
def _graph(expression: str, shapes: tuple[tuple[str, tuple[int, ...]], ...]) -> TensorGraph:
    """The expression laid out over inputs of these shapes, once per process (a graph is immutable)."""
    return build_tensor(parse(expression), dict(shapes))


def _size(value: Any) -> int:
    """How many elements ``value`` holds, read from its shape or from the lengths of its first elements
    down the nesting, without converting it (a ragged list is refused later, element by element)."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return math.prod(shape)
    size = 1
    while isinstance(value, list | tuple):
        size *= len(value)
        if not value:
            break
        value = value[0]
    return size


def _floats(value: Any, np: Any) -> Any:
    """``value`` as a float64 array where each of its elements is a finite float (a Python float, or an
    array of a float dtype), with -0.0 as 0.0 (its decimal is 0); None otherwise (ints, strings,
    Fractions, booleans and non-finite numbers take the general path, which reads or refuses each)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind != "f":
            return None
        floats = value.astype(np.float64)
    else:
        arr = np.asarray(value, dtype=object)
        if set(map(type, arr.flat)) != {float}:
            return None
        floats = arr.astype(np.float64)
    if not np.isfinite(floats).all():
        return None
    return np.asarray(floats + 0.0)  # -0.0 + 0.0 is 0.0; an array even where the input is 0-d


def check_gradients(
    f: Callable[..., Any],
    inputs: Mapping[str, float] | Sequence[float],
    *,
    value: type | None = None,
    h: float = 1e-4,
    rtol: float = 1e-6,
    atol: float = 1e-8,
) -> CheckResult:
    """Numerically verify every gradient of ``f``, a Python callable built on an engine.

    ``f`` takes one engine Value per input (by keyword for a mapping, by position for a sequence) and
    returns a Value. Each gradient from ``backward()`` is compared with a Richardson-refined central
    difference of ``f``'s own forward pass.

    >>> check_gradients(lambda x, y: (x * y + x) ** 2 - y.tanh(), [2.0, 3.0]).verdict.value
    'pass'
    """
    if value is None:
        value = Value
    named = dict(inputs) if isinstance(inputs, Mapping) else {f"x{i}": float(v) for i, v in enumerate(inputs)}
    by_name = isinstance(inputs, Mapping)

    def forward(vals: Mapping[str, float]) -> Any:
        leaves = {k: value(v) for k, v in vals.items()}
        out = f(**leaves) if by_name else f(*leaves.values())
        return out, leaves

    def backward() -> Any:
        out, leaves = forward(named)
        out.backward()
        return leaves

    # ``f`` and its engine are code under test: every call goes through the guarded door.
    first = call.guarded(backward)
    if first.verdict is not None:
        return CheckResult(getattr(f, "__name__", "f"), dict(named), value.__name__, first.verdict,
                           message=first.message, kind="callable")
    leaves = first.get()
    tol = Tolerance(rtol=rtol, atol=atol, h=h)
    quantities = []
    for name, x0 in named.items():
        step = h * max(1.0, abs(x0))

        def at(x: float, name: str = name) -> float:
            moved = call.guarded(lambda: float(forward({**named, name: x})[0].data))
            return moved.get() if moved.verdict is None else math.nan

        def central(s: float, at: Callable[[float], float] = at, x0: float = x0) -> float:
            return (at(x0 + s) - at(x0 - s)) / (2 * s)

        num = (4 * central(step / 2) - central(step)) / 3
        grad = float(leaves[name].grad)
        err = abs(grad - num)
        bound = tol.bound(num)
        quantities.append(Quantity(name, Role.INPUT, grad, None, num, err, relative_error(grad, num), bound,
                                   Verdict.PASS if err <= bound else Verdict.FAIL))
    name = getattr(f, "__name__", "f")
    return CheckResult(name, dict(named), value.__name__, worst([q.verdict for q in quantities]), tuple(quantities),
                       kind="callable")
