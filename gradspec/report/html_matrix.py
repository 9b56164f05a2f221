"""The HTML report's conformance matrix: cases x engines, coloured by verdict, sortable and filterable.

The table uses the same inline script as the table of every check (``_assets.SCRIPT``): click a header to
sort (an engine column sorts the worst cells first), type to filter the rows, or keep only the cases that
failed or errored on some engine.
"""

from __future__ import annotations

from gradspec.checks.results import Run
from gradspec.report.common import VERDICTS, e, severity
from gradspec.report.matrix import LEGEND, SYMBOLS, Cell, Matrix, Row, build_matrix, display_names, shows_matrix

__all__ = ["EMPTY_SORT", "cell_html", "matrix_section", "sort_key"]

EMPTY_SORT = 99  # an engine that ran none of the case's checks sorts after every verdict


def sort_key(cell: Cell | None) -> float:
    """Ascending puts the worst first: the verdict's severity, then the larger share of such checks."""
    if cell is None:
        return EMPTY_SORT
    share = cell.counts[cell.verdict] / max(cell.checks, 1)
    return severity(cell.verdict) + (1 - share) / 2


def _tooltip(cell: Cell) -> str:
    counts = ", ".join(f"{cell.counts[v]} {v.value}" for v in VERDICTS if cell.counts[v])
    return f"{cell.summary}\n{counts} ({cell.checks} checks)"


def cell_html(cell: Cell | None) -> str:
    """One matrix cell: a coloured symbol, the count, the quoted reason or quantity, the other outcomes."""
    if cell is None:
        return f'<td class="cell none" data-sort="{EMPTY_SORT}" title="no checks">·</td>'
    parts = [f'<span class="sym">{e(cell.symbol)}</span>']
    if cell.count:
        parts.append(f'<span class="count">{e(cell.count)}</span>')
    if cell.detail:
        parts.append(f'<span class="detail">{e(cell.detail)}</span>')
    if cell.others:
        parts.append(f'<span class="others">({e(cell.others)})</span>')
    return (f'<td class="cell {cell.verdict.value}" data-verdict="{cell.verdict.value}" '
            f'data-sort="{sort_key(cell):.6f}" title="{e(_tooltip(cell))}">{" ".join(parts)}</td>')


def _row(row: Row, engines: tuple[str, ...], names: dict[str, str]) -> str:
    file = names.get(row.file, "")
    cells = "".join(cell_html(row.cells.get(engine)) for engine in engines)
    return (f'<tr class="matrix-row" data-verdict="{row.verdict.value}"><td title="{e(row.file)}">{e(file)}</td>'
            f'<td class="case"><code>{e(row.case)}</code></td>{cells}</tr>')


def legend() -> str:
    """What each symbol and colour means."""
    items = "".join(f'<li><span class="cell {v.value}"><span class="sym">{e(SYMBOLS[v])}</span></span> {e(text)}</li>'
                    for v, text in LEGEND)
    return f'<ul class="legend matrix-legend">{items}</ul>'


def _table(m: Matrix, names: dict[str, str]) -> str:
    head = ('<th scope="col" data-type="text" class="text">file</th>'
            '<th scope="col" data-type="text" class="text">case</th>'
            + "".join(f'<th scope="col" data-type="number" class="text"><code>{e(x)}</code></th>' for x in m.engines))
    rows = "".join(_row(row, m.engines, names) for row in m.rows)
    return (f'<div class="wrap"><table id="matrix-table" class="sortable matrix"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def matrix_section(run: Run) -> str:
    """The conformance matrix, or nothing for a run with fewer than two engines."""
    if not shows_matrix(run):
        return ""
    m = build_matrix(run)
    names = display_names([row.file for row in m.rows])
    n = len(m.rows)
    caption = ("One row per case, one column per engine. Each cell sums up the case's checks on that engine: "
               "the worst verdict, its count, and what went wrong; the other outcomes follow in parentheses. "
               "Hover a cell for every count.")
    controls = ('<div class="controls"><input type="search" id="matrix-filter" placeholder="filter: case, file, '
                'reason..." aria-label="filter the matrix"><label><input type="checkbox" id="matrix-only-failing"> '
                f'only cases with a failure or error</label><span class="muted"><span id="matrix-shown">{n}</span> '
                f"of {n} shown; click a header to sort</span></div>")
    return (f'<section id="matrix"><h2>Conformance matrix ({e(m.size)})</h2>'
            f'<p class="caption">{e(caption)}</p>{legend()}{controls}{_table(m, names)}</section>')
