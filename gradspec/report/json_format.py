"""The JSON report: every check of a run in a stable, documented shape (``docs/report-format.md``).

The output is strict JSON: a float that is nan or infinite is written as the string ``"nan"``, ``"inf"`` or
``"-inf"``, so ``json.loads`` in any language reads it and ``json.dumps(..., allow_nan=False)`` succeeds.
"""

from __future__ import annotations

import json
import math
from typing import Any

from gradspec.report.common import VERDICTS, engines_of, files_of, version_of
from gradspec.report.matrix import Cell, build_matrix
from gradspec.results import CheckResult, Culprit, ElementErrors, Quantity, Run, Verdict

__all__ = ["FORMAT_VERSION", "elements_record", "matrix", "number", "render_json", "to_dict"]

FORMAT_VERSION = 1  # bumped when a field changes meaning or goes away; adding a field does not bump it

JSONNumber = float | int | str | None


def number(x: float | int | None) -> JSONNumber:
    """A float as strict JSON allows it: nan and the infinities become strings, None stays null."""
    if x is None or isinstance(x, bool):
        return x
    if isinstance(x, int):
        return x
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x)


def _counts(counts: dict[Verdict, int]) -> dict[str, int]:
    return {v.value: counts[v] for v in VERDICTS}


def summary(run: Run) -> dict[str, Any]:
    """Totals per verdict, then the same per engine and per case file."""
    return {
        "checks": len(run.results),
        "exit_code": run.exit_code,
        "strict": run.strict,
        "seconds": number(run.seconds),
        "totals": _counts(run.counts()),
        "engines": {e: _counts(run.counts(engine=e)) for e in engines_of(run)},
        "files": {f: _counts(run.counts(path=f)) for f in files_of(run)},
    }


def quantity_record(q: Quantity) -> dict[str, Any]:
    """One compared number of a check."""
    return {
        "name": q.name,
        "role": q.role,
        "engine": number(q.engine),
        "exact": number(q.exact),
        "exact_text": q.exact_text,
        "numerical": number(q.numerical),
        "abs_error": number(q.abs_error),
        "rel_error": number(q.rel_error),
        "tolerance": number(q.tolerance),
        "verdict": q.verdict.value,
        "symbolic": q.symbolic,
        "note": q.note,
        "index": list(q.index) if q.index is not None else None,
        "elements": elements_record(q.elements) if q.elements is not None else None,
    }


def elements_record(e: ElementErrors) -> dict[str, Any]:
    """A failing tensor quantity's relative error per element (what the HTML heat map draws)."""
    return {"shape": list(e.shape), "rows": e.rows, "rel_errors": [number(x) for x in e.errors],
            "over": [i for i, o in enumerate(e.over) if o]}


def check_record(r: CheckResult) -> dict[str, Any]:
    """One expression checked on one engine at one point."""
    return {
        "case": r.case_id,
        "file": r.path,
        "line": r.line,
        "kind": r.kind,
        "engine": r.engine,
        "point": {k: number(v) for k, v in r.point.items()},
        "expression": r.expression,
        "verdict": r.verdict.value,
        "message": r.message,
        "kinks": list(r.kinks),
        "quantities": [quantity_record(q) for q in r.quantities],
        "culprit": culprit_record(r.culprit) if r.culprit is not None else None,
        "shrunk": r.shrunk or None,
    }


def culprit_record(c: Culprit) -> dict[str, Any]:
    """Where a failing engine first goes wrong: ``op`` is an op-table name, or "backward"."""
    return {"op": c.op, "kind": c.kind, "node": c.node, "argument": c.argument, "exact": number(c.exact),
            "engine": number(c.engine), "message": c.message}


def cell_record(cell: Cell) -> dict[str, Any]:
    """One case's checks on one engine, summarised."""
    return {"verdict": cell.verdict.value, "counts": _counts(cell.counts), "summary": cell.summary}


def matrix(run: Run) -> dict[str, Any]:
    """The conformance matrix: a row per case, a cell per engine that ran it."""
    m = build_matrix(run)
    rows = [{"file": row.file, "case": row.case, "cells": {e: cell_record(c) for e, c in row.cells.items()}}
            for row in m.rows]
    return {"engines": list(m.engines), "rows": rows}


def to_dict(run: Run) -> dict[str, Any]:
    """The whole report as plain JSON values."""
    return {
        "gradspec": version_of(run),
        "format": FORMAT_VERSION,
        "summary": summary(run),
        "engines": engines_of(run),
        "files": list(run.files),
        "errors": list(run.errors),
        "matrix": matrix(run),
        "checks": [check_record(r) for r in run.results],
    }


def render_json(run: Run) -> str:
    """The report as strict JSON text, indented, ending in a newline."""
    return json.dumps(to_dict(run), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
