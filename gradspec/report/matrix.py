"""The conformance matrix: one row per case, one column per engine, each cell a summary of that case's
checks on that engine.

A cell's verdict is the worst of its checks; its summary reads at a glance::

    ✓ 100                            every one of 100 points passed
    ✗ 3/100 d/dx rel 0.57            3 of 100 points failed; the first failure's message or worst quantity
    ≈ abs at 0: 1 (convention 0)     another valid subgradient at a kink: the engine's value, the convention
    – engine has no tanh             skipped, with the reason
    ⊘ known issue                    an expected failure (xfail), with the case's reason
    ⚠ log(x) needs x > 0             the check is invalid (error), with the message

The other outcomes of a mixed cell follow in parentheses, worst first: ``✗ 3/100 d/dx rel 0.57 (≈ 2, ✓ 95)``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from gradspec.report.common import VERDICTS, engines_of, fmt, quantity_label, severity
from gradspec.results import CheckResult, Quantity, Run, Verdict, worst

__all__ = ["LEGEND", "MAX_DETAIL", "SYMBOLS", "Cell", "Matrix", "Row", "build_matrix", "display_names", "shows_matrix"]

SYMBOLS: dict[Verdict, str] = {
    Verdict.PASS: "✓",
    Verdict.FAIL: "✗",
    Verdict.CONVENTION: "≈",
    Verdict.IMPRECISE: "~",
    Verdict.SKIP: "–",
    Verdict.XFAIL: "⊘",
    Verdict.ERROR: "⚠",
}
LEGEND: tuple[tuple[Verdict, str], ...] = (
    (Verdict.PASS, "pass: every point agreed with the exact reference (the number of points)"),
    (Verdict.FAIL, "fail: failed points of all points, and the first failure's message or worst quantity"),
    (Verdict.IMPRECISE, "imprecise: digits lost beyond what rounding allows, within a formula rebuilt from a rounded intermediate"),
    (Verdict.CONVENTION, "convention: another valid subgradient at a kink (the engine's value, then the convention)"),
    (Verdict.SKIP, "skip: the engine lacks an op, or the case excludes it (the reason)"),
    (Verdict.XFAIL, "xfail: failed, as the case says it is expected to (the reason)"),
    (Verdict.ERROR, "error: the check itself is invalid, such as a point outside an op's domain"),
)
MAX_DETAIL = 100  # characters of the message or quantity a cell quotes; longer ones end in "…"
_CONVENTION = re.compile(r"convention (?:gives|is) ([^\s;,]+)")
_DIGITS = re.compile(r"\d+ of \d+ digits")
_MIXED_ORDER = sorted(VERDICTS, key=severity)  # worst first


@dataclass(frozen=True)
class Cell:
    """One case's checks on one engine."""

    verdict: Verdict
    counts: dict[Verdict, int]
    symbol: str
    count: str  # "100", "3/100", or "" where the count says nothing
    detail: str  # the reason, message or quantity quoted; "" for a pass
    others: str  # the other outcomes, "≈ 2, ✓ 95"; "" when every check had the cell's verdict

    @property
    def checks(self) -> int:
        return sum(self.counts.values())

    @property
    def summary(self) -> str:
        """The whole cell as plain text: ``✗ 3/100 d/dx rel 0.57 (✓ 97)``."""
        text = " ".join(part for part in (self.symbol, self.count, self.detail) if part)
        return f"{text} ({self.others})" if self.others else text


@dataclass(frozen=True)
class Row:
    """One case: where it comes from, and a cell per engine that ran it."""

    file: str
    case: str
    cells: dict[str, Cell]

    @property
    def verdict(self) -> Verdict:
        """The worst verdict over the row's cells."""
        return worst([c.verdict for c in self.cells.values()])


@dataclass(frozen=True)
class Matrix:
    engines: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def size(self) -> str:
        """``162 cases x 5 engines``."""
        cases, engines = len(self.rows), len(self.engines)
        return f"{cases} case{'s' * (cases != 1)} x {engines} engine{'s' * (engines != 1)}"


def shows_matrix(run: Run) -> bool:
    """Whether the Markdown and HTML reports show a matrix: only when the run has several engines."""
    return bool(run.results) and len(engines_of(run)) > 1


def build_matrix(run: Run) -> Matrix:
    """The conformance matrix of ``run``: rows in the order cases first appear, engines as the run lists them."""
    groups: dict[tuple[str, str], dict[str, list[CheckResult]]] = {}
    for r in run.results:
        key = (r.path, r.case_id or _cut(r.expression, 60))
        groups.setdefault(key, {}).setdefault(r.engine, []).append(r)
    engines = tuple(engines_of(run))
    rows = tuple(Row(path, case, {e: summarise(by_engine[e]) for e in engines if e in by_engine})
                 for (path, case), by_engine in groups.items())
    return Matrix(engines, rows)


def summarise(results: list[CheckResult]) -> Cell:
    """One cell from the checks of one case on one engine (at least one)."""
    counts = dict.fromkeys(VERDICTS, 0)
    for r in results:
        counts[r.verdict] += 1
    verdict = worst([r.verdict for r in results])
    first = next(r for r in results if r.verdict is verdict)
    others = ", ".join(f"{SYMBOLS[v]} {counts[v]}" for v in _MIXED_ORDER if counts[v] and v is not verdict)
    return Cell(verdict, counts, SYMBOLS[verdict], _count(counts[verdict], len(results), verdict),
                _cut(_detail(first, verdict)), others)


def _cut(text: str, limit: int = MAX_DETAIL) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _count(n: int, total: int, verdict: Verdict) -> str:
    if verdict is Verdict.PASS:
        return str(total)
    if total == 1 or (n == total and verdict in (Verdict.SKIP, Verdict.XFAIL)):
        return ""
    return f"{n}/{total}"


def _detail(result: CheckResult, verdict: Verdict) -> str:
    if verdict is Verdict.PASS:
        return ""
    if verdict is Verdict.FAIL:
        return _failure(result)
    if verdict is Verdict.CONVENTION:
        return _convention(result)
    if verdict is Verdict.IMPRECISE:
        q = next((q for q in result.quantities if q.verdict is Verdict.IMPRECISE), None)
        kept = _DIGITS.search(q.note) if q is not None else None
        return f"{quantity_label(q)} {kept.group(0)}" if q is not None and kept else _one_line(result.message)
    if verdict is Verdict.XFAIL:
        return result.message.removeprefix("expected failure: ")
    return _one_line(result.message)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _failure(result: CheckResult) -> str:
    """The message when there is one (the engine raised), else the worst failing quantity."""
    if result.message:
        return _one_line(result.message)
    failing = [q for q in result.quantities if q.verdict is Verdict.FAIL]
    if not failing:
        return ""
    q = max(failing, key=_badness)
    label = quantity_label(q)
    if q.engine is not None and not math.isfinite(q.engine):
        return f"{label} = {fmt(q.engine)}"
    if q.engine is not None and q.rel_error is None:
        return f"{label} {fmt(q.engine, 3)}" + (f": {_one_line(q.note)}" if q.note else "")
    if q.rel_error is not None:
        return f"{label} rel {fmt(q.rel_error, 2)}"
    return f"{label}: {_one_line(q.note)}" if q.note else label


def _badness(q: Quantity) -> float:
    if q.rel_error is None:
        return -1.0
    return math.inf if math.isnan(q.rel_error) else q.rel_error


def _convention(result: CheckResult) -> str:
    """``abs at 0: 1 (convention 0)``: the kink, the engine's value and the convention it did not take."""
    gradients = [q for q in result.quantities if q.role not in ("value", "property")]
    q = next((q for q in result.quantities if q.verdict is Verdict.CONVENTION), None)
    if q is None:
        return _one_line(result.message)
    found = _CONVENTION.search(q.note)
    convention = found.group(1) if found else fmt(q.exact, 6)
    label = f"{quantity_label(q)} " if len(gradients) > 1 else ""
    kink = f"{', '.join(result.kinks)}: " if result.kinks else ""
    return f"{kink}{label}{fmt(q.engine, 6)} (convention {convention})"


def display_names(files: list[str]) -> dict[str, str]:
    """Each file as the matrix shows it: relative to the folder every file shares (the name alone for one)."""
    real = [f for f in files if f]
    if not real:
        return {}
    try:
        base = os.path.commonpath([os.path.dirname(f) for f in real])
    except ValueError:  # absolute and relative paths mixed
        return {f: f for f in real}
    return {f: os.path.relpath(f, base) if base else f for f in real}
