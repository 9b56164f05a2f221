"""Custom torch.autograd.Functions: a softmax with a hand-written backward, correct and with a planted bug."""

from __future__ import annotations

from typing import Any

import torch


class Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = torch.exp(x - x.amax(dim=-1, keepdim=True))
        y = y / y.sum(dim=-1, keepdim=True)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(dim=-1, keepdim=True))


class SoftmaxDroppedTerm(Softmax):
    """The planted bug: the backward forgets the term along the output (y * sum(g * y))."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return y * g


def softmax(x: torch.Tensor) -> torch.Tensor:
    return Softmax.apply(x)


def softmax_dropped_term(x: torch.Tensor) -> torch.Tensor:
    return SoftmaxDroppedTerm.apply(x)
