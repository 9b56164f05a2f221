"""The JSON report: every check of a run in a stable, documented shape (``docs/report-format.md``).

The output is strict JSON: a float that is nan or infinite is written as the string ``"nan"``, ``"inf"`` or
``"-inf"``, so ``json.loads`` in any language reads it and ``json.dumps(..., allow_nan=False)`` succeeds.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from gradspec.report.common import VERDICTS, engines_of, files_of, version_of
from gradspec.report.matrix import Cell, build_matrix
from gradspec.results import CheckResult, Culprit, CulpritKind, ElementErrors, Quantity, Role, Run, Verdict

__all__ = ["FORMAT_VERSION", "elements_record", "from_dict", "matrix", "number", "render_json", "sources", "to_dict"]

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
        "inputs": r.inputs,
        "expression": r.expression,
        "verdict": r.verdict.value,
        "message": r.message,
        "kinks": list(r.kinks),
        "quantities": [quantity_record(q) for q in r.quantities],
        "culprit": culprit_record(r.culprit) if r.culprit is not None else None,
        "shrunk": r.shrunk or None,
        "radius": number(r.radius) if r.radius is not None else None,
        "step_input": r.step_input or None,
        "step_errors": [[k, number(e)] for k, e in r.step_errors],
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
        "sources": sources(run),
        "errors": list(run.errors),
        "matrix": matrix(run),
        "checks": [check_record(r) for r in run.results],
    }


def sources(run: Run) -> dict[str, str | None]:
    """Each case file of the run with the SHA-256 of its bytes (None where it cannot be read now): what
    tells two reports of the same case files apart from reports of different ones."""
    out: dict[str, str | None] = {}
    for f in run.files:
        try:
            out[f] = hashlib.sha256(Path(f).read_bytes()).hexdigest()
        except OSError:
            out[f] = None
    return out


def render_json(run: Run) -> str:
    """The report as strict JSON text, indented, ending in a newline."""
    return json.dumps(to_dict(run), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# -- reading a report back ------------------------------------------------------------------------------


def _float(x: Any) -> float | None:
    """A number as :func:`number` wrote it: "nan" and the infinities are strings, null stays None."""
    return None if x is None else float(x)


def _quantity(q: dict[str, Any]) -> Quantity:
    e = q.get("elements")
    elements = None
    if e is not None:
        over = set(e["over"])
        errors = tuple(float(x) for x in e["rel_errors"])
        elements = ElementErrors(tuple(e["shape"]), e["rows"], errors, tuple(i in over for i in range(len(errors))))
    return Quantity(name=q["name"], role=Role(q["role"]), engine=_float(q["engine"]), exact=_float(q["exact"]),
                    numerical=_float(q["numerical"]), abs_error=_float(q["abs_error"]), rel_error=_float(q["rel_error"]),
                    tolerance=_float(q["tolerance"]), verdict=Verdict(q["verdict"]), exact_text=q["exact_text"], symbolic=q["symbolic"], note=q["note"],
                    index=tuple(q["index"]) if q["index"] is not None else None, elements=elements)


def _check(r: dict[str, Any]) -> CheckResult:
    c = r["culprit"]
    culprit = None if c is None else Culprit(op=c["op"], kind=CulpritKind(c["kind"]), node=c["node"],
                                             argument=c["argument"], exact=_float(c["exact"]), engine=_float(c["engine"]),
                                             message=c["message"])
    return CheckResult(expression=r["expression"], point={k: float(v) for k, v in r["point"].items()},
                       engine=r["engine"], verdict=Verdict(r["verdict"]),
                       quantities=tuple(_quantity(q) for q in r["quantities"]), message=r["message"],
                       kinks=tuple(r["kinks"]), case_id=r["case"], path=r["file"], line=r["line"], kind=r["kind"],
                       step_errors=tuple((int(k), float(e)) for k, e in r.get("step_errors", [])),
                       step_input=r.get("step_input") or "", culprit=culprit, shrunk=r["shrunk"] or "",
                       radius=_float(r["radius"]) if r.get("radius") is not None else None,
                       inputs=r.get("inputs", ""))


def from_dict(data: dict[str, Any]) -> Run:
    """The :class:`Run` a report of this format (:func:`to_dict`) was written from. The matrix and the
    summary are left out: they are recomputed from the checks. Raises KeyError, TypeError or ValueError
    for a mapping that is not such a report (the caller says which file it was)."""
    if data.get("format") != FORMAT_VERSION:
        raise ValueError(f"report format {data.get('format')!r}; this gradspec reads format {FORMAT_VERSION}")
    return Run(results=tuple(_check(r) for r in data["checks"]), engines=tuple(data["engines"]),
               files=tuple(data["files"]), errors=tuple(data["errors"]), seconds=float(data["summary"]["seconds"]),
               version=data["gradspec"])
