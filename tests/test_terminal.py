"""What `gradspec run` prints: failures grouped by case and engine (the worst point in full, the others
counted, a culprit once), --maxfail and -x, --version, progress in a log and on a terminal, a quiet end
when the reader of a pipe goes away, and the pytest plugin's compact failure text."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import gradspec
from gradspec.casefile.model import data_dir
from gradspec.cli import main
from gradspec.report import terminal
from gradspec.report.common import worst_rel_error
from gradspec.report.terminal import Progress, group_failures, next_steps
from gradspec.results import CheckResult, Culprit, CulpritKind, Verdict

DATA = Path(__file__).resolve().parent / "data"

# Two cases that square a value: the MulAssign engine (= for += in mul's backward) gets both wrong at every
# point, with the same culprit. A third case never multiplies a value by itself and passes.
SQUARES = """\
cases:
  - id: square-sampled
    expr: x * x
    sample:
      count: 20
      vars: {x: {uniform: [0.5, 4]}}
  - id: cube
    expr: x * x * x
    at: [{x: 2}, {x: 3}]
  - id: plain
    expr: x * y
    at: {x: 2, y: 3}
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def squares(tmp_path: Path) -> Path:
    path = tmp_path / "squares.gradspec.yaml"
    path.write_text(SQUARES, encoding="utf-8")
    return path


def _blocks(out: str) -> list[list[str]]:
    """The failure part of the output (everything before the summary table), split at blank lines."""
    text = re.split(r"^engine ", out, flags=re.MULTILINE)[0]
    return [block.splitlines() for block in text.strip("\n").split("\n\n") if block]


def test_many_failing_points_of_one_case_are_one_block(squares: Path, engines: ModuleType) -> None:
    code, out, err = run("run", str(squares), "--engine", "engines:MulAssign")
    assert (code, err) == (1, "")
    (block, same_culprit) = _blocks(out)  # one block in full, then one line for the other case it breaks
    assert block[0] == f"{squares}:5: square-sampled on engines:MulAssign: 20 of 20 checks fail"
    # the worst point in full: its table (value and d/dx rows) and its derivative, once
    assert block[1].startswith("FAIL  x * x  at x=")
    assert block[2] == "  smallest failing input: x=1"
    assert [row.split()[0] for row in block[3:6]] == ["engine", "value", "d/dx"]
    assert block[6] == "  d/dx = 2*x"
    # the other 19 counted, the first three named
    assert re.fullmatch(r"  and 19 more failing points: x=[\d.]+; x=[\d.]+; x=[\d.]+ and 16 more", block[7]), block[7]
    assert block[8].startswith("  culprit: mul at `x * x`: overwrites the gradient of its input")
    assert block[9:] == ["  smallest failing case:", "    - id: square-sampled-shrunk",
                         '      description: "smallest failing part of square-sampled on engines:MulAssign"',
                         '      expr: "x * x"', "      at: {x: 1}"]
    assert len(same_culprit) == 1
    assert re.fullmatch(rf"{re.escape(str(squares))}:9: cube on engines:MulAssign: 2 of 2 checks fail "
                        r"\(d/dx 4 for 12\); culprit mul \(accumulation\) as in square-sampled", same_culprit[0])
    assert len(out.splitlines()) == 14 + 1 + 1 + 1 + 3  # the block, a blank line, a line, a blank line, the summary
    assert out.count("FAIL  ") == 1

    # -v: every failing point in full, as before grouping: 22 blocks of at least 5 lines
    code, verbose, _ = run("run", str(squares), "--engine", "engines:MulAssign", "-v")
    assert code == 1
    assert verbose.count("FAIL  x * x") == 22
    assert len(verbose.splitlines()) > 5 * 22 > 4 * len(out.splitlines())


def test_the_worst_point_is_the_one_shown(squares: Path, engines: ModuleType) -> None:
    from gradspec.casefile.loader import load_file
    from gradspec.engines.resolve import resolve
    from gradspec.run.runner import run_case

    case = load_file(squares).cases[2]  # plain: x*y + y, then break it on purpose with ZeroGrad
    results = run_case(case, resolve("engines:ZeroGrad"))
    (group,) = group_failures(results)
    assert (group.case_id, group.engine, group.checks, len(group.failing)) == ("plain", "engines:ZeroGrad", 1, 1)
    cube = run_case(load_file(squares).cases[1], resolve("engines:MulAssign"))
    (group,) = group_failures(cube)
    assert len(group.failing) == 2
    # x*x*x with = for +=: d/dx is 3x**2 exactly, the engine gets x**2 at both points (relative error
    # 2/3, the same up to rounding): the worst is the point with the larger error, whichever it is
    errors = [worst_rel_error(r) for r in cube]
    assert errors == [pytest.approx(2 / 3, rel=1e-12)] * 2
    assert group.worst is cube[errors.index(max(errors))]


def test_maxfail_and_exitfirst_stop_the_run(squares: Path, engines: ModuleType) -> None:
    code, out, _ = run("run", str(squares), "--engine", "engines:MulAssign", "--maxfail", "3")
    assert code == 1
    assert "stopped after 3 failing check(s) (--maxfail 3); the rest did not run" in out
    assert out.splitlines()[-1].startswith("FAILED: 3 checks of 1 cases in 1 files on 1 engine(s): 3 fail;")
    code, out, _ = run("run", str(squares), "--engine", "engines:MulAssign", "-x")
    assert code == 1
    assert "stopped after 1 failing check(s) (--maxfail 1)" in out
    assert out.splitlines()[-1].startswith("FAILED: 1 checks of 1 cases in 1 files on 1 engine(s): 1 fail;")
    # a passing run never stops early, and says nothing about stopping
    code, out, _ = run("run", str(squares), "-x")
    assert code == 0 and "stopped" not in out
    assert run("run", str(squares), "--maxfail", "0")[0] == 2


def test_maxfail_with_workers(squares: Path, engines: ModuleType) -> None:
    code, out, _ = run("run", str(squares), "--engine", "engines:MulAssign", "--maxfail", "2", "--jobs", "2")
    assert code == 1
    assert "stopped after 2 failing check(s)" in out
    # the first two failures in the serial order, whichever worker finished first
    assert re.search(r"\b2 fail;", out.splitlines()[-1])


def test_version() -> None:
    assert run("--version") == (0, f"gradspec {gradspec.__version__}\n", "")


def test_next_steps_after_a_clean_run(squares: Path, engines: ModuleType, tmp_path: Path) -> None:
    assert next_steps(["builtin"], []).startswith("next: check your own engine with --engine module:Class")
    assert next_steps(["engines:Same"], []) == "next: check a report with --report report.html (or .md, .json)"
    assert next_steps(["engines:Same"], ["r.json"]) == ""
    code, out, _ = run("run", str(squares), "--engine", "engines:Same", "--report", str(tmp_path / "r.json"))
    assert code == 0
    assert out.splitlines()[-1] == f"report written: {tmp_path / 'r.json'}"
    code, out, _ = run("run", str(squares), "-q")
    assert "next:" not in out
    code, out, _ = run("run", str(squares), "--engine", "engines:MulAssign")
    assert code == 1 and "next:" not in out


class _Clock:
    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_progress_in_a_log_every_tenth() -> None:
    stream = io.StringIO()
    progress = Progress(stream, 100, "cases", quiet_for=2.0, clock=_Clock(0.05))  # 0.05 s per step: 5 s in all
    for i in range(100):
        progress.failed = i // 50
        progress.step(f"case-{i}")
    progress.done()
    lines = stream.getvalue().splitlines()
    # quiet for the first 2 s (40 steps), then one line per 10% more done
    assert [line.split(" (")[0] for line in lines] == [f"gradspec: {n}/100 cases" for n in (40, 50, 60, 70, 80, 90, 100)]
    assert lines[0] == "gradspec: 40/100 cases (40%), 2 s"
    assert lines[-1] == "gradspec: 100/100 cases (100%), 1 failing, 5 s"


def test_progress_in_a_log_every_few_seconds() -> None:
    stream = io.StringIO()
    progress = Progress(stream, 1000, "cases", quiet_for=2.0, clock=_Clock(1.0))  # slow steps: a line every 5 s
    for i in range(40):
        progress.step(f"case-{i}")
    # the 10% marks are 100 steps apart: a line every 5 s instead
    assert [int(line.split("/")[0].split()[1]) for line in stream.getvalue().splitlines()] == [5, 10, 15, 20, 25, 30,
                                                                                                35, 40]


def test_progress_lines_of_a_run(squares: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terminal.Progress, "__init__", _eager(terminal.Progress.__init__))
    code, _, err = run("run", str(squares))
    assert code == 0
    assert err.splitlines() == [f"gradspec: {n}/3 cases ({100 * n // 3}%), 0 s" for n in (1, 2, 3)]


def test_a_quiet_run_prints_no_progress(squares: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terminal.Progress, "__init__", _eager(terminal.Progress.__init__))
    code, out, err = run("run", str(squares), "-q")
    assert code == 0
    assert err == ""
    assert "OK: 23 checks of 3 cases" in out


def _eager(init):  # type: ignore[no-untyped-def]
    def eager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **{**kwargs, "quiet_for": 0.0})

    return eager


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_a_live_bar() -> None:
    stream = _Terminal()
    progress = Progress(stream, 50, "cases")
    assert progress.bar is not None
    for i in range(50):
        progress.step(f"case-{i}")
    progress.done()
    text = stream.getvalue()
    assert "50/50" in text and "\x1b[" in text  # drawn with terminal control sequences
    assert "gradspec: " not in text  # not the log lines


def test_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    many = tmp_path / "many.gradspec.yaml"
    many.write_text("cases:\n  - id: sq\n    expr: x * x\n    sample:\n      count: 400\n"
                    "      vars: {x: {uniform: [0.5, 4]}}\n", encoding="utf-8")
    # -v prints every failing point (about 150 kB): far more than a pipe holds, so writing goes on after
    # head has exited
    command = (f"{sys.executable} -m gradspec run {many} --engine engines:MulAssign -v | head -1; "
               "exit ${PIPESTATUS[0]}")
    done = subprocess.run(["bash", "-c", command], cwd=DATA, capture_output=True, text=True, timeout=300, check=False)
    assert done.stdout == f"{many}:5: sq\n"
    # no traceback and no "Exception ignored" from the flush at exit: at most the progress line of the run
    assert all(re.fullmatch(r"gradspec: 1/1 cases \(100%\), 400 failing, \d+ s", line)
               for line in done.stderr.splitlines()), done.stderr
    assert done.returncode == 141  # 128 + SIGPIPE, as a shell reports a command stopped by a closed pipe


def test_plugin_failure_text_is_one_compact_block_per_item(pytester: pytest.Pytester, engines: ModuleType) -> None:
    pytester.makefile(".gradspec.yaml", t=SQUARES.replace("count: 20", "count: 5"))
    result = pytester.runpytest("--gradspec-engine", "engines:MulAssign", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=7)
    # the failures section only: under CI=true, pytest's short summary repeats each failure's whole message
    text = result.stdout.str().split("short test summary info")[0]
    # the culprit, the derivative and the smallest failing case once per case, on its first failing item
    # (the culprit in the report's first line too, which pytest's short summary shows)
    assert text.count("culprit: mul at") == 2 * 2
    assert text.count("\nculprit: mul at") == 2
    assert text.count("  d/dx = 2*x\n") == 1
    assert text.count("smallest failing case:") == 2
    assert text.count("culprit and derivatives: see square-sampled[sample0][engines:MulAssign]") == 4
    assert text.count("culprit and derivatives: see cube[x=2][engines:MulAssign]") == 1


def test_a_case_id_is_not_markup_on_the_live_bar() -> None:
    stream = _Terminal()
    progress = Progress(stream, 30, "cases")
    for label in ["[/bold]", "[red]x"] * 15:  # rich markup would raise on the stray closing tag
        progress.step(label)
    progress.done()
    assert "30/30" in stream.getvalue()


def test_a_named_op_is_not_contradicted_by_another_point_of_the_case() -> None:
    def failing(x: float, culprit: Culprit) -> CheckResult:
        return CheckResult("tanh(x * 100)", {"x": x}, "mine", Verdict.FAIL, case_id="tanh-big", path="c.yaml",
                           culprit=culprit)

    traversal = Culprit("backward", CulpritKind.TRAVERSAL, "x", message="every op's backward rule is right in isolation")
    unstable = Culprit("backward", CulpritKind.NONDETERMINISM, "x", message="the engine is not deterministic")
    rule = Culprit("tanh", CulpritKind.RULE, "y", message="tanh at `tanh(y)`: d/d(input) exact 1.1e-09")
    results = [failing(0.11, traversal), failing(0.12, rule), failing(0.13, unstable),
               CheckResult("x * x", {"x": 2.0}, "mine", Verdict.FAIL, case_id="other", path="c.yaml", culprit=traversal)]
    groups = group_failures(results)
    assert groups[0].culprit_key == ("mine", "tanh", "rule")
    lines = terminal.failure_lines(results)
    culprits = [line for line in lines if line.startswith("  culprit: ")]
    assert culprits == ["  culprit: tanh at `tanh(y)`: d/d(input) exact 1.1e-09",  # alone: no contradiction
                        "  culprit: every op's backward rule is right in isolation"]  # another case keeps its own


MODES_CASES = """
cases:
  - id: modes
    expr: a = x * y; a * a + x
    check: [value, vjp, jvp, hvp]
    order: 3
    at: [{x: 0.5, y: 2}, {x: 1, y: 3}]
  - id: kink
    expr: relu(x) * y
    kink: convention
    check: [value, vjp, jvp]
    at: {x: 0, y: 2}
"""


def test_modes_an_engine_cannot_compute_are_counted_and_the_run_is_not_ok(tmp_path: Path, misbehaving: ModuleType) -> None:
    path = tmp_path / "m.gradspec.yaml"
    path.write_text(MODES_CASES)
    md, html = tmp_path / "r.md", tmp_path / "r.html"
    code, out, _ = run("run", str(path), "--engine", "misbehaving:Scalar", "-q", "--report", str(md), "--report", str(html))
    assert code == 0
    lines = [line for line in out.splitlines() if not line.startswith("report written")]
    assert lines[-1].startswith("NO FAILURES, SOME SKIPPED: 3 checks of 2 cases")
    assert lines[-2] == (
        "6 modes asked for but not computed: "
        "hvp: engine misbehaving:Scalar has no differentiable gradients (it does not declare the hvp capability) (2), "
        "jvp: engine misbehaving:Scalar has no forward mode (it does not declare the jvp capability) (2), "
        "order 3: engine misbehaving:Scalar has no differentiable gradients (it does not declare the hvp capability) (2)")
    assert md.read_text().startswith("## gradspec: no failures, 6 modes not computed (3 checks)")
    assert "6 modes asked for but not computed: `hvp: engine misbehaving:Scalar" in md.read_text()
    page = html.read_text()
    assert "no failures, some skipped" in page and "all checks passed" not in page
    assert "<h3>Modes asked for but not computed (6)</h3>" in page
    # the built-in engine computes every mode; at the kink gradspec itself leaves jvp unjudged (not counted)
    code, out, _ = run("run", str(path), "-q")
    assert code == 0 and out.splitlines()[-1].startswith("OK: 3 checks of 2 cases")


def test_a_failing_check_says_the_missing_modes_once_per_engine(tmp_path: Path, misbehaving: ModuleType) -> None:
    path = tmp_path / "m.gradspec.yaml"
    path.write_text(MODES_CASES.split("  - id: kink")[0].replace("    order: 3\n", ""))
    module = tmp_path / "badmul_mod.py"
    module.write_text("from misbehaving import Scalar\n\nclass BadMul(Scalar):\n    def __mul__(self, o):\n"
                      "        o = self.lift(o)\n        return self._make(self.data * o.data, [(self, o.data), (o, o.data)])\n")
    sys.path.insert(0, str(tmp_path))
    try:
        code, out, _ = run("run", str(path), "--engine", "badmul_mod:BadMul", "-v")
    finally:
        sys.path.remove(str(tmp_path))
    assert code == 1
    assert out.count("has no forward mode") == 2  # once after the failures, once in the summary
    assert "not computed on badmul_mod:BadMul in the checks above: hvp: engine badmul_mod:BadMul has no " \
           "differentiable gradients (it does not declare the hvp capability); jvp: engine badmul_mod:BadMul has " \
           "no forward mode (it does not declare the jvp capability)" in out
    assert not any(line.split()[:1] in (["jvp"], ["hvp"]) for line in out.splitlines())  # no skip rows in the tables


CONVENTIONS = """
cases:
  - id: relu-at-zero
    expr: relu(x) * y
    kink: convention
    at: {x: 0, y: 2}
  - id: known
    xfail: the assignment bug
    expr: x * x
    at: {x: 3}
"""


def test_conventions_and_xfails_are_listed_by_reason(tmp_path: Path, engines: ModuleType) -> None:
    path = tmp_path / "c.gradspec.yaml"
    path.write_text(CONVENTIONS)
    code, out, _ = run("run", str(path), "--engine", "engines:MulAssign", "-q")
    assert code == 0 and "1 xfail: the assignment bug (1)" in out.splitlines(), out
    code, out, _ = run("run", str(path), "--engine", "engines:ReluOneAtZero", "-q")
    assert code == 1 and "1 convention: another subgradient at a kink (1)" in out.splitlines(), out


@pytest.mark.slow
def test_one_planted_bug_on_the_whole_library_prints_at_most_three_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # = for += in mul's backward of a correct textbook engine: every case it breaks names mul, in full once
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent / "data"))
    code, out, _ = run("run", str(data_dir("cases")), "--engine", "textbook:MulAssign")
    assert code == 1
    blocks = [line for line in out.splitlines() if line.startswith("FAIL  ")]
    assert len(blocks) <= 3, "\n".join(blocks)
    culprits = [line for line in out.splitlines() if line.startswith("  culprit: ")]
    assert culprits[0].startswith("  culprit: mul at `x * x`: overwrites the gradient of its input")
    assert all("not deterministic" not in c and "every op's backward rule is right" not in c for c in culprits)
    one_liners = [line for line in out.splitlines() if " as in " in line]
    assert len(one_liners) > 40 and all("culprit mul (accumulation) as in" in line for line in one_liners)
