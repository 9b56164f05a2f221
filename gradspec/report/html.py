"""The HTML report: one self-contained page that opens offline.

Summary per engine and per case file, the conformance matrix (cases x engines, when there are several
engines), plots of the relative errors and of the numerical reference's error against step size (inline
SVG drawn in Python), the failures with their numbers, a sortable and filterable table of every check,
and the symbolic derivatives per expression. Styles and the small script are inline; a
Content-Security-Policy forbids the page from loading anything. Every text a user wrote is escaped.
"""

from __future__ import annotations

from gradspec.checks.results import CheckResult, Quantity, Run, Verdict
from gradspec.report.assets import CSP, SCRIPT, STYLE
from gradspec.report.common import (
    NOT_PASSING,
    VERDICTS,
    clip,
    e,
    engines_of,
    files_of,
    fmt,
    location,
    not_passing,
    point_text,
    quantity_label,
    severity,
    version_of,
    worst_rel_error,
)
from gradspec.report.html_matrix import matrix_section
from gradspec.report.matrix import shows_matrix
from gradspec.report.plots import error_histograms, step_colour, step_errors, step_plot

__all__ = ["MAX_DERIVATIVES", "MAX_FAILURES", "render_html"]

MAX_FAILURES = 200  # failures shown in full; all of them are still rows of the table
OPEN_FAILURES = 10  # the first few are expanded
MAX_DERIVATIVES = 300  # expressions whose derivatives are listed
MAX_SYMBOLIC = 5000  # characters of one derivative
MAX_MESSAGE = 300  # characters of a message in the table (the tooltip holds more)


def badge(verdict: Verdict, text: str | None = None) -> str:
    return f'<span class="badge {verdict.value}">{e(text or verdict.value)}</span>'


# -- summary ------------------------------------------------------------------------------------------


def _stack(counts: dict[Verdict, int]) -> str:
    total = sum(counts.values()) or 1
    parts = "".join(f'<span class="{v.value}" style="width:{100 * counts[v] / total:.2f}%" '
                    f'title="{counts[v]} {v.value}"></span>' for v in VERDICTS if counts[v])
    return f'<div class="stack">{parts}</div>'


def _count_cells(counts: dict[Verdict, int]) -> str:
    cells = []
    for v in VERDICTS:
        cls = "num zero" if not counts[v] else ("num hot" if v in NOT_PASSING else "num")
        cells.append(f'<td class="{cls}">{counts[v]}</td>')
    return "".join(cells) + f'<td class="num">{sum(counts.values())}</td><td>{_stack(counts)}</td>'


def counts_table(first: str, rows: list[tuple[str, dict[Verdict, int]]]) -> str:
    """A table of verdict counts, one row per engine or file, with a proportional bar."""
    head = "".join(f'<th class="num">{v.value}</th>' for v in VERDICTS)
    body = "".join(f"<tr><td><code>{e(label)}</code></td>{_count_cells(c)}</tr>" for label, c in rows)
    return (f'<div class="wrap"><table><thead><tr><th>{e(first)}</th>{head}<th class="num">total</th><th></th>'
            f"</tr></thead><tbody>{body}</tbody></table></div>")


def summary_section(run: Run) -> str:
    """Counts per engine and per case file, then the invalid input."""
    parts = ['<section id="summary"><h2>Summary</h2>', "<h3>Per engine</h3>",
             counts_table("engine", [(x, run.counts(engine=x)) for x in engines_of(run)])]
    files = files_of(run)
    if files:
        parts += ["<h3>Per case file</h3>", counts_table("file", [(f, run.counts(path=f)) for f in files])]
    if run.errors:
        items = "".join(f"<li>{e(clip(x, 1000))}</li>" for x in run.errors)
        parts.append(f'<h3>Invalid input ({len(run.errors)})</h3><ul class="errors">{items}</ul>')
    return "".join(parts) + "</section>"


# -- plots --------------------------------------------------------------------------------------------


def errors_plot_section(run: Run) -> str:
    charts = error_histograms(run)
    if not charts:
        return ""
    caption = ("Each quantity judged against an exact reference, by decade of its relative error "
               "|engine - exact| / max(|engine|, |exact|, 1e-8). The first bar counts exact agreement, the last "
               "nan or infinite errors. Hover a bar for its count.")
    return (f'<section id="rel-errors"><h2>Relative errors</h2><p class="caption">{e(caption)}</p>'
            f'<div class="charts">{"".join(charts)}</div></section>')


def steps_section(run: Run) -> str:
    data = step_errors(run)
    if not data:
        return ""
    legend = "".join(f'<li><span class="swatch" style="background:{step_colour(i)}"></span>{e(d.label)}</li>'
                     for i, d in enumerate(data))
    caption = ("The central difference (f(x+h) - f(x-h)) / 2h of the float64 forward pass against the exact "
               "gradient, for the first few gradient checks. Large h: truncation error, falling as h squared. "
               "Small h: rounding error, growing as 1/h. No single h is right everywhere, which is why gradspec "
               "judges against the exact value and keeps the difference as a witness. Errors of exactly 0 are "
               "drawn at 1e-18.")
    return (f'<section id="step-size"><h2>Error against step size</h2><p class="caption">{e(caption)}</p>'
            f'<div class="wide-chart">{step_plot(data)}</div><ul class="legend">{legend}</ul></section>')


# -- failures -----------------------------------------------------------------------------------------


def quantity_table(quantities: tuple[Quantity, ...]) -> str:
    """Every compared number of one check; the exact value's 30 digits are the tooltip."""
    head = ('<tr><th>quantity</th><th>verdict</th><th class="num">engine</th><th class="num">exact</th>'
            '<th class="num">numerical</th><th class="num">abs err</th><th class="num">rel err</th><th class="num">tol</th>'
            "<th>note</th></tr>")
    rows = []
    for q in quantities:
        exact = f'<td class="num" title="{e(q.exact_text)}">{fmt(q.exact)}</td>'
        rows.append(f"<tr><td><code>{e(quantity_label(q))}</code></td><td>{badge(q.verdict)}</td>"
                    f'<td class="num">{fmt(q.engine)}</td>{exact}<td class="num">{fmt(q.numerical)}</td>'
                    f'<td class="num">{fmt(q.abs_error, 3)}</td><td class="num">{fmt(q.rel_error, 3)}</td>'
                    f'<td class="num">{fmt(q.tolerance, 3)}</td><td>{e(q.note)}</td></tr>')
    return f'<div class="wrap"><table><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>'


def _symbolic(quantities: tuple[Quantity, ...], only_failing: bool) -> str:
    shown = [q for q in quantities if q.symbolic and (not only_failing or q.verdict is not Verdict.PASS)]
    text = "\n".join(f"{quantity_label(q)} = {clip(q.symbolic, MAX_SYMBOLIC)}" for q in shown)
    return f"<pre>{e(text)}</pre>" if text else ""


def failure_details(result: CheckResult, index: int) -> str:
    """One failed check, expandable: its expression, point, message, numbers and derivatives."""
    where = location(result)
    summary = (f"{badge(result.verdict)} <code>{e(result.case_id or clip(result.expression, 60))}</code>"
               + (f' <span class="muted">{e(where)}</span>' if where else "")
               + f' on <code>{e(result.engine)}</code> <span class="muted">at {e(point_text(result.point, 6))}</span>')
    body = [f"<pre>{e(result.expression)}</pre>"]
    if result.point:
        body.append(f'<div>point: <span class="mono">{e(point_text(result.point))}</span></div>')
    if result.message:
        body.append(f"<div>message: {e(result.message)}</div>")
    if result.kinks:
        body.append(f"<div>at a kink: {e(', '.join(result.kinks))}</div>")
    if result.culprit is not None:
        body.append(f'<div>culprit <code>{e(result.culprit.op)}</code>: {e(result.culprit.message)}</div>')
    if result.quantities:
        body.append(quantity_table(result.quantities))
    if result.shrunk:
        body.append(f"<div>smallest failing case:</div><pre>{e(result.shrunk)}</pre>")
    symbolic = _symbolic(result.quantities, only_failing=True)
    if symbolic:
        body.append(f"<div>symbolic derivative:</div>{symbolic}")
    opened = " open" if index < OPEN_FAILURES else ""
    return f'<details class="failure"{opened}><summary>{summary}</summary><div class="body">{"".join(body)}</div></details>'


def failures_section(run: Run) -> str:
    failed = not_passing(run)
    if not failed:
        return '<section id="failures"><h2>Failures</h2><p class="muted">None: every check passed or was skipped.</p></section>'
    items = "".join(failure_details(r, i) for i, r in enumerate(failed[:MAX_FAILURES]))
    more = (f'<p class="muted">... and {len(failed) - MAX_FAILURES} more; filter the table below to see them.</p>'
            if len(failed) > MAX_FAILURES else "")
    return f'<section id="failures"><h2>Failures ({len(failed)})</h2>{items}{more}</section>'


# -- every check ----------------------------------------------------------------------------------------


def _anchors(run: Run) -> dict[str, str]:
    """An anchor id per expression that has symbolic derivatives, at most ``MAX_DERIVATIVES``."""
    out: dict[str, str] = {}
    for r in run.results:
        if r.expression not in out and len(out) < MAX_DERIVATIVES and any(q.symbolic for q in r.quantities):
            out[r.expression] = f"expr-{len(out) + 1}"
    return out


_COLUMNS = (("verdict", "number"), ("case", "text"), ("file:line", "text"), ("engine", "text"), ("point", "text"),
            ("worst rel err", "number"), ("message", "text"))


def check_row(r: CheckResult, anchor: str | None) -> str:
    """One row of the table of every check."""
    worst = worst_rel_error(r)
    sort_worst = "" if worst is None else ("Infinity" if worst == float("inf") else repr(worst))
    case = e(r.case_id or clip(r.expression, 50))
    case = f'<a href="#{anchor}">{case}</a>' if anchor else case
    message = r.message or "; ".join(q.note for q in r.quantities if q.note and q.verdict is not Verdict.PASS)
    cells = [f'<td data-sort="{severity(r.verdict)}">{badge(r.verdict)}</td>',
             f'<td title="{e(clip(r.expression, 500))}">{case}</td>',
             f"<td>{e(location(r))}</td>",
             f"<td><code>{e(r.engine)}</code></td>",
             f'<td class="mono">{e(point_text(r.point, 6))}</td>',
             f'<td class="num" data-sort="{sort_worst}">{fmt(worst, 3)}</td>',
             f'<td class="msg" title="{e(clip(message, 1000))}">{e(clip(message, MAX_MESSAGE))}</td>']
    return f'<tr class="check-row" data-verdict="{r.verdict.value}">{"".join(cells)}</tr>'


def checks_section(run: Run, anchors: dict[str, str]) -> str:
    """The sortable, filterable table of every check."""
    head = "".join(f'<th scope="col" data-type="{kind}" class="{"num" if kind == "number" else "text"}">{e(name)}</th>'
                   for name, kind in _COLUMNS)
    rows = "".join(check_row(r, anchors.get(r.expression)) for r in run.results)
    n = len(run.results)
    controls = ('<div class="controls"><input type="search" id="filter" placeholder="filter: case, file, engine, '
                'message..." aria-label="filter the checks"><label><input type="checkbox" id="only-failing"> '
                f'only failures and errors</label><span class="muted"><span id="shown">{n}</span> of {n} shown; '
                "click a header to sort</span></div>")
    return (f'<section id="checks"><h2>All checks ({n})</h2>{controls}<div class="wrap">'
            f'<table id="checks-table" class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
            "</table></div></section>")


def derivatives_section(run: Run, anchors: dict[str, str]) -> str:
    """The value and every derivative SymPy found, once per expression."""
    if not anchors:
        return ""
    first: dict[str, CheckResult] = {}
    cases: dict[str, list[str]] = {}
    for r in run.results:
        if r.expression in anchors:
            if any(q.symbolic for q in r.quantities):
                first.setdefault(r.expression, r)
            ids = cases.setdefault(r.expression, [])
            if r.case_id and r.case_id not in ids:
                ids.append(r.case_id)
    items = []
    for expression, anchor in anchors.items():
        label = f' <span class="muted">{e(", ".join(cases[expression][:5]))}</span>' if cases[expression] else ""
        items.append(f'<details id="{anchor}"><summary><code>{e(clip(expression, 200))}</code>{label}</summary>'
                     f'<div class="body">{_symbolic(first[expression].quantities, only_failing=False)}</div></details>')
    total = len({r.expression for r in run.results if any(q.symbolic for q in r.quantities)})
    more = f'<p class="muted">... and {total - len(anchors)} more expressions.</p>' if total > len(anchors) else ""
    return f'<section id="derivatives"><h2>Symbolic derivatives</h2>{"".join(items)}{more}</section>'


# -- the page -------------------------------------------------------------------------------------------


def header(run: Run) -> str:
    totals = run.counts()
    ok = run.exit_code == 0
    status = {0: "all checks passed", 1: "checks failed", 2: "invalid input"}[run.exit_code]
    meta = (f"gradspec {version_of(run)} · {len(run.results)} checks · {len(engines_of(run))} engine(s) · "
            f"{len(run.files)} case file(s) · {run.seconds:.2f} s · exit code {run.exit_code}")
    badges = "".join(badge(v, f"{totals[v]} {v.value}") for v in VERDICTS if totals[v])
    links = [("summary", "Summary"), ("matrix", "Conformance"), ("rel-errors", "Relative errors"),
             ("step-size", "Step size"), ("failures", "Failures"), ("checks", "All checks"), ("derivatives", "Derivatives")]
    if not shows_matrix(run):
        links.pop(1)
    nav = "".join(f'<a href="#{i}">{t}</a>' for i, t in links)
    return (f'<header><h1>gradspec report: <span class="status {"ok" if ok else "bad"}">{e(status)}</span></h1>'
            f'<div class="meta">{e(meta)}</div><div class="totals">{badges}</div><nav>{nav}</nav></header>')


def render_html(run: Run) -> str:
    """The whole page as one string."""
    anchors = _anchors(run)
    sections = [summary_section(run), matrix_section(run), errors_plot_section(run), steps_section(run),
                failures_section(run), checks_section(run, anchors), derivatives_section(run, anchors)]
    title = f"gradspec report: {len(run.results)} checks, exit code {run.exit_code}"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{e(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        header(run),
        "<main>", *sections, "</main>",
        f"<footer>Generated by gradspec {e(version_of(run))}. This page loads nothing from the network.</footer>",
        f"<script>{SCRIPT}</script>",
        "</body></html>",
        "",
    ])
