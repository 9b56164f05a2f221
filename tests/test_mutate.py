"""Mutation testing: every mutant builds, differs from the engine, and the built-in library kills it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from gradspec import engine as builtin_engine
from gradspec.casefile.loader import load_file
from gradspec.checks.check import check
from gradspec.checks.results import Verdict
from gradspec.cli import main
from gradspec.tools.mutate import MUTANTS, Mutant, build, mutate

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_applies_once_and_builds(mutant: Mutant) -> None:
    assert inspect.getsource(builtin_engine).count(mutant.old) == 1
    cls = build(mutant)
    assert cls is not builtin_engine.Value
    assert cls(2.0).data == 2.0


def test_a_mutant_with_a_stale_snippet_is_refused() -> None:
    with pytest.raises(ValueError, match="occurs 0 times"):
        build(Mutant("stale", "nothing", "this text is not in engine.py", "x"))


@pytest.mark.parametrize(
    ("name", "expression", "point"),
    [
        ("mul-assign", "x*x + x", {"x": 3}),
        ("tanh-sign", "tanh(x)", {"x": 0.5}),
        ("pow-factor", "x**3", {"x": 2}),
        ("relu-kink", "relu(x - 1)", {"x": 1}),
        ("exp-overflow", "exp(x)", {"x": 800}),
    ],
)
def test_mutants_really_carry_their_bug(name: str, expression: str, point: dict[str, float]) -> None:
    mutant = next(m for m in MUTANTS if m.name == name)
    assert check(expression, point).verdict is Verdict.PASS
    assert check(expression, point, engine=build(mutant)).verdict in (Verdict.FAIL, Verdict.CONVENTION)


def test_the_builtin_library_kills_every_mutant() -> None:
    cases = [c for p in sorted((ROOT / "cases").glob("*.gradspec.yaml")) for c in load_file(p).cases]
    report = mutate(cases, first=True)
    survivors = [m for m, killers in report.killers.items() if not killers]
    assert survivors == []
    assert report.score == 1.0


def test_a_thin_library_lets_mutants_survive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    thin = tmp_path / "thin.gradspec.yaml"
    thin.write_text("cases:\n  - id: mul\n    expr: x * y\n    at: {x: 2, y: 3}\n")
    assert main(["mutate", str(thin)]) == 1
    out = capsys.readouterr().out
    assert "mul-swapped          killed by 1" in out
    assert "tanh-sign            SURVIVED" in out
    assert f"mutation score: 1/{len(MUTANTS)} = 4%" in out  # one product kills only the swapped-operand mutant
