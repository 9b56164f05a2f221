"""Hand-written torch Functions for the function-kind tests: correct ones, and each other with one planted bug."""

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


# -- forward mode and higher order: x * sin(x), with and without jvp ----------------------------------
def _xsin_derivative(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x) + x * torch.cos(x)


class XSin(torch.autograd.Function):
    """x * sin(x) for torch.func: forward without ctx, setup_context, a differentiable backward, and jvp."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x * torch.sin(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        (x,) = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * _xsin_derivative(x)

    @staticmethod
    def jvp(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return t * _xsin_derivative(x)


class XSinDetached(XSin):
    """The planted bug: backward detaches x, so its gradient is right and cannot be differentiated again."""

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * _xsin_derivative(x.detach())


class XSinWrongJvp(XSin):
    """The planted bug: jvp has the cosine term's sign flipped (the backward is right)."""

    @staticmethod
    def jvp(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return t * (torch.sin(x) - x * torch.cos(x))


class XSinNoJvp(torch.autograd.Function):
    """x * sin(x) for torch.func without jvp: reverse mode only."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x * torch.sin(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * _xsin_derivative(x)


class OldXSin(torch.autograd.Function):
    """x * sin(x) written the old way (ctx in forward, no setup_context), with jvp: torch.func refuses it,
    torch.autograd.forward_ad calls its jvp."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        return x * torch.sin(x)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * _xsin_derivative(x)

    @staticmethod
    def jvp(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return t * _xsin_derivative(x)


class OldXSinWrongJvp(OldXSin):
    """The planted bug, the old way: jvp has its factors swapped (x * sin(x) for sin(x) + x * cos(x))."""

    @staticmethod
    def jvp(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return t * (torch.cos(x) + x * torch.sin(x))


class OldXSinNoJvp(torch.autograd.Function):
    """x * sin(x) the old way without jvp: no forward mode in torch.func or in forward AD."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x * torch.sin(x)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * _xsin_derivative(x)


xsin = XSin.apply
xsin_detached = XSinDetached.apply
xsin_wrong_jvp = XSinWrongJvp.apply
xsin_no_jvp = XSinNoJvp.apply
old_xsin = OldXSin.apply
old_xsin_wrong_jvp = OldXSinWrongJvp.apply
old_xsin_no_jvp = OldXSinNoJvp.apply


# entmax's SparsemaxFunction before its fix (deep-spin/entmax 4f3bc08, MIT licence), reduced to dim=-1 and
# a full sort: its backward squeezes every size-1 axis of the support size, not only ``dim``, so for a
# [3, 1, 4] input it returns a [3, 3, 4] gradient, which torch silently sums down to [3, 1, 4].
class SparsemaxBeforeFix(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, X: torch.Tensor) -> torch.Tensor:
        dim = -1
        max_val, _ = X.max(dim=dim, keepdim=True)
        X = X - max_val
        topk, _ = torch.sort(X, dim=dim, descending=True)
        topk_cumsum = topk.cumsum(dim) - 1
        rhos = torch.arange(1, X.size(dim) + 1, dtype=X.dtype)
        support = rhos * topk > topk_cumsum
        support_size = support.sum(dim=dim).unsqueeze(dim)
        tau = topk_cumsum.gather(dim, support_size - 1) / support_size.to(X.dtype)
        output = torch.clamp(X - tau, min=0)
        ctx.save_for_backward(support_size, output)
        return output

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        supp_size, output = ctx.saved_tensors
        dim = -1
        grad_input = grad_output.clone()
        grad_input[output == 0] = 0
        v_hat = grad_input.sum(dim=dim) / supp_size.to(output.dtype).squeeze()  # the fix: .squeeze(dim)
        v_hat = v_hat.unsqueeze(dim)
        return torch.where(output != 0, grad_input - v_hat, grad_input)


class SparsemaxFixed(SparsemaxBeforeFix):
    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        supp_size, output = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[output == 0] = 0
        v_hat = (grad_input.sum(dim=-1) / supp_size.to(output.dtype).squeeze(-1)).unsqueeze(-1)
        return torch.where(output != 0, grad_input - v_hat, grad_input)


sparsemax_before_fix = SparsemaxBeforeFix.apply
sparsemax_fixed = SparsemaxFixed.apply
