"""Running cases: the builtin engine passes every kind; deliberately broken engines fail the right checks, on the
right quantity, by the measured amount."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from gradspec.casefile.loader import load_file
from gradspec.casefile.model import Case, data_dir
from gradspec.engines.protocol import Engine
from gradspec.engines.resolve import resolve
from gradspec.results import CheckResult, Quantity, Verdict, overflow_policy
from gradspec.run.runner import applies, run_case, run_files, run_point

BUILTIN = resolve("builtin")


@pytest.fixture
def case(write_case: Callable[..., Path]) -> Callable[[str], Case]:
    """The single case of a YAML snippet (the `cases:` header is added)."""
    counter = iter(range(1000))

    def make(text: str) -> Case:
        body = "\n".join("  " + line for line in text.strip("\n").splitlines())
        cases = load_file(write_case("cases:\n" + body + "\n", f"c{next(counter)}.gradspec.yaml")).cases
        assert len(cases) == 1
        return cases[0]

    return make


def only(results: list[CheckResult]) -> CheckResult:
    assert len(results) == 1
    return results[0]


def quantity(result: CheckResult, name: str) -> Quantity:
    (q,) = [q for q in result.quantities if q.name == name]
    return q


# -- the builtin engine -------------------------------------------------------------------------------------


def test_builtin_passes_every_kind(kinds_file: Path) -> None:
    cf = load_file(kinds_file)
    seen = set()
    for c in cf.cases:
        results = run_case(c, BUILTIN)
        assert len(results) == max(1, len(c.points))
        for r in results:
            assert r.verdict is Verdict.PASS, r.table()
            assert (r.case_id, r.path, r.kind, r.engine) == (c.id, str(kinds_file), c.kind, "builtin")
            assert all(q.verdict is Verdict.PASS for q in r.quantities)
        seen.add(c.kind)
    assert seen == {"gradient", "stationary", "linearity", "chain-rule", "deep", "training"}


def test_result_records_where_it_came_from(kinds_file: Path) -> None:
    c = next(c for c in load_file(kinds_file).cases if c.id == "grad-intermediates")
    first, second = run_case(c, BUILTIN)
    assert (first.line, second.line) == (19, 20)
    assert first.point == {"x": 2.0, "y": 3.0}
    assert first.expression == "a = x * y\nb = a + x\nb ** 2 - tanh(y)\n"
    names = [q.name for q in first.quantities]
    # the built-in engine has forward mode, checked by default: its JVP and its consistency with reverse mode
    assert names == ["value", "x", "y", "a", "b", "jvp", "mode consistency"]
    assert quantity(first, "a").role == "intermediate"
    # (x*y + x)**2 - tanh(y) at (2, 3): d/dx = 2*(x*y + x)*(y + 1) = 64, d/da = d/db = 2*b = 16
    assert quantity(first, "x").exact == 64.0
    assert quantity(first, "a").exact == 16.0 and quantity(first, "b").exact == 16.0
    assert quantity(first, "y").exact_text.startswith("31.990133962834")


def test_run_files_runs_every_case_on_every_engine(kinds_file: Path, engines: ModuleType) -> None:
    cf = load_file(kinds_file)
    results = list(run_files([cf], [BUILTIN, resolve(engines.Same)]))
    per_engine = sum(max(1, len(c.points)) for c in cf.cases)
    assert len(results) == 2 * per_engine == 26
    assert {r.engine for r in results} == {"builtin", "engines:Same"}
    assert all(r.verdict is Verdict.PASS for r in results)


# -- broken engines: the right quantity fails, by the measured amount -------------------------------------


def test_assignment_instead_of_accumulation(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: square-by-product
  expr: x * x
  at: {x: 3}
""")
    r = only(run_case(c, resolve(engines.MulAssign)))
    assert r.verdict is Verdict.FAIL
    assert quantity(r, "value").verdict is Verdict.PASS
    q = quantity(r, "x")
    assert q.verdict is Verdict.FAIL
    assert (q.engine, q.exact, q.abs_error, q.rel_error) == (3.0, 6.0, 3.0, 0.5)
    assert q.numerical == pytest.approx(6.0, rel=1e-9)
    assert r.failures() == [q]
    assert only(run_case(c, BUILTIN)).verdict is Verdict.PASS


def test_assignment_bug_only_hits_the_reused_input(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: reuse
  expr: x * y + x
  at: {x: 2, y: 3}
""")
    r = only(run_case(c, resolve(engines.MulAssign)))
    assert [(q.name, q.verdict) for q in r.quantities] == [
        ("value", Verdict.PASS), ("x", Verdict.FAIL), ("y", Verdict.PASS)]
    assert (quantity(r, "x").engine, quantity(r, "x").exact) == (3.0, 4.0)


def test_tanh_sign_flip(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: tanh
  expr: tanh(x) + y
  at: [{x: 0.5, y: 1}, {x: -2, y: 0}]
""")
    results = run_case(c, resolve(engines.TanhSignFlip))
    assert [r.verdict for r in results] == [Verdict.FAIL, Verdict.FAIL]
    for r, x in zip(results, (0.5, -2.0), strict=True):
        q = quantity(r, "x")
        t = math.tanh(x)
        assert q.exact == pytest.approx(1 - t * t, rel=1e-15)
        assert q.engine == pytest.approx(1 + t * t, rel=1e-15)
        assert q.abs_error == pytest.approx(2 * t * t, rel=1e-12)
        assert quantity(r, "y").verdict is Verdict.PASS
        assert "d/dx = 1 - tanh(x)**2" in r.table()


def test_pow_wrong_factor(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: cube
  expr: x ** 3
  at: {x: 2}
""")
    r = only(run_case(c, resolve(engines.PowWrongFactor)))
    q = quantity(r, "x")
    assert (q.engine, q.exact, q.abs_error) == (8.0, 12.0, 4.0)
    assert q.rel_error == pytest.approx(1 / 3)
    assert q.symbolic == "3*x**2"


def test_exp_without_the_chain_factor(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: scaled-exp
  expr: 3 * exp(x)
  at: {x: 1}
""")
    r = only(run_case(c, resolve(engines.ExpNoChain)))
    q = quantity(r, "x")
    assert q.verdict is Verdict.FAIL
    assert q.engine == pytest.approx(math.e, rel=1e-15)
    assert q.exact == pytest.approx(3 * math.e, rel=1e-15)
    assert q.abs_error == pytest.approx(2 * math.e, rel=1e-12)
    # exp alone (out.grad = 1) hides the bug
    alone = case("""
- id: bare-exp
  expr: exp(x)
  at: {x: 1}
""")
    assert only(run_case(alone, resolve(engines.ExpNoChain))).verdict is Verdict.PASS


DEEP = """
- id: deep-10000
  kind: deep
  init: x
  step: z * 0.9999 + 0.001
  repeat: 10000
  at: {x: 1}
"""


def test_recursive_backward_dies_on_a_deep_graph(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case(DEEP)
    ok = only(run_case(c, BUILTIN))
    assert ok.verdict is Verdict.PASS, ok.table()
    assert quantity(ok, "x").exact == pytest.approx(0.9999**10000, rel=1e-12)
    r = only(run_case(c, resolve(engines.RecursiveBackward)))
    assert r.verdict is Verdict.FAIL
    assert r.message.startswith("engine raised RecursionError: maximum recursion depth exceeded")
    assert r.quantities == ()
    assert r.case_id == "deep-10000" and r.kind == "deep"
    # the culprit is the traversal, read from where the error came out (backward), not left unnamed
    assert r.culprit is not None
    assert (r.culprit.op, r.culprit.kind) == ("backward", "traversal")
    assert r.culprit.message.startswith("backward raised RecursionError on a graph 20000 ops deep: it walks the "
                                        "graph recursively")
    # the same engine is fine on a shallow graph
    shallow = case("""
- id: shallow
  kind: deep
  init: x
  step: z * 0.5 + x
  repeat: 20
  at: {x: 1}
""")
    assert only(run_case(shallow, resolve(engines.RecursiveBackward))).verdict is Verdict.PASS


def test_engine_without_an_op_is_skipped(case: Callable[[str], Case], engines: ModuleType) -> None:
    no_tanh = resolve(engines.NoTanh)
    r = only(run_case(case("""
- id: tanh
  expr: tanh(x) * y
  at: {x: 1, y: 2}
"""), no_tanh))
    assert r.verdict is Verdict.SKIP
    assert r.message == "engine has no tanh"
    assert only(run_case(case("""
- id: mul
  expr: x * y
  at: {x: 1, y: 2}
"""), no_tanh)).verdict is Verdict.PASS
    train = case("""
- id: t
  kind: training
  model: {sizes: [1, 2, 1], activation: tanh}
  data: {x: [0.0, 1.0], y: [0.0, 1.0]}
  steps: 3
  lr: 0.1
  loss_ratio: 0.9
""")
    r = only(run_case(train, no_tanh))
    assert (r.verdict, r.message) == (Verdict.SKIP, "engine has no tanh")


def test_engine_that_raises(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: mul
  expr: x * y
  at: [{x: 1, y: 2}, {x: 3, y: 4}]
""")
    results = run_case(c, resolve(engines.Raises))
    assert [r.verdict for r in results] == [Verdict.FAIL, Verdict.FAIL]
    assert all(r.message == "engine raised RuntimeError: backward exploded" for r in results)
    assert all(r.quantities == () and r.point for r in results)
    assert results[1].point == {"x": 3.0, "y": 4.0}


def test_engine_returning_nan(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: tanh
  expr: tanh(x)
  at: {x: 0.5}
""")
    r = only(run_case(c, resolve(engines.NanTanh)))
    assert r.verdict is Verdict.FAIL
    for name in ("value", "x"):
        q = quantity(r, name)
        assert math.isnan(q.engine)  # type: ignore[arg-type]
        assert q.abs_error == math.inf
        assert q.verdict is Verdict.FAIL
    assert quantity(r, "value").exact == pytest.approx(math.tanh(0.5), rel=1e-15)


# -- properties ---------------------------------------------------------------------------------------------


def test_linearity_catches_a_missing_chain_factor(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: lin
  kind: linearity
  f: exp(x)
  g: x * x
  at:
    - {x: 0.5, a: 2, b: -1}
    - {x: -1, a: 1, b: 3}
""")
    assert all(r.verdict is Verdict.PASS for r in run_case(c, BUILTIN))
    bad, unit_a = run_case(c, resolve(engines.ExpNoChain))
    prop = quantity(bad, "linearity d/dx")
    assert prop.role == "property"
    assert prop.verdict is Verdict.FAIL
    # engine's d(a*exp(x) + b*x*x)/dx = exp(x) + 2*b*x (the factor a is lost); a*grad f + b*grad g = a*exp(x) + 2*b*x
    assert prop.engine == pytest.approx(math.exp(0.5) - 1.0, rel=1e-14)
    assert prop.exact == pytest.approx(2 * math.exp(0.5) - 1.0, rel=1e-14)
    assert prop.abs_error == pytest.approx(math.exp(0.5), rel=1e-12)
    # with a = 1 the bug cannot show
    assert quantity(unit_a, "linearity d/dx").verdict is Verdict.PASS
    assert unit_a.verdict is Verdict.PASS


def test_chain_rule_catches_a_missing_chain_factor(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: ch
  kind: chain-rule
  outer: u ** 2
  inner: exp(x)
  at: {x: 0.5}
""")
    ok = only(run_case(c, BUILTIN))
    assert ok.verdict is Verdict.PASS
    assert quantity(ok, "chain rule d/dx").verdict is Verdict.PASS
    r = only(run_case(c, resolve(engines.ExpNoChain)))
    prop = quantity(r, "chain rule d/dx")
    assert prop.verdict is Verdict.FAIL
    # composed: d/dx = exp(x) (factor 2u lost); outer'(u) * inner' = 2*exp(x) * exp(x)
    assert prop.engine == pytest.approx(math.exp(0.5), rel=1e-14)
    assert prop.exact == pytest.approx(2 * math.e, rel=1e-14)
    assert prop.abs_error == pytest.approx(2 * math.e - math.exp(0.5), rel=1e-12)
    assert quantity(r, "u").verdict is Verdict.PASS  # d/du is right; only the chain is broken


def test_chain_rule_property_holds_for_a_local_bug(case: Callable[[str], Case], engines: ModuleType) -> None:
    """A wrong local derivative is consistent with itself: the gradient check, not the property, catches it."""
    c = case("""
- id: ch
  kind: chain-rule
  outer: u * 3
  inner: tanh(x)
  at: {x: 0.5}
""")
    r = only(run_case(c, resolve(engines.TanhSignFlip)))
    assert quantity(r, "chain rule d/dx").verdict is Verdict.PASS
    assert quantity(r, "x").verdict is Verdict.FAIL


def test_table_labels_property_rows_by_their_name(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: ch
  kind: chain-rule
  outer: u ** 2
  inner: exp(x)
  at: {x: 0.5}
""")
    table = only(run_case(c, resolve(engines.ExpNoChain))).table()
    rows = [line.split()[0:3] for line in table.splitlines()]
    assert ["chain", "rule", "d/dx"] in rows, table
    assert "d/dchain" not in table


# -- training -------------------------------------------------------------------------------------------------


TRAIN = """
- id: train
  kind: training
  model: {sizes: [1, 4, 1], activation: relu, seed: 3}
  data:
    x: [-1.0, -0.5, 0.0, 0.5, 1.0]
    target: 2*x + 1
  steps: 80
  lr: 0.05
  loss_ratio: 0.5
"""


def test_training_passes_on_builtin_and_fails_with_zero_gradients(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case(TRAIN)
    ok = only(run_case(c, BUILTIN))
    assert ok.verdict is Verdict.PASS, ok.message
    loss = quantity(ok, "loss")
    assert loss.rel_error is not None and loss.rel_error < 0.5
    r = only(run_case(c, resolve(engines.ZeroGrad)))
    assert r.verdict is Verdict.FAIL
    q = quantity(r, "loss")
    assert q.rel_error == 1.0  # final / initial: nothing moved
    initial = float(q.note.removeprefix("initial loss "))
    assert q.engine == pytest.approx(initial, rel=1e-5)
    assert r.message == f"loss {initial:.6g} -> {initial:.6g} (x1; must fall below x0.5)"
    assert r.expression == "MLP[1, 4, 1] relu, 80 steps at lr 0.05"


def test_training_with_an_engine_that_raises(case: Callable[[str], Case], engines: ModuleType) -> None:
    r = only(run_case(case(TRAIN), resolve(engines.Raises)))
    assert (r.verdict, r.message) == (Verdict.FAIL, "engine raised RuntimeError: backward exploded")


# -- kinks ----------------------------------------------------------------------------------------------------


def test_kink_convention_difference(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: relu0
  expr: relu(x) * y
  at: {x: 0, y: 2}
  kink: convention
""")
    builtin = only(run_case(c, BUILTIN))
    assert builtin.verdict is Verdict.PASS
    assert builtin.kinks == ("relu at 0",)
    r = only(run_case(c, resolve(engines.ReluOneAtZero)))
    assert r.verdict is Verdict.CONVENTION
    assert r.ok
    q = quantity(r, "x")
    assert (q.verdict, q.engine, q.exact) == (Verdict.CONVENTION, 2.0, 0.0)
    assert "another subgradient at a kink" in q.note
    assert r.failures() == [q]


def test_kink_any_accepts_every_subgradient(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: relu0
  expr: relu(x) * y
  at: {x: 0, y: 2}
  kink: any
""")
    for engine in (BUILTIN, resolve(engines.ReluOneAtZero)):
        r = only(run_case(c, engine))
        assert r.verdict is Verdict.PASS, r.table()
    q = quantity(only(run_case(c, resolve(engines.ReluOneAtZero))), "x")
    assert q.note == "a valid subgradient at a kink (kink: any)"


def test_kink_declared_convention(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: relu0
  expr: relu(x)
  at: {x: 0}
  kink: convention
  expect: {grad: {x: 1}}
""")
    r = only(run_case(c, resolve(engines.ReluOneAtZero)))
    assert r.verdict is Verdict.PASS
    assert quantity(r, "x").note == "the declared convention 1 at a kink"
    b = only(run_case(c, BUILTIN))
    assert b.verdict is Verdict.CONVENTION
    assert quantity(b, "x").note == "declared convention is 1; engine took another subgradient"


def test_kink_outside_the_subgradients_fails(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: relu0
  expr: relu(x) * y
  at: {x: 0, y: 2}
  kink: any
""")
    r = only(run_case(c, resolve(engines.ReluTwoAtZero)))
    assert r.verdict is Verdict.FAIL
    q = quantity(r, "x")
    assert (q.verdict, q.engine, q.exact, q.abs_error) == (Verdict.FAIL, 4.0, 0.0, 4.0)
    assert only(run_case(c, resolve(engines.ReluOneAtZero))).verdict is Verdict.PASS


# -- declared expectations ------------------------------------------------------------------------------------


def test_expect_finite_fails_on_inf(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: exp
  expr: exp(x)
  at: {x: 1}
  expect: {finite: true}
""")
    assert only(run_case(c, BUILTIN)).verdict is Verdict.PASS
    r = only(run_case(c, resolve(engines.InfExp)))
    assert r.verdict is Verdict.FAIL
    for name in ("value", "x"):
        q = quantity(r, name)
        assert q.engine == math.inf
        assert (q.verdict, q.note) == (Verdict.FAIL, "expected a finite value")


DOMAIN = """
- id: log-outside
  expr: log(x)
  at: [{x: -1}, {x: 0}]
  expect: {error: domain}
"""


def test_expect_domain_error_passes_on_nan_or_inf(case: Callable[[str], Case]) -> None:
    neg, zero = run_case(case(DOMAIN), BUILTIN)
    assert neg.verdict is Verdict.PASS and zero.verdict is Verdict.PASS
    assert neg.message.startswith("outside the domain (log needs x > 0, got x = -1.0 (in log(x)))")
    assert zero.message.startswith("outside the domain (log needs x > 0, got x = 0.0 (in log(x)))")


def test_expect_domain_error_passes_when_the_engine_raises(case: Callable[[str], Case], engines: ModuleType) -> None:
    for r in run_case(case(DOMAIN), resolve(engines.LogRaises)):
        assert r.verdict is Verdict.PASS
        assert r.message.endswith("engine raised ValueError as expected")


def test_expect_domain_error_fails_on_a_finite_value(case: Callable[[str], Case], engines: ModuleType) -> None:
    neg, zero = run_case(case(DOMAIN), resolve(engines.LogAbs))
    assert neg.verdict is Verdict.FAIL
    assert neg.message.startswith("outside the domain (log needs x > 0, got x = -1.0 (in log(x))), yet the engine returned")
    assert neg.message.endswith("yet the engine returned finite numbers: value 0, d/dx -1")
    assert zero.verdict is Verdict.PASS  # log|0| raises in math.log


# -- xfail, skip, engine filters ------------------------------------------------------------------------------

XFAIL = """
- id: known-bad
  expr: x * x
  at: {x: 3}
  xfail: the assignment bug
"""


def test_xfail_turns_a_failure_into_xfail(case: Callable[[str], Case], engines: ModuleType) -> None:
    r = only(run_case(case(XFAIL), resolve(engines.MulAssign)))
    assert r.verdict is Verdict.XFAIL
    assert r.message == "expected failure: the assignment bug"
    assert r.ok
    assert quantity(r, "x").verdict is Verdict.FAIL  # the measurement is kept


def test_xfail_unexpected_pass_fails(case: Callable[[str], Case]) -> None:
    r = only(run_case(case(XFAIL), BUILTIN))
    assert r.verdict is Verdict.FAIL
    assert r.message == "unexpectedly passed (xfail: the assignment bug)"
    assert not r.ok


def test_xfail_left_to_the_caller(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case(XFAIL)
    assert run_point(c, c.points[0], BUILTIN, apply_xfail=False).verdict is Verdict.PASS
    assert run_point(c, c.points[0], resolve(engines.MulAssign), apply_xfail=False).verdict is Verdict.FAIL


def test_engines_filter(case: Callable[[str], Case], engines: ModuleType) -> None:
    torch_only = case("""
- id: t
  expr: x * y
  at: {x: 1, y: 2}
  engines: [torch]
""")
    r = only(run_case(torch_only, BUILTIN))
    assert (r.verdict, r.message) == (Verdict.SKIP, "case is only for engines: torch")
    assert r.quantities == ()
    assert applies(torch_only, BUILTIN) == "case is only for engines: torch"

    mine = case("""
- id: m
  expr: x * x
  at: {x: 3}
  engines: [builtin, engines]
""")
    assert applies(mine, BUILTIN) is None
    # a module name selects every class of that module
    assert only(run_case(mine, resolve(engines.MulAssign))).verdict is Verdict.FAIL
    assert only(run_case(mine, resolve(engines.Same))).verdict is Verdict.PASS


def test_skip(case: Callable[[str], Case], engines: ModuleType) -> None:
    c = case("""
- id: s
  expr: x * x
  at: [{x: 3}, {x: 4}]
  skip: not today
""")
    for engine in (BUILTIN, resolve(engines.Raises)):
        results = run_case(c, engine)
        assert [(r.verdict, r.message) for r in results] == [(Verdict.SKIP, "not today")] * 2


# -- overflow policy -------------------------------------------------------------------------------------


def test_overflow_policy_in_cases(case: Callable[[str], Case], engines: ModuleType) -> None:
    engine = resolve(engines.MathOverflow)
    lenient = case("- id: e\n  expr: exp(x)\n  at: {x: 800}\n")
    strict = case("- id: e\n  expr: exp(x)\n  at: {x: 800}\n  expect: {ieee: true}\n")
    finite = case("- id: s\n  expr: sigmoid(x)\n  at: {x: -800}\n")
    r = only(run_case(lenient, engine))
    assert r.verdict is Verdict.CONVENTION and r.ok
    assert r.message == "overflow policy: raised OverflowError where IEEE 754 gives inf (value, x: math range error)"
    assert overflow_policy(r)
    r = only(run_case(strict, engine))
    assert r.verdict is Verdict.FAIL
    assert r.message == ("engine raised OverflowError: math range error; "
                         "the case expects IEEE 754 behaviour (inf for value, x)")
    assert only(run_case(finite, engine)).verdict is Verdict.FAIL
    # an IEEE engine satisfies both
    assert only(run_case(strict, BUILTIN)).verdict is Verdict.PASS
    assert only(run_case(lenient, BUILTIN)).verdict is Verdict.PASS


def test_float32_overflow_is_judged_against_float32_range(case: Callable[[str], Case]) -> None:
    # exp(100) is 2.7e43: beyond float32, finite in float64; raising is within policy only for float32
    class Raising(Engine):
        name = "raising"

        def leaf(self, x: float) -> object:
            raise OverflowError("out of range")

    exp100 = case("- id: e\n  expr: exp(x)\n  at: {x: 100}\n")
    float32, float64 = Raising(), Raising()
    float32.eps = 2.0**-23
    assert only(run_case(exp100, float32)).verdict is Verdict.CONVENTION
    assert only(run_case(exp100, float64)).verdict is Verdict.FAIL


def test_the_library_tries_tiny_and_huge_tanh(engines: ModuleType) -> None:
    cases = {c.id: c for c in load_file(data_dir("cases") / "edge-cases.gradspec.yaml").cases}
    engine = resolve(engines.TanhViaExp)  # tanh as (exp(2x) - 1)/(exp(2x) + 1)
    tiny = run_case(cases["tanh-tiny"], engine)
    assert [r.verdict for r in tiny] == [Verdict.FAIL, Verdict.FAIL]  # off by 2e-5 of tanh(+-1e-12)
    assert all(r.failures()[0].name == "value" for r in tiny)
    huge = run_case(cases["tanh-huge"], engine)
    assert huge[0].verdict is Verdict.FAIL  # exp(800) raises, yet tanh(400) = 1 is finite
    assert huge[0].message.startswith("engine raised OverflowError")
    assert all(r.verdict is Verdict.PASS for r in run_case(cases["tanh-tiny"], BUILTIN) + run_case(cases["tanh-huge"], BUILTIN))
