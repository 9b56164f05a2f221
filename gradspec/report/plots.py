"""The HTML report's plots, computed from a run: relative errors per engine, and error against step size.

*Relative errors*: every quantity judged against an exact reference (training losses and checks of
callables have none), binned by decade of its relative error; exact zeros and non-finite errors get
bars of their own.

*Step size*: for the first few gradient checks (one per expression, none at a kink), the central difference
``(f(x+h) - f(x-h)) / 2h`` of the float forward pass for ``h = 1e-1 ... 1e-13``, against the exact
gradient. Truncation error falls with ``h``; rounding error grows as ``h`` shrinks: the V shows why the
numerical reference is a witness and the exact value the judge.

*Heat maps*: for a failing tensor quantity that the check laid out on a grid (a 2-D value or gradient, a
Jacobian as output elements by input elements), each element's relative error on a log colour scale,
the worst element outlined, and the elements over tolerance bordered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradspec.checks.kinds import KINDS
from gradspec.checks.stepsize import STEP_EXPONENTS
from gradspec.report.common import clip, engines_of, fmt, point_text
from gradspec.report.svg import PALETTE, Bar, HeatCell, Series, bar_chart, heat_map, line_chart
from gradspec.results import CheckResult, ElementErrors, Quantity, Role, Run, Tolerance, Verdict

__all__ = ["MAX_HEAT_MAPS", "STEP_EXPONENTS", "StepErrors", "error_colour", "error_histograms", "heat_maps",
           "rel_error_bins", "step_colour", "step_errors", "step_plot"]

LOWEST_DECADE = -16  # relative errors below 1e-16 share the first bar
HIGHEST_DECADE = 0  # relative errors of 1 and more share the last finite bar
ZERO_FLOOR = -18  # an error of exactly 0 is drawn here on the log axis
MAX_STEP_SERIES = 5
MAX_SCANNED = 200  # distinct expressions tried for the step-size plot
MAX_HEAT_MAPS = 4  # per check; the rest are counted, not drawn

# The colour scale of the heat maps, pale yellow (1e-16) to dark red (1 and more), one decade at a time.
_RAMP = ((255, 255, 204), (254, 217, 118), (253, 141, 60), (227, 26, 28), (128, 0, 38))
ZERO_COLOUR = "#e5f5e0"  # exactly equal
NON_FINITE_COLOUR = "#111827"  # nan or infinite


@dataclass(frozen=True)
class Histogram:
    """Relative errors of one engine, by decade."""

    engine: str
    zeros: int
    decades: dict[int, int]  # floor(log10 rel error), clamped to [LOWEST_DECADE, HIGHEST_DECADE] -> count
    non_finite: int

    @property
    def total(self) -> int:
        return self.zeros + self.non_finite + sum(self.decades.values())


def _judged(q: Quantity) -> bool:
    return q.exact is not None and q.rel_error is not None


def rel_error_bins(run: Run, engine: str) -> Histogram:
    """Bin the relative errors of ``engine``'s quantities that have an exact reference."""
    decades = dict.fromkeys(range(LOWEST_DECADE, HIGHEST_DECADE + 1), 0)
    zeros = non_finite = 0
    for r in run.results:
        if r.engine != engine:
            continue
        for q in filter(_judged, r.quantities):
            e = q.rel_error
            assert e is not None
            if e == 0:
                zeros += 1
            elif not math.isfinite(e):
                non_finite += 1
            else:
                k = min(max(math.floor(math.log10(e)), LOWEST_DECADE), HIGHEST_DECADE)
                decades[k] += 1
    return Histogram(engine, zeros, decades, non_finite)


def _bars(h: Histogram) -> list[Bar]:
    bars = [Bar("0", h.zeros, "#059669", f"{h.zeros} exactly equal to the reference")]
    for k, n in h.decades.items():
        label = ("1" if k == 0 else f"1e{k}") if k % 4 == 0 and k > LOWEST_DECADE else ""
        low = "below 1e-15" if k == LOWEST_DECADE else f"in [1e{k}, 1e{k + 1})"
        tip = f"{n} with relative error {'1 or more' if k == HIGHEST_DECADE else low}"
        color = "#2563eb" if k < -6 else ("#d97706" if k < -2 else "#dc2626")
        bars.append(Bar(label, n, color, tip))
    bars.append(Bar("∞", h.non_finite, "#7f1d1d", f"{h.non_finite} with a nan or infinite error"))
    return bars


def error_histograms(run: Run) -> list[str]:
    """One SVG bar chart per engine (engines with no judged quantity are left out)."""
    charts = []
    for engine in engines_of(run):
        h = rel_error_bins(run, engine)
        if h.total:
            title = f"{clip(engine, 48)}: {h.total} quantities"
            charts.append(bar_chart(title, _bars(h), y_label="quantities", x_label="relative error (0: exact, ∞: nan or inf)"))
    return charts


@dataclass(frozen=True)
class StepErrors:
    """Central-difference error against step size for one gradient of one check."""

    result: CheckResult
    quantity: Quantity
    errors: tuple[tuple[int, float], ...]  # (log10 h, |central difference - exact|)

    @property
    def label(self) -> str:
        case = self.result.case_id or clip(self.result.expression, 40)
        return f"{case}: d/d{self.quantity.name} at {point_text(self.result.point, 6)}"


def _candidate(result: CheckResult) -> Quantity | None:
    if not (result.kind in KINDS and KINDS[result.kind].plotted) or result.verdict in (Verdict.ERROR, Verdict.SKIP) or not result.point:
        return None
    return next((q for q in result.quantities if q.name == result.step_input and q.role is Role.INPUT), None)


def _curved(errors: tuple[tuple[int, float], ...]) -> bool:
    """Whether large steps show truncation error (a linear function's difference is exact at any h)."""
    return any(err > 1e-10 for k, err in errors if k >= -2)


def step_errors(run: Run, limit: int = MAX_STEP_SERIES) -> list[StepErrors]:
    """Representative gradient checks and their errors: one per expression, curved functions first.

    At most ``MAX_SCANNED`` distinct expressions are tried, in run order.
    """
    curved: list[StepErrors] = []
    straight: list[StepErrors] = []
    seen: set[str] = set()
    for result in run.results:
        if len(curved) >= limit or len(seen) >= MAX_SCANNED:
            break
        q = _candidate(result)
        if q is None or q.exact is None or result.expression in seen:
            continue
        seen.add(result.expression)
        errors = result.step_errors
        if errors:
            (curved if _curved(errors) else straight).append(StepErrors(result, q, errors))
    return (curved + straight)[:limit]


def step_colour(i: int) -> str:
    """The colour of the ``i``-th series of :func:`step_plot`, for a legend."""
    return PALETTE[i % len(PALETTE)]


def step_plot(data: list[StepErrors]) -> str:
    """The log-log plot of central-difference error against ``h``; empty when there is no data."""
    if not data:
        return ""
    series = []
    for i, d in enumerate(data):
        points = tuple((float(k), math.log10(e) if e > 0 else ZERO_FLOOR) for k, e in d.errors)
        tips = tuple(f"{d.label}: h=1e{k}, error={fmt(e, 3)}" for k, e in d.errors)
        series.append(Series(d.label, points, step_colour(i), tips))
    h = Tolerance().h
    return line_chart("central-difference error against step size", series, x_range=(min(STEP_EXPONENTS), -1),
                      x_label="step h", y_label="|central difference - exact|", marker_x=math.log10(h),
                      marker_label=f"default h = {h:g}")



def error_colour(e: float) -> str:
    """The heat maps' colour of a relative error: log scale from 1e-16 (pale) to 1 and more (dark red)."""
    if e == 0:
        return ZERO_COLOUR
    if not math.isfinite(e):
        return NON_FINITE_COLOUR
    t = (min(max(math.log10(e), LOWEST_DECADE), HIGHEST_DECADE) - LOWEST_DECADE) / (HIGHEST_DECADE - LOWEST_DECADE)
    pos = t * (len(_RAMP) - 1)
    k = min(int(pos), len(_RAMP) - 2)
    a, b = _RAMP[k], _RAMP[k + 1]
    rgb = (round(x + (y - x) * (pos - k)) for x, y in zip(a, b, strict=True))
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _legend() -> tuple[list[tuple[str, str]], dict[int, str]]:
    strip = [(ZERO_COLOUR, "exactly equal"), ("", "")]
    strip += [(error_colour(10.0 ** k), f"relative error about 1e{k}") for k in range(LOWEST_DECADE, HIGHEST_DECADE + 1)]
    strip += [("", ""), (NON_FINITE_COLOUR, "nan or infinite")]
    ticks = {0: "0", len(strip) - 1: "nan"}
    ticks.update({2 + k - LOWEST_DECADE: ("1" if k == 0 else f"1e{k}") for k in range(LOWEST_DECADE, 1, 4)})
    return strip, ticks


def _labels(shape: tuple[int, ...]) -> list[str]:
    """Each row's (or column's) index along ``shape``: ``3``, or ``1,2`` for several axes."""
    return [",".join(str(i) for i in index) for index in np.ndindex(shape)] if shape else ["0"]


def _axes(first: int, count: int, part: str) -> str:
    names = f"axis {first}" if count == 1 else f"axes {first}-{first + count - 1}"
    return f"{names} ({part})" if part else names


def _heat_map(q: Quantity, e: ElementErrors) -> str:
    rows_shape, cols_shape = e.shape[:e.rows], e.shape[e.rows:]
    _, columns = e.grid
    jacobian = q.name.endswith("(jacobian)")
    cells = []
    for i, (err, over) in enumerate(zip(e.errors, e.over, strict=True)):
        index = [int(k) for k in np.unravel_index(i, e.shape)]
        tip = f"{list(index)}: relative error {fmt(err, 3)}" + ("; over tolerance" if over else "")
        cells.append(HeatCell(error_colour(err), tip, over))
    marked = int(np.ravel_multi_index(q.index, e.shape)) if q.index is not None and len(q.index) == len(e.shape) else None
    strip, ticks = _legend()
    return heat_map(f"{clip(q.name, 60)}: relative error per element", cells, columns,
                    row_labels=_labels(rows_shape), column_labels=_labels(cols_shape), marked=marked,
                    x_label=_axes(e.rows, len(cols_shape), "input" if jacobian else ""),
                    y_label=_axes(0, e.rows, "output" if jacobian else ""), legend=strip, legend_ticks=ticks,
                    legend_label="relative error, log scale")


def heat_maps(result: CheckResult, limit: int = MAX_HEAT_MAPS) -> tuple[list[str], int]:
    """Heat maps of ``result``'s failing quantities that carry per-element errors, at most ``limit``;
    and how many more there were."""
    mapped = [q for q in result.quantities if q.verdict is Verdict.FAIL and q.elements is not None]
    return [_heat_map(q, q.elements) for q in mapped[:limit] if q.elements is not None], \
        max(0, len(mapped) - limit)
