"""Tensor graphs: every op's shape rule against NumPy/PyTorch as an independent oracle, shape errors at
the expression's column, and the tensor grammar's keyword checks."""

from __future__ import annotations

import numpy as np
import pytest

from gradspec.errors import ExpressionError
from gradspec.graph.ir import build
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from gradspec.ops.table import OPS, TENSOR_OPS

BROADCAST = [((2, 1), (2,)), ((3, 1, 2), (1, 3, 2)), ((2, 3, 2), ()), ((1, 3, 1, 7, 1), (2, 1, 5, 1, 8)), ((4,), (3, 1)),
             ((5,), (5,))]
MATMUL = [((3, 4), (4, 2)), ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
          ((1, 3, 4), (2, 4, 2)), ((5,), (2, 5, 3))]


def shape_of(text: str, **shapes: tuple[int, ...]) -> tuple[int, ...]:
    return build_tensor(parse(text), shapes).shape


@pytest.mark.parametrize("a, b", BROADCAST)
def test_elementwise_ops_broadcast_as_numpy_does(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    assert shape_of("x * y + tanh(x)", x=a, y=b) == np.broadcast_shapes(a, b)


@pytest.mark.parametrize("a, b", MATMUL)
def test_matmul_shapes_follow_numpy(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    assert shape_of("x @ y", x=a, y=b) == np.matmul(np.zeros(a), np.zeros(b)).shape


@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, -3])
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "logsumexp"])
def test_reductions_drop_the_axis(op: str, axis: int | None) -> None:
    text = f"{op}(x)" if axis is None else f"{op}(x, axis={axis})"
    assert shape_of(text, x=(2, 3, 4)) == np.sum(np.zeros((2, 3, 4)), axis=axis).shape


def test_shape_ops_follow_numpy() -> None:
    x = np.zeros((2, 3, 4))
    assert shape_of("reshape(x, shape=[4, -1])", x=(2, 3, 4)) == x.reshape(4, -1).shape
    assert shape_of("transpose(x)", x=(2, 3, 4)) == np.swapaxes(x, -1, -2).shape
    assert shape_of("permute(x, axes=[2, 0, 1])", x=(2, 3, 4)) == np.transpose(x, [2, 0, 1]).shape
    assert shape_of("softmax(x, axis=0) + log_softmax(x) + layer_norm(x)", x=(2, 3, 4)) == (2, 3, 4)


@pytest.mark.parametrize("x, w, stride, padding", [((1, 3, 8, 8), (4, 3, 3, 3), 1, 0), ((2, 1, 5, 5), (2, 1, 3, 3), 2, 1),
                                                   ((1, 2, 4, 6), (3, 2, 2, 3), 3, 2)])
def test_conv2d_shape_matches_torch(x: tuple[int, ...], w: tuple[int, ...], stride: int, padding: int) -> None:
    torch = pytest.importorskip("torch")
    want = torch.nn.functional.conv2d(torch.zeros(x), torch.zeros(w), stride=stride, padding=padding).shape
    assert shape_of(f"conv2d(x, w, stride={stride}, padding={padding})", x=x, w=w) == tuple(want)


def test_cross_entropy_is_a_scalar_of_integer_data() -> None:
    graph = build_tensor(parse("cross_entropy(z, t)"), {"z": (4, 3), "t": (4,)}, frozenset({"t"}))
    assert graph.shape == ()
    assert graph.differentiable == (("z", 0),)


SHAPE_ERRORS = [
    ("x @ y", {"x": (3, 4), "y": (5, 4)}, 3, "matmul: [3, 4] @ [5, 4]: inner dimensions 4 and 5 differ"),
    ("tanh(x) + y", {"x": (3, 4), "y": (3,)}, 9, "add: shapes [3, 4] and [3] do not broadcast (axis -1: sizes 3 and 4)"),
    ("softmax(x, axis=2)", {"x": (3, 4)}, 1, "softmax: axis 2 is out of range for shape [3, 4]"),
    ("1 + sum(x, axis=-3)", {"x": (3, 4)}, 5, "sum: axis -3 is out of range for shape [3, 4]"),
    ("reshape(x, shape=[5, 2])", {"x": (3, 4)}, 1, "reshape: cannot reshape [3, 4] (12 elements) to [5, 2]"),
    ("permute(x, axes=[0, 0])", {"x": (3, 4)}, 1, "permute: axes [0, 0] are not a permutation of the 2 axes of [3, 4]"),
    ("transpose(x)", {"x": (3,)}, 1, "transpose: needs at least two axes"),
    ("conv2d(x, w)", {"x": (1, 2, 4, 4), "w": (3, 1, 3, 3)}, 1, "conv2d: input [1, 2, 4, 4] has 2 channels, weight"),
    ("conv2d(x, w)", {"x": (1, 1, 2, 2), "w": (1, 1, 3, 3)}, 1, "kernel [3, 3] is larger than the padded input [2, 2]"),
    ("(x @ y) @ (y @ x)", {"x": (2, 3, 4), "y": (3, 4, 2)}, 4, "batch axes [2] and [3] do not broadcast"),
    ("cross_entropy(z, t)", {"z": (4, 3), "t": (4,)}, 1, "cross_entropy: argument 2 must be an input marked"),
    ("cross_entropy(z, t)", {"z": (4, 3), "t": (3,)}, 1, "needs logits [batch, classes] and targets [batch]"),
    ("layer_norm(x, eps=0)", {"x": (3, 1)}, 1, "a last axis of size 1 with eps = 0 divides by zero"),
]


@pytest.mark.parametrize("text, shapes, col, message", SHAPE_ERRORS, ids=[e[3][:40] for e in SHAPE_ERRORS])
def test_shape_errors_name_the_op_at_its_column(text: str, shapes: dict[str, tuple[int, ...]], col: int,
                                                message: str) -> None:
    data = frozenset({"t"}) if "t" in shapes and shapes["z"][0] != shapes["t"][0] else frozenset()
    with pytest.raises(ExpressionError) as info:
        build_tensor(parse(text), shapes, data)
    assert info.value.col == col
    assert message in info.value.message


def test_an_expression_of_data_only_is_refused() -> None:
    with pytest.raises(ExpressionError, match="does not depend on any differentiable input"):
        build_tensor(parse("sum(m)"), {"m": (3,)}, frozenset({"m"}))


def test_a_scalar_graph_refuses_tensor_ops() -> None:
    with pytest.raises(ExpressionError, match="sum is a tensor op"):
        build(parse("sum(x) + 1"))


def test_tensor_calls_print_back_to_the_same_program() -> None:
    text = "softmax((q @ transpose(k)) / 2, axis=-1) @ v + layer_norm(v, eps=0.001) + sum(reshape(q, shape=[2, -1]), axis=0)"
    program = parse(text)
    assert parse(str(program)).output == program.output
    assert "axis=-1" in str(program) and "shape=[2, -1]" in str(program)


def test_keyword_defaults_are_filled_in_from_the_op_row() -> None:
    call = parse("softmax(x)").output
    assert call.kwargs == (("axis", -1),)  # type: ignore[union-attr]
    assert parse("conv2d(x, w, padding=1)").output.kwargs == (  # type: ignore[union-attr]
        ("stride", 1), ("padding", 1), ("dilation", 1), ("groups", 1))


def test_an_op_row_that_does_not_declare_tensors_is_refused_in_a_tensor_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from gradspec.ops.table import REVERSE_ONLY, Capability

    assert all(Capability.TENSOR in o.capabilities for o in OPS.values())
    monkeypatch.setitem(OPS, "tanh", dataclasses.replace(OPS["tanh"], capabilities=REVERSE_ONLY))
    with pytest.raises(ExpressionError, match="tanh does not apply to tensors") as info:
        build_tensor(parse("x + tanh(x)"), {"x": (2,)})
    assert info.value.col == 5


def test_every_tensor_op_row_is_complete() -> None:
    for name, row in TENSOR_OPS.items():
        assert name not in OPS, name  # one spelling, one row
        assert row.definition and callable(row.shape) and callable(row.lower) and callable(row.torch) and callable(row.jax)
