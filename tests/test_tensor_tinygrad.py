"""Tensor cases on tinygrad, built from tinygrad's own Tensor ops: every tensor op passes on shapes and
draws written for these tests, a bug put into one of its ops fails with the op and the pattern named, an
op without a tinygrad spelling skips with the reason, and the one real disagreement found (its float32
tanh near zero) is what it is on torch's side too. tinygrad runs on its pure-Python device here, which
is slow: the shapes are small.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from gradspec.checks.tensor import check_tensor
from gradspec.engines.protocol import Engine
from gradspec.engines.resolve import resolve
from gradspec.engines.tensor import run_tensor, tensor_unsupported
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from gradspec.ops.table import TENSOR_OPS, Capability
from gradspec.results import CheckResult, Tolerance, Verdict

_LIMIT = sys.getrecursionlimit()
pytest.importorskip("tinygrad")
sys.setrecursionlimit(_LIMIT)  # tinygrad raises it for the process on import; other tests rely on the default


@pytest.fixture(autouse=True)
def _recursion_limit() -> Iterator[None]:
    """Importing tinygrad raises the interpreter's recursion limit for the whole process; each test gives
    the previous limit back, so tests elsewhere see Python's own."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, 10_000))
    yield
    sys.setrecursionlimit(before)


def engine(spec: str) -> Engine:
    made = resolve(spec)
    if getattr(made, "reason", None):
        pytest.skip(str(made.reason))
    return made


def draw(shapes: dict[str, tuple[int, ...]], seed: int, positive: tuple[str, ...] = (),
         classes: dict[str, int] | None = None) -> dict[str, Any]:
    """Inputs of the given shapes: four-decimal normals (positive ones shifted past 1/2), and for the
    names in ``classes``, class indices below the given count."""
    rng = random.Random(seed)
    out = {}
    for name, shape in shapes.items():
        arr = np.empty(shape, dtype=object)
        for index in np.ndindex(shape):
            if classes and name in classes:
                arr[index] = Fraction(rng.randrange(classes[name]))
                continue
            v = Fraction(round(rng.gauss(0, 1), 4)).limit_denominator(10_000)
            arr[index] = abs(v) + Fraction(1, 2) if name in positive else v
        out[name] = arr
    return out


def check(text: str, shapes: dict[str, tuple[int, ...]], spec: str, seed: int, positive: tuple[str, ...] = (),
          classes: dict[str, int] | None = None) -> CheckResult:
    graph = build_tensor(parse(text), shapes, frozenset(classes or ()))
    return check_tensor(graph, draw(shapes, seed, positive, classes), engine(spec), Tolerance(), seed=seed)


# Every tensor op, element-wise ops under several broadcasting patterns, and reductions over each axis,
# at shapes and seeds used nowhere in cases/ or while the adapter was written.
OPS = [
    ("softmax(x, axis=0) * log_softmax(x @ w, axis=-1)", {"x": (3, 2), "w": (2, 2)}, ()),
    ("layer_norm(x, eps=0.001) @ transpose(w)", {"x": (2, 5), "w": (3, 5)}, ()),
    ("sum(x, axis=1) * mean(x, axis=0) + max(x) - min(x, axis=0) + logsumexp(x, axis=1)", {"x": (3, 3)}, ()),
    ("permute(reshape(x, shape=[2, 3, 2]), axes=[2, 0, 1]) * transpose(y)", {"x": (12,), "y": (3, 2)}, ()),
    ("u * v + exp(b) / (1 + x ** 2) - sqrt(p) * log(p)", {"u": (3, 1), "v": (4,), "b": (), "x": (3, 4), "p": (1, 4)},
     ("p",)),
    ("conv2d(x, w, stride=2, padding=1)", {"x": (1, 1, 3, 4), "w": (2, 1, 2, 2)}, ()),
    ("sum((a @ b) * tanh(c), axis=-2)", {"a": (2, 1, 2, 3), "b": (3, 3, 2), "c": (2,)}, ()),
]


@pytest.mark.parametrize(("text", "shapes", "positive"), OPS, ids=[o[0][:32] for o in OPS])
def test_every_tensor_op_passes_on_tinygrad(text: str, shapes: dict[str, tuple[int, ...]],
                                            positive: tuple[str, ...]) -> None:
    result = check(text, shapes, "tinygrad", 9201, positive)
    assert result.verdict is Verdict.PASS, result.table()
    names = {q.name for q in result.quantities}
    assert "value" in names and {f"{n} (vjp0)" for n in shapes} <= names and {f"{n} (vjp1)" for n in shapes} <= names
    assert all(q.engine is not None for q in result.quantities)


@pytest.mark.parametrize("spec", ["tinygrad", "tinygrad:float32"])
def test_cross_entropy_with_integer_targets_passes_on_tinygrad(spec: str) -> None:
    result = check("cross_entropy(tanh(x) @ w, t)", {"x": (5, 2), "w": (2, 3), "t": (5,)}, spec, 9202,
                   classes={"t": 3})
    assert result.verdict is Verdict.PASS, result.table()
    # the targets are data: no gradient is asked for, or reported; the loss is one number: one seeded VJP,
    # and the unit cotangent's (its Jacobian)
    assert {q.name for q in result.quantities} == {"value", "x (vjp0)", "w (vjp0)", "x (jacobian)", "w (jacobian)"}


def test_layer_norm_of_a_near_constant_row_passes_in_float32() -> None:
    graph = build_tensor(parse("layer_norm(x, eps=0.0001) * y"), {"x": (2, 4), "y": (4,)})
    point = draw({"x": (2, 4), "y": (4,)}, 9203)
    point["x"][1] = [Fraction(3) + Fraction(k, 1000) for k in (1, -2, 0, 1)]
    result = check_tensor(graph, point, engine("tinygrad:float32"), Tolerance(), seed=9203)
    assert result.verdict is Verdict.PASS, result.table()


def test_tinygrad_declares_tensors_and_reports_every_vjp() -> None:
    tg = engine("tinygrad")
    graph = build_tensor(parse("softmax(x, axis=-1)"), {"x": (2, 3)})
    assert Capability.TENSOR in tg.capabilities and tensor_unsupported(tg, graph) is None
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.75]])
    ones, basis = np.ones((2, 3)), np.zeros((2, 3))
    basis[0, 2] = 1.0
    out = run_tensor(tg, graph, {"x": x}, [ones, basis])
    s = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    assert np.allclose(out.value, s, rtol=1e-14, atol=0)
    assert np.allclose(out.grads[0]["x"], 0, atol=1e-15)  # the rows of softmax sum to one
    row = s[0] * ((np.arange(3) == 2) - s[0, 2])  # d s_02 / d x_0j = s_0j (delta_2j - s_02)
    assert np.allclose(out.grads[1]["x"], [row, [0, 0, 0]], rtol=1e-14, atol=1e-17)


def _replaced(monkeypatch: pytest.MonkeyPatch, name: str, spelling: Any) -> None:
    monkeypatch.setitem(TENSOR_OPS, name, dataclasses.replace(TENSOR_OPS[name], tinygrad=spelling))


def _sign_flipped_softmax(tg: Any, a: Any, kw: dict[str, Any]) -> Any:
    s = a[0].softmax(kw["axis"])
    return 2 * s.detach() - s  # softmax's value; the negative of its backward


def _layer_norm_without_variance(tg: Any, a: Any, kw: dict[str, Any]) -> Any:
    y = a[0] - a[0].mean(-1, keepdim=True)
    return y * (y * y).mean(-1, keepdim=True).add(float(kw["eps"])).rsqrt().detach()  # the variance held constant


@pytest.mark.parametrize(("op", "spelling", "text", "shapes", "pattern"), [
    ("softmax", _sign_flipped_softmax, "sum(softmax(x @ w, axis=-1) * y)", {"x": (2, 3), "w": (3, 2), "y": (2, 2)},
     "sign flipped: engine = -exact"),
    ("layer_norm", _layer_norm_without_variance, "tanh(layer_norm(x, eps=0.01)) + x", {"x": (2, 4)},
     "a term along the output is missing"),
])
def test_a_bug_in_one_tinygrad_op_fails_and_names_the_op_and_the_pattern(
        monkeypatch: pytest.MonkeyPatch, op: str, spelling: Any, text: str, shapes: dict[str, tuple[int, ...]],
        pattern: str) -> None:
    _replaced(monkeypatch, op, spelling)
    result = check(text, shapes, "tinygrad", 9204)
    assert result.verdict is Verdict.FAIL
    assert [q.verdict for q in result.quantities if q.role == "value"] == [Verdict.PASS]
    assert result.culprit is not None and result.culprit.op == op, result.table()
    assert pattern in result.culprit.message


def test_an_op_tinygrad_does_not_spell_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    _replaced(monkeypatch, "logsumexp", None)
    result = check("tanh(logsumexp(x, axis=0))", {"x": (2, 2)}, "tinygrad", 9205)
    assert (result.verdict, result.message) == (Verdict.SKIP, "tinygrad has no logsumexp")
    assert check("tanh(x)", {"x": (2, 2)}, "tinygrad", 9205).verdict is Verdict.PASS


def test_tinygrad_float32_tanh_near_zero_is_off_by_dozens_of_ulps_where_torch_is_not() -> None:
    # tinygrad computes tanh(x) as 2 * sigmoid(2x) - 1: near 0 the subtraction cancels, so the result
    # keeps float32's absolute error near 1, not its relative error. The same input on torch:float32
    # passes, so the failure is tinygrad's, not the reference's.
    pytest.importorskip("torch")
    x = float(np.float32(-0.015086494))
    graph = build_tensor(parse("tanh(x)"), {"x": (1,)})
    point = {"x": np.array([Fraction(x)], dtype=object)}
    result = check_tensor(graph, point, engine("tinygrad:float32"), Tolerance())
    (value,) = [q for q in result.quantities if q.name == "value"]
    assert value.verdict is Verdict.FAIL and value.engine is not None and value.exact is not None
    assert abs(value.engine - value.exact) / abs(value.exact) > 30 * 2.0**-23
    assert result.culprit is not None and result.culprit.op == "tanh"
    # tanh' = 1 - t*t keeps its digits; a one-element output has one seeded VJP and its one-row Jacobian
    assert [(q.name, q.verdict) for q in result.quantities if q.role == "input"] == [
        ("x (vjp0)", Verdict.PASS), ("x (jacobian)", Verdict.PASS)]
    assert check_tensor(graph, point, engine("torch:float32"), Tolerance()).verdict is Verdict.PASS


@pytest.mark.parametrize("spec", ["tinygrad", "tinygrad:float32"])
def test_scalar_leaves_are_0_d_tensors_and_equal_values_are_merged_there(spec: str) -> None:
    # users write a scalar parameter as Tensor(3.0): the adapter does too, so what tinygrad does to such
    # leaves is what is checked; tinygrad 0.14 merges two of them that hold the same number (tinygrad#9597)
    from gradspec import check

    made = engine(spec)
    made.begin()
    assert made.leaf(3.0).shape == ()
    equal = check("w1 + w2", {"w1": 3, "w2": 3}, engine=made)
    assert equal.verdict is Verdict.FAIL
    assert {q.name: (q.engine, q.exact) for q in equal.quantities if q.name != "value"} == \
        {"w1": (2.0, 1.0), "w2": (2.0, 1.0)}
    assert check("w1 + w2", {"w1": 3, "w2": 4}, engine=made).verdict is Verdict.PASS
