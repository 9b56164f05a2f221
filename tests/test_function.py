"""The function kind: hand-written backward passes judged against a declared reference.

Correct Functions pass in float64 and float32; each Function with one planted bug fails, and the report
says what is wrong (the pattern guess, or the property that breaks)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import gradspec
from gradspec.results import Role, Verdict

torch = pytest.importorskip("torch")
fut = pytest.importorskip("tests.functions_under_test")

RNG = np.random.default_rng(7)
X = {"x": torch.tensor(RNG.uniform(-2, 2, (3, 4)))}
SQUARE = {"x": torch.tensor(RNG.uniform(-1, 1, (3, 3))), "w": torch.tensor(RNG.uniform(-1, 1, (3, 3)))}
BIAS = {"x": torch.tensor(RNG.uniform(-1, 1, (3, 4))), "b": torch.tensor(RNG.uniform(-1, 1, (4,)))}

CORRECT = [
    (fut.softmax, "softmax(x, axis=-1)", X),
    (fut.sin, "sin(x)", X),
    (fut.matmul, "x @ w", SQUARE),
    (fut.add_bias, "x + b", BIAS),
    (fut.row_mean, "mean(x, axis=-1)", X),
]


@pytest.mark.parametrize("engine", ["torch", "torch:float32"])
@pytest.mark.parametrize(("fn", "reference", "inputs"), CORRECT, ids=[c[1] for c in CORRECT])
def test_a_correct_function_passes_with_every_property(fn: object, reference: str, inputs: dict, engine: str) -> None:
    result = gradspec.check_function(fn, reference, inputs, engine=engine)
    assert result.verdict is Verdict.PASS, result.table()
    names = [q.name for q in result.quantities]
    assert {"value", "linear in the cotangent", "zero cotangent", "repeatable", "gradient shapes and dtypes",
            "inputs unmodified"} <= set(names)
    assert any("(vjp0)" in n for n in names) and any("(vjp1)" in n for n in names)
    assert result.kind == "function"


BUGS = [
    (fut.softmax_sign_flipped, "softmax(x, axis=-1)", X, "sign flipped"),
    (fut.sin_ignores_cotangent, "sin(x)", X, "ignored cotangent"),
    (fut.softmax_dropped_term, "softmax(x, axis=-1)", X, "a term along the output is missing"),
    (fut.matmul_transposed, "x @ w", SQUARE, "transposed"),
    (fut.add_bias_unsummed, "x + b", BIAS, "only slice 0 of broadcast axis"),
    (fut.row_mean_missing_mean, "mean(x, axis=-1)", X, "scaled by a constant: engine = 4 * exact"),
    (fut.sin_wrong_argument, "sin(x)", X, "elements over tolerance"),
]


@pytest.mark.parametrize("engine", ["torch", "torch:float32"])
@pytest.mark.parametrize(("fn", "reference", "inputs", "said"), BUGS, ids=[b[3][:24] for b in BUGS])
def test_each_single_bug_fails_and_the_report_says_what(fn: object, reference: str, inputs: dict, said: str,
                                                        engine: str) -> None:
    result = gradspec.check_function(fn, reference, inputs, engine=engine)
    assert result.verdict is Verdict.FAIL
    assert result.culprit is not None and said in result.culprit.message
    assert result.culprit.op.endswith("F.apply") or "apply" in result.culprit.op


def test_a_sign_flipped_softmax_backward_is_invisible_to_an_all_ones_cotangent() -> None:
    x = X["x"].clone().requires_grad_()
    fut.softmax_sign_flipped(x).backward(torch.ones(3, 4))
    assert float(x.grad.abs().max()) < 1e-12  # so the random cotangents are what catch it


def test_an_ignored_cotangent_breaks_linearity_and_the_zero_cotangent() -> None:
    result = gradspec.check_function(fut.sin_ignores_cotangent, "sin(x)", X)
    verdicts = {q.name: q.verdict for q in result.quantities if q.role is Role.PROPERTY}
    assert verdicts["linear in the cotangent"] is Verdict.FAIL
    assert verdicts["zero cotangent"] is Verdict.FAIL
    assert verdicts["repeatable"] is Verdict.PASS


def test_a_function_that_writes_into_its_input_fails_inputs_unmodified() -> None:
    result = gradspec.check_function(fut.scale_in_place, "2 * x", {"x": X["x"].clone()})
    q = next(q for q in result.quantities if q.name == "inputs unmodified")
    assert q.verdict is Verdict.FAIL and "modified x in place" in q.note


def test_a_wrong_output_shape_is_a_failure_that_names_both_shapes() -> None:
    result = gradspec.check_function(fut.shape_wrong, "x * 1", X)
    assert result.verdict is Verdict.FAIL
    assert "returned shape []" in result.message and "[3, 4]" in result.message


def test_a_nondeterministic_backward_is_not_repeatable() -> None:
    calls = []

    class Noisy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            return 2 * x

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            calls.append(1)
            return 2 * g + 1e-3 * len(calls)

    result = gradspec.check_function(Noisy.apply, "2 * x", X)
    verdicts = {q.name: q.verdict for q in result.quantities if q.role is Role.PROPERTY}
    assert verdicts["repeatable"] is Verdict.FAIL


def test_a_scalar_function_over_values() -> None:
    from examples.functions import scalar_ops

    good = gradspec.check_function(scalar_ops.smooth_abs, "sqrt(x*x + y*y + 1)", {"x": 0.5, "y": -1.25},
                                   engine="builtin")
    assert good.verdict is Verdict.PASS
    bad = gradspec.check_function(scalar_ops.smooth_abs_ignores_upstream, "sqrt(x*x + y*y + 1)",
                                  {"x": 0.5, "y": -1.25}, engine="builtin")
    assert bad.verdict is Verdict.FAIL and bad.culprit is not None


def test_a_jax_custom_vjp() -> None:
    pytest.importorskip("jax")
    from examples.functions import jax_ops

    inputs = {"x": np.linspace(-2, 2, 5), "w": np.linspace(-1, 1.5, 5)}
    for engine in ("jax", "jax:float32"):
        assert gradspec.check_function(jax_ops.scaled_softplus, "w * log(1 + exp(x))", inputs,
                                       engine=engine).verdict is Verdict.PASS
    bad = gradspec.check_function(jax_ops.scaled_softplus_wrong_argument, "w * log(1 + exp(x))", inputs, engine="jax")
    assert bad.verdict is Verdict.FAIL and "x (vjp0)" in bad.culprit.message


def test_a_scalar_function_that_writes_into_its_input_fails_inputs_unmodified() -> None:
    def doubles(x):  # type: ignore[no-untyped-def]
        out = x * 2
        x.data += 1.0  # writes into its input
        return out

    result = gradspec.check_function(doubles, "2 * x", {"x": 0.5}, engine="builtin")
    q = next(q for q in result.quantities if q.name == "inputs unmodified")
    assert q.verdict is Verdict.FAIL and "modified x in place" in q.note
    assert result.verdict is Verdict.FAIL


def test_gradient_shapes_and_dtypes_names_each_mismatch() -> None:
    # torch casts a Function's gradient to its input's dtype and sums it to its shape, and jax refuses a
    # mismatch outright, so this property guards libraries that let one through: its judge, directly.
    from gradspec.checks.function import _kinds
    from gradspec.engines.function import Probe
    from gradspec.graph.tensor import build_tensor
    from gradspec.lang.expr import parse

    graph = build_tensor(parse("x + b"), {"x": (3, 4), "b": (4,), "t": (3,)}, frozenset({"t"}))
    good = Probe(None, [], kinds=[{"x": ((3, 4), "float64"), "b": ((4,), "float64")}],
                 dtypes={"x": "float64", "b": "float64"})
    assert _kinds(good, graph).verdict is Verdict.PASS
    bad = Probe(None, [], kinds=[{"x": ((3, 4), "float32"), "b": ((3, 4), "float64")}],
                dtypes={"x": "float64", "b": "float64"}, data_grads=["t"])
    q = _kinds(bad, graph)
    assert q.verdict is Verdict.FAIL
    assert q.note == ("data input t received a gradient; the gradient of x is float32, the input float64; "
                      "the gradient of b has shape [3, 4], the input [4]")


def test_a_jax_backward_of_the_wrong_shape_fails_with_the_library_message() -> None:
    jax = pytest.importorskip("jax")

    @jax.custom_vjp
    def f(x):  # type: ignore[no-untyped-def]
        return 2 * x

    f.defvjp(lambda x: (2 * x, None), lambda _, g: (2 * g.sum(),))
    result = gradspec.check_function(f, "2 * x", {"x": np.linspace(-1, 1, 4)}, engine="jax")
    assert result.verdict is Verdict.FAIL
    assert "engine raised" in result.message and result.culprit is not None


# Close rows keep every element in sparsemax's support, where sparsemax(x) = x - (sum(x) - 1) / n.
ROWS = {"x": torch.tensor(RNG.uniform(0.0, 0.2, (3, 1, 4)))}
SPARSEMAX = "x - (reshape(sum(x, axis=2), shape=[3, 1, 1]) - 1) / 4"


def test_a_backward_of_the_wrong_shape_is_seen_before_torch_sums_it_down() -> None:
    fixed = gradspec.check_function(fut.sparsemax_fixed, SPARSEMAX, ROWS)
    assert fixed.verdict is Verdict.PASS, fixed.table()
    result = gradspec.check_function(fut.sparsemax_before_fix, SPARSEMAX, ROWS)
    assert result.verdict is Verdict.FAIL
    kinds = next(q for q in result.quantities if q.name == "gradient shapes and dtypes")
    assert kinds.verdict is Verdict.FAIL
    assert kinds.note == ("SparsemaxBeforeFix.backward returned a gradient of shape [3, 3, 4] for x of shape "
                          "[3, 1, 4], which torch sums down to the input's shape")


GELU_TANH = "0.5*x*(1 + tanh(0.7978845608028654*(x + 0.044715*x**3)))"
LIBRARY = [
    ("jax", lambda x: __import__("jax").nn.softmax(x, axis=-1), "softmax(x, axis=-1)"),
    ("jax", lambda x: __import__("jax").nn.gelu(x, approximate=True), GELU_TANH),
    ("torch", lambda x: torch.softmax(x, -1), "softmax(x, axis=-1)"),
    ("torch", lambda x: torch.nn.functional.gelu(x, approximate="tanh"), GELU_TANH),
]


@pytest.mark.parametrize(("library", "fn", "reference"), LIBRARY, ids=["jax-softmax", "jax-gelu", "torch-softmax", "torch-gelu"])
def test_float32_library_functions_are_linear_in_the_cotangent_within_their_terms(library: str, fn: object,
                                                                                  reference: str) -> None:
    # jax.nn.softmax was off by 7.8e-8 where 8 eps of the result allowed 2.0e-8, jax.nn.gelu by 7.4e-8 for
    # 1.6e-10: the elements are formed by terms that cancel, and the terms bound their rounding.
    pytest.importorskip(library)
    x = np.float32(np.random.default_rng(11).uniform(-3, 3, (3, 4))).astype(float)
    for seed in range(3):
        result = gradspec.check_function(fn, reference, {"x": x}, engine=f"{library}:float32", seed=seed)
        linear = next(q for q in result.quantities if q.name == "linear in the cotangent")
        assert linear.verdict is Verdict.PASS, result.table()
        assert result.verdict is not Verdict.FAIL, result.table()


class _AddsTerm(torch.autograd.Function):
    """A softmax whose backward adds 1e-6 * sign(g): 1e-6 does not scale with the cotangent."""

    @staticmethod
    def forward(ctx: object, x: object) -> object:
        y = torch.softmax(x, -1)
        ctx.save_for_backward(y)  # type: ignore[attr-defined]
        return y

    @staticmethod
    def backward(ctx: object, g: object) -> object:
        (y,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return y * (g - (g * y).sum(-1, keepdim=True)) + 1e-6 * torch.sign(g)


def test_digits_lost_inside_a_function_are_not_called_a_term_that_does_not_scale() -> None:
    # log(cosh(x)) as logaddexp(x, -x) - log 2 in float32: its slope is a difference of two halves of the
    # cotangent, 3 digits of it left at 1e-5, and the VJPs miss linearity by as much as they miss the exact
    # ones; doubling the cotangent doubles them exactly, so the culprit is the VJPs, not the linearity
    def log_cosh(x: torch.Tensor) -> torch.Tensor:
        return torch.logaddexp(x, -x) - math.log(2.0)

    result = gradspec.check_function(log_cosh, "log(cosh(x))", {"x": np.array([1e-5, 2e-5, -3e-5])},
                                     engine="torch:float32")
    linear = next(q for q in result.quantities if q.name == "linear in the cotangent")
    assert linear.verdict is Verdict.PASS and linear.abs_error is not None and linear.tolerance is not None
    assert linear.abs_error > linear.tolerance and linear.note.startswith("VJP(2u) = 2*VJP(u) exactly")
    assert result.verdict is Verdict.FAIL and result.culprit is not None
    assert "x (vjp0): 3 of 3 elements over tolerance" in result.culprit.message


class _Exp2Half(torch.autograd.Function):
    """exp2 whose backward multiplies by 0.5 where log(2) belongs."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.exp2(x)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * torch.exp2(x) * 0.5


def test_a_wrong_slope_near_the_top_of_the_float_range_fails() -> None:
    # at x = 1020 the slope is 7.8e306; its conditioning sum |x| * 7.8e306 is beyond the float range, and
    # the bound made of it passed 5.6e306 (28% off)
    result = gradspec.check_function(_Exp2Half.apply, "exp2(x)", {"x": np.array([1020.0])})
    bad = {q.name: q for q in result.quantities if q.verdict is Verdict.FAIL}
    assert result.verdict is Verdict.FAIL and {"x (vjp0)", "x (jacobian)"} <= set(bad)
    assert bad["x (jacobian)"].tolerance is not None and 0 < bad["x (jacobian)"].tolerance < 1e301
    assert gradspec.check_function(lambda x: torch.exp2(x), "exp2(x)", {"x": np.array([1020.0])}).verdict is Verdict.PASS


class _ExpNanOnZero(torch.autograd.Function):
    """exp whose backward divides by its cotangent: NaN where the cotangent is 0."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = torch.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return (g * y) / g * g


def test_a_nan_gradient_for_a_zero_cotangent_fails() -> None:
    # 40 elements: a Jacobian over the limit, and the seeded cotangents are never 0, so only this shows it
    result = gradspec.check_function(_ExpNanOnZero.apply, "exp(x)", {"x": np.linspace(-1, 1, 40)})
    zero = next(q for q in result.quantities if q.name == "zero cotangent")
    assert result.verdict is Verdict.FAIL and zero.verdict is Verdict.FAIL
    assert zero.note.startswith("a zero cotangent gives NaN gradients")


def test_a_backward_term_that_does_not_scale_with_the_cotangent_still_breaks_linearity_in_float32() -> None:
    x = np.float32(np.random.default_rng(11).uniform(-3, 3, (3, 4))).astype(float)
    result = gradspec.check_function(_AddsTerm.apply, "softmax(x, axis=-1)", {"x": x}, engine="torch:float32")
    linear = next(q for q in result.quantities if q.name == "linear in the cotangent")
    assert linear.verdict is Verdict.FAIL and "does not scale with its cotangent" in linear.note
