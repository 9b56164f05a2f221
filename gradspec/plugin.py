"""The pytest plugin: case files become parametrized test items, with no conftest.

Registered through the ``pytest11`` entry point. A file whose name ends in one of the configured
suffixes (``*.gradspec.yaml`` by default) is collected; each case yields one item per point and engine,
named ``case[point][engine]``. An invalid file is a collection error listing its located errors, and
the other files still run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gradspec.casefile.loader import errors_of, load_file
from gradspec.casefile.model import SUFFIXES, Case, Point
from gradspec.checks.results import CheckResult, Verdict
from gradspec.engines.probe import require
from gradspec.engines.protocol import Engine, resolve
from gradspec.errors import CaseFileError, GradspecError
from gradspec.limits import LIMITS
from gradspec.report.terminal import brief_table
from gradspec.run.runner import run_point

_ENGINES = pytest.StashKey[list[Engine]]()
_CONVENTIONS = pytest.StashKey[list[str]]()
# The first failing item of each (file, case, engine): later ones point to it for the culprit and the
# smallest failing case, instead of repeating them (and are not shrunk again).
_FIRST_FAILURE = pytest.StashKey[dict[tuple[str, str, str], str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradspec", "gradspec case files")
    group.addoption(
        "--gradspec-engine",
        action="append",
        dest="gradspec_engines",
        metavar="SPEC",
        help="engine to run case files on: 'builtin' or 'module.path:Class' (repeatable; items multiply)",
    )
    parser.addini("gradspec_engines", type="args", default=["builtin"], help="default engines for case files")
    parser.addini("gradspec_suffixes", type="args", default=list(SUFFIXES), help="file name endings of case files")
    parser.addini("gradspec_time_limit", default=str(LIMITS.engine),
                  help="seconds one engine call may take before its check fails")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gradspec: a check generated from a gradspec case file")
    specs = config.getoption("gradspec_engines") or config.getini("gradspec_engines")
    try:
        engines = [resolve(s) for s in specs]
        for engine in engines:  # an engine that cannot take part is a usage error, not a sea of skips
            require(engine)
        config.stash[_ENGINES] = engines
    except GradspecError as exc:
        raise pytest.UsageError(f"--gradspec-engine: {exc}") from None
    config.stash[_CONVENTIONS] = []
    config.stash[_FIRST_FAILURE] = {}
    try:
        LIMITS.engine = float(config.getini("gradspec_time_limit"))
    except ValueError:
        raise pytest.UsageError("gradspec_time_limit must be a number of seconds") from None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    suffixes = parent.config.getini("gradspec_suffixes")
    if any(file_path.name.endswith(s) for s in suffixes):
        return CaseFileNode.from_parent(parent, path=file_path)
    return None


class CaseFileNode(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        case_file = load_file(self.path)
        engines = self.config.stash[_ENGINES]
        for case in case_file.cases:
            marks = self._marks(case)
            for point, label in _labelled(case):
                for engine in engines:
                    name = f"{case.id}[{label}][{engine.name}]" if label else f"{case.id}[{engine.name}]"
                    item = CheckItem.from_parent(self, name=name, case=case, point=point, engine=engine)
                    for mark in marks:
                        item.add_marker(mark)
                    yield item

    def _marks(self, case: Case) -> list[pytest.MarkDecorator]:
        marks = [pytest.mark.gradspec]
        for tag in case.tags:
            self.config.addinivalue_line("markers", f"{tag}: gradspec case tag")
            marks.append(getattr(pytest.mark, tag))
        if case.skip:
            marks.append(pytest.mark.skip(reason=case.skip))
        if case.xfail:
            marks.append(pytest.mark.xfail(reason=case.xfail, strict=True, raises=CheckFailed))
        return marks

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, CaseFileError):
            return "\n".join(str(e) for e in errors_of(excinfo.value))
        return str(super().repr_failure(excinfo))


def _labelled(case: Case) -> list[tuple[Point | None, str]]:
    if case.kind == "training":
        return [(None, "")]
    sampled = case.sampled
    out: list[tuple[Point | None, str]] = []
    seen: dict[str, int] = {}
    for i, p in enumerate(case.points):
        label = f"sample{i}" if sampled else p.label
        seen[label] = seen.get(label, 0) + 1
        out.append((p, label if seen[label] == 1 else f"{label}#{seen[label]}"))
    return out


class CheckFailed(Exception):
    def __init__(self, result: CheckResult, earlier: str = "") -> None:
        super().__init__(result.message or result.verdict.value)
        self.result, self.earlier = result, earlier  # earlier: the case's first failing item on this engine


class CheckItem(pytest.Item):
    def __init__(self, *, case: Case, point: Point | None, engine: Engine, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.point = point
        self.engine = engine

    def runtest(self) -> None:
        first = self.config.stash[_FIRST_FAILURE]
        group = (self.case.path, self.case.id, self.engine.name)
        result = run_point(self.case, self.point, self.engine, apply_xfail=False, shrink=group not in first)
        self.user_properties.append(("gradspec_verdict", result.verdict.value))
        self.user_properties.append(("gradspec_engine", self.engine.name))
        if result.verdict is Verdict.SKIP:
            pytest.skip(result.message)
        if result.verdict is Verdict.CONVENTION:
            self.user_properties.append(("gradspec_convention", f"{self.nodeid}: {', '.join(result.kinks)}"))
        if result.verdict in (Verdict.FAIL, Verdict.ERROR):
            earlier = first.setdefault(group, self.name)
            raise CheckFailed(result, "" if earlier == self.name else earlier)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, CheckFailed):
            r, earlier = excinfo.value.result, excinfo.value.earlier
            if not earlier:
                return f"{r.path}:{r.line}: case {r.case_id!r}\n{r.table()}"
            return f"{r.path}:{r.line}: case {r.case_id!r}\n{brief_table(r)}\n  culprit and derivatives: see {earlier}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        line = (self.point.line if self.point else self.case.line) - 1
        return self.path, line, f"gradspec: {self.name}"


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        key = "case_file_errors" if report.nodeid.endswith(tuple(SUFFIXES)) else "other_errors"
        _STATE.setdefault(key, []).append(report.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    # An invalid case file is reported as a collection error, yet should not stop the other files from
    # running; pytest's own rule (stop on collection errors) still holds for everything else.
    if _STATE.get("case_file_errors") and not _STATE.get("other_errors"):
        session.config.option.continue_on_collection_errors = True


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        props = dict(report.user_properties)
        for key, value in report.user_properties:
            if key == "gradspec_convention":
                _conventions(report).append(str(value))
        if "gradspec_engine" in props:
            engine = str(props["gradspec_engine"])
            _STATE.setdefault("engines", [])
            if engine not in _STATE["engines"]:
                _STATE["engines"].append(engine)
            if props.get("gradspec_verdict") not in (Verdict.SKIP.value, Verdict.ERROR.value):
                _STATE.setdefault("compared", []).append(engine)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A session in which an engine ran checks yet compared nothing (every one skipped) has not passed.
    idle = [e for e in _STATE.get("engines", []) if e not in _STATE.get("compared", [])]
    _STATE["idle"] = idle
    if idle and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _conventions(report: pytest.TestReport) -> list[str]:
    return _STATE.setdefault("conventions", [])


_STATE: dict[str, list[str]] = {}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    found = _STATE.pop("conventions", [])
    idle = _STATE.pop("idle", [])
    _STATE.clear()
    for engine in idle:
        terminalreporter.section("gradspec", red=True)
        terminalreporter.write_line(f"engine {engine} compared nothing: every one of its checks was skipped")
    if found:
        terminalreporter.section("gradspec convention differences")
        terminalreporter.write_line("engines took another valid subgradient at a kink (not a failure):")
        for line in found:
            terminalreporter.write_line(f"  {line}")
