"""The HTML report's conformance matrix: cases x engines, coloured by verdict, sortable and filterable.

This module lays out what each cell says and how it sorts; ``templates/matrix.html`` draws it. The table
uses the same inline script as the table of every check (``assets.SCRIPT``): click a header to sort (an
engine column sorts the worst cells first), type to filter the rows, or keep only the cases that failed
or errored on some engine.
"""

from __future__ import annotations

from typing import Any

from gradspec.report.common import VERDICTS, severity
from gradspec.report.matrix import LEGEND, SYMBOLS, Cell, build_matrix, display_names, shows_matrix
from gradspec.results import Run

__all__ = ["EMPTY_SORT", "matrix_view", "sort_key"]

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


def _cell(cell: Cell | None) -> dict[str, Any]:
    if cell is None:
        return {"empty": True, "sort": EMPTY_SORT}
    return {"empty": False, "verdict": cell.verdict.value, "sort": f"{sort_key(cell):.6f}", "tooltip": _tooltip(cell),
            "symbol": cell.symbol, "count": cell.count, "detail": cell.detail, "others": cell.others}


def matrix_view(run: Run) -> dict[str, Any] | None:
    """What the matrix section shows, or None for a run with fewer than two engines."""
    if not shows_matrix(run):
        return None
    m = build_matrix(run)
    names = display_names([row.file for row in m.rows])
    rows = [{"verdict": row.verdict.value, "file": row.file, "name": names.get(row.file, ""), "case": row.case,
             "cells": [_cell(row.cells.get(engine)) for engine in m.engines]} for row in m.rows]
    legend = [(v.value, SYMBOLS[v], text) for v, text in LEGEND]
    return {"size": m.size, "engines": m.engines, "rows": rows, "legend": legend}
