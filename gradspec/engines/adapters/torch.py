"""PyTorch: ``torch`` (float64, CPU), ``torch:float32``, ``torch:cuda``, ``torch:cuda:float32``.

Leaves are 0-d tensors with ``requires_grad``; named intermediates keep their gradients through
``retain_grad()``. Ops are the tensors' own methods and Python operators, as the op table spells them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gradspec.engines.protocol import Engine, Unavailable
from gradspec.engines.tensor import build_steps
from gradspec.errors import EngineError
from gradspec.graph.ir import Graph
from gradspec.graph.tensor import TensorGraph
from gradspec.modes import Ask, Capability, Derivatives, Mode
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
    capabilities = REVERSE_AND_TENSOR | {Capability.JVP, Capability.HVP}
    max_order = 4

    def __init__(self, torch: Any, name: str, dtype: Any, device: str) -> None:
        self.torch = torch
        self.name = name
        self.dtype = dtype
        self.device = device
        self.eps = float(torch.finfo(dtype).eps)

    def missing(self, op: Op, value_left: bool) -> str | None:
        needed = op.needs(value_left)
        return None if hasattr(self.torch.Tensor, needed) else f"torch.Tensor has no {needed}"

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

    def derivatives(self, f: Callable[..., Any], primals: Sequence[Any], ask: Ask) -> Derivatives:
        """Forward mode by ``torch.func.jvp`` (forward AD), reverse over reverse by ``torch.autograd.grad``
        with ``create_graph``, forward over reverse by ``torch.func.jvp`` of ``torch.func.vjp``, forward over
        forward by nested ``torch.func.jvp``, the Jacobian by ``torch.func.jacfwd``."""
        t, func = self.torch, self.torch.func
        xs = tuple(self._tensor(p) for p in primals)
        u = tuple(self._tensor(a) for a in ask.u)
        w = tuple(self._tensor(a) for a in ask.w)
        v = self._tensor(ask.v)
        got = Derivatives()
        leaves = [x.clone().requires_grad_(True) for x in xs]
        out = f(*leaves)
        got.value = _array(out)
        nested = Mode.HVP in ask.modes or ask.order >= 2
        grads = _zeros(t, leaves, t.autograd.grad(out, leaves, grad_outputs=v, create_graph=nested, allow_unused=True)) \
            if out.requires_grad else [t.zeros_like(x) for x in leaves]
        got.vjp = [_array(g) for g in grads]
        if Mode.HVP in ask.modes:
            got.hvp = [_array(h) for h in _again(t, grads, u, leaves)]
        if ask.order >= 2:
            level = grads
            for k in ask.orders:
                level = _again(t, level, u, leaves, create_graph=True)
                got.orders[k] = float(sum((g * d).sum() for g, d in zip(level, u, strict=True)).detach())
        if Mode.JVP in ask.modes:
            got.jvp = _array(func.jvp(f, xs, u)[1])
            if Mode.HVP in ask.modes:
                pulled = func.jvp(lambda *a: func.vjp(f, *a)[1](v), xs, u)[1]
                got.hvp_fwd = [_array(h) for h in pulled]
        if Mode.JVP_OF_JVP in ask.modes:
            got.jvp_of_jvp = _array(func.jvp(lambda *a: func.jvp(f, a, u)[1], xs, w)[1])
        if Mode.JACOBIAN in ask.modes:
            got.jacobian = [_array(j) for j in func.jacfwd(f, argnums=tuple(range(len(xs))))(*xs)]
        return got


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
