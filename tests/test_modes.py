"""Forward mode and higher order: the exact references, the comparison, the case keys, and what each
mode catches that the others miss."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pytest

from gradspec.casefile.loader import load_file
from gradspec.checks.modes import mode_quantities
from gradspec.cli import main
from gradspec.engines.protocol import Engine
from gradspec.engines.resolve import resolve
from gradspec.errors import CaseFileError
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from gradspec.modes import Ask, Capability, Mode, asked, needs
from gradspec.reference.modes import Dual, Err, mode_reference
from gradspec.results import Tolerance, Verdict

EVERY = frozenset({Mode.JVP, Mode.HVP, Mode.JVP_OF_JVP, Mode.JACOBIAN})


def scalar_point(**values: Any) -> dict[str, Any]:
    return {n: np.asarray(Fraction(v), dtype=object) for n, v in values.items()}


def tensor_point(**values: Any) -> dict[str, Any]:
    return {n: np.vectorize(Fraction, otypes=[object])(np.asarray(v)) for n, v in values.items()}


# -- the exact references --------------------------------------------------------------------------------


def test_nested_duals_give_every_directional_derivative_exactly() -> None:
    graph = build_tensor(parse("x*y*y + tanh(x)"), {"x": (), "y": ()})
    u = (np.asarray(0.25), np.asarray(-0.5))
    w = (np.asarray(1.0), np.asarray(0.125))
    ask = Ask(frozenset({Mode.JVP, Mode.HVP, Mode.JVP_OF_JVP}), u, w, np.asarray(1.0), order=3)
    ref = mode_reference(graph, scalar_point(x=Fraction(1, 2), y=3), ask, 2.0**-52)
    with mpmath.workdps(60):
        _expect_directional(ref)


def _expect_directional(ref: Any) -> None:
    x, y = mpmath.mpf(0.5), mpmath.mpf(3)
    t = mpmath.tanh(x)
    hessian = mpmath.matrix([[-2 * t * (1 - t * t), 2 * y], [2 * y, 2 * x]])
    uu, ww = mpmath.matrix([0.25, -0.5]), mpmath.matrix([1, 0.125])
    grad = mpmath.matrix([y * y + 1 - t * t, 2 * x * y])
    assert ref.jvp is not None and ref.jvp_of_jvp is not None and ref.orders is not None
    assert abs(ref.jvp.exact[()] - (grad.T * uu)[0]) < mpmath.mpf(10) ** -50
    assert abs(ref.jvp_of_jvp.exact[()] - (uu.T * hessian * ww)[0]) < mpmath.mpf(10) ** -50
    hu = hessian * uu
    # The Hessian-vector product comes from the ball tape (reference/ball_modes.py): each a ball that contains
    # the exact value, so the 60-digit value is within the ball's radius (and 1e-50) of its midpoint.
    assert ref.radius is not None
    assert [abs(mpmath.mpf(k.exact[()].mid()) - hu[i]) < mpmath.mpf(k.exact[()].rad()) + mpmath.mpf(10) ** -50
            for i, k in enumerate(ref.hvp)] == [True, True]
    assert abs(ref.orders[2].exact[()] - (uu.T * hessian * uu)[0]) < mpmath.mpf(10) ** -50
    # D^3 f[u, u, u]: tanh''' ux^3 + 3 * 2 * ux * uy^2 from x y^2
    third = -2 * (1 - t * t) * (1 - 3 * t * t) * mpmath.mpf(0.25) ** 3 + 6 * 0.25 * 0.25
    assert abs(ref.orders[3].exact[()] - third) < mpmath.mpf(10) ** -50


def test_tensor_hvp_is_forward_over_reverse_of_the_contracted_output() -> None:
    graph = build_tensor(parse("softmax(x, axis=-1)"), {"x": (3,)})
    v = np.array([1.0, 0.5, -0.75])
    u = (np.array([0.5, -0.25, 0.125]),)
    ref = mode_reference(graph, tensor_point(x=[1, 2, 3]), Ask(frozenset({Mode.HVP}), u, u, v), 2.0**-52)
    # the Hessian of v·softmax(x) by central differences of the exact gradient, as a cross-check
    s = lambda z: np.exp(z) / np.exp(z).sum()  # noqa: E731
    def grad(z: Any) -> Any:
        p = s(z)
        return p * (v - p @ v)
    h = 1e-6
    numeric = (grad(np.array([1, 2, 3.0]) + h * u[0]) - grad(np.array([1, 2, 3.0]) - h * u[0])) / (2 * h)
    assert np.allclose(ref.hvp[0].floats, numeric, rtol=1e-7, atol=1e-9)
    assert np.allclose(ref.vjp[0].floats, grad(np.array([1, 2, 3.0])), rtol=1e-14)


def test_the_rounding_bound_grows_with_precision_and_is_zero_for_exact_work() -> None:
    graph = build_tensor(parse("x * y"), {"x": (), "y": ()})
    ask = Ask(frozenset({Mode.JVP}), (np.asarray(0.5), np.asarray(0.25)), (np.asarray(1.0), np.asarray(1.0)),
              np.asarray(1.0))
    exact_inputs = mode_reference(graph, scalar_point(x=2, y=3), ask, 2.0**-52)
    assert exact_inputs.jvp is not None and float(exact_inputs.jvp.exact[()]) == 0.5 * 3 + 0.25 * 2
    decimal = scalar_point(x=Fraction(1, 10), y=3)
    f64, f32 = (mode_reference(graph, decimal, ask, eps).jvp for eps in (2.0**-52, 2.0**-23))
    assert f64 is not None and f32 is not None
    assert 0 < float(f64.allowance[()]) < float(f32.allowance[()]) < 1e-5


def test_err_arithmetic_counts_no_rounding_for_exact_zero_and_one() -> None:
    big = Err(mpmath.mpf(148), 600.0)
    assert (Err(mpmath.mpf(0)) * big).e == 0.0
    assert (big * Err(mpmath.mpf(1))).e == 600.0
    assert (big * Err(mpmath.mpf(2))).e == pytest.approx(1200 + 148)
    dual = Dual(big, Err(mpmath.mpf(3), 1.0)) * Err(mpmath.mpf(0))
    assert dual.re.e == 0.0 and dual.du.e == 0.0


def test_a_derivative_that_is_not_finite_is_a_skip_with_the_reason() -> None:
    graph = build_tensor(parse("sqrt(x)"), {"x": ()})
    qs, *_ = mode_quantities(graph, scalar_point(x=0), resolve("jax"), Tolerance(), frozenset({Mode.JVP}), 1, 0, ())
    assert {q.verdict for q in qs} == {Verdict.SKIP}
    assert "not finite" in qs[0].note


# -- engines: what each mode catches -----------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["jax", "jax:float32", "torch", "torch:float32"])
def test_every_mode_passes_on_a_smooth_composition(spec: str) -> None:
    engine = resolve(spec)
    graph = build_tensor(parse("softmax(x, axis=-1) @ w + sum(tanh(x))"), {"x": (2, 3), "w": (3,)})
    point = tensor_point(x=[[1, 2, 3], [4, 5, -6]], w=[0.5, -1.5, 2])
    qs, *_ = mode_quantities(graph, point, engine, Tolerance(), EVERY, 3, 7, ())
    names = {q.name for q in qs}
    assert {"jvp", "mode consistency", "hvp x", "hvp x (fwd-rev)", "jvp-of-jvp", "jacobian w (fwd)", "order 2",
            "order 3"} <= names
    assert [(q.name, q.note) for q in qs if q.verdict not in (Verdict.PASS, Verdict.IMPRECISE)] == []
    # Digits lost only where a library rebuilds tanh's derivatives from its rounded output, at x[1, 2] = -6
    # (tanh' = 2.5e-5 from 1 - t*t in float32 keeps 1 or 2 digits); never elsewhere.
    imprecise = [q for q in qs if q.verdict is Verdict.IMPRECISE]
    assert all(q.index is not None and q.index[-2:] == (1, 2) for q in imprecise), [(q.name, q.index) for q in imprecise]
    if spec in ("jax", "torch"):
        assert imprecise == []


def test_torch_layer_norm_is_wrong_forward_over_forward_and_at_third_order() -> None:
    """A real finding on the installed torch: the nested JVP of layer norm and its third derivative
    disagree with the exact values in the first digit, while its JVP, VJP and HVPs agree."""
    pytest.importorskip("torch")
    graph = build_tensor(parse("layer_norm(x)"), {"x": (2, 4)})
    point = tensor_point(x=[[1, 2, 3, 5], [0.5, -1.5, 2.25, 0.125]])
    qs, *_ = mode_quantities(graph, point, resolve("torch"), Tolerance(), EVERY, 3, 3, ())
    failing = {q.name for q in qs if q.verdict is Verdict.FAIL}
    assert failing == {"jvp-of-jvp", "order 3"}
    worst = next(q for q in qs if q.name == "jvp-of-jvp")
    assert worst.rel_error is not None and worst.rel_error > 0.1
    jax_qs, *_ = mode_quantities(graph, point, resolve("jax"), Tolerance(), EVERY, 3, 3, ())
    assert {q.verdict for q in jax_qs} == {Verdict.PASS}


class _WrongForward(Engine):
    """torch, with tanh's forward-mode rule off by a factor of two and its reverse rule right."""

    def __init__(self) -> None:
        base: Any = resolve("torch")
        import torch

        class Tanh(torch.autograd.Function):
            @staticmethod
            def forward(x: Any) -> Any:
                return torch.tanh(x)

            @staticmethod
            def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
                ctx.save_for_backward(output)
                ctx.save_for_forward(output)

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                (y,) = ctx.saved_tensors
                return g * (1 - y * y)

            @staticmethod
            def jvp(ctx: Any, t: Any) -> Any:
                (y,) = ctx.saved_tensors
                return 2 * t * (1 - y * y)

        self.base = base
        self.name, self.eps = "wrong-forward", base.eps
        self.capabilities, self.max_order = base.capabilities, 1
        self.tanh = Tanh.apply

    def function_of(self, graph: Any, data: Any) -> Any:
        return lambda x: self.tanh(x * 1.5)

    def primitives(self, f: Any, primals: Any) -> Any:
        return self.base.primitives(f, primals)


def test_a_wrong_forward_rule_with_a_right_reverse_rule_fails_jvp_and_consistency_only() -> None:
    pytest.importorskip("torch")
    graph = build_tensor(parse("tanh(x * 1.5)"), {"x": (3,)})
    point = tensor_point(x=[0.25, -1, 2])
    qs, *_ = mode_quantities(graph, point, _WrongForward(), Tolerance(), frozenset({Mode.JVP}), 1, 0, ())
    verdicts = {q.name: q.verdict for q in qs}
    assert verdicts == {"jvp": Verdict.FAIL, "mode consistency": Verdict.FAIL}
    consistency = next(q for q in qs if q.name == "mode consistency")
    assert "by forward mode" in consistency.note and "by reverse mode" in consistency.note


def test_a_mode_the_engine_lacks_is_a_skip_naming_the_capability() -> None:
    micrograd = resolve("micrograd")
    graph = build_tensor(parse("tanh(x) * x"), {"x": ()})
    qs, *_ = mode_quantities(graph, scalar_point(x=1), micrograd, Tolerance(), EVERY, 3, 0, ())
    assert {q.verdict for q in qs} == {Verdict.SKIP}
    notes = {q.name: q.note for q in qs}
    assert "no forward mode" in notes["jvp"] and "hvp capability" in notes["hvp"]
    assert "hvp capability" in notes["order 3"]
    assert needs(Mode.JVP_OF_JVP, frozenset({Capability.JVP}), 1) is not None


def test_at_a_kink_the_modes_skip_saying_so() -> None:
    graph = build_tensor(parse("relu(x)"), {"x": ()})
    qs, *_ = mode_quantities(graph, scalar_point(x=0), resolve("jax"), Tolerance(), frozenset({Mode.HVP}), 1, 0,
                            ("relu at 0",))
    assert [(q.verdict, "kink" in q.note) for q in qs] == [(Verdict.SKIP, True)]


def test_forward_mode_is_checked_by_default_only_where_the_engine_has_it() -> None:
    assert asked(None, resolve("jax").capabilities) == frozenset({Mode.JVP})
    assert asked(None, resolve("micrograd").capabilities) == frozenset()
    assert asked((Mode.VALUE, Mode.HVP), resolve("jax").capabilities) == frozenset({Mode.HVP})


# -- case files ---------------------------------------------------------------------------------------------


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.gradspec.yaml"
    path.write_text("version: 1\ncases:\n" + body, encoding="utf-8")
    return path


def test_check_and_order_load_into_the_case(tmp_path: Path) -> None:
    path = write(tmp_path, "  - id: a\n    expr: tanh(x)\n    at: {x: 0.5}\n    check: [value, hvp]\n    order: 3\n")
    (case,) = load_file(path).cases
    assert case.modes == (Mode.VALUE, Mode.HVP) and case.order == 3


@pytest.mark.parametrize(("body", "message"), [
    ("    check: [value, hessian]\n", "hessian"),
    ("    order: 9\n", "9"),
    ("    check: []\n", "check"),
])
def test_bad_check_lists_are_located_errors(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, "  - id: a\n    expr: tanh(x)\n    at: {x: 0.5}\n" + body)
    with pytest.raises(CaseFileError) as err:
        load_file(path)
    assert f"{path}:" in str(err.value) and message in str(err.value)


def test_check_does_not_apply_to_a_linearity_case(tmp_path: Path) -> None:
    path = write(tmp_path, "  - id: a\n    kind: linearity\n    f: x\n    g: x*x\n    at: {x: 1}\n    check: [jvp]\n")
    with pytest.raises(CaseFileError, match="'check' does not apply to a linearity case"):
        load_file(path)


def test_the_cli_reports_torch_layer_norm_with_the_exact_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    path = write(tmp_path, "  - id: ln\n    expr: layer_norm(x)\n    at: {x: [[1, 2, 3, 5]]}\n"
                           "    check: [value, vjp, jvp-of-jvp]\n")
    code = main(["run", str(path), "--engine", "torch", "--in-process"])
    out = capsys.readouterr().out
    assert code == 1
    assert "jvp-of-jvp" in out and "fail" in out and "layer_norm" in out
    assert math.isfinite(float(out.split("jvp-of-jvp")[1].split()[1]))  # the engine's number is printed


@pytest.mark.parametrize(("mutant", "failing"), [
    ("sin-second-sign", {"hvp x", "hvp x (fwd-rev)", "jvp-of-jvp", "order 2", "order 3"}),
    ("tanh-detached", {"hvp x", "hvp x (fwd-rev)", "jvp-of-jvp", "order 2", "order 3"}),
    ("jvp-assign", {"jvp", "mode consistency", "hvp x (fwd-rev)", "jvp-of-jvp", "jacobian x (fwd)"}),
])
def test_each_mode_catches_what_first_order_cannot(mutant: str, failing: set[str]) -> None:
    """Mutants of the built-in engine whose first-order gradients are exactly right: a wrong second
    derivative of a smooth op (sin's, tanh's), and a forward sweep that drops a term."""
    from gradspec.engines.protocol import ValueClassEngine
    from gradspec.tools.mutate import MUTANTS, build

    cls = build(next(m for m in MUTANTS if m.name == mutant))
    engine = ValueClassEngine(cls, mutant)
    op = "sin" if mutant.startswith("sin") else "tanh"
    graph = build_tensor(parse(f"{op}(x * x) * x"), {"x": (3,)})
    point = tensor_point(x=[Fraction(1, 4), Fraction(-3, 4), Fraction(5, 4)])
    first, *_ = mode_quantities(graph, point, resolve("builtin"), Tolerance(), EVERY, 3, 5, ())
    assert {q.verdict for q in first} == {Verdict.PASS}
    qs, *_ = mode_quantities(graph, point, engine, Tolerance(), EVERY, 3, 5, ())
    assert {q.name for q in qs if q.verdict is Verdict.FAIL} == failing
    from gradspec.checks.tensor import check_tensor

    plain = check_tensor(graph, point, engine, Tolerance(), seed=5)  # value and VJPs only
    assert plain.verdict is Verdict.PASS


# -- the mode table ----------------------------------------------------------------------------------------


def test_the_table_has_one_row_per_mode_beyond_the_first_order_and_one_for_order() -> None:
    from gradspec.modes import ORDER, ROWS

    assert [row.key for row in ROWS] == ["jvp", "hvp", "jvp-of-jvp", "jacobian", ORDER]
    assert {row.key for row in ROWS} - {ORDER} == {m.value for m in Mode} - {Mode.VALUE, Mode.VJP}


def test_the_schema_lists_the_modes_of_the_table() -> None:
    from gradspec.casefile.loader import schema

    case = schema()["properties"]["cases"]["items"]["properties"]
    assert case["check"]["items"]["enum"] == [m.value for m in Mode]
    assert "order" in case


def test_every_stage_has_one_function_per_row_and_reads_the_rows_slots() -> None:
    import dataclasses

    from gradspec.engines.modes import COMPOSE
    from gradspec.modes import ROWS, Derivatives
    from gradspec.reference.modes import _REFERENCES, ModeReference

    keys = [row.key for row in ROWS]
    assert list(COMPOSE) == keys and list(_REFERENCES) == keys
    derivatives = {f.name for f in dataclasses.fields(Derivatives)}
    references = {f.name for f in dataclasses.fields(ModeReference)}
    for row in ROWS:
        assert row.slot in derivatives and row.slot in references, row.key
        assert row.second is None or row.second in derivatives, row.key
        assert ("{input}" in row.label) != (row.key in ("jvp", "jvp-of-jvp", "order")), row.key


@pytest.mark.parametrize("key", ["jvp", "hvp", "jvp-of-jvp", "jacobian", "order"])
def test_an_engine_is_asked_for_a_row_only_with_what_the_row_needs(key: str) -> None:
    from gradspec.modes import MODE_ROWS

    row = MODE_ROWS[key]
    every = frozenset(Capability)
    assert needs(key, every, 4, 2) is None
    for lacking in row.needs:
        assert needs(key, every - {lacking}, 4, 2) == f"has {row.lacks}"
    assert (needs(key, every, 1, 1) is None) is (row.min_order == 1)
    if key == "order":  # an engine that differentiates again, not deep enough
        assert needs(key, every, 3, 4) == "reaches derivatives of order 3"
        assert needs(key, every, 1, 2) == "reaches derivatives of order 1"


def test_a_row_the_function_refuses_is_left_out_with_the_reason_and_the_rest_composed() -> None:
    from gradspec.engines.modes import compose

    class Linear:  # f(x) = 3x, with no forward mode of its own
        function = "f"

        def __init__(self) -> None:
            self.refused = {"jvp": "no jvp here", "jvp-of-jvp": "no jvp here", "jacobian": "no jvp here"}

        def reverse(self, v: Any, again: bool) -> Any:
            return np.asarray(6.0), [3 * np.asarray(v)], [3 * float(v)]

        def again(self, grads: Any, u: Any) -> Any:
            return [0.0]

        def along(self, grads: Any, u: Any) -> float:
            return float(grads[0] * float(u[0]))

        def arrays(self, grads: Any) -> list[Any]:
            return [np.asarray(g) for g in grads]

        def jvp(self, fn: Any, u: Any) -> Any:
            raise AssertionError("forward mode of a function that refuses it")

        jvp_of = vjp_of = jvp

        def jacobian(self) -> Any:
            raise AssertionError("forward mode of a function that refuses it")

    ask = Ask(frozenset({Mode.JVP, Mode.HVP, Mode.JACOBIAN}), (np.asarray(0.5),), (np.asarray(0.25),),
              np.asarray(0.75), order=2)
    got = compose(Linear(), ask, frozenset(Capability), [np.asarray(2.0)])
    assert got.refused == {"jvp": "no jvp here", "jacobian": "no jvp here"}
    assert got.jvp is None and got.jacobian is None and got.hvp_fwd is None  # no forward over reverse either
    assert float(got.vjp[0]) == 2.25 and [float(h) for h in got.hvp] == [0.0] and got.orders == {2: 0.0}


# -- the precision verdict in forward mode and second order -----------------------------------------------


def test_an_underflowed_intermediate_never_makes_an_allowance_infinite() -> None:
    # exp(-1201) is 0 in float64: log's partial there (e**1201) is beyond the float range, yet the JVP of
    # log(exp(y)) is an ordinary number, so its bound and mode consistency's stay finite.
    graph = build_tensor(parse("log(exp(y) + exp(2*y))"), {"y": (1,)})
    point = tensor_point(y=[-1201])
    ask_modes = frozenset({Mode.JVP})
    ref = mode_reference(graph, point, _ask(graph, ask_modes), 2.0**-52)
    assert ref.jvp is not None and np.isfinite(ref.jvp.allowance).all()
    qs, *_ = mode_quantities(graph, point, resolve("torch"), Tolerance(), ask_modes, 1, 0, ())
    by = {q.name: q for q in qs}
    assert by["jvp"].tolerance is not None and math.isfinite(by["jvp"].tolerance)
    assert by["mode consistency"].tolerance is not None and math.isfinite(by["mode consistency"].tolerance)
    # torch's nan (log(0) on the way) no longer passes for a finite, normal JVP: digits lost, imprecise
    assert by["jvp"].verdict is Verdict.IMPRECISE and by["mode consistency"].verdict is Verdict.IMPRECISE
    # and a wrong finite JVP fails
    qs, *_ = mode_quantities(graph, point, _FiniteJvp(), Tolerance(), ask_modes, 1, 0, ())
    assert next(q for q in qs if q.name == "jvp").verdict is Verdict.FAIL


class _FiniteJvp(Engine):
    """torch, with every JVP replaced by 5: finite, and far from 0.366, log(exp(y) + exp(2*y))' at -1201."""

    def __init__(self) -> None:
        self.base: Any = resolve("torch")
        self.name, self.eps = "finite-jvp", self.base.eps
        self.capabilities, self.max_order = self.base.capabilities, 1

    def function_of(self, graph: Any, data: Any) -> Any:
        return self.base.function_of(graph, data)

    def derivatives(self, f: Any, primals: Any, ask: Ask) -> Any:
        import dataclasses

        got = self.base.derivatives(f, primals, ask)
        return dataclasses.replace(got, jvp=np.full(np.shape(got.jvp), 5.0))


def _ask(graph: Any, modes: frozenset[Mode]) -> Ask:
    from gradspec.checks.modes import directions

    return directions(graph, modes, 1, 0)


def test_a_second_derivative_lost_to_an_underflow_is_imprecise_not_a_pass() -> None:
    # tanh''(1e-300) = -2e-300, a normal float64: JAX returns 0
    graph = build_tensor(parse("tanh(x)"), {"x": (1,)})
    qs, *_ = mode_quantities(graph, tensor_point(x=[1e-300]), resolve("jax"), Tolerance(), frozenset({Mode.HVP}), 1, 0, ())
    hvp = next(q for q in qs if q.name == "hvp x")
    assert (hvp.verdict, hvp.engine) == (Verdict.IMPRECISE, 0.0)
    assert "0 of 16 digits" in hvp.note
    builtin, *_ = mode_quantities(graph, tensor_point(x=[1e-300]), resolve("builtin"), Tolerance(),
                                 frozenset({Mode.HVP}), 1, 0, ())
    assert {q.verdict for q in builtin} == {Verdict.PASS}


def test_terms_flushed_to_zero_beside_the_smallest_normal_number_are_digits_lost_not_a_failure() -> None:
    # JAX forms rsqrt'' as -0.5*(r'/x - r/x**2), r' = -0.5*r/x: terms of a third and two thirds of the result.
    # Where the hvp element is within a few smallest normal numbers (1.2e-38) of float32, its terms are
    # subnormal, and XLA's CPU flushes them: 2/3 of it, or 0, comes back for a normal exact value.
    pytest.importorskip("jax")
    engine = resolve("jax:float32")
    xs = [Fraction(f"{m:.5e}") for m in np.logspace(14, 16, 96)]  # rsqrt'' = 0.75*x**-2.5: 7.5e-36 to 7.5e-41
    graph = build_tensor(parse("rsqrt(x)"), {"x": (len(xs),)})
    qs, *_ = mode_quantities(graph, tensor_point(x=xs), engine, Tolerance(), frozenset({Mode.HVP}), 1, 3, ())
    assert [(q.name, q.note) for q in qs if q.verdict not in (Verdict.PASS, Verdict.IMPRECISE)] == []
    lost = [q for q in qs if q.verdict is Verdict.IMPRECISE]
    assert lost, "no element of the sweep fell where the terms underflow"
    smallest = float(np.finfo(np.float32).tiny)
    for q in lost:  # only normal results within the floor of 16 smallest normal numbers lose their digits
        assert q.exact is not None and q.engine is not None
        assert smallest <= abs(q.exact) < 16 * smallest and abs(q.engine) < abs(q.exact), q.note


def test_log10_second_derivative_through_an_underflowed_square_is_imprecise_where_the_square_is_subnormal() -> None:
    # JAX's log10 is log(x)/log(10), differentiated as such: log10''(y) forms y*y, which at y = 9.78248e-20
    # is 9.6e-39, below float32's smallest normal number; XLA's CPU flushes it and divides by 0: -inf, where
    # the exact log10'' is -4.5e37. Its reciprocal, y*y*log(10) = 2.2e-38, is normal: the row's
    # derivative_scale tells the duals of the intermediate
    pytest.importorskip("jax")
    graph = build_tensor(parse("log10(y)"), {"y": (3,)})
    point = tensor_point(y=[Fraction("9.78248e-20"), Fraction("2e-19"), Fraction("0.001")])
    qs, *_ = mode_quantities(graph, point, resolve("jax:float32"), Tolerance(), frozenset({Mode.HVP}), 1, 5, ())
    assert [(q.name, q.note) for q in qs if q.verdict not in (Verdict.PASS, Verdict.IMPRECISE)] == []
    lost = [q for q in qs if q.verdict is Verdict.IMPRECISE]
    assert lost and all(q.index == (0,) and q.engine == -math.inf for q in lost), [(q.name, q.note) for q in lost]
    # the reference knows the square underflows at the first point, not at 2e-19 (y*y = 4e-38, normal)
    ask = Ask(frozenset({Mode.HVP}), (np.ones(3),), (), np.ones(3))
    (hvp,) = mode_reference(graph, point, ask, 2.0**-23).hvp
    assert hvp.low is not None and list(hvp.low < np.finfo(np.float32).tiny) == [True, False, False]
