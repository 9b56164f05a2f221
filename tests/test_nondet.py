"""gradspec.checks.nondet: every check runs the engine twice; runs that disagree fail as nondeterministic,
with both values, unless the case or the command line allows the difference (nondet_tol)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from gradspec import check
from gradspec.casefile.loader import load_file
from gradspec.cli import main
from gradspec.engines.protocol import resolve
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


def test_a_difference_in_the_last_bit_fails_unless_a_tolerance_allows_it(misbehaving: ModuleType) -> None:
    strict = check(EXPR, {"x": 0.7}, engine="misbehaving:LastBit")
    assert strict.verdict is Verdict.FAIL
    assert [q.name for q in strict.quantities if q.verdict is Verdict.FAIL] == ["x"]
    allowed = check(EXPR, {"x": 0.7}, engine="misbehaving:LastBit", tolerance=Tolerance(nondet=1e-12))
    assert allowed.verdict is Verdict.PASS
    assert next(q for q in allowed.quantities if q.name == "x").note.endswith(", within nondet_tol 1e-12")


CASES = """
cases:
  - id: wobbly
    expr: a = tanh(x); b = a * x; b * a + x
    at: {x: 0.7}
  - id: tolerant
    nondet_tol: 1e-12
    expr: a = tanh(x); b = a * x; b * a + x
    at: {x: 0.7}
"""


def test_the_case_key_and_the_command_line(misbehaving: ModuleType, write_case: Callable[..., Path]) -> None:
    path = write_case(CASES)
    wobbly, tolerant = load_file(path).cases
    assert (wobbly.tolerance.nondet, tolerant.tolerance.nondet) == (0.0, 1e-12)
    engine = resolve("misbehaving:LastBit")
    assert [r.verdict for r in run_case(wobbly, engine)] == [Verdict.FAIL]
    assert [r.verdict for r in run_case(tolerant, engine)] == [Verdict.PASS]
    out = io.StringIO()
    assert main(["run", str(path), "--engine", "misbehaving:LastBit", "-q"], out, io.StringIO()) == 1
    assert main(["run", str(path), "--engine", "misbehaving:LastBit", "--nondet-tol", "1e-9"], out, io.StringIO()) == 0
    err = io.StringIO()
    assert main(["run", str(path), "--nondet-tol", "-1"], out, err) == 2
    assert err.getvalue() == "gradspec: --nondet-tol must be 0 or more\n"


def test_a_negative_tolerance_in_a_case_file_is_a_located_error(write_case: Callable[..., Path]) -> None:
    path = write_case(CASES.replace("nondet_tol: 1e-12", "nondet_tol: -1"))
    with pytest.raises(CaseFileError) as info:
        load_file(path)
    assert str(info.value) == f"{path}:6:17: [tolerant] cases[1].nondet_tol: -1 is less than the minimum of 0"
