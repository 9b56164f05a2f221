"""Reports: JSON, Markdown and HTML rendered from real check results, and the HTML opened in a browser."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import gradspec
from gradspec._report import check_report_paths, format_for, render, write_reports
from gradspec._report._json import to_dict
from gradspec._report._markdown import MAX_FAILURES
from gradspec._report._plots import STEP_EXPONENTS, rel_error_bins, step_errors
from gradspec._results import CheckResult, Quantity, Run, Verdict
from gradspec.engine import Value
from gradspec.errors import GradspecError

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
    expressions = [("(x*y + x)**2 - tanh(y)", {"x": 2, "y": 3}), ("tanh(x) * exp(y)", {"x": 0.5, "y": -1}),
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


TOP_KEYS = ["gradspec", "format", "summary", "engines", "files", "errors", "checks"]
CHECK_KEYS = ["case", "file", "line", "kind", "engine", "point", "expression", "verdict", "message", "kinks", "quantities"]
QUANTITY_KEYS = ["name", "role", "engine", "exact", "exact_text", "numerical", "abs_error", "rel_error", "tolerance",
                 "verdict", "symbolic", "note"]


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
    missing = sorted(k for k in keys if f"`{k}`" not in docs)
    assert not missing, f"fields missing from {DOCS.name}: {missing}"


# -- Markdown ------------------------------------------------------------------------------------------


def test_markdown_summary_and_failures(run: Run) -> None:
    md = render("markdown", run)
    assert md.startswith("## gradspec: invalid input")
    assert "| engine | pass | fail | convention | skip | xfail | error | total |" in md
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


def test_markdown_puts_user_text_in_code_spans(run: Run) -> None:
    md = render("md", run)
    assert f"`engine raised RuntimeError: {SCRIPT_TEXT}`" in md
    assert md.count("<script>") == 1  # only inside that code span


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
    assert "&lt;script&gt;alert(&#x27;gradspec&#x27;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the page's own


def test_html_of_an_empty_run() -> None:
    page = render("html", Run((), ("builtin",), ()))
    assert page.count('<tr class="check-row"') == 0 and "every check passed" in page


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
