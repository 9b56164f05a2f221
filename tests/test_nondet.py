"""gradspec.checks.nondet: every check runs the engine twice; runs that disagree by more than rounding can
explain fail as nondeterministic, with both values, unless the case or the command line allows the
difference (nondet_tol); deterministic asks for bitwise agreement."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from gradspec import check
from gradspec.casefile.loader import load_file
from gradspec.cli import main
from gradspec.engines.resolve import resolve
from gradspec.errors import CaseFileError
from gradspec.results import Tolerance, Verdict
from gradspec.run.runner import run_case

EXPR = "a = tanh(x); b = a * x; b * a + x"


def test_runs_that_disagree_fail_with_both_values_and_one_run_feeds_everything(misbehaving: ModuleType) -> None:
    result = check(EXPR, {"x": 0.7}, engine="misbehaving:Alternating")
    assert result.verdict is Verdict.FAIL
    x = next(q for q in result.quantities if q.name == "x")
    assert x.verdict is Verdict.FAIL
    first = x.engine
    assert x.note.startswith("nondeterministic: a second run on a fresh build gave ")
    second = float(x.note.split(" gave ")[1].split(" ")[0])
    # one run gives the graph's d/dx, the other only the direct path's 1
    assert sorted([first, second]) == [1.0, pytest.approx(x.exact, rel=1e-15)]
    assert result.culprit is not None and result.culprit.kind == "nondeterminism"
    assert result.culprit.engine == first  # the culprit speaks of the run the table shows
    assert f"d/dx = {first!r}, then {second!r}" in result.culprit.message


def test_a_deterministic_engine_is_judged_as_before() -> None:
    result = check(EXPR, {"x": 0.7})
    assert result.verdict is Verdict.PASS and all("nondeterministic" not in q.note for q in result.quantities)


def test_a_difference_in_the_last_bit_passes_as_rounding_noted_in_ulps(misbehaving: ModuleType) -> None:
    result = check(EXPR, {"x": 0.7}, engine="misbehaving:LastBit")
    assert result.verdict is Verdict.PASS and result.culprit is None
    x = next(q for q in result.quantities if q.name == "x")
    assert x.verdict is Verdict.PASS
    assert x.note.startswith("runs differ by 1 ulp (") and x.note.endswith(": the engine's sums are order-dependent")
    assert result.message == "runs differ by up to 1 ulp: the engine's sums are order-dependent"
    # the bound is twice the quantity's own rounding allowance, as the note says
    allowed = float(x.note.split("allows two runs (")[1].split(")")[0])
    assert 1e-16 < allowed < 1e-14


def test_a_difference_in_the_last_bit_fails_when_bitwise_agreement_is_asked(misbehaving: ModuleType) -> None:
    strict = check(EXPR, {"x": 0.7}, engine="misbehaving:LastBit", tolerance=Tolerance(nondet=0.0))
    assert strict.verdict is Verdict.FAIL
    assert [q.name for q in strict.quantities if q.verdict is Verdict.FAIL] == ["x"]
    assert strict.culprit is not None and "the case asks for bitwise agreement" in strict.culprit.message
    allowed = check(EXPR, {"x": 0.7}, engine="misbehaving:LastBit", tolerance=Tolerance(nondet=1e-12))
    assert allowed.verdict is Verdict.PASS
    assert next(q for q in allowed.quantities if q.name == "x").note.endswith(", within nondet_tol 1e-12")


def test_noise_far_inside_the_tolerance_but_beyond_rounding_still_fails(misbehaving: ModuleType) -> None:
    result = check("a = x * y; b = a * x; b * a + y", {"x": 0.7, "y": 1.3}, engine="misbehaving:NoisyMul")
    assert result.verdict is Verdict.FAIL
    assert result.culprit is not None and result.culprit.kind == "nondeterminism"
    assert "further apart than rounding in the engine's precision lets two runs be" in result.culprit.message
    failed = [q for q in result.quantities if q.verdict is Verdict.FAIL]
    assert failed and all("more than rounding allows two runs" in q.note for q in failed)
    # each run alone is within rtol 1e-7 of the exact value: only the comparison of runs catches it
    assert all(q.rel_error is not None and q.rel_error < 1e-8 for q in failed)


def test_an_engine_that_sums_in_a_sets_order_passes_and_bitwise_agreement_fails_it(misbehaving: ModuleType) -> None:
    # A node used by many others: its gradient is a sum whose order changes with the set's hash order.
    expr = "a = tanh(x); b = a * x; c = b * a; d = c * b + a * x; e = d * c + b * a; e * a + d * b + c * x"
    points = [{"x": 0.1 * k + 0.05} for k in range(40)]
    results = [check(expr, p, engine="misbehaving:SetChildren") for p in points]
    assert [r.verdict for r in results] == [Verdict.PASS] * 40
    spread = [r.message for r in results if r.message]
    assert spread and all(m.startswith("runs differ by up to ") for m in spread)  # the sums did move
    bitwise = [check(expr, p, engine="misbehaving:SetChildren", tolerance=Tolerance(nondet=0.0)) for p in points]
    failed = [r for r in bitwise if r.verdict is Verdict.FAIL]
    assert failed and all(r.culprit is not None and r.culprit.kind == "nondeterminism" for r in failed)


CASES = """
cases:
  - id: wobbly
    expr: a = tanh(x); b = a * x; b * a + x
    at: {x: 0.7}
  - id: tolerant
    nondet_tol: 1e-12
    expr: a = tanh(x); b = a * x; b * a + x
    at: {x: 0.7}
  - id: strict
    deterministic: true
    expr: a = tanh(x); b = a * x; b * a + x
    at: {x: 0.7}
"""


def test_the_case_key_and_the_command_line(misbehaving: ModuleType, write_case: Callable[..., Path]) -> None:
    path = write_case(CASES)
    wobbly, tolerant, strict = load_file(path).cases
    assert (wobbly.tolerance.nondet, tolerant.tolerance.nondet, strict.tolerance.nondet) == (None, 1e-12, 0.0)
    engine = resolve("misbehaving:LastBit")
    assert [r.verdict for r in run_case(wobbly, engine)] == [Verdict.PASS]
    assert [r.verdict for r in run_case(tolerant, engine)] == [Verdict.PASS]
    assert [r.verdict for r in run_case(strict, engine)] == [Verdict.FAIL]
    out = io.StringIO()
    assert main(["run", str(path), "--engine", "misbehaving:LastBit", "-q"], out, io.StringIO()) == 1  # strict
    assert main(["run", str(path), "--engine", "misbehaving:LastBit", "--nondet-tol", "1e-9"], out, io.StringIO()) == 0
    out = io.StringIO()
    assert main(["run", str(path), "--engine", "misbehaving:LastBit", "--deterministic", "-q"], out, io.StringIO()) == 1
    assert "FAILED: 3 checks of 3 cases" in out.getvalue() and ": 3 fail;" in out.getvalue()
    err = io.StringIO()
    assert main(["run", str(path), "--nondet-tol", "-1"], out, err) == 2
    assert err.getvalue() == "gradspec: --nondet-tol must be 0 or more\n"
    err = io.StringIO()
    assert main(["run", str(path), "--nondet-tol", "1e-9", "--deterministic"], out, err) == 2
    assert "not allowed with argument" in err.getvalue()


def test_a_negative_tolerance_in_a_case_file_is_a_located_error(write_case: Callable[..., Path]) -> None:
    path = write_case(CASES.replace("nondet_tol: 1e-12", "nondet_tol: -1"))
    with pytest.raises(CaseFileError) as info:
        load_file(path)
    assert str(info.value) == f"{path}:6:17: [tolerant] cases[1].nondet_tol: -1 is less than the minimum of 0"


def test_deterministic_and_nondet_tol_together_are_a_located_error(write_case: Callable[..., Path]) -> None:
    path = write_case(CASES.replace("    deterministic: true\n", "    deterministic: true\n    nondet_tol: 0\n"))
    with pytest.raises(CaseFileError) as info:
        load_file(path)
    assert "[strict]" in str(info.value) and "not both" in str(info.value)


def test_the_file_defaults_take_deterministic(write_case: Callable[..., Path]) -> None:
    path = write_case("defaults:\n  deterministic: true\n" + CASES)
    wobbly, tolerant, strict = load_file(path).cases
    assert (wobbly.tolerance.nondet, tolerant.tolerance.nondet, strict.tolerance.nondet) == (0.0, 1e-12, 0.0)
