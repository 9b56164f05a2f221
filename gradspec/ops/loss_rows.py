"""The tensor ops of one group of the op table: losses (mse_loss, nll_loss, binary_cross_entropy, kl_div, ...).

Each row is a :class:`~gradspec.ops.row.TensorOp`; :mod:`gradspec.ops.table` joins the groups into
``TENSOR_OPS``. Their element-wise definitions are in :mod:`gradspec.ops.lowering.losses`. Operand order,
keywords and their defaults follow PyTorch: ``reduction="mean"`` (or ``"sum"``, ``"none"``) on every loss.
Class targets are integer data (inputs marked ``differentiable: false``); ``cross_entropy``'s target may
instead hold probabilities, of the logits' shape (data too). JAX has no losses of its own (and no loss
library is installed), so its spellings are the formulas written with ``jax.numpy`` and ``jax.nn``;
tinygrad spells the losses it has as methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from gradspec.ops.row import Keyword, TensorOp
from gradspec.ops.shapes import layers as _shape

__all__ = ["ROWS"]

_REDUCTION = Keyword("reduction", "str", "mean", choices=("mean", "sum", "none"))


def _red(j: Any, x: Any, kw: dict[str, Any]) -> Any:
    how = kw["reduction"]
    if how == "none":
        return x
    total = j.numpy.sum(x)
    return total if how == "sum" else total / x.shape[0] if how == "batchmean" else j.numpy.mean(x)


def _torch(name: str, **fixed: str) -> Any:
    """``torch.nn.functional.<name>(a, b, reduction=..., <keyword>=...)`` with the row's keywords renamed
    as ``fixed`` says (the row's name -> torch's) and converted to torch's types."""
    def spell(t: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
        extra = {fixed.get(k, k): bool(v) if k == "log_target" else float(v) for k, v in kw.items() if k != "reduction"}
        return getattr(t.nn.functional, name)(a[0], a[1], reduction=kw["reduction"], **extra)
    return spell


def _jax_huber(j: Any, a: Sequence[Any], delta: float) -> Any:
    d = a[0] - a[1]
    ad = j.numpy.abs(d)
    return j.numpy.where(ad < delta, 0.5 * d * d, delta * (ad - 0.5 * delta))


def _jax_smooth_l1(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    beta = float(kw["beta"])
    loss = j.numpy.abs(a[0] - a[1]) if beta == 0 else _jax_huber(j, a, beta) / beta
    return _red(j, loss, kw)


def _jax_picked(j: Any, logp: Any, target: Any) -> Any:
    return j.numpy.take_along_axis(logp, target.astype("int32")[:, None], axis=-1)[:, 0]


def _jax_cross_entropy(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    z, target = a
    e, classes = float(kw["label_smoothing"]), z.shape[-1]
    logp = j.nn.log_softmax(z, axis=-1)
    if target.shape == z.shape:
        loss = -j.numpy.sum(((1 - e) * target + e / classes) * logp, axis=-1)
    else:
        loss = -_jax_picked(j, logp, target)
        if e:
            loss = (1 - e) * loss - e * j.numpy.mean(logp, axis=-1)
    return _red(j, loss, kw)


def _jax_kl(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    logq, p = a
    if kw["log_target"]:
        return _red(j, j.numpy.exp(p) * (p - logq), kw)
    return _red(j, j.scipy.special.xlogy(p, p) - p * logq, kw)


def _tg_index(tg: Any, target: Any) -> Any:
    return target.cast(tg.dtypes.int32)


def _tg_cross_entropy(tg: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    z, target = a
    y = target if target.shape == z.shape else _tg_index(tg, target)
    return z.cross_entropy(y, reduction=kw["reduction"], label_smoothing=float(kw["label_smoothing"]))


ROWS: tuple[TensorOp, ...] = (
    TensorOp("mse_loss", 2, (_REDUCTION,), _shape.pointwise_loss, "losses.mse_loss", _torch("mse_loss"),
             lambda j, a, kw: _red(j, (a[0] - a[1]) ** 2, kw), "(a - b)^2, reduced"),
    TensorOp("l1_loss", 2, (_REDUCTION,), _shape.pointwise_loss, "losses.l1_loss", _torch("l1_loss"),
             lambda j, a, kw: _red(j, j.numpy.abs(a[0] - a[1]), kw), "|a - b|, reduced; a = b is abs's kink (0 there)"),
    TensorOp("smooth_l1_loss", 2, (Keyword("beta", "number", Fraction(1)), _REDUCTION), _shape.pointwise_loss,
             "losses.smooth_l1_loss", _torch("smooth_l1_loss"), _jax_smooth_l1,
             "0.5 d^2 / beta for |d| < beta, else |d| - beta/2 (d = a - b; beta = 0: |d|), reduced; |d| = beta is "
             "relu's kink"),
    TensorOp("huber_loss", 2, (Keyword("delta", "number", Fraction(1)), _REDUCTION), _shape.pointwise_loss,
             "losses.huber_loss", _torch("huber_loss"),
             lambda j, a, kw: _red(j, _jax_huber(j, a, float(kw["delta"])), kw),
             "0.5 d^2 for |d| < delta, else delta (|d| - delta/2) (d = a - b), reduced; |d| = delta is relu's kink"),
    TensorOp("nll_loss", 2, (_REDUCTION,), _shape.class_loss, "losses.nll_loss",
             lambda t, a, kw: t.nn.functional.nll_loss(a[0], a[1].long(), reduction=kw["reduction"]),
             lambda j, a, kw: _red(j, -_jax_picked(j, a[0], a[1]), kw),
             "-logp[n, target_n] per sample (targets: integer data), reduced", data=(1,),
             tinygrad=lambda tg, a, kw: a[0].nll_loss(_tg_index(tg, a[1]), reduction=kw["reduction"])),
    TensorOp("cross_entropy", 2, (Keyword("label_smoothing", "number", Fraction(0)), _REDUCTION), _shape.class_loss,
             "losses.cross_entropy",
             lambda t, a, kw: t.nn.functional.cross_entropy(a[0], a[1] if a[1].shape == a[0].shape else a[1].long(),
                                                            reduction=kw["reduction"],
                                                            label_smoothing=float(kw["label_smoothing"])),
             _jax_cross_entropy,
             "logsumexp(z_n) - z_n[target_n] per sample, reduced; target [N] integer classes, or [N, C] probabilities "
             "t (sum_c t_c (logsumexp(z_n) - z_nc)); label smoothing e mixes in e/C of every class (targets: data)",
             data=(1,), tinygrad=_tg_cross_entropy),
    TensorOp("binary_cross_entropy", 2, (_REDUCTION,), _shape.pointwise_loss, "losses.binary_cross_entropy",
             _torch("binary_cross_entropy"),
             lambda j, a, kw: _red(j, -(a[1] * j.numpy.log(a[0]) + (1 - a[1]) * j.numpy.log(1 - a[0])), kw),
             "-(y log p + (1 - y) log(1 - p)), p in (0, 1), reduced (torch clamps each log at -100)",
             tinygrad=lambda tg, a, kw: a[0].binary_crossentropy(a[1], reduction=kw["reduction"])),
    TensorOp("binary_cross_entropy_with_logits", 2, (_REDUCTION,), _shape.pointwise_loss,
             "losses.binary_cross_entropy_with_logits", _torch("binary_cross_entropy_with_logits"),
             lambda j, a, kw: _red(j, (1 - a[1]) * a[0] - j.nn.log_sigmoid(a[0]), kw),
             "(1 - y) z - logsigmoid(z), reduced",
             tinygrad=lambda tg, a, kw: a[0].binary_crossentropy_logits(a[1], reduction=kw["reduction"])),
    TensorOp("kl_div", 2, (Keyword("log_target", "int", 0),
                           Keyword("reduction", "str", "mean", choices=("mean", "sum", "none", "batchmean"))),
             _shape.pointwise_loss, "losses.kl_div", _torch("kl_div"), _jax_kl,
             "p (log p - logq) per element (0 where p = 0), logq the input; log_target=1: the target is log p; "
             "reduced (batchmean: the sum / first axis)"),
)
