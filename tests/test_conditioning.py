"""The conditioning bound of a function case: S(q) by exact moves, the bound's formula, and verdicts that
follow the function, not the spelling of its reference."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from gradspec.checks.function import check_function
from gradspec.reference.conditioning import LIMIT, Sums, allowance, direction_sums, input_sums
from gradspec.results import Verdict

SCALE = 2.0**-52  # S is kept in units of 2^52


def _point(**values: list[float]) -> dict[str, np.ndarray]:
    return {n: np.asarray([Fraction(v) for v in vs], dtype=object) for n, vs in values.items()}


def test_input_sums_are_the_condition_number_times_the_inputs() -> None:
    # q = x0 * x1 - x2: S = |x1 x0| + |x0 x1| + |x2|, whatever the sizes of q and of its terms
    point = _point(x=[3.0, -0.5, 1.4])
    sums = input_sums(lambda p: {"q": np.asarray([p["x"][0] * p["x"][1] - p["x"][2]], dtype=object)}, point, ["x"])
    assert sums is not None
    assert sums["q"][0] == pytest.approx((1.5 + 1.5 + 1.4) * SCALE, rel=1e-12)


def test_a_zero_input_is_not_moved_and_a_cancelling_quantity_keeps_its_small_sum() -> None:
    # q = x0 - x1 at x0 = x1: the difference is 0, but each input may move by its rounding
    point = _point(x=[2.0, 2.0, 0.0])
    sums = input_sums(lambda p: {"q": np.asarray([p["x"][0] - p["x"][1] + 7 * p["x"][2]], dtype=object)}, point, ["x"])
    assert sums is not None
    assert sums["q"][0] == pytest.approx(4.0 * SCALE, rel=1e-12)  # x2 = 0 contributes nothing


def test_direction_sums_of_a_linear_quantity_are_exact() -> None:
    jacobian = np.array([[2.0, -3.0], [0.5, 4.0]])
    c = np.array([0.25, -0.75])
    sums = direction_sums(lambda ds: {"g": (jacobian.T @ ds[0]).astype(object)}, [c])
    assert list(sums["g"]) == pytest.approx(list(np.abs(jacobian.T) @ np.abs(c) * SCALE), rel=1e-12)


def test_the_bound_scales_with_the_order_and_the_function_size() -> None:
    eps = 2.0**-52
    # (d + 1)(n_in + n_out) roundings of S, and 4 (d + 1) ulps of the quantity itself
    assert allowance(np.array([SCALE]), np.array([0.0]), 0, 3, eps)[0] == 3 * eps
    assert allowance(np.array([SCALE]), np.array([2.0]), 2, 3, eps)[0] == eps * (9 + 24)
    # S is kept times 2^-52: an S beyond the float range (|x| * exp2'(x) at x = 1020) has a bound within it
    def exp2(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = p["x"][0]
        with mpmath.workdps(60):
            return {"q": np.asarray([mpmath.mpf(2) ** (mpmath.mpf(x.numerator) / x.denominator)], dtype=object)}

    huge = input_sums(exp2, _point(x=[1020.0]), ["x"])
    assert huge is not None and np.isfinite(huge["q"][0])
    assert allowance(huge["q"], np.array([2.0**1020]), 0, 2, eps)[0] == pytest.approx(
        2 * eps * 1020 * 2.0**1020 * math.log(2) + 4 * eps * 2.0**1020, rel=1e-9)
    assert Sums({"v": np.array([1.0])}, 3).bound("w", np.array([0.0]), 1, eps) is None
    assert LIMIT >= 64


def test_a_function_gets_one_precision_verdict_whatever_spells_its_reference() -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    x = {"x": np.array([37.43, 2.0, -3.0])}
    # softplus''(37.43) = 5.5e-17; jax.nn.softplus returns 0. Against a reference whose own evaluation cancels
    # (log(1 + exp(x))) the reference's rounding bound would allow the 0; the function's conditioning does not.
    verdicts = {}
    for reference in ("log(1 + exp(x))", "x + log(1 + exp(-x))"):
        r = check_function(jax.nn.softplus, reference, x, engine="jax", check=["value", "vjp", "hvp"])
        (hvp,) = [q for q in r.quantities if q.name == "hvp x"]
        assert hvp.engine == 0.0 and hvp.exact == pytest.approx(2.42e-18, rel=1e-2)
        assert hvp.tolerance is not None and hvp.tolerance < 1e-23  # pass bound: tolerance and conditioning
        verdicts[reference] = hvp.verdict
    # beyond the conditioning bound in both; the cancelling spelling loses as much as the engine (imprecise),
    # the stable one does not (fail)
    assert verdicts == {"log(1 + exp(x))": Verdict.IMPRECISE, "x + log(1 + exp(-x))": Verdict.FAIL}
    r = check_function(jax.nn.softplus, "log(1 + exp(x))", x, engine="jax", check=["value", "vjp", "hvp"])
    (hvp,) = [q for q in r.quantities if q.name == "hvp x"]
    assert "conditioning bound" in hvp.note and "0 of 16 digits" in hvp.note


def test_softmax_vjp_in_the_tail_is_reported_where_every_spelling_cancels() -> None:
    torch = pytest.importorskip("torch")
    x = {"x": np.array([37.43, 0.0])}
    for reference in ("softmax(x, axis=-1)", "exp(x) / sum(exp(x))"):
        r = check_function(lambda t: torch.softmax(t, -1), reference, x, engine="torch")
        small = [q for q in r.quantities if q.name == "x (vjp1)"]
        assert small[0].verdict is Verdict.IMPRECISE and small[0].engine == 0.0
        assert small[0].exact == pytest.approx(-7.97e-18, rel=1e-2)
        assert r.verdict is Verdict.IMPRECISE


def test_a_correct_function_passes_within_its_conditioning() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for _ in range(4):
        x = {"x": rng.standard_normal((2, 5))}
        r = check_function(lambda t: torch.nn.functional.layer_norm(t, (5,)), "layer_norm(x)", x, engine="torch",
                           check=["value", "vjp", "jvp", "hvp"])
        assert r.verdict is Verdict.PASS, [(q.name, q.note) for q in r.quantities if q.verdict is not Verdict.PASS]
        r = check_function(lambda t: torch.logsumexp(t, 1), "logsumexp(x, axis=1)", x, engine="torch:float32",
                           check=["value", "vjp", "jvp", "hvp"])
        assert r.verdict is Verdict.PASS, [(q.name, q.note) for q in r.quantities if q.verdict is not Verdict.PASS]


def test_a_wrong_rule_still_fails() -> None:
    torch = pytest.importorskip("torch")

    class Softplus(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(x)
            return torch.nn.functional.softplus(x, threshold=100)

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (x,) = ctx.saved_tensors
            return g * torch.sigmoid(x) * 1.000001  # one part in a million

    r = check_function(Softplus.apply, "log(1 + exp(x))", {"x": np.array([0.5, -1.0, 2.0])}, engine="torch")
    assert r.verdict is Verdict.FAIL
