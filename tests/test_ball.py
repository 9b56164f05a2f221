"""The ball-arithmetic kernels against the lowering (the scalar tape), which stays the definition."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import pytest

from gradspec.errors import DomainError
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from gradspec.ops.table import OPS, TENSOR_OPS
from gradspec.reference import tensor
from gradspec.reference.ball import BallExact, Unsupported, ball_tensor, supported
from gradspec.reference.ball_ops import depths
from gradspec.reference.ball_scalar import SCALAR
from gradspec.reference.kernels import TENSOR
from gradspec.reference.store import STORE
from gradspec.reference.tensor import TensorExact, exact_tensor

# Every kernel, on small shapes that broadcast, batch and pad; each line names the kernels it covers.
CASES: list[tuple[str, dict[str, tuple[int, ...]]]] = [
    ("sum(x) + sum(x, axis=0)", {"x": (3, 4)}),
    ("mean(x, axis=1) * mean(x)", {"x": (3, 5)}),
    ("logsumexp(x, axis=0) - logsumexp(x)", {"x": (4, 3)}),
    ("softmax(x, axis=0)", {"x": (3, 4)}),
    ("log_softmax(x, axis=-1)", {"x": (2, 5)}),
    ("layer_norm(x)", {"x": (3, 6)}),
    ("layer_norm(x, eps=0)", {"x": (2, 4)}),
    ("reshape(x, shape=[6, 2]) @ transpose(w)", {"x": (3, 4), "w": (5, 2)}),
    ("permute(x, axes=[2, 0, 1])", {"x": (2, 3, 4)}),
    ("permute(x, axes=[0, -2, -1, 1])", {"x": (1, 2, 3, 4)}),  # negative axes (an OpInfo sample)
    ("a @ b", {"a": (2, 1, 3, 2), "b": (3, 2, 4)}),
    ("a @ v + v @ transpose(a)", {"a": (3, 3), "v": (3,)}),
    ("conv2d(x, w)", {"x": (2, 2, 5, 5), "w": (3, 2, 3, 3)}),
    ("conv2d(x, w, stride=2, padding=1)", {"x": (1, 3, 6, 5), "w": (2, 3, 3, 2)}),
    ("x + y - x * y / (y * y + 1) - (-x)", {"x": (3, 1), "y": (4,)}),
    ("exp(x) + log(x * x + 1) + sin(x) + cos(x) + sqrt(x * x + 2)", {"x": (7,)}),
    ("x ** 3 + (x * x + 1) ** 0.5 + (x * x + 1) ** y", {"x": (4,), "y": (4,)}),
    ("relu(x) + abs(x)", {"x": (6,)}),
]


def test_an_op_without_a_kernel_whose_partial_is_rebuilt_runs_on_the_scalar_tape() -> None:
    shapes = {"x": (2, 3), "w": (3,)}
    graph = build_tensor(parse("sigmoid(x @ w)"), shapes)
    assert not supported(graph)
    with pytest.raises(Unsupported):
        ball_tensor(graph, draw(shapes, 0))
    assert isinstance(exact_tensor(graph, draw(shapes, 0)), TensorExact)


@pytest.mark.parametrize(("text", "shapes"), [("tanh(x @ w) * 3", {"x": (3, 4), "w": (4, 2)}),
                                              ("sum(tanh(x * 10) * x) + tanh(tanh(x) * 20)", {"x": (5,)})])
def test_tanh_is_swept_twice_and_its_rebuilt_partial_kept_apart_as_the_tape_keeps_it(
        text: str, shapes: dict[str, tuple[int, ...]]) -> None:
    # Engines rebuild tanh's partial as 1 - t*t from the rounded output: the ball reference sweeps the tape
    # without what that loses and with it, the difference the rebuilt allowance (imprecise, never pass)
    graph = build_tensor(parse(text), shapes)
    point = draw(shapes, 1)
    ball, tape = exact_tensor(graph, point), tensor._exact_tensor(graph, point)
    assert isinstance(ball, BallExact) and ball.wide is not None
    agree(ball.value, tape.value)
    cot = np.random.default_rng(4).integers(-1024, 1025, size=graph.shape) / 1024
    got, want = ball.vjp(cot), tape.vjp(cot)
    for name in want.exact:
        agree(got.exact[name], want.exact[name])
        assert bounded(got.rounding[name], want.rounding[name]) <= 1.5
        assert np.max(want.rebuilt[name]) > 0
        assert bounded(got.rebuilt[name], want.rebuilt[name]) <= 1.5


def draw(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, Any]:
    """Decimals with three digits (most are not binary floats, so inputs carry their representation error)."""
    rng = random.Random(seed)
    out = {}
    for name, shape in shapes.items():
        values = [Fraction(rng.choice((-1, 1)) * rng.randint(1, 1999), 1000) for _ in range(int(np.prod(shape)))]
        out[name] = np.array(values, dtype=object).reshape(shape)
    return out


def both(text: str, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> tuple[BallExact, TensorExact]:
    graph = build_tensor(parse(text), shapes)
    point = draw(shapes, seed)
    return ball_tensor(graph, point), tensor._exact_tensor(graph, point)


def agree(ball: Any, exact: Any) -> None:
    with mpmath.workdps(60):
        for index in np.ndindex(np.shape(exact)):
            assert abs(mpmath.mpf(ball[index]) - mpmath.mpf(exact[index])) < mpmath.mpf("1e-30"), index


def bounded(ball: Any, tape: Any) -> float:
    """The ball path's rounding bound is never below the tape's (bar float rounding of the bound itself);
    returns how many times the tape's it is at most."""
    tape = np.asarray(tape, dtype=float)
    assert np.all(ball >= tape * (1 - 1e-9))
    return float(np.max(np.where(tape > 0, ball / np.where(tape > 0, tape, 1), 1.0), initial=1.0))


@pytest.mark.parametrize(("text", "shapes"), CASES, ids=[c[0] for c in CASES])
def test_each_kernel_agrees_with_the_lowering(text: str, shapes: dict[str, tuple[int, ...]]) -> None:
    ball, tape = both(text, shapes)
    agree(ball.value, tape.value)
    np.testing.assert_array_equal(ball.value_floats, tape.value_floats)
    assert bounded(ball.value_rounding, tape.value_rounding) <= 1.5
    rng = np.random.default_rng(3)
    for _ in range(2):
        cot = rng.integers(-1024, 1025, size=ball.graph.shape) / 1024
        got, want = ball.vjp(cot), tape.vjp(cot)
        for name in want.exact:
            agree(got.exact[name], want.exact[name])
            np.testing.assert_array_equal(got.floats[name], want.floats[name])
            assert bounded(got.rounding[name], want.rounding[name]) <= 1.5
            assert [s for s, _ in got.copies.get(name, [])] == [s for s, _ in want.copies.get(name, [])]
            for (_, g), (_, w) in zip(got.copies.get(name, []), want.copies.get(name, []), strict=True):
                np.testing.assert_array_equal(g, w)
    assert 0 <= ball.radius < 1e-30  # the reference certifies itself: every ball is far below any float's ulp


def test_every_kernel_is_exercised_and_every_table_row_is_known() -> None:
    used = set()
    for text, shapes in CASES:
        used |= {s.op for s in build_tensor(parse(text), shapes).steps if s.op}
    assert set(SCALAR) <= used and set(TENSOR) <= used
    assert set(SCALAR) <= set(OPS) and set(TENSOR) <= set(TENSOR_OPS)


def test_a_fraction_cotangent_is_exact() -> None:
    ball, tape = both("softmax(x, axis=-1)", {"x": (2, 3)})
    cot = np.array([[Fraction(1, 3), Fraction(-2, 7), Fraction(5, 11)]] * 2, dtype=object)
    agree(ball.vjp(cot).exact["x"], tape.vjp(cot).exact["x"])


def test_pairwise_depths_follow_the_lowering() -> None:
    from gradspec.ops.lowering import _sum

    class Count:  # a backend whose add node is the list of terms below it, each with its additions so far
        def op(self, name: str, a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
            return [(t, d + 1) for t, d in a + b]

        def shift(self, xs: object) -> None:
            return None

    for n in range(1, 70):
        tree = _sum(Count(), [[(t, 0)] for t in range(n)])
        assert [d for _, d in sorted(tree)] == list(depths(n)), n
    assert list(depths(1)) == [0]
    assert list(depths(4)) == [2, 2, 2, 2]
    assert list(depths(5)) == [3, 3, 3, 3, 1]  # ((a+b)+(c+d))+e
    assert list(depths(3)) == [2, 2, 1]


def test_ops_without_a_kernel_run_on_the_scalar_tape() -> None:
    graph = build_tensor(parse("max(x, axis=0) + cross_entropy(z, t)"), {"x": (3, 2), "z": (2, 2), "t": (2,)},
                         frozenset({"t"}))
    assert not supported(graph)
    point = {"x": draw({"x": (3, 2)}, 0)["x"], "z": draw({"z": (2, 2)}, 1)["z"],
             "t": np.array([Fraction(0), Fraction(1)], dtype=object)}
    assert isinstance(exact_tensor(graph, point), TensorExact)
    with pytest.raises(Unsupported):
        ball_tensor(graph, point)


def test_a_kink_or_a_domain_edge_runs_on_the_scalar_tape() -> None:
    graph = build_tensor(parse("relu(x - 1)"), {"x": (2,)})
    point = {"x": np.array([Fraction(1), Fraction(2)], dtype=object)}
    with pytest.raises(Unsupported):
        ball_tensor(graph, point)
    ref = exact_tensor(graph, point)
    assert isinstance(ref, TensorExact) and ref.kinks == ("relu at 0",)
    graph = build_tensor(parse("log(x - 1)"), {"x": (2,)})
    with pytest.raises(DomainError, match="log needs x > 0") as err:
        exact_tensor(graph, point)
    assert err.value.col == 1
    graph = build_tensor(parse("x / (x - 2)"), {"x": (2,)})
    with pytest.raises(DomainError, match="division by zero"):
        exact_tensor(graph, point)


def test_supported_graphs_take_the_ball_path() -> None:
    graph = build_tensor(parse("layer_norm(softmax(x @ w, axis=-1))"), {"x": (4, 4), "w": (4, 4)})
    point = draw({"x": (4, 4), "w": (4, 4)}, 2)
    ref = exact_tensor(graph, point)
    assert isinstance(ref, BallExact)
    assert ref.radius < 1e-30


def test_the_largest_radius_is_in_the_result_and_its_json_record() -> None:
    import gradspec
    from gradspec.report.json_format import check_record

    result = gradspec.check("layer_norm(softmax(x, axis=-1))", {"x": [[0.1, -0.7, 2.5], [1.25, 0.3, -0.2]]})
    assert result.verdict.value == "pass"
    assert result.radius is not None and 0 < result.radius < 1e-30
    assert check_record(result)["radius"] == result.radius
    scalar = gradspec.check("x * y", {"x": 0.5, "y": 2.0})
    assert scalar.radius is None and check_record(scalar)["radius"] is None


def test_remembered_references_are_bounded_by_their_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STORE.tensors, "budget", 100)
    STORE.tensors.clear()
    graph = build_tensor(parse("softmax(x, axis=-1)"), {"x": (2, 10)})  # 20 + 20 elements over its steps
    refs = [exact_tensor(graph, draw({"x": (2, 10)}, seed)) for seed in range(4)]
    assert len(STORE.tensors) == 2
    assert exact_tensor(graph, draw({"x": (2, 10)}, 3)) is refs[3]
    assert exact_tensor(graph, draw({"x": (2, 10)}, 2)) is refs[2]


@pytest.mark.parametrize(("text", "shapes"), [("sum(x * y)", {"x": (3,), "y": (3,)}), ("s * s", {"s": ()}),
                                              ("sum(x) * sum(x)", {"x": (3,)}), ("logsumexp(x) * s", {"x": (3,), "s": ()})])
def test_scalar_outputs_and_gradients_are_arrays(text: str, shapes: dict[str, tuple[int, ...]]) -> None:
    ball, tape = both(text, shapes)
    assert isinstance(ball.value, np.ndarray) and ball.value.shape == ()
    agree(ball.value, tape.value)
    got = ball.vjp(np.asarray(0.5))
    for name, want in tape.vjp(np.asarray(0.5)).exact.items():
        assert isinstance(got.exact[name], np.ndarray) and got.exact[name].shape == want.shape
        agree(got.exact[name], want)
