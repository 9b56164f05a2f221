"""Random graph fuzzing: finds planted bugs fast, never reports a correct engine, repeats by seed."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings

from gradspec.casefile.loader import load_file
from gradspec.casefile.schema_file import installed
from gradspec.checks.check import prepare
from gradspec.checks.results import Verdict
from gradspec.cli import main
from gradspec.engines.protocol import resolve
from gradspec.reference.store import exact
from gradspec.run.runner import run_case
from gradspec.tools.fuzz import fuzz, graphs


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
    assert "no failure in 20 random graphs on builtin (seed 0)" in capsys.readouterr().out
    assert main(["fuzz", "--count", "0"]) == 2
