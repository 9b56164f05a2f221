"""The pytest plugin, run with pytester: case files collect with no conftest (the plugin comes from the installed
pytest11 entry point), items are named case[point][engine], and gradspec's verdicts become pytest outcomes."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

import gradspec.cli
import gradspec.nn

# pytester's in-process runs drop every module a run imported; import the heavy ones once, here. (The
# hypothesis plugin, when installed, imports hypothesis at the end of every run.)
with contextlib.suppress(ImportError):
    import hypothesis  # noqa: F401
import numpy  # noqa: F401  (forward mode and higher order on the builtin engine)

assert gradspec.cli and gradspec.nn

DATA = Path(__file__).resolve().parent / "data"

OPS = """
defaults:
  tags: [ops]
cases:
  - id: mul
    tags: [arith]
    expr: x * y
    at: {x: 2, y: 3}
  - id: add
    tags: [arith]
    expr: x + y
    at:
      - {x: 1, y: 2}
      - {x: 0.5, y: -1}
  - id: tanh
    tags: [trig]
    expr: tanh(x)
    sample:
      count: 3
      vars: {x: {uniform: [-1, 1]}}
  - id: later
    skip: not today
    expr: x
    at: {x: 1}
  - id: square
    xfail: the assignment bug
    engines: [engines]
    expr: x * x
    at: {x: 3}
  - id: train
    kind: training
    model: {sizes: [1, 2, 1], activation: relu, seed: 1}
    data: {x: [0.0, 0.5, 1.0], y: [1.0, 2.0, 3.0]}
    steps: 40
    lr: 0.05
    loss_ratio: 0.9
"""

OPS_IDS = [
    "ops.gradspec.yaml::mul[x=2,y=3][builtin]",
    "ops.gradspec.yaml::add[x=1,y=2][builtin]",
    "ops.gradspec.yaml::add[x=0.5,y=-1][builtin]",
    "ops.gradspec.yaml::tanh[sample0][builtin]",
    "ops.gradspec.yaml::tanh[sample1][builtin]",
    "ops.gradspec.yaml::tanh[sample2][builtin]",
    "ops.gradspec.yaml::later[x=1][builtin]",
    "ops.gradspec.yaml::square[x=3][builtin]",
    "ops.gradspec.yaml::train[builtin]",
]

MORE = """
cases:
  - id: exp
    expr: exp(x) * y
    at: {x: 1, y: 2}
  - id: relu-kink
    expr: relu(x)
    at: {x: 0}
    kink: convention
"""

BAD = """
cases:
  - id: fine
    expr: x
    at: {x: 1}
  - id: broken
    expr: x * (y
    at: {x: 1, y: 2}
"""


def write(pytester: pytest.Pytester, name: str, text: str) -> Path:
    path = pytester.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def collected_ids(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line and not line.startswith(("ERROR", "FAILED"))]


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    write(pytester, "ops.gradspec.yaml", OPS)
    write(pytester, "sub/more.gradspec.yml", MORE)
    return pytester


def test_no_conftest_is_needed(suite: pytest.Pytester) -> None:
    assert not list(suite.path.rglob("conftest.py"))
    assert not list(suite.path.glob("*.ini")) and not (suite.path / "pyproject.toml").exists()
    result = suite.runpytest("--collect-only", "-q")
    assert result.ret == 0
    ids = collected_ids(result)
    assert ids[: len(OPS_IDS)] == OPS_IDS
    assert ids[len(OPS_IDS):] == ["sub/more.gradspec.yml::exp[x=1,y=2][builtin]", "sub/more.gradspec.yml::relu-kink[x=0][builtin]"]


def test_plugin_is_the_installed_entry_point(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--trace-config", "--collect-only", "-q")
    assert any("gradspec.plugin" in line for line in result.outlines)
    result = suite.runpytest("-p", "no:gradspec", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_run_outcomes(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-rA")
    # square runs only on engines from the `engines` module, so on builtin it is a skip, like `later`
    result.assert_outcomes(passed=9, skipped=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*SKIPPED*not today*", "*SKIPPED*case is only for engines: engines*"])


def test_keyword_selects(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-k", "mul", "-v")
    result.assert_outcomes(passed=1, deselected=10)
    result.stdout.fnmatch_lines(["ops.gradspec.yaml::mul[[]x=2,y=3[]][[]builtin[]] PASSED*"])
    result = suite.runpytest("-k", "add and not mul")
    result.assert_outcomes(passed=2, deselected=9)


def test_tags_are_marks(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-m", "arith", "--strict-markers")
    result.assert_outcomes(passed=3, deselected=8)
    result = suite.runpytest("-m", "trig", "--strict-markers")
    result.assert_outcomes(passed=3, deselected=8)
    # file defaults' tags too, and every item is marked `gradspec`
    result = suite.runpytest("-m", "ops and not arith and not trig", "--strict-markers")
    result.assert_outcomes(passed=1, skipped=2, deselected=8)
    result = suite.runpytest("-m", "gradspec", "--strict-markers")
    result.assert_outcomes(passed=9, skipped=2)


def test_tags_with_dashes_are_marks_too(pytester: pytest.Pytester) -> None:
    (pytester.path / "t.gradspec.yaml").write_text(
        "cases:\n  - id: a\n    expr: x * x\n    at: {x: 2}\n    tags: [torch-builtin]\n"
        "  - id: b\n    expr: x + x\n    at: {x: 2}\n", encoding="utf-8")
    result = pytester.runpytest("-m", "torch-builtin", "--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=1)


def test_engines_multiply_items(suite: pytest.Pytester, engines: ModuleType) -> None:
    result = suite.runpytest("--gradspec-engine", "builtin", "--gradspec-engine", "engines:MulAssign", "--collect-only", "-q")
    ids = collected_ids(result)
    assert len(ids) == 2 * 11
    assert ids[:2] == ["ops.gradspec.yaml::mul[x=2,y=3][builtin]", "ops.gradspec.yaml::mul[x=2,y=3][engines:MulAssign]"]
    result = suite.runpytest("--gradspec-engine", "builtin", "--gradspec-engine", "engines:MulAssign", "-rA")
    # MulAssign fails x*x (square), which is xfail there; its network still learns, but every weight feeds
    # one mul per data row, so `=` drops contributions and the exact check of its first gradient fails
    result.assert_outcomes(passed=17, failed=1, skipped=3, xfailed=1)
    result.stdout.fnmatch_lines(["FAILED ops.gradspec.yaml::train[[]engines:MulAssign[]]*"])
    result.stdout.fnmatch_lines(["XFAIL ops.gradspec.yaml::square[[]x=3[]][[]engines:MulAssign[]]*the assignment bug*"])


def test_xfail_unexpected_pass_is_a_failure(pytester: pytest.Pytester, engines: ModuleType) -> None:
    write(pytester, "x.gradspec.yaml", """
        cases:
          - id: square
            xfail: the assignment bug
            expr: x * x
            at: {x: 3}
        """)
    result = pytester.runpytest("--gradspec-engine", "engines:Same")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*the assignment bug*"])


def test_ini_default_engines(suite: pytest.Pytester, engines: ModuleType) -> None:
    suite.makeini("[pytest]\ngradspec_engines = engines:Same builtin\n")
    result = suite.runpytest("--collect-only", "-q")
    ids = collected_ids(result)
    assert ids[:2] == ["ops.gradspec.yaml::mul[x=2,y=3][engines:Same]", "ops.gradspec.yaml::mul[x=2,y=3][builtin]"]
    assert len(ids) == 22
    # the command line replaces the ini default
    result = suite.runpytest("--collect-only", "-q", "--gradspec-engine", "builtin")
    assert len(collected_ids(result)) == 11


def test_ini_suffixes(pytester: pytest.Pytester) -> None:
    write(pytester, "a.cases.yaml", "cases:\n  - id: a\n    expr: x\n    at: {x: 1}\n")
    write(pytester, "b.gradspec.yaml", "cases:\n  - id: b\n    expr: x\n    at: {x: 1}\n")
    pytester.makeini("[pytest]\ngradspec_suffixes = .cases.yaml\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert collected_ids(result) == ["a.cases.yaml::a[x=1][builtin]"]


def test_unknown_engine_is_a_usage_error(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--gradspec-engine", "nonsense")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gradspec-engine: unknown engine 'nonsense'*"])


def test_unrelated_yaml_is_not_collected(suite: pytest.Pytester) -> None:
    write(suite, "config.yaml", "cases: [this is not, a case file: at all\n")
    write(suite, "data/values.yml", "- 1\n- 2\n")
    write(suite, "notes.gradspec.yaml.orig", "!!python/object/apply:os.system ['touch SENTINEL']\n")
    result = suite.runpytest()
    result.assert_outcomes(passed=9, skipped=2)
    assert not (suite.path / "SENTINEL").exists()


def test_invalid_file_is_a_collection_error_and_others_run(suite: pytest.Pytester) -> None:
    bad = write(suite, "bad.gradspec.yaml", BAD)
    result = suite.runpytest()
    result.assert_outcomes(passed=9, skipped=2, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = result.stdout.str()
    assert f"{bad}:6:17: [broken] expr: expected ')', found the end of the expression" in text
    result.stdout.fnmatch_lines(["*ERROR collecting bad.gradspec.yaml*", "ERROR bad.gradspec.yaml*"])
    assert "Traceback" not in text


def test_invalid_file_lists_every_error(pytester: pytest.Pytester) -> None:
    bad = write(pytester, "bad.gradspec.yaml", """
        cases:
          - id: a
            expr: log(x)
            at: {x: -2}
          - id: b
            expr: x * w
            at: {x: 1}
          - id: c
            expr: x
            at: {x: 1}
        """)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    assert f"{bad}:4:9: [a] point x=-2 is outside the domain" in text
    assert f"{bad}:6:15: [b] expr: undefined variable 'w' (inputs: x)" in text


def test_failure_report_shows_the_table(pytester: pytest.Pytester, engines: ModuleType) -> None:
    path = write(pytester, "t.gradspec.yaml", """
        cases:
          - id: tanh
            expr: tanh(x) * y
            at: {x: 0.5, y: 2}
        """)
    result = pytester.runpytest("--gradspec-engine", "engines:TanhSignFlip")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*gradspec: tanh[[]x=0.5,y=2[]][[]engines:TanhSignFlip[]]*",
        f"{path}:4: case 'tanh'",
        "FAIL  tanh(x) * y  at x=0.5,y=2  on engines:TanhSignFlip",
        "*engine*exact*numerical*abs err*rel err*tol*verdict",
        "*value*pass",
        "*d/dx*2.427104534*1.572895466*1.572895466*0.85*fail",
        "*d/dy*pass",
        "  d/dx = y*(1 - tanh(x)**2)",
        "FAILED t.gradspec.yaml::tanh[[]x=0.5,y=2[]][[]engines:TanhSignFlip[]]*",
    ])


def test_engine_exception_is_a_failure_not_an_internal_error(pytester: pytest.Pytester, engines: ModuleType) -> None:
    write(pytester, "t.gradspec.yaml", "cases:\n  - id: m\n    expr: x * y\n    at: {x: 1, y: 2}\n")
    result = pytester.runpytest("--gradspec-engine", "engines:Raises")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*engine raised RuntimeError: backward exploded*"])
    assert "INTERNALERROR" not in result.stdout.str()


def test_convention_differences_are_summarised(pytester: pytest.Pytester, engines: ModuleType) -> None:
    write(pytester, "k.gradspec.yaml", MORE)
    result = pytester.runpytest("--gradspec-engine", "engines:ReluOneAtZero")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*gradspec convention differences*",
        "engines took another valid subgradient at a kink (not a failure):",
        "  k.gradspec.yaml::relu-kink[[]x=0[]][[]engines:ReluOneAtZero[]]: relu at 0",
    ])
    plain = pytester.runpytest()
    assert "convention differences" not in plain.stdout.str()


def test_an_overflow_is_summarised_as_an_overflow_policy(pytester: pytest.Pytester, engines: ModuleType) -> None:
    write(pytester, "o.gradspec.yaml", "cases:\n  - id: big\n    expr: exp(x)\n    at: {x: 800}\n")
    result = pytester.runpytest("--gradspec-engine", "engines:MathOverflow")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*gradspec overflow policy*",
        "engines raised OverflowError where IEEE 754 gives inf (not a failure; expect: {ieee: true} makes it one):",
        "  o.gradspec.yaml::big[[]x=800[]][[]engines:MathOverflow[]]: overflow policy: raised OverflowError where "
        "IEEE 754 gives inf (value, x: math range error)",
    ])
    assert "convention differences" not in result.stdout.str()


def test_the_short_summary_names_what_is_wrong(pytester: pytest.Pytester, engines: ModuleType) -> None:
    write(pytester, "t.gradspec.yaml", "cases:\n  - id: t\n    expr: tanh(x) * y\n    at: {x: 0.5, y: 2}\n")
    result = pytester.runpytest("--gradspec-engine", "engines:TanhSignFlip", "-rf", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    summary = [line for line in result.outlines if line.startswith("FAILED ")]
    assert len(summary) == 1
    assert " - culprit: tanh at" in summary[0]  # the first line of the report, cut to the terminal's width


def test_junitxml(suite: pytest.Pytester, engines: ModuleType) -> None:
    result = suite.runpytest("--junitxml", "report.xml", "--gradspec-engine", "engines:TanhSignFlip")
    # square is xfail, and TanhSignFlip gets x*x right: an unexpected pass, so a failure
    result.assert_outcomes(passed=6, failed=4, skipped=1)
    root = ET.parse(suite.path / "report.xml").getroot()
    suite_el = root.find("testsuite")
    assert suite_el is not None
    assert (suite_el.get("tests"), suite_el.get("failures"), suite_el.get("errors")) == ("11", "4", "0")
    cases = suite_el.findall("testcase")
    names = [c.get("name") for c in cases]
    assert "mul[x=2,y=3][engines:TanhSignFlip]" in names
    failed = [c for c in cases if c.find("failure") is not None and c.get("name", "").startswith("tanh")]
    assert sorted(c.get("name") for c in failed) == [f"tanh[sample{i}][engines:TanhSignFlip]" for i in range(3)]
    failure = failed[0].find("failure")
    message = failure.get("message")  # type: ignore[union-attr]
    assert message.startswith("culprit: tanh at `tanh(x)`") and "case 'tanh'" in message  # what is wrong, then where
    assert "d/dx = 1 - tanh(x)**2" in failure.text  # type: ignore[union-attr, operator]  # the whole report
    verdicts = {p.get("value") for c in failed for p in c.iter("property") if p.get("name") == "gradspec_verdict"}
    assert verdicts == {"fail"}


def test_explicit_points_written_in_flow_style_keep_their_labels(pytester: pytest.Pytester) -> None:
    write(pytester, "f.gradspec.yaml", "cases:\n  - id: add\n    expr: x + y\n    at: [{x: 1, y: 2}, {x: 0.5, y: -1}]\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert collected_ids(result) == ["f.gradspec.yaml::add[x=1,y=2][builtin]", "f.gradspec.yaml::add[x=0.5,y=-1][builtin]"]


def test_duplicate_point_labels_are_made_unique(pytester: pytest.Pytester) -> None:
    write(pytester, "d.gradspec.yaml", "cases:\n  - id: sq\n    expr: x * x\n    at:\n      - {x: 0.1}\n      - {x: 0.1}\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert collected_ids(result) == ["d.gradspec.yaml::sq[x=0.1][builtin]", "d.gradspec.yaml::sq[x=0.1#2][builtin]"]


# -- pytest-xdist ---------------------------------------------------------------------------------------------

needs_xdist = pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")


@needs_xdist
def test_xdist_matches_serial(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(DATA))
    write(suite, "bad.gradspec.yaml", BAD)
    args = ("--gradspec-engine", "builtin", "--gradspec-engine", "engines:MulAssign", "--gradspec-engine",
            "engines:TanhSignFlip", "-p", "no:cacheprovider")
    serial = suite.runpytest_subprocess(*args, timeout=60)
    parallel = suite.runpytest_subprocess("-n", "2", *args, timeout=60)
    # builtin: 9 passed, 2 skipped; MulAssign: 8 passed, train failed (first gradient), 1 skipped, square
    # xfailed; TanhSignFlip: 6 passed, tanh x3 failed, square passed unexpectedly (failed), 1 skipped
    expected = {"passed": 23, "failed": 5, "skipped": 4, "xfailed": 1, "errors": 1}
    serial.assert_outcomes(**expected)
    parallel.assert_outcomes(**expected)
    assert serial.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED
    for result in (serial, parallel):
        result.stdout.fnmatch_lines(["*bad.gradspec.yaml:6:17: [[]broken[]] expr: expected ')'*"])
    assert "2 workers" in parallel.stdout.str()


# -- nothing passes silently ----------------------------------------------------------------------------------


def test_an_engine_that_cannot_load_is_a_usage_error(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    result = suite.runpytest("--gradspec-engine", "torch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gradspec-engine: engine torch cannot be used: torch is not installed "
                                 "(pip install 'gradspec[[]torch[]]')"])


def test_a_protocol_mismatch_is_a_usage_error(suite: pytest.Pytester, misbehaving: ModuleType) -> None:
    result = suite.runpytest("--gradspec-engine", "misbehaving:Derivative")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*engine's Value has no attribute grad; map it with grad = \"derivative\"*"])


def test_a_session_in_which_an_engine_compared_nothing_fails(pytester: pytest.Pytester, engines: ModuleType) -> None:
    write(pytester, "t.gradspec.yaml", """
        cases:
          - id: t
            expr: tanh(x)
            at: [{x: 1}, {x: 2}]
        """)
    result = pytester.runpytest("--gradspec-engine", "engines:NoTanh")
    result.assert_outcomes(skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["engine engines:NoTanh compared nothing: every one of its checks was skipped"])
    assert pytester.runpytest("--gradspec-engine", "builtin").ret == pytest.ExitCode.OK


def test_the_plugin_keeps_its_state_in_the_config_stash_only() -> None:
    import gradspec.plugin as plugin

    tree = ast.parse(Path(plugin.__file__).read_text(encoding="utf-8"))
    assigned = [t.id for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)]
    assert assigned == ["_ENGINES", "_SPECS", "_RESOLVED", "_CONVENTIONS", "_IMPRECISE", "_MODE_SKIPS", "_CASE_FILE_ERRORS",
                        "_OTHER_ERRORS", "_IMPORTABLE", "_ENGINES_RAN", "_ENGINES_COMPARED", "_FIRST_FAILURE", "_SHARD"]
    assert all(isinstance(getattr(plugin, name), pytest.StashKey) for name in assigned)


# -- pytest's cache: --lf, --ff and --sw on case items ---------------------------------------------------

TANH_IDS = [f"ops.gradspec.yaml::tanh[sample{i}][engines:TanhSignFlip]" for i in range(3)]
SQUARE_ID = "ops.gradspec.yaml::square[x=3][engines:TanhSignFlip]"  # xfail, but TanhSignFlip gets x*x right


def outcome_lines(result: pytest.RunResult) -> list[str]:
    return [line.split(" ")[0] for line in result.outlines if line.startswith(("ops.", "sub/")) and "::" in line]


def test_last_failed_reruns_only_the_failures(suite: pytest.Pytester, engines: ModuleType) -> None:
    engine = ("--gradspec-engine", "engines:TanhSignFlip")
    first = suite.runpytest(*engine)
    first.assert_outcomes(passed=6, failed=4, skipped=1)
    again = suite.runpytest(*engine, "--lf", "-v")
    again.assert_outcomes(failed=4)
    again.stdout.fnmatch_lines(["run-last-failure: rerun previous 4 failures (skipped 1 file)"])
    assert sorted(outcome_lines(again)) == sorted([*TANH_IDS, SQUARE_ID])
    # another engine's items are other items: none of them failed before
    other = suite.runpytest("--lf")
    other.stdout.fnmatch_lines(["run-last-failure: 4 known failures not in selected tests"])
    other.assert_outcomes(passed=9, skipped=2)


def test_failed_first_runs_the_failures_first(suite: pytest.Pytester, engines: ModuleType) -> None:
    engine = ("--gradspec-engine", "engines:TanhSignFlip")
    suite.runpytest(*engine).assert_outcomes(passed=6, failed=4, skipped=1)
    result = suite.runpytest(*engine, "--ff", "-v")
    result.assert_outcomes(passed=6, failed=4, skipped=1)
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 4 failures first"])
    order = outcome_lines(result)
    assert len(order) == 11
    assert sorted(order[:4]) == sorted([*TANH_IDS, SQUARE_ID])


def test_stepwise_resumes_at_the_last_failure(suite: pytest.Pytester, engines: ModuleType) -> None:
    engine = ("--gradspec-engine", "engines:TanhSignFlip")
    first = suite.runpytest(*engine, "--sw", "-v")
    # mul and add's two points pass, then the first tanh sample fails and the run stops
    first.assert_outcomes(passed=3, failed=1)
    assert outcome_lines(first)[-1] == TANH_IDS[0]
    again = suite.runpytest(*engine, "--sw", "-v")
    again.assert_outcomes(failed=1, deselected=3)
    again.stdout.fnmatch_lines(["stepwise: skipping 3 already passed items*"])
    assert outcome_lines(again) == [TANH_IDS[0]]
    # --sw-skip lets that failure be, and the run stops at the next one
    past = suite.runpytest(*engine, "--sw-skip", "-v")
    past.assert_outcomes(failed=2, deselected=3)
    assert outcome_lines(past) == TANH_IDS[:2]


# -- your own engine from your own folder, and named engines from pyproject.toml --------------------------

MY_ENGINE = "from gradspec.engine import Value as _Builtin\n\n\nclass Value(_Builtin):\n    pass\n"
CASE = "cases:\n  - id: mul\n    expr: x * y + tanh(x)\n    at: {x: 2, y: 3}\n"


def pytest_as_installed(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest as its console script runs it: -P keeps the current folder off sys.path (`python -m` adds it)."""
    return pytester.run(sys.executable, "-P", "-m", "pytest", "-p", "no:cacheprovider", *args, timeout=120)


def test_an_engine_module_in_the_folder_pytest_runs_in_is_found(pytester: pytest.Pytester) -> None:
    write(pytester, "pluginengine.py", MY_ENGINE)
    write(pytester, "my_cases/a.gradspec.yaml", CASE)
    result = pytest_as_installed(pytester, "my_cases", "--gradspec-engine", "pluginengine:Value", "-v")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["my_cases/a.gradspec.yaml::mul[[]x=2,y=3[]][[]pluginengine:Value[]] PASSED*"])


def test_an_engine_module_not_found_is_a_usage_error_that_says_what_to_do(pytester: pytest.Pytester) -> None:
    write(pytester, "my_cases/a.gradspec.yaml", CASE)
    result = pytest_as_installed(pytester, "my_cases", "--gradspec-engine", "absentengine:Value")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --gradspec-engine: cannot import engine module 'absentengine': ModuleNotFoundError: No module named "
        "'absentengine' (gradspec looks in the current directory and the installed packages: run it from the folder "
        "that holds absentengine.py or the absentengine/ package, add that folder to PYTHONPATH, or pip install the "
        "package that provides it)",
    ])


PYPROJECT = """
[tool.gradspec]
engines = ["mine"]
time-limit = 12.5

[tool.gradspec.engine.mine]
class = "renamed_plugin:Value"
data = "value"
grad = "derivative"
methods = { tanh = "Tanh", backward = "backprop" }
"""


def test_named_engines_and_defaults_come_from_pyproject(pytester: pytest.Pytester) -> None:
    write(pytester, "pyproject.toml", PYPROJECT)
    write(pytester, "renamed_plugin.py", (DATA / "renamed.py").read_text(encoding="utf-8"))
    write(pytester, "a.gradspec.yaml", CASE)
    write(pytester, "test_limit.py", "from gradspec.limits import LIMITS\n\ndef test_limit():\n    assert LIMITS.engine == 12.5\n")
    result = pytest_as_installed(pytester, "-v")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["a.gradspec.yaml::mul[[]x=2,y=3[]][[]mine[]] PASSED*", "test_limit.py::test_limit PASSED*"])
    result = pytest_as_installed(pytester, "-v", "--gradspec-engine", "mine", "--gradspec-engine", "builtin", "a.gradspec.yaml")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*::mul[[]x=2,y=3[]][[]mine[]] PASSED*", "*::mul[[]x=2,y=3[]][[]builtin[]] PASSED*"])


def test_bad_configuration_is_a_usage_error_naming_the_file_and_key(pytester: pytest.Pytester) -> None:
    path = write(pytester, "pyproject.toml", "[tool.gradspec]\ntime-limit = -3\n")
    write(pytester, "a.gradspec.yaml", CASE)
    result = pytest_as_installed(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {path}: tool.gradspec.time-limit: expected a number of seconds above 0, found -3"])


MODES = """
    cases:
      - id: modes
        expr: tanh(x) * y + x
        check: [value, vjp, jvp, hvp]
        at: [{x: 0.5, y: 2}, {x: 1, y: 3}]
    """


def test_modes_an_engine_cannot_compute_are_counted_in_the_summary(pytester: pytest.Pytester,
                                                                    misbehaving: ModuleType) -> None:
    write(pytester, "m.gradspec.yaml", MODES)
    result = pytester.runpytest("--gradspec-engine", "misbehaving:Scalar")
    result.assert_outcomes(passed=2)  # value and vjp were compared and passed
    result.stdout.fnmatch_lines(["*gradspec modes not computed*",
                                 "4 modes asked for but not computed (skipped, not passed):",
                                 "  hvp: engine misbehaving:Scalar has no differentiable gradients*(2)",
                                 "  jvp: engine misbehaving:Scalar has no forward mode*(2)"])
    builtin = pytester.runpytest("--gradspec-engine", "builtin")
    builtin.assert_outcomes(passed=2)
    assert "modes not computed" not in builtin.stdout.str()


def test_imprecise_items_pass_and_are_listed_and_fail_under_gradspec_strict(pytester: pytest.Pytester) -> None:
    write(pytester, "rebuilt.py", "import math\nfrom gradspec.engine import Value\n\n\nclass Rebuilt(Value):\n"
                                  "    def sigmoid(self):\n        s = 1.0 / (1.0 + math.exp(-self.data))\n"
                                  "        out = Rebuilt(s, (self,), 'sigmoid')\n\n        def _backward():\n"
                                  "            self.grad += s * (1 - s) * out.grad\n\n"
                                  "        out._backward = _backward\n        return out\n")
    write(pytester, "t.gradspec.yaml", "cases:\n  - id: tail\n    expr: sigmoid(x)\n    at: {x: 40}\n")
    result = pytester.runpytest("--gradspec-engine", "rebuilt:Rebuilt")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*gradspec imprecise*", "*engine 0, exact 4.25e-18: 0 of 16 digits*"])
    pytester.runpytest("--gradspec-engine", "rebuilt:Rebuilt", "--gradspec-strict").assert_outcomes(failed=1)
