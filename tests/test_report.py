"""Reports: JSON, Markdown and HTML rendered from real check results, and the HTML opened in a browser."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import gradspec
from gradspec.casefile.loader import load_file
from gradspec.engine import Value
from gradspec.engines.resolve import resolve
from gradspec.errors import GradspecError
from gradspec.report import check_report_paths, format_for, render, write_reports
from gradspec.report.json_format import to_dict
from gradspec.report.markdown import MATRIX_HEADING, MAX_FAILURES
from gradspec.report.matrix import MAX_DETAIL, build_matrix, display_names
from gradspec.report.plots import STEP_EXPONENTS, rel_error_bins, step_errors
from gradspec.results import CheckResult, Culprit, Quantity, Run, Verdict
from gradspec.run.runner import run_case

DOCS = Path(__file__).resolve().parent.parent / "docs" / "report-format.md"
SCRIPT_TEXT = "<script>alert('gradspec')</script>"


class BrokenTanh(Value):
    """tanh with the derivative 1 - t instead of 1 - t**2."""

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return self._unary(t, "tanh", lambda: 1.0 - t)


class NanExp(Value):
    """exp whose gradient is nan."""

    def exp(self) -> Value:
        e = math.exp(self.data)
        return self._unary(e, "exp", lambda: math.nan)


class ScriptExp(Value):
    """exp that raises with markup in its message."""

    def exp(self) -> Value:
        raise RuntimeError(SCRIPT_TEXT)


def _at(result: CheckResult, case: str, path: str, line: int, kind: str = "gradient") -> CheckResult:
    return dataclasses.replace(result, case_id=case, path=path, line=line, kind=kind)


def _synthetic() -> list[CheckResult]:
    """Results no expression gives: a -inf reference, a training run, a deep case outside the grammar."""
    q = Quantity("x", "input", 1.0, -math.inf, -math.inf, math.inf, math.inf, 0.0, Verdict.FAIL, exact_text="-inf")
    deep = Quantity("x", "input", 0.7, 0.7, 0.7, 0.0, 0.0, 1e-7, Verdict.PASS)
    loss = Quantity("loss", "value", 0.01, None, None, None, 0.02, 0.5, Verdict.PASS, note="initial loss 0.5")
    return [
        CheckResult("log(x)", {"x": 0.0}, "builtin", Verdict.FAIL, (q,), case_id="log-at-zero", path="b.gradspec.yaml",
                    line=4),
        CheckResult("MLP[2, 4, 1] tanh, 20 steps at lr 0.05", {}, "builtin", Verdict.PASS, (loss,),
                    message="loss 0.5 -> 0.01", case_id="train", path="b.gradspec.yaml", line=9, kind="training"),
        CheckResult("z = x; repeat 3: z = tanh(z)", {"x": 0.5}, "builtin", Verdict.PASS, (deep,), case_id="deep",
                    path="b.gradspec.yaml", line=12, kind="gradient"),
    ]


def make_run() -> Run:
    expressions: list[tuple[str, dict[str, float]]] = [("(x*y + x)**2 - tanh(y)", {"x": 2, "y": 3}), ("tanh(x) * exp(y)", {"x": 0.5, "y": -1}),
                   ("a = x*y; b = a + x; b", {"x": 1.5, "y": 2}), ("relu(x)", {"x": 0})]
    results: list[CheckResult] = []
    for i, (expr, point) in enumerate(expressions):
        for engine in ("builtin", BrokenTanh, NanExp):
            results.append(_at(gradspec.check(expr, point, engine=engine), f"case-{i}", "a.gradspec.yaml", 10 + i))
    results.append(_at(gradspec.check("exp(x)", {"x": 1}, engine=ScriptExp), "script", "a.gradspec.yaml", 20))
    results.append(_at(gradspec.check("log(x)", {"x": -1}), "domain", "a.gradspec.yaml", 21))
    results += _synthetic()
    engines = ("builtin", results[1].engine, results[2].engine)
    return Run(tuple(results), engines, ("a.gradspec.yaml", "b.gradspec.yaml"),
               ("c.gradspec.yaml:3:5: unknown key 'exprr'",), 1.25, "")


@pytest.fixture(scope="module")
def run() -> Run:
    return make_run()


def _find(run: Run, verdict: Verdict, engine: str | None = None) -> CheckResult:
    return next(r for r in run.results if r.verdict is verdict and (engine is None or r.engine == engine))


# -- the run itself is what the tests assume -----------------------------------------------------------


def test_the_run_has_every_kind_of_result(run: Run) -> None:
    counts = run.counts()
    assert counts[Verdict.PASS] and counts[Verdict.FAIL] and counts[Verdict.ERROR]
    assert any(q.engine is not None and math.isnan(q.engine) for r in run.results for q in r.quantities)
    assert any(SCRIPT_TEXT in r.message for r in run.results)


# -- JSON ----------------------------------------------------------------------------------------------


TOP_KEYS = ["gradspec", "format", "summary", "engines", "files", "sources", "errors", "matrix", "checks"]
CHECK_KEYS = ["case", "file", "line", "kind", "engine", "point", "inputs", "expression", "verdict", "message", "kinks",
              "quantities", "culprit", "shrunk", "radius", "step_input",
              "step_errors"]
QUANTITY_KEYS = ["name", "role", "engine", "exact", "exact_text", "numerical", "abs_error", "rel_error", "tolerance",
                 "verdict", "symbolic", "note", "index", "elements"]


def _strict_loads(text: str) -> object:
    def reject(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


def test_json_is_strict_and_has_the_documented_shape(run: Run) -> None:
    data = _strict_loads(render("json", run))
    assert isinstance(data, dict)
    json.dumps(data, allow_nan=False)
    assert list(data) == TOP_KEYS
    assert data["format"] == 1 and data["gradspec"] == gradspec.__version__
    raised = next(r.engine for r in run.results if SCRIPT_TEXT in r.message)
    assert data["engines"] == [*run.engines, raised]  # not in run.engines, yet a check names it
    assert data["files"] == list(run.files) and data["errors"] == list(run.errors)
    assert len(data["checks"]) == len(run.results)
    for record in data["checks"]:
        assert list(record) == CHECK_KEYS
        for q in record["quantities"]:
            assert list(q) == QUANTITY_KEYS


def test_json_summary_counts(run: Run) -> None:
    summary = to_dict(run)["summary"]
    assert summary["checks"] == len(run.results)
    assert summary["exit_code"] == run.exit_code == 2
    assert summary["totals"] == {v.value: n for v, n in run.counts().items()}
    for engine in run.engines:
        assert summary["engines"][engine] == {v.value: n for v, n in run.counts(engine=engine).items()}
    assert list(summary["files"]) == ["a.gradspec.yaml", "b.gradspec.yaml"]
    assert sum(sum(c.values()) for c in summary["files"].values()) == len(run.results)
    broken = run.results[1].engine
    assert summary["engines"][broken]["fail"] == 2  # the two expressions with tanh


def test_json_nan_and_inf_are_strings(run: Run) -> None:
    checks = to_dict(run)["checks"]
    nan_exp = next(c for c in checks if c["engine"].endswith("NanExp") and c["verdict"] == "fail")
    grad_y = next(q for q in nan_exp["quantities"] if q["name"] == "y")
    assert grad_y["engine"] == "nan" and grad_y["abs_error"] == "inf" and grad_y["rel_error"] == "inf"
    assert isinstance(grad_y["exact"], float) and grad_y["exact_text"]
    synthetic = next(c for c in checks if c["case"] == "log-at-zero")["quantities"][0]
    assert synthetic["exact"] == "-inf" and synthetic["numerical"] == "-inf" and synthetic["abs_error"] == "inf"


def test_json_values_are_the_results(run: Run) -> None:
    result = _find(run, Verdict.FAIL, run.results[1].engine)
    record = to_dict(run)["checks"][run.results.index(result)]
    assert record["case"] == result.case_id and record["line"] == result.line and record["file"] == result.path
    assert record["point"] == result.point
    q = next(q for q in result.quantities if q.verdict is Verdict.FAIL)
    rq = next(x for x in record["quantities"] if x["name"] == q.name)
    assert (rq["engine"], rq["exact"], rq["abs_error"], rq["tolerance"]) == (q.engine, q.exact, q.abs_error, q.tolerance)
    assert rq["symbolic"] == q.symbolic and "tanh" in rq["symbolic"]


def test_every_json_field_is_documented(run: Run) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    data = to_dict(run)
    keys = set(data) | set(data["summary"]) | set(CHECK_KEYS) | set(QUANTITY_KEYS) | set(data["summary"]["totals"])
    matrix = data["matrix"]
    keys |= set(matrix) | set(matrix["rows"][0]) | set(next(iter(matrix["rows"][0]["cells"].values())))
    missing = sorted(k for k in keys if f"`{k}`" not in docs)
    assert not missing, f"fields missing from {DOCS.name}: {missing}"


# -- Markdown ------------------------------------------------------------------------------------------


def test_markdown_summary_and_failures(run: Run) -> None:
    md = render("markdown", run)
    assert md.startswith("## gradspec: invalid input")
    assert "| engine | pass | fail | imprecise | convention | skip | xfail | error | total |" in md
    broken = run.results[1].engine
    c = run.counts(engine=broken)
    assert f"| `{broken}` | {c[Verdict.PASS]} | **{c[Verdict.FAIL]}** |" in md
    failed = _find(run, Verdict.FAIL, broken)
    q = next(q for q in failed.quantities if q.verdict is Verdict.FAIL)
    assert f"`{failed.case_id}` at `{failed.path}:{failed.line}`" in md
    row = f"| `d/d{q.name}` | **fail** | {q.engine:.10g} | {q.exact:.10g} | {q.numerical:.10g} |"
    assert row in md
    assert q.symbolic in md
    assert "unknown key 'exprr'" in md


def _outside_code_spans(md: str) -> str:
    return re.sub(r"(`+)(.+?)\1", "", md)


def test_markdown_puts_user_text_in_code_spans(run: Run) -> None:
    md = render("md", run)
    assert f"`engine raised RuntimeError: {SCRIPT_TEXT}`" in md
    assert md.count("<script>") == 3  # the failure, its culprit (exp forward) and its matrix cell, each in a code span
    assert "<script>" not in _outside_code_spans(md)


def test_markdown_is_bounded() -> None:
    base = gradspec.check("tanh(x)", {"x": 0.5}, engine=BrokenTanh)
    results = tuple(dataclasses.replace(base, case_id=f"c{i}", line=i) for i in range(MAX_FAILURES + 7))
    md = render("markdown", Run(results, (base.engine,), ()))
    assert md.startswith(f"## gradspec: {MAX_FAILURES + 7} failed")
    assert f"#### {MAX_FAILURES}. FAIL" in md and f"#### {MAX_FAILURES + 1}." not in md
    assert "... and 7 more failures" in md


def test_markdown_when_everything_passed() -> None:
    result = gradspec.check("x*y", {"x": 2, "y": 3})
    md = render("markdown", Run((result,), ("builtin",), ()))
    assert md.startswith("## gradspec: all checks passed (1 checks)") and "No failures." in md


# -- HTML ----------------------------------------------------------------------------------------------


def test_html_is_self_contained(run: Run) -> None:
    page = render("html", run)
    assert page.startswith("<!DOCTYPE html>")
    urls = re.findall(r"https?://[^\s\"'<>]*", page)
    assert all(u.startswith("http://www.w3.org/") for u in urls), urls
    assert not re.search(r"<(link|img|iframe)\b", page) and "src=" not in page
    assert "Content-Security-Policy" in page


def test_html_has_the_table_plots_and_derivatives(run: Run) -> None:
    page = render("html", run)
    assert page.count('<tr class="check-row"') == len(run.results)
    assert page.count("<svg") == len(run.engines) + 1  # one histogram per engine, one step-size plot
    assert 'id="checks-table" class="sortable"' in page
    for header in ("verdict", "case", "file:line", "engine", "point", "worst rel err", "message"):
        assert f">{header}</th>" in page
    assert "1 - tanh(x)**2" in page and '<details id="expr-1">' in page
    assert "a.gradspec.yaml:10" in page and "b.gradspec.yaml" in page


def test_html_escapes_user_text(run: Run) -> None:
    page = render("html", run)
    assert SCRIPT_TEXT not in page
    assert "&lt;script&gt;alert(&#39;gradspec&#39;)&lt;/script&gt;" in page  # MarkupSafe writes ' as &#39;
    assert page.count("<script>") == 1  # the page's own


def test_html_of_an_empty_run() -> None:
    page = render("html", Run((), ("builtin",), ()))
    assert page.count('<tr class="check-row"') == 0 and "every check passed" in page


# -- conformance matrix --------------------------------------------------------------------------------


class Broken(Value):
    """tanh' = 1 - t, relu'(0) = 1 (another valid subgradient), and exp raises with markup in its message."""

    __slots__ = ()

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return self._unary(t, "tanh", lambda: 1.0 - t)

    def relu(self) -> Value:
        return self._unary(max(self.data, 0.0), "relu", lambda: 1.0 if self.data >= 0 else 0.0)

    def exp(self) -> Value:
        raise RuntimeError(SCRIPT_TEXT)


class _Hidden:
    """A class attribute that is not there: ``hasattr(cls, name)`` is False."""

    def __get__(self, obj: object, owner: type | None = None) -> Callable[[], Value]:
        raise AttributeError("hidden")


class NoTanh(Value):
    """The builtin engine without tanh."""

    __slots__ = ()
    tanh = _Hidden()


MATRIX_CASES = """version: 1
cases:
  - id: mul
    expr: x * y
    sample: {{count: 20, seed: 1, vars: {{x: {{normal: [0, 3]}}, y: {{normal: [0, 3]}}}}}}
  - id: tanh
    expr: tanh(x)
    at: [{{x: 0}}, {{x: 1}}, {{x: -2}}]
  - id: relu-kink
    expr: relu(x)
    at: [{{x: 1}}, {{x: 0}}, {{x: -1}}]
    kink: convention
  - id: exp
    expr: exp(x)
    at: {{x: 1}}
  - id: tanh-known
    expr: tanh(x) * y
    at: {{x: 1, y: 2}}
    xfail: "tanh' is 1 - t"
    engines: ["{broken}"]
"""


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Real results of three engines on one case file, and a point outside log's domain on each."""
    engines = [resolve("builtin"), resolve(Broken), resolve(NoTanh)]
    path = tmp_path_factory.mktemp("matrix") / "m.gradspec.yaml"
    path.write_text(MATRIX_CASES.format(broken=engines[1].name), encoding="utf-8")
    cases = load_file(path)
    results = [r for case in cases.cases for engine in engines for r in run_case(case, engine)]
    results += [_at(gradspec.check("log(x)", {"x": -1}, engine=engine), "log-outside", cases.path, 30)
                for engine in engines]
    return Run(tuple(results), tuple(e.name for e in engines), (cases.path,), (), 2.5, "")


def _names(run: Run) -> tuple[str, str, str]:
    builtin, broken, no_tanh = run.engines
    return builtin, broken, no_tanh


def test_matrix_cells_summarise_each_case_on_each_engine(matrix_run: Run) -> None:
    builtin, broken, no_tanh = _names(matrix_run)
    m = build_matrix(matrix_run)
    assert m.engines == matrix_run.engines
    cells = {row.case: {e: c.summary for e, c in row.cells.items()} for row in m.rows}
    only = f"– case is only for engines: {broken}"
    domain = "⚠ log needs x > 0, got x = -1.0 (in log(x))"
    assert cells == {
        "mul": {builtin: "✓ 20", broken: "✓ 20", no_tanh: "✓ 20"},
        "tanh": {builtin: "✓ 3", broken: "✗ 2/3 d/dx rel 0.43 (✓ 1)", no_tanh: "– engine has no tanh"},
        "relu-kink": {builtin: "✓ 3", broken: "≈ 1/3 relu at 0: 1 (convention 0) (✓ 2)", no_tanh: "✓ 3"},
        "exp": {builtin: "✓ 1", broken: f"✗ engine raised RuntimeError: {SCRIPT_TEXT}", no_tanh: "✓ 1"},
        "tanh-known": {builtin: only, broken: "⊘ tanh' is 1 - t", no_tanh: only},
        "log-outside": {builtin: domain, broken: domain, no_tanh: domain},
    }


def test_matrix_cells_count_every_verdict(matrix_run: Run) -> None:
    _, broken, no_tanh = _names(matrix_run)
    rows = {row.case: row for row in build_matrix(matrix_run).rows}
    tanh = rows["tanh"].cells[broken]
    assert tanh.verdict is Verdict.FAIL and tanh.checks == 3
    assert tanh.counts == {**dict.fromkeys(Verdict, 0), Verdict.PASS: 1, Verdict.FAIL: 2}
    assert rows["tanh"].cells[no_tanh].counts[Verdict.SKIP] == 3
    assert rows["relu-kink"].cells[broken].counts[Verdict.CONVENTION] == 1
    assert rows["tanh-known"].cells[broken].verdict is Verdict.XFAIL
    assert [row.verdict for row in rows.values()] == [Verdict.PASS, Verdict.FAIL, Verdict.CONVENTION, Verdict.FAIL,
                                                     Verdict.XFAIL, Verdict.ERROR]
    assert all(row.file == matrix_run.files[0] for row in rows.values())


def test_matrix_worst_verdict_leads_and_long_details_are_cut() -> None:
    fine = gradspec.check("tanh(x)", {"x": 1})
    results = (_at(fine, "c", "f.yaml", 1), _at(dataclasses.replace(fine, verdict=Verdict.SKIP, message="no"), "c",
                                                 "f.yaml", 2),
               _at(dataclasses.replace(fine, verdict=Verdict.ERROR, message="x" * 500), "c", "f.yaml", 3))
    cell = build_matrix(Run(results, ("builtin",), ("f.yaml",))).rows[0].cells["builtin"]
    assert cell.verdict is Verdict.ERROR and cell.count == "1/3" and cell.others == "– 1, ✓ 1"
    assert cell.detail == "x" * (MAX_DETAIL - 1) + "…"


def test_matrix_names_files_relative_to_their_shared_folder() -> None:
    assert display_names(["/a/cases/x.yaml", "/a/cases/sub/y.yaml"]) == {"/a/cases/x.yaml": "x.yaml",
                                                                         "/a/cases/sub/y.yaml": "sub/y.yaml"}
    assert display_names(["/a/cases/x.yaml"]) == {"/a/cases/x.yaml": "x.yaml"}
    assert display_names(["x.yaml", "", "d/y.yaml"]) == {"x.yaml": "x.yaml", "d/y.yaml": "d/y.yaml"}


def test_json_matrix(matrix_run: Run) -> None:
    data = _strict_loads(render("json", matrix_run))
    assert isinstance(data, dict)
    matrix = data["matrix"]
    assert matrix["engines"] == list(matrix_run.engines)
    assert [row["case"] for row in matrix["rows"]] == ["mul", "tanh", "relu-kink", "exp", "tanh-known", "log-outside"]
    _, broken, _ = _names(matrix_run)
    tanh = matrix["rows"][1]
    assert tanh["file"] == matrix_run.files[0] and list(tanh["cells"]) == list(matrix_run.engines)
    assert tanh["cells"][broken] == {"verdict": "fail", "summary": "✗ 2/3 d/dx rel 0.43 (✓ 1)",
                                     "counts": {"pass": 1, "fail": 2, "imprecise": 0, "convention": 0, "skip": 0, "xfail": 0, "error": 0}}
    total = sum(n for row in matrix["rows"] for cell in row["cells"].values() for n in cell["counts"].values())
    assert total == len(matrix_run.results)


def _matrix_part(md: str) -> str:
    start = md.index(MATRIX_HEADING)
    return md[start:md.index("\n### ", start + 1)]


def test_markdown_matrix(matrix_run: Run) -> None:
    builtin, broken, no_tanh = _names(matrix_run)
    part = _matrix_part(render("markdown", matrix_run))
    assert part.startswith(f"{MATRIX_HEADING} (6 cases x 3 engines)")
    assert "- ✓ pass:" in part and "- ⊘ xfail:" in part
    assert f"| file | case | `{builtin}` | `{broken}` | `{no_tanh}` |" in part
    assert "| `m.gradspec.yaml` | `tanh` | ✓ 3 | ✗ 2/3 `d/dx rel 0.43` (✓ 1) | – `engine has no tanh` |" in part
    assert "| `m.gradspec.yaml` | `relu-kink` | ✓ 3 | ≈ 1/3 `relu at 0: 1 (convention 0)` (✓ 2) | ✓ 3 |" in part
    assert f"✗ `engine raised RuntimeError: {SCRIPT_TEXT}`" in part
    assert "<script>" not in _outside_code_spans(part)
    assert part.count("\n| `m.gradspec.yaml` |") == 6


def test_markdown_matrix_escapes_pipes_and_backticks() -> None:
    fine = gradspec.check("x", {"x": 1})
    odd = _at(dataclasses.replace(fine, engine="b", verdict=Verdict.SKIP, message="a | b `c`"), "odd", "f.yaml", 1)
    md = render("markdown", Run((_at(fine, "odd", "f.yaml", 1), odd), ("builtin", "b"), ("f.yaml",)))
    assert "| `f.yaml` | `odd` | ✓ 1 | – `` a \\| b `c` `` |" in md


def test_html_matrix(matrix_run: Run) -> None:
    page = render("html", matrix_run)
    section = page[page.index('<section id="matrix">'):]
    section = section[:section.index("</section>")]
    assert '<a href="#matrix">Conformance</a>' in page
    assert 'id="matrix-table" class="sortable matrix"' in section
    assert section.count('<tr class="matrix-row"') == 6
    assert 'id="matrix-filter"' in section and 'id="matrix-only-failing"' in section
    assert section.count('<td class="cell fail"') == 2 and section.count('<td class="cell convention"') == 1
    assert section.count('<li><span class="cell') == 7  # the legend: one entry per verdict
    assert '<span class="detail">engine has no tanh</span>' in section
    assert '<span class="count">2/3</span> <span class="detail">d/dx rel 0.43</span>' in section
    assert SCRIPT_TEXT not in page
    assert "engine raised RuntimeError: &lt;script&gt;alert(&#39;gradspec&#39;)&lt;/script&gt;" in section
    assert 'data-verdict="error"' in section and "http" not in section


def test_matrix_size_reads_right_for_one_case() -> None:
    fine = gradspec.check("x", {"x": 1})
    run = Run((_at(fine, "c", "f.yaml", 1), _at(dataclasses.replace(fine, engine="b"), "c", "f.yaml", 1)),
              ("builtin", "b"), ("f.yaml",))
    assert f"{MATRIX_HEADING} (1 case x 2 engines)" in render("markdown", run)
    assert "Conformance matrix (1 case x 2 engines)</h2>" in render("html", run)


def test_single_engine_reports_have_no_matrix() -> None:
    run = Run((_at(gradspec.check("x*y", {"x": 2, "y": 3}), "c", "f.yaml", 1),), ("builtin",), ("f.yaml",))
    assert MATRIX_HEADING not in render("markdown", run)
    page = render("html", run)
    assert 'id="matrix"' not in page and 'href="#matrix"' not in page
    assert to_dict(run)["matrix"]["rows"][0]["cells"]["builtin"]["summary"] == "✓ 1"


# -- plots ---------------------------------------------------------------------------------------------


def test_relative_error_histogram_counts_every_judged_quantity(run: Run) -> None:
    hist = rel_error_bins(run, "builtin")
    judged = [q for r in run.results if r.engine == "builtin" for q in r.quantities
              if q.exact is not None and q.rel_error is not None]
    assert hist.total == len(judged)
    assert hist.zeros == sum(1 for q in judged if q.rel_error == 0)
    assert hist.non_finite == sum(1 for q in judged if q.rel_error is not None and not math.isfinite(q.rel_error))


def test_step_errors_show_truncation_and_skip_what_does_not_parse(run: Run) -> None:
    data = step_errors(run)
    assert data
    expressions = {d.result.expression for d in data}
    assert "z = x; repeat 3: z = tanh(z)" not in expressions and "relu(x)" not in expressions
    # Curved functions first: (x*y + x)**2 is quadratic in x, its central difference exact at any h.
    assert [d.result.expression for d in data[:2]] == ["tanh(x) * exp(y)", "(x*y + x)**2 - tanh(y)"]
    errors = dict(data[0].errors)
    assert set(errors) == set(STEP_EXPONENTS)
    assert errors[-1] > 1e-4  # h = 0.1: truncation error
    assert errors[-5] < 1e-9  # h = 1e-5: close to the exact gradient
    assert errors[-13] > errors[-5]  # h = 1e-13: rounding error


# -- files and formats ---------------------------------------------------------------------------------


def test_write_reports_picks_the_format_from_the_suffix(run: Run, tmp_path: Path) -> None:
    paths = [tmp_path / "r.json", tmp_path / "deep" / "r.MD", tmp_path / "r.markdown", tmp_path / "r.htm"]
    write_reports(paths, run)
    assert _strict_loads(paths[0].read_text(encoding="utf-8"))
    assert paths[1].read_text(encoding="utf-8") == paths[2].read_text(encoding="utf-8") == render("markdown", run)
    assert paths[3].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert format_for("x.HTML") == "html"


@pytest.mark.parametrize("name", ["report.txt", "report", "report.json.gz"])
def test_unknown_suffix_is_an_error_and_writes_nothing(run: Run, tmp_path: Path, name: str) -> None:
    good = tmp_path / "ok.json"
    with pytest.raises(GradspecError, match="report format"):
        write_reports([good, tmp_path / name], run)
    assert not good.exists()
    with pytest.raises(GradspecError):
        check_report_paths([name])


def test_render_unknown_format() -> None:
    with pytest.raises(GradspecError, match="unknown report format"):
        render("pdf", Run((), (), ()))


# -- a real browser ------------------------------------------------------------------------------------


def _browser() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


# Clicks the verdict header once (ascending severity: errors first) after the page's own script ran.
_CLICK = """<script>
document.querySelector('#checks-table th').click();
document.body.setAttribute('data-first-verdict', document.querySelector('#checks-table tbody tr').dataset.verdict);
</script></body>"""


def _dump_dom(browser: str, page: Path, profile: Path) -> str:
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
            "--dump-dom", page.as_uri()]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_html_renders_in_a_headless_browser(run: Run, tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium or google-chrome found (apt-get install -y chromium)")
    page = tmp_path / "report.html"
    html = render("html", run)
    page.write_text(html, encoding="utf-8")
    dom = _dump_dom(browser, page, tmp_path / "profile")
    assert 'data-sortable="ready"' in dom
    assert dom.count('class="check-row"') == len(run.results)
    assert "<svg" in dom and SCRIPT_TEXT not in dom
    clicked = tmp_path / "clicked.html"
    clicked.write_text(html[: html.rindex("</body>")] + _CLICK + "</html>\n", encoding="utf-8")
    dom = _dump_dom(browser, clicked, tmp_path / "profile2")
    assert 'aria-sort="ascending"' in dom
    assert 'data-first-verdict="error"' in dom


# Sorts the matrix by its second engine (worst first), then filters it twice, after the page's own script ran.
_MATRIX_CLICK = """<script>
var t = document.getElementById('matrix-table');
t.tHead.rows[0].cells[3].click();
document.body.setAttribute('data-first-case', t.tBodies[0].rows[0].cells[1].textContent);
document.body.setAttribute('data-second-case', t.tBodies[0].rows[1].cells[1].textContent);
var f = document.getElementById('matrix-filter');
f.value = 'engine has no';
f.dispatchEvent(new Event('input'));
document.body.setAttribute('data-by-text', document.getElementById('matrix-shown').textContent);
f.value = '';
f.dispatchEvent(new Event('input'));
var only = document.getElementById('matrix-only-failing');
only.checked = true;
only.dispatchEvent(new Event('change'));
document.body.setAttribute('data-failing', document.getElementById('matrix-shown').textContent);
</script></body>"""


def test_html_matrix_sorts_and_filters_in_a_headless_browser(matrix_run: Run, tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium or google-chrome found (apt-get install -y chromium)")
    html = render("html", matrix_run)
    page = tmp_path / "matrix.html"
    page.write_text(html[: html.rindex("</body>")] + _MATRIX_CLICK + "</html>\n", encoding="utf-8")
    dom = _dump_dom(browser, page, tmp_path / "profile")
    assert dom.count('data-sortable="ready"') == 2  # the matrix and the table of every check
    assert 'data-first-case="log-outside"' in dom  # error first, then the larger share of failures
    assert 'data-second-case="exp"' in dom  # 1 of 1 failed, before tanh's 2 of 3
    assert 'data-by-text="1"' in dom
    assert 'data-failing="3"' in dom  # tanh and exp failed on an engine, log-outside is an error


def test_a_failing_record_names_its_culprit(tmp_path: Path, engines: ModuleType) -> None:
    from gradspec.casefile.loader import load_file
    from gradspec.engines.resolve import resolve
    from gradspec.run.runner import run_case

    path = tmp_path / "c.gradspec.yaml"
    path.write_text("cases:\n  - id: t\n    expr: a = x*y; tanh(a) + x\n    at: {x: 0.5, y: 2}\n")
    (case,) = load_file(path).cases
    (result,) = run_case(case, resolve(engines.TanhSignFlip))
    run = Run((result,), (result.engine,), (str(path),), (), 0.1, "test")
    record = json.loads(render("json", run))["checks"][0]
    assert record["verdict"] == "fail"
    assert record["culprit"]["op"] == "tanh" and record["culprit"]["kind"] == "rule"
    assert record["shrunk"].startswith("- id: t-shrunk")
    assert "culprit (`tanh`)" in render("markdown", run)
    assert "culprit <code>tanh</code>" in render("html", run)


HOSTILE = '<script>alert("x")</script>'
ATTRIBUTE = '" onmouseover="alert(1)'


def test_html_escapes_hostile_text_everywhere() -> None:
    """Every field a case file or an engine controls, with markup in it: none of it becomes markup."""
    q = Quantity(f"x{HOSTILE}", "input", 1.0, 2.0, 2.0, 1.0, 0.5, 1e-7, Verdict.FAIL, exact_text=ATTRIBUTE,
                 symbolic=f"2*x{HOSTILE}", note=HOSTILE)
    culprit = Culprit("mul", "rule", HOSTILE, message=f"mul at `{HOSTILE}`")
    bad = CheckResult(f"x * {HOSTILE} {ATTRIBUTE}", {"x": 1.0}, f"engine{HOSTILE}", Verdict.FAIL, (q,),
                      message=HOSTILE, kinks=(HOSTILE,), case_id=f"id{HOSTILE}{ATTRIBUTE}",
                      path=f"{HOSTILE}.gradspec.yaml", line=3, culprit=culprit, shrunk=f"- id: {HOSTILE}")
    other = dataclasses.replace(bad, engine="builtin", verdict=Verdict.PASS, culprit=None, shrunk="")
    run = Run((bad, other), (bad.engine, "builtin"), (bad.path,), (f"{HOSTILE}:1:1: {ATTRIBUTE}",), 0.5, HOSTILE)
    page = render("html", run)
    assert 'id="matrix"' in page and 'id="failures"' in page and 'id="derivatives"' in page  # every section
    assert page.count("<script") == 1 and page.count("</script>") == 1  # the page's own, and nothing else
    assert 'onmouseover="' not in page  # no attribute was closed early
    assert page.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 15
    assert page.count("&#34; onmouseover=&#34;alert(1)") >= 4  # case id, expression (and its title), tooltip


def _imprecise_run(strict: bool = False) -> Run:
    from tests.test_precision import Rebuilt

    result = _at(gradspec.check("sigmoid(x)", {"x": 40.0}, engine=Rebuilt), "sigmoid-tail", "t.gradspec.yaml", 3)
    assert result.verdict is Verdict.IMPRECISE
    fine = _at(gradspec.check("x*y", {"x": 2, "y": 3}), "c", "t.gradspec.yaml", 1)
    return Run((fine, result), (result.engine,), ("t.gradspec.yaml",), strict=strict)


def test_imprecise_is_counted_in_every_report_and_never_all_checks_passed() -> None:
    from gradspec.report.terminal import summary

    run = _imprecise_run()
    assert run.exit_code == 0 and _imprecise_run(strict=True).exit_code == 1
    text = summary(run)
    assert "NO FAILURES, SOME IMPRECISE" in text and "1 imprecise" in text and "OK:" not in text
    assert "t.gradspec.yaml:3: sigmoid-tail on tests.test_precision:Rebuilt: d/dx imprecise: engine 0, exact 4.25e-18: 0 of 16 digits" in text
    data = json.loads(render("json", run))
    assert data["summary"]["totals"]["imprecise"] == 1 and data["summary"]["strict"] is False
    md = render("markdown", run)
    assert "no failures, 1 imprecise" in md and "all checks passed" not in md
    page = render("html", run)
    assert "no failures, 1 imprecise" in page and "all checks passed" not in page
