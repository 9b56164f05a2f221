"""Helpers every renderer shares: which engines and files a run has, and how numbers read."""

from __future__ import annotations

import math

from gradspec.results import CheckResult, Quantity, Run, Verdict, without_dtype
from gradspec.results import quantity_label as label
from gradspec.version import __version__

__all__ = [
    "NOT_PASSING",
    "VERDICTS",
    "clip",
    "engines_of",
    "files_of",
    "fmt",
    "location",
    "not_passing",
    "point_text",
    "quantity_label",
    "severity",
    "version_of",
    "worst_rel_error",
]

VERDICTS: tuple[Verdict, ...] = (Verdict.PASS, Verdict.FAIL, Verdict.IMPRECISE, Verdict.CONVENTION, Verdict.SKIP,
                                 Verdict.XFAIL, Verdict.ERROR)
NOT_PASSING: frozenset[Verdict] = frozenset({Verdict.FAIL, Verdict.ERROR})
_SEVERITY = (Verdict.ERROR, Verdict.FAIL, Verdict.IMPRECISE, Verdict.CONVENTION, Verdict.XFAIL, Verdict.SKIP,
             Verdict.PASS)


def severity(verdict: Verdict) -> int:
    """0 for the most serious verdict (error) up to 6 for pass: sorts the worst first."""
    return _SEVERITY.index(verdict)


def version_of(run: Run) -> str:
    """The gradspec version that produced ``run``; the installed one where the run does not say."""
    if run.version:
        return run.version
    return __version__


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def engines_of(run: Run) -> list[str]:
    """The run's engines in order, then any engine a result names that the run does not list; a listed
    engine whose checks all ran in another dtype (a float32 function case on torch) only as that one."""
    named = _unique([r.engine for r in run.results])
    variants = {without_dtype(e) for e in named if e not in run.engines}
    return _unique([*(e for e in run.engines if e in named or e not in variants), *named])


def files_of(run: Run) -> list[str]:
    """The run's case files in order, then any other file a result comes from (never the empty path)."""
    return [f for f in _unique([*run.files, *(r.path for r in run.results)]) if f]


def not_passing(run: Run) -> list[CheckResult]:
    """Results that fail the run: verdict ``fail`` or ``error``, in run order."""
    return [r for r in run.results if r.verdict in NOT_PASSING]


def worst_rel_error(result: CheckResult) -> float | None:
    """The largest relative error over the result's quantities (nan counts as inf); None if it has none."""
    errors = [math.inf if math.isnan(q.rel_error) else q.rel_error for q in result.quantities
              if q.rel_error is not None]
    return max(errors, default=None)


def fmt(x: float | None, digits: int = 10) -> str:
    """A number for people: ``digits`` significant digits, ``-`` for a missing one, nan and inf spelled out."""
    if x is None:
        return "-"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def point_text(point: dict[str, float], digits: int = 17) -> str:
    """``x=2, y=0.1``: every coordinate, exact enough to repeat the check (17 digits round-trip)."""
    return ", ".join(f"{k}={fmt(v, digits)}" for k, v in point.items())


def location(result: CheckResult) -> str:
    """``file:line`` of the result's case, ``file`` alone, or empty when it did not come from a file."""
    if not result.path:
        return ""
    return f"{result.path}:{result.line}" if result.line else result.path


def quantity_label(q: Quantity) -> str:
    """``value``, ``d/dx`` for a gradient (``float32: d/dx (vjp0)`` for a function case's float32 run),
    or the property's own name."""
    return label(q)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} ... ({len(text) - limit} more characters)"
