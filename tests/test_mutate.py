"""Mutation testing: every mutant builds, differs from the engine, and the built-in library kills it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from gradspec import engine as builtin_engine
from gradspec import engine_graph
from gradspec.casefile.loader import load_file
from gradspec.checks.api import check
from gradspec.cli import main
from gradspec.results import Verdict
from gradspec.tools.mutate import MUTANTS, Mutant, build, mutate

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_applies_once_and_builds(mutant: Mutant) -> None:
    sources = [inspect.getsource(builtin_engine), inspect.getsource(engine_graph)]
    assert sum(source.count(mutant.old) for source in sources) == 1
    cls = build(mutant)
    assert cls is not builtin_engine.Value
    assert cls(2.0).data == 2.0


def test_a_mutant_with_a_stale_snippet_is_refused() -> None:
    with pytest.raises(ValueError, match="occurs 0 times"):
        build(Mutant("stale", "nothing", "this text is not in engine.py", "x"))


@pytest.mark.parametrize(
    ("name", "expression", "point"),
    [
        ("accumulate-assign", "x*x + x", {"x": 3}),
        ("tanh-sign", "tanh(x)", {"x": 0.25}),  # its rule near 0 (1 - t*t, below |x| = 0.5)
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
    report = mutate(cases)
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
    # one product kills only the swapped-operand mutant, and (checked in forward mode by default) the
    # forward sweep that keeps one parent's term
    assert "jvp-assign           killed by 1" in out
    assert f"mutation score: 2/{len(MUTANTS)} = 7%" in out


SMALL = """\
cases:
  - id: scaled
    expr: x * 3
    at: {x: 2}
  - id: product
    expr: x * y
    at: {x: 2, y: 3}
  - id: tanh
    expr: tanh(x)
    at: {x: 0.25}
  - id: from-two
    expr: 2 - x
    at: {x: 0.5}
"""


def test_first_killer_and_every_killer_give_the_same_score(tmp_path: Path) -> None:
    path = tmp_path / "small.gradspec.yaml"
    path.write_text(SMALL, encoding="utf-8")
    cases = load_file(path).cases
    first, every = mutate(cases), mutate(cases, every=True)
    assert first.killed == every.killed
    assert first.score == every.score
    for name, killers in every.killers.items():
        assert first.killers[name] == killers[:1] or (first.killers[name] and first.killers[name][0] in killers)
        assert len(first.killers[name]) == min(1, len(killers))
    # x*3 and x*y both multiply a value by another: both kill mul-swapped, and every=True lists them; so
    # do the other two, checked in forward mode by default, whose VJP is taken of the output times a
    # cotangent, a product in the engine's own ops
    assert every.killers["mul-swapped"] == [f"{path}::{c}" for c in ("scaled", "product", "tanh", "from-two")]
    assert every.killers["tanh-sign"] == [f"{path}::tanh"]
    # tanh's partial near 0, 1 - out*out, is built with a number on the left of -: swapping rsub breaks it too
    assert every.killers["rsub-swapped"] == [f"{path}::tanh", f"{path}::from-two"]
    assert every.killers["exp-overflow"] == []
    assert every.killers["jvp-assign"] == [f"{path}::product"]  # the one op with two varying parents
    assert len(every.killed) == 5  # and sub-sign, by 2 - x


def test_a_mutant_tries_the_cases_that_use_its_op_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gradspec.tools import mutate as module

    path = tmp_path / "small.gradspec.yaml"
    path.write_text(SMALL, encoding="utf-8")
    tried: dict[str, list[str]] = {}
    kills = module._kills

    def spy(case, engine):  # type: ignore[no-untyped-def]
        tried.setdefault(engine.name.removeprefix("mutant:"), []).append(case.id)
        return kills(case, engine)

    monkeypatch.setattr(module, "_kills", spy)
    first = mutate(load_file(path).cases)
    # the one case with the mutant's op goes first, though it is later in the file; it kills, so it is the only one
    assert tried["tanh-sign"] == ["tanh"]
    assert tried["rsub-swapped"] == ["from-two"]  # a number on the left of -
    assert tried["mul-swapped"] in (["scaled"], ["product"])  # both multiply; the cheaper (as measured) first
    # no case has exp: all four are tried, none kills
    assert sorted(tried["exp-overflow"]) == ["from-two", "product", "scaled", "tanh"]
    assert first.killers["exp-overflow"] == []


def test_mutants_in_forked_processes_score_the_same(tmp_path: Path) -> None:
    # A fresh interpreter has one thread, so mutate forks there, as the worker pool would (before a
    # check in this process imports NumPy, whose BLAS starts threads of its own).
    import subprocess
    import sys

    path = tmp_path / "small.gradspec.yaml"
    path.write_text(SMALL, encoding="utf-8")
    code = ("import sys, multiprocessing; from gradspec.casefile.loader import load_file; "
            "from gradspec.tools.mutate import mutate; forks = []; get = multiprocessing.get_context; "
            "multiprocessing.get_context = lambda m=None: forks.append(m) or get(m); "
            "cases = load_file(sys.argv[1]).cases; forked = mutate(cases, every=True, jobs=2); "
            "serial = mutate(cases, every=True); "
            "print(forks == ['fork'], forked.killers == serial.killers, list(forked.killers) == list(serial.killers))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["True", "True", "True"], out.stderr
    assert "os.fork()" not in out.stderr


def test_mutants_run_here_where_forking_is_not_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    import gradspec.tools.mutate as module

    path = tmp_path / "small.gradspec.yaml"
    path.write_text(SMALL, encoding="utf-8")
    cases = load_file(path).cases
    serial = mutate(cases, every=True)
    monkeypatch.setattr(module, "_single_threaded", lambda: False)  # a thread pool runs (JAX, BLAS)
    monkeypatch.setattr(multiprocessing, "get_context", lambda *a: pytest.fail("forked a multithreaded process"))
    here = mutate(cases, every=True, jobs=2)
    assert here.killers == serial.killers
    assert list(here.killers) == [m.name for m in MUTANTS]


def test_mutate_command_all_lists_every_killer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "small.gradspec.yaml"
    path.write_text(SMALL, encoding="utf-8")
    assert main(["mutate", str(path)]) == 1
    default = capsys.readouterr().out
    assert "mul-swapped          killed by 1 " in default
    assert main(["mutate", str(path), "--all", "--jobs", "2"]) == 1
    every = capsys.readouterr().out
    assert "mul-swapped          killed by 4 " in every
    assert default.splitlines()[-1] == every.splitlines()[-1]  # the same score line
    assert main(["mutate", str(path), "--jobs", "-1"]) == 2
