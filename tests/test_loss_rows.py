"""The loss rows (gradspec/ops/loss_rows.py): each lowering against the loss's NumPy formula under every
reduction, the kinks its definition declares, and bad input as located load errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradspec.errors import ExpressionError
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from tests.row_helpers import lowered, run_file

A = np.array([[0.25, -1.0, 3.0], [-0.125, 1.25, -2.75]])
B = np.array([[0.0, 0.5, 0.25], [0.25, -0.5, 0.0]])
Z = np.array([[1.5, -0.5, 0.25], [0.0, 2.0, -1.0]])
P = np.array([[0.25, 0.75, 0.0], [0.5, 0.125, 0.375]])


def log_softmax(z: np.ndarray) -> np.ndarray:
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("reduction, reduce", [("mean", np.mean), ("sum", np.sum), ("none", lambda x: x)])
def test_regression_losses_under_each_reduction(reduction: str, reduce: object) -> None:
    d = A - B
    kw = f'reduction="{reduction}"'
    assert np.allclose(lowered(f"mse_loss(a, b, {kw})", a=A, b=B), reduce(d * d), rtol=1e-15)  # type: ignore[operator]
    assert np.allclose(lowered(f"l1_loss(a, b, {kw})", a=A, b=B), reduce(abs(d)), rtol=1e-15)  # type: ignore[operator]
    huber = np.where(abs(d) < 2, 0.5 * d * d, 2 * (abs(d) - 1))
    assert np.allclose(lowered(f"huber_loss(a, b, delta=2, {kw})", a=A, b=B), reduce(huber), rtol=1e-15)  # type: ignore[operator]
    smooth = np.where(abs(d) < 0.5, 0.5 * d * d / 0.5, abs(d) - 0.25)
    assert np.allclose(lowered(f"smooth_l1_loss(a, b, beta=0.5, {kw})", a=A, b=B), reduce(smooth), rtol=1e-15)  # type: ignore[operator]


def test_smooth_l1_with_beta_zero_is_l1_and_the_switch_is_continuous() -> None:
    assert np.array_equal(lowered("smooth_l1_loss(a, b, beta=0, reduction=\"none\")", a=A, b=B), abs(A - B))
    # exactly at |d| = delta both pieces agree: 0.5 delta^2 = delta (delta - delta/2)
    at = np.array([1.0, -1.0])
    assert np.array_equal(lowered("huber_loss(a, b, reduction=\"none\")", a=at, b=np.zeros(2)), [0.5, 0.5])


def test_kinks_of_l1_and_huber_must_be_declared(tmp_path: Path) -> None:
    for expr, where in (("l1_loss(a, b)", "abs at 0"), ("huber_loss(a, b, delta=0.5)", "relu at 0"),
                        ("smooth_l1_loss(a, b, beta=0.5)", "relu at 0")):
        case = f"  - id: k\n    expr: {expr}\n    at: {{a: [1.0, 2.0], b: [0.5, 0.25]}}\n"
        if expr.startswith("l1"):
            case = case.replace("0.5, 0.25", "1.0, 0.25")
        code, _, err = run_file(tmp_path, case)
        assert code == 2 and f"lies on a kink ({where})" in err, (expr, err)
        code, out, _ = run_file(tmp_path, case + "    kink: convention\n")
        assert code == 0, (expr, out)


def test_class_losses() -> None:
    t = np.array([2, 0])
    logp = log_softmax(Z)
    picked = -logp[np.arange(2), t]
    assert np.allclose(lowered("nll_loss(z, t, reduction=\"none\")", data=("t",), z=logp, t=t), picked, rtol=1e-15)
    assert np.allclose(lowered("cross_entropy(z, t)", data=("t",), z=Z, t=t), picked.mean(), rtol=1e-14)
    smoothed = 0.8 * picked - 0.2 * logp.mean(axis=1)
    assert np.allclose(lowered("cross_entropy(z, t, label_smoothing=0.2, reduction=\"sum\")", data=("t",), z=Z, t=t),
                       smoothed.sum(), rtol=1e-14)
    # probabilities: -sum_c t'_c logp_c, t' = (1 - e) t + e / C
    soft = -(((0.9 * P) + 0.1 / 3) * logp).sum(axis=1)
    assert np.allclose(lowered("cross_entropy(z, p, label_smoothing=0.1, reduction=\"none\")", data=("p",), z=Z, p=P),
                       soft, rtol=1e-14)
    # one-hot probabilities are the class indices
    assert np.allclose(lowered("cross_entropy(z, p)", data=("p",), z=Z, p=np.eye(3)[t]),
                       lowered("cross_entropy(z, t)", data=("t",), z=Z, t=t), rtol=1e-15)


def test_binary_losses_and_kl_div() -> None:
    p, y = np.array([0.125, 0.5, 0.875, 0.3]), np.array([0.0, 1.0, 0.25, 1.0])
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert np.allclose(lowered("binary_cross_entropy(p, y, reduction=\"none\")", data=("y",), p=p, y=y), bce, rtol=1e-15)
    assert np.allclose(lowered("binary_cross_entropy(p, y, reduction=\"none\")", p=p, y=y), bce, rtol=1e-15)
    z = np.array([-30.0, -1.5, 0.0, 2.5, 40.0])
    yz = np.array([0.0, 0.25, 1.0, 0.5, 1.0])
    logits = (1 - yz) * z + np.log1p(np.exp(-z))
    assert np.allclose(lowered("binary_cross_entropy_with_logits(z, y, reduction=\"none\")", z=z, y=yz), logits, rtol=1e-15)
    logq = log_softmax(Z)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(P > 0, P * (np.log(P) - logq), 0.0)
    assert np.allclose(lowered("kl_div(q, p, reduction=\"batchmean\")", data=("p",), q=logq, p=P), terms.sum() / 2, rtol=1e-14)
    assert np.allclose(lowered("kl_div(q, p)", data=("p",), q=logq, p=P), terms.mean(), rtol=1e-14)
    s = np.log(np.where(P > 0, P, 0.5))
    assert np.allclose(lowered("kl_div(q, s, log_target=1, reduction=\"none\")", q=logq, s=s), np.exp(s) * (s - logq),
                       rtol=1e-14)


SHAPES = [
    ("mse_loss(a, b)", {"a": (2, 3), "b": (3,)}, 1, "mse_loss: input [2, 3] and target [3] must have the same shape"),
    ("huber_loss(a, b, delta=0)", {"a": (2,), "b": (2,)}, 1, "huber_loss: delta must be > 0, got 0"),
    ("smooth_l1_loss(a, b, beta=-1)", {"a": (2,), "b": (2,)}, 1, "smooth_l1_loss: beta must be >= 0, got -1"),
    ("kl_div(a, b, reduction=\"batchmean\")", {"a": (), "b": ()}, 1, "divides by the first axis; a scalar has none"),
    ("kl_div(a, b, log_target=2)", {"a": (2,), "b": (2,)}, 1, "log_target= takes 0 or 1"),
    ("nll_loss(z, t)", {"z": (2, 3), "t": (2, 3)}, 1, "nll_loss: needs log-probabilities [batch, classes] and targets [batch]"),
    ("cross_entropy(z, t, label_smoothing=1.5)", {"z": (2, 3), "t": (2,)}, 1, "label_smoothing must be in [0, 1]"),
    ("cross_entropy(z, t)", {"z": (2, 3), "t": (3, 3)}, 1, "or probabilities [batch, classes], got [2, 3] and [3, 3]"),
]


@pytest.mark.parametrize("text, shapes, col, message", SHAPES, ids=[s[3][:40] for s in SHAPES])
def test_shape_errors_name_the_op_at_its_column(text: str, shapes: dict[str, tuple[int, ...]], col: int, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        build_tensor(parse(text), shapes, frozenset({"t"}))
    assert info.value.col == col
    assert message in info.value.message


@pytest.mark.parametrize("text, message", [
    ("mse_loss(a, b, reduction=\"avg\")", 'mse_loss: reduction= takes one of "mean", "sum", "none", found'),
    ("mse_loss(a, b, reduction=\"batchmean\")", 'mse_loss: reduction= takes one of "mean", "sum", "none"'),
    ("l1_loss(a, b, reduction=1)", "l1_loss: reduction= takes one of"),
    ("huber_loss(a, b, delta=\"x\")", "huber_loss: delta= takes a number"),
    ("cross_entropy(z, t, weight=1)", "cross_entropy has no keyword 'weight'"),
    ("nll_loss(z)", "nll_loss takes 2 arguments, got 1"),
])
def test_signature_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse(text)


def test_class_targets_must_be_data() -> None:
    with pytest.raises(ExpressionError, match="nll_loss: argument 2 must be an input marked"):
        build_tensor(parse("nll_loss(z, t)"), {"z": (2, 3), "t": (2,)})


@pytest.mark.parametrize("expr, target, message", [
    ("nll_loss(z, t)", "[0, 3]", "nll_loss: target 3 is not an integer in [0, 3)"),
    ("cross_entropy(z, t)", "[1.5, 0]", "cross_entropy: target 1.5 is not an integer in [0, 3)"),
    ("cross_entropy(z, t, label_smoothing=0.5)", "[-1, 0]", "cross_entropy: target -1 is not an integer in [0, 3)"),
])
def test_a_target_out_of_range_is_a_located_load_error(tmp_path: Path, expr: str, target: str, message: str) -> None:
    code, _, err = run_file(tmp_path, f"""\
  - id: classes
    expr: {expr}
    data_inputs: [t]
    at: {{z: [[1, 2, 3], [0.5, 0, -1]], t: {target}}}
""")
    assert code == 2
    assert f"case.gradspec.yaml:6:9: [classes] point 0 is outside the domain: {message}" in err


def test_binary_cross_entropy_outside_its_domain_is_a_load_error(tmp_path: Path) -> None:
    code, _, err = run_file(tmp_path, "  - id: edge\n    expr: binary_cross_entropy(p, y)\n    data_inputs: [y]\n"
                                      "    at: {p: [0.5, 1.0], y: [1, 0]}\n")
    assert code == 2 and "[edge] point 0 is outside the domain" in err and "log" in err
