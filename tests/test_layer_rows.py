"""The normalisation and layer rows (gradspec/ops/layer_rows.py): each lowering against an independent
NumPy formula or an identity it must satisfy, their shape rules, and bad input as located load errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradspec.errors import ExpressionError
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from tests.row_helpers import lowered, run_file

RNG = np.random.default_rng(7)
X = RNG.normal(size=(2, 4, 3))
W = RNG.uniform(0.5, 1.5, size=4)
B = RNG.uniform(-0.5, 0.5, size=4)


def standardize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    mu = x.mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=axes, keepdims=True) + eps)


def test_batch_norm_uses_batch_statistics_per_channel_then_the_affine() -> None:
    expected = standardize(X, (0, 2), 1e-5) * W[:, None] + B[:, None]
    assert np.allclose(lowered("batch_norm(x, w, b)", x=X, w=W, b=B), expected, rtol=1e-13, atol=1e-13)
    assert np.allclose(lowered("batch_norm(x, w)", x=X, w=W), standardize(X, (0, 2), 1e-5) * W[:, None], rtol=1e-13)
    # a [N, C] input: the batch axis only; each channel's output has mean 0 and (eps aside) variance 1
    y = lowered("batch_norm(x, eps=0)", x=X[:, :, 0])
    assert np.allclose(y.mean(axis=0), 0, atol=1e-15) and np.allclose((y**2).mean(axis=0), 1, rtol=1e-13)


def test_group_and_instance_norm_normalise_their_groups() -> None:
    grouped = standardize(X.reshape(2, 2, 6), (2,), 0.01).reshape(X.shape)
    assert np.allclose(lowered("group_norm(x, w, b, groups=2, eps=0.01)", x=X, w=W, b=B),
                       grouped * W[:, None] + B[:, None], rtol=1e-13, atol=1e-13)
    assert np.allclose(lowered("instance_norm(x)", x=X), standardize(X, (2,), 1e-5), rtol=1e-13, atol=1e-13)
    # one group per channel is instance norm; one group of all channels is layer norm over [C, L]
    assert np.allclose(lowered("group_norm(x, groups=4)", x=X), lowered("instance_norm(x)", x=X), rtol=1e-14)
    assert np.allclose(lowered("group_norm(x, groups=1)", x=X), standardize(X, (1, 2), 1e-5), rtol=1e-13, atol=1e-13)


def test_layer_and_rms_norm_over_the_last_axis_with_their_weights() -> None:
    x = X.reshape(6, 4)
    assert np.allclose(lowered("layer_norm(x, w, b, eps=0.5)", x=x, w=W, b=B), standardize(x, (1,), 0.5) * W + B,
                       rtol=1e-13, atol=1e-13)
    assert np.allclose(lowered("layer_norm(x)", x=x), standardize(x, (1,), 1e-5), rtol=1e-13, atol=1e-13)
    rms = x / np.sqrt((x**2).mean(axis=1, keepdims=True) + 1e-6)
    assert np.allclose(lowered("rms_norm(x, w, eps=1e-6)", x=x, w=W), rms * W, rtol=1e-13)


def test_linear_and_embedding() -> None:
    x, w, b = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(5, 4)), RNG.normal(size=5)
    assert np.allclose(lowered("linear(x, w, b)", x=x, w=w, b=b), x @ w.T + b, rtol=1e-13)
    assert np.allclose(lowered("linear(x, w)", x=x, w=w), x @ w.T, rtol=1e-13)
    table, index = RNG.normal(size=(4, 2)), np.array([[3, 0, 3], [1, 1, 2]])
    assert np.array_equal(lowered("embedding(i, t)", data=("i",), i=index, t=table), table[index])


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, padding: int, dilation: int, groups: int) -> np.ndarray:
    """A direct cross-correlation in NumPy, over a zero-padded input."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, h, v = xp.shape
    o, per, kh, kw = w.shape
    oh, ow = (h - dilation * (kh - 1) - 1) // stride + 1, (v - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for k in range(o):
        g = k // (o // groups)
        for i in range(oh):
            for j in range(ow):
                window = xp[:, g * per:(g + 1) * per, i * stride:i * stride + dilation * (kh - 1) + 1:dilation,
                            j * stride:j * stride + dilation * (kw - 1) + 1:dilation]
                out[:, k, i, j] = (window * w[k]).sum(axis=(1, 2, 3))
    return out


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 1, 1, 2), (1, 2, 2, 1), (2, 1, 2, 2)])
def test_conv2d_matches_a_direct_cross_correlation(stride: int, padding: int, dilation: int, groups: int) -> None:
    x, w, b = RNG.normal(size=(2, 4, 5, 5)), RNG.normal(size=(2, 4 // groups, 2, 3)), RNG.normal(size=2)
    text = f"conv2d(x, w, b, stride={stride}, padding={padding}, dilation={dilation}, groups={groups})"
    expected = conv2d(x, w, stride, padding, dilation, groups) + b[:, None, None]
    assert np.allclose(lowered(text, x=x, w=w, b=b), expected, rtol=1e-12, atol=1e-12)


def test_conv1d_is_conv2d_over_a_height_of_one() -> None:
    x, w = RNG.normal(size=(1, 2, 6)), RNG.normal(size=(4, 1, 2))
    got = lowered("conv1d(x, w, stride=2, padding=1, dilation=2, groups=2)", x=x, w=w)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1)))[:, :, None]  # padding along the length only
    assert np.allclose(got, conv2d(padded, w[:, :, None], 2, 0, 2, 2)[:, :, 0], rtol=1e-12)


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 1, 1, 2), (2, 0, 2, 1), (3, 2, 1, 1)])
def test_conv_transpose2d_is_the_adjoint_of_conv2d(stride: int, padding: int, dilation: int, groups: int) -> None:
    # <conv_transpose2d(y, w), x> = <y, conv2d(x, w)> for every x of the size conv_transpose2d returns
    y, w = RNG.normal(size=(1, 2, 3, 3)), RNG.normal(size=(2, 4 // groups, 2, 2))
    keys = f"stride={stride}, padding={padding}, dilation={dilation}, groups={groups}"
    up = lowered(f"conv_transpose2d(y, w, {keys})", y=y, w=w)
    x = RNG.normal(size=up.shape)
    # conv_transpose2d's weight [C, O/g, ...] is, read as conv2d's [out, in/g, ...], the conv2d from O to C channels
    down = conv2d(x, w, stride, padding, dilation, groups)
    assert down.shape == y.shape
    assert np.isclose((up * x).sum(), (y * down).sum(), rtol=1e-12)
    b = RNG.normal(size=up.shape[1])
    assert np.allclose(lowered(f"conv_transpose2d(y, w, b, {keys})", y=y, w=w, b=b), up + b[:, None, None], rtol=1e-13)


def test_pools_by_hand() -> None:
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    assert np.array_equal(lowered("avg_pool2d(x, kernel=2)", x=x)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    assert np.array_equal(lowered("max_pool2d(x, kernel=2)", x=x)[0, 0], [[5, 7], [13, 15]])
    # padded cells count as zeros in the average (divided by 9 even at the corner) and never win the max
    ones = np.ones((1, 3, 3))
    assert np.allclose(lowered("avg_pool2d(x, kernel=3, stride=2, padding=1)", x=ones)[0], [[4 / 9, 4 / 9], [4 / 9, 4 / 9]])
    assert np.array_equal(lowered("max_pool2d(x, kernel=2, stride=1, padding=1)", x=-ones)[0], -np.ones((4, 4)))


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, mask: np.ndarray | None = None) -> np.ndarray:
    s = q @ np.swapaxes(k, -1, -2) * scale + (0 if mask is None else mask)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True) @ v


def test_attention_scale_mask_and_causal() -> None:
    q, k, v = RNG.normal(size=(2, 3, 3)), RNG.normal(size=(2, 4, 3)), RNG.normal(size=(2, 4, 2))
    m = RNG.normal(size=(3, 4))
    assert np.allclose(lowered("scaled_dot_product_attention(q, k, v)", q=q, k=k, v=v), attention(q, k, v, 3**-0.5),
                       rtol=1e-13)
    assert np.allclose(lowered("scaled_dot_product_attention(q, k, v, m, scale=0.25)", q=q, k=k, v=v, m=m),
                       attention(q, k, v, 0.25, m), rtol=1e-13)
    causal = np.where(np.tril(np.ones((3, 4))) > 0, 0.0, -np.inf)
    assert np.allclose(lowered("scaled_dot_product_attention(q, k, v, causal=1)", q=q, k=k, v=v),
                       attention(q, k, v, 3**-0.5, causal), rtol=1e-13)


SHAPES = [
    ("batch_norm(x, w)", {"x": (2, 3, 2), "w": (2,)}, 1, "batch_norm: weight must have shape [3] (one per channel)"),
    ("batch_norm(x)", {"x": (1, 3)}, 1, "batch_norm: needs more than one value per channel"),
    ("batch_norm(x)", {"x": (4,)}, 1, "batch_norm: needs input [N, C, ...], got [4]"),
    ("1 + group_norm(x, groups=3)", {"x": (2, 4, 2)}, 5, "groups=3 must be >= 1 and divide the 4 channels"),
    ("instance_norm(x)", {"x": (2, 3, 1)}, 1, "needs more than one value per instance"),
    ("rms_norm(x, w, eps=0.1)", {"x": (2, 3), "w": (2,)}, 1, "rms_norm: weight must have shape [3]"),
    ("layer_norm(x, w, b)", {"x": (2, 3), "w": (3,), "b": (2,)}, 1, "layer_norm: bias must have shape [3]"),
    ("linear(x, w)", {"x": (2, 3), "w": (3, 2)}, 1, "linear: needs input [..., in] and weight [out, in]"),
    ("linear(x, w, b)", {"x": (2, 3), "w": (4, 3), "b": (3,)}, 1, "linear: bias must have shape [4]"),
    ("conv2d(x, w, groups=2)", {"x": (1, 3, 4, 4), "w": (2, 1, 2, 2)}, 1, "groups=2 must divide the input channels (3)"),
    ("conv2d(x, w, dilation=4)", {"x": (1, 1, 4, 4), "w": (1, 1, 2, 2)}, 1, "kernel [2, 2] (dilation 4) is larger"),
    ("conv1d(x, w)", {"x": (1, 1, 4, 4), "w": (1, 1, 2, 2)}, 1, "conv1d: needs input [N, C, L] and a weight with 3 axes"),
    ("conv2d(x, w, b)", {"x": (1, 1, 4, 4), "w": (2, 1, 2, 2), "b": (1,)}, 1, "bias must have shape [2]"),
    ("conv_transpose2d(x, w, padding=2)", {"x": (1, 1, 1, 1), "w": (1, 1, 2, 2)}, 1, "padding 2 leaves no output"),
    ("conv_transpose2d(x, w)", {"x": (1, 2, 3, 3), "w": (3, 1, 2, 2)}, 1, "has 2 channels, weight [3, 1, 2, 2] expects 3"),
    ("max_pool2d(x, kernel=2, padding=2)", {"x": (1, 1, 4, 4)}, 1, "padding 2 is more than half the kernel 2"),
    ("avg_pool2d(x, kernel=5)", {"x": (1, 1, 4, 4)}, 1, "kernel 5 is larger than the padded input [4, 4]"),
    ("avg_pool2d(x, kernel=2)", {"x": (4, 4)}, 1, "needs input [N, C, H, W] or [C, H, W]"),
    ("scaled_dot_product_attention(q, k, v)", {"q": (2, 3), "k": (4, 2), "v": (4, 2)}, 1, "do not fit"),
    ("scaled_dot_product_attention(q, k, v, m, causal=1)", {"q": (2, 3), "k": (2, 3), "v": (2, 3), "m": (2, 2)}, 1,
     "a mask and causal=1 together"),
    ("scaled_dot_product_attention(q, k, v, m)", {"q": (2, 3), "k": (4, 3), "v": (4, 3), "m": (3, 4)}, 1,
     "mask [3, 4] does not broadcast to the scores [2, 4]"),
    ("scaled_dot_product_attention(q, k, v, causal=2)", {"q": (2, 3), "k": (2, 3), "v": (2, 3)}, 1, "causal= takes 0 or 1"),
    ("embedding(i, t)", {"i": (2,), "t": (3,)}, 1, "embedding: needs a table [rows, dim]"),
]


@pytest.mark.parametrize("text, shapes, col, message", SHAPES, ids=[s[3][:40] for s in SHAPES])
def test_shape_errors_name_the_op_at_its_column(text: str, shapes: dict[str, tuple[int, ...]], col: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        build_tensor(parse(text), shapes, frozenset({"i"}))
    assert info.value.col == col
    assert message in info.value.message


@pytest.mark.parametrize("text, message", [
    ("rms_norm(x)", "rms_norm needs the keyword eps="),
    ("batch_norm(x, w, b, c)", "batch_norm takes 1 to 3 arguments, got 4"),
    ("linear(x)", "linear takes 2 to 3 arguments, got 1"),
    ("max_pool2d(x, stride=1)", "max_pool2d needs the keyword kernel="),
    ("conv2d(x, w, groups=1.5)", "conv2d: groups= takes an integer, got 1.5"),
    ("batch_norm(x, eps=\"a\")", "batch_norm: eps= takes a number"),
    ("group_norm(x, groups=2, momentum=0.1)", "group_norm has no keyword 'momentum'"),
])
def test_signature_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse(text)


def test_embedding_index_must_be_data(tmp_path: Path) -> None:
    with pytest.raises(ExpressionError, match="embedding: argument 1 must be an input marked"):
        build_tensor(parse("embedding(i, t)"), {"i": (2,), "t": (3, 2)})


@pytest.mark.parametrize("index, message", [("[0, 3]", "embedding: index 3 is not an integer in [0, 3)"),
                                            ("[0.5, 1]", "embedding: index 0.5 is not an integer in [0, 3)"),
                                            ("[-1, 1]", "embedding: index -1 is not an integer in [0, 3)")])
def test_an_index_out_of_range_is_a_located_load_error(tmp_path: Path, index: str, message: str) -> None:
    code, _, err = run_file(tmp_path, f"""\
  - id: lookup
    expr: embedding(i, t)
    data_inputs: [i]
    at: {{i: {index}, t: [[1, 2], [3, 4], [5, 6]]}}
""")
    assert code == 2
    assert f"case.gradspec.yaml:6:9: [lookup] point 0 is outside the domain: {message}" in err


def test_a_tie_in_max_pool_is_relus_kink_and_must_be_declared(tmp_path: Path) -> None:
    case = """\
  - id: ties
    expr: max_pool2d(x, kernel=2)
    at: {x: [[[[1, 1], [0, -1]]]]}
"""
    code, _, err = run_file(tmp_path, case)
    assert code == 2 and "[ties] point 0 lies on a kink (relu at 0); declare `kink: convention` or `kink: any`" in err
    code, out, _ = run_file(tmp_path, case + "    kink: any\n")
    assert code == 0 and "1 pass" in out
