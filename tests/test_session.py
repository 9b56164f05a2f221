"""run_picked: the picked cases in this process or in workers, stopping after --maxfail failing checks."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from gradspec.casefile.loader import load_file
from gradspec.engines.resolve import resolve
from gradspec.results import Verdict
from gradspec.run.session import run_picked

CASES = """\
cases:
  - id: product
    expr: x * y
    at: [{x: 2, y: 3}, {x: 1, y: 1}]
  - id: square
    expr: x * x * x
    at: [{x: 2}, {x: 3}, {x: 4}]
  - id: square-plus
    expr: x * x + x
    at: [{x: 0.5}, {x: 1}]
"""


def _setup(tmp_path: Path, spec: str) -> tuple[list, list, list]:  # type: ignore[type-arg]
    path = tmp_path / "c.gradspec.yaml"
    path.write_text(CASES, encoding="utf-8")
    files = [load_file(path)]
    return files, [(0, i) for i in range(3)], [(spec, resolve(spec))]


def test_maxfail_keeps_the_checks_up_to_the_nth_failure(tmp_path: Path, engines: ModuleType) -> None:
    files, picked, engine = _setup(tmp_path, "engines:MulAssign")
    every, stopped = run_picked(files, picked, engine)
    assert not stopped
    # MulAssign (= for += in mul): the product of two leaves is right; x*x*x and x*x + x, where x's gradient
    # has more than one contribution, are wrong at every point
    assert [r.verdict for r in every] == [Verdict.PASS] * 2 + [Verdict.FAIL] * 5
    heard: list[str] = []
    failures: list[int] = []
    some, stopped = run_picked(files, picked, engine, maxfail=4, on_case=heard.append,
                               on_failure=lambda: failures.append(1))
    assert stopped
    assert [(r.case_id, r.point) for r in some] == [(r.case_id, r.point) for r in every[:6]]
    assert heard == ["product", "square"] and len(failures) == 4


def test_workers_stop_after_as_many_failures(tmp_path: Path, engines: ModuleType) -> None:
    files, picked, engine = _setup(tmp_path, "engines:MulAssign")
    every, _ = run_picked(files, picked, engine)
    forked, stopped = run_picked(files, picked, engine, jobs=2, maxfail=2)
    assert stopped
    # workers take the longest cases first, so which checks ran first is theirs to say; what holds is that
    # the run kept exactly two failures, each a real result of the full run, in the serial order
    assert sum(r.verdict is Verdict.FAIL for r in forked) == 2
    keys = [(r.case_id, r.point, r.verdict) for r in every]
    assert sorted(keys.index((r.case_id, r.point, r.verdict)) for r in forked) == [
        keys.index((r.case_id, r.point, r.verdict)) for r in forked]


def test_a_passing_run_never_stops(tmp_path: Path) -> None:
    files, picked, engine = _setup(tmp_path, "builtin")
    results, stopped = run_picked(files, picked, engine, maxfail=1)
    assert not stopped and len(results) == 7 and all(r.ok for r in results)
