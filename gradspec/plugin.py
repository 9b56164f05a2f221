"""The pytest plugin: case files become parametrized test items, with no conftest.

Registered through the ``pytest11`` entry point. A file whose name ends in one of the configured
suffixes (``*.gradspec.yaml`` by default) is collected; each case yields one item per point and engine,
named ``case[point][engine]``. An invalid file is a collection error listing its located errors, and
the other files still run.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gradspec.casefile.loader import errors_of, load_file
from gradspec.casefile.model import SUFFIXES, Case, Point, TensorPoint
from gradspec.checks.kinds import KINDS
from gradspec.config import Config, engine_help, importable
from gradspec.config import load as load_config
from gradspec.engines.probe import require
from gradspec.engines.protocol import Engine
from gradspec.engines.resolve import resolve
from gradspec.errors import CaseFileError, GradspecError
from gradspec.limits import LIMITS
from gradspec.report.terminal import brief_table
from gradspec.results import CheckResult, Verdict, mode_skip_reason, not_computed, overflow_policy, quantity_label
from gradspec.run.plan import Spec, case_cost, own_engines, spec_name
from gradspec.run.runner import run_point
from gradspec.run.shard import case_key, parse_shard, shard

_ENGINES = pytest.StashKey[list[Engine]]()
# The default engine specs, whether --gradspec-engine named them (then they also filter function cases),
# and every engine resolved so far by its spec's name (a function case's own engines are resolved once).
_SPECS = pytest.StashKey[tuple[list[Spec], bool]]()
_RESOLVED = pytest.StashKey[dict[str, Engine]]()
_CONVENTIONS = pytest.StashKey[list[str]]()  # "kind:item: kinks" of every check that passed by convention or overflow policy
_IMPRECISE = pytest.StashKey[list[str]]()  # "item: quantity: digits kept" of every imprecise check
_MODE_SKIPS = pytest.StashKey[list[str]]()  # the reason of every asked-for mode an engine could not compute
_CASE_FILE_ERRORS = pytest.StashKey[list[str]]()  # node ids of case files that failed to collect
_OTHER_ERRORS = pytest.StashKey[list[str]]()  # node ids of anything else that failed to collect
_IMPORTABLE = pytest.StashKey[contextlib.AbstractContextManager[None]]()  # sys.path entries, taken away at the end
_ENGINES_RAN = pytest.StashKey[list[str]]()  # the engine of every item that ran
_ENGINES_COMPARED = pytest.StashKey[list[str]]()  # the engine of every item that compared (not skipped)
# The first failing item of each (file, case, engine): later ones point to it for the culprit and the
# smallest failing case, instead of repeating them (and are not shrunk again).
_FIRST_FAILURE = pytest.StashKey[dict[tuple[str, str, str], str]]()
_SHARD = pytest.StashKey[tuple[int, int] | None]()  # --gradspec-shard K/N


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradspec", "gradspec case files")
    group.addoption(
        "--gradspec-engine",
        action="append",
        dest="gradspec_engines",
        metavar="SPEC",
        help=f"engine to run case files on (repeatable; items multiply; given, it also filters function cases, "
             f"which otherwise run on their function: keys' engines): {engine_help(_help_config())}",
    )
    group.addoption(
        "--gradspec-shard",
        dest="gradspec_shard",
        metavar="K/N",
        help="run only the K-th of N parts of the case files' checks, split by case and balanced by cost, the same on "
             "every machine (other tests are not split)",
    )
    group.addoption(
        "--gradspec-strict",
        action="store_true",
        dest="gradspec_strict",
        help="an imprecise check (digits lost beyond what rounding allows) fails its item",
    )
    parser.addini("gradspec_engines", type="args", default=[],
                  help="default engines for case files (else pyproject.toml's [tool.gradspec] engines, else builtin)")
    parser.addini("gradspec_suffixes", type="args", default=list(SUFFIXES), help="file name endings of case files")
    parser.addini("gradspec_time_limit", default="",
                  help="seconds one engine call may take before its check fails (else pyproject.toml's "
                       f"[tool.gradspec] time-limit, else {LIMITS.engine:g})")


def _help_config() -> Config:
    try:
        return load_config()
    except GradspecError:  # reported when pytest configures the plugin
        return Config()


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
        shard = config.getoption("gradspec_shard")
        config.stash[_SHARD] = parse_shard(shard) if shard else None
    except GradspecError as exc:
        raise pytest.UsageError(f"--gradspec-engine: {exc}") from None
    config.stash[_SPECS] = (specs, bool(config.getoption("gradspec_engines")))
    config.stash[_RESOLVED] = {spec_name(s): e for s, e in zip(specs, engines, strict=True)}
    for key in (_CONVENTIONS, _IMPRECISE, _MODE_SKIPS, _CASE_FILE_ERRORS, _OTHER_ERRORS, _ENGINES_RAN, _ENGINES_COMPARED):
        config.stash[key] = []
    config.pluginmanager.register(_Reports(config), "gradspec-reports")
    config.stash[_FIRST_FAILURE] = {}
    LIMITS.elements = settings.max_elements or LIMITS.elements
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
        for case in case_file.cases:
            marks = self._marks(case)
            engines = self._engines(case)
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

    def _engines(self, case: Case) -> list[Engine]:
        """The engines ``case`` runs on: those given with --gradspec-engine, else its own (a function
        case's ``function:`` keys; :mod:`gradspec.run.plan`), each resolved and probed once."""
        specs, explicit = self.config.stash[_SPECS]
        if explicit:
            return self.config.stash[_ENGINES]
        resolved = self.config.stash[_RESOLVED]
        for spec in own_engines(case, specs):
            if spec_name(spec) not in resolved:
                try:
                    engine = resolve(spec)
                    require(engine)  # a library the case names that cannot load here: a collection error
                except GradspecError as exc:
                    raise self.CollectError(f"{case.path}:{case.line}: [{case.id}] {exc}") from None
                resolved[spec_name(spec)] = engine
        return [resolved[spec_name(s)] for s in own_engines(case, specs)]

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
        if overflow_policy(result):
            self.user_properties.append(("gradspec_overflow", f"{self.nodeid}: {result.message}"))
        elif result.verdict is Verdict.CONVENTION:
            self.user_properties.append(("gradspec_convention", f"{self.nodeid}: {', '.join(result.kinks)}"))
        if result.verdict is Verdict.IMPRECISE:
            notes = "; ".join(q.note for q in result.quantities if q.verdict is Verdict.IMPRECISE)
            self.user_properties.append(("gradspec_imprecise", f"{self.nodeid}: {notes}"))
        if result.verdict in (Verdict.FAIL, Verdict.ERROR) or (
                result.verdict is Verdict.IMPRECISE
                and (self.config.getoption("gradspec_strict") or self.case.precision == "strict")):
            earlier = first.setdefault(group, self.name)
            raise CheckFailed(result, "" if earlier == self.name else earlier)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            r, earlier = excinfo.value.result, excinfo.value.earlier
            # pytest's short summary shows the first line: what is wrong, before where
            # (a later item of the case refers to the first for the culprit, as the rest of its report does)
            first = f"{_what_failed(r, culprit=not earlier)} ({Path(r.path).name}:{r.line})"
            if not earlier:
                return f"{first}\n{r.path}:{r.line}: case {r.case_id!r}\n{r.table()}"
            return (f"{first}\n{r.path}:{r.line}: case {r.case_id!r}\n{brief_table(r)}\n  culprit and derivatives: "
                    f"see {earlier}")
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        line = (self.point.line if self.point else self.case.line) - 1
        return self.path, line, f"gradspec: {self.name}"


def _what_failed(r: CheckResult, *, culprit: bool = True) -> str:
    """One line on a failed check: its culprit, else its worst quantity, else its message."""
    if culprit and r.culprit is not None:
        return f"culprit: {r.culprit.message}"
    bad = [q for q in r.quantities if q.verdict in (Verdict.FAIL, Verdict.ERROR)]
    if bad:
        q = max(bad, key=lambda q: -1.0 if q.rel_error is None or q.rel_error != q.rel_error else q.rel_error)
        return f"{quantity_label(q)}: engine {q.engine:.10g}, exact {q.exact:.10g}" if q.engine is not None and \
            q.exact is not None else f"{quantity_label(q)}: {q.note or q.verdict.value}"
    return (r.message or r.verdict.value).split("\n")[0]


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
                if key in ("gradspec_convention", "gradspec_overflow"):
                    self.config.stash[_CONVENTIONS].append(f"{key}:{value}")
                if key == "gradspec_imprecise":
                    self.config.stash[_IMPRECISE].append(str(value))
                if key == "gradspec_mode_skip":
                    self.config.stash[_MODE_SKIPS].append(str(value))
            if "gradspec_engine" in props:
                engine = str(props["gradspec_engine"])
                self.config.stash[_ENGINES_RAN].append(engine)
                if props.get("gradspec_verdict") not in (Verdict.SKIP.value, Verdict.ERROR.value):
                    self.config.stash[_ENGINES_COMPARED].append(engine)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    part = config.stash.get(_SHARD, None)
    if part is None:
        return
    # The cases of the checks collected, each with its cost over its items (engines times points times
    # tensor elements, as `gradspec run --shard` weighs them); every item of a case goes to one shard.
    cases: dict[tuple[str, str], int] = {}
    for item in items:
        if isinstance(item, CheckItem):
            key = case_key(item.case.path, item.case.id)
            cases[key] = cases.get(key, 0) + case_cost(dataclasses.replace(item.case, points=(item.point,))
                                                       if item.point is not None else item.case, 1)
    keys = list(cases)
    kept = {keys[i] for i in shard(keys, [cases[k] for k in keys], *part)}
    selected = [i for i in items if not isinstance(i, CheckItem) or case_key(i.case.path, i.case.id) in kept]
    deselected = [i for i in items if isinstance(i, CheckItem) and case_key(i.case.path, i.case.id) not in kept]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


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
    imprecise = config.stash[_IMPRECISE]
    if imprecise:
        terminalreporter.section("gradspec imprecise", yellow=True)
        terminalreporter.write_line(f"{len(imprecise)} check(s) kept fewer digits than rounding allows"
                                    " (a failure under --gradspec-strict):")
        for line in imprecise:
            terminalreporter.write_line(f"  {line}")
    reasons: list[str] = config.stash[_MODE_SKIPS]
    skipped = Counter(reasons)
    if skipped:
        terminalreporter.section("gradspec modes not computed", yellow=True)
        terminalreporter.write_line(f"{sum(skipped.values())} modes asked for but not computed (skipped, not passed):")
        for reason, n in sorted(skipped.items(), key=lambda item: (-item[1], item[0])):
            terminalreporter.write_line(f"  {reason} ({n})")
    found = config.stash[_CONVENTIONS]
    policies = (  # what passed by an allowed difference, each kind in its own section
        ("gradspec_convention", "gradspec convention differences",
         "engines took another valid subgradient at a kink (not a failure):"),
        ("gradspec_overflow", "gradspec overflow policy",
         "engines raised OverflowError where IEEE 754 gives inf (not a failure; expect: {ieee: true} makes it one):"),
    )
    for key, title, intro in policies:
        lines = [line.removeprefix(f"{key}:") for line in found if line.startswith(f"{key}:")]
        if lines:
            terminalreporter.section(title)
            terminalreporter.write_line(intro)
            for line in lines:
                terminalreporter.write_line(f"  {line}")

