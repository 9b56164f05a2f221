"""A user's own differentiable function run as an engine: its value and its VJPs, read through its library.

A function under test is a plain callable that takes the case's inputs positionally (in the order the
case lists them) as one library's tensors and returns one tensor: a ``torch.autograd.Function``'s
``apply``, a ``jax.custom_vjp``, or a scalar function over a Value class. :class:`FunctionEngine` wraps
the library's engine (for its dtype, device and name) and answers ``run_tensor`` by calling the
function instead of building the reference graph from the library's ops, so the tensor check
(:mod:`gradspec.checks.tensor`) judges it unchanged. :meth:`FunctionEngine.probe` records, besides,
what the properties of :mod:`gradspec.checks.function` read: the gradients as the library returned
them (shape, dtype), gradients reaching data inputs, and inputs modified in place.

Data inputs whose elements are all integers (class targets) are passed as integer tensors; every
other input in the engine's float dtype.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradspec.engines.paths import importable
from gradspec.engines.protocol import REVERSE_AND_TENSOR, Engine, ValueClassEngine
from gradspec.errors import EngineError
from gradspec.graph.tensor import TensorGraph

__all__ = ["FAMILIES", "FunctionEngine", "OutputShape", "Probe", "family", "import_function"]

FAMILIES = ("torch", "jax", "builtin")


def family(engine: Engine) -> str:
    """The library family of an engine: torch, jax, builtin (any Value class), or its own name."""
    head = engine.name.split(":")[0]
    if head in ("torch", "jax"):
        return head
    return "builtin" if isinstance(engine, ValueClassEngine) else head


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


class OutputShape(EngineError):
    """The function returned a tensor of another shape than its reference's."""


@dataclass
class Probe:
    """One forward and one backward per cotangent, as the library returned them."""

    value: Any  # float64 array
    grads: list[dict[str, Any]]  # per cotangent: differentiable input -> float64 array (None: none returned)
    kinds: list[dict[str, tuple[tuple[int, ...], str]]] = field(default_factory=list)  # (shape, dtype) as returned
    dtypes: dict[str, str] = field(default_factory=dict)  # each differentiable input's dtype as passed
    data_grads: list[str] = field(default_factory=list)  # data inputs that received a gradient
    mutated: list[str] = field(default_factory=list)  # inputs whose values changed during the calls


class FunctionEngine(Engine):
    """``fn`` on the library of ``base`` (a torch, jax or Value-class engine)."""

    capabilities = REVERSE_AND_TENSOR

    def __init__(self, base: Engine, fn: Callable[..., Any], label: str) -> None:
        self.base: Any = base  # a torch, jax or Value-class engine: its library is read off it
        self.fn = fn
        self.label = label
        self.name = base.name
        self.eps = base.eps
        self.family = family(base)
        if self.family not in FAMILIES:
            raise EngineError(f"engine {base.name} cannot run a function under test (torch, jax or a Value class)")

    def run_tensor(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> tuple[Any, list[dict[str, Any]]]:
        probe = self.probe(graph, inputs, cotangents)
        return probe.value, probe.grads

    def probe(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> Probe:
        run = {"torch": self._torch, "jax": self._jax, "builtin": self._values}[self.family]
        return run(graph, inputs, cotangents)

    def _check_output(self, graph: TensorGraph, shape: tuple[int, ...]) -> None:
        if tuple(shape) != graph.shape:
            raise OutputShape(f"{self.label} returned shape {list(shape)}; the reference has shape {list(graph.shape)}")

    # -- torch ----------------------------------------------------------------------------------
    def _torch(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> Probe:
        t = self.base.torch
        dtype, device = self.base.dtype, self.base.device
        leaves = {}
        for n, _ in graph.inputs:
            arr = np.asarray(inputs[n], dtype=float)
            if n in graph.data and np.all(arr == np.round(arr)):
                leaves[n] = t.tensor(arr.astype(np.int64), device=device)
            else:
                leaves[n] = t.tensor(arr, dtype=dtype, device=device, requires_grad=n not in graph.data)
        before = {n: leaf.detach().clone() for n, leaf in leaves.items()}
        out = self.fn(*leaves.values())
        if not isinstance(out, t.Tensor):
            out = t.as_tensor(out, dtype=dtype, device=device)
        self._check_output(graph, tuple(out.shape))
        wanted = [leaves[n] for n, _ in graph.differentiable]
        probe = Probe(out.detach().cpu().double().numpy(), [],
                      dtypes={n: str(leaves[n].dtype).removeprefix("torch.") for n, _ in graph.differentiable})
        for cotangent in cotangents:
            if not out.requires_grad:
                probe.grads.append({n: None for n, _ in graph.differentiable})
                probe.kinds.append({})
                continue
            got = t.autograd.grad(out, wanted, grad_outputs=t.tensor(cotangent, dtype=out.dtype, device=device),
                                  retain_graph=True, allow_unused=True)
            probe.grads.append({n: None if g is None else g.detach().cpu().double().numpy()
                                for (n, _), g in zip(graph.differentiable, got, strict=True)})
            probe.kinds.append({n: (tuple(g.shape), str(g.dtype).removeprefix("torch."))
                                for (n, _), g in zip(graph.differentiable, got, strict=True) if g is not None})
        probe.data_grads = [n for n in graph.data if getattr(leaves[n], "grad", None) is not None]
        probe.mutated = [n for n in leaves if not bool(t.equal(before[n], leaves[n].detach()))]
        return probe

    # -- jax ------------------------------------------------------------------------------------
    def _jax(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> Probe:
        jax, jnp = self.base.jax, self.base.jnp
        dtype = self.base.dtype
        names = [n for n, _ in graph.differentiable]
        arrays = {}
        for n, _ in graph.inputs:
            arr = np.asarray(inputs[n], dtype=float)
            integral = n in graph.data and np.all(arr == np.round(arr))
            arrays[n] = jnp.asarray(arr.astype(np.int32)) if integral else jnp.asarray(arr, dtype=dtype)
        before = {n: np.asarray(a).copy() for n, a in arrays.items()}

        def f(*diff: Any) -> Any:
            env = arrays | dict(zip(names, diff, strict=True))
            return self.fn(*(env[n] for n, _ in graph.inputs))

        value, pullback = jax.vjp(f, *(arrays[n] for n in names))
        self._check_output(graph, tuple(np.shape(value)))
        probe = Probe(np.asarray(jax.device_get(value), dtype=float), [],
                      dtypes={n: str(arrays[n].dtype) for n in names})
        for cotangent in cotangents:
            got = pullback(jnp.asarray(cotangent, dtype=value.dtype))
            probe.grads.append({n: np.asarray(jax.device_get(g), dtype=float) for n, g in zip(names, got, strict=True)})
            probe.kinds.append({n: (tuple(g.shape), str(g.dtype)) for n, g in zip(names, got, strict=True)})
        probe.mutated = [n for n, a in arrays.items() if not np.array_equal(np.asarray(a), before[n])]
        return probe

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
            self._check_output(graph, out.shape)
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
