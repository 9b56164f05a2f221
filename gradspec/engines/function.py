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

On torch and JAX the function is checked in the modes of its library too (a case's ``check:`` list):
:meth:`FunctionEngine.function_of` gives it as a function of the differentiable inputs and
:meth:`FunctionEngine.derivatives` differentiates it with the library's own transforms, as the torch and
JAX engines do. A function with no forward mode (a ``torch.autograd.Function`` without ``jvp``, a
``jax.custom_vjp``) has its forward-mode quantities refused with the library's reason
(``Derivatives.refused``) while the reverse-mode ones (``hvp``, ``order``) are still computed. A
``torch.autograd.Function`` written the old way (``ctx`` in ``forward``, no ``setup_context``) cannot
run under ``torch.func``; its ``jvp`` is then read through ``torch.autograd.forward_ad``, which has one
level, so its ``jvp-of-jvp`` is refused. A Value class is checked in reverse mode only.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradspec.engines.adapters.torch import watch_backward_shapes
from gradspec.engines.paths import importable
from gradspec.engines.protocol import REVERSE_AND_TENSOR, Engine, Unsupported, ValueClassEngine
from gradspec.errors import EngineError
from gradspec.graph.tensor import TensorGraph
from gradspec.modes import Ask, Derivatives, Mode

__all__ = ["FAMILIES", "FORWARD", "FunctionEngine", "OutputShape", "Probe", "family", "import_function"]

FAMILIES = ("torch", "jax", "builtin")
FORWARD = frozenset({Mode.JVP, Mode.JVP_OF_JVP, Mode.JACOBIAN})  # the modes that need the function's forward mode
REVERSE_ONLY_REASON = "a function over a Value class is checked in value and reverse mode only"


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
    raw_shapes: list[str] = field(default_factory=list)  # gradients of a wrong shape before the library reduced them


class FunctionEngine(Engine):
    """``fn`` on the library of ``base`` (a torch, jax or Value-class engine): on torch and jax in the
    base engine's modes, on a Value class in reverse mode only."""

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
        # The base engine's modes; a function over Values refuses them in derivatives(), with the reason.
        self.capabilities = base.capabilities
        self.max_order = base.max_order

    def run_tensor(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> tuple[Any, list[dict[str, Any]]]:
        probe = self.probe(graph, inputs, cotangents)
        return probe.value, probe.grads

    def probe(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> Probe:
        run = {"torch": self._torch, "jax": self._jax, "builtin": self._values}[self.family]
        return run(graph, inputs, cotangents)

    def _check_output(self, graph: TensorGraph, shape: tuple[int, ...]) -> None:
        if tuple(shape) != graph.shape:
            raise OutputShape(f"{self.label} returned shape {list(shape)}; the reference has shape {list(graph.shape)}")

    # -- forward mode and higher order ----------------------------------------------------------
    def function_of(self, graph: TensorGraph, data: Mapping[str, Any]) -> Callable[..., Any]:
        """``fn`` as a function of the differentiable inputs' tensors (in the library's type), called
        with every input in the graph's order; ``data`` holds the other inputs' arrays."""
        if self.family == "torch":
            fixed = {n: self._torch_input(graph, n, v) for n, v in data.items()}
        elif self.family == "jax":
            fixed = {n: self._jax_input(graph, n, v) for n, v in data.items()}
        else:
            raise Unsupported(REVERSE_ONLY_REASON)
        names = [n for n, _ in graph.differentiable]
        order = [n for n, _ in graph.inputs]

        def f(*diff: Any) -> Any:
            env = fixed | dict(zip(names, diff, strict=True))
            return self.fn(*(env[n] for n in order))

        return f

    def derivatives(self, f: Callable[..., Any], primals: Sequence[Any], ask: Ask) -> Derivatives:
        """What ``ask`` names, by the base engine's transforms. Where the library refuses a forward mode
        of the function, the rest is computed without it, and the forward mode is either computed here
        (:meth:`_by_hand`: a torch Function without ``setup_context`` through forward AD, a Jacobian
        without vmap support column by column) or left out with the library's reason in ``refused``."""
        if self.family == "builtin":
            raise Unsupported(REVERSE_ONLY_REASON)
        refused: dict[Mode, str] = {}
        modes, by_hand, old_style = ask.modes, set[Mode](), False
        while True:
            try:
                got: Derivatives = self.base.derivatives(f, primals, dataclasses.replace(ask, modes=modes))
                break
            except Exception as exc:
                text = str(exc)
                if self.family == "torch" and "setup_context" in text and modes & FORWARD:
                    # torch.func refuses a Function written the old way: forward AD still calls its jvp
                    old_style = True
                    by_hand |= modes & {Mode.JVP, Mode.JACOBIAN}
                    if Mode.JVP_OF_JVP in modes:
                        refused[Mode.JVP_OF_JVP] = (
                            f"{self.label} has no setup_context, so torch.func cannot nest its forward mode, and "
                            "torch.autograd.forward_ad has one level")
                    modes -= FORWARD
                elif self.family == "torch" and "vmap" in text and Mode.JACOBIAN in modes:
                    by_hand.add(Mode.JACOBIAN)  # jacfwd vmaps the Function; one JVP per column does not
                    modes -= {Mode.JACOBIAN}
                else:
                    reason = self._no_forward(exc)
                    if reason is None or not modes & FORWARD:
                        raise  # anything else the function does wrong is the check's to judge
                    refused |= dict.fromkeys(sorted(modes & FORWARD), reason)
                    modes -= FORWARD
        got.refused = refused
        if by_hand:
            self._by_hand(f, primals, ask, got, frozenset(by_hand), old_style)
        return got

    def _no_forward(self, exc: BaseException) -> str | None:
        """Why ``exc`` says the function has no forward mode in its library, or None when it says nothing of it."""
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
        if self.family == "torch" and "implement the jvp" in str(exc):
            return f"{self.label} has no forward mode: it does not implement jvp (torch: {text})"
        if self.family == "jax" and "custom_vjp" in str(exc) and "forward-mode" in str(exc):
            return f"{self.label} has no forward mode: a jax.custom_vjp defines reverse mode only (jax: {text})"
        return None

    def _by_hand(self, f: Callable[..., Any], primals: Sequence[Any], ask: Ask, got: Derivatives, modes: frozenset[Mode],
                 old_style: bool) -> None:
        """The JVP and the Jacobian (column by column) of a torch function, one JVP at a time: by
        ``torch.autograd.forward_ad`` for a Function written the old way (``ctx`` in ``forward``), which
        torch.func refuses, else by ``torch.func.jvp``. Both call the Function's ``jvp``."""
        t = self.base.torch
        fwad = t.autograd.forward_ad
        xs = [t.tensor(np.asarray(p, dtype=float), dtype=self.base.dtype, device=self.base.device) for p in primals]

        def jvp(tangents: Sequence[Any]) -> Any:
            ts = [t.as_tensor(np.asarray(d, dtype=float), dtype=x.dtype, device=x.device) for x, d in zip(xs, tangents, strict=True)]
            if not old_style:
                return t.func.jvp(f, tuple(xs), tuple(ts))[1].detach().cpu().double().numpy()
            with fwad.dual_level():
                out = f(*(fwad.make_dual(x, d) for x, d in zip(xs, ts, strict=True)))
                tangent = fwad.unpack_dual(out).tangent
            return (t.zeros_like(out) if tangent is None else tangent).detach().cpu().double().numpy()

        try:
            if Mode.JVP in modes:
                got.jvp = jvp(ask.u)
            if Mode.JACOBIAN in modes:
                got.jacobian = [self._columns(jvp, primals, i) for i in range(len(primals))]
        except Exception as exc:
            reason = self._no_forward(exc)
            if reason is None:
                raise
            got.jvp = got.jacobian = None
            got.refused |= dict.fromkeys(sorted(modes), reason)

    @staticmethod
    def _columns(jvp: Callable[[Sequence[Any]], Any], primals: Sequence[Any], i: int) -> Any:
        """The Jacobian with respect to input ``i``, one JVP per element: output shape + input shape."""
        shape = np.shape(primals[i])
        cols = []
        for k in range(int(np.prod(shape))):
            hot = [np.zeros(np.shape(p)) for p in primals]
            hot[i].flat[k] = 1.0
            cols.append(jvp(hot))
        if not cols:
            return np.zeros((*np.shape(jvp([np.zeros(np.shape(p)) for p in primals])), *shape))
        return np.moveaxis(np.stack(cols), 0, -1).reshape((*cols[0].shape, *shape))

    # -- torch ----------------------------------------------------------------------------------
    def _torch(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> Probe:
        t = self.base.torch
        dtype, device = self.base.dtype, self.base.device
        leaves = {n: self._torch_input(graph, n, inputs[n], grad=n not in graph.data) for n, _ in graph.inputs}
        before = {n: leaf.detach().clone() for n, leaf in leaves.items()}
        out = self.fn(*leaves.values())
        if not isinstance(out, t.Tensor):
            out = t.as_tensor(out, dtype=dtype, device=device)
        self._check_output(graph, tuple(out.shape))
        wanted = [leaves[n] for n, _ in graph.differentiable]
        probe = Probe(out.detach().cpu().double().numpy(), [],
                      dtypes={n: str(leaves[n].dtype).removeprefix("torch.") for n, _ in graph.differentiable})
        raw_shapes, unwatch = watch_backward_shapes(t, out, {id(leaves[n]): n for n, _ in graph.differentiable}) \
            if out.requires_grad else ([], lambda: None)
        for cotangent in cotangents:
            if not out.requires_grad:
                probe.grads.append({n: None for n, _ in graph.differentiable})
                probe.kinds.append({})
                continue
            try:
                got = t.autograd.grad(out, wanted, grad_outputs=t.tensor(cotangent, dtype=out.dtype, device=device),
                                      retain_graph=True, allow_unused=True)
            finally:
                unwatch()  # the first backward is watched; the later ones run the same code
            probe.grads.append({n: None if g is None else g.detach().cpu().double().numpy()
                                for (n, _), g in zip(graph.differentiable, got, strict=True)})
            probe.kinds.append({n: (tuple(g.shape), str(g.dtype).removeprefix("torch."))
                                for (n, _), g in zip(graph.differentiable, got, strict=True) if g is not None})
        probe.raw_shapes = list(dict.fromkeys(raw_shapes))
        probe.data_grads = [n for n in graph.data if getattr(leaves[n], "grad", None) is not None]
        probe.mutated = [n for n in leaves if not bool(t.equal(before[n], leaves[n].detach()))]
        return probe

    def _torch_input(self, graph: TensorGraph, name: str, values: Any, *, grad: bool = False) -> Any:
        """One input as the function receives it: an integer-valued data input as int64, else the engine's dtype."""
        t = self.base.torch
        arr = np.asarray(values, dtype=float)
        if name in graph.data and np.all(arr == np.round(arr)):
            return t.tensor(arr.astype(np.int64), device=self.base.device)
        return t.tensor(arr, dtype=self.base.dtype, device=self.base.device, requires_grad=grad)

    # -- jax ------------------------------------------------------------------------------------
    def _jax_input(self, graph: TensorGraph, name: str, values: Any) -> Any:
        """One input as the function receives it: an integer-valued data input as int32, else the engine's dtype."""
        jnp = self.base.jnp
        arr = np.asarray(values, dtype=float)
        integral = name in graph.data and np.all(arr == np.round(arr))
        return jnp.asarray(arr.astype(np.int32)) if integral else jnp.asarray(arr, dtype=self.base.dtype)

    def _jax(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> Probe:
        jax, jnp = self.base.jax, self.base.jnp
        names = [n for n, _ in graph.differentiable]
        arrays = {n: self._jax_input(graph, n, inputs[n]) for n, _ in graph.inputs}
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
