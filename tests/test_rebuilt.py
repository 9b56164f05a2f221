"""The rebuilt allowance of the op table's rows (gradspec.ops.rebuilt): values and derivatives that
libraries form from terms that cancel are imprecise in their tails, never fail, and a wrong digit beyond
that still fails."""

from __future__ import annotations

import importlib.util
import math
from fractions import Fraction
from typing import Any

import pytest

from gradspec.checks.api import check, prepare
from gradspec.engine import Value, grad, jvp  # noqa: F401  (so its Value classes are checked in every mode)
from gradspec.engine_floats import _ndtr_gap, _ndtr_ratio
from gradspec.engines.protocol import FLOAT32_EPS, FLOAT64_EPS
from gradspec.ops import rebuilt as R
from gradspec.ops.forms import LIBM
from gradspec.ops.table import OPS
from gradspec.reference.ball_scalar import SCALAR
from gradspec.reference.rounding import bounds
from gradspec.results import Verdict


def test_each_rows_allowance_by_order() -> None:
    gelu, silu, softplus = OPS["gelu"], OPS["silu"], OPS["softplus"]
    assert gelu.rebuilt_abs(0, [-5.5], 0.0) == (LIBM + 2) * 5.5 / 2  # x/2*(1 + erf): erf near -1, times |x|/2
    assert gelu.rebuilt_abs(1, [-5.5], 0.0) == 4 * LIBM  # Phi from a rounded erf
    assert silu.rebuilt_abs(0, [17.0], 0.0) == 0.0  # x*s: a product, nothing cancels
    assert silu.rebuilt_abs(2, [17.0], 0.0) == pytest.approx(R.SIGMOID * 2 * 18)  # x s'' + 2 s', s rounded near 1
    assert silu.rebuilt_abs(1, [-700.0], 0.0) < 1e-300  # s = 1e-304 keeps its relative precision
    assert softplus.rebuilt_abs(1, [17.0], 0.0) == 0.0  # softplus' = z/(z + 1), computed, not rebuilt
    assert softplus.rebuilt_abs(2, [17.0], 0.0) == pytest.approx(R.SIGMOID)
    assert OPS["tanh"].rebuilt_abs(2, [3.0], 0.0) == 2 * OPS["tanh"].partial_abs  # the default: per order
    assert OPS["tanh"].rebuilt_abs(0, [3.0], 0.0) == 0.0
    assert OPS["sinc"].rebuilt_abs(1, [0.0], 0.0) == pytest.approx((2 * LIBM + 2) * math.pi)  # finite at 0
    assert OPS["hypot"].rebuilt_abs(2, [0.0, 0.0], 0.0) == 0.0


def test_bound_ops_pass_their_keywords() -> None:
    tanh_form = OPS["gelu[approximate=tanh]"]
    assert tanh_form.rebuilt_abs(2, [4.88], 0.0) > OPS["gelu"].rebuilt_abs(2, [4.88], 0.0)
    assert OPS["softplus[beta=2]"].rebuilt_abs(3, [10.0], 0.0) == pytest.approx(R.SIGMOID * 2 * 4)


def test_no_ball_kernel_for_an_op_whose_spelling_loses_absolutely() -> None:
    # the ball sweep carries no rebuilt channel: such ops run on the scalar tape, which does
    assert not {n for n in SCALAR if OPS[n].rebuilt is not None or OPS[n].partial_abs or OPS[n].arg_ulps}


def test_a_value_formed_by_cancelling_terms_has_its_loss_kept_apart() -> None:
    tight, rebuilt = bounds(prepare("gelu(x)", ["x"]), (("x", Fraction(-9)),), FLOAT64_EPS)
    exact = 1.0e-18  # -9 * Phi(-9) = -1.0e-18
    assert tight[""] < exact * 1e-13
    assert rebuilt[""] > 1000 * exact
    # carried on: y * gelu(x) loses it in its value and in d/dy (which is gelu(x) itself)
    tight, rebuilt = bounds(prepare("y * gelu(x)", ["x", "y"]), (("x", Fraction(-9)), ("y", Fraction(3))),
                            FLOAT64_EPS)
    assert rebuilt[""] > 3000 * exact and rebuilt["y"] > 1000 * exact


class Cancelling(Value):
    """A correct engine whose gelu is x/2*(1 + erf(x/sqrt(2))), as torch writes it."""

    def gelu(self, approximate: str = "none") -> Any:
        x = self.data
        out = type(self)(x / 2 * (1 + math.erf(x / math.sqrt(2))), (self,), "gelu")

        def _backward() -> None:
            phi = (1 + math.erf(x / math.sqrt(2))) / 2
            self.grad += (phi + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi)) * out.grad

        out._backward = _backward
        return out


class Wrong(Cancelling):
    """gelu off by a part in a million: beyond any rounding and the default rtol of 1e-7."""

    def gelu(self, approximate: str = "none") -> Any:
        out = super().gelu(approximate)
        out.data *= 1 + 1e-6
        return out


def test_a_cancelling_value_in_its_tail_is_imprecise_and_a_wrong_one_fails() -> None:
    result = check("gelu(x)", {"x": -9.0}, engine=Cancelling)
    value = next(q for q in result.quantities if q.name == "value")
    assert (value.verdict, value.engine) == (Verdict.IMPRECISE, -0.0)
    assert "exact -1.02e-18: 0 of 16 digits" in value.note
    assert check("gelu(x)", {"x": -9.0}, engine="builtin").verdict is Verdict.PASS  # the built-in keeps them
    assert check("gelu(x)", {"x": -1.5}, engine=Cancelling).verdict is Verdict.PASS
    assert check("gelu(x)", {"x": -1.5}, engine=Wrong).verdict is Verdict.FAIL


@pytest.mark.parametrize("spec", ["torch:float32", "jax:float32"])
def test_second_derivatives_from_a_rounded_sigmoid_are_imprecise_in_float32(spec: str, tmp_path: Any) -> None:
    pytest.importorskip(spec.split(":")[0])
    from gradspec.casefile.loader import load_file
    from gradspec.engines.resolve import resolve
    from gradspec.run.runner import run_point

    path = tmp_path / "t.gradspec.yaml"
    path.write_text("version: 1\ncases:\n"
                    "  - id: silu\n    expr: silu(x)\n    check: [hvp, jvp-of-jvp]\n    at: {x: 18.5088}\n"
                    "  - id: softplus\n    expr: softplus(x)\n    check: [hvp, jvp-of-jvp]\n    at: {x: 18.201}\n"
                    "  - id: gelu\n    expr: gelu(x, approximate=\"tanh\")\n    at: {x: -5.2374}\n")
    engine = resolve(spec)
    assert engine.eps == FLOAT32_EPS
    for case in load_file(path).cases:
        result = run_point(case, case.points[0], engine)
        assert result.verdict is Verdict.IMPRECISE, (case.id, result.table())
        lost = [q for q in result.quantities if q.verdict is Verdict.IMPRECISE]
        assert lost[0].engine == 0 and "0 of 7 digits" in lost[0].note, case.id  # gelu's value, silu'', softplus''


def test_a_structural_zero_of_a_cholesky_jacobian_is_imprecise_in_float32_not_a_failure(tmp_path: Any) -> None:
    pytest.importorskip("torch")
    from gradspec.casefile.loader import load_file
    from gradspec.engines.resolve import resolve
    from gradspec.run.runner import run_point

    path = tmp_path / "t.gradspec.yaml"
    path.write_text("version: 1\ncases:\n  - id: c\n    expr: cholesky(a)\n"
                    "    at: {a: [[2, 1, 0.5], [1, 3, -0.75], [0.5, -0.75, 1.5]]}\n")
    (case,) = load_file(path).cases
    result = run_point(case, case.points[0], resolve("torch:float32"))
    assert result.verdict is Verdict.IMPRECISE, result.table()
    (jac,) = [q for q in result.quantities if q.verdict is Verdict.IMPRECISE]
    # d L[2,0]/d a[0,1], symmetrised: L[2,0] = a[2,0]/sqrt(a[0,0]) reads neither; torch's matrix formula gives 7e-9
    assert (jac.name, jac.index, jac.exact) == ("a (jacobian)", (2, 0, 0, 1), 0.0) and 0 < abs(jac.engine) < 1e-7


def _log_ndtr_second(x: float) -> float:
    r = _ndtr_ratio(x)  # log_ndtr' = phi/Phi = r, log_ndtr'' = -r*(x + r)
    return -r * (x + r)


def test_log_ndtr_second_derivative_loses_what_its_rebuilt_slope_loses_through_x_plus_r() -> None:
    row, x = OPS["log_ndtr"], -23.3599
    r, delta = _ndtr_ratio(x), (LIBM + 1) * (x * x / 2 + 1)  # r's relative loss, in eps: x*x/2 cancelled
    assert row.rebuilt_abs(1, [x], r) == pytest.approx(delta * r)  # the slope: delta of itself
    # P_2 = -r*(x + r), differentiated in r: -(x + 2r), times r's absolute loss r*delta
    assert row.rebuilt_abs(2, [x], _log_ndtr_second(x)) == pytest.approx(abs(x + 2 * r) * r * delta)
    assert row.rebuilt_abs(2, [x], 0.0) > 500 * delta  # about x*x times delta, where the result is near -1
    # P_3 = r*(2r^2 + 3xr + x^2 - 1), differentiated in r: 6r^2 + 6xr + x^2 - 1, times r*delta
    assert row.rebuilt_abs(3, [x], 0.0) == pytest.approx(abs(6 * r * r + 6 * x * r + x * x - 1) * r * delta)
    # nearer the middle it stays below a part in 10^4 of the second derivative in float32: a wrong digit fails
    assert row.rebuilt_abs(2, [-2.0], 0.0) * FLOAT32_EPS < 1e-4 * abs(_log_ndtr_second(-2.0)) / 4


class WrongSecond(Value):
    """log_ndtr with its second derivative (and only it) a part in 10^4 off: g = x + r's slope 1 - r*g is
    given as 1 - (1 + 1e-4)*r*g, so that r' = g' - 1 is (1 + 1e-4) times the exact -r*g."""

    def _ndtr_gap(self) -> Any:
        def partials(out: Any, g: float) -> tuple[Any, ...]:
            x = out._parents[0]
            return (1 - (out - x) * out * (1 + 1e-4),)

        return self._one(_ndtr_gap(self.data), "log_ndtr", partials)


@pytest.mark.parametrize("x", [-23.3599, -5.96256])
def test_log_ndtr_second_order_in_its_left_tail_is_imprecise_and_a_wrong_digit_fails(x: float, tmp_path: Any) -> None:
    from gradspec.casefile.loader import load_file
    from gradspec.engines.resolve import resolve
    from gradspec.run.runner import run_point

    path = tmp_path / "t.gradspec.yaml"
    path.write_text(f"version: 1\ncases:\n  - id: l\n    expr: log_ndtr(x)\n    check: [hvp, jvp-of-jvp]\n"
                    f"    at: {{x: {x}}}\n")
    (case,) = load_file(path).cases
    assert run_point(case, case.points[0], resolve("builtin")).verdict is Verdict.PASS
    wrong = run_point(case, case.points[0], resolve(WrongSecond))  # float64: a part in 10^4 is far beyond
    assert wrong.verdict is Verdict.FAIL, wrong.table()
    assert {q.name for q in wrong.quantities if q.verdict is Verdict.FAIL} >= {"hvp x", "jvp-of-jvp"}
    assert all(q.verdict is Verdict.PASS for q in wrong.quantities if q.name in ("value", "x"))
    for spec in ("torch:float32", "jax:float32"):  # the libraries' own, rounded r cancelling in x + r
        if importlib.util.find_spec(spec.split(":")[0]) is None:
            continue
        result = run_point(case, case.points[0], resolve(spec))
        assert result.verdict in (Verdict.PASS, Verdict.IMPRECISE), (spec, result.table())
