"""Custom torch.autograd.Functions: a softmax with a hand-written backward (and one with jvp too), correct
and with a planted bug."""

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


class SoftmaxWithJvp(torch.autograd.Function):
    """Softmax for every mode: forward without ctx and setup_context (so torch.func can transform it), a
    backward built from differentiable tensor ops (so it can be differentiated again), and jvp."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        y = torch.exp(x - x.amax(dim=-1, keepdim=True))
        return y / y.sum(dim=-1, keepdim=True)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(dim=-1, keepdim=True))

    @staticmethod
    def jvp(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return y * (t - (t * y).sum(dim=-1, keepdim=True))


class SoftmaxDetachedBackward(SoftmaxWithJvp):
    """The planted bug: the backward detaches the saved output. Its gradient is right; the gradient of its
    gradient (the Hessian) is zero."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        y = y.detach()
        return y * (g - (g * y).sum(dim=-1, keepdim=True))


def softmax_with_jvp(x: torch.Tensor) -> torch.Tensor:
    return SoftmaxWithJvp.apply(x)


def softmax_detached_backward(x: torch.Tensor) -> torch.Tensor:
    return SoftmaxDetachedBackward.apply(x)
