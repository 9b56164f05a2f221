"""The result model: verdict order, tolerances, the plain-text table, a run's counts and exit code."""

from __future__ import annotations

import json
import math

import pytest

from gradspec.report.common import engines_of
from gradspec.report.terminal import skip_lines, summary
from gradspec.results import CheckResult, Culprit, CulpritKind, Quantity, Role, Run, Tolerance, Verdict, worst


def q(name: str, role: Role, verdict: Verdict, engine: float | None = 1.0, symbolic: str = "", note: str = "") -> Quantity:
    return Quantity(name, role, engine, 1.0, 1.0, 0.0, 0.0, 1e-7, verdict, symbolic=symbolic, note=note)


def test_worst_orders_verdicts_by_severity() -> None:
    assert worst([]) is Verdict.PASS
    assert worst([Verdict.PASS, Verdict.SKIP]) is Verdict.SKIP
    assert worst([Verdict.SKIP, Verdict.XFAIL, Verdict.PASS]) is Verdict.XFAIL
    assert worst([Verdict.CONVENTION, Verdict.XFAIL]) is Verdict.CONVENTION
    assert worst((Verdict.FAIL, Verdict.CONVENTION, Verdict.PASS)) is Verdict.FAIL
    assert worst([Verdict.FAIL, Verdict.ERROR]) is Verdict.ERROR


def test_tolerance_bound_is_absolute_plus_relative_and_zero_off_the_finite_numbers() -> None:
    tol = Tolerance(rtol=1e-3, atol=1e-6)
    assert tol.bound(2.0) == pytest.approx(1e-6 + 2e-3)
    assert tol.bound(-2.0) == tol.bound(2.0)
    assert tol.bound(math.inf) == 0.0
    assert tol.bound(math.nan) == 0.0
    assert (Tolerance().rtol, Tolerance().atol, Tolerance().h) == (1e-7, 0.0, 1e-4)  # tiny values judged relatively


def test_the_enums_read_and_serialise_as_their_text() -> None:
    assert str(Verdict.CONVENTION) == "convention" and f"{Role.INTERMEDIATE}" == "intermediate"
    assert json.dumps({"role": Role.PROPERTY, "kind": CulpritKind.ACCUMULATION}) == '{"role": "property", "kind": "accumulation"}'
    assert Role("input") is Role.INPUT and Role.VALUE == "value"


def test_ok_and_failures() -> None:
    quantities = (q("value", Role.VALUE, Verdict.PASS), q("x", Role.INPUT, Verdict.CONVENTION), q("y", Role.INPUT, Verdict.FAIL))
    result = CheckResult("x*y", {"x": 1.0, "y": 2.0}, "builtin", Verdict.FAIL, quantities)
    assert not result.ok
    assert [f.name for f in result.failures()] == ["x", "y"]
    # pass, fail, convention, imprecise, skip, xfail, error: imprecise fails only under --strict
    assert [CheckResult("e", {}, "b", v).ok for v in Verdict] == [True, False, True, True, True, True, False]
    assert result.point_text == "x=1,y=2"


def test_table_shows_the_numbers_the_notes_the_culprit_and_the_shrunk_case() -> None:
    culprit = Culprit("mul", CulpritKind.RULE, "x * y", "left", 2.0, 3.0, "mul's rule is wrong")
    result = CheckResult(
        "x*y", {"x": 1.5}, "mine", Verdict.FAIL,
        (q("value", Role.VALUE, Verdict.PASS), q("x", Role.INPUT, Verdict.FAIL, engine=None, symbolic="y", note="off"),
         q("linearity d/dx", Role.PROPERTY, Verdict.PASS)),
        message="a note", kinks=("relu at x",), culprit=culprit, shrunk="id: c\nexpr: x")
    lines = result.table().splitlines()
    assert lines[0] == "FAIL  x*y  at x=1.5  on mine"
    assert lines[1:3] == ["  a note", "  at a kink: relu at x"]
    assert lines[3].split() == ["engine", "exact", "numerical", "abs", "err", "rel", "err", "tol", "verdict"]
    assert lines[4].split() == ["value", "1", "1", "1", "0", "0", "1e-07", "pass"]
    assert lines[5].split() == ["d/dx", "-", "1", "1", "0", "0", "1e-07", "fail"]
    assert lines[6].split()[0] == "linearity"  # a property is named as it is, without d/d
    assert lines[7:] == ["  d/dx = y", "  x: off", "  culprit: mul's rule is wrong", "  smallest failing case:",
                         "    id: c", "    expr: x"]


def test_culprit_as_dict_has_every_field() -> None:
    c = Culprit("backward", CulpritKind.TRAVERSAL, "a", exact=1.0, engine=2.0, message="m")
    assert c.as_dict() == {"op": "backward", "kind": "traversal", "node": "a", "argument": "", "exact": 1.0,
                           "engine": 2.0, "message": "m"}


def test_a_run_counts_by_engine_and_file_and_sets_the_exit_code() -> None:
    results = (CheckResult("x", {}, "a", Verdict.PASS, path="f1"), CheckResult("x", {}, "a", Verdict.FAIL, path="f2"),
               CheckResult("x", {}, "b", Verdict.SKIP, path="f1"))
    run = Run(results, ("a", "b"), ("f1", "f2"))
    assert run.counts()[Verdict.PASS] == 1 and run.counts()[Verdict.FAIL] == 1 and run.counts()[Verdict.SKIP] == 1
    assert run.counts("a") == {**dict.fromkeys(Verdict, 0), Verdict.PASS: 1, Verdict.FAIL: 1}
    assert run.counts(path="f1") == {**dict.fromkeys(Verdict, 0), Verdict.PASS: 1, Verdict.SKIP: 1}
    assert run.exit_code == 1
    assert Run(results[:1], ("a",), ("f1",)).exit_code == 0
    assert Run(results[:1], ("a",), ("f1",), errors=("f:1:1: bad",)).exit_code == 2
    assert Run((CheckResult("x", {}, "a", Verdict.ERROR),), ("a",), ()).exit_code == 2


def test_a_check_run_in_another_dtype_compares_for_its_engine() -> None:
    # a float32-only function case on torch reports as torch:float32: torch compared, the run passes
    run = Run((CheckResult("x", {}, "torch:float32", Verdict.PASS),), ("torch",), ())
    assert run.idle_engines() == [] and run.exit_code == 0
    assert engines_of(run) == ["torch:float32"]  # no empty row for torch
    assert summary(run).splitlines()[1].split() == ["torch:float32", "1", "0", "0", "0", "0", "0", "0", "1"]
    # an engine of the run whose checks all skipped still compared nothing, whatever another engine did
    run = Run((CheckResult("x", {}, "torch:float32", Verdict.PASS), CheckResult("x", {}, "jax", Verdict.SKIP)),
              ("torch", "jax"), ())
    assert run.idle_engines() == ["jax"] and run.exit_code == 1
    assert engines_of(run) == ["jax", "torch:float32"]
    assert skip_lines(run)[-1] == "engine jax compared nothing: all 1 of its checks were skipped"
    # what its checks ended as, where not all were skipped (a function that cannot be imported is an error)
    run = Run((CheckResult("x", {}, "torch", Verdict.ERROR), CheckResult("x", {}, "torch", Verdict.SKIP)), ("torch",), ())
    assert skip_lines(run)[-1] == "engine torch compared nothing: its 2 checks: 1 skipped, 1 error"
    assert summary(run).endswith("; 0 case-file error(s); 0.00s")


def test_a_tensor_convention_is_counted_by_its_quantitys_reason_not_the_header() -> None:
    header = "inputs x[2, 3], w[2]; cotangent seed 4065747235; jvp not checked"
    kink = Quantity("x (vjp0)", Role.INPUT, 0.1, 0.0, None, 0.1, math.inf, 1e-9, Verdict.CONVENTION,
                    note="another subgradient at a kink")
    results = (CheckResult("amax(x)", {}, "torch", Verdict.CONVENTION, (kink,), message=header),
               CheckResult("amax(x)", {}, "jax", Verdict.CONVENTION, (kink,), message=header + " (2)"))
    assert Run(results, ("torch", "jax"), ()).reasons(Verdict.CONVENTION) == [("another subgradient at a kink", 2)]
