"""PyTorch: ``torch`` (float64, CPU), ``torch:float32``, ``torch:cuda``, ``torch:cuda:float32``.

Leaves are 0-d tensors with ``requires_grad``; named intermediates keep their gradients through
``retain_grad()``. Ops are the tensors' own methods and Python operators, as the op table spells them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gradspec.engines.protocol import Engine, Unavailable
from gradspec.errors import EngineError
from gradspec.graph.ir import Graph
from gradspec.graph.tensor import TensorGraph
from gradspec.ops.table import OPS, REVERSE_AND_TENSOR, TENSOR_OPS, Op, TensorOp


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
    capabilities = REVERSE_AND_TENSOR

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

    def run_tensor(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> tuple[Any, list[dict[str, Any]]]:
        """A tensor case from torch's own ops (``torch.softmax``, ``F.layer_norm``, ...): the value, and
        ``torch.autograd.grad`` with each cotangent as ``grad_outputs``."""
        t = self.torch

        def tensor(values: Any, grad: bool = False) -> Any:
            return t.tensor(values, dtype=self.dtype, device=self.device, requires_grad=grad)

        leaves = {n: tensor(inputs[n], n not in graph.data) for n, _ in graph.inputs}
        nodes: list[Any] = []
        for step in graph.steps:
            if step.name is not None:
                nodes.append(leaves[step.name])
            elif step.op is None:
                nodes.append(tensor(float(step.const)))  # type: ignore[arg-type]  # const is None for leaves only
            elif step.op in OPS:
                nodes.append(self.apply(OPS[step.op], [nodes[a] for a in step.args]))
            else:
                nodes.append(self.tensor_op(TENSOR_OPS[step.op], [nodes[a] for a in step.args], step.kw))
        out = nodes[graph.output]
        wanted = [leaves[n] for n, _ in graph.differentiable]
        grads = []
        for cotangent in cotangents:
            got = t.autograd.grad(out, wanted, grad_outputs=tensor(cotangent), retain_graph=True, allow_unused=True)
            grads.append({n: None if g is None else g.detach().cpu().double().numpy()
                          for (n, _), g in zip(graph.differentiable, got, strict=True)})
        return out.detach().cpu().double().numpy(), grads
