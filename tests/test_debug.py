"""Localisation and shrinking: single-bug engines are named by op, or as ``backward``."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pytest

from gradspec.casefile.loader import load_file
from gradspec.checks.api import check
from gradspec.checks.check import prepare
from gradspec.cli import main
from gradspec.diagnose.debug import explain, localise, primary, render_dot, shrink_input, subprogram
from gradspec.engines.resolve import resolve
from gradspec.results import Culprit, CulpritKind, Tolerance, Verdict
from gradspec.run.runner import diagnose, run_case

EXPR = "a = x*y; b = a + x; c = tanh(b*0.1); d = exp(c)*2; b*a + d - y**3 + (x - y)"
POINT = {"x": Fraction(2), "y": Fraction(3)}


def culprit_of(engine: str, expr: str = EXPR, point: dict[str, Fraction] = POINT):  # type: ignore[no-untyped-def]
    graph = prepare(expr, list(point))
    return localise(graph, point, resolve(engine))


@pytest.mark.parametrize(
    ("engine", "op", "kind"),
    [
        ("engines:TanhSignFlip", "tanh", "rule"),  # a sign flip
        ("engines:PowWrongFactor", "pow", "rule"),  # a wrong factor
        ("engines:ExpNoChain", "exp", "rule"),  # a missing chain factor
        ("engines:SubSignFlip", "sub", "rule"),  # a sign flip in a binary op
        ("engines:MulAssign", "mul", "accumulation"),  # `=` instead of `+=`
        ("engines:BreadthFirst", "backward", "traversal"),  # a wrong traversal order
    ],
)
def test_single_bug_engines_are_localised(engines: ModuleType, engine: str, op: str, kind: str) -> None:
    assert check(EXPR, {"x": 2, "y": 3}, engine=engine).verdict is Verdict.FAIL
    culprit = culprit_of(engine)
    assert culprit is not None
    assert (culprit.op, culprit.kind) == (op, kind)
    assert culprit.message


def test_a_correct_engine_has_no_culprit(engines: ModuleType) -> None:
    assert culprit_of("builtin") is None
    assert culprit_of("engines:Same") is None


def test_a_rule_bug_names_the_partial_that_was_passed(engines: ModuleType) -> None:
    culprit = culprit_of("engines:PowWrongFactor", "q = x**3; exp(q*0.1)*2 + y*q", {"x": Fraction(3, 2), "y": Fraction(2)})
    assert culprit is not None
    # d/dx x**3 at 1.5 is 6.75; the upstream gradient into q is 2*0.1*exp(0.3375) + 2 = 2.2808...
    upstream = 2 * 0.1 * 1.4014396076 + 2
    assert culprit.exact == pytest.approx(6.75 * upstream, rel=1e-8)
    assert culprit.engine == pytest.approx(2 * 1.5**2 * upstream, rel=1e-8)  # (n - 1) x**(n-1) with n = 3
    assert culprit.message.startswith("pow at `q = x ** 3`: d/d(left) exact")


def test_a_wrong_forward_value_is_blamed_on_its_op(engines: ModuleType) -> None:
    culprit = culprit_of("engines:InfExp", "exp(x*0.5) + x", {"x": Fraction(1)})
    assert culprit is not None
    assert (culprit.op, culprit.kind) == ("exp", "forward")


def test_an_intermediate_beyond_the_float_range_is_named_as_overflowing() -> None:
    # x*x is 1e400 exactly: every float engine gives inf there, and sqrt(inf) = inf for 2.2e200; the
    # culprit is the op that overflows, not a backward rule (the unit tests cannot even run at 1e400)
    result = check("sqrt(x*x + y*y)", {"x": 1e200, "y": 2e200})
    assert result.verdict is Verdict.FAIL
    assert {q.name: q.engine for q in result.quantities if q.name in ("value", "x")} == {"value": math.inf, "x": 0.0}
    assert result.culprit is not None and (result.culprit.op, result.culprit.kind) == ("mul", CulpritKind.FORWARD)
    assert result.culprit.message.startswith("mul at `x * x` overflows: on the engine's operands (1e+200, 1e+200) "
                                             "its exact value is 1.0e+400, beyond the engine's float range")


def test_localisation_works_through_the_torch_adapter() -> None:
    pytest.importorskip("torch")
    from gradspec.engines.adapters.torch import TorchEngine, create

    class TorchTanhBug(TorchEngine):
        def apply(self, op, args):  # type: ignore[no-untyped-def]
            if op.name == "tanh":  # tanh through a custom function whose backward forgets the square
                torch = self.torch

                class BadTanh(torch.autograd.Function):
                    @staticmethod
                    def forward(ctx, x):  # type: ignore[no-untyped-def]
                        t = torch.tanh(x)
                        ctx.save_for_backward(t)
                        return t

                    @staticmethod
                    def backward(ctx, g):  # type: ignore[no-untyped-def]
                        (t,) = ctx.saved_tensors
                        return g * (1 - t)

                return BadTanh.apply(args[0])
            return super().apply(op, args)

    base = create("")
    engine = TorchTanhBug(base.torch, "torch-bug", base.dtype, base.device)  # type: ignore[attr-defined]
    graph = prepare(EXPR, list(POINT))
    culprit = localise(graph, POINT, engine)
    assert culprit is not None and (culprit.op, culprit.kind) == ("tanh", "rule")


def test_shrinking_keeps_sharing_and_gives_a_case_that_fails_there_and_passes_on_builtin(engines: ModuleType) -> None:
    graph = prepare(EXPR, list(POINT))
    engine = resolve("engines:MulAssign")
    result = check(EXPR, {"x": 2, "y": 3}, engine="engines:MulAssign")
    result = diagnose(result, graph, POINT, engine, Tolerance(), "demo")
    assert result.shrunk.startswith("- id: demo-shrunk\n")
    expr = result.shrunk.split('expr: "')[1].split('"')[0]
    assert expr == "a = x * y; a + x"  # the smallest graph where mul's `=` loses x's other contribution
    assert check(expr, {"x": 2, "y": 3}, engine="engines:MulAssign").verdict is Verdict.FAIL
    assert check(expr, {"x": 2, "y": 3}).verdict is Verdict.PASS


def test_subprogram_rebuilds_the_same_graph() -> None:
    graph = prepare("a = x*y; b = a + x; b*a + tanh(b)", ["x", "y"])
    text = subprogram(graph, graph.output)
    assert text == "a = x * y; b = a + x; (b * a) + tanh(b)"
    again = prepare(text, ["x", "y"])
    assert again == graph  # the same steps, output and names: equal by content
    assert again is not graph


def test_explain_rows_and_dot(engines: ModuleType) -> None:
    graph = prepare("a = x*y; tanh(a) + x", ["x", "y"])
    rows, _ = explain(graph, {"x": Fraction(1), "y": Fraction(2)}, resolve("engines:TanhSignFlip"))
    by_label = {r.label: r for r in rows}
    assert by_label["a = x * y"].ok is False  # the wrong tanh rule reaches a first
    assert by_label["tanh(a)"].ok is True
    dot = render_dot(graph, rows)
    assert dot.startswith("digraph gradspec {") and 'color="red"' in dot


def test_explain_command(engines: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["explain", "a = x*y; a*a + x", "--at", "x=2,y=3", "--engine", "engines:MulAssign"])
    out = capsys.readouterr().out
    assert code == 1
    assert "culprit: mul at `a * a`: overwrites the gradient" in out
    assert "WRONG" in out and 'expr: "a = x * y; a * a"' in out
    assert main(["explain", "x*y", "--at", "x=2,y=3"]) == 0
    assert main(["explain", "x*y"]) == 2


def test_a_sampled_failure_reports_its_smallest_failing_input(engines: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "s.gradspec.yaml"
    path.write_text(
        "cases:\n  - id: s\n    expr: tanh(x**2) + x\n    sample:\n      count: 20\n      seed: 4\n"
        "      vars:\n        x: {uniform: [0.5, 5], exclude: [[0.9, 1.1]]}\n"
    )
    (case,) = load_file(path).cases
    results = run_case(case, resolve("engines:TanhSignFlip"))
    first = results[0]
    assert first.verdict is Verdict.FAIL
    # 0 and 1 are outside the sampled domain (below 0.5; excluded), so 2 is the simplest failing input
    assert "smallest failing input: x=2" in first.message
    assert "at: {x: 2}" in first.shrunk
    assert all("smallest failing input" not in r.message for r in results[1:])  # shrunk once per case


def test_shrink_input_prefers_fewer_decimals_then_smaller_magnitudes() -> None:
    fails_above_half = lambda p: p["x"] > Fraction(1, 2)  # noqa: E731
    assert shrink_input({"x": Fraction("3.14159")}, {}, fails_above_half) == {"x": Fraction(1)}
    fails_near_pi = lambda p: abs(p["x"] - Fraction("3.14159")) < Fraction(1, 10)  # noqa: E731
    assert shrink_input({"x": Fraction("3.14159")}, {}, fails_near_pi) == {"x": Fraction("3.1")}


# -- culprits that say what the evidence says ------------------------------------------------------------


def test_an_op_whose_forward_turns_nan_for_large_inputs_is_named(misbehaving: ModuleType) -> None:
    result = check("a = tanh(x); a * y", {"x": 400, "y": 2}, engine="misbehaving:TanhByExp")
    assert result.verdict is Verdict.FAIL
    assert result.culprit is not None
    assert (result.culprit.op, result.culprit.kind, result.culprit.exact) == ("tanh", "forward", 1.0)
    assert result.culprit.engine is not None and math.isnan(result.culprit.engine)
    assert check("a = tanh(x); a * y", {"x": 4, "y": 2}, engine="misbehaving:TanhByExp").verdict is Verdict.PASS


def test_a_dict_of_local_derivatives_is_not_called_eq_for_plus_eq(misbehaving: ModuleType) -> None:
    result = check("x - x + x * y", {"x": 2, "y": 3}, engine="misbehaving:OperandDict")
    assert result.verdict is Verdict.FAIL
    assert result.culprit is not None
    assert (result.culprit.op, result.culprit.kind) == ("sub", "accumulation")
    assert "= for +=" not in result.culprit.message
    assert result.culprit.message.startswith(
        "sub at `x - x`: with one node in both operand slots (1.75 * (a - a) at a = 2), it gives d/da = -1.75 where "
        "the exact value is 0")


def test_eq_for_plus_eq_is_still_named_where_that_is_the_evidence(engines: ModuleType) -> None:
    result = check(EXPR, {"x": 2, "y": 3}, engine="engines:MulAssign")
    assert result.culprit is not None and "(= for +=)" in result.culprit.message


def test_an_op_raising_in_its_forward_for_large_inputs_is_named(misbehaving: ModuleType) -> None:
    result = check("a = x * y; tanh(a) + y", {"x": 200, "y": 2}, engine="misbehaving:TanhOverflows")
    assert (result.verdict, result.message) == (
        Verdict.FAIL, "engine raised OverflowError: math range error; the exact value and gradients are finite in the "
        "engine's precision")
    assert result.culprit is not None
    assert (result.culprit.op, result.culprit.kind) == ("tanh", "forward")
    assert result.culprit.message == "tanh raised OverflowError in its forward at (400): math range error"


def test_an_op_that_hands_on_a_non_number_is_named_not_the_op_that_reads_it(textbook: ModuleType) -> None:
    # tanh stores a Value in .data; exp, the stock op after it, raises reading it
    result = check("exp(tanh(x))", {"x": 0.5}, engine=textbook.TanhWrapsValue)
    assert result.verdict is Verdict.FAIL and result.culprit is not None
    assert (result.culprit.op, result.culprit.kind) == ("tanh", "forward")
    assert result.culprit.message.startswith("tanh at `tanh(x)` returned a node whose value is a TanhWrapsValue, not a "
                                             "number; exp, which reads it, raised TypeError")


def test_recursion_in_backward_names_the_recursive_traversal(engines: ModuleType) -> None:
    deep = "; ".join(f"t{i} = {'x' if i == 0 else f't{i - 1}'} * 1.0001" for i in range(1200)) + "; t1199"
    result = check(deep, {"x": 1}, engine="engines:RecursiveBackward")
    assert result.message.startswith("engine raised RecursionError")
    assert result.culprit is not None
    assert (result.culprit.op, result.culprit.kind) == ("backward", "traversal")
    assert "it walks the graph recursively (build calls itself, " in result.culprit.message
    depth = int(result.culprit.message.split("build calls itself, ")[1].split(" deep")[0])
    assert 500 < depth < 1200  # stopped by the recursion limit, short of the graph's 1,200 ops


def test_engines_that_keep_only_the_leaves_gradients_get_no_culprit(misbehaving: ModuleType) -> None:
    result = check("a = sin(x); a * y", {"x": 1, "y": 2}, engine="misbehaving:LeafGradients")
    assert result.verdict is Verdict.FAIL  # its sin rule is wrong: d/dx fails
    by_name = {q.name: q for q in result.quantities}
    assert by_name["x"].verdict is Verdict.FAIL
    assert (by_name["a"].verdict, by_name["a"].engine) == (Verdict.SKIP, None)
    assert by_name["a"].note == "the engine does not report this gradient"
    assert result.culprit is None  # never "backward dropped an accumulation" for gradients never stored


def test_a_tiny_wrong_gradient_upstream_is_followed_not_blamed_on_the_traversal(textbook: ModuleType) -> None:
    # d/dy of tanh(y) at y = 11 is 1.1e-9, and 1 - t for 1 - t**2 halves it: off by less than the walk's
    # absolute tolerance at y, by 5.6e-8 at x. Every op below tanh is right: the culprit is tanh's rule.
    graph = prepare("tanh(x * 100)", ["x"])
    found = localise(graph, {"x": Fraction("0.11")}, resolve("textbook:TanhNoSquare"))
    assert found is not None and (found.op, found.kind) == ("tanh", "rule")
    assert "every op's backward rule is right" not in found.message


def test_an_op_that_delegates_blames_the_op_it_calls(textbook: ModuleType) -> None:
    # textbook's x - y is x + (-y), and -y is y * -1: with = for += in mul, sub fails only through mul
    found = culprit_of("textbook:MulAssign", "x - x", {"x": Fraction(7)})
    assert found is not None and (found.op, found.kind) == ("mul", "accumulation")
    assert found.message.startswith("mul (which sub at `x - x` calls): overwrites the gradient")
    # a sub that is wrong in its own code is still sub
    assert culprit_of("engines:SubSignFlip", "x - y", {"x": Fraction(2), "y": Fraction(3)}).op == "sub"


def test_a_wrong_rule_outranks_the_nondeterminism_it_causes() -> None:
    unstable = Culprit("backward", CulpritKind.NONDETERMINISM, "x", message=(
        "the engine is not deterministic: two runs of the same graph on fresh builds gave d/dx = 1.0, then -2.0 "
        "(an order taken from a set or a dict of nodes, say); the table shows the first run"))
    rule = Culprit("mul", CulpritKind.ACCUMULATION, "x", message="mul at `x * y`: overwrites")
    assert primary(rule, unstable) == Culprit("mul", CulpritKind.ACCUMULATION, "x", message=(
        "mul at `x * y`: overwrites; two runs of the same graph on fresh builds gave d/dx = 1.0, then -2.0, as a "
        "wrong rule does in a backward whose order changes from run to run"))
    traversal = Culprit("backward", CulpritKind.TRAVERSAL, "x")
    assert primary(traversal, unstable) is unstable and primary(None, unstable) is unstable
    assert primary(rule, None) is rule


def test_a_tiny_value_computed_by_cancellation_is_named(textbook: ModuleType) -> None:
    # tanh(1e-12) as (exp(x) - exp(-x)) / (exp(x) + exp(-x)): 4 of 16 digits, an absolute error of 3e-17
    found = culprit_of("textbook:TanhCancelling", "tanh(x) * 2 + x", {"x": Fraction("1e-12")})
    assert found is not None and (found.op, found.kind) == ("tanh", "forward")
    assert "(4 of 16 digits right)" in found.message
    # a correct engine's cancellation in a subtraction of its own operands is not an op's fault
    assert culprit_of("textbook:Value", "(x - 0.3) * 1e20", {"x": Fraction("0.30000000000001")}) is None


def test_a_value_a_few_digits_short_gives_way_to_a_wrong_backward_rule(textbook: ModuleType) -> None:
    # tanh(5e-4) as a ratio of exponentials is right to 12 digits: alone it is named (the case may ask for
    # every digit), beside mul's = for +=, which is what makes the gradient wrong, mul is
    expr, point = "tanh(x * 0.001) * 3 + x * y + x", {"x": Fraction(1, 2), "y": Fraction(3, 2)}
    alone = culprit_of("textbook:TanhCancelling", expr, point)
    assert alone is not None and (alone.op, alone.kind) == ("tanh", "forward") and "(12 of 16 digits right)" in alone.message
    both = culprit_of("textbook:TanhCancellingMulAssign", expr, point)
    assert both is not None and (both.op, both.kind) == ("mul", "accumulation")


def test_an_engine_that_refuses_numbers_is_unit_tested_without_them(textbook: ModuleType) -> None:
    # mul's = for +=: the probe 1.75 * op(a, b) cannot even be built on Values that refuse a float, which
    # must not read as a wrong rule; without the constant, the accumulation shows
    found = culprit_of("textbook:NumberFreeMulAssign", "a = x * y; a + x", {"x": Fraction(2), "y": Fraction(3)})
    assert found is not None and (found.op, found.kind) == ("mul", "accumulation")
    assert found.message.startswith("mul at `a = x * y`: overwrites the gradient of its input")


def test_an_op_that_writes_into_its_input_is_named_not_the_op_that_read_it_after(textbook: ModuleType) -> None:
    # abs sets x.data = 2 at x = -2: relu(x) read -2 before it and is right, though x now holds 2
    for expr in ("relu(x) + abs(x)", "abs(x) + relu(x)"):
        found = culprit_of("textbook:AbsInPlace", expr, {"x": Fraction(-2)})
        assert found is not None and (found.op, found.kind) == ("abs", "forward"), expr
        assert found.message == ("abs at `abs(x)` writes into its input: x holds 2.0 after it runs, given -2.0, "
                                 "and every op that reads x after it reads 2.0")
    # float32 engines hold their inputs rounded: that is no write
    assert culprit_of("torch:float32", "relu(x) + abs(x)", {"x": Fraction(1, 10)}) is None


def test_where_reruns_come_out_right_each_op_is_tested_alone(textbook: ModuleType,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # a backward ordered by a set loses mul's overwritten contribution in some orders only: where the
    # localiser's own runs all came out right, the ops of the graph are unit-tested one by one
    import gradspec.diagnose.debug as debug

    monkeypatch.setattr(debug, "_localise_run", lambda *args: (None, False))
    found = culprit_of("textbook:MulAssign", "tanh(x*y + x**2) + exp(y)", {"x": Fraction(2), "y": Fraction(3)})
    assert found is not None and (found.op, found.kind) == ("mul", "accumulation")
    assert found.message.startswith("mul at `x * y`: overwrites") and "reruns of the whole graph came out right" \
        in found.message
    assert culprit_of("textbook:Value", "tanh(x*y + x**2) + exp(y)", {"x": Fraction(2), "y": Fraction(3)}) is None
