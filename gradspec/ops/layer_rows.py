"""The tensor ops of one group of the op table: normalisation and layers (batch_norm, linear, conv1d, pooling, attention, ...).

Each row is a :class:`~gradspec.ops.row.TensorOp`; :mod:`gradspec.ops.table` joins the groups into
``TENSOR_OPS``. Their element-wise definitions are in :mod:`gradspec.ops.lowering.layers`. Keywords and
operand order follow PyTorch; a weight and bias that PyTorch takes as optional are optional trailing
operands (``batch_norm(x)``, ``batch_norm(x, w)``, ``batch_norm(x, w, b)``).

``rms_norm`` takes ``eps=`` without a default: PyTorch's default is the machine epsilon of the input's
dtype, which would make the exact answer depend on the engine's precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from gradspec.ops.row import Keyword, TensorOp
from gradspec.ops.shapes import layers as _shape

__all__ = ["ROWS"]

_EPS = Keyword("eps", "number", Fraction(1, 100_000))
_CONV = (Keyword("stride", "int", 1), Keyword("padding", "int", 0), Keyword("dilation", "int", 1),
         Keyword("groups", "int", 1))
_POOL = (Keyword("kernel", "int"), Keyword("stride", "int", None), Keyword("padding", "int", 0))


def _opt(a: Sequence[Any], i: int) -> Any:
    """An optional operand, or None where the call left it out."""
    return a[i] if len(a) > i else None


def _lead(x: Any, v: Any) -> Any:
    """A per-channel vector shaped to broadcast along axis 1 of ``x``."""
    return v.reshape((-1,) + (1,) * (x.ndim - 2))


def _affine(x: Any, a: Sequence[Any], shaped: Any = None) -> Any:
    """``x * w + b`` for the optional operands 1 and 2 (``shaped`` reshapes them to broadcast)."""
    fit = shaped or (lambda v: v)
    if len(a) > 1:
        x = x * fit(a[1])
    if len(a) > 2:
        x = x + fit(a[2])
    return x


def _spatial(x: Any) -> tuple[int, ...]:
    return (0, *range(2, x.ndim))


# -- JAX: no layer library in the environment, so the layers are written with jax.numpy, jax.nn and jax.lax

def _jax_norm(j: Any, a: Sequence[Any], kw: dict[str, Any], groups: int | None) -> Any:
    """Group normalisation by JAX's ``jax.nn.standardize`` (groups None: batch norm's channel groups)."""
    x, eps = a[0], float(kw["eps"])
    if groups is None:
        y = j.nn.standardize(x, axis=_spatial(x), epsilon=eps)
    else:
        y = j.nn.standardize(x.reshape(x.shape[0], groups, -1), axis=-1, epsilon=eps).reshape(x.shape)
    return _affine(y, a, lambda v: _lead(x, v))


def _jax_rms(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    x = a[0]
    y = x * j.lax.rsqrt(j.numpy.mean(x * x, axis=-1, keepdims=True) + float(kw["eps"]))
    return y * a[1] if len(a) > 1 else y


def _jax_conv(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    x, w = a[0], a[1]
    n = x.ndim - 2
    s, p, d = kw["stride"], kw["padding"], kw["dilation"]
    axes = ("NCH", "OIH", "NCH") if n == 1 else ("NCHW", "OIHW", "NCHW")
    y = j.lax.conv_general_dilated(x, w, (s,) * n, [(p, p)] * n, rhs_dilation=(d,) * n, dimension_numbers=axes,
                                   feature_group_count=kw["groups"])
    return y + _lead(y, a[2]) if len(a) > 2 else y


def _jax_conv_transpose(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    """conv_transpose2d as the convolution of the stride-dilated input with the flipped kernel, whose
    [C, O/g, kH, kW] weight is regrouped to [O, C/g, kH, kW]."""
    x, w = a[0], a[1]
    s, p, d, g = kw["stride"], kw["padding"], kw["dilation"], kw["groups"]
    c, o, kh, kw_ = w.shape
    k = w.reshape(g, c // g, o, kh, kw_).transpose(0, 2, 1, 3, 4).reshape(g * o, c // g, kh, kw_)[:, :, ::-1, ::-1]
    pads = [(d * (kh - 1) - p,) * 2, (d * (kw_ - 1) - p,) * 2]
    y = j.lax.conv_general_dilated(x, k, (1, 1), pads, lhs_dilation=(s, s), rhs_dilation=(d, d),
                                   dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=g)
    return y + _lead(y, a[2]) if len(a) > 2 else y


def _jax_pool(j: Any, a: Sequence[Any], kw: dict[str, Any], top: bool) -> Any:
    x, k, p = a[0], kw["kernel"], kw["padding"]
    s = k if kw["stride"] is None else kw["stride"]
    lead = (1,) * (x.ndim - 2)
    window, strides = (*lead, k, k), (*lead, s, s)
    pads = [(0, 0)] * (x.ndim - 2) + [(p, p)] * 2
    if top:
        return j.lax.reduce_window(x, -j.numpy.inf, j.lax.max, window, strides, pads)
    return j.lax.reduce_window(x, 0.0, j.lax.add, window, strides, pads) / (k * k)


def _jax_attention(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    """``jax.nn.dot_product_attention``, whose layout is [batch, length, heads, dim]: a [L, E] query is one
    head, [B, L, E] a batch of one head each, [B, H, L, E] has its heads moved."""
    q, k, v = a[:3]
    jnp = j.numpy
    if q.ndim > 4 or v.shape[-1] != q.shape[-1]:
        return _jax_attention_composed(j, a, kw)
    def layout(t: Any) -> Any:
        return t[:, None, :] if t.ndim == 2 else t[:, :, None, :] if t.ndim == 3 else t.transpose(0, 2, 1, 3)

    bias = None
    if len(a) > 3:
        full = jnp.broadcast_to(a[3], (*q.shape[:-1], k.shape[-2]))
        bias = full[None] if q.ndim == 2 else full[:, None] if q.ndim == 3 else full
    scale = None if kw["scale"] is None else float(kw["scale"])
    y = j.nn.dot_product_attention(layout(q), layout(k), layout(v), bias=bias, scale=scale, is_causal=bool(kw["causal"]))
    return y[:, 0, :] if q.ndim == 2 else y[:, :, 0, :] if q.ndim == 3 else y.transpose(0, 2, 1, 3)


def _jax_attention_composed(j: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    q, k, v = a[:3]
    jnp = j.numpy
    scale = 1 / jnp.sqrt(q.shape[-1]) if kw["scale"] is None else float(kw["scale"])
    scores = jnp.matmul(q, jnp.swapaxes(k, -1, -2)) * scale
    if len(a) > 3:
        scores = scores + a[3]
    if kw["causal"]:
        scores = jnp.where(jnp.tril(jnp.ones(scores.shape[-2:], dtype=bool)), scores, -jnp.inf)
    return jnp.matmul(j.nn.softmax(scores, axis=-1), v)


# -- tinygrad: its Tensor methods, and its nn modules' compositions for the norms it has no method of

def _tg_batch_norm(tg: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    x = a[0]
    axes = _spatial(x)
    invstd = (x.var(axis=axes, correction=0) + float(kw["eps"])).rsqrt()
    return x.batchnorm(_opt(a, 1), _opt(a, 2), x.mean(axis=axes), invstd)


def _tg_group_norm(tg: Any, a: Sequence[Any], kw: dict[str, Any], groups: int) -> Any:
    x = a[0]
    y = x.reshape(x.shape[0], groups, -1).layernorm(eps=float(kw["eps"])).reshape(x.shape)
    return _affine(y, a, lambda v: _lead(x, v))


def _tg_attention(tg: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
    """tinygrad's attention divides by sqrt(E) and takes no scale: another scale multiplies the query by
    scale * sqrt(E) first."""
    q = a[0] if kw["scale"] is None else a[0] * (float(kw["scale"]) * math.sqrt(a[0].shape[-1]))
    return q.scaled_dot_product_attention(a[1], a[2], attn_mask=_opt(a, 3), is_causal=bool(kw["causal"]))


def _torch_conv(name: str) -> Any:
    def spell(t: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
        return getattr(t.nn.functional, name)(a[0], a[1], _opt(a, 2), stride=kw["stride"], padding=kw["padding"],
                                              dilation=kw["dilation"], groups=kw["groups"])
    return spell


def _torch_pool(name: str) -> Any:
    def spell(t: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
        return getattr(t.nn.functional, name)(a[0], kw["kernel"], kw["stride"], kw["padding"])
    return spell


def _tg_pool(name: str) -> Any:
    def spell(tg: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
        k = kw["kernel"]
        return getattr(a[0], name)((k, k), stride=kw["stride"] or k, padding=kw["padding"])
    return spell


def _tg_conv(name: str) -> Any:
    def spell(tg: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
        return getattr(a[0], name)(a[1], _opt(a, 2), groups=kw["groups"], stride=kw["stride"], dilation=kw["dilation"],
                                   padding=kw["padding"])
    return spell


_NORM_TEXT = "(x - mean) / sqrt(var + eps), two-pass biased variance"

ROWS: tuple[TensorOp, ...] = (
    TensorOp("layer_norm", 1, (_EPS,), _shape.layer_norm, "layers.layer_norm",
             lambda t, a, kw: t.nn.functional.layer_norm(a[0], a[0].shape[-1:], _opt(a, 1), _opt(a, 2), eps=float(kw["eps"])),
             lambda j, a, kw: _affine(j.nn.standardize(a[0], axis=-1, epsilon=float(kw["eps"])), a),
             f"{_NORM_TEXT} over the last axis; then * w + b (each [last], optional)", max_arity=3,
             tinygrad=lambda tg, a, kw: _affine(a[0].layernorm(-1, eps=float(kw["eps"])), a)),
    TensorOp("batch_norm", 1, (_EPS,), _shape.batch_norm, "layers.batch_norm",
             lambda t, a, kw: t.nn.functional.batch_norm(a[0], None, None, _opt(a, 1), _opt(a, 2), training=True,
                                                         eps=float(kw["eps"])),
             lambda j, a, kw: _jax_norm(j, a, kw, None),
             f"training statistics: {_NORM_TEXT} per channel (axis 1) over the batch and spatial axes; then * w + b "
             "(each [C], optional)", max_arity=3, tinygrad=_tg_batch_norm),
    TensorOp("group_norm", 1, (Keyword("groups", "int"), _EPS), _shape.group_norm, "layers.group_norm",
             lambda t, a, kw: t.nn.functional.group_norm(a[0], kw["groups"], _opt(a, 1), _opt(a, 2), eps=float(kw["eps"])),
             lambda j, a, kw: _jax_norm(j, a, kw, kw["groups"]),
             f"{_NORM_TEXT} per sample over each group of C/groups channels and the spatial axes; then * w + b "
             "(each [C], optional)", max_arity=3, tinygrad=lambda tg, a, kw: _tg_group_norm(tg, a, kw, kw["groups"])),
    TensorOp("instance_norm", 1, (_EPS,), _shape.instance_norm, "layers.instance_norm",
             lambda t, a, kw: t.nn.functional.instance_norm(a[0], eps=float(kw["eps"])),
             lambda j, a, kw: _jax_norm(j, a, kw, a[0].shape[1]),
             f"{_NORM_TEXT} per sample and channel over the spatial axes (no affine)",
             tinygrad=lambda tg, a, kw: _tg_group_norm(tg, a, kw, a[0].shape[1])),
    TensorOp("rms_norm", 1, (Keyword("eps", "number"),), _shape.rms_norm, "layers.rms_norm",
             lambda t, a, kw: t.nn.functional.rms_norm(a[0], a[0].shape[-1:], _opt(a, 1), eps=float(kw["eps"])),
             _jax_rms, "x / sqrt(mean(x^2) + eps) over the last axis; then * w ([last], optional); eps required",
             max_arity=2,
             tinygrad=lambda tg, a, kw: _affine(a[0] * (a[0].square().mean(-1, keepdim=True) + float(kw["eps"])).rsqrt(), a)),
    TensorOp("linear", 2, (), _shape.linear, "layers.linear",
             lambda t, a, kw: t.nn.functional.linear(a[0], a[1], _opt(a, 2)),
             lambda j, a, kw: j.numpy.matmul(a[0], a[1].T) + (a[2] if len(a) > 2 else 0),
             "y[..., o] = sum_i x[..., i] w[o, i] + b[o] (w [out, in]; b optional)", max_arity=3,
             tinygrad=lambda tg, a, kw: a[0].linear(a[1].transpose(), _opt(a, 2))),
    TensorOp("embedding", 2, (), _shape.embedding, "layers.embedding",
             lambda t, a, kw: t.nn.functional.embedding(a[0].long(), a[1]),
             lambda j, a, kw: j.numpy.take(a[1], a[0].astype("int32"), axis=0),
             "y[..., d] = table[index[...], d]; index is integer data in [0, rows)", data=(0,),
             tinygrad=lambda tg, a, kw: a[1][a[0].cast(tg.dtypes.int32)]),
    TensorOp("conv1d", 2, _CONV, _shape.conv, "layers.conv", _torch_conv("conv1d"), _jax_conv,
             "y[n,o,i] = sum_{c,p} x[n, c, i*s + p*d - pad] w[o,c,p] + b[o] over o's group of channels (zero padding)",
             max_arity=3, tinygrad=_tg_conv("conv2d")),
    TensorOp("conv2d", 2, _CONV, _shape.conv, "layers.conv", _torch_conv("conv2d"), _jax_conv,
             "y[n,o,i,j] = sum_{c,p,q} x[n, c, i*s + p*d - pad, j*s + q*d - pad] w[o,c,p,q] + b[o] over o's group "
             "of channels (NCHW, OIHW, zero padding)", max_arity=3, tinygrad=_tg_conv("conv2d")),
    TensorOp("conv_transpose2d", 2, _CONV, _shape.conv_transpose2d, "layers.conv_transpose2d",
             lambda t, a, kw: t.nn.functional.conv_transpose2d(a[0], a[1], _opt(a, 2), stride=kw["stride"],
                                                               padding=kw["padding"], groups=kw["groups"],
                                                               dilation=kw["dilation"]),
             _jax_conv_transpose,
             "the adjoint of conv2d in x: x[n,c,r] w[c,o,p] summed into y[n,o,r*s + p*d - pad] (weight [C, O/groups, "
             "kH, kW]) + b[o]", max_arity=3, tinygrad=_tg_conv("conv_transpose2d")),
    TensorOp("avg_pool2d", 1, _POOL, _shape.pool2d, "layers.avg_pool2d", _torch_pool("avg_pool2d"),
             lambda j, a, kw: _jax_pool(j, a, kw, top=False),
             "the window's sum / kernel^2 over the last two axes (padding counts as zeros); stride defaults to kernel",
             tinygrad=_tg_pool("avg_pool2d")),
    TensorOp("max_pool2d", 1, _POOL, _shape.pool2d, "layers.max_pool2d", _torch_pool("max_pool2d"),
             lambda j, a, kw: _jax_pool(j, a, kw, top=True),
             "the window's max, max(a, b) = b + relu(a - b) folded pairwise (a tie is relu's kink; padding never "
             "wins)", tinygrad=_tg_pool("max_pool2d")),
    TensorOp("scaled_dot_product_attention", 3,
             (Keyword("causal", "int", 0), Keyword("scale", "number", None)), _shape.attention, "layers.attention",
             lambda t, a, kw: t.nn.functional.scaled_dot_product_attention(
                 a[0], a[1], a[2], attn_mask=_opt(a, 3), is_causal=bool(kw["causal"]),
                 scale=None if kw["scale"] is None else float(kw["scale"])),
             _jax_attention,
             "softmax(q k^T * scale + mask, last axis) v; scale defaults to 1/sqrt(E); the optional 4th operand is an "
             "additive mask (torch's float attn_mask); causal=1 leaves out keys after the query", max_arity=4,
             tinygrad=_tg_attention),
)
