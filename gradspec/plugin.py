"""The pytest plugin: case files become parametrized test items, with no conftest.

Registered through the ``pytest11`` entry point. A file whose name ends in one of the configured
suffixes (``*.gradspec.yaml`` by default) is collected; each case yields one item per point and engine,
named ``case[point][engine]``. An invalid file is a collection error listing its located errors, and
the other files still run.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gradspec.casefile.loader import errors_of, load_file
from gradspec.casefile.model import SUFFIXES, Case, Point, TensorPoint
from gradspec.checks.kinds import KINDS
from gradspec.config import importable
from gradspec.config import load as load_config
from gradspec.engines.probe import require
from gradspec.engines.protocol import Engine, resolve
from gradspec.errors import CaseFileError, GradspecError
from gradspec.limits import LIMITS
from gradspec.report.terminal import brief_table
from gradspec.results import CheckResult, Verdict, mode_skip_reason, not_computed
from gradspec.run.runner import run_point

_ENGINES = pytest.StashKey[list[Engine]]()
_CONVENTIONS = pytest.StashKey[list[str]]()  # "item: kinks" of every check that passed by convention
_MODE_SKIPS = pytest.StashKey[list[str]]()  # the reason of every asked-for mode an engine could not compute
_CASE_FILE_ERRORS = pytest.StashKey[list[str]]()  # node ids of case files that failed to collect
_OTHER_ERRORS = pytest.StashKey[list[str]]()  # node ids of anything else that failed to collect
_IMPORTABLE = pytest.StashKey[contextlib.AbstractContextManager[None]]()  # sys.path entries, taken away at the end
_ENGINES_RAN = pytest.StashKey[list[str]]()  # the engine of every item that ran
_ENGINES_COMPARED = pytest.StashKey[list[str]]()  # the engine of every item that compared (not skipped)
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
        help="engine to run case files on: 'builtin', 'module.path:Class' or a name from [tool.gradspec.engine] "
             "in pyproject.toml (repeatable; items multiply)",
    )
    parser.addini("gradspec_engines", type="args", default=[],
                  help="default engines for case files (else pyproject.toml's [tool.gradspec] engines, else builtin)")
    parser.addini("gradspec_suffixes", type="args", default=list(SUFFIXES), help="file name endings of case files")
    parser.addini("gradspec_time_limit", default="",
                  help="seconds one engine call may take before its check fails (else pyproject.toml's "
                       f"[tool.gradspec] time-limit, else {LIMITS.engine:g})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gradspec: a check generated from a gradspec case file")
    try:
        settings = load_config(config.invocation_params.dir)
    except GradspecError as exc:
        raise pytest.UsageError(str(exc)) from None
    # Engine modules in the folder pytest was started from, and in the project root, are importable,
    # as they are for `python -m pytest` and for a rootdir conftest.
    config.stash[_IMPORTABLE] = importable(config.invocation_params.dir, settings.root)
    config.stash[_IMPORTABLE].__enter__()
    specs = settings.specs(config.getoption("gradspec_engines") or config.getini("gradspec_engines"))
    try:
        engines = [resolve(s) for s in specs]
        for engine in engines:  # an engine that cannot take part is a usage error, not a sea of skips
            require(engine)
        config.stash[_ENGINES] = engines
    except GradspecError as exc:
        raise pytest.UsageError(f"--gradspec-engine: {exc}") from None
    for key in (_CONVENTIONS, _MODE_SKIPS, _CASE_FILE_ERRORS, _OTHER_ERRORS, _ENGINES_RAN, _ENGINES_COMPARED):
        config.stash[key] = []
    config.pluginmanager.register(_Reports(config), "gradspec-reports")
    config.stash[_FIRST_FAILURE] = {}
    limit = config.getini("gradspec_time_limit") or settings.time_limit or type(LIMITS).engine
    try:
        LIMITS.engine = float(limit)
    except ValueError:
        raise pytest.UsageError("gradspec_time_limit must be a number of seconds") from None


def pytest_unconfigure(config: pytest.Config) -> None:
    if _IMPORTABLE in config.stash:
        config.stash[_IMPORTABLE].__exit__(None, None, None)


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
            for point, label in KINDS[case.kind].checks(case):
                for engine in engines:
                    name = f"{case.id}[{label}][{engine.name}]" if label else f"{case.id}[{engine.name}]"
                    # The id is given as text: pytest parses the ids it caches for --lf, --ff and --sw
                    # ("path::name[params]", split at the first "["), and an id it built itself from a
                    # name holding brackets would never equal the parsed one.
                    item = CheckItem.from_parent(self, name=name, nodeid=f"{self.nodeid}::{name}", case=case,
                                                 point=point, engine=engine)
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

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFileError):
            return "\n".join(str(e) for e in errors_of(excinfo.value))
        return str(super().repr_failure(excinfo))


class CheckFailed(Exception):
    def __init__(self, result: CheckResult, earlier: str = "") -> None:
        super().__init__(result.message or result.verdict.value)
        self.result, self.earlier = result, earlier  # earlier: the case's first failing item on this engine


class CheckItem(pytest.Item):
    def __init__(self, *, case: Case, point: Point | TensorPoint | None, engine: Engine, **kwargs: Any) -> None:
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
        for q in result.quantities:
            if not_computed(q):
                self.user_properties.append(("gradspec_mode_skip", mode_skip_reason(q)))
        if result.verdict is Verdict.CONVENTION:
            self.user_properties.append(("gradspec_convention", f"{self.nodeid}: {', '.join(result.kinks)}"))
        if result.verdict in (Verdict.FAIL, Verdict.ERROR):
            earlier = first.setdefault(group, self.name)
            raise CheckFailed(result, "" if earlier == self.name else earlier)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            r, earlier = excinfo.value.result, excinfo.value.earlier
            if not earlier:
                return f"{r.path}:{r.line}: case {r.case_id!r}\n{r.table()}"
            return f"{r.path}:{r.line}: case {r.case_id!r}\n{brief_table(r)}\n  culprit and derivatives: see {earlier}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        line = (self.point.line if self.point else self.case.line) - 1
        return self.path, line, f"gradspec: {self.name}"


class _Reports:
    """The report hooks: pytest hands them a report only, so they are bound to the config whose stash
    holds what they gather."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            key = _CASE_FILE_ERRORS if report.nodeid.endswith(tuple(SUFFIXES)) else _OTHER_ERRORS
            self.config.stash[key].append(report.nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            props = dict(report.user_properties)
            for key, value in report.user_properties:
                if key == "gradspec_convention":
                    self.config.stash[_CONVENTIONS].append(str(value))
                if key == "gradspec_mode_skip":
                    self.config.stash[_MODE_SKIPS].append(str(value))
            if "gradspec_engine" in props:
                engine = str(props["gradspec_engine"])
                self.config.stash[_ENGINES_RAN].append(engine)
                if props.get("gradspec_verdict") not in (Verdict.SKIP.value, Verdict.ERROR.value):
                    self.config.stash[_ENGINES_COMPARED].append(engine)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    # An invalid case file is reported as a collection error, yet should not stop the other files from
    # running; pytest's own rule (stop on collection errors) still holds for everything else.
    stash = session.config.stash
    if stash[_CASE_FILE_ERRORS] and not stash[_OTHER_ERRORS]:
        session.config.option.continue_on_collection_errors = True


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A session in which an engine ran checks yet compared nothing (every one skipped) has not passed.
    if _idle(session.config) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _idle(config: pytest.Config) -> list[str]:
    ran, compared = config.stash[_ENGINES_RAN], config.stash[_ENGINES_COMPARED]
    return [e for e in dict.fromkeys(ran) if e not in compared]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for engine in _idle(config):
        terminalreporter.section("gradspec", red=True)
        terminalreporter.write_line(f"engine {engine} compared nothing: every one of its checks was skipped")
    reasons: list[str] = config.stash[_MODE_SKIPS]
    skipped = Counter(reasons)
    if skipped:
        terminalreporter.section("gradspec modes not computed", yellow=True)
        terminalreporter.write_line(f"{sum(skipped.values())} modes asked for but not computed (skipped, not passed):")
        for reason, n in sorted(skipped.items(), key=lambda item: (-item[1], item[0])):
            terminalreporter.write_line(f"  {reason} ({n})")
    found = config.stash[_CONVENTIONS]
    if found:
        terminalreporter.section("gradspec convention differences")
        terminalreporter.write_line("engines took another valid subgradient at a kink (not a failure):")
        for line in found:
            terminalreporter.write_line(f"  {line}")
