"""A user's own differentiable function run as an engine: its value and its VJPs, read through its library.

A function under test is a plain callable that takes the case's inputs positionally (in the order the
case lists them) as one library's tensors and returns one tensor, or a scalar function over a Value
class. :class:`FunctionEngine` wraps the library's engine (for its dtype, device and name) and answers
``run_tensor`` by calling the function instead of building the reference graph from the library's ops,
so the tensor check (:mod:`gradspec.checks.tensor`) judges it unchanged. :meth:`FunctionEngine.probe`
records, besides, what the properties of :mod:`gradspec.checks.function` read: the gradients as the
library returned them (shape, dtype), gradients reaching data inputs, and inputs modified in place.

Everything library-specific is the adapter's (:mod:`gradspec.engines.adapters`): an engine whose adapter
has ``function_input`` (one input as the function receives it: an integer-valued data input as an
integer tensor, else the engine's dtype), ``probe_function`` (the forward and backward passes above)
and ``primitives`` runs a function under test. The function is then checked in the modes of its library
too (a case's ``check:`` list): the adapter reads from the function what it defines (a
``torch.autograd.Function`` without ``jvp``, a ``jax.custom_vjp``) and refuses the modes it has not,
with the reason (``Derivatives.refused``), while the others are still computed. A Value class is
checked in reverse mode only.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradspec.engines.paths import importable
from gradspec.engines.protocol import REVERSE_AND_TENSOR, Engine, Unsupported, ValueClassEngine
from gradspec.errors import EngineError
from gradspec.graph.tensor import TensorGraph

__all__ = ["FunctionEngine", "OutputShape", "Probe", "family", "import_function", "output_shape", "referenced"]

_ADAPTER = ("function_input", "probe_function", "primitives")  # what an adapter gives to run a function under test
REVERSE_ONLY_REASON = "a function over a Value class is checked in value and reverse mode only"


def family(engine: Engine) -> str:
    """The name a function case lists an engine's function under: its adapter's ``family`` (torch, jax),
    builtin for any Value class, else the engine's own name."""
    if isinstance(engine, ValueClassEngine):
        return "builtin"
    return getattr(engine, "family", None) or engine.name.split(":")[0]


def import_function(target: str, base: str = ".") -> Callable[..., Any]:
    """``module:attribute`` imported with ``base`` (the current directory by default) importable, after
    the installed packages (:func:`gradspec.engines.paths.importable`); :class:`EngineError` says what is missing."""

    module_name, _, attr = target.partition(":")
    try:
        with importable(Path(base).resolve()):  # as the CLI and the plugin do for the current folder
            module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module failing to import is theirs to see, located
        raise EngineError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    found: Any = module
    for part in attr.split("."):
        if not hasattr(found, part):
            raise EngineError(f"module {module_name!r} has no attribute {attr!r}")
        found = getattr(found, part)
    if not callable(found):
        raise EngineError(f"{target!r} is {type(found).__name__}, not a callable")
    function: Callable[..., Any] = found
    return function


def referenced(fn: Any, wanted: Callable[[Any], bool], depth: int = 3) -> list[Any]:
    """The objects ``wanted`` picks among ``fn`` itself and what its code names (its globals, closure
    cells and module attributes, through plain Python functions it calls, ``depth`` deep): how an adapter
    finds the library objects a user's function is written with (the ``torch.autograd.Function`` behind
    ``MyFn.apply``, a ``jax.custom_vjp``) without calling it."""
    found: list[Any] = []
    seen: set[int] = set()

    def visit(obj: Any, level: int) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        owner = getattr(obj, "__self__", None)  # a bound method: Function.apply is bound to its class
        for candidate in (obj, owner):
            if candidate is not None and wanted(candidate) and all(candidate is not f for f in found):
                found.append(candidate)
        code = getattr(obj, "__code__", None)
        if code is None or level >= depth:
            return
        scope = dict(getattr(obj, "__globals__", {}))
        cells = zip(code.co_freevars, getattr(obj, "__closure__", None) or (), strict=False)
        scope |= {name: cell.cell_contents for name, cell in cells if _filled(cell)}
        names = _names(code)
        for name in names:
            value = scope.get(name)
            if inspect.ismodule(value):  # module.Fn.apply: the module's attributes the code names
                for attr in names:
                    if hasattr(value, attr):
                        visit(getattr(value, attr), level + 1)
            elif value is not None:
                visit(value, level + 1)

    visit(fn, 0)
    return found


def _names(code: Any) -> list[str]:
    """The global and attribute names a code object and the functions nested in it use."""
    names = list(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names += _names(const)
    return names


def _filled(cell: Any) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:
        return False
    return True


class OutputShape(EngineError):
    """The function returned a tensor of another shape than its reference's."""


def output_shape(graph: TensorGraph, shape: tuple[int, ...]) -> None:
    """Raise :class:`OutputShape` where a function's output does not have the reference's shape."""
    if tuple(shape) != graph.shape:
        raise OutputShape(f"returned shape {list(shape)}; the reference has shape {list(graph.shape)}")


@dataclass
class Probe:
    """One forward and one backward per cotangent, as the library returned them."""

    value: Any  # float64 array
    grads: list[dict[str, Any]]  # per cotangent: differentiable input -> float64 array (None: none returned)
    kinds: list[dict[str, tuple[tuple[int, ...], str]]] = field(default_factory=list)  # (shape, dtype) as returned
    dtypes: dict[str, str] = field(default_factory=dict)  # each differentiable input's dtype as passed
    data_grads: list[str] = field(default_factory=list)  # data inputs that received a gradient
    mutated: list[str] = field(default_factory=list)  # inputs whose values changed during the calls
    raw_shapes: list[str] = field(default_factory=list)  # gradients of a wrong shape before the library reduced them


class FunctionEngine(Engine):
    """``fn`` on the library of ``base``: an engine whose adapter runs functions under test (in the base
    engine's modes), or a Value-class engine (in reverse mode only)."""

    capabilities = REVERSE_AND_TENSOR

    def __init__(self, base: Engine, fn: Callable[..., Any], label: str) -> None:
        self.base: Any = base  # its adapter holds everything library-specific
        self.fn = fn
        self.label = label
        self.name = base.name
        self.eps = base.eps
        self.values = isinstance(base, ValueClassEngine)
        if not self.values and not all(callable(getattr(base, m, None)) for m in _ADAPTER):
            raise EngineError(f"engine {base.name} cannot run a function under test (its adapter has no "
                              f"{', '.join(_ADAPTER)}; a Value class runs one in reverse mode)")
        # The base engine's modes; a function over Values refuses them in primitives(), with the reason.
        self.capabilities = base.capabilities
        self.max_order = base.max_order

    def run_tensor(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> tuple[Any, list[dict[str, Any]]]:
        probe = self.probe(graph, inputs, cotangents)
        return probe.value, probe.grads

    def probe(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> Probe:
        try:
            if self.values:
                return self._values(graph, inputs, cotangents)
            probed: Probe = self.base.probe_function(self.fn, graph, inputs, cotangents)
            return probed
        except OutputShape as exc:
            raise OutputShape(f"{self.label} {exc.message}") from None

    # -- forward mode and higher order ----------------------------------------------------------
    def function_of(self, graph: TensorGraph, data: Mapping[str, Any]) -> Callable[..., Any]:
        """``fn`` as a function of the differentiable inputs' tensors (in the library's type), called
        with every input in the graph's order; ``data`` holds the other inputs' arrays."""
        if self.values:
            raise Unsupported(REVERSE_ONLY_REASON)
        fixed = {n: self.base.function_input(graph, n, v) for n, v in data.items()}
        names = [n for n, _ in graph.differentiable]
        order = [n for n, _ in graph.inputs]

        def f(*diff: Any) -> Any:
            env = fixed | dict(zip(names, diff, strict=True))
            return self.fn(*(env[n] for n in order))

        return f

    def primitives(self, f: Callable[..., Any], primals: Sequence[Any]) -> Any:
        """The base engine's primitives for ``f``, told which user's function ``f`` calls, so that its
        adapter refuses the modes the function does not define (:mod:`gradspec.engines.modes`)."""
        if self.values:
            raise Unsupported(REVERSE_ONLY_REASON)
        return self.base.primitives(f, primals, function=self.fn, label=self.label)

    # -- a Value class --------------------------------------------------------------------------
    def _values(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> Probe:
        """A fresh forward per cotangent (a Value graph is consumed by its backward): the output's
        elements weighted by the cotangent, summed with the class's own + and *, backpropagated."""
        engine = self.base
        probe = Probe(None, [], dtypes={n: "float64" for n, _ in graph.differentiable})
        for cotangent in cotangents:
            engine.begin()
            leaves: dict[str, Any] = {}
            for n, _ in graph.inputs:
                arr = np.asarray(inputs[n], dtype=float)
                if n in graph.data:
                    leaves[n] = arr if arr.shape else float(arr)
                else:
                    cells = np.empty(arr.shape, dtype=object)
                    for i in np.ndindex(arr.shape):
                        cells[i] = engine.leaf(float(arr[i]))
                    leaves[n] = cells if arr.shape else cells[()]
            given = {n: [engine.value(v) for v in np.asarray(leaves[n], dtype=object).flat] for n, _ in graph.differentiable}
            out = np.asarray(self.fn(*leaves.values()), dtype=object)
            output_shape(graph, out.shape)
            if probe.value is None:
                probe.value = np.vectorize(lambda v: float(v) if isinstance(v, int | float) else engine.value(v),
                                           otypes=[float])(out) if out.size else np.zeros(out.shape)
            c = np.asarray(cotangent, dtype=float)
            total: Any = None
            for i in np.ndindex(out.shape):
                if c[i] and not isinstance(out[i], int | float):
                    term = out[i] * float(c[i])
                    total = term if total is None else total + term
            grads: dict[str, Any] = {}
            kinds: dict[str, tuple[tuple[int, ...], str]] = {}
            flat = [leaf for n, _ in graph.differentiable for leaf in np.asarray(leaves[n], dtype=object).flat]
            got = engine.gradients(total, flat) if total is not None else [0.0] * len(flat)
            at = 0
            for n, _ in graph.differentiable:
                shape = np.shape(inputs[n])
                size = int(np.prod(shape))
                part = got[at:at + size]
                at += size
                grads[n] = None if any(g is None for g in part) else np.asarray(part, dtype=float).reshape(shape)
                kinds[n] = (tuple(shape), "float64")
            probe.grads.append(grads)
            probe.kinds.append(kinds)
            probe.mutated += [n for n, before in given.items() if n not in probe.mutated and before !=
                              [engine.value(v) for v in np.asarray(leaves[n], dtype=object).flat]]
        return probe
