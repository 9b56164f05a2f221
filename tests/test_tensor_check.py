"""Tensor checks end to end: correct engines pass on shapes and draws never used while developing, each
single-bug engine fails with a report that names the op and the pattern, and the pattern rules, the
cotangents, skips and failures of the engine itself behave as documented."""

from __future__ import annotations

import importlib
import math
import random
import textwrap
import warnings
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import mpmath
import numpy as np
import pytest

from gradspec.checks.elements import cotangent, judge
from gradspec.checks.tensor import check_tensor
from gradspec.diagnose.patterns import guess
from gradspec.engines.protocol import Engine
from gradspec.engines.resolve import resolve
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from gradspec.modes import Mode
from gradspec.ops.table import REVERSE_AND_TENSOR
from gradspec.report.json_format import quantity_record
from gradspec.results import Role, Tolerance, Verdict

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def buggy(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(DATA))
    return importlib.import_module("tensor_engines")


def point_for(shapes: dict[str, tuple[int, ...]], rng: random.Random, positive: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for name, shape in shapes.items():
        arr = np.empty(shape, dtype=object)
        for index in np.ndindex(shape):
            v = Fraction(round(rng.gauss(0, 1), 4)).limit_denominator(10_000)
            arr[index] = abs(v) + Fraction(1, 2) if name in positive else v
        out[name] = arr
    return out


def run(text: str, shapes: dict[str, tuple[int, ...]], engine: Engine | str, seed: int = 0,
        positive: tuple[str, ...] = ()) -> Any:
    graph = build_tensor(parse(text), shapes)
    point = point_for(shapes, random.Random(seed), positive)
    return check_tensor(graph, point, resolve(engine) if isinstance(engine, str) else engine, Tolerance(), seed=seed)


# Shapes and seeds that appear nowhere in cases/ or in development scripts.
UNSEEN = [
    ("softmax(x @ w + b, axis=-1)", {"x": (5, 3), "w": (3, 6), "b": (6,)}, ()),
    ("layer_norm(tanh(x), eps=0.02) * y", {"x": (2, 7), "y": (7,)}, ()),
    ("log_softmax(permute(x, axes=[1, 2, 0]), axis=1) + sum(logsumexp(x, axis=1), axis=1)", {"x": (3, 2, 2)}, ()),
    ("sum((a @ b) * c, axis=-2) / mean(c)", {"a": (2, 1, 3, 2), "b": (3, 2, 4), "c": (4,)}, ("c",)),
    ("conv2d(x, w, stride=2, padding=2)", {"x": (1, 2, 3, 5), "w": (2, 2, 2, 3)}, ()),
    ("max(sqrt(x) * y, axis=1) - min(reshape(y, shape=[3, 2]), axis=0) @ x @ transpose(x)",
     {"x": (2, 3), "y": (2, 3)}, ("x",)),
]


@pytest.mark.parametrize("spec", ["builtin", "torch", "torch:float32", "jax", "jax:float32"])
@pytest.mark.parametrize("text, shapes, positive", UNSEEN, ids=[u[0][:30] for u in UNSEEN])
def test_correct_engines_pass_on_unseen_cases(spec: str, text: str, shapes: dict[str, tuple[int, ...]],
                                              positive: tuple[str, ...]) -> None:
    for seed in (8101, 8102):
        result = run(text, shapes, spec, seed, positive)
        if result.verdict is Verdict.SKIP:
            pytest.skip(result.message)
        assert result.verdict is Verdict.PASS, result.table()
        assert {q.name.split(" ")[1] for q in result.quantities if q.role == "input"} >= {"(vjp0)", "(vjp1)"}


def test_cross_entropy_with_integer_targets_passes_on_torch_and_jax() -> None:
    graph = build_tensor(parse("cross_entropy(x @ w, t)"), {"x": (7, 3), "w": (3, 4), "t": (7,)}, frozenset({"t"}))
    rng = random.Random(8103)
    point = point_for({"x": (7, 3), "w": (3, 4)}, rng)
    point["t"] = np.array([Fraction(rng.randrange(4)) for _ in range(7)], dtype=object)
    for spec in ("torch", "torch:float32", "jax", "builtin"):
        assert check_tensor(graph, point, resolve(spec), Tolerance()).verdict is Verdict.PASS, spec


BUGS = [
    ("SignFlippedSoftmax", "sum(softmax(x @ w, axis=-1) * y)", {"x": (2, 3), "w": (3, 3), "y": (2, 3)},
     "softmax", "sign flipped: engine = -exact"),
    ("LayerNormWithoutVariance", "tanh(layer_norm(x, eps=0.01)) + x", {"x": (3, 4)},
     "layer_norm", "a term along the output is missing"),
    ("TransposedMatmul", "sigmoid(x @ w)", {"x": (3, 4), "w": (4, 4)},
     "matmul", "transposed: engine = exact with its last two axes swapped"),
    ("UnsummedBroadcastAdd", "tanh(x + b) * 2", {"x": (4, 3), "b": (3,)},
     "add", "an axis left unsummed after broadcasting: the gradient is only slice 0 of broadcast axis -2"),
]


@pytest.mark.parametrize("engine_name, text, shapes, op, pattern", BUGS, ids=[b[0] for b in BUGS])
def test_single_bug_engines_fail_and_the_report_names_op_and_pattern(buggy: ModuleType, engine_name: str, text: str,
                                                                     shapes: dict[str, tuple[int, ...]], op: str,
                                                                     pattern: str) -> None:
    engine = getattr(buggy, engine_name)()
    result = run(text, shapes, engine, seed=8104)
    assert result.verdict is Verdict.FAIL
    assert result.culprit is not None and result.culprit.op == op, result.table()
    assert pattern in result.culprit.message
    report = result.table()
    assert f"culprit: {op} at column" in report and pattern in report
    # the forward pass is right: only gradients fail
    assert [q.verdict for q in result.quantities if q.role == "value"] == [Verdict.PASS]
    bad = [q for q in result.quantities if q.verdict is Verdict.FAIL]
    assert bad and all(q.index is not None and "elements over tolerance; worst at" in q.note for q in bad)


def test_the_same_engines_pass_where_their_bug_is_not_reached(buggy: ModuleType) -> None:
    assert run("sum(tanh(x) * y)", {"x": (3, 2), "y": (3, 2)}, buggy.SignFlippedSoftmax(), 8105).verdict is Verdict.PASS
    assert run("x * b", {"x": (3, 2), "b": (3, 2)}, buggy.UnsummedBroadcastAdd(), 8105).verdict is Verdict.PASS


def test_a_sum_cotangent_cannot_see_the_softmax_bug_but_random_cotangents_do(buggy: ModuleType) -> None:
    engine = buggy.SignFlippedSoftmax()
    graph = build_tensor(parse("softmax(x, axis=-1)"), {"x": (2, 3)})
    from gradspec.engines.tensor import run_tensor

    ones = run_tensor(engine, graph, {"x": np.arange(6.0).reshape(2, 3)}, [np.ones((2, 3))])
    assert np.allclose(ones.grads[0]["x"], 0, atol=1e-12)  # the true gradient of sum(softmax) is zero too
    assert run("softmax(x, axis=-1)", {"x": (2, 3)}, engine, 8106).verdict is Verdict.FAIL


def test_cotangents_are_seeded_dyadic_and_never_all_ones() -> None:
    a = cotangent((4, 5), random.Random(3))
    b = cotangent((4, 5), random.Random(3))
    assert (a == b).all()
    steps = [Fraction(float(v)) * 1024 for v in a.flat]
    assert all(s.denominator == 1 and 1 <= abs(s) <= 1024 for s in steps)  # nonzero multiples of 1/1024
    assert len(set(a.flat)) > 10
    assert (a.astype(np.float32).astype(float) == a).all()  # exact in float32 too
    # a one-element cotangent is never 1, over every seed that would draw it
    def draws_one(seed: int) -> bool:
        rng = random.Random(seed)
        return rng.choice((-1, 1)) == 1 and rng.randint(1, 1024) == 1024

    ones = [seed for seed in range(20000) if draws_one(seed)]
    assert ones and all(cotangent((), random.Random(seed)) == 1023 / 1024 for seed in ones)


def test_cotangents_are_the_draws_of_random_choice_and_randint_on_this_python() -> None:
    # The seeded directions (and the findings pinned by them) were drawn by choice and randint; the
    # draw written out with getrandbits must give the same numbers and leave the stream where they did.
    for seed in range(200):
        ours, theirs = random.Random(seed), random.Random(seed)
        size = 1 + seed % 97
        drawn = cotangent((size,), ours)
        steps = [theirs.choice((-1, 1)) * theirs.randint(1, 1024) for _ in range(size)]
        if all(step == 1024 for step in steps):
            steps[0] = 1023
        assert drawn.tolist() == [step / 1024 for step in steps]
        assert ours.random() == theirs.random()


def test_patterns() -> None:
    rng = np.random.default_rng(0)
    exact = rng.normal(size=(3, 3))
    bound = np.full((3, 3), 1e-12)
    assert guess(-exact, exact, bound).startswith("sign flipped")
    assert guess(exact / 3, exact, bound) == "scaled by a constant: engine = 1/3 * exact"
    assert guess(2 * exact, exact, bound) == "scaled by a constant: engine = 2 * exact"
    assert guess(np.array([2.79]), np.array([1.0]), np.array([1e-12])) == ""  # one number: any scale fits
    # nor is one number a dropped term along the output: a lane of one element is a multiple of anything
    assert guess(np.array([2.79]), np.array([1.0]), np.array([1e-12]), output=np.array([4.0])) == ""
    # near the top of the float range, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert guess(np.array([5.6e306, 1e308]), np.array([7.8e306, 1.5e308]), np.array([1e300] * 2)) == ""
    assert guess(exact.T, exact, bound).startswith("transposed")
    assert guess(np.zeros((3, 3)), exact, bound) == "all zeros where the exact gradient is not"
    assert guess(exact + rng.normal(size=(3, 3)), exact, bound) == ""
    per_copy = rng.normal(size=(4, 3))  # a [3] input broadcast over 4 rows
    summed = per_copy.sum(axis=0)
    assert "only slice 2 of broadcast axis -2" in guess(per_copy[2], summed, np.full(3, 1e-12), [((4, 3), per_copy)])
    assert "averaged instead of summed" in guess(per_copy.mean(axis=0), summed, np.full(3, 1e-12), [((4, 3), per_copy)])
    y = rng.normal(size=(2, 4))
    assert guess(exact[:2, :3] * 0, exact[:2, :3], bound[:2, :3]).startswith("all zeros")
    g = rng.normal(size=(2, 4))
    assert guess(g + np.array([[0.5], [-2.0]]) * y, g, np.full((2, 4), 1e-12), output=y).startswith(
        "a term along the output is missing")


class _Raises(Engine):
    name = "raises"
    capabilities = REVERSE_AND_TENSOR

    def run_tensor(self, graph: Any, inputs: Any, cotangents: Any) -> Any:
        raise RuntimeError("kernel exploded")


class _WrongShape(Engine):
    name = "wrong-shape"
    capabilities = REVERSE_AND_TENSOR

    def run_tensor(self, graph: Any, inputs: Any, cotangents: Any) -> Any:
        value = np.tanh(inputs["x"] + inputs["b"])
        g = [{"x": c * (1 - value**2), "b": c * (1 - value**2)} for c in cotangents]  # b left unreduced
        return value, g


def test_an_engine_that_raises_fails_with_its_message() -> None:
    result = run("tanh(x)", {"x": (2,)}, _Raises())
    assert result.verdict is Verdict.FAIL and result.message == "engine raised RuntimeError: kernel exploded"


def test_a_gradient_of_the_broadcast_shape_is_an_unsummed_axis() -> None:
    result = run("tanh(x + b)", {"x": (3, 2), "b": (2,)}, _WrongShape())
    assert result.verdict is Verdict.FAIL
    (bad,) = {q.note for q in result.quantities if q.verdict is Verdict.FAIL and q.name.startswith("b (vjp0)")}
    assert bad == "an axis left unsummed after broadcasting: the gradient has shape [3, 2], the input has shape [2]"


class _NanSome(Engine):
    """tanh's gradient computed as a 0/0 for the first three elements, and inf for the fourth."""

    name = "nan-some"
    capabilities = REVERSE_AND_TENSOR

    def run_tensor(self, graph: Any, inputs: Any, cotangents: Any) -> Any:
        value = np.tanh(inputs["x"])
        grads = []
        for c in cotangents:
            g = c * (1 - value**2)
            g.flat[:3] = np.nan
            g.flat[3] = np.inf
            grads.append({"x": g})
        return value, grads


def test_nan_and_inf_from_the_engine_are_named_with_their_count() -> None:
    result = run("tanh(x)", {"x": (3, 5)}, _NanSome())
    assert result.verdict is Verdict.FAIL
    bad = next(q for q in result.quantities if q.name == "x (vjp0)")
    assert bad.note.startswith("3 of 15 elements are NaN, 1 of 15 elements is inf; 4 of 15 elements over tolerance")


class _ScalarOnly(Engine):
    name = "scalar-only"

    def run_tensor(self, graph: Any, inputs: Any, cotangents: Any) -> Any:
        raise AssertionError("never called: the engine does not declare tensors")


def test_an_engine_that_does_not_declare_tensors_skips() -> None:
    result = run("tanh(x)", {"x": (2,)}, _ScalarOnly())
    assert result.verdict is Verdict.SKIP
    assert result.message == "engine scalar-only does not run tensor cases (it does not declare the tensor capability)"


def test_an_engine_without_an_op_skips_with_the_reason() -> None:
    pytest.importorskip("micrograd")
    result = run("softmax(x)", {"x": (3,)}, "micrograd")
    assert result.verdict is Verdict.SKIP and result.message == "engine has no exp"
    assert run("sum(relu(x) * x)", {"x": (3,)}, "micrograd", 8107).verdict is Verdict.PASS


def test_declared_kinks_take_any_subgradient() -> None:
    graph = build_tensor(parse("max(x, axis=1) * w"), {"x": (2, 3), "w": (2,)})
    point = {"x": np.array([[Fraction(1), Fraction(3), Fraction(3)], [Fraction(2), Fraction(2), Fraction(0)]]),
             "w": np.array([Fraction(1, 2), Fraction(-2)], dtype=object)}
    assert check_tensor(graph, point, resolve("torch"), Tolerance(), kink="any").verdict is Verdict.PASS
    convention = check_tensor(graph, point, resolve("torch"), Tolerance(), kink="convention")
    assert convention.verdict is Verdict.CONVENTION  # torch splits ties evenly; the table's convention does not
    assert check_tensor(graph, point, resolve("builtin"), Tolerance(), kink="convention").verdict is Verdict.PASS


def test_the_json_quantity_gains_the_worst_index() -> None:
    result = run("tanh(x) * 3", {"x": (2, 2)}, "builtin")
    records = {q.name: quantity_record(q) for q in result.quantities}
    assert len(records["value"]["index"]) == 2 and len(records["x (vjp0)"]["index"]) == 2
    assert len(records["x (jacobian)"]["index"]) == 4  # output element, then input element


def test_pytest_items_are_named_by_draw_and_engine(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("t.gradspec.yaml").write_text(textwrap.dedent("""
        cases:
          - id: attn
            expr: softmax(q @ transpose(k), axis=-1)
            sample:
              count: 2
              vars:
                q: {shape: [2, 3], normal: [0, 1]}
                k: {shape: [2, 3], normal: [0, 1]}
          - id: fixed
            expr: sum(x * x)
            at: {x: [[1, 2]]}
        """))
    result = pytester.runpytest("-v", "--gradspec-engine", "builtin")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*t.gradspec.yaml::attn[[]draw0[]][[]builtin[]] PASSED*",
                                 "*t.gradspec.yaml::attn[[]draw1[]][[]builtin[]] PASSED*",
                                 "*t.gradspec.yaml::fixed[[]x=1x2[]][[]builtin[]] PASSED*"])


def test_the_public_check_takes_nested_lists_and_arrays() -> None:
    import gradspec
    from gradspec.errors import ExpressionError

    result = gradspec.check("softmax(x, axis=-1) @ w", {"x": [[1, 2], [3, 4]], "w": np.array([0.5, -1.5])})
    assert result.verdict is Verdict.PASS and result.kind == "tensor"
    assert [q.name for q in result.quantities][:3] == ["value", "x (vjp0)", "w (vjp0)"]
    assert gradspec.check("sum(x) * 2", {"x": 1.5}, engine="torch").verdict is Verdict.PASS  # a 0-d tensor
    with pytest.raises(ExpressionError, match=r"matmul: \[2\] @ \[3\]: inner dimensions 2 and 3 differ"):
        gradspec.check("x @ w", {"x": [1, 2], "w": [1, 2, 3]})


def test_floats_read_once_by_their_bytes_give_the_same_check_as_their_decimals_written_out() -> None:
    import gradspec
    from gradspec.reference.store import STORE

    floats = {"x": [[0.1, -0.0, 2.5], [1e-3, -1.75, 3.0]], "w": np.array([0.25, -1.5, 0.3], dtype=np.float32)}
    written = {"x": [["0.1", "0", "2.5"], ["0.001", "-1.75", "3"]], "w": [str(float(v)) for v in floats["w"]]}
    STORE.points.clear()
    for _ in range(2):  # converted the first time, found by bytes the second
        fast = gradspec.check("tanh(x) @ w * x[0, 1]", floats, engine="torch")
        assert len(STORE.points) == 2
        slow = gradspec.check("tanh(x) @ w * x[0, 1]", written, engine="torch")  # strings: every element read
        assert fast.verdict is Verdict.PASS
        assert [(q.name, repr(q.engine), q.exact, q.exact_text, q.verdict, q.note) for q in fast.quantities] == \
            [(q.name, repr(q.engine), q.exact, q.exact_text, q.verdict, q.note) for q in slow.quantities]
    assert STORE.decimals(np.array([[0.1, -0.0]])).tolist() == [[Fraction(1, 10), 0]]
    # NumPy's floats in exponent form (their repr names their type): the decimal written, not a ValueError
    assert STORE.decimals(np.array([1e-12, -2.5e20])).tolist() == [Fraction(1, 10**12), -25 * 10**19]
    assert gradspec.check("sin(x)", {"x": [20.0, -1e-12, 0.5]}, engine="torch").verdict is Verdict.PASS
    with pytest.raises(TypeError, match="a boolean is not a number"):  # never read as 1.0 and 0.0
        gradspec.check("sum(x)", {"x": [True, 1.5]})
    with pytest.raises(ValueError, match="nan is not a finite number"):
        gradspec.check("sum(x)", {"x": [float("nan"), 1.5]})
    assert gradspec.check("sum(x * x)", {"x": [1, 2.5]}).verdict is Verdict.PASS  # an int among floats
    for engine in ("builtin", "torch"):  # a 0-d float stays a 0-d array on its way to the engine
        assert gradspec.check("sum(x) * 2", {"x": 1.5}, engine=engine).verdict is Verdict.PASS


@pytest.mark.parametrize(("text", "shapes", "inside"), [
    ("sum(tanh(a @ b))", {"a": (2, 3), "b": (3, 2)}, "mul inside matmul at column 12"),
    ("conv2d(x, w)", {"x": (1, 1, 3, 3), "w": (1, 1, 2, 2)}, "mul inside conv2d at column 1"),
    ("max(x, axis=0)", {"x": (3, 3)}, "mul (which sub inside max at column 1 calls)"),
])
def test_on_a_value_class_the_culprit_is_the_users_scalar_op_inside_the_tensor_op(
        monkeypatch: pytest.MonkeyPatch, text: str, shapes: dict[str, tuple[int, ...]], inside: str) -> None:
    # gradspec lowers matmul, conv2d and max onto the class's own * + and -: the user wrote those, not matmul
    monkeypatch.syspath_prepend(str(DATA))
    result = run(text, shapes, "textbook:MulAssign")  # = for += in mul's backward
    assert result.verdict is Verdict.FAIL
    assert result.culprit is not None and (result.culprit.op, result.culprit.kind) == ("mul", "accumulation")
    assert result.culprit.message.startswith(f"{inside}: overwrites the gradient of its input")
    assert run(text, shapes, "textbook:Value").verdict is Verdict.PASS



def test_an_allowance_that_could_not_be_computed_allows_nothing() -> None:
    from gradspec.checks.elements import judge
    from gradspec.results import Role

    exact = np.array([2.0, 3.0])
    tol = Tolerance(rtol=1e-7, atol=0.0)
    wrong = judge("x", Role.INPUT, [2.0, 3.5], exact.astype(object), exact, np.array([np.nan, np.nan]), tol,
                  eps=2.0**-52)
    assert wrong.verdict is Verdict.FAIL
    right = judge("x", Role.INPUT, [2.0, 3.0], exact.astype(object), exact, np.array([np.nan, 0.0]), tol,
                  eps=2.0**-52)
    assert right.verdict is Verdict.PASS


def test_an_underflowed_intermediate_leaves_the_rounding_bound_finite() -> None:
    # exp(-800) underflows a float while log's partial 1/u overflows one: their product must not be NaN
    from gradspec.checks.api import check

    result = check("sum(logcumsumexp(x, axis=0))", {"x": [-800.0, 1.0, 0.5]}, engine="builtin")
    assert result.verdict is Verdict.PASS
    assert all(np.isfinite(q.tolerance) for q in result.quantities if q.tolerance is not None)


class _IgnoresCotangent(Engine):
    """sum(tanh(x)) with the gradient for a unit cotangent, whatever cotangent it is given."""

    name = "ignores-cotangent"
    capabilities = REVERSE_AND_TENSOR

    def run_tensor(self, graph: Any, inputs: Any, cotangents: Any) -> Any:
        value = np.sum(np.tanh(inputs["x"]))
        return value, [{"x": 1 - np.tanh(inputs["x"]) ** 2} for _ in cotangents]


class _Counts(_IgnoresCotangent):
    name = "counts"

    def run_tensor(self, graph: Any, inputs: Any, cotangents: Any) -> Any:
        self.seen = len(cotangents)
        value = np.sum(np.tanh(inputs["x"]))
        return value, [{"x": float(c) * (1 - np.tanh(inputs["x"]) ** 2)} for c in cotangents]


def test_a_one_element_output_is_checked_by_one_vjp_and_the_unit_cotangent() -> None:
    counting = _Counts()
    result = run("sum(tanh(x))", {"x": (3, 2)}, counting)
    assert result.verdict is Verdict.PASS and counting.seen == 2
    assert [q.name for q in result.quantities] == ["value", "x (vjp0)", "x (jacobian)"]
    # a backward that ignores its cotangent still fails: the random cotangent is never 1
    result = run("sum(tanh(x))", {"x": (3, 2)}, _IgnoresCotangent())
    assert result.verdict is Verdict.FAIL
    (bad,) = [q for q in result.quantities if q.verdict is Verdict.FAIL]
    assert bad.name == "x (vjp0)"


def test_a_point_without_a_derivative_is_an_input_error_never_a_pass() -> None:
    # norm's gradient at the zero vector and std's across a constant lane: sqrt' at 0 is not finite
    for text, values in (("norm(x)", [[0.0, 0.0, 0.0]]), ("std(x, axis=0)", [[1.0, 2.0], [1.0, 3.0]])):
        arr = np.asarray(values if text.startswith("std") else values[0], dtype=float)
        graph = build_tensor(parse(text), {"x": arr.shape})
        point = {"x": np.vectorize(Fraction, otypes=[object])(arr)}
        result = check_tensor(graph, point, resolve("builtin"), Tolerance())
        assert result.verdict is Verdict.ERROR
        assert "the derivative of sqrt is not finite here" in result.message


@pytest.mark.parametrize("expr", ["norm(x)", "sqrt(sum(x * x))", "sum((x @ w) * 1e-300)"])
def test_an_intermediate_beyond_the_float_range_fails_with_a_finite_bound(expr: str) -> None:
    # x*x (or x @ w) is 1e400 exactly: the engine's inf (or 0 gradient) for a finite exact value must fail,
    # never pass against a bound that overflowed with it; the culprit is the op that overflows
    import gradspec

    point = {"x": [1e200, 2e200], "w": [[1e200, 1.0], [1.0, 1e200]]} if "@" in expr else {"x": [1e200, 2e200]}
    result = gradspec.check(expr, point)
    value = result.quantities[0]
    assert (value.name, value.verdict, value.engine) == ("value", Verdict.FAIL, math.inf)
    assert value.tolerance is not None and math.isfinite(value.tolerance)
    assert result.culprit is not None
    if expr == "norm(x)":  # the overflow is inside the op: norm alone fails at these inputs
        assert result.culprit.message.startswith("norm at column 1 (norm(a0, ord=2)) fails on its own: value: 1 of 1 "
                                                 "element is inf")
    else:
        assert result.culprit.op == ("matmul" if "@" in expr else "mul")
        assert f"overflows: its exact value reaches {4 if 'x * x' in expr else 2}.0e+400, beyond the engine's float range" \
            in result.culprit.message


def test_a_tensor_case_says_which_named_intermediates_it_left_uncompared() -> None:
    import gradspec

    result = gradspec.check("h = tanh(x)\ng = h * h\nsum(g)", {"x": [0.5, -1.0]})
    assert result.verdict is Verdict.PASS and [q.name for q in result.quantities] == ["value", "x (vjp0)",
                                                                                       "x (jacobian)"]
    assert "intermediates not compared: h, g (a tensor case compares its inputs' gradients)" in result.message


def test_a_mode_that_raises_fails_alone_and_the_others_are_judged() -> None:
    # torch's huber_loss has a JVP, but its backward has no forward-mode rule: asked together, the
    # forward-over-reverse Hessian product raised for every mode; each is then asked alone
    pytest.importorskip("torch")
    import gradspec

    result = gradspec.check('huber_loss(a, b, reduction="none")', {"a": [0.25, 3.0], "b": [0.0, 0.0]}, engine="torch")
    assert result.verdict is Verdict.PASS  # value, VJPs and Jacobian only: no mode asked
    graph = build_tensor(parse('huber_loss(a, b, reduction="none")'), {"a": (2,), "b": (2,)})
    point = {"a": np.array([Fraction(1, 4), Fraction(3)], dtype=object), "b": np.array([Fraction(0)] * 2, dtype=object)}
    found = check_tensor(graph, point, resolve("torch"), Tolerance(), modes=frozenset({Mode.JVP, Mode.HVP}))
    verdicts = {q.name: q.verdict for q in found.quantities}
    assert verdicts["jvp"] is Verdict.PASS and verdicts["hvp"] is Verdict.FAIL
    (hvp,) = [q for q in found.quantities if q.name.startswith("hvp")]  # once, failed: no row skipped beside it
    assert hvp.name == "hvp" and "forward AD with huber_loss_backward" in hvp.note


def test_a_bound_that_overflowed_a_float_allows_nothing_beyond_the_tolerance() -> None:
    # exp2(1020) = 1.1e307: counted in units of eps, its bound (1020 ulps of x times the slope 7.8e306) is
    # beyond the float range, and an infinite allowance passed anything; the bound of a finite quantity is
    # never infinite, so it allows what the case's tolerance does
    exact = np.array([mpmath.mpf(2) ** 1020], dtype=object)
    floats = np.array([2.0**1020])
    q = judge("value", Role.VALUE, [0.72 * 2.0**1020], exact, floats, np.array([np.inf]), Tolerance(), eps=2.0**-52)
    assert q.verdict is Verdict.FAIL and q.tolerance is not None and math.isfinite(q.tolerance)
    import gradspec

    result = gradspec.check("exp2(x)", {"x": [1020.0]}, engine="builtin")
    assert result.verdict is Verdict.PASS and all(q.tolerance is not None and math.isfinite(q.tolerance)
                                                  for q in result.quantities)


def test_an_exact_value_beyond_the_float_range_passes_only_as_its_infinity() -> None:
    exact = np.array([mpmath.mpf("3e400"), mpmath.mpf("-3e400"), mpmath.mpf(2)], dtype=object)
    floats = np.array([math.inf, -math.inf, 2.0])
    tol = Tolerance()

    def verdict(engine: list[float]) -> Verdict:
        return judge("value", Role.VALUE, engine, exact, floats, np.zeros(3), tol, eps=2.0**-52).verdict

    assert verdict([math.inf, -math.inf, 2.0]) is Verdict.PASS  # IEEE's rounding of +-3e400
    assert verdict([np.finfo(float).max, -math.inf, 2.0]) is Verdict.PASS  # the largest float: a rounding short
    for wrong in ([math.nan, -math.inf, 2.0], [1.0, -math.inf, 2.0], [-math.inf, -math.inf, 2.0]):
        assert verdict(wrong) is Verdict.FAIL, wrong


def test_an_undefined_exact_value_is_never_judged() -> None:
    q = judge("x", Role.INPUT, np.array([0.0]), np.array([mpmath.nan], dtype=object), np.array([np.nan]),
              np.array([0.0]), Tolerance(), eps=2.0**-52)
    assert q.verdict is Verdict.ERROR and "not defined" in q.note


def test_a_quantitys_errors_are_of_the_exact_value_not_its_nearest_float() -> None:
    import gradspec

    # the engine's 1/3 is the float nearest the exact 1/3, which it misses by 1/(3 * 2**54)
    q = gradspec.check("x / 3", {"x": [1.0, 2.0]}).quantities[0]
    assert (q.name, q.index, q.engine, q.exact) == ("value", (0,), 1 / 3, 1 / 3)
    assert q.abs_error == pytest.approx(1 / (3 * 2**54), rel=1e-9, abs=0)
    assert q.rel_error == pytest.approx(2.0**-54, rel=1e-9, abs=0)
