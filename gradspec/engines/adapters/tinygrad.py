"""tinygrad: ``tinygrad`` (float64) and ``tinygrad:float32``, through its Tensor API.

Runs on the device named by the ``DEV`` environment variable, and where that is unset on tinygrad's
pure-Python device (``PYTHON``), which needs no compiler: tinygrad's own choice would be its CPU device,
which compiles every kernel with clang and is unusable on a machine without it. A device that cannot
run here (``DEV=CPU`` without clang) makes the engine unavailable, with the reason. Leaves are one-element
tensors; gradients come from ``Tensor.gradient``, realized together. Tensor cases are built from
tinygrad's own tensor ops, as the op table spells them (``Tensor.softmax``, ``Tensor.layernorm``,
``Tensor.conv2d``, ``Tensor.cross_entropy``, ...).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from gradspec.engines.protocol import Engine, Outcome, Unavailable, Unsupported
from gradspec.engines.tensor import build_steps
from gradspec.errors import EngineError
from gradspec.graph.ir import Graph
from gradspec.graph.tensor import TensorGraph
from gradspec.modes import Capability
from gradspec.ops.table import REVERSE_AND_TENSOR, Op

FALLBACK_DEVICE = "PYTHON"


def create(options: str) -> Engine:
    dtype = options or "float64"
    if dtype not in ("float32", "float64"):
        raise EngineError(f"unknown tinygrad option {options!r}; use float32 or float64")
    name = "tinygrad" if dtype == "float64" else "tinygrad:float32"
    # tinygrad reads DEV when it is first imported, and passes it on to processes it spawns.
    os.environ.setdefault("DEV", FALLBACK_DEVICE)
    ours = sys.getrecursionlimit()
    try:
        from tinygrad import Device, Tensor, dtypes
    except ImportError:
        return Unavailable(name, "tinygrad is not installed (pip install 'gradspec[tinygrad]')")
    finally:
        # Importing tinygrad raises the recursion limit for the whole process; gradspec's own guards (the
        # YAML nesting limit, a recursive backward's RecursionError) must keep theirs. tinygrad gets its
        # limit back for its own calls (TinygradEngine._deep).
        _TINYGRAD_LIMIT[0] = max(_TINYGRAD_LIMIT[0], sys.getrecursionlimit())
        sys.setrecursionlimit(ours)
    _choose_device()
    dt = getattr(dtypes, dtype)
    try:
        device = str(Device.DEFAULT)
        (Tensor([1.0], dtype=dt, device=device) - 2.0).tolist()
    except FileNotFoundError as exc:  # its CPU device compiles kernels with clang
        missing = exc.filename or exc
        return Unavailable(name, f"tinygrad's device {os.environ.get('DEV')!r} cannot run here: {missing} is missing "
                                 f"(install it, or unset DEV to use tinygrad's {FALLBACK_DEVICE} device)")
    except Exception as exc:  # "no usable devices", a device that fails to open, a DEV tinygrad does not know
        return Unavailable(name, f"tinygrad cannot run on device {os.environ.get('DEV')!r} here: "
                                 f"{type(exc).__name__}: {exc}")
    return TinygradEngine(Tensor, name, dt, device)


_TINYGRAD_LIMIT = [0]  # the recursion limit tinygrad sets for itself on import


@contextmanager
def _deep() -> Iterator[None]:
    """tinygrad's own recursion limit for the duration of a call into it, the process's one after."""
    ours = sys.getrecursionlimit()
    sys.setrecursionlimit(max(ours, _TINYGRAD_LIMIT[0]))
    try:
        yield
    finally:
        sys.setrecursionlimit(ours)


def _choose_device() -> None:
    """Make tinygrad's default device the one DEV names now.

    When tinygrad was imported before DEV was set (by the user's code, or a test runner's
    ``importorskip``), it saw no DEV, and its default would be the first device that opens, which on a
    machine without clang is none. tinygrad 0.12 and later keep DEV in a context variable, set here as
    tinygrad's own messages advise (``DEV.value = ...``); earlier versions read the environment.
    """
    from tinygrad import helpers

    dev = getattr(helpers, "DEV", None)
    if dev is not None and hasattr(dev, "device") and not dev.device:
        dev.value = os.environ["DEV"]


class TinygradEngine(Engine):
    capabilities = REVERSE_AND_TENSOR | {Capability.HVP}
    max_order = 3

    def __init__(self, tensor: Any, name: str, dtype: Any, device: str) -> None:
        self.Tensor = tensor
        self.name = name
        self.dtype = dtype
        self.device = device
        self.eps = 2.0**-52 if dtype.itemsize == 8 else 2.0**-23

    def missing(self, op: Op, value_left: bool) -> str | None:
        if op.tinygrad_lacks is not None:
            return op.tinygrad_lacks
        if op.tinygrad is not None:
            return None
        needed = op.needs(value_left)
        return None if hasattr(self.Tensor, needed) else f"tinygrad Tensor has no {needed}"

    def apply(self, op: Op, args: Sequence[Any]) -> Any:
        """An op as the op table spells it for tinygrad, else the Tensor method or Python operator."""
        if op.tinygrad is None:
            return super().apply(op, args)
        import tinygrad

        return op.tinygrad(tinygrad, args, op.kwargs)

    def run(self, graph: Graph, point: Mapping[str, float], *, every_node: bool = False) -> Outcome:
        with _deep():
            return super().run(graph, point, every_node=every_node)

    def leaf(self, x: float) -> Any:
        # A 0-d tensor, as users write a scalar parameter (Tensor(3.0)): tinygrad builds it as a constant
        # that equal-valued leaves can share (tinygrad#9597), where a 1-element buffer is always its own.
        return self.Tensor(x, dtype=self.dtype, device=self.device)

    def gradients(self, out: Any, nodes: Sequence[Any]) -> list[float | None]:
        return [float(g.reshape(-1)[0]) for g in self._arrays(*out.sum().gradient(*nodes))]

    def value(self, node: Any) -> float:
        return float(self._arrays(node)[0].reshape(-1)[0])

    def run_tensor(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> tuple[Any, list[dict[str, Any]]]:
        """A tensor case from tinygrad's own ops (:meth:`_run_tensor`), under tinygrad's recursion limit."""
        with _deep():
            return self._run_tensor(graph, inputs, cotangents)

    def _tensor(self, values: Any) -> Any:
        import numpy as np

        # From a NumPy array, so that every input is a buffer of its own, even a 0-d one: a Python
        # float would become a constant, which tinygrad folds and cannot differentiate.
        return self.Tensor(np.asarray(values, dtype=self.dtype.fmt), dtype=self.dtype, device=self.device)

    def function_of(self, graph: TensorGraph, data: Mapping[str, Any]) -> Callable[..., Any]:
        """The case as a function of its differentiable inputs' tensors, from tinygrad's own ops."""
        import tinygrad

        names = [n for n, _ in graph.differentiable]
        fixed = {n: self._tensor(v) for n, v in data.items()}

        def scalar(op: Op, args: list[Any]) -> Any:
            reason = self.missing(op, True)
            if reason:
                raise Unsupported(reason)
            return self.apply(op, args)

        def tensor(row: Any, args: list[Any], kw: dict[str, Any]) -> Any:
            if row.tinygrad is None:
                raise Unsupported(f"tinygrad has no {row.name}")
            return row.tinygrad(tinygrad, args, kw)

        def f(*tensors: Any) -> Any:
            return build_steps(graph, dict(zip(names, tensors, strict=True)) | fixed,
                               lambda c: self.Tensor(c, dtype=self.dtype, device=self.device), scalar, tensor)

        return f

    def _run_tensor(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> tuple[Any, list[dict[str, Any]]]:
        """A tensor case from tinygrad's own ops: the value, and ``Tensor.gradient`` with each cotangent as
        the output's gradient; every gradient is built first and all are realized in one schedule (a
        realized tensor no longer carries the graph its gradient is taken through)."""
        wanted = [self._tensor(inputs[n]) for n, _ in graph.differentiable]
        out = self.function_of(graph, {n: inputs[n] for n in graph.data})(*wanted)
        grads = [out.gradient(*wanted, gradient=self._tensor(c)) if wanted else [] for c in cotangents]
        value, *read = self._arrays(out, *(g for per in grads for g in per))
        per_cotangent = [read[k * len(wanted):(k + 1) * len(wanted)] for k in range(len(cotangents))]
        return value, [{n: g for (n, _), g in zip(graph.differentiable, got, strict=True)} for got in per_cotangent]

    def primitives(self, f: Callable[..., Any], primals: Sequence[Any], function: Any = None,
                   label: str = "") -> _Primitives:
        """Reverse over reverse: ``Tensor.gradient`` builds gradients as lazy tensors, which
        ``Tensor.gradient`` differentiates again (tinygrad has no forward mode)."""
        return _Primitives(self, f, primals)

    def _again(self, grads: Sequence[Any], u: Sequence[Any], xs: Sequence[Any]) -> list[Any]:
        """The gradient of ``sum(grads · u)``: one order up."""
        s = sum((g * d).sum() for g, d in zip(grads, u, strict=True))
        return list(s.gradient(*xs))

    def _arrays(self, *tensors: Any) -> list[Any]:
        """The tensors' values as float64 arrays, realized in one schedule: each is made contiguous first, so
        that reading it back is a copy of its buffer rather than a kernel of its own to schedule and lower
        (most of tinygrad's time on small graphs)."""
        # A gradient that does not depend on any input (d(x+1)/dx) is a constant with no device, and
        # tinygrad reads such a tensor through its CPU device, which needs clang: give it ours instead.
        ready = [(t if t.device is not None else t.clone(self.device)).contiguous() for t in tensors]
        if ready:
            self.Tensor.realize(*ready)
        return [t.numpy().astype("float64") for t in ready]


class _Primitives:
    """tinygrad's primitives for one function at one point (:class:`gradspec.engines.modes.Primitives`):
    reverse mode and differentiating it again, each call under tinygrad's recursion limit."""

    def __init__(self, engine: TinygradEngine, f: Callable[..., Any], primals: Sequence[Any]) -> None:
        self.engine, self.function = engine, f
        self.refused: dict[str, str] = {}
        with _deep():
            self.xs = [engine._tensor(p) for p in primals]

    def reverse(self, v: Any, again: bool) -> tuple[Any, list[Any], Any]:
        with _deep():
            out = self.function(*self.xs)
            level = out.gradient(*self.xs, gradient=self.engine._tensor(v))
            value, *grads = self.engine._arrays(out, *level)
            return value, grads, level

    def again(self, grads: Any, u: Sequence[Any]) -> Any:
        with _deep():
            return self.engine._again(grads, [self.engine._tensor(a) for a in u], self.xs)

    def along(self, grads: Any, u: Sequence[Any]) -> float:
        with _deep():
            tangents = [self.engine._tensor(a) for a in u]
            return float(self.engine._arrays(sum((g * d).sum() for g, d in zip(grads, tangents, strict=True)))[0])

    def arrays(self, grads: Any) -> list[Any]:
        with _deep():
            return self.engine._arrays(*grads)

    def jvp(self, fn: Any, u: Sequence[Any]) -> Any:
        raise Unsupported("tinygrad has no forward mode")

    jvp_of = jvp

    def vjp_of(self, v: Any) -> Any:
        raise Unsupported("tinygrad has no forward mode")

    def jacobian(self) -> list[Any] | None:
        raise Unsupported("tinygrad has no forward mode")
