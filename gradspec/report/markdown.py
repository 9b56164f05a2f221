"""The Markdown report: a summary for a CI job page (GitHub's ``$GITHUB_STEP_SUMMARY`` and the like).

A table of verdicts per engine, the conformance matrix (cases x engines) when there are several engines,
the invalid input, then each failure with its numbers and the symbolic derivative. It stays bounded: the first ``MAX_FAILURES`` failures, then a line saying how many more.
Everything a user wrote (expressions, case ids, messages) goes in code spans, where Markdown and HTML
mean nothing.
"""

from __future__ import annotations

import re

from gradspec.report.common import (
    NOT_PASSING,
    VERDICTS,
    clip,
    engines_of,
    fmt,
    location,
    not_passing,
    point_text,
    quantity_label,
    version_of,
)
from gradspec.report.matrix import LEGEND, SYMBOLS, Cell, build_matrix, display_names, shows_matrix
from gradspec.results import CheckResult, Quantity, Run, Verdict

__all__ = ["MATRIX_HEADING", "MAX_ERRORS", "MAX_FAILURES", "MAX_QUANTITIES", "matrix_section", "render_markdown",
           "skips_section"]

MAX_FAILURES = 50
MAX_ERRORS = 50
MAX_QUANTITIES = 12  # rows per failure; beyond that only the quantities that did not pass
MAX_SYMBOLIC = 1500  # characters of one symbolic derivative
MAX_TEXT = 500  # characters of an expression or message
MATRIX_HEADING = "### Conformance matrix"


def code(text: str, *, in_table: bool = False) -> str:
    """``text`` as an inline code span, whatever backticks, newlines or pipes it holds."""
    text = " ".join(text.split("\n")) or " "
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    return span.replace("|", "\\|") if in_table else span


def _block(text: str) -> str:
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}text\n{text}\n{fence}"


def _title(run: Run) -> str:
    totals = run.counts()
    failed, errors = totals[Verdict.FAIL], totals[Verdict.ERROR]
    skipped, idle = totals[Verdict.SKIP], run.idle_engines()
    if run.errors or errors:
        head = "invalid input"
    elif failed:
        head = f"{failed} failed"
    elif idle:
        head = f"{', '.join(idle)} compared nothing"
    elif totals[Verdict.IMPRECISE] or skipped or not run.complete:
        modes = sum(n for _, n in run.mode_skips())
        imprecise = totals[Verdict.IMPRECISE]
        head = ", ".join(filter(None, ["no failures", f"{imprecise:,} imprecise" if imprecise else "",
                                       f"{skipped:,} skipped" if skipped else "",
                                       f"{modes:,} modes not computed" if modes else ""]))
    else:
        head = "all checks passed"
    return f"## gradspec: {head} ({len(run.results)} checks)"


def skips_section(run: Run) -> list[str]:
    """Skipped checks counted by reason, and the engines that compared nothing."""
    lines = []
    for what, reasons in (("skipped", run.skips()), ("modes asked for but not computed", run.mode_skips())):
        if reasons:
            total = sum(n for _, n in reasons)
            lines += [f"{total:,} {what}: " + ", ".join(f"{code(reason)} ({n:,})" for reason, n in reasons), ""]
    lines += [f"**Engine {code(e)} compared nothing**: every one of its checks was skipped." for e in run.idle_engines()]
    return [*lines, ""] if run.idle_engines() else lines


def _meta(run: Run) -> str:
    parts = [f"gradspec {version_of(run)}", f"{len(engines_of(run))} engine(s)", f"{len(run.files)} case file(s)",
             f"{run.seconds:.2f} s", f"exit code {run.exit_code}"]
    return " · ".join(parts)


def summary_table(run: Run) -> list[str]:
    """Verdict counts per engine, and the totals when there is more than one engine."""
    head = ["engine", *(v.value for v in VERDICTS), "total"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|--:" * (len(head) - 1) + "|"]
    rows = [(code(e, in_table=True), run.counts(engine=e)) for e in engines_of(run)]
    if len(rows) != 1:
        rows.append(("**all**", run.counts()))
    for label, counts in rows:
        cells = [label, *(_count(counts[v], v) for v in VERDICTS), str(sum(counts.values()))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _count(n: int, verdict: Verdict) -> str:
    return f"**{n}**" if n and verdict in NOT_PASSING else str(n)


def matrix_cell(cell: Cell | None) -> str:
    """A matrix cell: symbol and counts as they are, the quoted reason or quantity in a code span."""
    if cell is None:
        return ""
    parts = [p for p in (cell.symbol, cell.count) if p]
    if cell.detail:
        parts.append(code(cell.detail, in_table=True))
    if cell.others:
        parts.append(f"({cell.others})")
    return " ".join(parts)


def matrix_section(run: Run) -> list[str]:
    """Cases x engines, each cell the case's checks on that engine; only for a run with several engines."""
    if not shows_matrix(run):
        return []
    m = build_matrix(run)
    names = display_names([row.file for row in m.rows])
    legend = [f"- {SYMBOLS[v]} {text}" for v, text in LEGEND]
    head = ["file", "case", *(code(e, in_table=True) for e in m.engines)]
    lines = [f"{MATRIX_HEADING} ({m.size})", "", *legend, "",
             "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for row in m.rows:
        cells = [code(names.get(row.file, "-"), in_table=True), code(row.case, in_table=True),
                 *(matrix_cell(row.cells.get(e)) for e in m.engines)]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def errors_section(run: Run) -> list[str]:
    """The invalid input the run met (case files that did not load)."""
    if not run.errors:
        return []
    lines = [f"### Invalid input ({len(run.errors)})", ""]
    lines += [f"- {code(clip(e, MAX_TEXT))}" for e in run.errors[:MAX_ERRORS]]
    if len(run.errors) > MAX_ERRORS:
        lines.append(f"- ... and {len(run.errors) - MAX_ERRORS} more")
    return [*lines, ""]


def quantity_table(result: CheckResult) -> list[str]:
    """The compared numbers of one check, bounded to ``MAX_QUANTITIES`` rows."""
    shown = list(result.quantities)
    if len(shown) > MAX_QUANTITIES:
        shown = [q for q in shown if q.verdict is not Verdict.PASS][:MAX_QUANTITIES]
    lines = ["| quantity | verdict | engine | exact | numerical | abs err | rel err | tol |",
             "|---|---|--:|--:|--:|--:|--:|--:|"]
    for q in shown:
        cells = [code(quantity_label(q), in_table=True), _verdict(q.verdict), fmt(q.engine), fmt(q.exact),
                 fmt(q.numerical), fmt(q.abs_error, 3), fmt(q.rel_error, 3), fmt(q.tolerance, 3)]
        lines.append("| " + " | ".join(cells) + " |")
    if len(shown) < len(result.quantities):
        lines.append(f"\n{len(result.quantities) - len(shown)} more quantities not shown (see the JSON report).")
    return lines


def _verdict(v: Verdict) -> str:
    return f"**{v.value}**" if v is not Verdict.PASS else v.value


def _symbolic(quantities: tuple[Quantity, ...]) -> list[str]:
    shown = [q for q in quantities if q.symbolic and q.verdict is not Verdict.PASS]
    if not shown:
        return []
    text = "\n".join(f"{quantity_label(q)} = {clip(q.symbolic, MAX_SYMBOLIC)}" for q in shown[:MAX_QUANTITIES])
    return ["", "<details><summary>symbolic derivative</summary>", "", _block(text), "", "</details>"]


def failure(index: int, result: CheckResult) -> list[str]:
    """One failed check: where, what, at which point, and its numbers."""
    where = location(result)
    head = f"#### {index}. {result.verdict.value.upper()} {code(result.case_id or result.expression[:60])}"
    lines = [head + (f" at {code(where)}" if where else "") + f" on {code(result.engine)}", ""]
    expression = clip(result.expression, MAX_TEXT)
    if "\n" in expression.strip():  # one intermediate a line, as written: a code span would run them together
        lines += ["- expression:", "", *[f"  {line}" if line else "" for line in _block(expression.strip()).split("\n")],
                  ""]
    else:
        lines.append(f"- expression: {code(expression)}")
    if result.point:
        lines.append(f"- point: {code(point_text(result.point))}")
    elif result.inputs:
        lines.append(f"- inputs: {code(result.inputs)}")
    if result.message:
        lines.append(f"- message: {code(clip(result.message, MAX_TEXT))}")
    if result.kinks:
        lines.append(f"- at a kink: {code(', '.join(result.kinks))}")
    if result.culprit is not None:
        lines.append(f"- culprit (`{result.culprit.op}`): {code(clip(result.culprit.message, MAX_TEXT))}")
    notes = [f"{quantity_label(q)}: {q.note}" for q in result.quantities if q.note and q.verdict is not Verdict.PASS]
    lines += [f"- note: {code(clip(n, MAX_TEXT))}" for n in notes[:MAX_QUANTITIES]]
    if result.quantities:
        lines += ["", *quantity_table(result)]
    if result.shrunk:
        lines += ["", "Smallest failing case:", "", "```yaml", result.shrunk.rstrip(), "```"]
    return [*lines, *_symbolic(result.quantities), ""]


def failures_section(run: Run) -> list[str]:
    """The first ``MAX_FAILURES`` failed or invalid checks, then how many more there are."""
    failed = not_passing(run)
    if not failed:
        return ["No failures." if run.results else "No checks ran.", ""]
    lines = [f"### Failures ({len(failed)})", ""]
    for i, result in enumerate(failed[:MAX_FAILURES], 1):
        lines += failure(i, result)
    if len(failed) > MAX_FAILURES:
        lines += [f"... and {len(failed) - MAX_FAILURES} more failures (see the JSON or HTML report).", ""]
    return lines


def render_markdown(run: Run) -> str:
    """The whole Markdown report, ending in a newline."""
    lines = [_title(run), "", _meta(run), "", *summary_table(run), "", *skips_section(run), *matrix_section(run),
             *errors_section(run),
             *failures_section(run)]
    return "\n".join(lines).rstrip("\n") + "\n"
