"""The indexing and shape ops (gradspec.ops.index_rows): shape rules, the element-wise definitions
against NumPy's own functions, exact gradients of the ops that only move elements, every library's
spelling against the exact reference, and bad input refused with a located load error (exit 2)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradspec.errors import ExpressionError
from gradspec.graph.tensor import TensorGraph, build_tensor
from gradspec.lang.expr import parse
from gradspec.ops.index_rows import torch_items
from gradspec.ops.shapes import index as shapes
from gradspec.reference.tensor import exact_tensor

X = np.array([[0.5, -1.0, 2.0, 3.5], [1.5, 0.25, -2.0, -0.75], [4.0, -3.0, 0.125, 1.0]])  # [3, 4]
T = np.array([[0, 0, 3], [3, 1, 1]])  # gather's index: repeats, both ends, 2 rows of x's 3
V = np.array([1.0, -2.0, 0.5])


def fractions(a: np.ndarray) -> Any:
    return np.vectorize(lambda v: Fraction(float(v)), otypes=[object])(a) if a.size else a


def lay_out(text: str, inputs: Mapping[str, np.ndarray], data: Sequence[str] = ()) -> tuple[TensorGraph, Any]:
    graph = build_tensor(parse(text), {n: a.shape for n, a in inputs.items()}, frozenset(data))
    return graph, exact_tensor(graph, {n: fractions(np.asarray(a, dtype=float)) for n, a in inputs.items()})


# text, inputs, data inputs, what NumPy computes
VALUES: list[tuple[str, dict[str, np.ndarray], tuple[str, ...], Callable[..., np.ndarray]]] = [
    ("x[1]", {"x": X}, (), lambda x: x[1]),
    ("x[-1, ::-1]", {"x": X}, (), lambda x: x[-1, ::-1]),
    ("x[:-1:2, 1:3]", {"x": X}, (), lambda x: x[:-1:2, 1:3]),
    ("x[..., None]", {"x": X}, (), lambda x: x[..., None]),
    ("x[None, 2, ..., -3::-2]", {"x": X}, (), lambda x: x[None, 2, ..., -3::-2]),
    ("x[1][2]", {"x": X}, (), lambda x: np.asarray(x[1][2])),
    ("gather(x, t, axis=1)", {"x": X, "t": T}, ("t",), lambda x, t: np.take_along_axis(x[:2], t, axis=1)),
    ("gather(x, t, axis=0)", {"x": X, "t": T[:, :2] % 3}, ("t",),
     lambda x, t: np.take_along_axis(x[:, :2], t, axis=0)),
    ("index_select(x, t, axis=-1)", {"x": X, "t": np.array([3, 0, 3])}, ("t",), lambda x, t: x[:, [3, 0, 3]]),
    ("index_select(x, t, axis=0)", {"x": X, "t": np.array([2])}, ("t",), lambda x, t: x[[2]]),
    ("stack(x, x * 2, axis=1)", {"x": X}, (), lambda x: np.stack([x, x * 2], axis=1)),
    ("stack(x, axis=-1)", {"x": X}, (), lambda x: x[..., None]),
    ("concat(x, x[:1], axis=0)", {"x": X}, (), lambda x: np.concatenate([x, x[:1]], axis=0)),
    ("concat(x, x, x, axis=-1)", {"x": X}, (), lambda x: np.concatenate([x, x, x], axis=1)),
    ("pad(x, pad=[1, 0, 2, 1], value=0.5)", {"x": X}, (),
     lambda x: np.pad(x, [(2, 1), (1, 0)], constant_values=0.5)),
    ("pad(v, pad=[0, 2])", {"v": V}, (), lambda v: np.pad(v, [(0, 2)])),
    ("flip(x, axis=-1)", {"x": X}, (), lambda x: x[:, ::-1]),
    ("roll(x, shift=5, axis=1)", {"x": X}, (), lambda x: np.roll(x, 5, axis=1)),
    ("roll(x, shift=-1, axis=0)", {"x": X}, (), lambda x: np.roll(x, -1, axis=0)),
    ("tril(x, k=-1)", {"x": X}, (), lambda x: np.tril(x, -1)),
    ("triu(x, k=1)", {"x": X}, (), lambda x: np.triu(x, 1)),
    ("tril(x)", {"x": X}, (), np.tril),
    ("triu(x, k=-5)", {"x": X}, (), lambda x: x),
    ("diagonal(x)", {"x": X}, (), np.diagonal),
    ("diagonal(y)", {"y": X.reshape(2, 3, 2)}, (), lambda y: np.diagonal(y, axis1=0, axis2=1)),
    ("expand(v, shape=[2, -1])", {"v": V}, (), lambda v: np.broadcast_to(v, (2, 3))),
    ("expand(x[:, :1], shape=[2, 3, 4])", {"x": X}, (), lambda x: np.broadcast_to(x[:, :1], (2, 3, 4))),
    ("squeeze(x[None, :, None, 1:2])", {"x": X}, (), lambda x: x[:, 1]),
    ("squeeze(x[:, :1], axis=-1)", {"x": X}, (), lambda x: x[:, 0]),
    ("unsqueeze(x, axis=-1)", {"x": X}, (), lambda x: x[..., None]),
    ("unsqueeze(v, axis=0)", {"v": V}, (), lambda v: v[None]),
    ("one_hot(t, classes=4) * v[:, None]", {"t": np.array([3, 0, 3]), "v": V}, ("t",),
     lambda t, v: np.eye(4)[t] * v[:, None]),
    ('einsum("ij,jk->ik", x, y)', {"x": X, "y": X.T}, (), lambda x, y: x @ y),
    ('einsum("ij,kj", x, x)', {"x": X}, (), lambda x: x @ x.T),
    ('einsum("ii", y)', {"y": X[:, :3]}, (), lambda y: np.asarray(np.trace(y))),
    ('einsum("ij->", x)', {"x": X}, (), lambda x: np.asarray(x.sum())),
    ('einsum("i,ij,j->i", v, x, w)', {"v": V, "x": X, "w": X[0]}, (), lambda v, x, w: v * (x @ w)),
    ('einsum("i,j->ji", v, w)', {"v": V, "w": X[0]}, (), lambda v, w: np.outer(w, v)),
]


@pytest.mark.parametrize("text, inputs, data, expected", VALUES, ids=[v[0] for v in VALUES])
def test_values_are_numpys(text: str, inputs: dict[str, np.ndarray], data: tuple[str, ...],
                           expected: Callable[..., np.ndarray]) -> None:
    graph, ref = lay_out(text, inputs, data)
    want = expected(*inputs.values())
    assert graph.shape == want.shape
    np.testing.assert_array_equal(ref.value_floats, want)  # every value here is exact in binary


def scatter(shape: tuple[int, ...], at: Callable[[tuple[int, ...]], tuple[int, ...]], c: np.ndarray) -> np.ndarray:
    """The gradient of sum(c * y) where y[i] = x[at(i)]: each cotangent added where its element came from."""
    out = np.zeros(shape)
    for i in np.ndindex(c.shape):
        out[at(i)] += c[i]
    return out


def test_gradients_add_up_where_an_element_is_used_twice() -> None:
    c = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
    _, ref = lay_out("gather(x, t, axis=1)", {"x": X, "t": T}, ("t",))
    want = scatter(X.shape, lambda i: (i[0], T[i]), c)
    np.testing.assert_array_equal(ref.vjp(fractions(c)).floats["x"], want)
    assert want[0, 0] == 3.0 and want[1, 1] == 48.0 and want[2].sum() == 0  # the repeats, the unread row

    c = np.arange(1.0, 10.0).reshape(3, 3)
    _, ref = lay_out("index_select(x, t, axis=1)", {"x": X, "t": np.array([3, 0, 3])}, ("t",))
    want = np.zeros(X.shape)
    want[:, 3], want[:, 0] = c[:, 0] + c[:, 2], c[:, 1]
    np.testing.assert_array_equal(ref.vjp(fractions(c)).floats["x"], want)

    c = np.arange(1.0, 13.0).reshape(3, 2, 2)  # stack(v, v): each element's gradient is its two copies' sum
    v = X[:2, :2]
    _, ref = lay_out("stack(v, v, axis=1)", {"v": v})
    np.testing.assert_array_equal(ref.vjp(fractions(c[:2])).floats["v"], c[:2, 0] + c[:2, 1])


def test_expand_sums_the_copies_and_pad_crops() -> None:
    c = np.arange(1.0, 13.0).reshape(4, 3)
    _, ref = lay_out("expand(v, shape=[4, 3])", {"v": V})
    np.testing.assert_array_equal(ref.vjp(fractions(c)).floats["v"], c.sum(axis=0))
    c = np.arange(1.0, 31.0).reshape(6, 5)
    _, ref = lay_out("pad(x, pad=[1, 0, 2, 1], value=9)", {"x": X})
    np.testing.assert_array_equal(ref.vjp(fractions(c)).floats["x"], c[2:5, 1:5])
    c = np.arange(1.0, 13.0).reshape(3, 4)
    _, ref = lay_out("roll(x, shift=5, axis=1)", {"x": X})
    np.testing.assert_array_equal(ref.vjp(fractions(c)).floats["x"], np.roll(c, -5, axis=1))
    _, ref = lay_out("tril(x, k=1)", {"x": X})
    np.testing.assert_array_equal(ref.vjp(fractions(c)).floats["x"], np.tril(c, 1))


def test_einsum_gradients_are_the_products_of_the_other_operands() -> None:
    y = X.T[:, :2]
    c = np.array([[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]])
    _, ref = lay_out('einsum("ij,jk->ik", x, y)', {"x": X, "y": y})
    g = ref.vjp(fractions(c)).floats
    np.testing.assert_allclose(g["x"], c @ y.T, rtol=1e-15)
    np.testing.assert_allclose(g["y"], X.T @ c, rtol=1e-15)
    _, ref = lay_out('einsum("ii", y)', {"y": X[:, :3]})
    np.testing.assert_array_equal(ref.vjp(fractions(np.asarray(2.0))).floats["y"], 2 * np.eye(3))


@pytest.mark.parametrize("shape, items", [
    ((5,), (slice(None, None, -1),)),
    ((5,), (slice(3, 0, -2),)),
    ((5, 4), (slice(-1, None, -3), None, slice(None, None, -2))),
    ((4, 3), (1, slice(-2, None, -1))),
    ((6,), (slice(10, -10, -4),)),
])
def test_torch_subscripts_with_negative_steps_flip_first(shape: tuple[int, ...], items: tuple[Any, ...]) -> None:
    x = np.arange(float(np.prod(shape))).reshape(shape)
    flips, taken = torch_items(shape, items)
    assert all(not isinstance(i, slice) or i.step is None or i.step > 0 for i in taken)
    np.testing.assert_array_equal(np.flip(x, flips)[taken], x[items])


def test_the_subscript_items_round_trip() -> None:
    for text in ["0", "-1", "1:3", "::-1", ":-1:2", "..., None", "None, 2, ..., -3::-2", ":"]:
        items = shapes.index_items(text)
        assert ", ".join("..." if i is Ellipsis else "None" if i is None else
                         shapes.slice_text(i) if isinstance(i, slice) else str(i) for i in items) == text


def test_shape_rules() -> None:
    assert shapes.index("index", [(3, 4, 5)], {"spec": "..., 0"}) == (3, 4)
    assert shapes.index("index", [(3, 4)], {"spec": "None, -1, 1::2"}) == (1, 2)
    assert shapes.gather("gather", [(3, 4), (2, 7)], {"axis": 1}) == (2, 7)
    assert shapes.stack("stack", [(2,), (2,), (2,)], {"axis": -1}) == (2, 3)
    assert shapes.concat("concat", [(2, 1), (2, 3)], {"axis": 1}) == (2, 4)
    assert shapes.pad("pad", [(2, 3)], {"pad": [1, 1, 0, 2]}) == (4, 5)
    assert shapes.diagonal("diagonal", [(4, 2, 5)], {}) == (5, 2)
    assert shapes.expand("expand", [(3, 1)], {"shape": [2, -1, 4]}) == (2, 3, 4)
    assert shapes.squeeze("squeeze", [(1, 3, 1)], {"axis": None}) == (3,)
    assert shapes.unsqueeze("unsqueeze", [(2, 3)], {"axis": -1}) == (2, 3, 1)
    assert shapes.one_hot("one_hot", [(2,)], {"classes": 5}) == (2, 5)
    assert shapes.einsum("einsum", [(2, 3), (3, 4)], {"equation": "ij,jk"}) == (2, 4)
    assert shapes.einsum("einsum", [(3, 3)], {"equation": "ii"}) == ()


BAD_SHAPES = [
    ("x[3]", {"x": (3,)}, 2, "index: index 3 is out of range for axis 0 of size 3"),
    ("x[0, -5]", {"x": (3, 4)}, 2, "index -5 is out of range for axis 1 of size 4"),
    ("x[0, 0, 0]", {"x": (3, 4)}, 2, "too many indices (3) for a tensor of shape [3, 4]"),
    ("x[0] * 2", {"x": ()}, 2, "too many indices (1) for a scalar (0-d tensor)"),
    ("x[..., 0, ...]", {"x": (3, 4)}, 2, "at most one '...'"),
    ("x[2:1]", {"x": (3,)}, 2, "slice 2:1 selects nothing from axis 0 of size 3"),
    ("sum(x) + gather(x, t, axis=2)", {"x": (3, 4), "t": (3, 4)}, 10, "gather: axis 2 is out of range"),
    ("gather(x, t, axis=0)", {"x": (3, 4), "t": (3, 5)}, 1, "index [3, 5] needs the 2 axes of x [3, 4]"),
    ("index_select(x, t, axis=0)", {"x": (3, 4), "t": (2, 2)}, 1, "the index must be 1-D, got [2, 2]"),
    ("stack(x, y)", {"x": (3,), "y": (2,)}, 1, "every operand needs the same shape, got [3], [2]"),
    ("concat(x, y, axis=0)", {"x": (3, 1), "y": (2, 2)}, 1, "operands [3, 1], [2, 2] differ off axis 0"),
    ("concat(x, y)", {"x": (), "y": ()}, 1, "needs operands with at least one axis"),
    ("pad(x, pad=[1])", {"x": (3,)}, 1, "pad= needs (left, right) pairs"),
    ("pad(x, pad=[1, 1, 1, 1])", {"x": (3,)}, 1, "pad= needs (left, right) pairs"),
    ("pad(x, pad=[-1, 0])", {"x": (3,)}, 1, "pad sizes must be >= 0"),
    ("flip(x, axis=1)", {"x": (3,)}, 1, "flip: axis 1 is out of range for shape [3]"),
    ("tril(x)", {"x": (3,)}, 1, "needs at least two axes (a matrix)"),
    ("diagonal(x)", {"x": (3,)}, 1, "needs at least two axes"),
    ("expand(x, shape=[4])", {"x": (3,)}, 1, "cannot expand [3] to [4]"),
    ("expand(x, shape=[3])", {"x": (2, 3)}, 1, "has fewer axes"),
    ("squeeze(x, axis=0)", {"x": (3,)}, 1, "axis 0 of [3] has size 3, not 1"),
    ("unsqueeze(x, axis=3)", {"x": (3,)}, 1, "axis 3 is out of range"),
    ('einsum("ij,jk->ik", x)', {"x": (2, 3)}, 1, "names 2 operand(s), the call gives 1"),
    ('einsum("ij,jk->ik", x, y)', {"x": (2, 3), "y": (2, 2)}, 1, "letter 'j' has sizes 3 and 2"),
    ('einsum("ijk", x)', {"x": (2, 3)}, 1, "operand 1 is [2, 3], but 'ijk' names 3 axes"),
    ('einsum("ij->q", x)', {"x": (2, 3)}, 1, "the output 'q' must name distinct letters"),
    ('einsum("ij->ii", x)', {"x": (2, 3)}, 1, "the output 'ii' must name distinct letters"),
    ('einsum("i_j", x)', {"x": (2, 3)}, 1, "may use only letters, ',' and one '->'"),
    ('einsum("i->j->i", x)', {"x": (2,)}, 1, "may use only letters"),
]


@pytest.mark.parametrize("text, given, col, phrase", BAD_SHAPES, ids=[b[0] for b in BAD_SHAPES])
def test_bad_shapes_are_errors_at_the_column(text: str, given: dict[str, tuple[int, ...]], col: int,
                                             phrase: str) -> None:
    data = frozenset({"t"}) & set(given)
    with pytest.raises(ExpressionError) as info:
        build_tensor(parse(text), given, data)
    assert info.value.col == col, info.value
    assert phrase in info.value.message


def test_index_slots_take_integer_data_inputs_only() -> None:
    with pytest.raises(ExpressionError, match="gather: argument 2 must be an input marked `differentiable: false`"):
        build_tensor(parse("gather(x, t, axis=0)"), {"x": (3,), "t": (3,)})
    with pytest.raises(ExpressionError, match="one_hot: argument 1 must be an input"):
        build_tensor(parse("one_hot(t * 2, classes=3) * x"), {"x": (3,), "t": (3,)}, frozenset({"t"}))


# -- every library's spelling against the exact reference ---------------------------------------------------


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_every_spelling_matches_the_exact_reference(library: str) -> None:
    pytest.importorskip(library)
    from gradspec.engines.resolve import resolve
    from gradspec.engines.tensor import run_tensor

    engine = resolve(library)
    rng = np.random.default_rng(5)
    for text, inputs, data, _ in VALUES:
        graph, ref = lay_out(text, inputs, data)
        cotangent = rng.integers(-3, 4, size=graph.shape).astype(float)
        got = run_tensor(engine, graph, {n: np.asarray(a, dtype=float) for n, a in inputs.items()}, [cotangent])
        np.testing.assert_allclose(got.value, ref.value_floats, rtol=1e-15, atol=0, err_msg=text)
        want = ref.vjp(fractions(cotangent)).floats
        for name, g in got.grads[0].items():
            np.testing.assert_allclose(g, want[name], rtol=1e-15, atol=1e-300, err_msg=f"{text}: d/d{name}")


# -- bad input in case files: located errors, exit 2 ---------------------------------------------------------


def test_bad_input_in_a_case_file_is_a_located_error(write_case: Callable[..., Path],
                                                    assert_invalid: Callable[..., list[str]]) -> None:
    path = write_case("""
        cases:
          - id: out-of-range
            expr: sum(x[3])
            at: {x: [1.0, 2.0, 3.0]}
          - id: scalar
            expr: x[0] * 2
            at: {x: 1.5}
          - id: too-many
            expr: x[0, 1, 2]
            at: {x: [[1.0, 2.0]]}
          - id: unknown-keyword
            expr: flip(x, dim=0)
            at: {x: [1.0, 2.0]}
          - id: string-for-a-number
            expr: roll(x, shift="1", axis=0)
            at: {x: [1.0, 2.0]}
          - id: differentiable-index
            expr: gather(x, t, axis=0)
            at: {x: [1.0, 2.0], t: [0, 1]}
          - id: wrong-shapes
            expr: stack(x, y, axis=0)
            at: {x: [1.0, 2.0], y: [1.0]}
          - id: bad-equation
            expr: einsum("ij,jk->ik", x, x)
            at: {x: [[1.0, 2.0]]}
        """)
    assert_invalid(path, [
        (3, 16, "index: index 3 is out of range for axis 0 of size 3"),
        (6, 12, "index: too many indices (1) for a scalar (0-d tensor)"),
        (9, 12, "too many indices (3) for a tensor of shape [1, 2]"),
        (12, 19, "flip has no keyword 'dim' (keywords: axis)"),
        (15, 25, "roll: shift= takes an integer, found '\"1\"'"),
        (18, 11, "gather: argument 2 must be an input marked `differentiable: false`"),
        (21, 11, "stack: every operand needs the same shape, got [2], [1]"),
        (24, 11, "einsum: letter 'j' has sizes 2 and 1"),
    ])


def test_bad_index_data_is_a_located_error(write_case: Callable[..., Path],
                                           assert_invalid: Callable[..., list[str]]) -> None:
    path = write_case("""
        cases:
          - id: past-the-end
            expr: gather(x, t, axis=0)
            at: {x: [1.0, 2.0], t: [0, 2]}
            data_inputs: [t]
          - id: not-an-integer
            expr: sum(index_select(x, t, axis=0))
            at: {x: [1.0, 2.0], t: [0.5]}
            data_inputs: [t]
          - id: negative-class
            expr: sum(one_hot(t, classes=2) * x)
            at: {x: [1.0, 2.0], t: [-1]}
            data_inputs: [t]
        """)
    assert_invalid(path, [
        (4, 9, "point 0 is outside the domain: gather: index 2 at [1] is not an integer in [0, 2)"),
        (8, 9, "index_select: index 0.5 at [0] is not an integer in [0, 2)"),
        (12, 9, "one_hot: index -1 at [0] is not an integer in [0, 2)"),
    ])


def test_the_cli_refuses_a_bad_subscript_with_exit_2(write_case: Callable[..., Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from gradspec.cli import main

    path = write_case("""
        cases:
          - id: bad
            expr: sum(x[0:2, 5])
            at: {x: [[1.0, 2.0], [3.0, 4.0]]}
        """)
    assert main(["run", str(path), "--engine", "builtin"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:16: [bad] expr: index: index 5 is out of range for axis 1 of size 2" in err
    assert "Traceback" not in err


def test_the_library_file_checks_every_indexing_op() -> None:
    from gradspec.casefile.loader import load_file
    from gradspec.casefile.model import data_dir
    from gradspec.ops.index_rows import ROWS

    cases = load_file(data_dir("cases") / "indexing.gradspec.yaml").cases
    used = {s.op for c in cases for s in c.spec.graph.steps if s.op}  # type: ignore[union-attr]
    assert {row.name for row in ROWS} <= used
    assert all(len(c.points) <= 2 for c in cases)  # kept tiny: every engine runs the file in the suite


def test_gather_reads_integer_data_as_positions() -> None:
    graph, ref = lay_out("gather(x, t, axis=0)", {"x": np.array([1.0, 2.0]), "t": np.array([1, 1, 0])}, ("t",))
    np.testing.assert_array_equal(ref.value_floats, [2.0, 2.0, 1.0])
    assert graph.data == {"t"} and [n for n, _ in graph.differentiable] == ["x"]
