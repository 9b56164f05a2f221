"""PyTorch: ``torch`` (float64, CPU), ``torch:float32``, ``torch:cuda``, ``torch:cuda:float32``.

Leaves are 0-d tensors with ``requires_grad``; named intermediates keep their gradients through
``retain_grad()``. Ops are the tensors' own methods and Python operators, as the op table spells them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from gradspec.engines.function import Probe, output_shape, referenced
from gradspec.engines.protocol import Engine, Unavailable, Unsupported
from gradspec.engines.tensor import build_steps
from gradspec.errors import EngineError
from gradspec.graph.ir import Graph
from gradspec.graph.tensor import TensorGraph
from gradspec.modes import Capability, Mode, rows
from gradspec.ops.table import REVERSE_AND_TENSOR, Op, TensorOp


def create(options: str) -> Engine:
    dtype, device = "float64", "cpu"
    for part in filter(None, options.split(":")):
        if part in ("float32", "float64"):
            dtype = part
        elif part == "cpu" or part.startswith("cuda"):
            device = part
        else:
            raise EngineError(f"unknown torch option {part!r}; use float32, float64, cpu or cuda")
    name = ":".join(["torch", *([device] if device != "cpu" else []), *([dtype] if dtype != "float64" else [])])
    try:
        import torch
    except ImportError:
        return Unavailable(name, "torch is not installed (pip install 'gradspec[torch]')")
    if device.startswith("cuda") and not torch.cuda.is_available():
        return Unavailable(name, "CUDA is not available on this machine")
    return TorchEngine(torch, name, getattr(torch, dtype), device)


class TorchEngine(Engine):
    family = "torch"  # a function case's function for this engine is listed under this name
    # what a quantity of zeros where the exact one is not may mean here, for a function check to say
    zero_notes: ClassVar[dict[str, str]] = {"jvp-of-jvp": "if the function is a torch.autograd.Function: torch.func does not differentiate "
                                "its jvp rule again under a second jvp, so forward over forward through it reads zero"}
    capabilities = REVERSE_AND_TENSOR | {Capability.JVP, Capability.HVP}
    max_order = 4

    def __init__(self, torch: Any, name: str, dtype: Any, device: str) -> None:
        self.torch = torch
        self.name = name
        self.dtype = dtype
        self.device = device
        self.eps = float(torch.finfo(dtype).eps)

    def missing(self, op: Op, value_left: bool) -> str | None:
        if op.torch is not None:
            return None
        needed = op.needs(value_left)
        return None if hasattr(self.torch.Tensor, needed) else f"torch.Tensor has no {needed}"

    def apply(self, op: Op, args: Sequence[Any]) -> Any:
        """An op as the op table spells it for torch: its own spelling (with constants as tensors of the
        engine's dtype), else the Tensor method or Python operator."""
        if op.torch is None:
            return super().apply(op, args)
        t = self.torch
        operands = [a if isinstance(a, t.Tensor) else t.tensor(float(a), dtype=self.dtype, device=self.device) for a in args]
        return op.torch(t, operands, op.kwargs)

    def leaf(self, x: float) -> Any:
        return self.torch.tensor(x, dtype=self.dtype, device=self.device, requires_grad=True)

    def gradients(self, out: Any, nodes: Sequence[Any]) -> list[float | None]:
        for n in nodes:
            if not n.is_leaf:
                n.retain_grad()
        out.backward()
        return [None if n.grad is None else float(n.grad.item()) for n in nodes]

    def value(self, node: Any) -> float:
        return float(node.item())

    def run_batch(self, graph: Graph, columns: Mapping[str, Sequence[float]]) -> tuple[list[float], dict[str, list[float]]]:
        """Every point at once: leaves are vectors, the ops act elementwise, one backward of the sum."""
        size = len(next(iter(columns.values())))
        leaves = {n: self.torch.tensor(list(columns[n]), dtype=self.dtype, device=self.device, requires_grad=True)
                  for n, _ in graph.inputs}
        nodes = self.build(graph, leaves)
        out = nodes[graph.output]
        out.sum().backward()
        grads = {n: nodes[i].grad.tolist() if nodes[i].grad is not None else [0.0] * size for n, i in graph.inputs}
        return out.tolist(), grads

    def tensor_op(self, op: TensorOp, args: Sequence[Any], kw: dict[str, Any]) -> Any:
        """Apply a tensor op as the op table spells it for torch (a subclass may substitute its own)."""
        if op.torch is None:
            raise Unsupported(f"torch has no {op.name}")
        return op.torch(self.torch, args, kw)

    def function_of(self, graph: TensorGraph, data: Mapping[str, Any]) -> Callable[..., Any]:
        """The case as a function of its differentiable inputs' tensors, from torch's own ops
        (``torch.softmax``, ``F.layer_norm``, ...); ``data`` holds the other inputs' arrays."""
        t = self.torch
        names = [n for n, _ in graph.differentiable]
        fixed = {n: t.tensor(v, dtype=self.dtype, device=self.device) for n, v in data.items()}

        def f(*tensors: Any) -> Any:
            return build_steps(graph, dict(zip(names, tensors, strict=True)) | fixed,
                               lambda c: t.tensor(c, dtype=self.dtype, device=self.device), self.apply, self.tensor_op)

        return f

    def run_tensor(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> tuple[Any, list[dict[str, Any]]]:
        """A tensor case: the value, and ``torch.autograd.grad`` with each cotangent as ``grad_outputs``."""
        names = [n for n, _ in graph.differentiable]
        f = self.function_of(graph, {n: inputs[n] for n in graph.data})
        wanted = [self._tensor(inputs[n], grad=True) for n in names]
        out = f(*wanted)
        grads = []
        for cotangent in cotangents:
            got = self.torch.autograd.grad(out, wanted, grad_outputs=self._tensor(cotangent), retain_graph=True,
                                           allow_unused=True)
            grads.append({n: None if g is None else _array(g) for n, g in zip(names, got, strict=True)})
        return _array(out), grads

    def _tensor(self, values: Any, grad: bool = False) -> Any:
        return self.torch.tensor(values, dtype=self.dtype, device=self.device, requires_grad=grad)

    def primitives(self, f: Callable[..., Any], primals: Sequence[Any], function: Any = None,
                   label: str = "") -> _Primitives:
        """Forward mode by ``torch.func.jvp`` (forward AD), reverse mode by ``torch.autograd.grad`` (with
        ``create_graph`` to differentiate again), forward over reverse by ``torch.func.jvp`` of
        ``torch.func.vjp``, the Jacobian by ``torch.func.jacfwd``. ``function`` is a user's callable that
        ``f`` calls: a ``torch.autograd.Function`` is read for what it defines (:func:`function_modes`)."""
        refused, old_style, vmaps = function_modes(self.torch, function, label)
        return _Primitives(self, f, primals, refused, old_style, vmaps)

    # -- a user's function under test (gradspec.engines.function) -------------------------------
    def function_input(self, graph: TensorGraph, name: str, values: Any, *, grad: bool = False) -> Any:
        """One input as a user's function receives it: an integer-valued data input as int64, else the
        engine's dtype."""
        arr = np.asarray(values, dtype=float)
        if name in graph.data and np.all(arr == np.round(arr)):
            return self.torch.tensor(arr.astype(np.int64), device=self.device)
        return self.torch.tensor(arr, dtype=self.dtype, device=self.device, requires_grad=grad)

    def probe_function(self, fn: Callable[..., Any], graph: TensorGraph, inputs: Mapping[str, Any],
                       cotangents: Sequence[Any]) -> Probe:
        """One forward of ``fn`` and ``torch.autograd.grad`` per cotangent, as torch returned them."""
        t = self.torch
        leaves = {n: self.function_input(graph, n, inputs[n], grad=n not in graph.data) for n, _ in graph.inputs}
        before = {n: leaf.detach().clone() for n, leaf in leaves.items()}
        out = fn(*leaves.values())
        if not isinstance(out, t.Tensor):
            out = t.as_tensor(out, dtype=self.dtype, device=self.device)
        output_shape(graph, tuple(out.shape))
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
                got = t.autograd.grad(out, wanted, grad_outputs=t.tensor(cotangent, dtype=out.dtype, device=self.device),
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


def function_modes(t: Any, function: Any, label: str) -> tuple[dict[str, str], bool, bool]:
    """What the ``torch.autograd.Function`` classes a user's function is written with (``MyFn.apply``, or a
    function that calls it) let torch do, read from what each class defines: the rows of the mode table
    they refuse (with why), whether one is written the old way (``ctx`` in ``forward``, no
    ``setup_context``: torch.func refuses it, forward AD still runs its ``jvp``, one level deep), and
    whether torch.func can vmap them all (``jacfwd`` does). A function with none is differentiated by
    torch's transforms as it is."""
    base = t.autograd.Function
    classes: list[Any] = referenced(function, lambda c: isinstance(c, type) and issubclass(c, base) and c is not base) \
        if function is not None else []
    refused: dict[str, str] = {}

    def who(cls: Any) -> str:  # the function itself, or the Function it is written with
        return label if label == f"{cls.__qualname__}.apply" else f"{label} (through {cls.__qualname__})"

    old = [cls for cls in classes if cls.setup_context is base.setup_context]
    if old:
        refused[Mode.JVP_OF_JVP] = (f"{who(old[0])} has no setup_context, so torch.func cannot nest its forward mode, "
                                    "and torch.autograd.forward_ad has one level")
    for cls in [cls for cls in classes if cls.jvp is base.jvp][:1]:
        for row in rows(frozenset(Mode), 2):
            if row.forward:
                refused.setdefault(row.key, f"{who(cls)} has no forward mode: it does not implement jvp")
    vmaps = all(bool(getattr(cls, "generate_vmap_rule", False)) or cls.vmap is not base.vmap for cls in classes)
    return refused, bool(old), vmaps


class _Primitives:
    """torch's primitives for one function at one point (:class:`gradspec.engines.modes.Primitives`)."""

    def __init__(self, engine: TorchEngine, f: Callable[..., Any], primals: Sequence[Any], refused: dict[str, str],
                 old_style: bool, vmaps: bool) -> None:
        self.t, self.tensor, self.function = engine.torch, engine._tensor, f
        self.refused, self.old_style, self.vmaps = refused, old_style, vmaps
        self.xs = tuple(engine._tensor(p) for p in primals)
        self.leaves: list[Any] = []

    def _tensors(self, arrays: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(self.tensor(a) for a in arrays)

    def reverse(self, v: Any, again: bool) -> tuple[Any, list[Any], Any]:
        t = self.t
        self.leaves = [x.clone().requires_grad_(True) for x in self.xs]
        out = self.function(*self.leaves)
        grads = _zeros(t, self.leaves, t.autograd.grad(out, self.leaves, grad_outputs=self.tensor(v), create_graph=again,
                                                       allow_unused=True)) \
            if out.requires_grad else [t.zeros_like(x) for x in self.leaves]
        return _array(out), [_array(g) for g in grads], grads

    def again(self, grads: Any, u: Sequence[Any]) -> Any:
        return _again(self.t, grads, self._tensors(u), self.leaves, create_graph=True)

    def along(self, grads: Any, u: Sequence[Any]) -> float:
        return float(sum((g * d).sum() for g, d in zip(grads, self._tensors(u), strict=True)).detach())

    def arrays(self, grads: Any) -> list[Any]:
        return [_array(g) for g in grads]

    def jvp(self, fn: Any, u: Sequence[Any]) -> Any:
        if self.old_style:  # torch.func refuses the Function; forward AD runs its jvp, one level
            return self._forward_ad(u)
        out = self.t.func.jvp(fn, self.xs, self._tensors(u))[1]
        return [_array(o) for o in out] if isinstance(out, tuple) else _array(out)

    def jvp_of(self, fn: Any, u: Sequence[Any]) -> Any:
        tangents = self._tensors(u)
        return lambda *a: self.t.func.jvp(fn, a, tangents)[1]

    def vjp_of(self, v: Any) -> Any:
        cotangent = self.tensor(v)
        return lambda *a: self.t.func.vjp(self.function, *a)[1](cotangent)

    def jacobian(self) -> list[Any] | None:
        if self.old_style or not self.vmaps:  # jacfwd vmaps the function: one JVP per column does not
            return None
        return [_array(j) for j in self.t.func.jacfwd(self.function, argnums=tuple(range(len(self.xs))))(*self.xs)]

    def _forward_ad(self, u: Sequence[Any]) -> Any:
        fwad = self.t.autograd.forward_ad
        with fwad.dual_level():
            out = self.function(*(fwad.make_dual(x, d) for x, d in zip(self.xs, self._tensors(u), strict=True)))
            tangent = fwad.unpack_dual(out).tangent
        return _array(self.t.zeros_like(out) if tangent is None else tangent)


def _array(x: Any) -> Any:
    return x.detach().cpu().double().numpy(force=True)  # force: torch.func's zero results are ZeroTensors


def _zeros(t: Any, leaves: Sequence[Any], grads: Sequence[Any]) -> list[Any]:
    """Gradients with None (an input the output does not use) as zeros."""
    return [t.zeros_like(x) if g is None else g for x, g in zip(leaves, grads, strict=True)]


def _again(t: Any, grads: Sequence[Any], u: Sequence[Any], leaves: Sequence[Any], *, create_graph: bool = False) -> list[Any]:
    """The gradient of ``sum(grads · u)``: reverse over reverse. A gradient that does not depend on the
    inputs (a linear function, or a backward that detached it) has the zero Hessian that says so."""
    s = sum((g * d).sum() for g, d in zip(grads, u, strict=True))
    if not getattr(s, "requires_grad", False):
        return [t.zeros_like(x) for x in leaves]
    return _zeros(t, leaves, t.autograd.grad(s, leaves, create_graph=create_graph, retain_graph=True, allow_unused=True))


def watch_backward_shapes(torch: Any, out: Any, names: Mapping[int, str]) -> tuple[list[str], Callable[[], None]]:
    """Watch the raw gradients that each ``torch.autograd.Function`` in ``out``'s graph returns from its
    backward, before torch's engine sums a broadcast-compatible gradient down to its input's shape (so a
    [3, 3, 4] gradient for a [3, 1, 4] input passes unseen). ``names`` maps ``id`` of a leaf tensor to
    its name. Returns the list that each wrong shape is added to as backward runs, and a function that
    removes the watch."""
    problems: list[str] = []
    handles = []
    seen: set[int] = set()
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack += [n for n, _ in node.next_functions]
        forward_cls = getattr(node, "_forward_cls", None)
        if forward_cls is not None:
            handles.append(node.register_prehook(_shape_watch(torch, node, forward_cls, names, problems)))

    def remove() -> None:
        for handle in handles:
            handle.remove()

    return problems, remove


def _shape_watch(torch: Any, node: Any, forward_cls: Any, names: Mapping[int, str],
                 problems: list[str]) -> Callable[[Any], None]:
    def hook(grad_outputs: Any) -> None:
        try:
            with torch.no_grad():
                raw = forward_cls.backward(node, *grad_outputs)  # the Function's own backward, as written
        except Exception:  # its error surfaces from the real backward call, where the check reports it
            return
        raw = raw if isinstance(raw, tuple) else (raw,)
        for k, ((next_node, slot), grad) in enumerate(zip(node.next_functions, raw, strict=False)):
            if next_node is None or not isinstance(grad, torch.Tensor):
                continue
            variable = getattr(next_node, "variable", None)
            want = tuple(variable.shape) if variable is not None else tuple(next_node._input_metadata[slot].shape)
            if tuple(grad.shape) != want:
                what = names.get(id(variable), f"input {k}") if variable is not None else f"input {k}"
                problems.append(f"{forward_cls.__name__}.backward returned a gradient of shape {list(grad.shape)} "
                                f"for {what} of shape {list(want)}, which torch sums down to the input's shape")

    return hook
