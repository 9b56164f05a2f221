"""Hand-written torch Functions for the function-kind tests: one correct, and each with one planted bug."""

from __future__ import annotations

from typing import Any

import torch


def _function(forward: Any, backward: Any) -> Any:
    cls = type("F", (torch.autograd.Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})
    return cls.apply


def _softmax_forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
    y = torch.softmax(x, dim=-1)
    ctx.save_for_backward(y)
    return y


def _softmax_backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
    (y,) = ctx.saved_tensors
    return y * (g - (g * y).sum(-1, keepdim=True))


def _softmax_sign(ctx: Any, g: torch.Tensor) -> torch.Tensor:  # all-ones cotangent: exact VJP is 0, so is -0
    return -_softmax_backward(ctx, g)


def _softmax_dropped(ctx: Any, g: torch.Tensor) -> torch.Tensor:
    (y,) = ctx.saved_tensors
    return y * g


def _sin_forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
    ctx.save_for_backward(x)
    return torch.sin(x)


def _sin_backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
    (x,) = ctx.saved_tensors
    return g * torch.cos(x)


def _sin_ignores(ctx: Any, g: torch.Tensor) -> torch.Tensor:
    (x,) = ctx.saved_tensors
    return torch.cos(x)


def _sin_wrong_argument(ctx: Any, g: torch.Tensor) -> torch.Tensor:
    (x,) = ctx.saved_tensors
    return g * torch.cos(2 * x)


def _matmul_forward(ctx: Any, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    ctx.save_for_backward(x, w)
    return x @ w


def _matmul_backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, w = ctx.saved_tensors
    return g @ w.T, x.T @ g


def _matmul_transposed(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, w = ctx.saved_tensors
    return g @ w.T, (x.T @ g).T


def _bias_forward(ctx: Any, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return x + b


def _bias_backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return g, g.sum(0)


def _bias_unsummed(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return g, g[0]


def _mean_forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
    ctx.n = x.shape[-1]
    return x.mean(-1)


def _mean_backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
    return g.unsqueeze(-1).expand(-1, ctx.n) / ctx.n


def _mean_missing(ctx: Any, g: torch.Tensor) -> torch.Tensor:
    return g.unsqueeze(-1).expand(-1, ctx.n).clone()


def _scale_in_place(ctx: Any, x: torch.Tensor) -> torch.Tensor:
    y = 2 * x
    x.data.mul_(1.0)
    x.data.add_(1.0)  # writes into its input
    return y


softmax = _function(_softmax_forward, _softmax_backward)
softmax_sign_flipped = _function(_softmax_forward, _softmax_sign)
softmax_dropped_term = _function(_softmax_forward, _softmax_dropped)
sin = _function(_sin_forward, _sin_backward)
sin_ignores_cotangent = _function(_sin_forward, _sin_ignores)
sin_wrong_argument = _function(_sin_forward, _sin_wrong_argument)
matmul = _function(_matmul_forward, _matmul_backward)
matmul_transposed = _function(_matmul_forward, _matmul_transposed)
add_bias = _function(_bias_forward, _bias_backward)
add_bias_unsummed = _function(_bias_forward, _bias_unsummed)
row_mean = _function(_mean_forward, _mean_backward)
row_mean_missing_mean = _function(_mean_forward, _mean_missing)
scale_in_place = _function(_scale_in_place, lambda ctx, g: 2 * g)


def shape_wrong(x: torch.Tensor) -> torch.Tensor:
    return x.sum()
