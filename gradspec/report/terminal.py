"""What ``gradspec run`` prints on a terminal or into a log: failures grouped, the summary, progress.

Failures are grouped by case and engine: the worst point of a group is shown in full, the other failing
points are counted, and the culprit and smallest failing case are printed once. One bug in an engine
(``=`` for ``+=`` in mul) breaks every case that multiplies a value by itself: after the first group
with a culprit, later groups with the same culprit (same engine, op and kind) take one line each, so
the output grows with the number of bugs, not with the number of checks.

The output is plain text. Progress goes to the error stream: a live bar (``rich``) on a terminal, and in
a log (CI) one line every 10% or every few seconds, whichever comes first.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from gradspec.report.common import NOT_PASSING, VERDICTS, engines_of, fmt, quantity_label, severity, worst_rel_error
from gradspec.results import CheckResult, CulpritKind, Quantity, Run, Verdict, mode_skip_reason, not_computed

__all__ = ["FailureGroup", "Progress", "brief_table", "failure_lines", "group_failures", "imprecise_lines", "next_steps", "skip_lines",
           "summary"]

LISTED_POINTS = 3  # other failing points of a group named by their coordinates before "and N more"
QUIET_FOR = 2.0  # seconds a run goes without progress lines in a log: short runs print none
_OP_KINDS = (CulpritKind.RULE, CulpritKind.ACCUMULATION, CulpritKind.FORWARD)  # an op wrong on its own


@dataclass(frozen=True)
class FailureGroup:
    """The failing checks of one case on one engine, and how many checks the case had there."""

    path: str
    case_id: str
    engine: str
    failing: tuple[CheckResult, ...]
    checks: int

    @property
    def worst(self) -> CheckResult:
        """An error before a failure; among failures, the largest relative error (none known: first)."""
        def key(r: CheckResult) -> tuple[int, float]:
            rel = worst_rel_error(r)
            return severity(r.verdict), -(math.inf if rel is None else rel)

        return min(self.failing, key=key)

    @property
    def culprit_key(self) -> tuple[str, str, str] | None:
        found = [r.culprit for r in (self.worst, *self.failing) if r.culprit is not None]
        culprit = next((c for c in found if c.kind in _OP_KINDS), found[0] if found else None)
        return None if culprit is None else (self.engine, culprit.op, culprit.kind)


def group_failures(results: Iterable[CheckResult]) -> list[FailureGroup]:
    """Failing and erroring checks grouped by (file, case, engine), in the order they first appear."""
    failing: dict[tuple[str, str, str], list[CheckResult]] = {}
    checks: dict[tuple[str, str, str], int] = {}
    for r in results:
        key = (r.path, r.case_id, r.engine)
        checks[key] = checks.get(key, 0) + 1
        if r.verdict in NOT_PASSING:
            failing.setdefault(key, []).append(r)
    return [FailureGroup(*key, tuple(rs), checks[key]) for key, rs in failing.items()]


def _worst_quantity(r: CheckResult) -> str:
    bad = [q for q in r.quantities if q.verdict in (Verdict.FAIL, Verdict.CONVENTION, Verdict.IMPRECISE)]
    if not bad:
        return r.message.split(";")[0][:80] if r.message else r.verdict.value
    q = max(bad, key=_excess)
    if q.engine is None or q.exact is None:
        return f"{quantity_label(q)}: {q.note.split(';')[0][:80]}" if q.note else quantity_label(q)
    return f"{quantity_label(q)} {fmt(q.engine, 4)} for {fmt(q.exact, 4)}"


def _excess(q: Quantity) -> float:
    """How far beyond its tolerance a quantity is (its error over the tolerance): the worst one is named
    with its two numbers, since a relative error with a floor calls 0 for 1e-300 "1e-292"."""
    if q.abs_error is None or math.isnan(q.abs_error) or q.tolerance is None:
        return math.inf
    return q.abs_error / q.tolerance if q.tolerance > 0 else (math.inf if q.abs_error > 0 else 0.0)


def _head(group: FailureGroup) -> str:
    worst = group.worst
    where = f"{group.path}:{worst.line}" if worst.line else group.path
    n = len(group.failing)
    what = "check" if group.checks == 1 else "checks"
    count = f"{n} of {group.checks} {what} {'fail' if n > 1 or group.checks > 1 else 'fails'}"
    if any(r.verdict is Verdict.ERROR for r in group.failing):
        count += " or error"
    return f"{where}: {group.case_id} on {group.engine}: {count}"


def _culprits(group: FailureGroup) -> list[str]:
    """Each distinct culprit of the group once, the worst point's first. Where one names an op that is
    wrong on its own, "every rule is right alone" (traversal) and "the runs differ" (nondeterminism)
    from other points of the case would contradict it, and are left out."""
    seen: dict[tuple[str, str], str] = {}
    found = [r.culprit for r in (group.worst, *group.failing) if r.culprit is not None]
    named_op = any(c.kind in _OP_KINDS for c in found)
    for c in found:
        if not named_op or c.kind in _OP_KINDS:
            seen.setdefault((c.op, c.kind), c.message)
    return list(seen.values())


def brief_table(result: CheckResult) -> str:
    """The result's table without what every point of its case shares: the symbolic derivatives, the
    culprit and the smallest failing case."""
    quantities = tuple(dataclasses.replace(q, symbolic="") for q in result.quantities)
    return dataclasses.replace(result, quantities=quantities, culprit=None, shrunk="").table()


def _without_mode_skips(result: CheckResult) -> CheckResult:
    """The result without the rows and message of modes its engine cannot compute: said once per engine
    after the failures (:func:`_mode_skip_lines`), not in every failing check's table."""
    skipped = [q for q in result.quantities if not_computed(q)]
    if not skipped:
        return result
    notes = {q.note for q in skipped}
    message = "; ".join(part for part in result.message.split("; ")
                        if not (" not checked: " in part and part.split(" not checked: ", 1)[1] in notes))
    return dataclasses.replace(result, quantities=tuple(q for q in result.quantities if q not in skipped),
                               message=message)


def _mode_skip_lines(results: Sequence[CheckResult]) -> list[str]:
    """Once per engine: the modes its failing checks asked for that it cannot compute."""
    by_engine: dict[str, dict[str, None]] = {}
    for r in results:
        for q in r.quantities:
            if not_computed(q):
                by_engine.setdefault(r.engine, {})[mode_skip_reason(q)] = None
    return [f"not computed on {engine} in the checks above: {'; '.join(reasons)}"
            for engine, reasons in by_engine.items()]


def _other_point(r: CheckResult) -> str:
    """How a group's other failing point is named: its coordinates; a tensor draw (whose shapes the header
    gives) by the rest of its message, shortened at a word, never cut inside one."""
    if r.point:
        return r.point_text
    text = r.message.split("; ", 1)[1] if r.message.startswith("inputs ") and "; " in r.message else r.message
    return textwrap.shorten(text, 60, placeholder=" ...") or f"line {r.line}"


def _group_lines(group: FailureGroup) -> list[str]:
    worst = _without_mode_skips(group.worst)
    lines = [_head(group), dataclasses.replace(worst, culprit=None, shrunk="").table()]
    others = [r for r in group.failing if r is not group.worst]
    if others:
        listed = "; ".join(_other_point(r) for r in others[:LISTED_POINTS])
        more = len(others) - LISTED_POINTS
        tail = f" and {more} more" if more > 0 else ""
        lines.append(f"  and {len(others)} more failing point{'s' if len(others) > 1 else ''}: {listed}{tail}")
    lines += [f"  culprit: {message}" for message in _culprits(group)]
    shrunk = next((r.shrunk for r in (worst, *group.failing) if r.shrunk), "")
    if shrunk:
        lines.append("  smallest failing case:")
        lines += [f"    {line}" for line in shrunk.splitlines()]
    return lines


def failure_lines(results: Sequence[CheckResult], *, every: bool = False) -> list[str]:
    """The failures of a run as lines: one block per group, a blank line after each.

    A group whose culprit an earlier group already showed in full takes one line that names that
    group. With ``every``, each failing check is shown in full instead, as its own block.
    """
    failing = [r for r in results if r.verdict in NOT_PASSING]
    if every:
        tables = [line for r in failing for line in (f"{r.path}:{r.line}: {r.case_id}", _without_mode_skips(r).table(), "")]
        said = _mode_skip_lines(failing)
        return [*tables, *said, ""] if said else tables
    lines: list[str] = []
    shown: dict[tuple[str, str, str], str] = {}
    for group in group_failures(results):
        key = group.culprit_key
        if key is not None and key in shown:
            lines.append(f"{_head(group)} ({_worst_quantity(group.worst)}); culprit {key[1]} ({key[2]}) "
                         f"as in {shown[key]}")
            continue
        if key is not None:
            shown[key] = group.case_id
        lines += [*_group_lines(group), ""]
    if lines and lines[-1] != "":
        lines.append("")
    said = _mode_skip_lines(failing)
    return [*lines, *said, ""] if said else lines


def summary(run: Run) -> str:
    """The terminal summary: checks per engine and per verdict, then the totals."""
    rows = [("engine", *(v.value for v in VERDICTS), "checks")]
    for engine in engines_of(run):
        c = run.counts(engine=engine)
        rows.append((engine, *(str(c[v]) for v in VERDICTS), str(sum(c.values()))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    totals = run.counts()
    cases = len({(r.path, r.case_id) for r in run.results})
    parts = [f"{totals[v]} {v.value}" for v in VERDICTS if totals[v]]
    lines.extend(imprecise_lines(run.results))
    lines.extend(skip_lines(run))
    clean = "OK" if run.complete else "NO FAILURES, SOME SKIPPED"
    if totals[Verdict.IMPRECISE]:  # never "OK": digits were lost that rounding does not explain
        clean = "NO FAILURES, SOME IMPRECISE"
    verdict = {0: clean, 1: "FAILED", 2: "INVALID INPUT"}[run.exit_code]
    lines.append(f"{verdict}: {len(run.results)} checks of {cases} cases in {len(run.files)} files on "
                 f"{len(run.engines)} engine(s): {', '.join(parts) or 'nothing run'}; "
                 f"{len(run.errors)} case-file error(s); {run.seconds:.2f}s")
    return "\n".join(lines)


def imprecise_lines(results: Iterable[CheckResult], limit: int = 10) -> list[str]:
    """One line per imprecise quantity (the first ``limit`` of them): where, and the digits kept."""
    found = [(r, q) for r in results if r.verdict is Verdict.IMPRECISE
             for q in r.quantities if q.verdict is Verdict.IMPRECISE]
    lines = [f"{r.path}:{r.line}: {r.case_id} on {r.engine}: {quantity_label(q)} imprecise: {q.note}" if r.path else
             f"{r.expression} on {r.engine}: {quantity_label(q)} imprecise: {q.note}" for r, q in found[:limit]]
    if len(found) > limit:
        lines.append(f"and {len(found) - limit} more imprecise quantities")
    return lines


def skip_lines(run: Run) -> list[str]:
    """The skipped checks by reason, the modes asked for that an engine cannot compute, the convention
    and xfail verdicts by reason, and the engines that compared nothing (which fail the run)."""
    lines = []
    for what, reasons in (("skipped", run.skips()), ("modes asked for but not computed", run.mode_skips()),
                          (Verdict.CONVENTION.value, run.reasons(Verdict.CONVENTION)),
                          (Verdict.XFAIL.value, run.reasons(Verdict.XFAIL))):
        if reasons:
            total = sum(n for _, n in reasons)
            shown = ", ".join(f"{reason} ({n:,})" for reason, n in reasons[:8])
            more = f", and {len(reasons) - 8} more reasons" if len(reasons) > 8 else ""
            lines.append(f"{total:,} {what}: {shown}{more}")
    for engine in run.idle_engines():
        ended = Counter(r.verdict for r in run.results if r.engine == engine)  # skip or error, each
        n = sum(ended.values())
        if not n:
            lines.append(f"engine {engine} compared nothing: no check ran on it")
            continue
        how = ", ".join(f"{k:,} {'skipped' if v is Verdict.SKIP else v.value}" for v, k in sorted(
            ended.items(), key=lambda item: item[0].value, reverse=True))
        lines.append(f"engine {engine} compared nothing: " + (f"all {n:,} of its checks were skipped"
                                                              if set(ended) == {Verdict.SKIP} else
                                                              f"its {n:,} check{'s' * (n != 1)}: {how}"))
    return lines


def next_steps(specs: Sequence[str], reports: Sequence[str]) -> str:
    """After a clean run: what to try next, leaving out what the run already did."""
    tips = []
    if all(spec == "builtin" for spec in specs):
        tips.append("your own engine with --engine module:Class (e.g. --engine myengine:Value)")
    if not reports:
        tips.append("a report with --report report.html (or .md, .json)")
    return f"next: check {' and '.join(tips)}" if tips else ""


class Progress:
    """Progress of ``total`` steps on ``stream``.

    On a terminal, a live bar drawn by ``rich`` that disappears when done (only for runs of more than
    ``live_from`` steps). Elsewhere (a CI log), nothing for the first ``quiet_for`` seconds (default
    :data:`QUIET_FOR`), so short
    runs stay quiet, then one line whenever another 10% is done or ``every`` seconds have passed.
    The caller tells each failing check to :meth:`failure`; their count is shown when not 0. ``shown``
    False (``--quiet``) counts the steps and prints nothing.
    The bar is redrawn from :meth:`step` (no refresh thread): a process with a second thread is not
    forked by the worker pool, and spawning costs a second or more per worker.
    """

    def __init__(self, stream: TextIO, total: int, what: str = "cases", *, quiet_for: float | None = None,
                 every: float = 5.0, live_from: int = 20, clock: Callable[[], float] = time.monotonic,
                 shown: bool = True) -> None:
        self.stream, self.total, self.what, self.clock, self.shown = stream, total, what, clock, shown
        self.n = self.failed = 0
        self.start = self.last = clock()
        self.quiet_for, self.every = QUIET_FOR if quiet_for is None else quiet_for, every
        self.tenths = 0
        self.bar: Any = None
        isatty = getattr(stream, "isatty", None)
        if shown and total > live_from and callable(isatty) and isatty():
            self.bar = _live_bar(stream, total, what)

    def step(self, label: str) -> None:
        self.n += 1
        if not self.shown:
            return
        now = self.clock()
        if self.bar is not None:
            from rich.markup import escape

            bar, task = self.bar
            bar.update(task, completed=self.n, label=escape(label[:40]),  # a case id is not rich markup
                       failing=f"{self.failed} failing" if self.failed else "")
            if now - self.last >= 0.1 or self.n == self.total:
                bar.refresh()
                self.last = now
            return
        tenths = 10 * self.n // max(self.total, 1)
        if now - self.start < self.quiet_for or not (tenths > self.tenths or now - self.last >= self.every):
            return
        self.tenths, self.last = tenths, now
        failing = f", {self.failed} failing" if self.failed else ""
        self.stream.write(f"gradspec: {self.n}/{self.total} {self.what} ({100 * self.n // max(self.total, 1)}%)"
                          f"{failing}, {now - self.start:.0f} s\n")
        self.stream.flush()

    def failure(self) -> None:
        self.failed += 1

    def done(self) -> None:
        if self.bar is not None:
            self.bar[0].stop()
            self.bar = None


def _live_bar(stream: TextIO, total: int, what: str) -> tuple[Any, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    bar = Bar(BarColumn(), MofNCompleteColumn(), TextColumn(what), TimeElapsedColumn(),
              TextColumn("[red]{task.fields[failing]}"), TextColumn("{task.fields[label]}"),
              console=Console(file=stream), transient=True, auto_refresh=False, redirect_stdout=False,
              redirect_stderr=False)
    task = bar.add_task("", total=total, label="", failing="")
    bar.start()
    return bar, task
