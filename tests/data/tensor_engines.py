"""Single-bug tensor engines for the tests: PyTorch with one op's backward rule broken on purpose.

Each engine is torch float64 with one op replaced by a ``torch.autograd.Function`` whose forward is
right and whose backward has one classic bug. gradspec must fail each one and name the op and the
pattern of the error.
"""

from __future__ import annotations

from typing import Any

import torch

from gradspec.engines.adapters.torch import TorchEngine
from gradspec.ops.table import TensorOp


class _SignFlippedSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Any, dim: int) -> Any:
        y = torch.softmax(x, dim)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (y,) = ctx.saved_tensors
        right = y * (g - (g * y).sum(ctx.dim, keepdim=True))
        return -right, None


class _LayerNormWithoutVariance(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Any, eps: float) -> Any:
        mu = x.mean(-1, keepdim=True)
        std = ((x - mu) ** 2).mean(-1, keepdim=True).add(eps).sqrt()
        ctx.save_for_backward(std)
        return (x - mu) / std

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (std,) = ctx.saved_tensors
        # The variance's own dependence on x is dropped: only the mean is differentiated.
        return (g - g.mean(-1, keepdim=True)) / std, None


class _TransposedMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, b = ctx.saved_tensors
        return g @ b.transpose(-1, -2), (a.transpose(-1, -2) @ g).transpose(-1, -2)


class _UnsummedAdd(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        ctx.shapes = (a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        # b was broadcast along the leading axis; its gradient keeps only the first copy (torch then
        # reduces the size-1 axis away, as it does for any gradient of a broadcast shape).
        return g, g.narrow(0, 0, 1)


class _Buggy(TorchEngine):
    op_name = ""
    function: Any = None

    def __init__(self) -> None:
        super().__init__(torch, type(self).__name__, torch.float64, "cpu")


class SignFlippedSoftmax(_Buggy):
    def tensor_op(self, op: TensorOp, args: Any, kw: dict[str, Any]) -> Any:
        if op.name == "softmax":
            return _SignFlippedSoftmax.apply(args[0], kw["axis"])
        return super().tensor_op(op, args, kw)


class LayerNormWithoutVariance(_Buggy):
    def tensor_op(self, op: TensorOp, args: Any, kw: dict[str, Any]) -> Any:
        if op.name == "layer_norm":
            return _LayerNormWithoutVariance.apply(args[0], float(kw["eps"]))
        return super().tensor_op(op, args, kw)


class TransposedMatmul(_Buggy):
    def tensor_op(self, op: TensorOp, args: Any, kw: dict[str, Any]) -> Any:
        if op.name == "matmul":
            return _TransposedMatmul.apply(*args)
        return super().tensor_op(op, args, kw)


class UnsummedBroadcastAdd(_Buggy):
    def apply(self, op: Any, args: Any) -> Any:
        if op.name == "add" and args[1].dim() < args[0].dim():
            return _UnsummedAdd.apply(*args)
        return super().apply(op, args)
