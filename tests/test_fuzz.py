"""Random graph fuzzing: finds planted bugs fast, never reports a correct engine, repeats by seed."""

from __future__ import annotations

import re
import time
import tomllib
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings

from gradspec import check
from gradspec.casefile.loader import load_file
from gradspec.casefile.schema_file import installed
from gradspec.checks.check import check_graph, prepare
from gradspec.cli import main
from gradspec.engines.resolve import resolve
from gradspec.reference.store import exact
from gradspec.results import Tolerance, Verdict
from gradspec.run.runner import run_case
from gradspec.tools.fuzz import FuzzReport, fuzz, graphs


@settings(max_examples=300, deadline=None)
@given(graphs(6))
def test_drawn_graphs_parse_and_stay_inside_every_domain(example: tuple[str, dict[str, Fraction]]) -> None:
    program, point = example
    graph = prepare(program, list(point))
    exact(graph, point)  # raises DomainError if a drawn graph left an op's domain


def test_a_correct_engine_is_never_reported() -> None:
    report = fuzz("builtin", count=150, seed=3)
    assert report.failure is None
    assert report.tried == 150
    assert report.ran + sum(report.discarded.values()) == 150 and report.ran > 130


@pytest.mark.parametrize("engine", ["engines:TanhSignFlip", "engines:MulAssign", "engines:ExpNoChain",
                                    "engines:PowWrongFactor", "engines:BreadthFirst", "engines:SubSignFlip"])
def test_planted_bugs_are_found_shrunk_and_saved(engines: ModuleType, tmp_path: Path, engine: str) -> None:
    start = time.process_time()
    report = fuzz(engine, seed=0, out=tmp_path)
    assert time.process_time() - start < 60
    assert report.failure is not None and report.failure.verdict is Verdict.FAIL
    assert report.written is not None and report.written.parent == tmp_path
    # the $schema line names the copy beside the file, never a path into this machine's site-packages
    assert report.written.read_text(encoding="utf-8").splitlines()[0] == "# yaml-language-server: $schema=case-file.schema.json"
    assert (tmp_path / "case-file.schema.json").read_bytes() == installed().read_bytes()
    case_file = load_file(report.written)
    (case,) = case_file.cases
    bad = run_case(case, resolve(engine))
    good = run_case(case, resolve("builtin"))
    assert [r.verdict for r in bad] == [Verdict.FAIL]
    assert [r.verdict for r in good] == [Verdict.PASS]
    assert len(case.graph.steps) <= 12  # shrunk: a handful of nodes, not a random tangle


def test_the_same_seed_gives_the_same_failure(engines: ModuleType) -> None:
    first = fuzz("engines:TanhSignFlip", count=100, seed=7)
    second = fuzz("engines:TanhSignFlip", count=100, seed=7)
    assert first.program == second.program and first.point == second.point


def test_fuzz_command(engines: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--engine", "engines:MulAssign", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAILURE after" in out and "culprit: mul" in out and "regression case written:" in out
    assert main(["fuzz", "--count", "20"]) == 0
    report = fuzz("builtin", count=20, seed=0)
    assert f"no failure in {report.ran} random graphs checked on builtin (seed 0; 20 drawn" in capsys.readouterr().out
    assert main(["fuzz", "--count", "0"]) == 2


# -- exploring what the engine can do ------------------------------------------------------------------------


def _drawn(engine: str, count: int, seed: int) -> tuple[list[str], FuzzReport]:
    seen: list[str] = []
    report = fuzz(engine, count=count, seed=seed, progress=seen.append)
    return seen, report


def test_only_the_ops_the_engine_has_are_drawn(engines: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    seen, report = _drawn("engines:NoTanh", count=120, seed=1)
    assert report.ops.lacking == ["tanh"]
    assert not any("tanh" in p for p in seen)
    assert report.failure is None and report.tried == 120
    assert report.ran == 120 - sum(report.discarded.values()) > 100
    assert main(["fuzz", "--engine", "engines:NoTanh", "--count", "120", "--seed", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "not drawn, as engines:NoTanh does not apply them: tanh"
    assert out[1].startswith(f"no failure in {report.ran} random graphs checked on engines:NoTanh (seed 1; 120 drawn")


def test_micrograd_runs_most_of_the_graphs_drawn() -> None:
    pytest.importorskip("micrograd")
    _, report = _drawn("micrograd", count=100, seed=7)
    assert set(report.ops.lacking) >= {"tanh", "exp", "log", "** with a Value as its last argument"}
    assert report.ran > 80


def test_constants_stand_on_the_left_of_operators(misbehaving: ModuleType) -> None:
    seen, _ = _drawn("builtin", count=200, seed=0)
    assert any(re.search(r"= \d(\.\d)? [-/*+] ", p) for p in seen)
    assert any(re.search(r"= \d(\.\d)? / ", p) for p in seen)
    report = fuzz("misbehaving:RTrueDivSwapped", count=200, seed=0)
    # found, whether in ``c / x`` itself or in an op whose backward divides a number by a Value (sqrt, log)
    assert report.failure is not None and report.point is not None
    assert check_graph(prepare(report.program, list(report.point)), report.point, resolve("builtin"),
                       Tolerance()).verdict is Verdict.PASS


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_diamond_is_found_by_a_preorder_that_is_right_on_unequal_paths(misbehaving: ModuleType, seed: int) -> None:
    # Right wherever one consumer of a shared node lies on the other's path; wrong on sibling consumers.
    assert check("t = sin(x); a = tanh(t); a * t", {"x": 0.3}, engine="misbehaving:DeeperFirstPreorder").verdict \
        is Verdict.PASS
    assert check("t = sin(x); a = tanh(t); b = exp(t); a * b", {"x": 0.3},
                 engine="misbehaving:DeeperFirstPreorder").verdict is Verdict.FAIL
    report = fuzz("misbehaving:DeeperFirstPreorder", count=200, seed=seed)
    assert report.failure is not None and report.tried < 100
    assert fuzz("engines:Same", count=report.tried, seed=seed).failure is None  # the same graphs, correct engine


@pytest.mark.parametrize("seed", [0, 7])
def test_a_node_reached_by_paths_of_unequal_length_is_found(misbehaving: ModuleType, seed: int) -> None:
    report = fuzz("misbehaving:PreorderBackward", count=200, seed=seed)
    assert report.failure is not None
    assert fuzz("engines:Same", count=report.tried, seed=seed).failure is None  # the same graphs, correct engine


def test_the_api_and_the_command_line_draw_the_same_graphs(engines: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    from gradspec.tools import fuzz as fuzz_module

    drawn: list[str] = []
    check = fuzz_module._check
    monkeypatch.setattr(fuzz_module, "_check", lambda example, *a: drawn.append(example[0]) or check(example, *a))
    fuzz("builtin", count=150, seed=11)
    api = list(drawn)
    drawn.clear()
    assert main(["fuzz", "--count", "150", "--seed", "11"]) == 0
    assert drawn == api and len(api) == 150


def test_failure_after_n_graphs_counts_graphs_not_shrink_steps(engines: ModuleType,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from gradspec.tools import fuzz as fuzz_module

    verdicts: list[Verdict | None] = []
    check = fuzz_module._check

    def recording(*args: object) -> object:
        result = check(*args)  # type: ignore[arg-type]
        verdicts.append(None if result is None else result.verdict)
        return result

    monkeypatch.setattr(fuzz_module, "_check", recording)
    report = fuzz("engines:TanhSignFlip", count=200, seed=7)
    assert report.failure is not None
    drawn = verdicts[:report.tried]  # then come the shrinker's checks, which are not graphs drawn
    assert len(verdicts) > report.tried
    assert drawn[-1] is Verdict.FAIL and Verdict.FAIL not in drawn[:-1]


def test_hypothesis_is_a_dependency_of_gradspec_itself() -> None:
    with (Path(__file__).resolve().parent.parent / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    assert any(d.startswith("hypothesis") for d in project["dependencies"])


def test_a_failure_that_does_not_repeat_is_not_reported(misbehaving: ModuleType) -> None:
    # Alternating fails on every check (its two runs always differ): found, and the shrunk case fails again.
    report = fuzz("misbehaving:Alternating", count=200, seed=0)
    assert report.failure is not None and report.point is not None
    again = check_graph(prepare(report.program, list(report.point)), report.point, resolve("misbehaving:Alternating"),
                        Tolerance())
    assert again.verdict is Verdict.FAIL
    # micrograd's set-ordered sums differ in the last bits from run to run: within rounding, never reported
    assert fuzz("misbehaving:SetChildren", count=150, seed=0).failure is None
