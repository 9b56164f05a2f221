"""The HTML report: one self-contained page that opens offline.

Summary per engine and per case file, the conformance matrix (cases x engines, when there are several
engines), plots of the relative errors and of the numerical reference's error against step size (inline
SVG drawn in Python), the failures with their numbers, a sortable and filterable table of every check,
and the symbolic derivatives per expression; a failing tensor check shows a heat map of each 2-D failing
quantity's per-element error, drawn from what the check carried (nothing is re-run here). Styles and the small script are inline; a
Content-Security-Policy forbids the page from loading anything.

The page is a Jinja2 template (``templates/``) with autoescape on: every text a user wrote (case ids,
expressions, messages, file names) is escaped unless marked otherwise, and only the page's own style,
script and SVG charts are marked safe here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from gradspec.report.assets import CSP, SCRIPT, STYLE
from gradspec.report.common import (
    NOT_PASSING,
    VERDICTS,
    clip,
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
from gradspec.report.html_matrix import matrix_view
from gradspec.report.matrix import shows_matrix
from gradspec.report.plots import MAX_HEAT_MAPS, error_histograms, heat_maps, step_colour, step_errors, step_plot
from gradspec.results import CheckResult, Quantity, Run, Verdict

__all__ = ["MAX_DERIVATIVES", "MAX_FAILURES", "render_html"]

MAX_FAILURES = 200  # failures shown in full; all of them are still rows of the table
MAX_MAPPED = 20  # failures whose heat maps are drawn: a map has up to 4,096 cells
OPEN_FAILURES = 10  # the first few are expanded
MAX_DERIVATIVES = 300  # expressions whose derivatives are listed
MAX_SYMBOLIC = 5000  # characters of one derivative
MAX_MESSAGE = 300  # characters of a message in the table (the tooltip holds more)

_COLUMNS = (("verdict", "number"), ("case", "text"), ("file:line", "text"), ("engine", "text"), ("point", "text"),
            ("worst rel err", "number"), ("message", "text"))


def _symbolic_text(quantities: tuple[Quantity, ...], only_failing: bool) -> str:
    shown = [q for q in quantities if q.symbolic and (not only_failing or q.verdict is not Verdict.PASS)]
    return "\n".join(f"{quantity_label(q)} = {clip(q.symbolic, MAX_SYMBOLIC)}" for q in shown)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("gradspec.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters.update(clip=clip, fmt=fmt, location=location, point_text=point_text, quantity_label=quantity_label,
                       severity=severity, symbolic_text=_symbolic_text)
    env.globals.update(verdicts=VERDICTS, not_passing=NOT_PASSING, open_failures=OPEN_FAILURES,
                       max_message=MAX_MESSAGE, max_symbolic=MAX_SYMBOLIC)
    return env


def _anchors(run: Run) -> dict[str, str]:
    """An anchor id per expression that has symbolic derivatives, at most ``MAX_DERIVATIVES``."""
    out: dict[str, str] = {}
    for r in run.results:
        if r.expression not in out and len(out) < MAX_DERIVATIVES and any(q.symbolic for q in r.quantities):
            out[r.expression] = f"expr-{len(out) + 1}"
    return out


def _row(r: CheckResult, anchor: str | None) -> dict[str, Any]:
    """One row of the table of every check."""
    worst = worst_rel_error(r)
    sort_worst = "" if worst is None else ("Infinity" if worst == float("inf") else repr(worst))
    message = r.message or "; ".join(q.note for q in r.quantities if q.note and q.verdict is not Verdict.PASS)
    return {"result": r, "anchor": anchor, "worst": worst, "sort_worst": sort_worst, "message": message}


def _derivatives(run: Run, anchors: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    """The value and every derivative SymPy found, once per expression; and how many more were left out."""
    first: dict[str, CheckResult] = {}
    cases: dict[str, list[str]] = {}
    for r in run.results:
        if r.expression in anchors:
            if any(q.symbolic for q in r.quantities):
                first.setdefault(r.expression, r)
            ids = cases.setdefault(r.expression, [])
            if r.case_id and r.case_id not in ids:
                ids.append(r.case_id)
    items = [{"anchor": anchor, "expression": expression, "cases": cases[expression],
              "quantities": first[expression].quantities} for expression, anchor in anchors.items()]
    total = len({r.expression for r in run.results if any(q.symbolic for q in r.quantities)})
    return items, total - len(anchors)


def _heat_maps(failures: list[CheckResult]) -> list[tuple[list[Markup], int]]:
    """Per failure shown: its heat maps (SVG drawn by svg.py, which escapes its labels) and how many more
    it has; the failures after the first ``MAX_MAPPED`` get none drawn, only counted."""
    out = []
    for i, r in enumerate(failures[:MAX_FAILURES]):
        maps, more = heat_maps(r, limit=MAX_HEAT_MAPS if i < MAX_MAPPED else 0)
        out.append(([Markup(m) for m in maps], more))
    return out


def render_html(run: Run) -> str:
    """The whole page as one string."""
    anchors = _anchors(run)
    derivatives, more = _derivatives(run, anchors)
    imprecise = run.counts()[Verdict.IMPRECISE]
    clean = "all checks passed" if run.complete else "no failures, some skipped"
    if imprecise:
        clean = f"no failures, {imprecise} imprecise" + ("" if run.complete else ", some skipped")
    status = {0: clean, 1: "checks failed", 2: "invalid input"}[run.exit_code]
    links = [("summary", "Summary"), ("matrix", "Conformance"), ("rel-errors", "Relative errors"),
             ("step-size", "Step size"), ("failures", "Failures"), ("checks", "All checks"), ("derivatives", "Derivatives")]
    if not shows_matrix(run):
        links.pop(1)
    steps = step_errors(run)
    failures = not_passing(run)
    return _environment().get_template("report.html").render(
        run=run,
        csp=Markup(CSP),
        style=Markup(STYLE),
        script=Markup(SCRIPT),
        title=f"gradspec report: {len(run.results)} checks, exit code {run.exit_code}",
        status=status,
        skipped=[(what, reasons) for what, reasons in (("Skipped checks", run.skips()),
                                                        ("Modes asked for but not computed", run.mode_skips()))
                 if reasons],
        meta=(f"gradspec {version_of(run)} · {len(run.results)} checks · {len(engines_of(run))} engine(s) · "
              f"{len(run.files)} case file(s) · {run.seconds:.2f} s · exit code {run.exit_code}"),
        totals=run.counts(),
        links=links,
        engine_counts=[(x, run.counts(engine=x)) for x in engines_of(run)],
        file_counts=[(f, run.counts(path=f)) for f in files_of(run)],
        matrix=matrix_view(run),
        charts=[Markup(chart) for chart in error_histograms(run)],  # SVG drawn by svg.py, which escapes its labels
        steps=[(d.label, step_colour(i)) for i, d in enumerate(steps)],
        step_plot=Markup(step_plot(steps)) if steps else "",
        failures=failures,
        heat_maps=_heat_maps(failures),
        max_failures=MAX_FAILURES,
        columns=_COLUMNS,
        rows=[_row(r, anchors.get(r.expression)) for r in run.results],
        derivatives=derivatives,
        more_derivatives=more,
        version=version_of(run),
    )
